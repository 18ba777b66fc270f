//! What the tests that run `micro serve` as a process share.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// The address a spawned `micro serve` (stdout piped) prints once it listens.
pub fn listening_address(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("micro serve's stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("micro serve: listening on http://") {
                let _ = tx.send(a.trim().to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("micro serve did not print its address within 120 s")
        .parse()
        .unwrap()
}

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

/// One HTTP/1.1 exchange over a fresh connection: sends `request` as is and reads the answer
/// until the server closes; returns the status, the head and the body.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to micro serve");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, head.to_owned(), body.to_owned())
}

/// A new API key for `tenant` in the store `db`, made by `micro serve keys add`.
pub fn add_key(tenant: &str, db: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_micro"))
        .args(["serve", "keys", "add", "--tenant", tenant, "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

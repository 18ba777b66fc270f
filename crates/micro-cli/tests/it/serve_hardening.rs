//! `micro serve` as a real process against clients that stall: a connection that stops in
//! the middle of its headers is closed after --header-timeout-ms, and SIGTERM makes the
//! server exit within --request-timeout-ms even while such a connection is open. A backbone
//! device that does not exist is a one-line error with exit code 2.

use crate::common::listening_address;
use micro_serve::testing::synthetic_model;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_micro");

/// Starts `micro serve` on a random model with `extra` flags; returns it and its address.
fn spawn(dir: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    let model = dir.join("model");
    synthetic_model(8, 2, 1).save(&model).unwrap();
    let db = dir.join("state.sqlite");
    let mut child = Command::new(BIN)
        .args(["serve", "--model", model.to_str().unwrap()])
        .args(["--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn micro serve");
    let addr = listening_address(&mut child);
    (child, addr)
}

/// A connection that has sent half a request head and then nothing.
fn stuck_connection(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nAcc")
        .unwrap();
    s
}

/// Whether the server closes `s` within `limit` (EOF or reset), and how long after `since`.
fn closed_within(s: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(since.elapsed()),
        }
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for the process to exit, at most `limit`; returns its exit code and the wait.
fn wait_exit(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("micro serve still running {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_connection_stuck_in_its_headers_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path(), &["--header-timeout-ms", "500"]);
    let opened = Instant::now();
    let mut stuck = stuck_connection(addr);
    let waited = closed_within(&mut stuck, opened, Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let waited = waited.expect("the stuck connection was not closed within 15 s");
    // The server starts the clock when it accepts, after our connect.
    assert!(
        waited >= Duration::from_millis(450),
        "closed after {waited:?}, before the header timeout"
    );
}

#[test]
fn sigterm_exits_within_the_request_timeout_with_a_stuck_connection_open() {
    let dir = tempfile::tempdir().unwrap();
    // The header timeout is far longer than the request timeout: only the bounded shutdown
    // can end the stuck connection in time.
    let flags = [
        "--request-timeout-ms",
        "1500",
        "--header-timeout-ms",
        "120000",
    ];
    let (mut child, addr) = spawn(dir.path(), &flags);
    let mut stuck = stuck_connection(addr);
    std::thread::sleep(Duration::from_millis(200));
    sigterm(&child);
    let (code, waited) = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "micro serve exited with {code:?}");
    // 1.5 s of grace plus start-up slack on a loaded 2-core machine.
    assert!(
        waited < Duration::from_millis(1500 + 3000),
        "exit took {waited:?} after SIGTERM"
    );
    assert!(closed_within(&mut stuck, Instant::now(), Duration::from_secs(5)).is_some());
}

#[test]
fn a_backbone_device_that_does_not_exist_is_exit_code_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synthetic_model(384, 2, 1).save(&model).unwrap();
    let backbone = micro_embed::default_minilm_dir().expect("set MICRO_HOME or HOME");
    assert!(
        backbone.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {}: run `scripts/fetch-assets.sh minilm`",
        backbone.display()
    );
    let out = Command::new(BIN)
        .args(["serve", "--model", model.to_str().unwrap()])
        .args([
            "--backbone",
            backbone.to_str().unwrap(),
            "--device",
            "cuda:99",
        ])
        .args(["--db", dir.path().join("s.sqlite").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("cuda") && lower.contains("99"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "tpu",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use cpu, cuda or cuda:N"));
}

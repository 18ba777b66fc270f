//! `micro serve` as a real process against clients that stall: a connection that stops in
//! the middle of its headers is closed after --header-timeout-ms, and SIGTERM makes the
//! server exit within --request-timeout-ms even while such a connection is open. A backbone
//! device that does not exist is a one-line error with exit code 2, and so are a `--db` of an
//! unknown scheme, a PostgreSQL that refuses, and a limit of zero. Connections past
//! --max-connections are answered 503; the soft open-file limit is raised at start; hyper's
//! own 400/414/431 answers have the JSON error body; `X-Api-Key` is not hidden by another
//! `Authorization`; user ids with bidirectional overrides are refused; each rejected request
//! is a line on stderr.

use crate::common::{add_key, listening_address, raw_exchange};
use micro_serve::bench::synthetic_model;
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
            panic!("micro serve still running after {limit:?}");
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

/// `micro serve` on a random model with a key for tenant `t`, stderr in a file, killed when
/// dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    key: String,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Runs `micro serve` through `sh -c "PRELUDE; exec micro serve ..."`, so that a test can
    /// set the process's limits first (`ulimit`).
    fn start_after(prelude: &str, extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        synthetic_model(8, 2, 1).save(&model).unwrap();
        let db = dir.path().join("state.sqlite").display().to_string();
        let key = add_key("t", &db);
        let stderr = dir.path().join("stderr.log");
        let mut args = vec!["serve", "--model", model.to_str().unwrap(), "--db", &db];
        args.extend(["--listen", "127.0.0.1:0"]);
        args.extend(extra);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn micro serve");
        let addr = listening_address(&mut child);
        Served {
            child,
            addr,
            key,
            stderr,
            _dir: dir,
        }
    }

    fn start(extra: &[&str]) -> Served {
        Served::start_after("true", extra)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// `METHOD PATH` with the key in `X-Api-Key` and `headers`, and an optional JSON body.
    fn send(&self, method: &str, path: &str, headers: &str, body: Option<&str>) -> (u16, String) {
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, _, body) = raw_exchange(self.addr, request.as_bytes());
        (status, body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `error.code` of a JSON error body.
fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("not the JSON error body ({e}): {body:?}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Runs `micro ARGS`, which must refuse to start; returns the exit code and stderr. A process
/// still running after a minute has started serving instead: it is killed and the test fails.
fn fails_at_start(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let stderr = dir.join("stderr.log");
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (code, _) = wait_exit(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&stderr).unwrap();
    std::fs::remove_file(&stderr).unwrap();
    (code, text)
}

#[test]
fn a_db_url_of_an_unknown_scheme_is_exit_code_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synthetic_model(8, 2, 1).save(&model).unwrap();
    for url in [
        "postgre://micro@db.example/rewards",
        "mysql://db.example/rewards",
    ] {
        let serve = ["serve", "--model", model.to_str().unwrap(), "--db", url];
        let keys = ["serve", "keys", "add", "--tenant", "t", "--db", url];
        for args in [&serve[..], &keys[..]] {
            let (code, stderr) = fails_at_start(dir.path(), args);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.contains("unknown store scheme") && stderr.contains("postgres://"),
                "{stderr}"
            );
        }
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["model"], "a store was created: {left:?}");
}

#[test]
fn a_postgres_that_refuses_is_reported_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synthetic_model(8, 2, 1).save(&model).unwrap();
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    let url = "postgres://micro:secret@127.0.0.1:1/micro";
    let (code, stderr) = fails_at_start(
        dir.path(),
        &["serve", "--model", model.to_str().unwrap(), "--db", url],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password is shown: {stderr}"
    );
}

#[test]
fn a_limit_of_zero_is_exit_code_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synthetic_model(8, 2, 1).save(&model).unwrap();
    let flags = [
        "--max-body-bytes",
        "--max-texts",
        "--header-timeout-ms",
        "--request-timeout-ms",
        "--max-connections",
    ];
    for flag in flags {
        let db = dir.path().join("s.sqlite");
        let args = [
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ];
        let (code, stderr) = fails_at_start(dir.path(), &[&args[..], &[flag, "0"]].concat());
        assert_eq!(code, Some(2), "{flag}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{flag}: {stderr}");
        assert!(stderr.contains(&format!("{flag} 0")), "{flag}: {stderr}");
    }
}

#[test]
fn connections_past_the_cap_are_answered_503_until_one_closes() {
    let served = Served::start(&["--max-connections", "8", "--header-timeout-ms", "600000"]);
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(served.addr).unwrap())
        .collect();
    // The server takes connections in order: this one comes after the eight idle ones.
    let (status, body) = served.send("GET", "/v1/health", "", None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "unavailable");
    assert!(body.contains("--max-connections"), "{body}");
    assert!(
        served.stderr().contains("rejected a connection"),
        "{}",
        served.stderr()
    );
    drop(idle);
    // The server sees the idle connections close as it reads them: poll, boundedly.
    let ok = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        served.send("GET", "/v1/health", "", None).0 == 200
    });
    assert!(ok, "still refused after the idle connections closed");
}

#[test]
fn the_soft_open_file_limit_is_raised_at_start() {
    // A soft limit of 256 under a higher hard one, as the usual 1,024 under 4,096 or more.
    let served = Served::start_after("ulimit -Sn 256", &["--header-timeout-ms", "600000"]);
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(served.addr).unwrap())
        .collect();
    let (status, body) = served.send("GET", "/v1/health", "", None);
    assert_eq!(status, 200, "{body}\n{}", served.stderr());
    assert!(
        !served.stderr().contains("Too many open files"),
        "{}",
        served.stderr()
    );
    drop(idle);
}

#[test]
fn hypers_own_refusals_have_the_json_error_body() {
    let served = Served::start(&[]);
    let long_uri = format!(
        "GET /v1/health?pad={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-Pad-{i}: a\r\n"))
            .collect::<String>()
    );
    let cases = [
        (long_uri.into_bytes(), 414, "uri_too_long"),
        (many_headers.into_bytes(), 431, "headers_too_large"),
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400, "bad_request"),
    ];
    for (request, want, code) in cases {
        let (status, head, body) = raw_exchange(served.addr, &request);
        assert_eq!(status, want, "{head}\n{body}");
        assert!(
            head.to_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        assert_eq!(error_code(&body), code, "{body}");
        assert!(
            served.stderr().contains(&format!("{want} from 127.0.0.1")),
            "{}",
            served.stderr()
        );
    }
}

#[test]
fn x_api_key_is_not_hidden_by_another_authorization_and_bidi_ids_are_refused() {
    let served = Served::start(&[]);
    let key = format!(
        "X-Api-Key: {}\r\nAuthorization: Bearer a-proxy-token\r\n",
        served.key
    );
    let (status, body) = served.send("PUT", "/v1/users/alice", &key, Some("{}"));
    assert_eq!(status, 201, "{body}");
    // U+202E (right-to-left override) in the path and in a body.
    let (status, body) = served.send("PUT", "/v1/users/al%E2%80%AEice", &key, Some("{}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("U+202E"), "{body}");
    let score = r#"{"user_id": "al\u202eice", "response_embeddings": [[0, 0, 0, 0, 0, 0, 0, 1]]}"#;
    let (status, body) = served.send("POST", "/v1/score", &key, Some(score));
    assert_eq!(status, 400, "{body}");
    // Each rejection is a line with its status, route and reason.
    let (status, _) = served.send("GET", "/v1/users/nobody", &key, None);
    assert_eq!(status, 404);
    let log = served.stderr();
    for line in [
        "rejected 400 PUT /v1/users/{user_id}: user_id has the invisible character U+202E",
        "rejected 400 POST /v1/score: user_id has the invisible character U+202E",
        "rejected 404 GET /v1/users/{user_id}: no user \"nobody\"",
    ] {
        assert!(log.contains(line), "{line:?} not in:\n{log}");
    }
}

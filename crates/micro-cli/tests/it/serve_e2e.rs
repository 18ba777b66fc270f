//! `micro serve` as a real process: kill -9 while 8 clients send feedback, restart, and every
//! acknowledged event is in the state (SQLite and PostgreSQL); SIGTERM stops it cleanly; API
//! keys from `micro serve keys add`.

use crate::common::listening_address;
use micro_route::UserState;
use micro_serve::bench::client::Client;
use micro_serve::bench::{seeded_vec, synthetic_model};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DIM: usize = 16;
const K: usize = 4;
const BIN: &str = env!("CARGO_BIN_EXE_micro");

/// A `micro serve` child process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn spawn(model: &Path, db: &str) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--rate",
                "0.5",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn micro serve");
        let addr = listening_address(&mut child);
        Server { child, addr }
    }

    fn kill9(mut self) {
        // std's Child::kill sends SIGKILL on Unix: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_key(db: &str, tenant: &str) -> String {
    let out = Command::new(BIN)
        .args(["serve", "keys", "add", "--tenant", tenant, "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A tenant name no earlier run used (the PostgreSQL database outlives test runs).
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn model_dir(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("model");
    synthetic_model(DIM, K, 5).save(&path).unwrap();
    path
}

/// 8 clients send feedback to 4 users until the server dies under them; returns the sequence
/// numbers each user's acknowledged events got.
fn feedback_until_killed(server: Server, key: &str) -> BTreeMap<String, Vec<i64>> {
    let acked: Mutex<BTreeMap<String, Vec<i64>>> = Mutex::default();
    let count = AtomicUsize::new(0);
    let dead = AtomicBool::new(false);
    let addr = server.addr;
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (acked, count, dead) = (&acked, &count, &dead);
            s.spawn(move || {
                let mut c = Client::new(addr, Some(key));
                let user = format!("u{}", t % 4);
                for i in 0..2_000u64 {
                    let seed = t * 1_000_000 + 2 * i;
                    let body = json!({"chosen_embedding": seeded_vec(seed, DIM), "rejected_embedding": seeded_vec(seed + 1, DIM)});
                    match c.post(&format!("/v1/users/{user}/feedback"), &body.to_string()) {
                        Ok(r) if r.status == 200 => {
                            let seq = r.json()["seq"].as_i64().unwrap();
                            acked.lock().unwrap().entry(user.clone()).or_default().push(seq);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => panic!("feedback refused: {} {}", r.status, r.body),
                        Err(_) if dead.load(Ordering::SeqCst) => break,
                        Err(e) => panic!("feedback failed before the kill: {e}"),
                    }
                }
            });
        }
        let start = Instant::now();
        while count.load(Ordering::SeqCst) < 200 && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        dead.store(true, Ordering::SeqCst);
        server.kill9();
    });
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.values().map(Vec::len).sum::<usize>() >= 200,
        "too few acknowledged events before the kill"
    );
    acked
}

fn check_every_ack_survived(addr: SocketAddr, key: &str, acked: &BTreeMap<String, Vec<i64>>) {
    let mut c = Client::new(addr, Some(key));
    for (user, seqs) in acked {
        let state = c.get(&format!("/v1/users/{user}")).unwrap().json();
        let log = c
            .get(&format!("/v1/users/{user}/feedback?limit=10000"))
            .unwrap()
            .json();
        let entries = log["entries"].as_array().unwrap();
        let logged: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(
            logged,
            (1..=logged.len() as i64).collect::<Vec<_>>(),
            "{user}: the log has gaps"
        );
        for s in seqs {
            assert!(
                logged.contains(s),
                "{user}: acknowledged event {s} lost (log has {} events)",
                logged.len()
            );
        }
        assert_eq!(
            state["updates"].as_u64().unwrap() as usize,
            logged.len(),
            "{user}: state and log disagree"
        );
        let prior: Vec<f32> = serde_json::from_value(state["prior"].clone()).unwrap();
        let margins: Vec<Vec<f32>> = entries
            .iter()
            .map(|e| serde_json::from_value(e["margins"].clone()).unwrap())
            .collect();
        let want = UserState::from_prior(&prior, 0.5).replay(margins.iter().map(Vec::as_slice));
        let got: Vec<f64> = serde_json::from_value(state["log_weights"].clone()).unwrap();
        for (g, w) in got.iter().zip(&want.log_weights) {
            assert!(
                (g - w).abs() < 1e-9,
                "{user}: state is not the replay of its log"
            );
        }
    }
}

fn kill9_keeps_every_acknowledged_feedback(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir(dir.path());
    let key = add_key(db, &unique("kill"));
    let acked = feedback_until_killed(Server::spawn(&model, db), &key);
    let again = Server::spawn(&model, db);
    check_every_ack_survived(again.addr, &key, &acked);
}

#[test]
fn sqlite_kill9_keeps_every_acknowledged_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite").display().to_string();
    kill9_keeps_every_acknowledged_feedback(&db);
}

#[test]
fn postgres_kill9_keeps_every_acknowledged_feedback() {
    let url = match std::env::var("MICRO_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("MICRO_SKIP_POSTGRES_TESTS").as_deref() == Ok("1") => return,
        _ => panic!("MICRO_TEST_POSTGRES_URL is not set: run `export MICRO_TEST_POSTGRES_URL=$(scripts/start-postgres.sh)`, or set MICRO_SKIP_POSTGRES_TESTS=1"),
    };
    kill9_keeps_every_acknowledged_feedback(&url);
}

#[test]
fn sigterm_stops_the_server_cleanly_and_keys_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite").display().to_string();
    let model = model_dir(dir.path());
    let key = add_key(&db, "acme");
    assert!(key.starts_with("mk_"));
    let listed = Command::new(BIN)
        .args(["serve", "keys", "list", "--db", &db])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("acme"));
    let mut server = Server::spawn(&model, &db);
    let mut c = Client::new(server.addr, Some(&key));
    let body = json!({"chosen_embedding": vec![1.0; DIM], "rejected_embedding": vec![0.0; DIM]})
        .to_string();
    assert_eq!(c.post("/v1/users/a/feedback", &body).unwrap().status, 200);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let missing = Command::new(BIN)
        .args(["serve", "--db", &db])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "--model must be required");
    let bad = Command::new(BIN)
        .args(["serve", "--model", "/nonexistent", "--db", &db])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent"));
}

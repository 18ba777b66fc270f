//! What a hostile client found in the server, one test per finding: a connection stuck in
//! its headers, limits skipped when embeddings come along, overflowing values answered with
//! `null` or the wrong status, a lost prior, an inconsistent 404, and errors that were not
//! JSON.

use crate::common::Fixture;
use micro_serve::bench::client::{Client, Reply};
use micro_serve::bench::{seeded_vec, synthetic_model};
use micro_serve::{Limits, Scorer};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DIM: usize = 16;
const K: usize = 4;

fn scorer() -> Scorer {
    Scorer::new(synthetic_model(DIM, K, 3))
}

fn message(r: &Reply) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Opens a connection and sends half a request head.
fn stuck_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .unwrap();
    s
}

/// Seconds from `since` until the server closes `s` (EOF or reset); panics after `limit`.
fn seconds_until_closed(s: &mut TcpStream, since: Instant, limit: Duration) -> f64 {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the connection was still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    since.elapsed().as_secs_f64()
}

#[test]
fn a_connection_stuck_in_its_headers_is_closed_after_the_header_timeout() {
    let f = Fixture::new();
    let key = f.key("acme");
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = f.start(scorer(), limits);
    let opened = Instant::now();
    let mut stuck = stuck_connection(server.addr);
    // Other clients are served meanwhile.
    let mut c = Client::new(server.addr, Some(&key));
    assert_eq!(c.get("/v1/health").unwrap().status, 200);
    let waited = seconds_until_closed(&mut stuck, opened, Duration::from_secs(10));
    // The server starts the clock when it accepts, after our connect.
    assert!(
        waited >= 0.25,
        "closed after {waited:.2} s, before the timeout"
    );
    f.stop(server);
}

#[test]
fn shutdown_closes_a_stuck_connection_within_the_request_timeout() {
    let f = Fixture::new();
    let limits = Limits {
        timeout: Duration::from_millis(500),
        header_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let server = f.start(scorer(), limits);
    let mut stuck = stuck_connection(server.addr);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    f.stop(server);
    let stopped = start.elapsed().as_secs_f64();
    assert!(
        stopped < 5.0,
        "stop took {stopped:.2} s with a stuck connection open"
    );
    seconds_until_closed(&mut stuck, Instant::now(), Duration::from_secs(5));
}

#[test]
fn prompt_and_context_limits_hold_when_embeddings_come_along() {
    let f = Fixture::new();
    let key = f.key("acme");
    let limits = Limits {
        max_body_bytes: 16 << 20,
        ..Limits::default()
    };
    let server = f.start(scorer(), limits);
    let mut c = Client::new(server.addr, Some(&key));
    let huge = "x".repeat(4_000_000);
    let fb = json!({"prompt": huge, "chosen_embedding": seeded_vec(1, DIM), "rejected_embedding": seeded_vec(2, DIM)});
    let r = c.post("/v1/users/u/feedback", &fb.to_string()).unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        message(&r).contains("`prompt` has 4000000 characters"),
        "{}",
        r.body
    );
    assert_eq!(
        c.get("/v1/users/u/feedback").unwrap().status,
        404,
        "nothing was logged"
    );

    let fb = json!({"context": huge, "chosen_embedding": seeded_vec(1, DIM), "rejected_embedding": seeded_vec(2, DIM)});
    assert_eq!(
        c.post("/v1/users/u/feedback", &fb.to_string())
            .unwrap()
            .status,
        413
    );
    let put = json!({"context": huge}).to_string();
    let r = c.request("PUT", "/v1/users/u", Some(&put)).unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(message(&r).contains("--max-text-chars"));
    assert_eq!(
        c.get("/v1/users/u").unwrap().status,
        404,
        "nothing was stored"
    );
    let score = json!({"prompt": huge, "prompt_embedding": seeded_vec(3, DIM), "response_embeddings": [seeded_vec(4, DIM)]});
    assert_eq!(c.post("/v1/score", &score.to_string()).unwrap().status, 413);
    f.stop(server);
}

#[test]
fn finite_but_huge_embeddings_are_422_not_null() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    let huge = vec![3e38f32; DIM];
    let x = seeded_vec(1, DIM);
    let cases = [
        (
            "/v1/score",
            json!({"prompt_embedding": x, "response_embeddings": [huge]}),
            "head rewards",
        ),
        (
            "/v1/score",
            json!({"context_embedding": huge, "response_embeddings": [x]}),
            "router weights",
        ),
        (
            "/v1/compare",
            json!({"prompt_embedding": x, "a_embedding": huge, "b_embedding": x}),
            "head rewards",
        ),
    ];
    for (path, body, needle) in cases {
        let r = c.post(path, &body.to_string()).unwrap();
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert!(!r.body.contains("null"), "{}", r.body);
        assert!(message(&r).contains(needle), "{path}: {}", r.body);
    }
    f.stop(server);
}

#[test]
fn feedback_whose_margins_overflow_is_422_not_409() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    let fb =
        json!({"chosen_embedding": vec![3e38f32; DIM], "rejected_embedding": vec![-3e38f32; DIM]});
    let r = c.post("/v1/users/u/feedback", &fb.to_string()).unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(message(&r).contains("margins"), "{}", r.body);
    assert_eq!(c.get("/v1/users/u").unwrap().status, 404);
    f.stop(server);
}

#[test]
fn a_prior_of_huge_values_is_normalised_not_zeroed() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    let put = json!({"prior": [3e38f32, 3e38f32, 3e38f32, 0.0, 0.0]}).to_string();
    let r = c.request("PUT", "/v1/users/p", Some(&put)).unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let prior: Vec<f64> = serde_json::from_value(r.json()["prior"].clone()).unwrap();
    for (got, want) in prior
        .iter()
        .zip([1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0, 0.0])
    {
        assert!((got - want).abs() < 1e-6, "{prior:?}");
    }
    let bad = json!({"prior": [0.0, 0.0, 0.0, 0.0, 0.0]}).to_string();
    assert_eq!(
        c.request("PUT", "/v1/users/q", Some(&bad)).unwrap().status,
        422
    );
    f.stop(server);
}

#[test]
fn the_feedback_log_of_a_user_that_never_existed_is_404_for_any_after() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    for after in [0, 1, 99] {
        let r = c
            .get(&format!("/v1/users/never-existed/feedback?after={after}"))
            .unwrap();
        assert_eq!(r.status, 404, "after={after}: {}", r.body);
    }
    // A real user past its last event: an empty page.
    let fb =
        json!({"chosen_embedding": seeded_vec(1, DIM), "rejected_embedding": seeded_vec(2, DIM)});
    assert_eq!(
        c.post("/v1/users/real/feedback", &fb.to_string())
            .unwrap()
            .status,
        200
    );
    let r = c.get("/v1/users/real/feedback?after=1").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["entries"], json!([]));
    f.stop(server);
}

#[test]
fn every_error_is_a_json_body() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    let cases = [
        (
            "GET",
            "/v1/users/u/feedback?limit=abc",
            400,
            "invalid query string",
        ),
        ("GET", "/v1/users/%FF%FE", 400, "invalid path"),
        (
            "DELETE",
            "/v1/score",
            405,
            "DELETE is not allowed on /v1/score",
        ),
        ("GET", "/get_reward", 405, "GET is not allowed"),
        ("GET", "/nowhere", 404, "no such route"),
    ];
    for (method, path, status, needle) in cases {
        let r = c.request(method, path, None).unwrap();
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert!(
            message(&r).contains(needle),
            "{method} {path}: {:?}",
            r.body
        );
    }
    f.stop(server);
}

#[test]
fn user_ids_are_limited_in_characters_not_bytes() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = f.start(scorer(), Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    // 256 two-byte characters: 512 bytes, within the 256-character limit.
    let ok = "%C3%A9".repeat(256);
    let r = c
        .request("PUT", &format!("/v1/users/{ok}"), Some("{}"))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c
        .request("PUT", &format!("/v1/users/{ok}a"), Some("{}"))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(message(&r).contains("257 characters"), "{}", r.body);
    f.stop(server);
}

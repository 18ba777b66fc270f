//! The HTTP API end to end, with servers in process on loopback (ports chosen by the OS):
//! tenant isolation, 4xx answers, concurrency against a sequential replay, and the OpenAPI
//! document covering every route.

use crate::common::Fixture;
use micro_route::{Rate, UserState};
use micro_serve::bench::client::{Client, Reply};
use micro_serve::bench::{random_vec, synthetic_model};
use micro_serve::{AppState, Limits, Running, Scorer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::sync::Arc;

const DIM: usize = 16;
const K: usize = 4;

/// A server over the fixture's store, scoring with a random model.
fn start(f: &Fixture, limits: Limits) -> Running {
    f.start(Scorer::new(synthetic_model(DIM, K, 3)), limits)
}

fn tenant(tag: &str) -> String {
    use rand::Rng;
    format!("{tag}-{:08x}", rand::rng().random::<u32>())
}

fn feedback_body(rng: &mut StdRng) -> String {
    json!({"chosen_embedding": random_vec(rng, DIM), "rejected_embedding": random_vec(rng, DIM)})
        .to_string()
}

fn error_message(r: &Reply) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn tenants_cannot_read_update_or_delete_each_others_users() {
    let f = Fixture::new();
    let (ka, kb) = (f.key("acme"), f.key("globex"));
    let server = start(&f, Limits::default());
    let (mut a, mut b) = (
        Client::new(server.addr, Some(&ka)),
        Client::new(server.addr, Some(&kb)),
    );
    let mut rng = StdRng::seed_from_u64(1);
    let r = a
        .post("/v1/users/bob/feedback", &feedback_body(&mut rng))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    assert_eq!(b.get("/v1/users/bob").unwrap().status, 404);
    assert_eq!(b.get("/v1/users/bob/feedback").unwrap().status, 404);
    assert_eq!(
        b.request("DELETE", "/v1/users/bob", None).unwrap().status,
        404
    );
    assert_eq!(b.post("/v1/users/bob/rebuild", "").unwrap().status, 404);
    let score =
        json!({"user_id": "bob", "response_embeddings": [random_vec(&mut rng, DIM)]}).to_string();
    let r = b.post("/v1/score", &score).unwrap();
    assert_eq!(r.status, 404);
    assert!(error_message(&r).contains("bob"), "{}", r.body);
    // Globex's feedback for its own "bob" is another user altogether.
    assert_eq!(
        b.post("/v1/users/bob/feedback", &feedback_body(&mut rng))
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        b.request("DELETE", "/v1/users/bob", None).unwrap().status,
        204
    );

    let mine = a.get("/v1/users/bob").unwrap();
    assert_eq!(mine.status, 200);
    assert_eq!(mine.json()["updates"], 1, "acme's bob is untouched");
    assert_eq!(a.post("/v1/score", &score).unwrap().status, 200);

    let mut anonymous = Client::new(server.addr, None);
    let r = anonymous.get("/v1/users/bob").unwrap();
    assert_eq!(r.status, 401);
    assert!(error_message(&r).contains("API key"));
    let mut forged = Client::new(server.addr, Some("mk_0000"));
    assert_eq!(forged.post("/v1/score", &score).unwrap().status, 401);
    f.rt.block_on(server.stop()).unwrap();
}

#[test]
fn bad_requests_get_the_right_4xx_and_a_message() {
    let f = Fixture::new();
    let key = f.key("acme");
    let limits = Limits {
        max_body_bytes: 8_000,
        max_texts: 3,
        max_text_chars: 10,
        ..Limits::default()
    };
    let server = start(&f, limits);
    let mut c = Client::new(server.addr, Some(&key));
    let mut rng = StdRng::seed_from_u64(2);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/score", "{\"user_id\": ".into(), 400, "malformed JSON"),
        ("/v1/score", json!({"context_embedding": random_vec(&mut rng, DIM), "response_embeddings": [random_vec(&mut rng, DIM - 1)]}).to_string(), 422, "response_embeddings[0]` has 15 values"),
        ("/v1/score", json!({"context_embedding": random_vec(&mut rng, 3), "response_embeddings": [random_vec(&mut rng, DIM)]}).to_string(), 422, "context_embedding"),
        ("/v1/score", json!({"user_id": "nobody", "response_embeddings": [random_vec(&mut rng, DIM)]}).to_string(), 404, "nobody"),
        ("/v1/score", json!({"response_embeddings": [random_vec(&mut rng, DIM)]}).to_string(), 400, "user_id"),
        ("/v1/score", json!({"user_id": "x", "responses": ["a"], "bogus": 1}).to_string(), 422, "bogus"),
        ("/v1/score", json!({"prompt_embedding": random_vec(&mut rng, DIM), "response_embeddings": vec![random_vec(&mut rng, DIM); 4]}).to_string(), 413, "--max-texts"),
        ("/v1/score", json!({"prompt_embedding": random_vec(&mut rng, DIM), "responses": ["far longer than ten characters"]}).to_string(), 413, "--max-text-chars"),
        ("/v1/score", json!({"prompt_embedding": random_vec(&mut rng, DIM), "responses": ["short"]}).to_string(), 400, "--backbone"),
        ("/v1/score", format!("{{\"pad\": \"{}\"}}", "x".repeat(9_000)), 413, "--max-body-bytes"),
        ("/v1/users/u/feedback", json!({"chosen_embedding": random_vec(&mut rng, DIM)}).to_string(), 400, "rejected_embedding"),
        ("/v1/compare", json!({"prompt_embedding": random_vec(&mut rng, DIM), "a_embedding": random_vec(&mut rng, DIM), "b_embedding": random_vec(&mut rng, DIM + 2)}).to_string(), 422, "18 values"),
    ];
    for (path, body, status, needle) in cases {
        let r = c.post(path, &body).unwrap();
        assert_eq!(
            r.status,
            status,
            "{path} {}: {}",
            &body[..body.len().min(60)],
            r.body
        );
        assert!(
            error_message(&r).contains(needle),
            "{path}: {:?} lacks {needle:?}",
            r.body
        );
    }
    assert_eq!(c.get("/v1/users/nobody").unwrap().status, 404);
    assert_eq!(c.get("/v1/nothing").unwrap().status, 404);
    let r = c
        .request(
            "PUT",
            "/v1/users/p",
            Some(&json!({"prior": [1.0, -1.0, 0.0, 0.0]}).to_string()),
        )
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    f.rt.block_on(server.stop()).unwrap();
}

#[test]
fn scoring_and_comparing_follow_the_mixture_formulas() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = start(&f, Limits::default());
    let mut c = Client::new(server.addr, Some(&key));
    let model = synthetic_model(DIM, K, 3);
    let mut rng = StdRng::seed_from_u64(3);
    let (x, ha, hb) = (
        random_vec(&mut rng, DIM),
        random_vec(&mut rng, DIM),
        random_vec(&mut rng, DIM),
    );
    let body =
        json!({"prompt_embedding": x, "response_embeddings": [ha, hb], "head_rewards": true})
            .to_string();
    let r = c.post("/v1/score", &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let w = model.weights(&x);
    let (ra, rb) = (model.rewards(&ha), model.rewards(&hb));
    let reward_a: f32 = w.iter().zip(&ra).map(|(w, r)| w * r).sum();
    let p: f32 = (0..K).map(|k| w[k] / (1.0 + (rb[k] - ra[k]).exp())).sum();
    assert_eq!(v["weights_from"], "router");
    assert!((v["rewards"][0].as_f64().unwrap() - reward_a as f64).abs() < 1e-5);
    assert!((v["pairs"][0]["p"].as_f64().unwrap() - p as f64).abs() < 1e-5);
    let body = json!({"prompt_embedding": x, "a_embedding": ha, "b_embedding": hb}).to_string();
    let r = c.post("/v1/compare", &body).unwrap().json();
    assert!((r["p_a"].as_f64().unwrap() - p as f64).abs() < 1e-5);

    // A user created with an explicit prior is scored with it, then moves with feedback.
    let r = c
        .request(
            "PUT",
            "/v1/users/carol",
            Some(&json!({"prior": [1.0, 1.0, 2.0, 0.0, 0.0]}).to_string()),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        c.request("PUT", "/v1/users/carol", Some("{}"))
            .unwrap()
            .status,
        409
    );
    let body = json!({"user_id": "carol", "response_embeddings": [ha]}).to_string();
    let v = c.post("/v1/score", &body).unwrap().json();
    assert_eq!(v["weights_from"], "user");
    assert!((v["weights"][2].as_f64().unwrap() - 0.5).abs() < 1e-6);
    let fb = json!({"chosen_embedding": ha, "rejected_embedding": hb}).to_string();
    let after = c.post("/v1/users/carol/feedback", &fb).unwrap().json();
    // The user's weights move by every expert's margin: the heads', and the gate's (without a
    // prompt, an even split over the heads).
    let heads: Vec<f32> = ra.iter().zip(&rb).map(|(a, b)| a - b).collect();
    let even = vec![(1.0 / K as f32).ln(); K];
    let margins = micro_route::Experts::new(K, None).margins(&heads, &even);
    let mut want = UserState::from_prior(&[0.25, 0.25, 0.5, 0.0, 0.0], 0.5);
    want.update(&margins);
    for k in 0..=K {
        assert!(
            (after["log_weights"][k].as_f64().unwrap() - want.log_weights[k]).abs() < 1e-5,
            "{after}"
        );
    }
    assert_eq!(after["fit"]["kind"], "head", "{after}");
    let health = c.get("/v1/health").unwrap().json();
    assert_eq!(health["model"]["k"], K);
    let metrics = c.get("/metrics").unwrap();
    assert!(metrics
        .body
        .contains("micro_http_requests_total{method=\"POST\",route=\"/v1/score\",status=\"200\"}"));
    assert!(metrics.body.contains("micro_feedback_stored_total 1"));
    f.rt.block_on(server.stop()).unwrap();
}

/// 16 clients send feedback for one user at once; with PostgreSQL they are split over two
/// server replicas sharing the database.
fn concurrent_clients_match_a_sequential_replay(url: Option<&str>) {
    let f = Fixture::open(url);
    let key = f.key(&tenant("conc"));
    let servers = if url.is_some() { 2 } else { 1 };
    let running: Vec<Running> = (0..servers).map(|_| start(&f, Limits::default())).collect();
    let addrs: Vec<_> = running.iter().map(|r| r.addr).collect();
    std::thread::scope(|s| {
        for t in 0..16u64 {
            let (addr, key) = (addrs[t as usize % addrs.len()], key.clone());
            s.spawn(move || {
                let mut c = Client::new(addr, Some(&key));
                let mut rng = StdRng::seed_from_u64(100 + t);
                for _ in 0..10 {
                    let r = c
                        .post("/v1/users/shared/feedback", &feedback_body(&mut rng))
                        .unwrap();
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    let mut c = Client::new(addrs[0], Some(&key));
    let user = c.get("/v1/users/shared").unwrap().json();
    let log = c
        .get("/v1/users/shared/feedback?limit=10000")
        .unwrap()
        .json();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 160);
    assert_eq!(user["updates"], 160);
    let prior: Vec<f32> = serde_json::from_value(user["prior"].clone()).unwrap();
    let margins: Vec<Vec<f32>> = entries
        .iter()
        .map(|e| serde_json::from_value(e["margins"].clone()).unwrap())
        .collect();
    let want = UserState::from_prior(&prior, 0.5).replay(margins.iter().map(Vec::as_slice));
    let got: Vec<f64> = serde_json::from_value(user["log_weights"].clone()).unwrap();
    for (g, w) in got.iter().zip(&want.log_weights) {
        assert!(
            (g - w).abs() < 1e-9,
            "lost update: {got:?} vs {:?}",
            want.log_weights
        );
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=160).collect::<Vec<_>>());
    for r in running {
        f.rt.block_on(r.stop()).unwrap();
    }
}

#[test]
fn sqlite_sixteen_concurrent_clients_match_a_sequential_replay() {
    concurrent_clients_match_a_sequential_replay(None);
}

#[test]
fn postgres_sixteen_concurrent_clients_on_two_replicas_match_a_sequential_replay() {
    let url = match std::env::var("MICRO_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("MICRO_SKIP_POSTGRES_TESTS").as_deref() == Ok("1") => return,
        _ => panic!("MICRO_TEST_POSTGRES_URL is not set: run `export MICRO_TEST_POSTGRES_URL=$(scripts/start-postgres.sh)`, or set MICRO_SKIP_POSTGRES_TESTS=1"),
    };
    concurrent_clients_match_a_sequential_replay(Some(&url));
}

#[test]
fn the_openapi_document_covers_every_route() {
    let doc: Value =
        serde_json::from_str(micro_serve::OPENAPI).expect("docs/openapi.json is valid JSON");
    let paths = doc["paths"].as_object().unwrap();
    let routes = [
        ("/v1/health", "get"),
        ("/metrics", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/score", "post"),
        ("/v1/compare", "post"),
        ("/v1/users/{user_id}", "get"),
        ("/v1/users/{user_id}", "put"),
        ("/v1/users/{user_id}", "delete"),
        ("/v1/users/{user_id}/feedback", "post"),
        ("/v1/users/{user_id}/feedback", "get"),
        ("/v1/users/{user_id}/rebuild", "post"),
        ("/v1/users/{user_id}/next-question", "post"),
        ("/get_reward", "post"),
        ("/slime/reward", "post"),
    ];
    for (p, m) in routes {
        assert!(
            paths.get(p).and_then(|x| x.get(m)).is_some(),
            "{m} {p} missing from docs/openapi.json"
        );
    }
    let f = Fixture::new();
    let server = start(&f, Limits::default());
    let mut c = Client::new(server.addr, None);
    let served = c.get("/v1/openapi.json").unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(served.json(), doc);
    f.rt.block_on(server.stop()).unwrap();
}

/// A route that takes `ms` milliseconds, wrapped in the server's timeout layer.
fn slow_app(f: &Fixture, timeout_ms: u64) -> axum::Router {
    use axum::routing::get;
    let scorer = Scorer::new(synthetic_model(DIM, K, 3));
    let limits = Limits {
        timeout: std::time::Duration::from_millis(timeout_ms),
        ..Limits::default()
    };
    let state = Arc::new(AppState::new(
        scorer,
        f.store.clone(),
        limits,
        Rate::Anytime,
    ));
    axum::Router::new()
        .route(
            "/slow/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    "done"
                },
            ),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            micro_serve::request_timeout,
        ))
}

fn serve_app(
    f: &Fixture,
    app: axum::Router,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (listener, addr) = f.rt.block_on(micro_serve::bind("127.0.0.1:0")).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = f.rt.spawn(micro_serve::serve_router(
        listener,
        app,
        async move {
            let _ = rx.await;
        },
        micro_serve::ConnLimits::from(&Limits::default()),
    ));
    (addr, tx, task)
}

#[test]
fn a_request_past_the_timeout_gets_408() {
    let f = Fixture::new();
    let (addr, stop, task) = serve_app(&f, slow_app(&f, 100));
    let mut c = Client::new(addr, None);
    assert_eq!(c.get("/slow/1").unwrap().status, 200);
    let r = c.get("/slow/2000").unwrap();
    assert_eq!(r.status, 408, "{}", r.body);
    assert!(error_message(&r).contains("--request-timeout-ms"));
    stop.send(()).unwrap();
    f.rt.block_on(task).unwrap().unwrap();
}

#[test]
fn graceful_shutdown_finishes_the_request_in_flight() {
    let f = Fixture::new();
    let (addr, stop, task) = serve_app(&f, slow_app(&f, 10_000));
    let in_flight = std::thread::spawn(move || Client::new(addr, None).get("/slow/500").unwrap());
    std::thread::sleep(std::time::Duration::from_millis(150));
    stop.send(()).unwrap();
    let r = in_flight.join().unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "done"));
    f.rt.block_on(task).unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed after shutdown"
    );
}

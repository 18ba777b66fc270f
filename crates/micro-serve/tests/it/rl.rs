//! The RL trainers' shapes in process, over a recording stand-in backbone: OpenRLHF's
//! `/get_reward` and slime's `/slime/reward` give `/v1/score`'s rewards for the same
//! conversation and label, the backbone never sees template markup, and concurrent text
//! requests share backbone passes without changing any answer.

use crate::common::{BagBackbone, Fixture, PANIC};
use micro_serve::bench::client::{Client, Reply};
use micro_serve::bench::synthetic_model;
use micro_serve::{BatchOptions, Limits, Scorer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const DIM: usize = 24;
const K: usize = 4;

fn scorer(backbone: &Arc<BagBackbone>, batching: BatchOptions) -> Scorer {
    Scorer::with_backbone(
        synthetic_model(DIM, K, 21),
        backbone.clone() as Arc<dyn micro_embed::Backbone>,
        batching,
    )
    .unwrap()
}

const PROMPT: &str = "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n";
const RESPONSE: &str = "Boil it for nine minutes.";

fn messages() -> Value {
    json!([{"role": "system", "content": "You are kind."}, {"role": "user", "content": "How do I boil an egg?"}])
}

fn get_reward(c: &mut Client, labels: Value) -> Reply {
    let query = format!("{PROMPT}{RESPONSE}<|im_end|>");
    let body = json!({"query": [query], "prompts": [PROMPT], "labels": labels});
    c.post("/get_reward", &body.to_string()).unwrap()
}

fn v1_reward(c: &mut Client, extra: Value) -> f64 {
    let mut body = json!({"prompt": messages(), "responses": [RESPONSE], "head_rewards": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = c.post("/v1/score", &body.to_string()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["rewards"][0].as_f64().unwrap()
}

fn reward_of(r: &Reply) -> f64 {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["rewards"][0].as_f64().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn openrlhf_rewards_equal_v1_score_for_the_labelled_user_or_context() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    let server = f.start(
        scorer(&backbone, BatchOptions::default()),
        Limits::default(),
    );
    let mut c = Client::new(server.addr, Some(&key));

    // A context label, as a JSON string and as an object: the router on that context.
    let brief = get_reward(&mut c, json!([r#"{"context": "I like short answers."}"#]));
    let want = v1_reward(&mut c, json!({"context": "I like short answers."}));
    assert!(close(reward_of(&brief), want), "{} vs {want}", brief.body);
    let as_object = get_reward(&mut c, json!([{"context": "I like short answers."}]));
    assert!(close(reward_of(&as_object), want));
    let detailed = get_reward(&mut c, json!([{"context": "I want every detail."}]));
    assert!(
        (reward_of(&detailed) - want).abs() > 1e-4,
        "two contexts gave the same reward"
    );

    // No label (OpenRLHF sends "" without --data.label_key): the router on the prompt alone.
    let unlabelled = get_reward(&mut c, json!([""]));
    assert!(close(reward_of(&unlabelled), v1_reward(&mut c, json!({}))));

    // A plain-string label is a user id: that user's adapted weights.
    let prior = json!({"prior": [4.0, 1.0, 1.0, 2.0, 0.0]}).to_string();
    assert_eq!(
        c.request("PUT", "/v1/users/ann", Some(&prior))
            .unwrap()
            .status,
        201
    );
    let ann = get_reward(&mut c, json!(["ann"]));
    assert!(close(
        reward_of(&ann),
        v1_reward(&mut c, json!({"user_id": "ann"}))
    ));
    let nobody = get_reward(&mut c, json!(["nobody"]));
    assert_eq!(nobody.status, 404, "{}", nobody.body);

    // The reply has OpenRLHF's fields; extra_logs carry each head's reward and weight.
    let v = brief.json();
    assert_eq!(v["scores"], v["rewards"]);
    let logs = v["extra_logs"].as_object().unwrap();
    assert_eq!(logs.len(), 2 * K);
    let weights: f64 = (0..K)
        .map(|k| logs[&format!("micro_weight{k}")][0].as_f64().unwrap())
        .sum();
    assert!(close(weights, 1.0), "{v}");
    let mixed: f64 = (0..K)
        .map(|k| {
            logs[&format!("micro_weight{k}")][0].as_f64().unwrap()
                * logs[&format!("micro_head{k}")][0].as_f64().unwrap()
        })
        .sum();
    assert!((mixed - want).abs() < 1e-5);

    // The backbone saw the conversation and the response, never template markup.
    let texts = backbone.texts.lock().unwrap();
    assert!(texts.iter().any(|t| t.ends_with(&format!("|| {RESPONSE}"))));
    assert!(texts.iter().all(|t| !t.contains("<|im_")), "{texts:?}");
    drop(texts);
    f.stop(server);
}

#[test]
fn several_queries_in_one_call_are_scored_in_order() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    let server = f.start(
        scorer(&backbone, BatchOptions::default()),
        Limits::default(),
    );
    let mut c = Client::new(server.addr, Some(&key));
    let responses = [
        "Nine minutes.",
        "Ask a chef.",
        "Put it in boiling water for 9 min.",
    ];
    let query: Vec<String> = responses.iter().map(|r| format!("{PROMPT}{r}")).collect();
    let body = json!({"query": query, "prompts": [PROMPT, PROMPT, PROMPT], "labels": ["", "", ""]});
    let r = c.post("/get_reward", &body.to_string()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let many = r.json();
    let v = c
        .post(
            "/v1/score",
            &json!({"prompt": messages(), "responses": responses}).to_string(),
        )
        .unwrap()
        .json();
    for i in 0..3 {
        assert!(close(
            many["rewards"][i].as_f64().unwrap(),
            v["rewards"][i].as_f64().unwrap()
        ));
    }
    f.stop(server);
}

#[test]
fn slime_gets_a_bare_number_equal_to_v1_score() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    let server = f.start(
        scorer(&backbone, BatchOptions::default()),
        Limits::default(),
    );
    let mut c = Client::new(server.addr, Some(&key));
    let want = v1_reward(&mut c, json!({"context": "Keep it formal."}));
    // The prompt as templated text and as messages; the response with its end token.
    for prompt in [json!(PROMPT), messages()] {
        let body = json!({"prompt": prompt, "response": format!("{RESPONSE}<|im_end|>"), "label": {"context": "Keep it formal."}});
        let r = c.post("/slime/reward", &body.to_string()).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let got: f64 = r.body.trim().parse().expect("a bare JSON number");
        assert!(close(got, want), "{got} vs {want}");
    }
    let bad = c
        .post("/slime/reward", &json!({"prompt": "hi"}).to_string())
        .unwrap();
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("response"));
    f.stop(server);
}

#[test]
fn the_key_may_come_as_http_basic_credentials() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    let server = f.start(
        scorer(&backbone, BatchOptions::default()),
        Limits::default(),
    );
    use base64::Engine as _;
    let basic = |user_pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };
    let body =
        json!({"query": [format!("{PROMPT}{RESPONSE}")], "prompts": [PROMPT], "labels": [""]})
            .to_string();
    for (auth, status) in [
        (basic(&format!("micro:{key}")), 200),
        (basic(&format!("{key}:")), 200),
        (basic("micro:mk_wrong"), 401),
    ] {
        let r = raw_post(server.addr, "/get_reward", &auth, &body);
        assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{auth}: {r}");
        assert!(r.contains("application/json"), "{r}");
    }
    f.stop(server);
}

/// A POST with the given Authorization header, as raw text (status line, headers, body).
fn raw_post(addr: std::net::SocketAddr, path: &str, authorization: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn malformed_trainer_calls_get_4xx_naming_the_field() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    let limits = Limits {
        max_texts: 2,
        ..Limits::default()
    };
    let server = f.start(scorer(&backbone, BatchOptions::default()), limits);
    let mut c = Client::new(server.addr, Some(&key));
    let cases = [
        (
            json!({"query": ["a", "b"], "prompts": ["a"]}),
            422,
            "`prompts` has 1 entries",
        ),
        (
            json!({"query": ["a"], "labels": ["{oops"]}),
            422,
            "labels[0]",
        ),
        (
            json!({"query": ["a"], "labels": [{"user_id": 3}]}),
            422,
            "labels[0].user_id",
        ),
        (json!({"query": ["a", "b", "c"]}), 413, "--max-texts"),
        (json!({"query": []}), 400, "`query` is empty"),
    ];
    for (body, status, needle) in cases {
        let r = c.post("/get_reward", &body.to_string()).unwrap();
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(needle), "{body}: {msg:?} lacks {needle:?}");
    }
    f.stop(server);
}

/// Rewards of `n` concurrent single-query clients (each its own response), in request order.
fn concurrent_rewards(addr: std::net::SocketAddr, key: &str, n: usize) -> Vec<f64> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    let mut c = Client::new(addr, Some(key));
                    let query = format!("{PROMPT}Answer number {i}.");
                    let label = json!({"context": format!("context {}", i % 3)}).to_string();
                    let body = json!({"query": [query], "prompts": [PROMPT], "labels": [label]});
                    reward_of(&c.post("/get_reward", &body.to_string()).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_text_requests_share_backbone_passes_and_get_the_same_answers() {
    let f = Fixture::new();
    let key = f.key("acme");
    // A pass that takes 30 ms lets the other requests queue behind it, as a real one does.
    let batched = BagBackbone::new(DIM, Duration::from_millis(30));
    let opts = BatchOptions {
        max_texts: 8,
        max_wait: Duration::from_millis(5),
        workers: 2,
    };
    let server = f.start(scorer(&batched, opts), Limits::default());
    let with = concurrent_rewards(server.addr, &key, 24);
    f.stop(server);

    let alone = BagBackbone::new(DIM, Duration::ZERO);
    let server = f.start(scorer(&alone, BatchOptions::OFF), Limits::default());
    let without = concurrent_rewards(server.addr, &key, 24);
    f.stop(server);

    for (a, b) in with.iter().zip(&without) {
        assert!(close(*a, *b), "batching changed a reward: {a} vs {b}");
    }
    // Unbatched, each request runs two calls of one text (router input, response).
    let calls = alone.calls.lock().unwrap().clone();
    assert_eq!((calls.len(), calls.iter().max()), (48, Some(&1)));
    let calls = batched.calls.lock().unwrap().clone();
    assert!(
        calls.len() < 24,
        "24 concurrent requests made {} backbone calls: {calls:?}",
        calls.len()
    );
    assert!(
        calls.iter().all(|&n| n <= 8),
        "a batch exceeded 8 texts: {calls:?}"
    );
    // All 24 responses were embedded; a router input (one prompt, three contexts) only once
    // per call that shared it.
    let texts = batched.texts.lock().unwrap().clone();
    let mut start = 0;
    for n in calls {
        let call = &texts[start..start + n];
        start += n;
        let distinct: std::collections::BTreeSet<&String> = call.iter().collect();
        assert_eq!(distinct.len(), n, "a call embedded a text twice: {call:?}");
    }
    let responses = texts
        .iter()
        .filter(|t| t.contains("|| Answer number"))
        .count();
    assert_eq!(responses, 24);
    assert!(
        texts.len() < 48,
        "no router input was shared: {} texts",
        texts.len()
    );
}

/// A backbone that panics is the server's fault: 500 with the JSON error body (the Python
/// client retries it), not a 4xx the client would take as its own; the server goes on serving.
#[test]
fn a_backbone_panic_is_a_500_not_the_clients_fault() {
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(DIM, Duration::ZERO);
    for batching in [BatchOptions::default(), BatchOptions::OFF] {
        let server = f.start(scorer(&backbone, batching), Limits::default());
        let mut c = Client::new(server.addr, Some(&key));
        let body = json!({"prompt": "Hi", "responses": [PANIC]}).to_string();
        let r = c.post("/v1/score", &body).unwrap();
        assert_eq!(r.status, 500, "{batching:?}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "internal", "{}", r.body);
        assert!(r.body.contains("panicked"), "{}", r.body);
        let r = c
            .post("/slime/reward", &json!({"response": PANIC}).to_string())
            .unwrap();
        assert_eq!(r.status, 500, "{batching:?}: {}", r.body);
        let ok = json!({"prompt": "Hi", "responses": ["Hello."]}).to_string();
        assert_eq!(c.post("/v1/score", &ok).unwrap().status, 200);
        f.stop(server);
    }
}

//! Helpers of the next-question tests: a server over the synthetic model, random candidate
//! pairs, and the route's request and the user's stored state as JSON.

#![allow(dead_code)] // each test file uses a different part

use crate::common::Fixture;
use micro_route::{Rate, UserState};
use micro_serve::bench::client::{Client, Reply};
use micro_serve::bench::{random_vec, synthetic_model};
use micro_serve::{AppState, Limits, Running, Scorer};
use rand::rngs::StdRng;
use serde_json::{json, Value};
use std::sync::Arc;

pub const DIM: usize = 8;
pub const K: usize = 4;
/// The experts a user's weights range over: the K heads and the gate.
pub const E: usize = K + 1;
pub const MODEL_SEED: u64 = 5;

pub fn model() -> micro_model::MixtureModel {
    synthetic_model(DIM, K, MODEL_SEED)
}

/// A server over the fixture's store with the synthetic model and the given Hedge rate.
pub fn start(f: &Fixture, scorer: Scorer, limits: Limits, rate: Rate) -> Running {
    let state = Arc::new(AppState::new(scorer, f.store.clone(), limits, rate));
    f.rt.block_on(micro_serve::start(state, "127.0.0.1:0"))
        .unwrap()
}

pub fn embedding_server(f: &Fixture, limits: Limits, rate: Rate) -> Running {
    start(f, Scorer::new(model()), limits, rate)
}

/// The gate of a request without a prompt (the synthetic model has a router and no table): an
/// even split over the heads, as the server weighs them.
pub fn even_gate() -> Vec<f32> {
    vec![(1.0 / K as f32).ln(); K]
}

/// Every expert's margin on each pair (the heads', then the gate's), as the server computes
/// them for a request without a prompt.
pub fn expert_margins(
    model: &micro_model::MixtureModel,
    first: &[f32],
    second: &[f32],
) -> Vec<f32> {
    let heads = micro_route::query::pair_margins(model, first, second).unwrap();
    let experts = micro_route::Experts::new(K, None);
    heads
        .chunks_exact(K)
        .flat_map(|m| experts.margins(m, &even_gate()))
        .collect()
}

/// Weights over the experts as weights over the heads, for a request without a prompt.
pub fn head_weights(w: &[f64]) -> Vec<f64> {
    let heads = micro_route::Experts::new(K, None).head_weights(w, &even_gate());
    heads.iter().map(|&v| v as f64).collect()
}

/// `n` candidate pairs of random embeddings scaled so that the heads are confident (margins
/// of a few nats), as JSON candidates and as the two [n, d] arrays.
pub fn random_pairs(rng: &mut StdRng, n: usize, scale: f32) -> (Vec<Value>, Vec<f32>, Vec<f32>) {
    let (mut first, mut second, mut cands) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let a: Vec<f32> = random_vec(rng, DIM).iter().map(|x| x * scale).collect();
        let b: Vec<f32> = random_vec(rng, DIM).iter().map(|x| x * scale).collect();
        cands.push(json!({"chosen_embedding": a, "rejected_embedding": b}));
        first.extend(a);
        second.extend(b);
    }
    (cands, first, second)
}

pub fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub fn error_message(r: &Reply) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The user's stored state as the server holds it (log weights are exact f64 in JSON).
pub fn stored_state(c: &mut Client, user: &str) -> UserState {
    let v = ok(c.get(&format!("/v1/users/{user}")).unwrap());
    let mut s = UserState::with_rate(&[1.0; E], Rate::Anytime);
    s.log_weights = f64s(&v["log_weights"]);
    s.updates = v["updates"].as_u64().unwrap();
    s
}

pub fn ask(c: &mut Client, user: &str, body: &Value) -> Value {
    ok(c.post(
        &format!("/v1/users/{user}/next-question"),
        &body.to_string(),
    )
    .unwrap())
}

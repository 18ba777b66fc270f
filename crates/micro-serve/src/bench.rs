//! The load benchmark behind `micro bench serve`: a server in process on loopback with a
//! synthetic model, C blocking keep-alive clients on their own threads, N requests each for
//! scoring (precomputed embeddings) and feedback; reports requests/s and latency percentiles.

use crate::auth;
use crate::client::Client;
use crate::engine::Engine;
use crate::server::{AppState, Limits};
use crate::store::{self, SqliteSync};
use micro_model::MixtureModel;
use micro_route::Rate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A random MiCRo model (MLP router with 128 hidden units, as the paper) for tests and benches.
pub fn synthetic_model(dim: usize, k: usize, seed: u64) -> MixtureModel {
    micro_route::fixture::random_model(dim, k, Some(128), seed)
}

/// A random vector of width `d` as a JSON array.
pub fn random_vec(rng: &mut impl Rng, d: usize) -> Vec<f32> {
    (0..d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// A reproducible random vector from a seed (for callers without a `rand` dependency).
pub fn seeded_vec(seed: u64, d: usize) -> Vec<f32> {
    random_vec(&mut StdRng::seed_from_u64(seed), d)
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Requests per phase.
    pub requests: usize,
    pub concurrency: usize,
    pub dim: usize,
    pub k: usize,
    /// Responses per scoring request.
    pub responses: usize,
    /// Distinct users the feedback is spread over.
    pub users: usize,
    /// State store URL; `None`: a fresh SQLite file in a temporary folder.
    pub db: Option<String>,
    pub sync: SqliteSync,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            requests: 5000,
            concurrency: 8,
            dim: 768,
            k: 10,
            responses: 4,
            users: 100,
            db: None,
            sync: SqliteSync::Normal,
        }
    }
}

/// One phase's figures.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} {:>7} req  {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  errors {}",
            self.name, self.requests, self.per_second, self.p50_ms, self.p99_ms, self.max_ms, self.errors
        )
    }
}

/// Runs both phases and returns their figures; `db_dir` holds the SQLite file when no URL is given.
pub fn run(opts: &BenchOptions, db_dir: &std::path::Path) -> Result<Vec<BenchResult>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let url = opts
        .db
        .clone()
        .unwrap_or_else(|| db_dir.join("bench.sqlite").display().to_string());
    let (running, key) = rt.block_on(async {
        let store = store::open(&url, opts.sync)
            .await
            .map_err(|e| format!("cannot open the state store {url}: {e}"))?;
        let tenant = format!("bench-{}", store::now_ms());
        let (key, _) = auth::add_key(store.as_ref(), &tenant, "bench").await?;
        let engine = Engine::new(synthetic_model(opts.dim, opts.k, 7), None)?;
        let state = Arc::new(AppState::new(
            engine,
            store,
            Limits::default(),
            Rate::Anytime,
        ));
        let running = crate::start(state, "127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on loopback: {e}"))?;
        Ok::<_, String>((running, key))
    })?;
    let mut rng = StdRng::seed_from_u64(11);
    let score_bodies: Vec<String> = (0..16)
        .map(|_| {
            let responses: Vec<Vec<f32>> = (0..opts.responses).map(|_| random_vec(&mut rng, opts.dim)).collect();
            serde_json::json!({"context_embedding": random_vec(&mut rng, opts.dim), "response_embeddings": responses}).to_string()
        })
        .collect();
    let feedback_bodies: Vec<String> = (0..16)
        .map(|_| {
            serde_json::json!({"chosen_embedding": random_vec(&mut rng, opts.dim), "rejected_embedding": random_vec(&mut rng, opts.dim)})
                .to_string()
        })
        .collect();
    let addr = running.addr;
    let label = format!("score {} responses (d={})", opts.responses, opts.dim);
    let score = phase(&label, opts, addr, &key, |i| {
        (
            "/v1/score".to_owned(),
            score_bodies[i % score_bodies.len()].clone(),
        )
    });
    let users = opts.users.max(1);
    let label = format!(
        "feedback ({})",
        if opts.db.is_some() {
            "given store"
        } else {
            "sqlite"
        }
    );
    let feedback = phase(&label, opts, addr, &key, |i| {
        (
            format!("/v1/users/u{}/feedback", i % users),
            feedback_bodies[i % feedback_bodies.len()].clone(),
        )
    });
    rt.block_on(running.stop()).map_err(|e| e.to_string())?;
    Ok(vec![score, feedback])
}

/// Sends `opts.requests` POSTs from `opts.concurrency` threads; request i is `make(i)`.
fn phase(
    name: &str,
    opts: &BenchOptions,
    addr: std::net::SocketAddr,
    key: &str,
    make: impl Fn(usize) -> (String, String) + Sync,
) -> BenchResult {
    let c = opts.concurrency.max(1);
    let n = opts.requests;
    // Warm the connections and code paths so the figures are steady-state.
    let mut warm = Client::new(addr, Some(key));
    for i in 0..(n / 20).min(200) {
        let (path, body) = make(n + i);
        let _ = warm.post(&path, &body);
    }
    let start = Instant::now();
    let per_thread: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..c)
            .map(|t| {
                let make = &make;
                s.spawn(move || {
                    let mut client = Client::new(addr, Some(key));
                    let (mut lat, mut errors) = (Vec::with_capacity(n / c + 1), 0);
                    for i in (t..n).step_by(c) {
                        let (path, body) = make(i);
                        let t0 = Instant::now();
                        match client.post(&path, &body) {
                            Ok(r) if r.status == 200 => lat.push(t0.elapsed()),
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let errors = per_thread.iter().map(|p| p.1).sum();
    let mut lat: Vec<f64> = per_thread
        .into_iter()
        .flat_map(|p| p.0)
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() - 1) as f64 * q).round() as usize]
        }
    };
    BenchResult {
        name: name.to_owned(),
        requests: n,
        errors,
        seconds,
        per_second: lat.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    }
}

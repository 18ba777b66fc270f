//! The load benchmarks behind `micro bench serve`: a server in process on loopback with a
//! synthetic model, C blocking keep-alive clients on their own threads, N requests in all.
//! [`run`] measures scoring (precomputed embeddings) and feedback; [`run_text`] measures text
//! scoring through a real backbone as an RL trainer calls it (single-query `/get_reward`
//! calls), with and without batching. Both report requests/s and latency percentiles.

use super::client::Client;
use super::{random_vec, synthetic_model, BenchError};
use crate::store::{self, SqliteSync};
use crate::{AppState, BatchOptions, Limits, Scorer, StoreOptions};
use micro_embed::Backbone;
use micro_route::Rate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// SQLite commit durability, overriding the URL's (`None`: the URL's, else normal).
    pub sync: Option<SqliteSync>,
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
            sync: None,
        }
    }
}

/// One phase's figures.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub name: String,
    /// What one request scores: `req` in general, `texts` for single-query text calls.
    pub unit: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU seconds the process used in the phase (server and clients), when known: on a
    /// machine shared with other work, requests per CPU second compare runs that got different
    /// shares of the cores.
    pub cpu_seconds: Option<f64>,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} {:>7} {u:<5} {:>9.1} {u}/s  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  errors {}",
            self.name, self.requests, self.per_second, self.p50_ms, self.p99_ms, self.max_ms, self.errors, u = self.unit
        )?;
        match self.cpu_seconds {
            Some(cpu) => write!(
                f,
                "  cpu {cpu:.1} s ({:.1} {}/cpu-s)",
                self.requests as f64 / cpu,
                self.unit
            ),
            None => Ok(()),
        }
    }
}

/// Runs both phases and returns their figures; `db_dir` holds the SQLite file when no URL is given.
pub fn run(opts: &BenchOptions, db_dir: &std::path::Path) -> Result<Vec<BenchResult>, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io("cannot start the async runtime", e))?;
    let url = opts
        .db
        .clone()
        .unwrap_or_else(|| db_dir.join("bench.sqlite").display().to_string());
    let with_sync = opts
        .sync
        .map_or(url.clone(), |s| store::with_sqlite_sync(&url, s));
    let scorer = Scorer::new(synthetic_model(opts.dim, opts.k, 7));
    let (running, key) = rt.block_on(start_bench_server(scorer, &with_sync))?;
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
    let (n, c) = (opts.requests, opts.concurrency);
    let score = phase(&label, n, c, addr, &key, |i| {
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
    let feedback = phase(&label, n, c, addr, &key, |i| {
        (
            format!("/v1/users/u{}/feedback", i % users),
            feedback_bodies[i % feedback_bodies.len()].clone(),
        )
    });
    rt.block_on(running.stop())
        .map_err(|e| BenchError::Io("the bench server failed", e))?;
    Ok(vec![score, feedback])
}

/// Sends `n` POSTs from `c` threads; request i is `make(i)`.
fn phase(
    name: &str,
    n: usize,
    c: usize,
    addr: std::net::SocketAddr,
    key: &str,
    make: impl Fn(usize) -> (String, String) + Sync,
) -> BenchResult {
    let c = c.max(1);
    // Warm the connections and code paths so the figures are steady-state.
    let mut warm = Client::new(addr, Some(key));
    for i in 0..(n / 20).min(200) {
        let (path, body) = make(n + i);
        let _ = warm.post(&path, &body);
    }
    let (start, cpu0) = (Instant::now(), cpu_seconds());
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
    let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
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
        unit: "req",
        requests: n,
        errors,
        seconds,
        per_second: lat.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        cpu_seconds: cpu,
    }
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, in the kernel's
/// usual 100 ticks per second); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Options of the text-scoring benchmark.
#[derive(Clone, Debug)]
pub struct TextBenchOptions {
    /// Requests per (clients, batching) phase.
    pub requests: usize,
    /// Concurrent single-query clients, one phase each.
    pub clients: Vec<usize>,
    /// Heads of the synthetic model (its width is the backbone's).
    pub k: usize,
    /// The batching of the batched phases.
    pub batching: BatchOptions,
    /// Consecutive requests that share a prompt and a label, as a trainer that samples
    /// several responses per prompt sends them (1: every prompt distinct, the worst case).
    pub samples_per_prompt: usize,
}

impl Default for TextBenchOptions {
    fn default() -> Self {
        TextBenchOptions {
            requests: 320,
            clients: vec![1, 8, 32],
            k: 10,
            batching: BatchOptions::default(),
            samples_per_prompt: 1,
        }
    }
}

/// Text scoring as an RL trainer drives it: each client sends OpenRLHF-shaped `/get_reward`
/// calls with one query (a prompt, a response, a context label), so each call needs two
/// backbone texts (the router input and the response feature). One phase per client count,
/// without batching, then with it.
pub fn run_text(
    opts: &TextBenchOptions,
    backbone: Arc<dyn Backbone>,
    db_dir: &std::path::Path,
) -> Result<Vec<BenchResult>, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io("cannot start the async runtime", e))?;
    let url = db_dir.join("bench-text.sqlite").display().to_string();
    let model = synthetic_model(backbone.dim(), opts.k, 7);
    let group = opts.samples_per_prompt.max(1) as u64;
    let bodies: Vec<String> = (0..opts.requests as u64 + 64)
        .map(|i| get_reward_body(i / group, i))
        .collect();
    let mut results = Vec::new();
    for (mode, batching) in [("off", BatchOptions::OFF), ("on", opts.batching)] {
        for &c in &opts.clients {
            let scorer = Scorer::with_backbone(model.clone(), backbone.clone(), batching)?;
            let (running, key) = rt.block_on(start_bench_server(scorer, &url))?;
            let name = format!("text, {c:>2} clients, batching {mode}");
            let mut r = phase(&name, opts.requests, c, running.addr, &key, |i| {
                ("/get_reward".to_owned(), bodies[i % bodies.len()].clone())
            });
            r.unit = "texts";
            rt.block_on(running.stop())
                .map_err(|e| BenchError::Io("the bench server failed", e))?;
            results.push(r);
        }
    }
    Ok(results)
}

async fn start_bench_server(
    scorer: Scorer,
    url: &str,
) -> Result<(crate::Running, String), BenchError> {
    let db = StoreOptions {
        db: url.to_owned(),
        sqlite_sync: None,
    };
    let store = db.open().await?;
    let tenant = format!("bench-{}", store::now_ms());
    let (key, _) = crate::add_key(store.as_ref(), &tenant, "bench").await?;
    let state = Arc::new(AppState::new(
        scorer,
        store,
        Limits::default(),
        Rate::Anytime,
    ));
    let running = crate::start(state, "127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Io("cannot listen on loopback", e))?;
    Ok((running, key))
}

const WORDS: [&str; 32] = [
    "the", "answer", "should", "explain", "water", "history", "simple", "garden", "recipe",
    "travel", "library", "morning", "friend", "teacher", "number", "energy", "market", "health",
    "weather", "river", "mountain", "animal", "language", "computer", "music", "careful",
    "example", "problem", "reason", "city", "because", "quality",
];

/// `n` words drawn with `rng`, as a sentence.
fn sentence(rng: &mut StdRng, n: usize) -> String {
    let words: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    format!("{}.", words.join(" "))
}

/// A single-query `/get_reward` body: a ChatML prompt of about 12 words and one of four
/// contexts as the label (both from `prompt_seed`), and a response of about 24 words (from
/// `response_seed`).
pub fn get_reward_body(prompt_seed: u64, response_seed: u64) -> String {
    const CONTEXTS: [&str; 4] = [
        "I like short answers.",
        "I want every detail.",
        "Keep it formal.",
        "Make it playful.",
    ];
    let prompt = format!(
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        sentence(&mut StdRng::seed_from_u64(prompt_seed), 12)
    );
    let response_words = sentence(&mut StdRng::seed_from_u64(response_seed ^ (1 << 40)), 24);
    let response = format!("{response_words}<|im_end|>");
    let context = CONTEXTS[prompt_seed as usize % CONTEXTS.len()];
    let label = serde_json::json!({ "context": context }).to_string();
    serde_json::json!({"query": [format!("{prompt}{response}")], "prompts": [prompt], "labels": [label]})
        .to_string()
}

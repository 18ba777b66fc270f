//! `micro adapt`: Stage 2, context-aware router learning from B labelled pairs per attribute;
//! `micro bench adapt`: its time, and the time of one online feedback update.

use anyhow::Context;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::accuracy::{average, by_attribute, routed_credit};
use micro_route::fixture::{random_cache, random_model};
use micro_route::{adapt, draw_budget, sample_budget, AdaptConfig, Evidence, Rate, UserState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct AdaptArgs {
    /// Stage 1 model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Cache whose training pairs (of some attributes at least) carry a `context`; its test
    /// pairs are evaluated. Attributes without context-labelled training pairs (binary-only
    /// Stage 1 data) are left out of the budget.
    #[arg(long)]
    pub cache: PathBuf,
    /// Labelled pairs per attribute (B), drawn from its context-labelled training pairs.
    #[arg(long, default_value_t = 50)]
    pub budget: usize,
    /// Hedge temperature tau (> 0; the paper uses 1e-3 or 1e-4).
    #[arg(long, default_value_t = 1e-3)]
    pub tau: f64,
    /// Output model folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak AdamW learning rate of the router (not given by the paper; see micro-route's adapt).
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f32,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Train only the router's output layer (more robust to large --lr on few pairs).
    #[arg(long)]
    pub output_layer_only: bool,
    /// Seeds the budget sample and the minibatch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Whose losses form a pair's Hedge label: `context` (summed over the budget pairs with the
    /// same context text) or `pair` (its own, Algorithm 1 as printed).
    #[arg(long, default_value_t = Evidence::Context)]
    pub evidence: Evidence,
}

pub fn run(a: AdaptArgs) -> anyhow::Result<()> {
    let model = MixtureModel::load(&a.model)
        .with_context(|| format!("loading model {}", a.model.display()))?;
    let cache = EmbeddingCache::load(&a.cache)
        .with_context(|| format!("loading cache {}", a.cache.display()))?;
    let budget = draw_budget(&cache, a.budget, a.seed)?;
    if !budget.left_to_stage1.is_empty() {
        println!(
            "budget drawn from {} attribute(s) with context-labelled training pairs; left to Stage 1 (no context): {}",
            budget.groups.len(),
            counts(&budget.left_to_stage1)
        );
    }
    let idx = budget.indices();
    let cfg = AdaptConfig {
        tau: a.tau,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        weight_decay: a.weight_decay,
        seed: a.seed,
        // One thread measured faster than two at these sizes (`micro bench adapt`).
        threads: 1,
        train_hidden: !a.output_layer_only,
        evidence: a.evidence,
        ..AdaptConfig::default()
    };
    let (adapted, report) = adapt(&model, &cache, &idx, &cfg)?;
    if let Some(why) = &report.skipped {
        println!("router unchanged: {why}");
    }
    println!(
        "adapted on {} pairs ({}) in {:.1} ms",
        report.pairs,
        counts(&report.per_attribute),
        report.seconds * 1e3
    );
    for (e, s) in report.epochs.iter().enumerate() {
        println!(
            "  epoch {:>2}: cross-entropy {:.4}  label entropy {:.4}  router agrees with labels {:.1}%",
            e + 1,
            s.cross_entropy,
            s.target_entropy,
            100.0 * s.agreement
        );
    }
    print_test_accuracy(&model, &adapted, &cache);
    adapted
        .save(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!("wrote {}", a.output.display());
    Ok(())
}

fn counts(per: &BTreeMap<String, usize>) -> String {
    per.iter()
        .map(|(a, n)| format!("{a}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Test-split accuracy per attribute, each pair routed by its own prompt embedding.
fn print_test_accuracy(before: &MixtureModel, after: &MixtureModel, cache: &EmbeddingCache) {
    let test = micro_eval::SplitSel::Test.indices(cache);
    if test.is_empty() {
        println!("no test pairs in the cache: nothing to evaluate");
        return;
    }
    let acc = |m: &MixtureModel| by_attribute(cache, &test, &routed_credit(m, cache, &test));
    let (b, a) = (acc(before), acc(after));
    println!(
        "test accuracy    {:>8} {:>8} {:>6}",
        "stage 1", "adapted", "pairs"
    );
    for (attr, x) in &b {
        let y = a.get(attr).copied().unwrap_or_default();
        println!(
            "  {attr:<14} {:>8.4} {:>8.4} {:>6}",
            x.value(),
            y.value(),
            x.n
        );
    }
    println!(
        "  {:<14} {:>8.4} {:>8.4}",
        "average",
        average(&b),
        average(&a)
    );
}

#[derive(clap::Args)]
pub struct BenchAdaptArgs {
    #[arg(long, default_value_t = 768)]
    pub dim: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[arg(long, default_value_t = 5)]
    pub attributes: usize,
    /// Pairs per attribute (B).
    #[arg(long, default_value_t = 50)]
    pub budget: usize,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Router hidden units (0: linear router).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Timed adaptations (after one warm-up).
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
    /// Timed online updates.
    #[arg(long, default_value_t = 1_000_000)]
    pub updates: usize,
}

pub fn bench(a: BenchAdaptArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.k >= 2 && a.dim >= 1 && a.attributes >= 1 && a.budget >= 1,
        "--k must be >= 2 and the sizes >= 1"
    );
    let hidden = (a.hidden > 0).then_some(a.hidden);
    let model = random_model(a.dim, a.k, hidden, 1);
    let cache = random_cache(a.dim, a.attributes, a.budget, 2);
    let idx = sample_budget(&cache, a.budget, 0)?;
    let cfg = AdaptConfig {
        epochs: a.epochs,
        threads: rayon::current_num_threads(),
        ..AdaptConfig::default()
    };
    // `--threads N` (global flag) sets the pool the products may use.
    adapt(&model, &cache, &idx, &cfg)?;
    let mut ms = Vec::with_capacity(a.repeats.max(1));
    for _ in 0..a.repeats.max(1) {
        let t = Instant::now();
        std::hint::black_box(adapt(&model, &cache, &idx, &cfg)?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "adapt: B = {} x {} attributes, d = {}, K = {}, router {}, {} epochs, {} threads: median {:.2} ms, min {:.2} ms per adaptation ({} runs)",
        a.budget,
        a.attributes,
        a.dim,
        a.k,
        hidden.map_or("linear".to_string(), |h| format!("mlp {h}")),
        a.epochs,
        rayon::current_num_threads(),
        ms[ms.len() / 2],
        ms[0],
        ms.len()
    );
    bench_online(&model, &cache, a.updates.max(1));
    Ok(())
}

/// One Hedge step from precomputed margins, and the same including the K head dot products a
/// server does per feedback pair.
fn bench_online(model: &MixtureModel, cache: &EmbeddingCache, updates: usize) {
    let k = model.k();
    let pool = 1024.min(cache.len());
    let all: Vec<usize> = (0..pool).collect();
    let margins = micro_route::likelihood::head_margins(model, cache, &all);
    let mut state = UserState::with_rate(&vec![1.0 / k as f32; k], Rate::Anytime);
    let t = Instant::now();
    for i in 0..updates {
        state.update(&margins[(i % pool) * k..(i % pool + 1) * k]);
    }
    let per_update = t.elapsed().as_secs_f64() * 1e6 / updates as f64;
    std::hint::black_box(&state);
    let diffs = cache.diff();
    let n = updates.min(200_000);
    let t = Instant::now();
    for i in 0..n {
        state.update(&model.margins(diffs.row(i % pool)));
    }
    let with_margins = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "online: {per_update:.3} us per Hedge update (K = {k}); {with_margins:.3} us including the K margins at d = {} ({} and {n} updates)",
        model.config.dim, updates
    );
}

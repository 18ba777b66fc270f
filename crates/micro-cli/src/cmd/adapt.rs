//! `micro adapt`: Stage 2, context-aware router learning from B labelled pairs per attribute,
//! drawn at random or chosen one at a time (`--select active`);
//! `micro bench adapt`: its time, and the time of one online feedback update;
//! `micro bench select`: the time to choose the next pair, and simulated users asked by the
//! rule or at random.

use anyhow::Context;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::accuracy::{average, by_attribute, routed_credit};
use micro_route::fixture::{random_cache, random_model};
use micro_route::query::{
    choose_budget, next_question, pair_margins, simulate_users, ActiveBudget, Selection, SimConfig,
};
use micro_route::{adapt, draw_budget, sample_budget, AdaptConfig, Evidence, Rate, UserState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// Seeds the budget sample (or the active choice's ties) and the minibatch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How each attribute's B pairs are picked from its context-labelled training pairs:
    /// `random` (the paper) or `active` (one at a time, the pair whose answer is expected to
    /// tell most about which head the context follows; each label is read once its pair is
    /// chosen).
    #[arg(long, default_value_t = Selection::Random)]
    pub select: Selection,
    /// Also fit the router on the other training pairs that share a labelled pair's context
    /// text, with that context's Hedge label (their own labels are never read); `false` fits
    /// the B labelled pairs alone (Algorithm 1). Only with `--evidence context`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pool_inputs: bool,
    /// Write the pairs used (row, id, attribute and, for `--select active`, the information
    /// of each when chosen) to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub chosen: Option<PathBuf>,
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
    let (idx, left_to_stage1, picked) = match a.select {
        Selection::Random => {
            let b = draw_budget(&cache, a.budget, a.seed)?;
            (b.indices(), b.left_to_stage1, None)
        }
        Selection::Active => {
            let b = choose_budget(&model, &cache, a.budget, a.seed)?;
            print_active(&b, &model);
            (b.indices(), b.left_to_stage1.clone(), Some(b))
        }
    };
    if !left_to_stage1.is_empty() {
        println!(
            "budget {} from attribute(s) with context-labelled training pairs; left to Stage 1 (no context): {}",
            if picked.is_some() { "chosen" } else { "drawn" },
            counts(&left_to_stage1)
        );
    }
    if let Some(path) = &a.chosen {
        write_chosen(path, &cache, &idx, picked.as_ref())?;
    }
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
        // Pool inputs take their labels from the context's evidence: none with per-pair evidence.
        pool_inputs: a.pool_inputs && a.evidence == Evidence::Context,
        ..AdaptConfig::default()
    };
    let (mut adapted, report) = adapt(&model, &cache, &idx, &cfg)?;
    if report.skipped.is_none() {
        adapted.training_mut()["stage2"]["selection"] = a.select.to_string().into();
    }
    if let Some(why) = &report.skipped {
        println!("router unchanged: {why}");
    }
    println!(
        "adapted on {} pairs ({}){} in {:.1} ms",
        report.pairs,
        counts(&report.per_attribute),
        if report.pool_pairs > 0 {
            format!(
                ", and the inputs of {} unlabelled pairs sharing their contexts",
                report.pool_pairs
            )
        } else {
            String::new()
        },
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

/// What the active choice asked, per attribute.
fn print_active(b: &ActiveBudget, model: &MixtureModel) {
    println!("pairs chosen actively (information of each answer about the heads, in nats):");
    for (attr, g) in &b.groups {
        let info: Vec<f64> = g.picks.iter().map(|p| p.information).collect();
        let (first, last) = (info.first().copied(), info.last().copied());
        println!(
            "  {attr:<14} {} of {} pairs; information {:.3} at the first question, {:.3} at the last, {:.2} in all",
            g.picks.len(),
            g.pool,
            first.unwrap_or(0.0),
            last.unwrap_or(0.0),
            info.iter().sum::<f64>()
        );
        println!(
            "  {:<14} heads before: {}; after the answers: {}",
            "",
            top_heads(&g.prior, model.k()),
            top_heads(&g.posterior, model.k())
        );
    }
}

/// The heads with the most weight, e.g. `h3 0.81, h1 0.12`.
fn top_heads(w: &[f32], k: usize) -> String {
    let mut order: Vec<usize> = (0..k.min(w.len())).collect();
    order.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    order
        .iter()
        .take(3)
        .map(|&h| format!("h{h} {:.2}", w[h]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pairs used, as JSON: row, id, attribute, and the information when chosen (active).
fn write_chosen(
    path: &Path,
    cache: &EmbeddingCache,
    idx: &[usize],
    picked: Option<&ActiveBudget>,
) -> anyhow::Result<()> {
    let info: BTreeMap<usize, f64> = picked
        .map(|b| {
            b.groups
                .values()
                .flat_map(|g| g.picks.iter().map(|p| (p.row, p.information)))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<serde_json::Value> = idx
        .iter()
        .map(|&i| {
            let p = &cache.pairs[i];
            serde_json::json!({
                "row": i, "id": p.id, "attribute": p.group(),
                "information": info.get(&i),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&rows)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote the {} chosen pairs to {}", idx.len(), path.display());
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
        model.config().dim, updates
    );
}

#[derive(clap::Args)]
pub struct BenchSelectArgs {
    /// Candidate pairs to choose from.
    #[arg(long, default_value_t = 1000)]
    pub candidates: usize,
    #[arg(long, default_value_t = 768)]
    pub dim: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Timed choices (after one warm-up).
    #[arg(long, default_value_t = 200)]
    pub repeats: usize,
    /// Simulated users, each answering by one head (0: timing only).
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Probability that a simulated user answers against their head.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Questions asked at most per user and way of asking.
    #[arg(long, default_value_t = 100)]
    pub max_answers: usize,
    /// The users' update rule: `anytime` (the server's default Hedge rate) or a fixed eta
    /// (1 = the Bayesian posterior).
    #[arg(long, default_value = "anytime")]
    pub rate: String,
    /// Simulate with this model's heads (default: random heads of --dim and --k) ...
    #[arg(long, requires = "cache")]
    pub model: Option<PathBuf>,
    /// ... on this cache's pairs: its train split as candidates, its test split held out.
    #[arg(long, requires = "model")]
    pub cache: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `micro bench select`: the time to choose the next pair, then simulated users.
pub fn bench_select(a: BenchSelectArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.k >= 2 && a.dim >= 1 && a.candidates >= 1,
        "--k must be >= 2, --dim and --candidates >= 1"
    );
    time_choice(&a)?;
    if a.users > 0 {
        simulate(&a)?;
    }
    Ok(())
}

/// One choice among `--candidates` pairs from their response embeddings (the K margins of
/// every pair, then the rule), and from margins already computed.
fn time_choice(a: &BenchSelectArgs) -> anyhow::Result<()> {
    let model = random_model(a.dim, a.k, None, 1);
    let cache = random_cache(a.dim, 1, a.candidates, 2);
    let state = UserState::with_rate(&vec![1.0 / a.k as f32; a.k], Rate::Anytime);
    let (first, second) = (&cache.chosen.data, &cache.rejected.data);
    let mut total = Vec::with_capacity(a.repeats.max(1));
    let mut rule = Vec::with_capacity(a.repeats.max(1));
    for rep in 0..=a.repeats.max(1) {
        let t = Instant::now();
        let margins = pair_margins(&model, first, second)?;
        let t_rule = Instant::now();
        std::hint::black_box(next_question(&state, &margins, rep as u64)?);
        if rep > 0 {
            rule.push(t_rule.elapsed().as_secs_f64() * 1e3);
            total.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let ((tm, tmin), (rm, rmin)) = (med(&mut total), med(&mut rule));
    println!(
        "select: next pair among {} candidates, d = {}, K = {}, one thread: median {tm:.3} ms (min {tmin:.3}) from response embeddings; {rm:.3} ms (min {rmin:.3}) of it the rule on precomputed margins ({} runs)",
        a.candidates, a.dim, a.k, total.len()
    );
    Ok(())
}

/// Simulated users asked by the rule and at random (`micro_route::query::simulate`).
fn simulate(a: &BenchSelectArgs) -> anyhow::Result<()> {
    let rate = match a.rate.as_str() {
        "anytime" => Rate::Anytime,
        eta => Rate::Fixed(
            eta.parse::<f64>()
                .ok()
                .filter(|e| *e > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--rate {eta:?}: use `anytime` or a positive number (fixed eta)"
                    )
                })?,
        ),
    };
    let (candidates, held_out, k, source) = simulation_pairs(a)?;
    let cfg = SimConfig {
        users: a.users,
        noise: a.noise,
        max_answers: a.max_answers,
        rate,
        seed: a.seed,
        ..SimConfig::default()
    };
    let bar = super::bar(1, "{spinner} simulating users {elapsed}");
    let r = simulate_users(&candidates, &held_out, k, &cfg)?;
    bar.finish_and_clear();
    let head_acc = r.users.iter().map(|u| u.head_accuracy).sum::<f64>() / r.users.len() as f64;
    println!(
        "simulated users: {} answering by one of {k} heads ({source}) with noise {}, rate {:?}, {} candidates, {} held-out pairs; their heads' accuracy {head_acc:.3}",
        a.users,
        a.noise,
        rate,
        candidates.len() / k,
        held_out.len() / k
    );
    println!(
        "answers to reach {:.0}% of the head's accuracy (mean ± std over users; not reached within {} counts {}):",
        100.0 * cfg.target,
        a.max_answers,
        a.max_answers + 1
    );
    println!(
        "  suggested questions {:.1} ± {:.1} (reached by {}/{})",
        r.suggested_mean, r.suggested_std, r.suggested_reached, a.users
    );
    println!(
        "  random questions    {:.1} ± {:.1} (reached by {}/{})",
        r.random_mean, r.random_std, r.random_reached, a.users
    );
    println!(
        "  fewer answers with suggested questions for {} users, as many for {}, more for {}",
        r.wins, r.ties, r.losses
    );
    Ok(())
}

/// Width of the random pairs of the simulation without a model.
const SIM_DIM: usize = 32;

/// (candidate margins, held-out margins, K, description) for the simulation.
fn simulation_pairs(a: &BenchSelectArgs) -> anyhow::Result<(Vec<f32>, Vec<f32>, usize, String)> {
    let (model, cache, source) = match (&a.model, &a.cache) {
        (Some(m), Some(c)) => {
            let model =
                MixtureModel::load(m).with_context(|| format!("loading model {}", m.display()))?;
            let cache = EmbeddingCache::load(c)
                .with_context(|| format!("loading cache {}", c.display()))?;
            model.check_cache(&cache.meta).map_err(|e| {
                anyhow::anyhow!(
                    "model {} does not fit cache {}: {e}",
                    m.display(),
                    c.display()
                )
            })?;
            (model, cache, format!("{} on {}", m.display(), c.display()))
        }
        _ => {
            // Random heads in 32 dimensions, scaled so that their margins have a standard
            // deviation of 2.5 (sigma(2.5) = 0.92: about as sure as a user who is right 90% of
            // the time).
            let mut model = random_model(SIM_DIM, a.k, None, 3);
            let cache = random_cache(SIM_DIM, 2, a.candidates, 4);
            let all: Vec<usize> = (0..cache.len()).collect();
            let m = micro_route::likelihood::head_margins(&model, &cache, &all);
            let sd = (m.iter().map(|v| (v * v) as f64).sum::<f64>() / m.len() as f64).sqrt();
            let scale = if sd > 0.0 { (2.5 / sd) as f32 } else { 1.0 };
            model.scale_heads(scale);
            let source = format!("random heads in {SIM_DIM} dimensions, margins of sd 2.5");
            (model, cache, source)
        }
    };
    let k = model.k();
    anyhow::ensure!(k >= 2, "the simulation needs a model with at least 2 heads");
    // Random caches have no split: their first attribute is the pool, the second held out.
    let split = |train: bool| -> Vec<usize> {
        if a.model.is_some() {
            cache.indices(|p| p.is_train() == train)
        } else {
            (0..cache.len())
                .filter(|&i| (cache.pairs[i].group() == "attr0") == train)
                .collect()
        }
    };
    let (pool, held) = (split(true), split(false));
    anyhow::ensure!(
        !pool.is_empty() && !held.is_empty(),
        "the simulation needs training pairs (candidates) and test pairs (held out) in the cache"
    );
    let margins = |idx: &[usize]| micro_route::likelihood::head_margins(&model, &cache, idx);
    Ok((margins(&pool), margins(&held), k, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, select: Selection, chosen: Option<PathBuf>) -> AdaptArgs {
        AdaptArgs {
            model: dir.join("model"),
            cache: dir.join("cache"),
            budget: 6,
            tau: 1e-3,
            output: dir.join(format!("adapted-{select}")),
            epochs: 2,
            batch_size: 32,
            lr: 3e-3,
            weight_decay: 0.0,
            output_layer_only: false,
            seed: 1,
            evidence: Evidence::Context,
            select,
            pool_inputs: true,
            chosen,
        }
    }

    #[test]
    fn adapt_chooses_actively_writes_the_choice_and_records_it() {
        let dir = tempfile::tempdir().unwrap();
        random_model(6, 3, Some(4), 1)
            .save(&dir.path().join("model"))
            .unwrap();
        random_cache(6, 2, 30, 2)
            .save(&dir.path().join("cache"), micro_cache::Dtype::F32)
            .unwrap();
        let chosen = dir.path().join("chosen.json");
        run(args(dir.path(), Selection::Active, Some(chosen.clone()))).unwrap();
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&chosen).unwrap()).unwrap();
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().all(|r| r["information"].as_f64().is_some()));
        let adapted = MixtureModel::load(&dir.path().join("adapted-active")).unwrap();
        let stage2 = &adapted.config().training["stage2"];
        assert_eq!(stage2["selection"], "active");
        assert_eq!(stage2["pool_pairs"], 48);
        // Random selection writes no information; a budget above a pool is refused.
        run(args(dir.path(), Selection::Random, Some(chosen.clone()))).unwrap();
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&chosen).unwrap()).unwrap();
        assert!(rows.iter().all(|r| r["information"].is_null()));
        let mut too_many = args(dir.path(), Selection::Active, None);
        too_many.budget = 31;
        let e = run(too_many).unwrap_err().to_string();
        assert!(e.contains("fewer than the budget 31"), "{e}");
    }

    #[test]
    fn bench_select_simulation_pairs_come_from_a_model_and_cache() {
        let a = BenchSelectArgs {
            candidates: 50,
            dim: 8,
            k: 3,
            repeats: 1,
            users: 3,
            noise: 0.1,
            max_answers: 5,
            rate: "1".into(),
            model: None,
            cache: None,
            seed: 0,
        };
        let (cand, held, k, _) = simulation_pairs(&a).unwrap();
        assert_eq!((cand.len(), held.len(), k), (150, 150, 3));
        bench_select(a).unwrap();
    }
}

//! The Stage 2 benchmarks behind `micro bench adapt` (the time of one adaptation and of one
//! online feedback update) and `micro bench select` (the time to choose the next pair, and
//! simulated users asked by the rule or at random). Each returns a typed result whose
//! `Display` is what the command prints.

use crate::error::RouteError;
use crate::fixture::{random_cache, random_model};
use crate::likelihood::head_margins;
use crate::query::{next_question, pair_margins, simulate_users, SimConfig, SimReport};
use crate::{adapt, sample_budget, AdaptConfig, Rate, UserState};
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a benchmark cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "the benchmark needs k >= 2 heads and sizes >= 1 (got k {k}, dim {dim}, {pairs} pairs per attribute or candidates)"
    )]
    Sizes { k: usize, dim: usize, pairs: usize },
    #[error("loading model {path}: {source}")]
    Model {
        path: PathBuf,
        source: micro_model::ModelError,
    },
    #[error("loading cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: micro_cache::CacheError,
    },
    #[error("model {name} does not fit its cache: {source}")]
    Mismatch {
        name: String,
        source: micro_model::CacheMismatch,
    },
    #[error("the simulation needs a model with at least 2 heads")]
    OneHead,
    #[error(
        "the simulation needs training pairs (candidates) and test pairs (held out) in the cache"
    )]
    NoSplit,
    #[error(transparent)]
    Route(#[from] RouteError),
}

type Result<T> = std::result::Result<T, BenchError>;

/// What `micro bench adapt` times.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct AdaptBenchConfig {
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 768))]
    pub dim: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub k: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 5))]
    pub attributes: usize,
    /// Pairs per attribute (B).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 50))]
    pub budget: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub epochs: usize,
    /// Router hidden units (0: linear router).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 128))]
    pub hidden: usize,
    /// Timed adaptations (after one warm-up).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 20))]
    pub repeats: usize,
    /// Timed online updates.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1_000_000))]
    pub updates: usize,
}

/// The timings of [`bench_adapt`].
#[derive(Clone, Debug)]
pub struct AdaptBench {
    pub config: AdaptBenchConfig,
    pub threads: usize,
    /// Milliseconds per adaptation, sorted.
    pub ms: Vec<f64>,
    pub online: OnlineBench,
}

/// The timings of [`bench_online`].
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineBench {
    pub k: usize,
    pub dim: usize,
    /// Microseconds per Hedge step from precomputed margins, over `updates` steps.
    pub per_update_us: f64,
    pub updates: usize,
    /// Microseconds per step including the K head dot products, over `with_margins_updates`.
    pub with_margins_us: f64,
    pub with_margins_updates: usize,
}

/// Times Stage 2 on a random model and cache (the `--threads` pool), then the online update.
pub fn bench_adapt(c: &AdaptBenchConfig) -> Result<AdaptBench> {
    if c.k < 2 || c.dim < 1 || c.attributes < 1 || c.budget < 1 {
        return Err(BenchError::Sizes {
            k: c.k,
            dim: c.dim,
            pairs: c.budget.min(c.attributes),
        });
    }
    let hidden = (c.hidden > 0).then_some(c.hidden);
    let model = random_model(c.dim, c.k, hidden, 1);
    let cache = random_cache(c.dim, c.attributes, c.budget, 2);
    let idx = sample_budget(&cache, c.budget, 0)?;
    let cfg = AdaptConfig {
        epochs: c.epochs,
        threads: rayon::current_num_threads(),
        ..AdaptConfig::default()
    };
    let view = crate::ExpertView::new(&model, &cache, None)?;
    adapt(&view, &idx, &cfg)?;
    let mut ms = Vec::with_capacity(c.repeats.max(1));
    for _ in 0..c.repeats.max(1) {
        let t = Instant::now();
        std::hint::black_box(adapt(&view, &idx, &cfg)?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(AdaptBench {
        config: c.clone(),
        threads: rayon::current_num_threads(),
        ms,
        online: bench_online(&model, &cache, c.updates.max(1)),
    })
}

impl fmt::Display for AdaptBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "adapt: B = {} x {} attributes, d = {}, K = {}, router {}, {} epochs, {} threads: median {:.2} ms, min {:.2} ms per adaptation ({} runs)",
            c.budget,
            c.attributes,
            c.dim,
            c.k,
            if c.hidden > 0 { format!("mlp {}", c.hidden) } else { "linear".to_string() },
            c.epochs,
            self.threads,
            self.ms[self.ms.len() / 2],
            self.ms[0],
            self.ms.len()
        )?;
        write!(f, "{}", self.online)
    }
}

/// One Hedge step from precomputed margins, and the same including the K head dot products a
/// server does per feedback pair.
pub fn bench_online(model: &MixtureModel, cache: &EmbeddingCache, updates: usize) -> OnlineBench {
    let k = model.k();
    let pool = 1024.min(cache.len());
    let all: Vec<usize> = (0..pool).collect();
    let margins = head_margins(model, cache, &all);
    let mut state = UserState::with_rate(&vec![1.0 / k as f32; k], Rate::Anytime);
    let t = Instant::now();
    for i in 0..updates {
        state.update(&margins[(i % pool) * k..(i % pool + 1) * k]);
    }
    let per_update_us = t.elapsed().as_secs_f64() * 1e6 / updates as f64;
    std::hint::black_box(&state);
    let diffs = cache.diff();
    let n = updates.min(200_000);
    let t = Instant::now();
    for i in 0..n {
        state.update(&model.margins(diffs.row(i % pool)));
    }
    OnlineBench {
        k,
        dim: model.config().dim,
        per_update_us,
        updates,
        with_margins_us: t.elapsed().as_secs_f64() * 1e6 / n as f64,
        with_margins_updates: n,
    }
}

impl fmt::Display for OnlineBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "online: {:.3} us per Hedge update (K = {}); {:.3} us including the K margins at d = {} ({} and {} updates)",
            self.per_update_us, self.k, self.with_margins_us, self.dim, self.updates, self.with_margins_updates
        )
    }
}

/// The time to choose the next pair among `candidates` (see [`time_choice`]).
#[derive(Clone, Debug)]
pub struct ChoiceTiming {
    pub candidates: usize,
    pub dim: usize,
    pub k: usize,
    /// Milliseconds per choice from response embeddings, sorted.
    pub total_ms: Vec<f64>,
    /// Milliseconds of each of them spent in the rule on precomputed margins, sorted.
    pub rule_ms: Vec<f64>,
}

/// One choice among `candidates` random pairs from their response embeddings (the K margins
/// of every pair, then the rule), and from margins already computed; `repeats` timed runs
/// after a warm-up, on one thread.
pub fn time_choice(
    candidates: usize,
    dim: usize,
    k: usize,
    repeats: usize,
) -> Result<ChoiceTiming> {
    if k < 2 || dim < 1 || candidates < 1 {
        return Err(BenchError::Sizes {
            k,
            dim,
            pairs: candidates,
        });
    }
    let model = random_model(dim, k, None, 1);
    let cache = random_cache(dim, 1, candidates, 2);
    let state = UserState::with_rate(&vec![1.0 / k as f32; k], Rate::Anytime);
    let (first, second) = (&cache.chosen.data, &cache.rejected.data);
    let mut total_ms = Vec::with_capacity(repeats.max(1));
    let mut rule_ms = Vec::with_capacity(repeats.max(1));
    for rep in 0..=repeats.max(1) {
        let t = Instant::now();
        let margins = pair_margins(&model, first, second)?;
        let t_rule = Instant::now();
        std::hint::black_box(next_question(&state, &margins, rep as u64)?);
        if rep > 0 {
            rule_ms.push(t_rule.elapsed().as_secs_f64() * 1e3);
            total_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    total_ms.sort_by(f64::total_cmp);
    rule_ms.sort_by(f64::total_cmp);
    Ok(ChoiceTiming {
        candidates,
        dim,
        k,
        total_ms,
        rule_ms,
    })
}

impl fmt::Display for ChoiceTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let med = |v: &[f64]| (v[v.len() / 2], v[0]);
        let ((tm, tmin), (rm, rmin)) = (med(&self.total_ms), med(&self.rule_ms));
        write!(
            f,
            "select: next pair among {} candidates, d = {}, K = {}, one thread: median {tm:.3} ms (min {tmin:.3}) from response embeddings; {rm:.3} ms (min {rmin:.3}) of it the rule on precomputed margins ({} runs)",
            self.candidates, self.dim, self.k, self.total_ms.len()
        )
    }
}

/// What `micro bench select` times and simulates (its flags with the `clap` feature).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SelectBenchConfig {
    /// Candidate pairs to choose from.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1000))]
    pub candidates: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 768))]
    pub dim: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub k: usize,
    /// Timed choices (after one warm-up).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 200))]
    pub repeats: usize,
    /// Simulated users, each answering by one head (0: timing only).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 20))]
    pub users: usize,
    /// Probability that a simulated user answers against their head.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.1))]
    pub noise: f64,
    /// Questions asked at most per user and way of asking.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 100))]
    pub max_answers: usize,
    /// The users' update rule: `anytime` (the server's default Hedge rate) or a fixed eta
    /// (1 = the Bayesian posterior).
    #[cfg_attr(feature = "clap", arg(long, default_value = "anytime"))]
    pub rate: Rate,
    /// Simulate with this model's heads (default: random heads of --dim and --k) ...
    #[cfg_attr(feature = "clap", arg(long, requires = "cache"))]
    pub model: Option<PathBuf>,
    /// ... on this cache's pairs: its train split as candidates, its test split held out.
    #[cfg_attr(feature = "clap", arg(long, requires = "model"))]
    pub cache: Option<PathBuf>,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub seed: u64,
}

impl SelectBenchConfig {
    /// The simulation's settings.
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            users: self.users,
            noise: self.noise,
            max_answers: self.max_answers,
            rate: self.rate,
            seed: self.seed,
            ..SimConfig::default()
        }
    }
}

/// The model and cache a simulation answers by, checked to fit each other, with the
/// description [`SimSource::Model`] takes.
pub fn load_sim_model(
    model: &Path,
    cache: &Path,
) -> Result<(MixtureModel, EmbeddingCache, String)> {
    let m = MixtureModel::load(model).map_err(|source| BenchError::Model {
        path: model.to_path_buf(),
        source,
    })?;
    let c = EmbeddingCache::load(cache).map_err(|source| BenchError::Cache {
        path: cache.to_path_buf(),
        source,
    })?;
    let name = format!("{} on {}", model.display(), cache.display());
    m.check_cache(&c.meta)
        .map_err(|source| BenchError::Mismatch {
            name: name.clone(),
            source,
        })?;
    Ok((m, c, name))
}

/// Whose heads and pairs the simulated users answer by.
pub enum SimSource<'a> {
    /// Random heads in [`SIM_DIM`] dimensions over `candidates` random pairs.
    Random { k: usize, candidates: usize },
    /// A model on a cache: its train split as candidates, its test split held out; `name`
    /// describes them in the report.
    Model {
        model: &'a MixtureModel,
        cache: &'a EmbeddingCache,
        name: String,
    },
}

/// Width of the random pairs of the simulation without a model.
pub const SIM_DIM: usize = 32;

/// The pairs the simulated users answer: margins [n, K] of the candidates and of the held-out
/// pairs, K, and a description.
#[derive(Clone, Debug)]
pub struct SimPairs {
    pub candidates: Vec<f32>,
    pub held_out: Vec<f32>,
    pub k: usize,
    pub source: String,
}

/// The candidate and held-out margins of `source`.
pub fn simulation_pairs(source: &SimSource<'_>) -> Result<SimPairs> {
    let scaled;
    let (model, cache, name, split): (&MixtureModel, Cow<EmbeddingCache>, String, bool) =
        match source {
            SimSource::Model { model, cache, name } => {
                model
                    .check_cache(&cache.meta)
                    .map_err(|source| BenchError::Mismatch {
                        name: name.clone(),
                        source,
                    })?;
                (model, Cow::Borrowed(*cache), name.clone(), true)
            }
            SimSource::Random { k, candidates } => {
                // Random heads in 32 dimensions, scaled so that their margins have a standard
                // deviation of 2.5 (sigma(2.5) = 0.92: about as sure as a user who is right 90% of
                // the time).
                let mut model = random_model(SIM_DIM, *k, None, 3);
                let cache = random_cache(SIM_DIM, 2, *candidates, 4);
                let all: Vec<usize> = (0..cache.len()).collect();
                let m = head_margins(&model, &cache, &all);
                let sd = (m.iter().map(|v| (v * v) as f64).sum::<f64>() / m.len() as f64).sqrt();
                model.scale_heads(if sd > 0.0 { (2.5 / sd) as f32 } else { 1.0 });
                scaled = model;
                let name = format!("random heads in {SIM_DIM} dimensions, margins of sd 2.5");
                (&scaled, Cow::Owned(cache), name, false)
            }
        };
    let k = model.k();
    if k < 2 {
        return Err(BenchError::OneHead);
    }
    // Random caches have no split: their first attribute is the pool, the second held out.
    let pick = |train: bool| -> Vec<usize> {
        if split {
            cache.indices(|p| p.is_train() == train)
        } else {
            (0..cache.len())
                .filter(|&i| (cache.pairs[i].group() == "attr0") == train)
                .collect()
        }
    };
    let (pool, held) = (pick(true), pick(false));
    if pool.is_empty() || held.is_empty() {
        return Err(BenchError::NoSplit);
    }
    Ok(SimPairs {
        candidates: head_margins(model, &cache, &pool),
        held_out: head_margins(model, &cache, &held),
        k,
        source: name,
    })
}

/// Simulated users asked by the rule and at random over `pairs`, with what to print.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub pairs: SimPairs,
    pub report: SimReport,
}

/// Runs [`simulate_users`] on `pairs`.
pub fn simulate(pairs: SimPairs, cfg: &SimConfig) -> Result<Simulation> {
    let report = simulate_users(&pairs.candidates, &pairs.held_out, pairs.k, cfg)?;
    Ok(Simulation { pairs, report })
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, c, k) = (&self.report, &self.report.config, self.pairs.k);
        let head_acc = r.users.iter().map(|u| u.head_accuracy).sum::<f64>() / r.users.len() as f64;
        writeln!(
            f,
            "simulated users: {} answering by one of {k} heads ({}) with noise {}, rate {:?}, {} candidates, {} held-out pairs; their heads' accuracy {head_acc:.3}",
            c.users,
            self.pairs.source,
            c.noise,
            c.rate,
            self.pairs.candidates.len() / k,
            self.pairs.held_out.len() / k
        )?;
        writeln!(
            f,
            "answers to reach {:.0}% of the head's accuracy (mean ± std over users; not reached within {} counts {}):",
            100.0 * c.target,
            c.max_answers,
            c.max_answers + 1
        )?;
        writeln!(
            f,
            "  suggested questions {:.1} ± {:.1} (reached by {}/{})",
            r.suggested_mean, r.suggested_std, r.suggested_reached, c.users
        )?;
        writeln!(
            f,
            "  random questions    {:.1} ± {:.1} (reached by {}/{})",
            r.random_mean, r.random_std, r.random_reached, c.users
        )?;
        write!(
            f,
            "  fewer answers with suggested questions for {} users, as many for {}, more for {}",
            r.wins, r.ties, r.losses
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_select_config_parses_its_rate_and_loads_fitting_models() {
        let c = SelectBenchConfig {
            candidates: 50,
            dim: 8,
            k: 3,
            repeats: 1,
            users: 4,
            noise: 0.2,
            max_answers: 5,
            rate: Rate::Fixed(1.0),
            model: None,
            cache: None,
            seed: 3,
        };
        let sim = c.sim_config();
        assert_eq!(
            (sim.users, sim.noise, sim.max_answers, sim.seed),
            (4, 0.2, 5, 3)
        );
        assert_eq!(sim.rate, Rate::Fixed(1.0));
        let dir = tempfile::tempdir().unwrap();
        let err = load_sim_model(&dir.path().join("none"), dir.path()).unwrap_err();
        assert!(matches!(err, BenchError::Model { .. }), "{err}");
        assert!(err.to_string().contains("loading model"), "{err}");
    }

    #[test]
    fn simulation_pairs_come_from_random_heads_or_a_model_and_cache() {
        let p = simulation_pairs(&SimSource::Random {
            k: 3,
            candidates: 50,
        })
        .unwrap();
        assert_eq!((p.candidates.len(), p.held_out.len(), p.k), (150, 150, 3));
        // The random heads are scaled to margins of standard deviation 2.5.
        let all: Vec<f32> = p.candidates.iter().chain(&p.held_out).copied().collect();
        let sd = (all.iter().map(|v| (v * v) as f64).sum::<f64>() / all.len() as f64).sqrt();
        assert!((sd - 2.5).abs() < 1e-3, "{sd}");
        let model = random_model(6, 3, None, 1);
        let cache = random_cache(6, 2, 10, 2);
        let source = SimSource::Model {
            model: &model,
            cache: &cache,
            name: "m on c".into(),
        };
        // A random cache has no test split: nothing to hold out.
        let e = simulation_pairs(&source).unwrap_err();
        assert!(matches!(e, BenchError::NoSplit), "{e}");
        let cfg = SimConfig {
            users: 3,
            max_answers: 5,
            rate: Rate::Fixed(1.0),
            ..SimConfig::default()
        };
        let s = simulate(p, &cfg).unwrap();
        assert_eq!(s.report.users.len(), 3);
        let text = s.to_string();
        assert!(
            text.starts_with(
                "simulated users: 3 answering by one of 3 heads (random heads in 32 dimensions"
            ),
            "{text}"
        );
        assert!(text.contains("50 candidates, 50 held-out pairs"), "{text}");
        assert!(text.contains("not reached within 5 counts 6"), "{text}");
    }

    #[test]
    fn the_benches_time_and_count_their_runs() {
        let c = AdaptBenchConfig {
            dim: 8,
            k: 3,
            attributes: 2,
            budget: 5,
            epochs: 1,
            hidden: 0,
            repeats: 3,
            updates: 10,
        };
        let b = bench_adapt(&c).unwrap();
        assert_eq!(b.ms.len(), 3);
        assert!(b.ms.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            (
                b.online.k,
                b.online.dim,
                b.online.updates,
                b.online.with_margins_updates
            ),
            (3, 8, 10, 10)
        );
        let text = b.to_string();
        assert!(
            text.contains("B = 5 x 2 attributes, d = 8, K = 3, router linear, 1 epochs"),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().starts_with("online: "));
        assert!(matches!(
            bench_adapt(&AdaptBenchConfig { k: 1, ..c }),
            Err(BenchError::Sizes { k: 1, .. })
        ));
        let t = time_choice(20, 4, 2, 2).unwrap();
        assert_eq!((t.total_ms.len(), t.rule_ms.len()), (2, 2));
        assert!(t.to_string().contains("among 20 candidates, d = 4, K = 2"));
    }
}

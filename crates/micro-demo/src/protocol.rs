//! The measurement protocol for real annotators: repeated splits by prompt, each with its own
//! training seed; per split, the single BT model, MiCRo's Stage 1 (its shape, alpha and rate by
//! held-out NLL, cross-fitted) and MiCRo adapted to each context and each user known only by id
//! (up to B labelled pairs each), all scored on the split's test pairs per user; then, per user
//! and averaged over users, the mean over splits with its standard error, and each user's
//! routed-minus-single difference pair by split.
//!
//! One split is not a result: on a thousand pairs which prompts land in the test split moves a
//! figure by points, and a single training seed by about as much (README, "Real human labels").
//! The single model is the one-head shape of MiCRo's own search (the same training it compares
//! the mixture against), so "single" and "Stage 1" differ only where the mixture earned its heads.
//!
//! ```
//! use micro_demo::protocol::{run_protocol, ProtocolConfig};
//! use micro_model::synth::{generate, SynthConfig};
//! let (cache, _) = generate(&SynthConfig { pairs: 1200, dim: 6, groups: 2, seed: 1, ..Default::default() }).unwrap();
//! let cfg = ProtocolConfig { splits: 2, heads: 2, ..ProtocolConfig::quick() };
//! let report = run_protocol(&cache, &cfg, &mut micro_demo::Silent).unwrap();
//! assert_eq!(report.splits, 2);
//! assert_eq!(report.groups.len(), 2);
//! assert_eq!(report.average.routed.values.len(), 2);
//! ```

use crate::observer::Observer;
use micro_cache::{EmbeddingCache, RouterInput};
use micro_data::split::PromptSplit;
use micro_eval::metrics::mean;
use micro_eval::{evaluate_with, EvalOptions, EvalReport, Gating, NamedModel, Stat};
use micro_model::{cross_fit, train_search, Grid, MixtureModel, TrainConfig, DEFAULT_FOLDS};
use micro_route::recipe::{adapt_budget, AdaptJob};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How to measure.
#[derive(Clone, Debug)]
pub struct ProtocolConfig {
    /// Splits by prompt; split s trains with seed s.
    pub splits: usize,
    /// Fraction of the prompts in each split's test part.
    pub test_fraction: f64,
    /// MiCRo's K (the search may keep fewer: one head).
    pub heads: usize,
    /// Labelled pairs per context and per user (at most).
    pub budget: usize,
    /// Stage 1's router input.
    pub router_input: RouterInput,
    /// Everything else of Stage 1 (K and the seed are set per split).
    pub train: TrainConfig,
    pub grid: Grid,
    /// Folds of the cross-fit.
    pub folds: usize,
    /// Stage 2's settings (the seed is set per split).
    pub adapt: AdaptJob,
}

impl Default for ProtocolConfig {
    /// 10 splits, 20% of the prompts tested, K = 8, B = 50, the defaults of `micro train` and
    /// `micro adapt`.
    fn default() -> Self {
        ProtocolConfig {
            splits: 10,
            test_fraction: 0.2,
            heads: 8,
            budget: 50,
            router_input: RouterInput::default(),
            train: TrainConfig::default(),
            grid: Grid::default(),
            folds: DEFAULT_FOLDS,
            adapt: AdaptJob::default(),
        }
    }
}

impl ProtocolConfig {
    /// The defaults with a short training (tests, examples).
    pub fn quick() -> Self {
        ProtocolConfig {
            train: TrainConfig {
                max_epochs: 30,
                min_epochs: 5,
                patience: 5,
                router_hidden: Some(16),
                ..TrainConfig::default()
            },
            grid: Grid {
                alphas: vec![0.05],
                lrs: vec![1e-2],
                ..Grid::default()
            },
            folds: 3,
            ..ProtocolConfig::default()
        }
    }
}

/// One split's test accuracy per group of each method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    pub seed: u64,
    pub single: BTreeMap<String, f64>,
    pub stage1: BTreeMap<String, f64>,
    pub routed: BTreeMap<String, f64>,
    pub best_head: BTreeMap<String, f64>,
    /// Test pairs per group.
    pub n: BTreeMap<String, usize>,
    /// Heads of Stage 1's kept model, and whether it has the per-user table.
    pub heads: usize,
    pub users_table: bool,
    /// Users on a head of their own after adaptation.
    pub users_on_a_head: usize,
}

/// A method's figures over the splits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    pub single: Stat,
    pub stage1: Stat,
    pub routed: Stat,
    pub best_head: Stat,
    /// routed - single, split by split.
    pub routed_minus_single: Stat,
}

/// Everything the protocol measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    pub name: String,
    pub splits: usize,
    pub budget: usize,
    pub groups: Vec<String>,
    /// Per group, over the splits where it had test pairs.
    pub per_group: BTreeMap<String, MethodStats>,
    /// The unweighted mean over groups, over the splits.
    pub average: MethodStats,
    /// Groups whose routed accuracy is below single's by more than two standard errors.
    pub below_single: Vec<String>,
    pub per_split: Vec<SplitScores>,
}

/// Runs the protocol on `cache` (its own split is ignored: every split is drawn here).
pub fn run_protocol(
    cache: &EmbeddingCache,
    cfg: &ProtocolConfig,
    obs: &mut dyn Observer,
) -> anyhow::Result<ProtocolReport> {
    anyhow::ensure!(cfg.splits > 0, "the protocol needs at least one split");
    let mut per_split = Vec::with_capacity(cfg.splits);
    for s in 0..cfg.splits as u64 {
        let split = resplit(cache, cfg.test_fraction, s);
        let scores = score_split(&split, cfg, s, obs)?;
        obs.line(&format!(
            "  split {s}: single {:.4}, Stage 1 {:.4} (K={}{}), routed {:.4} ({} users on a head of their own)",
            mean(scores.single.values()),
            mean(scores.stage1.values()),
            scores.heads,
            if scores.users_table { " + users" } else { "" },
            mean(scores.routed.values()),
            scores.users_on_a_head
        ));
        per_split.push(scores);
    }
    Ok(summarize(cfg, per_split))
}

/// `cache` with its pairs split by prompt anew, `fraction` of the prompts tested, with `seed`.
pub fn resplit(cache: &EmbeddingCache, fraction: f64, seed: u64) -> EmbeddingCache {
    let keys: Vec<String> = cache.pairs.iter().map(|p| p.prompt.to_text()).collect();
    let split = PromptSplit::new(keys.iter().map(String::as_str), fraction, seed);
    let mut out = cache.clone();
    for (p, k) in out.pairs.iter_mut().zip(&keys) {
        p.split = Some(split.of(k));
    }
    out
}

/// One split: train, cross-fit, adapt, score.
fn score_split(
    cache: &EmbeddingCache,
    cfg: &ProtocolConfig,
    seed: u64,
    obs: &mut dyn Observer,
) -> anyhow::Result<SplitScores> {
    let arrays = cache.training_arrays(cfg.router_input);
    let train = TrainConfig {
        k: cfg.heads,
        seed,
        ..cfg.train.clone()
    };
    let label = format!("split {seed}");
    let (model, _, _) = train_search(&arrays, &train, &cfg.grid, |e| obs.search(&label, e))?;
    let evidence = cross_fit(&arrays, &model, cfg.folds, |_, _| {})?;
    let single = single_of(&model);
    let micro = NamedModel {
        evidence,
        ..NamedModel::new("micro", model)
    };
    let job = AdaptJob {
        budget: cfg.budget,
        seed,
        ..cfg.adapt.clone()
    };
    let adapted = adapt_budget(&micro.view(cache)?, &job)?;
    let score = |m: &MixtureModel, g: &Gating| -> anyhow::Result<EvalReport> {
        Ok(evaluate_with(m, cache, &EvalOptions::default(), g)?)
    };
    let stage1 = score(&micro.model, &Gating::Model)?;
    let routed = score(&adapted.adapted, &Gating::Users(&adapted.users))?;
    let single = score(&single, &Gating::Model)?;
    let best_head = (stage1.per_head.iter())
        .map(|(g, h)| (g.clone(), h.iter().copied().fold(0.0, f64::max)))
        .collect();
    Ok(SplitScores {
        seed,
        single: single.per_attribute,
        routed: routed.per_attribute,
        n: stage1.n.clone(),
        best_head,
        heads: micro.model.k(),
        users_table: micro.model.users().is_some(),
        users_on_a_head: (adapted.users.users.values())
            .filter(|r| matches!(r.fit, micro_route::Fit::Head { .. }))
            .count(),
        stage1: stage1.per_attribute,
    })
}

/// The single BT model of MiCRo's search: the model itself when it kept one head, else its
/// shared head alone.
fn single_of(model: &MixtureModel) -> MixtureModel {
    match model.shared_head() {
        Some(h) => model
            .select_heads(&[h])
            .expect("the shared head is one of the model's"),
        None => model.clone(),
    }
}

fn summarize(cfg: &ProtocolConfig, per_split: Vec<SplitScores>) -> ProtocolReport {
    let mut groups: Vec<String> = per_split
        .iter()
        .flat_map(|s| s.stage1.keys().cloned())
        .collect();
    groups.sort();
    groups.dedup();
    let stats = |pick: &dyn Fn(&SplitScores) -> Option<f64>| {
        Stat::of(per_split.iter().filter_map(pick).collect())
    };
    let method_stats = |of: &dyn Fn(&BTreeMap<String, f64>) -> Option<f64>| MethodStats {
        single: stats(&|s| of(&s.single)),
        stage1: stats(&|s| of(&s.stage1)),
        routed: stats(&|s| of(&s.routed)),
        best_head: stats(&|s| of(&s.best_head)),
        routed_minus_single: stats(&|s| Some(of(&s.routed)? - of(&s.single)?)),
    };
    let per_group: BTreeMap<String, MethodStats> = (groups.iter())
        .map(|g| (g.clone(), method_stats(&|m| m.get(g).copied())))
        .collect();
    let below_single = (per_group.iter())
        .filter(|(_, m)| {
            let d = &m.routed_minus_single;
            d.values.len() > 1 && d.mean < -2.0 * standard_error(d)
        })
        .map(|(g, _)| g.clone())
        .collect();
    ProtocolReport {
        name: String::new(),
        splits: cfg.splits,
        budget: cfg.budget,
        groups,
        average: method_stats(&|m| (!m.is_empty()).then(|| mean(m.values()))),
        per_group,
        below_single,
        per_split,
    }
}

/// The standard error of a mean over splits: the sample standard deviation over sqrt(n)
/// (0 for a single split).
pub fn standard_error(s: &Stat) -> f64 {
    let n = s.values.len();
    if n < 2 {
        return 0.0;
    }
    let var = s.values.iter().map(|v| (v - s.mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

impl std::fmt::Display for ProtocolReport {
    /// The table `micro demo --real` and `micro study` print: per user and averaged, mean ±
    /// standard error over the splits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pm = |s: &Stat| format!("{:.4} ± {:.4}", s.mean, standard_error(s));
        writeln!(
            f,
            "{}: test accuracy, mean ± standard error over {} splits by prompt (B = {} per user)",
            self.name, self.splits, self.budget
        )?;
        let mut out = format!(
            "  {:<18} {:>17} {:>17} {:>17} {:>17} {:>18}",
            "user", "single", "Stage 1", "routed", "best head", "routed - single"
        );
        let rows = self.per_group.iter().map(|(g, m)| (g.as_str(), m));
        for (g, m) in rows.chain(std::iter::once(("average", &self.average))) {
            let flag = if self.below_single.iter().any(|b| b == g) {
                "  below single"
            } else {
                ""
            };
            let d = &m.routed_minus_single;
            let _ = write!(
                out,
                "\n  {g:<18} {:>17} {:>17} {:>17} {:>17} {:>+8.4} ± {:.4}{flag}",
                pm(&m.single),
                pm(&m.stage1),
                pm(&m.routed),
                pm(&m.best_head),
                d.mean,
                standard_error(d)
            );
        }
        write!(f, "{out}")
    }
}

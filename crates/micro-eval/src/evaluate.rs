//! Evaluation of a model on a cache: pairwise accuracy and log-loss per attribute, the per-head
//! accuracy matrix, mean router weights, and the backbone-alone baseline.

use crate::error::{EvalError, Result};
use crate::metrics::{mean, mixture_correct, mixture_log_prob};
use micro_cache::EmbeddingCache;
use micro_data::Split;
use micro_model::MixtureModel;
use micro_route::users::pair_log_weights;
use micro_route::{Experts, UserStates};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which pairs of a cache to evaluate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitSel {
    /// Pairs marked `"split": "test"` (the default).
    #[default]
    Test,
    /// Every pair not marked test.
    Train,
    All,
}

impl std::str::FromStr for SplitSel {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "test" => Ok(SplitSel::Test),
            "train" => Ok(SplitSel::Train),
            "all" => Ok(SplitSel::All),
            _ => Err(micro_data::UnknownValue::new(
                "split",
                s,
                "test, train or all",
            )),
        }
    }
}

impl std::fmt::Display for SplitSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitSel::Test => "test",
            SplitSel::Train => "train",
            SplitSel::All => "all",
        })
    }
}

impl SplitSel {
    /// Row indices of the selected pairs, in cache order.
    pub fn indices(self, cache: &EmbeddingCache) -> Vec<usize> {
        match self {
            SplitSel::Test => cache.indices(|p| p.split == Some(Split::Test)),
            SplitSel::Train => cache.indices(|p| p.is_train()),
            SplitSel::All => (0..cache.len()).collect(),
        }
    }

    /// The selected indices, or an error saying what to do when there are none.
    pub fn nonempty_indices(self, cache: &EmbeddingCache) -> Result<Vec<usize>> {
        let idx = self.indices(cache);
        if idx.is_empty() {
            let hint = match self {
                SplitSel::Test => "no pair has \"split\": \"test\"; mark a test split when building the data, or evaluate the split `all`",
                SplitSel::Train => "every pair is marked test; evaluate the split `test` or `all`",
                SplitSel::All => "the cache is empty",
            };
            return Err(EvalError::NoPairs {
                split: self.to_string(),
                hint: hint.into(),
            });
        }
        Ok(idx)
    }
}

/// Options of [`evaluate`].
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    pub split: SplitSel,
    /// The name the report carries (e.g. `micro`, `single`); defaults to the model's method.
    pub label: Option<String>,
}

/// How the heads are mixed for each evaluated pair.
#[derive(Clone, Debug, Default)]
pub enum Gating<'a> {
    /// The model's own gate f(x, c) on each pair's context-augmented prompt embedding, with
    /// the pair's user's row where the model's per-user table knows the user.
    #[default]
    Model,
    /// One fixed weight vector per attribute (test-time reweighting such as HyRe). Attributes
    /// without an entry use the model's gate.
    PerAttribute(BTreeMap<String, Vec<f32>>),
    /// Each pair of a user with adapted weights by those weights over the experts (micro-route's
    /// `users`); other pairs by the model's gate.
    Users(&'a UserStates),
}

/// Accuracy of the backbone's own scalar reward: score(chosen) > score(rejected), ties wrong.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    pub average: f64,
    pub per_attribute: BTreeMap<String, f64>,
}

/// Everything measured for one model on one set of pairs. Attributes are keyed by name
/// (sorted); head indices are 0-based.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Row name in tables (e.g. `micro`, `single`, `micro+hyre`).
    pub method: String,
    /// The Stage 1 objective that produced the model (`micro`, `single`, `static`, `shared-base`).
    #[serde(default)]
    pub model_method: String,
    #[serde(default)]
    pub split: String,
    pub k: usize,
    /// Number of evaluated pairs in all.
    pub n_pairs: usize,
    /// Unweighted mean of the per-attribute accuracies (the paper's "Average").
    pub average: f64,
    /// Pairwise accuracy per attribute: the share of pairs with sum_k f_k sigma(delta_k) > 1/2.
    pub per_attribute: BTreeMap<String, f64>,
    /// Pairs per attribute.
    pub n: BTreeMap<String, usize>,
    /// Mean of -log P(chosen > rejected) over all pairs (nats).
    pub log_loss: f64,
    pub per_attribute_log_loss: BTreeMap<String, f64>,
    /// Accuracy of each head alone (delta_k > 0), per attribute: [K] values.
    pub per_head: BTreeMap<String, Vec<f64>>,
    /// The best head per attribute (0-based; the first one on ties).
    pub best_head: BTreeMap<String, usize>,
    /// Mean over attributes of the best head's accuracy (the paper's oracle "best head" figure).
    pub best_head_average: f64,
    /// Mean gate weights f_k(x, c) over each attribute's pairs: [K] values.
    pub mean_weights: BTreeMap<String, Vec<f64>>,
    /// The backbone's own reward, when the cache carries `chosen_scores`/`rejected_scores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<BaselineScores>,
}

impl EvalReport {
    /// Attribute names, sorted.
    pub fn attributes(&self) -> Vec<&str> {
        self.per_attribute.keys().map(String::as_str).collect()
    }
}

/// Evaluates `model` on the selected split of `cache`, each pair routed by its own
/// context-augmented prompt embedding e(x, c) (e(x) when it has no context), whichever input
/// Stage 1 trained on. Fails when the model does not fit the cache or the split is empty.
pub fn evaluate(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    opts: &EvalOptions,
) -> Result<EvalReport> {
    evaluate_with(model, cache, opts, &Gating::Model)
}

/// [`evaluate`] with another gating, e.g. each user's adapted weights
/// ([`Gating::Users`]).
pub fn evaluate_with(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    opts: &EvalOptions,
    gating: &Gating,
) -> Result<EvalReport> {
    let idx = opts.split.nonempty_indices(cache)?;
    let label = opts
        .label
        .clone()
        .unwrap_or_else(|| model.config().method.to_string());
    let mut report = evaluate_indices(model, cache, &idx, gating, &label)?;
    report.split = opts.split.to_string();
    Ok(report)
}

/// What one pair contributes.
struct Outcome {
    attr: usize,
    correct: bool,
    log_p: f64,
    head_correct: Vec<bool>,
    weights: Vec<f32>,
    backbone: Option<bool>,
}

/// Evaluates `model` on the rows `idx` of `cache` with the given gating.
pub fn evaluate_indices(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    idx: &[usize],
    gating: &Gating,
    label: &str,
) -> Result<EvalReport> {
    model
        .check_cache(&cache.meta)
        .map_err(|cause| EvalError::Mismatch {
            model: label.to_string(),
            cause,
        })?;
    check_gating(model, gating)?;
    let names: Vec<String> = {
        let set: std::collections::BTreeSet<&str> =
            idx.iter().map(|&i| cache.pairs[i].group()).collect();
        set.into_iter().map(String::from).collect()
    };
    let attr_of = |i: usize| {
        names
            .binary_search_by(|n| n.as_str().cmp(cache.pairs[i].group()))
            .unwrap_or(0)
    };
    let k = model.k();
    let margins = micro_route::likelihood::head_margins(model, cache, idx);
    let outcomes: Vec<Outcome> = idx
        .par_iter()
        .enumerate()
        .map(|(j, &i)| {
            let m = &margins[j * k..(j + 1) * k];
            score_pair(model, cache, i, m, attr_of(i), gating)
        })
        .collect();
    Ok(aggregate(model, &names, &outcomes, label))
}

fn check_gating(model: &MixtureModel, gating: &Gating) -> Result<()> {
    let experts = Experts::of(model).len();
    if let Gating::Users(states) = gating {
        if let Some(r) = states.users.values().find(|r| r.state.k() != experts) {
            return Err(EvalError::UserStateExperts {
                user: r.user_id.clone(),
                state: r.state.k(),
                experts,
            });
        }
    }
    if let Gating::PerAttribute(map) = gating {
        for (attr, w) in map {
            if w.len() != model.k() {
                return Err(EvalError::GateWeights {
                    attribute: attr.clone(),
                    weights: w.len(),
                    k: model.k(),
                });
            }
            if !w.iter().all(|v| v.is_finite() && *v >= 0.0) || w.iter().sum::<f32>() <= 0.0 {
                return Err(EvalError::GateValues {
                    attribute: attr.clone(),
                    weights: w.clone(),
                });
            }
        }
    }
    Ok(())
}

fn score_pair(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    i: usize,
    margins: &[f32],
    attr: usize,
    gating: &Gating,
) -> Outcome {
    let pair = &cache.pairs[i];
    let no_users = UserStates::default();
    let log_w = match gating {
        Gating::PerAttribute(map) if map.contains_key(pair.group()) => {
            map[pair.group()].iter().map(|w| w.max(0.0).ln()).collect()
        }
        Gating::Users(states) => pair_log_weights(model, cache, i, states),
        _ => pair_log_weights(model, cache, i, &no_users),
    };
    let log_p = mixture_log_prob(&log_w, margins);
    let z = log_w.iter().map(|l| l.exp()).sum::<f32>();
    Outcome {
        attr,
        correct: mixture_correct(&log_w, margins),
        log_p,
        head_correct: margins
            .iter()
            .map(|d| micro_model::pair_correct(*d as f64))
            .collect(),
        weights: log_w.iter().map(|l| l.exp() / z).collect(),
        backbone: cache
            .scores
            .as_ref()
            .map(|(c, r)| micro_model::pair_correct(c[i] as f64 - r[i] as f64)),
    }
}

/// Per-attribute sums of the outcomes.
#[derive(Clone)]
struct Tally {
    n: usize,
    correct: usize,
    loss: f64,
    heads: Vec<usize>,
    weights: Vec<f64>,
    backbone: usize,
}

fn aggregate(
    model: &MixtureModel,
    names: &[String],
    outcomes: &[Outcome],
    label: &str,
) -> EvalReport {
    let k = model.k();
    let empty = Tally {
        n: 0,
        correct: 0,
        loss: 0.0,
        heads: vec![0; k],
        weights: vec![0.0; k],
        backbone: 0,
    };
    let mut tallies = vec![empty; names.len()];
    for o in outcomes {
        let t = &mut tallies[o.attr];
        t.n += 1;
        t.correct += o.correct as usize;
        t.loss -= o.log_p;
        t.backbone += o.backbone.unwrap_or(false) as usize;
        for j in 0..k {
            t.heads[j] += o.head_correct[j] as usize;
            t.weights[j] += o.weights[j] as f64;
        }
    }
    let mut r = EvalReport {
        method: label.to_string(),
        model_method: model.config().method.to_string(),
        k,
        n_pairs: outcomes.len(),
        ..Default::default()
    };
    for (name, t) in names.iter().zip(&tallies) {
        let n = t.n as f64;
        let heads: Vec<f64> = t.heads.iter().map(|c| *c as f64 / n).collect();
        let best = (0..k).fold(0, |b, j| if heads[j] > heads[b] { j } else { b });
        r.per_attribute.insert(name.clone(), t.correct as f64 / n);
        r.n.insert(name.clone(), t.n);
        r.per_attribute_log_loss.insert(name.clone(), t.loss / n);
        r.best_head.insert(name.clone(), best);
        r.per_head.insert(name.clone(), heads);
        r.mean_weights
            .insert(name.clone(), t.weights.iter().map(|w| w / n).collect());
    }
    r.average = mean(r.per_attribute.values());
    r.log_loss = tallies.iter().map(|t| t.loss).sum::<f64>() / outcomes.len().max(1) as f64;
    r.best_head_average = mean(
        &r.per_head
            .iter()
            .map(|(a, h)| h[r.best_head[a]])
            .collect::<Vec<_>>(),
    );
    if outcomes.first().is_some_and(|o| o.backbone.is_some()) {
        let per: BTreeMap<String, f64> = names
            .iter()
            .zip(&tallies)
            .map(|(a, t)| (a.clone(), t.backbone as f64 / t.n as f64))
            .collect();
        r.backbone = Some(BaselineScores {
            average: mean(per.values()),
            per_attribute: per,
        });
    }
    r
}

//! Algorithm 1, context-aware router learning: from B context-labelled pairs per attribute, the
//! Hedge soft labels, then the router fitted to them by cross-entropy in minibatches. The heads
//! stay frozen.
//!
//! **Experts, and doing no harm.** The paper's labels weigh the heads alone,
//! w_ik ∝ f_k(x_i, c_i) p_k(pair_i)^(1/tau) with tau = 1e-3: one-hot on the head that best
//! explains the pair, however little better, which cost up to 4 points where no head is a
//! context's own (the built-in `relevant` user: 0.85 at Stage 1, 0.70 routed). Here the labels
//! weigh the experts of [`crate::experts`] (the heads, the shared head, and the gate: the
//! model's own mixture for the pair), from a prior that holds the shared predictions
//! ([`crate::experts::Experts::prior`]) at tau = 1 (the Bayesian posterior), judged on evidence
//! the model did not train on ([`crate::evidence`]); a pair's label is that posterior with the
//! gate's share handed to the heads as the model's gate weighs them for the pair. A context
//! whose pairs no head explains clearly better keeps the Stage 1 routing. The prior is fixed, so
//! the labels are computed once rather than each epoch from the current router. Measured with
//! the experts (`micro demo`, 3 Stage 1 seeds x 3 draws, B = 50, 2-core machine): built-in
//! RPR-style 0.8851 ± 0.0051 against Stage 1's 0.8748 ± 0.0074, the `relevant` user 0.8562 ±
//! 0.0279; HelpSteer2-style 0.7024 ± 0.0260 (0.5014 at Stage 1).
//!
//! The measurements below were taken with the paper's labels (heads alone, each epoch's router
//! as the prior), before the experts; they are why the evidence is pooled and pool inputs are on.
//!
//! **Evidence.** Algorithm 1 as printed gives each pair the loss of that pair alone. With binary
//! labels that label is one-hot on whichever agreeing head is most confident, not on the head
//! the context calls for, and a router fitted to a few hundred such labels learns their noise
//! through the prompt part of its input. Hedge proper weighs experts by their *cumulative* loss
//! over a stream, so by default ([`EvidenceScope::Context`]) a pair's label uses the summed loss of
//! every budget pair with the same context text: the Hedge state of that context's stream, with
//! the pair's own router output as the prior. Where every pair has a context of its own (RPR's
//! per-row criteria) the two coincide. `EvidenceScope::Pair` keeps the printed form.
//!
//! Measured on `micro synth` (defaults: 4 groups, d 32, context shift 3; B = 50 per group;
//! seeds 1-4), the gap between the adapted router and the best head per group was
//! 3.7 / 3.9 / 4.7 / 3.7 points with per-pair evidence (tau 1, its best) and
//! 3.3 / 2.8 / 2.7 / 2.3 with context evidence (any tau). The data's own ceiling is about
//! 2.5 points below the per-group Bayes accuracy there: a shift of 3 leaves the group ambiguous
//! for some prompts (`truth.json`'s `routed_bayes_average`).
//!
//! **Pool inputs** (`pool_inputs`, on by default). With context evidence every pair of a
//! context gets the same losses, so the cache's other training pairs that share a labelled
//! pair's context text get that context's Hedge label too (their own router output as the
//! prior), without their labels being read, and the router is fitted on their inputs as well.
//! Algorithm 1 fits only the B labelled inputs, and at small B the router does not carry the
//! context's head to prompts it has not seen: on `micro synth` (mixed cache, 4 groups, the seed 0
//! Stage 1 model) the actively chosen pairs (`crate::query`) name every group's best head from
//! B = 5 on, yet the adapted router reached 0.745 / 0.771 / 0.769 / 0.809 / 0.836 at
//! B = 5 / 10 / 15 / 25 / 50, and 0.857 at each with pool inputs. Over three Stage 1 seeds x 5
//! runs, random budgets went from 0.745 / 0.837 to 0.804 / 0.855 at B = 5 / 50 with pool
//! inputs; on the built-in RPR-style data from 0.881 / 0.887 to 0.859 / 0.886 (docs/active.md).
//! At the default B = 50 (adapted from the same Stage 1 models, 3 draws): on a mixed synthetic
//! cache (d 128, 4 groups) 0.839 -> 0.853 against a router ceiling of 0.863; on the built-in
//! HelpSteer2-style data 0.712 -> 0.714, RPR-style 0.885 -> 0.885, HH-RLHF multi-user
//! 0.752 -> 0.753. It is on by default; `--pool-inputs false` gives Algorithm 1's inputs alone.
//!
//! The paper gives no optimiser for this stage. We use AdamW with a cosine decay from
//! `lr` = 1e-2 and no weight decay (micro-model's [`Optimiser`], which Stage 1 steps with too;
//! this loop computes its own targets and gradients). With context evidence, mean gaps on the synth data above were
//! 3.0 / 2.8 / 2.8 points at lr 1e-3 / 3e-3 / 1e-2. When Stage 1 never saw the contexts (router
//! input `prompt`, or contexts only in Stage 2's pool) the router has a new mapping to learn from
//! B pairs per context, and 10 epochs at 3e-3 leave it short of its labels: on a mixed synthetic
//! cache (d 32, 3 groups, 60k pairs) 0.836 / 0.846 / 0.844 at lr 3e-3 / 1e-2 / 3e-2, on the
//! HH-RLHF multi-user set (Stage 1 on contexts) 0.743 / 0.752 / 0.752 (3 seeds each), against
//! 0.887 / 0.884 on the built-in RPR-style data (5 draws). With per-pair evidence a faster router fits
//! the labels' noise (seed 1: 0.824 / 0.822 / 0.798 / 0.766 at lr 1e-3 / 3e-3 / 1e-2 / 3e-2);
//! training only the output layer (`train_hidden = false`) is more robust to larger rates.

use crate::budget::group_by_attribute;
use crate::error::{Result, RouteError};
use crate::evidence::ExpertView;
use crate::likelihood::log_sigmoid;
use crate::targets::{check_tau, hedge_targets};
use micro_cache::EmbeddingCache;
use micro_model::float::log_softmax_into;
use micro_model::RouterActs;
use micro_model::{Gate, MixtureModel, Optimiser, Router, Stage2Record};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Stage 2 settings; the defaults are the paper's where it gives them (batch 32, 10 epochs) and
/// measured choices where it does not or where its choice did harm (tau, optimiser, learning
/// rate, evidence).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptConfig {
    /// Hedge temperature tau > 0: 1 is the Bayesian posterior over the experts (the default);
    /// the paper's 1e-3 (HelpSteer2) or 1e-4 (RPR) make the label one-hot on the expert that
    /// best explains the pairs, however little better.
    pub tau: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f32,
    pub weight_decay: f32,
    /// Fraction of the steps spent warming up linearly before the cosine decay.
    pub warmup_ratio: f32,
    /// Seeds the minibatch order.
    pub seed: u64,
    /// Threads the large products may use.
    pub threads: usize,
    /// Also train the router's hidden layer (`false`: only the output layer moves).
    pub train_hidden: bool,
    /// Whose losses enter a pair's Hedge label: its own (the paper) or its context's.
    #[serde(default)]
    pub evidence: EvidenceScope,
    /// With context evidence, also fit the router on the cache's other training pairs whose
    /// context text a labelled pair shares (their labels are never read): see the module docs.
    #[serde(default)]
    pub pool_inputs: bool,
}

/// Whose losses enter a pair's Hedge label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceScope {
    /// The pair's own loss -log p_e(pair_i): Algorithm 1 as the paper writes it.
    Pair,
    /// The summed loss of every budget pair with the same context text (Hedge run over that
    /// context's stream). Pairs with a context of their own get their own loss, as with `pair`.
    #[default]
    Context,
}

impl std::str::FromStr for EvidenceScope {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "pair" => Ok(EvidenceScope::Pair),
            "context" => Ok(EvidenceScope::Context),
            _ => Err(micro_data::UnknownValue::new(
                "evidence",
                s,
                "pair or context",
            )),
        }
    }
}

impl std::fmt::Display for EvidenceScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EvidenceScope::Pair => "pair",
            EvidenceScope::Context => "context",
        })
    }
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig {
            tau: 1.0,
            epochs: 10,
            batch_size: 32,
            lr: 1e-2,
            weight_decay: 0.0,
            warmup_ratio: 0.0,
            seed: 0,
            threads: 1,
            train_hidden: true,
            evidence: EvidenceScope::default(),
            pool_inputs: true,
        }
    }
}

impl AdaptConfig {
    /// Refuses settings that cannot train.
    pub fn check(&self) -> Result<()> {
        check_tau(self.tau)?;
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(RouteError::NoSteps {
                epochs: self.epochs,
                batch_size: self.batch_size,
            });
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(RouteError::LearningRate { lr: self.lr });
        }
        if !(self.weight_decay.is_finite()
            && self.weight_decay >= 0.0
            && (0.0..1.0).contains(&self.warmup_ratio))
        {
            return Err(RouteError::DecayOrWarmup {
                weight_decay: self.weight_decay,
                warmup_ratio: self.warmup_ratio,
            });
        }
        Ok(())
    }
}

/// One epoch of Stage 2, measured at its start (targets) and over its steps (loss).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Mean cross-entropy between the soft labels and the router over the epoch's steps.
    pub cross_entropy: f64,
    /// Mean entropy of the soft labels (0 when they are one-hot).
    pub target_entropy: f64,
    /// Fraction of pairs whose router argmax already equals the label's argmax.
    pub agreement: f64,
}

/// What [`adapt`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaptReport {
    pub pairs: usize,
    /// Unlabelled training pairs the router was also fitted on (`pool_inputs`).
    #[serde(default)]
    pub pool_pairs: usize,
    pub per_attribute: BTreeMap<String, usize>,
    pub epochs: Vec<EpochStats>,
    pub seconds: f64,
    /// Why the model came back unchanged (static gate, one head, no pairs), if it did.
    pub skipped: Option<String>,
    /// Labelled pairs judged in sample: training pairs without cross-fitted evidence (a model
    /// trained without it, or evidence for another cache).
    #[serde(default)]
    pub in_sample: usize,
}

/// Adapts the router of the view's model to the labelled pairs `idx` of its cache (Algorithm 1
/// with the experts of [`crate::experts`]): each context's posterior over the experts from its
/// pairs' evidence, each pair's target that posterior with the gate's share handed to the heads
/// as the model's gate weighs them for that pair, and the router fitted to the targets by
/// cross-entropy. A static mixture keeps its Stage 1 weights and a single head has nothing to
/// adapt: both come back unchanged, with the reason in the report.
pub fn adapt(
    view: &ExpertView<'_>,
    idx: &[usize],
    cfg: &AdaptConfig,
) -> Result<(MixtureModel, AdaptReport)> {
    cfg.check()?;
    let (model, cache) = (view.model, view.cache);
    if let Some(&bad) = idx.iter().find(|&&i| i >= cache.len()) {
        return Err(RouteError::PairIndex {
            index: bad,
            pairs: cache.len(),
        });
    }
    let start = Instant::now();
    let mut report = AdaptReport {
        pairs: idx.len(),
        per_attribute: group_by_attribute(cache, idx)
            .into_iter()
            .map(|(a, v)| (a, v.len()))
            .collect(),
        in_sample: view.in_sample(idx),
        ..Default::default()
    };
    let Some(router) = model.router() else {
        return Ok(skip(
            model,
            report,
            "a static mixture keeps its Stage 1 weights",
        ));
    };
    if model.k() < 2 {
        return Ok(skip(model, report, "a single head has nothing to route"));
    }
    if idx.is_empty() {
        return Ok(skip(
            model,
            report,
            "no context-labelled pairs to route by (or a budget of 0)",
        ));
    }
    let e = view.experts().len();
    let mut log_p: Vec<f64> = (idx.iter())
        .flat_map(|&i| view.evidence(i).into_iter().map(|m| log_sigmoid(m as f64)))
        .collect();
    let mut rows = idx.to_vec();
    if cfg.evidence == EvidenceScope::Context {
        log_p = pool_by_context(cache, idx, &log_p, e);
        if cfg.pool_inputs {
            let (extra, extra_log_p) = context_pool(cache, idx, &log_p, e);
            report.pool_pairs = extra.len();
            rows.extend(extra);
            log_p.extend(extra_log_p);
        }
    }
    let targets = head_targets(view, &rows, &log_p, cfg.tau)?;
    // Stage 2 learns f(x, c): the router reads each pair's context-augmented prompt; a pair of
    // a user Stage 1's table knows keeps that user's row beside it.
    let x = cache
        .router_inputs(micro_cache::RouterInput::Pair)
        .select_rows(&rows)
        .data;
    let offsets = user_offsets(model, cache, &rows);
    let fit = Fit::new(router, &x, &offsets, rows.len(), &targets.weights, cfg);
    let (trained, epochs) = fit.run(targets.entropy);
    report.epochs = epochs;
    report.seconds = start.elapsed().as_secs_f64();
    let mut out = model.clone();
    out.set_gate(Gate::Router(trained))?;
    record(&mut out, cfg, &report);
    Ok((out, report))
}

/// Each pair's target over the K heads, and their mean entropy.
struct Targets {
    weights: Vec<f32>,
    entropy: f64,
}

/// The posterior over the experts of each pair of `rows` (their evidence `log_p` [rows, E],
/// pooled or not, and the experts' prior, at temperature `tau`), the gate's share handed to the
/// heads as the model's gate weighs them for that pair.
fn head_targets(view: &ExpertView<'_>, rows: &[usize], log_p: &[f64], tau: f64) -> Result<Targets> {
    let experts = view.experts();
    let e = experts.len();
    let log_prior: Vec<f64> = experts.prior().iter().map(|w| w.ln()).collect();
    let log_prior_rows: Vec<f64> = rows.iter().flat_map(|_| log_prior.clone()).collect();
    let posterior = hedge_targets(&log_prior_rows, log_p, e, tau)?;
    let mut weights = Vec::with_capacity(rows.len() * experts.k());
    for (w, &i) in posterior.chunks_exact(e).zip(rows) {
        let w: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        weights.extend(experts.head_weights(&w, &view.log_gate(i)));
    }
    let entropy: f64 = (weights.iter())
        .filter(|&&t| t > 0.0)
        .map(|&t| -(t as f64) * (t as f64).ln())
        .sum();
    Ok(Targets {
        entropy: entropy / rows.len().max(1) as f64,
        weights,
    })
}

/// Per pair of `rows`, the row of Stage 1's per-user table for its user (zeros for a user the
/// table does not know), [rows, K].
fn user_offsets(model: &MixtureModel, cache: &EmbeddingCache, rows: &[usize]) -> Vec<f32> {
    let k = model.k();
    let table = model.users();
    rows.iter()
        .flat_map(|&i| {
            let user = cache.pairs[i].user_id.as_deref();
            match user.and_then(|u| table?.row(u)) {
                Some(b) => b.to_vec(),
                None => vec![0.0; k],
            }
        })
        .collect()
}

/// Replaces each pair's log p [n, e] by the sum over the pairs of `idx` sharing its context
/// text; pairs without a context keep their own.
fn pool_by_context(cache: &EmbeddingCache, idx: &[usize], log_p: &[f64], e: usize) -> Vec<f64> {
    let mut sums: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (row, &i) in log_p.chunks_exact(e).zip(idx) {
        if let Some(c) = cache.pairs[i].context.as_deref() {
            let s = sums.entry(c).or_insert_with(|| vec![0.0; e]);
            for (a, b) in s.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
    let mut out = log_p.to_vec();
    for (row, &i) in out.chunks_exact_mut(e).zip(idx) {
        if let Some(s) = cache.pairs[i].context.as_deref().and_then(|c| sums.get(c)) {
            row.copy_from_slice(s);
        }
    }
    out
}

/// The training pairs outside `idx` whose context text some pair of `idx` carries, each with
/// that context's pooled log p (taken from `pooled`, aligned with `idx`).
fn context_pool(
    cache: &EmbeddingCache,
    idx: &[usize],
    pooled: &[f64],
    e: usize,
) -> (Vec<usize>, Vec<f64>) {
    let mut by_context: BTreeMap<&str, &[f64]> = BTreeMap::new();
    for (row, &i) in pooled.chunks_exact(e).zip(idx) {
        if let Some(c) = cache.pairs[i].context.as_deref() {
            by_context.insert(c, row);
        }
    }
    let labelled: std::collections::BTreeSet<usize> = idx.iter().copied().collect();
    let (mut rows, mut log_p) = (Vec::new(), Vec::new());
    for (i, p) in cache.pairs.iter().enumerate() {
        let shared = p.context.as_deref().and_then(|c| by_context.get(c));
        if let (Some(lp), true, false) = (shared, p.is_train(), labelled.contains(&i)) {
            rows.push(i);
            log_p.extend_from_slice(lp);
        }
    }
    (rows, log_p)
}

fn skip(model: &MixtureModel, mut report: AdaptReport, why: &str) -> (MixtureModel, AdaptReport) {
    report.skipped = Some(why.to_string());
    (model.clone(), report)
}

/// Keeps the Stage 2 settings with the model, beside Stage 1's.
fn record(model: &mut MixtureModel, cfg: &AdaptConfig, report: &AdaptReport) {
    model.training_mut().stage2 = Some(Stage2Record {
        tau: cfg.tau,
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        seed: cfg.seed,
        pairs: report.pairs,
        pool_pairs: report.pool_pairs,
        per_attribute: report.per_attribute.clone(),
        final_cross_entropy: report.epochs.last().map(|e| e.cross_entropy),
        selection: None,
    });
}

/// The Stage 2 fitting loop over one set of pairs and their fixed targets.
struct Fit<'a> {
    router: Router,
    x: &'a [f32],
    /// Added to the router's logits, [n, K] (the pairs' user rows).
    offsets: &'a [f32],
    n: usize,
    targets: &'a [f32],
    cfg: &'a AdaptConfig,
    opt: Optimiser,
    grads: Router,
}

impl<'a> Fit<'a> {
    fn new(
        router: &Router,
        x: &'a [f32],
        offsets: &'a [f32],
        n: usize,
        targets: &'a [f32],
        cfg: &'a AdaptConfig,
    ) -> Self {
        let steps = cfg.epochs * n.div_ceil(cfg.batch_size);
        let mut grads = router.clone();
        grads.fill_zero();
        Fit {
            router: router.clone(),
            x,
            offsets,
            n,
            targets,
            cfg,
            opt: Optimiser::new(cfg.lr, cfg.warmup_ratio, cfg.weight_decay, steps),
            grads,
        }
    }

    fn run(mut self, target_entropy: f64) -> (Router, Vec<EpochStats>) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        let mut order: Vec<usize> = (0..self.n).collect();
        let mut stats = Vec::with_capacity(self.cfg.epochs);
        for _ in 0..self.cfg.epochs {
            let agreement = self.agreement();
            order.shuffle(&mut rng);
            let cross_entropy = self.fit_epoch(&order);
            stats.push(EpochStats {
                cross_entropy,
                target_entropy,
                agreement,
            });
        }
        (self.router, stats)
    }

    /// The fraction of pairs on which the router's argmax already agrees with the target's.
    fn agreement(&self) -> f64 {
        let k = self.router.k;
        let mut logits = Vec::new();
        let mut acts = RouterActs::default();
        self.router
            .forward_batch_into(self.x, self.n, &mut logits, &mut acts, self.cfg.threads);
        add(&mut logits, self.offsets);
        let agree = (self.targets.chunks_exact(k))
            .zip(logits.chunks_exact(k))
            .filter(|(t, z)| argmax(t) == argmax(z))
            .count();
        agree as f64 / self.n.max(1) as f64
    }

    /// One pass over the pairs in `order`; returns the mean cross-entropy before each step.
    fn fit_epoch(&mut self, order: &[usize]) -> f64 {
        let (k, d) = (self.router.k, self.router.input_dim);
        let (mut xb, mut tb, mut ob) = (Vec::new(), Vec::new(), Vec::new());
        let (mut logits, mut acts) = (Vec::new(), RouterActs::default());
        let mut total = 0.0;
        for batch in order.chunks(self.cfg.batch_size) {
            xb.clear();
            tb.clear();
            ob.clear();
            for &i in batch {
                xb.extend_from_slice(&self.x[i * d..(i + 1) * d]);
                tb.extend_from_slice(&self.targets[i * k..(i + 1) * k]);
                ob.extend_from_slice(&self.offsets[i * k..(i + 1) * k]);
            }
            let nb = batch.len();
            self.router
                .forward_batch_into(&xb, nb, &mut logits, &mut acts, self.cfg.threads);
            add(&mut logits, &ob);
            total += soft_cross_entropy_grad(&mut logits, &tb, k) * nb as f64;
            self.grads.fill_zero();
            let (router, grads, threads) = (&mut self.router, &mut self.grads, self.cfg.threads);
            if self.cfg.train_hidden {
                router.backward_batch(&xb, nb, &mut acts, &logits, grads, threads);
                self.opt
                    .step(|adamw, lr| adamw.step(&mut router.params_mut(), &grads.params(), lr));
            } else {
                // Only W2 and b2 are computed and stepped: the hidden layer stays as it was
                // (weight decay included).
                router.backward_output_batch(&xb, nb, &acts, &logits, grads, threads);
                self.opt.step(|adamw, lr| {
                    adamw.step(&mut router.output_params_mut(), &grads.output_params(), lr)
                });
            }
        }
        total / order.len() as f64
    }
}

fn add(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

/// Mean over rows of -sum_k t_k log softmax(z)_k; overwrites `logits` with its gradient
/// (softmax(z) - t) / n.
pub fn soft_cross_entropy_grad(logits: &mut [f32], targets: &[f32], k: usize) -> f64 {
    let n = logits.len() / k;
    let mut loss = 0.0f64;
    let mut ls = vec![0.0f32; k];
    for (z, t) in logits.chunks_exact_mut(k).zip(targets.chunks_exact(k)) {
        log_softmax_into(z, &mut ls);
        for ((zj, &l), &tj) in z.iter_mut().zip(&ls).zip(t) {
            loss -= (tj * l) as f64;
            *zj = (l.exp() - tj) / n as f32;
        }
    }
    loss / n as f64
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::random_cache;

    #[test]
    fn context_evidence_sums_the_losses_of_pairs_sharing_a_context() {
        let mut cache = random_cache(2, 2, 3, 0);
        // Pair 5 gets a context of its own and pair 4 none: both keep their own losses.
        cache.pairs[5].context = Some("only mine".into());
        cache.pairs[4].context = None;
        let idx = [0, 1, 2, 3, 4, 5];
        let log_p: Vec<f64> = (0..12).map(|v| -(v as f64) / 10.0).collect();
        let pooled = pool_by_context(&cache, &idx, &log_p, 2);
        // Pairs 0-2 share "criterion 0": (-0.0 - 0.2 - 0.4, -0.1 - 0.3 - 0.5).
        for i in 0..3 {
            assert!((pooled[2 * i] + 0.6).abs() < 1e-12 && (pooled[2 * i + 1] + 0.9).abs() < 1e-12);
        }
        assert_eq!(&pooled[6..], &log_p[6..]);
        // Only the budget pairs count: pairs outside `idx` add nothing.
        let two = pool_by_context(&cache, &[0, 1], &log_p[..4], 2);
        assert!((two[0] + 0.2).abs() < 1e-12 && (two[3] + 0.4).abs() < 1e-12);
    }

    #[test]
    fn pool_inputs_are_the_other_training_pairs_of_the_labelled_contexts() {
        let mut cache = random_cache(2, 3, 4, 0);
        // Contexts: rows 0-3 "criterion 0", 4-7 "criterion 1", 8-11 "criterion 2".
        cache.pairs[2].split = Some(micro_data::Split::Test);
        cache.pairs[3].context = None;
        let idx = [0, 1, 5];
        let pooled = vec![-1.0, -2.0, -1.0, -2.0, -3.0, -4.0];
        let (rows, log_p) = context_pool(&cache, &idx, &pooled, 2);
        // Row 2 is a test pair and row 3 has no context; "criterion 2" has no labelled pair.
        assert_eq!(rows, vec![4, 6, 7]);
        assert_eq!(log_p, vec![-3.0, -4.0, -3.0, -4.0, -3.0, -4.0]);
        // The router then trains on the labelled pairs and these, and says so.
        let model = crate::fixture::random_model(2, 2, None, 1);
        let cfg = AdaptConfig {
            pool_inputs: true,
            ..AdaptConfig::default()
        };
        let (_, report) = adapt(
            &crate::ExpertView::new(&model, &cache, None).unwrap(),
            &idx,
            &cfg,
        )
        .unwrap();
        assert_eq!((report.pairs, report.pool_pairs), (3, 3));
        let plain_cfg = AdaptConfig {
            pool_inputs: false,
            ..AdaptConfig::default()
        };
        let (_, plain) = adapt(
            &crate::ExpertView::new(&model, &cache, None).unwrap(),
            &idx,
            &plain_cfg,
        )
        .unwrap();
        assert_eq!(plain.pool_pairs, 0);
    }

    /// Oracle: central finite differences of the loss against the returned gradient.
    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let z = vec![0.3f32, -1.2, 0.8, 2.0, 0.1, -0.4];
        let t = vec![0.2f32, 0.5, 0.3, 0.0, 1.0, 0.0];
        let mut g = z.clone();
        let loss = soft_cross_entropy_grad(&mut g, &t, 3);
        let eval = |z: &[f32]| soft_cross_entropy_grad(&mut z.to_vec(), &t, 3);
        assert!((loss - eval(&z)).abs() < 1e-12);
        let h = 1e-3f32;
        for j in 0..z.len() {
            let (mut up, mut dn) = (z.clone(), z.clone());
            up[j] += h;
            dn[j] -= h;
            let fd = (eval(&up) - eval(&dn)) / (2.0 * h as f64);
            assert!(
                (fd - g[j] as f64).abs() < 1e-3,
                "logit {j}: fd {fd} vs {}",
                g[j]
            );
        }
    }
}

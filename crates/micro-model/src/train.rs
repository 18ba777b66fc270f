//! The Stage 1 trainer: minibatch AdamW with warm-up + cosine decay on the pairs of the train
//! split, early-stopped on the log-likelihood of a held-out part of that split (best parameters
//! kept), so one set of defaults suits a few hundred pairs and a few hundred thousand.

use crate::loss::{GateParams, Objective, Params, Workspace};
use crate::model::{Gate, Method, MixtureModel, ModelConfig};
use crate::optim::{AdamW, Schedule};
use crate::router::Activation;
use micro_cache::{Matrix, TrainingArrays};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// Stage 1 hyperparameters. `Default` gives the paper's (lr 2e-3, warm-up 5%, cosine, AdamW,
/// alpha 0.5, router of 128 hidden units) with a generous epoch budget and early stopping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    /// Number of heads K (must be 1 for `single`).
    pub k: usize,
    pub lr: f32,
    /// Fraction of all steps spent warming up linearly from 0.
    pub warmup_ratio: f32,
    pub weight_decay: f32,
    pub batch: usize,
    /// Upper bound on epochs; early stopping usually ends sooner.
    pub max_epochs: usize,
    /// Weight of the negative-entropy regulariser (mixtures only).
    pub alpha: f32,
    /// `Some(h)`: MLP router with h hidden units; `None`: linear router.
    pub router_hidden: Option<usize>,
    pub activation: Activation,
    pub seed: u64,
    /// Fraction of the train split held out for early stopping (0 disables it).
    pub holdout: f32,
    /// Epochs without a held-out improvement before stopping.
    pub patience: usize,
    /// Epochs always run before early stopping may end training: heads start nearly alike and
    /// need tens of epochs to split into conflicting preferences (measured: ~30 on 5K pairs),
    /// during which the held-out likelihood barely moves.
    #[serde(default)]
    pub min_epochs: usize,
    /// Worker threads for the matrix products (0: rayon's pool size).
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            method: Method::Micro,
            k: 10,
            lr: 2e-3,
            warmup_ratio: 0.05,
            weight_decay: 0.0,
            batch: 32,
            max_epochs: 100,
            alpha: 0.5,
            router_hidden: Some(128),
            activation: Activation::Relu,
            seed: 42,
            holdout: 0.1,
            patience: 10,
            min_epochs: 30,
            threads: 0,
        }
    }
}

/// Figures for one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss (with the regulariser) over the epoch's batches.
    pub train_loss: f64,
    /// Mean NLL per held-out pair, when there is a held-out set.
    pub holdout_nll: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f32,
    pub seconds: f64,
}

/// What happened during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub n_train: usize,
    pub n_holdout: usize,
    pub epochs_run: usize,
    /// The epoch whose parameters were kept.
    pub best_epoch: usize,
    pub best_holdout_nll: Option<f64>,
    pub stopped_early: bool,
    pub seconds: f64,
    pub history: Vec<EpochStats>,
    /// The rows held out for early stopping (training pairs the optimiser never saw): where
    /// later steps that must not look at the test split compare heads.
    #[serde(skip)]
    pub holdout_rows: Vec<usize>,
}

/// Progress notifications for a bar or a log.
#[derive(Clone, Debug)]
pub enum TrainEvent<'a> {
    /// Before the first step: total steps if every epoch runs.
    Start {
        steps_per_epoch: usize,
        max_epochs: usize,
        n_train: usize,
        n_holdout: usize,
    },
    /// After each optimiser step (1-based count over the whole run).
    Step {
        step: usize,
        epoch: usize,
        loss: f64,
    },
    /// After each epoch.
    Epoch(&'a EpochStats),
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error("no training pairs: {0}")]
    NoData(String),
    #[error("{0}")]
    NotFinite(String),
}

impl TrainConfig {
    /// Checks the settings that do not depend on the data.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.k == 0 {
            return bad("K = 0 heads: use --heads 1 or more".into());
        }
        if self.method == Method::Single && self.k != 1 {
            return bad(format!(
                "method single trains one head, not {}: use --heads 1 (or another method)",
                self.k
            ));
        }
        if self.batch == 0 {
            return bad("batch size 0: use --batch 1 or more".into());
        }
        if self.max_epochs == 0 {
            return bad("0 epochs: use --epochs 1 or more".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate {} must be a positive number",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return bad(format!(
                "holdout fraction {} must be in [0, 1)",
                self.holdout
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "warm-up ratio {} must be in [0, 1]",
                self.warmup_ratio
            ));
        }
        if !(self.alpha.is_finite() && self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("alpha and weight decay must be finite (weight decay >= 0)".into());
        }
        if self.router_hidden == Some(0) {
            return bad(
                "router with 0 hidden units: use --router linear or --hidden 1 or more".into(),
            );
        }
        Ok(())
    }

    fn threads(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }
}

/// Trains on the pairs of `arrays` whose split is train (or unset).
pub fn train(
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    progress: impl FnMut(&TrainEvent) + Send,
) -> Result<(MixtureModel, TrainReport), TrainError> {
    cfg.validate()?;
    let train_idx: Vec<usize> = (0..arrays.pairs.len())
        .filter(|&i| arrays.pairs[i].is_train())
        .collect();
    if train_idx.is_empty() {
        return Err(TrainError::NoData(format!(
            "all {} pairs of the cache are in the test split: train on a cache with split \"train\" (or no split) pairs",
            arrays.pairs.len()
        )));
    }
    let hash = train_pairs_hash(arrays, &train_idx);
    let groups = prompt_groups(&arrays.pairs);
    let (params, report) = train_rows(
        &arrays.diff,
        &arrays.prompt,
        &train_idx,
        Some(&groups),
        cfg,
        progress,
    )?;
    let model = to_model(params, arrays, cfg, hash, &report);
    Ok((model, report))
}

/// Each pair's prompt as a group id: pairs of one prompt are held out together.
fn prompt_groups(pairs: &[micro_data::PrefPair]) -> Vec<u64> {
    pairs
        .iter()
        .map(|p| {
            let key = serde_json::to_vec(&p.prompt).unwrap_or_default();
            key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
            })
        })
        .collect()
}

/// The trainer on raw arrays: rows `rows` of `diff` [n, dim] and `prompt` [n, prompt_dim].
/// With `groups` (a group id per row of the arrays, e.g. its prompt), the held-out pairs are
/// whole groups: test splits are by prompt, and a router that memorises prompts would look good
/// on held-out pairs of prompts it has seen.
///
/// The run happens on a thread of rayon's pool (the caller waits), so `progress` is called there.
pub fn train_rows(
    diff: &Matrix,
    prompt: &Matrix,
    rows: &[usize],
    groups: Option<&[u64]>,
    cfg: &TrainConfig,
    progress: impl FnMut(&TrainEvent) + Send,
) -> Result<(Params<f32>, TrainReport), TrainError> {
    // From a pool thread, the per-step split of the batch is picked up by the other worker
    // while it still spins; from outside, every step pays to wake it and to wake us back
    // (measured on 2 cores: an empty rayon::join costs 7-14 µs from outside, ~0 from inside;
    // AdamW over 107k parameters in two halves took 114 µs from outside, 50 µs from inside).
    rayon::scope(|_| train_rows_here(diff, prompt, rows, groups, cfg, progress))
}

fn train_rows_here(
    diff: &Matrix,
    prompt: &Matrix,
    rows: &[usize],
    groups: Option<&[u64]>,
    cfg: &TrainConfig,
    mut progress: impl FnMut(&TrainEvent),
) -> Result<(Params<f32>, TrainReport), TrainError> {
    cfg.validate()?;
    check_finite_rows(diff, prompt, rows, cfg.method)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (fit, held) = split_holdout(rows, groups, cfg.holdout, &mut rng);
    if cfg.k > fit.len() {
        return Err(TrainError::Config(format!(
            "{} heads for {} training pairs (after holding out {}): use fewer heads or more data",
            cfg.k,
            fit.len(),
            held.len()
        )));
    }
    let mut params = Params::init(
        cfg.method,
        cfg.k,
        diff.cols,
        prompt.cols,
        cfg.router_hidden,
        cfg.activation,
        &mut rng,
    );
    let objective = Objective {
        method: cfg.method,
        alpha: cfg.alpha as f64,
    };
    let steps_per_epoch = fit.len().div_ceil(cfg.batch);
    let schedule = Schedule::new(cfg.lr, cfg.warmup_ratio, steps_per_epoch * cfg.max_epochs);
    let mut run = Run::new(&params, cfg, objective);
    progress(&TrainEvent::Start {
        steps_per_epoch,
        max_epochs: cfg.max_epochs,
        n_train: fit.len(),
        n_holdout: held.len(),
    });
    let start = Instant::now();
    let mut order = fit.clone();
    let mut best = (f64::INFINITY, 0usize, params.clone());
    let mut history = Vec::new();
    let mut stopped_early = false;
    for epoch in 1..=cfg.max_epochs {
        let t0 = Instant::now();
        order.shuffle(&mut rng);
        let train_loss = run.epoch(
            &mut params,
            diff,
            prompt,
            &order,
            &schedule,
            epoch,
            &mut progress,
        )?;
        let holdout_nll = (!held.is_empty()).then(|| run.mean_nll(&params, diff, prompt, &held));
        let stats = EpochStats {
            epoch,
            train_loss,
            holdout_nll,
            lr: schedule.lr(run.step),
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&TrainEvent::Epoch(&stats));
        history.push(stats);
        // Without a held-out set the last parameters are kept.
        let score = holdout_nll.unwrap_or(-(epoch as f64));
        if score < best.0 {
            best = (score, epoch, params.clone());
        } else if epoch >= cfg.min_epochs && epoch - best.1 >= cfg.patience.max(1) {
            stopped_early = epoch < cfg.max_epochs;
            break;
        }
    }
    let report = TrainReport {
        n_train: fit.len(),
        n_holdout: held.len(),
        epochs_run: history.len(),
        best_epoch: best.1,
        best_holdout_nll: (!held.is_empty()).then_some(best.0),
        stopped_early,
        seconds: start.elapsed().as_secs_f64(),
        history,
        holdout_rows: held,
    };
    Ok((best.2, report))
}

/// Mutable state of a run: optimiser and one [`Shard`] per thread.
///
/// A batch is split into contiguous parts, one per shard, and each shard computes the mean
/// loss and gradient of its part on its own thread with its own buffers; AdamW then steps on
/// the parts' gradients weighted by their share of the batch, which is the batch-mean gradient.
/// Measured on 2 cores (`micro bench train`, d 768, K 10): splitting the batch this way beats
/// splitting each product, whose pieces are too small at batch 32 to pay for the hand-off.
struct Run {
    objective: Objective,
    opt: AdamW,
    shards: Vec<Shard>,
    batch: usize,
    threads: usize,
    uses_prompt: bool,
    step: usize,
}

/// One thread's part of a batch: its rows, buffers and gradient.
struct Shard {
    grads: Params<f32>,
    ws: Workspace<f32>,
    xb: Vec<f32>,
    pb: Vec<f32>,
    rows: usize,
    loss: f32,
}

/// Rows per shard below which a batch is not split: the hand-off would cost more.
const SHARD_MIN_ROWS: usize = 8;

impl Shard {
    /// Copies rows `idx` into the batch buffers (the arrays themselves are never copied whole).
    fn gather(&mut self, diff: &Matrix, prompt: &Matrix, idx: &[usize], uses_prompt: bool) {
        self.xb.clear();
        self.pb.clear();
        for &i in idx {
            self.xb.extend_from_slice(diff.row(i));
            if uses_prompt {
                self.pb.extend_from_slice(prompt.row(i));
            }
        }
        self.rows = idx.len();
    }

    /// Mean loss and gradient of rows `idx`, on the calling thread.
    #[allow(clippy::too_many_arguments)]
    fn loss_and_grad(
        &mut self,
        objective: &Objective,
        params: &Params<f32>,
        diff: &Matrix,
        prompt: &Matrix,
        idx: &[usize],
        uses_prompt: bool,
        threads: usize,
    ) {
        self.gather(diff, prompt, idx, uses_prompt);
        self.grads.fill_zero();
        self.loss = objective
            .loss_and_grad(
                params,
                &self.xb,
                &self.pb,
                idx.len(),
                Some(&mut self.grads),
                &mut self.ws,
                threads,
            )
            .loss;
    }
}

impl Run {
    fn new(params: &Params<f32>, cfg: &TrainConfig, objective: Objective) -> Self {
        let uses_prompt = matches!(params.gate, GateParams::Router(_));
        let threads = cfg.threads();
        let n_shards = threads.clamp(1, (cfg.batch / SHARD_MIN_ROWS).max(1));
        let shards = (0..n_shards)
            .map(|_| Shard {
                grads: params.zeros_like(),
                ws: Workspace::default(),
                xb: Vec::new(),
                pb: Vec::new(),
                rows: 0,
                loss: 0.0,
            })
            .collect();
        Run {
            objective,
            opt: AdamW::new(cfg.weight_decay),
            shards,
            batch: cfg.batch,
            threads,
            uses_prompt,
            step: 0,
        }
    }

    /// The batch's mean loss; its gradient is left in the shards.
    fn batch_loss_and_grad(
        &mut self,
        params: &Params<f32>,
        diff: &Matrix,
        prompt: &Matrix,
        idx: &[usize],
    ) -> f32 {
        let (objective, uses_prompt) = (&self.objective, self.uses_prompt);
        if self.shards.len() == 1 {
            let threads = self.threads;
            let shard = &mut self.shards[0];
            shard.loss_and_grad(objective, params, diff, prompt, idx, uses_prompt, threads);
            return shard.loss;
        }
        let per = idx.len().div_ceil(self.shards.len());
        let parts = idx.chunks(per).chain(std::iter::repeat(&[][..]));
        let work: Vec<(&mut Shard, &[usize])> = self.shards.iter_mut().zip(parts).collect();
        work.into_par_iter().for_each(|(shard, part)| {
            shard.loss_and_grad(objective, params, diff, prompt, part, uses_prompt, 1)
        });
        let n = idx.len() as f32;
        self.shards.iter().map(|s| s.loss * s.rows as f32 / n).sum()
    }

    /// One AdamW step on the batch gradient held by the shards.
    fn apply(&mut self, params: &mut Params<f32>, lr: f32) {
        let n: usize = self.shards.iter().map(|s| s.rows).sum();
        let grads: Vec<([&[f32]; 5], f32)> = self
            .shards
            .iter()
            .filter(|s| s.rows > 0)
            .map(|s| (s.grads.tensors(), s.rows as f32 / n as f32))
            .collect();
        let grads: Vec<(&[&[f32]], f32)> = grads.iter().map(|(g, w)| (&g[..], *w)).collect();
        self.opt
            .step_sum(&mut params.tensors_mut(), &grads, lr, self.threads);
    }

    /// One pass over `order`; returns the mean batch loss.
    #[allow(clippy::too_many_arguments)]
    fn epoch(
        &mut self,
        params: &mut Params<f32>,
        diff: &Matrix,
        prompt: &Matrix,
        order: &[usize],
        schedule: &Schedule,
        epoch: usize,
        progress: &mut impl FnMut(&TrainEvent),
    ) -> Result<f64, TrainError> {
        let mut total = 0.0f64;
        let batches = order.chunks(self.batch);
        let count = batches.len();
        for idx in batches {
            let loss = self.batch_loss_and_grad(params, diff, prompt, idx);
            if !loss.is_finite() {
                return Err(TrainError::NotFinite(format!(
                    "the training loss became {loss} at epoch {epoch}, step {}: lower the learning rate (--lr) or check the embeddings",
                    self.step + 1
                )));
            }
            self.apply(params, schedule.lr(self.step));
            self.step += 1;
            total += loss as f64;
            progress(&TrainEvent::Step {
                step: self.step,
                epoch,
                loss: loss as f64,
            });
        }
        Ok(total / count.max(1) as f64)
    }

    /// Mean NLL per pair over rows `idx` (no gradient).
    fn mean_nll(
        &mut self,
        params: &Params<f32>,
        diff: &Matrix,
        prompt: &Matrix,
        idx: &[usize],
    ) -> f64 {
        let mut sum = 0.0f64;
        let (threads, uses_prompt) = (self.threads, self.uses_prompt);
        let shard = &mut self.shards[0];
        for chunk in idx.chunks(HOLDOUT_CHUNK) {
            shard.gather(diff, prompt, chunk, uses_prompt);
            let parts = self.objective.loss_and_grad(
                params,
                &shard.xb,
                &shard.pb,
                chunk.len(),
                None,
                &mut shard.ws,
                threads,
            );
            sum += parts.nll as f64 * chunk.len() as f64;
        }
        sum / idx.len().max(1) as f64
    }
}

/// Held-out pairs per forward pass.
const HOLDOUT_CHUNK: usize = 512;

/// Shuffles `rows` and splits off about round(fraction * n) of them for early stopping, keeping
/// at least one pair to train on. With `groups`, whole groups go: groups in a shuffled order
/// until the held-out rows reach the target.
fn split_holdout(
    rows: &[usize],
    groups: Option<&[u64]>,
    fraction: f32,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let mut all = rows.to_vec();
    all.shuffle(rng);
    let n_held =
        ((fraction as f64 * rows.len() as f64).round() as usize).min(rows.len().saturating_sub(1));
    let Some(groups) = groups else {
        let fit = all.split_off(n_held);
        return (fit, all);
    };
    let mut size: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for &r in rows {
        *size.entry(groups[r]).or_insert(0) += 1;
    }
    // Groups in the order of their first row in the shuffle: a seeded order of groups.
    let mut held_groups = std::collections::HashSet::new();
    let mut held = 0usize;
    for &r in &all {
        if held >= n_held {
            break;
        }
        if held_groups.insert(groups[r]) {
            held += size[&groups[r]];
        }
    }
    let (mut held_rows, fit): (Vec<usize>, Vec<usize>) = all
        .into_iter()
        .partition(|&r| held_groups.contains(&groups[r]));
    if fit.is_empty() {
        // One group only: hold out by pair rather than train on nothing.
        let mut fit = held_rows;
        held_rows = fit.split_off(fit.len() - n_held.min(fit.len().saturating_sub(1)));
        return (fit, held_rows);
    }
    (fit, held_rows)
}

/// Refuses NaN or infinite inputs up front, naming the first offending pair.
fn check_finite_rows(
    diff: &Matrix,
    prompt: &Matrix,
    rows: &[usize],
    method: Method,
) -> Result<(), TrainError> {
    for &i in rows {
        let bad = !diff.row(i).iter().all(|v| v.is_finite())
            || (method == Method::Micro && !prompt.row(i).iter().all(|v| v.is_finite()));
        if bad {
            return Err(TrainError::NotFinite(format!(
                "pair {} (row {i} of the cache) has a NaN or infinite embedding: re-embed it or drop it from the data",
                i + 1
            )));
        }
    }
    Ok(())
}

/// sha256 of the training pairs in the cache's canonical form (equals the cache's `pairs_hash`
/// when every pair is a training pair).
fn train_pairs_hash(arrays: &TrainingArrays, idx: &[usize]) -> String {
    if idx.len() == arrays.pairs.len() && !arrays.meta.pairs_hash.is_empty() {
        return arrays.meta.pairs_hash.clone();
    }
    let mut h = Sha256::new();
    for &i in idx {
        h.update(serde_json::to_vec(&arrays.pairs[i]).unwrap_or_default());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Wraps trained parameters as the saved artefact, with provenance in `config.json`.
fn to_model(
    params: Params<f32>,
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    train_pairs_hash: String,
    report: &TrainReport,
) -> MixtureModel {
    let (gate, router) = match params.gate {
        GateParams::Router(r) => {
            let kind = if r.hidden.is_some() { "mlp" } else { "linear" };
            (Gate::Router(r), kind)
        }
        GateParams::Static(z) => (Gate::Static(z), "static"),
        // Single and shared-base mix uniformly: zero logits.
        GateParams::None => (Gate::Static(vec![0.0; params.k]), "static"),
    };
    let training = serde_json::json!({
        "hyperparameters": cfg,
        "n_train": report.n_train,
        "n_holdout": report.n_holdout,
        "epochs_run": report.epochs_run,
        "best_epoch": report.best_epoch,
        "best_holdout_nll": report.best_holdout_nll,
        "stopped_early": report.stopped_early,
        "seconds": report.seconds,
    });
    let config = ModelConfig {
        format_version: 1,
        method: cfg.method,
        k: params.k,
        dim: params.dim,
        prompt_dim: arrays.prompt.cols,
        router: router.to_string(),
        router_hidden: if router == "mlp" {
            cfg.router_hidden
        } else {
            None
        },
        activation: cfg.activation,
        backbone: arrays.meta.backbone.clone(),
        recipe: arrays.meta.recipe(),
        router_input: arrays.router_input,
        train_pairs_hash,
        training,
        history: serde_json::Value::Null,
    };
    MixtureModel {
        config,
        heads: Matrix::new(params.k, params.dim, params.heads),
        gate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Oracle: the gradient of the whole batch on one shard. Three shards of uneven size,
    /// weighted by their rows, must give the same loss and the same AdamW step.
    #[test]
    fn sharded_batches_give_the_whole_batch_gradient() {
        let (n, d, k) = (37, 6, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut m = || {
            Matrix::new(
                n,
                d,
                (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect(),
            )
        };
        let (diff, prompt) = (m(), m());
        let idx: Vec<usize> = (0..n).rev().collect();
        let step = |threads: usize| {
            let cfg = TrainConfig {
                k,
                batch: n,
                threads,
                router_hidden: Some(5),
                ..TrainConfig::default()
            };
            let mut params = Params::init(
                Method::Micro,
                k,
                d,
                d,
                cfg.router_hidden,
                cfg.activation,
                &mut ChaCha8Rng::seed_from_u64(9),
            );
            let objective = Objective {
                method: Method::Micro,
                alpha: 0.5,
            };
            let mut run = Run::new(&params, &cfg, objective);
            let loss = run.batch_loss_and_grad(&params, &diff, &prompt, &idx);
            // The gradient AdamW sees: the shards' weighted sum.
            let mut grad = params.zeros_like();
            for s in &run.shards {
                let w = s.rows as f32 / n as f32;
                for (g, sg) in grad.tensors_mut().into_iter().zip(s.grads.tensors()) {
                    for (a, b) in g.iter_mut().zip(sg) {
                        *a += w * b;
                    }
                }
            }
            run.apply(&mut params, 1e-2);
            (
                run.shards.iter().map(|s| s.rows).collect::<Vec<_>>(),
                loss,
                grad,
                params,
            )
        };
        let (rows1, loss1, g1, p1) = step(1);
        let (rows3, loss3, g3, p3) = step(3);
        assert_eq!((rows1, rows3), (vec![37], vec![13, 13, 11]));
        assert!((loss1 - loss3).abs() < 1e-6, "{loss1} vs {loss3}");
        for (a, b) in g1.tensors().iter().zip(g3.tensors().iter()) {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!(
                    (x - y).abs() < 1e-6 * (1.0 + x.abs()),
                    "gradient {x} vs {y}"
                );
            }
        }
        for (a, b) in p1.tensors().iter().zip(p3.tensors().iter()) {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() < 1e-5, "parameter {x} vs {y}");
            }
        }
    }
}

#[cfg(test)]
mod holdout_tests {
    use super::*;

    #[test]
    fn groups_are_held_out_whole_and_the_split_is_seeded() {
        let rows: Vec<usize> = (0..100).collect();
        let groups: Vec<u64> = (0..100).map(|i| (i / 4) as u64).collect();
        let split = |seed| {
            split_holdout(
                &rows,
                Some(&groups),
                0.1,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        let (fit, held) = split(7);
        assert_eq!(fit.len() + held.len(), 100);
        assert!((10..=12).contains(&held.len()), "{}", held.len());
        for h in &held {
            assert!(fit.iter().all(|f| groups[*f] != groups[*h]), "group split");
        }
        assert_eq!(split(7), (fit, held));
        let (fit1, _) = split_holdout(
            &rows[..4],
            Some(&groups),
            0.5,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        assert!(!fit1.is_empty(), "one group: still something to train on");
    }
}

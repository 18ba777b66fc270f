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
    progress: impl FnMut(&TrainEvent),
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
    let (params, report) = train_rows(&arrays.diff, &arrays.prompt, &train_idx, cfg, progress)?;
    let model = to_model(params, arrays, cfg, hash, &report);
    Ok((model, report))
}

/// The trainer on raw arrays: rows `rows` of `diff` [n, dim] and `prompt` [n, prompt_dim].
pub fn train_rows(
    diff: &Matrix,
    prompt: &Matrix,
    rows: &[usize],
    cfg: &TrainConfig,
    mut progress: impl FnMut(&TrainEvent),
) -> Result<(Params<f32>, TrainReport), TrainError> {
    cfg.validate()?;
    check_finite_rows(diff, prompt, rows, cfg.method)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (fit, held) = split_holdout(rows, cfg.holdout, &mut rng);
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
    let mut run = Run::new(&params, cfg, diff.cols, prompt.cols, objective);
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
    };
    Ok((best.2, report))
}

/// Mutable state of a run: optimiser, gradient buffer, batch buffers.
struct Run {
    objective: Objective,
    opt: AdamW,
    grads: Params<f32>,
    ws: Workspace<f32>,
    xb: Vec<f32>,
    pb: Vec<f32>,
    batch: usize,
    threads: usize,
    uses_prompt: bool,
    step: usize,
}

impl Run {
    fn new(
        params: &Params<f32>,
        cfg: &TrainConfig,
        dim: usize,
        prompt_dim: usize,
        objective: Objective,
    ) -> Self {
        let uses_prompt = matches!(params.gate, GateParams::Router(_));
        Run {
            objective,
            opt: AdamW::new(cfg.weight_decay),
            grads: params.zeros_like(),
            ws: Workspace::default(),
            xb: Vec::with_capacity(cfg.batch * dim),
            pb: Vec::with_capacity(if uses_prompt {
                cfg.batch * prompt_dim
            } else {
                0
            }),
            batch: cfg.batch,
            threads: cfg.threads(),
            uses_prompt,
            step: 0,
        }
    }

    /// Copies rows `idx` into the batch buffers (the arrays themselves are never copied whole).
    fn gather(&mut self, diff: &Matrix, prompt: &Matrix, idx: &[usize]) {
        self.xb.clear();
        self.pb.clear();
        for &i in idx {
            self.xb.extend_from_slice(diff.row(i));
            if self.uses_prompt {
                self.pb.extend_from_slice(prompt.row(i));
            }
        }
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
            self.gather(diff, prompt, idx);
            self.grads.fill_zero();
            let parts = self.objective.loss_and_grad(
                params,
                &self.xb,
                &self.pb,
                idx.len(),
                Some(&mut self.grads),
                &mut self.ws,
                self.threads,
            );
            if !parts.loss.is_finite() {
                return Err(TrainError::NotFinite(format!(
                    "the training loss became {} at epoch {epoch}, step {}: lower the learning rate (--lr) or check the embeddings",
                    parts.loss,
                    self.step + 1
                )));
            }
            let lr = schedule.lr(self.step);
            let grads = self.grads.tensors();
            self.opt.step(&mut params.tensors_mut(), &grads, lr);
            self.step += 1;
            total += parts.loss as f64;
            progress(&TrainEvent::Step {
                step: self.step,
                epoch,
                loss: parts.loss as f64,
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
        for chunk in idx.chunks(self.batch.max(256)) {
            self.gather(diff, prompt, chunk);
            let parts = self.objective.loss_and_grad(
                params,
                &self.xb,
                &self.pb,
                chunk.len(),
                None,
                &mut self.ws,
                self.threads,
            );
            sum += parts.nll as f64 * chunk.len() as f64;
        }
        sum / idx.len().max(1) as f64
    }
}

/// Shuffles `rows` and splits off round(fraction * n) of them for early stopping, keeping at
/// least one pair to train on.
fn split_holdout(rows: &[usize], fraction: f32, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let mut all = rows.to_vec();
    all.shuffle(rng);
    let n_held =
        ((fraction as f64 * rows.len() as f64).round() as usize).min(rows.len().saturating_sub(1));
    let fit = all.split_off(n_held);
    (fit, all)
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

//! Stage 1's settings ([`TrainConfig`], checked by [`TrainConfig::validate`]) and what a run
//! reports: per-epoch figures, the final report, progress events and errors.

use crate::method::Method;
use crate::router::Activation;
use serde::{Deserialize, Serialize};

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
    /// Learn a per-user table beside the router (`micro`, where training pairs carry user ids;
    /// see [`crate::UserIds`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub users: bool,
}

/// Hidden units of the default MLP router (the paper's).
pub const ROUTER_HIDDEN: usize = 128;

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
            router_hidden: Some(ROUTER_HIDDEN),
            activation: Activation::Relu,
            seed: 42,
            holdout: 0.1,
            patience: 10,
            min_epochs: 30,
            threads: 0,
            users: false,
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
    /// The NLL of each held-out pair (aligned with `holdout_rows`) at the kept epoch: what the
    /// search compares variants by, pair by pair.
    #[serde(skip)]
    pub holdout_nlls: Vec<f64>,
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

/// Why Stage 1 cannot train, with the facts a caller can act on. The messages name the
/// settings ([`TrainConfig`]'s fields in words) and say what to change.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training setting: K = 0 heads: train 1 or more heads")]
    NoHeads,
    #[error(
        "invalid training setting: method single trains one head, not {heads}: train 1 head (or use another method)"
    )]
    SingleWithHeads { heads: usize },
    #[error("invalid training setting: batch size 0: use a batch size of 1 or more")]
    NoBatch,
    #[error("invalid training setting: 0 epochs: train for 1 or more epochs")]
    NoEpochs,
    #[error("invalid training setting: learning rate {lr} must be a positive number")]
    LearningRate { lr: f32 },
    #[error("invalid training setting: holdout fraction {holdout} must be in [0, 1)")]
    Holdout { holdout: f32 },
    #[error("invalid training setting: warm-up ratio {warmup_ratio} must be in [0, 1]")]
    Warmup { warmup_ratio: f32 },
    #[error(
        "invalid training setting: alpha {alpha} and weight decay {weight_decay} must be finite (weight decay >= 0)"
    )]
    Regulariser { alpha: f32, weight_decay: f32 },
    #[error(
        "invalid training setting: router with 0 hidden units: use a linear router or 1 or more hidden units"
    )]
    NoHiddenUnits,
    #[error(
        "invalid training setting: the hyperparameter search compares held-out likelihoods: use a holdout fraction above 0, or give both alpha and the learning rate"
    )]
    SearchWithoutHoldout,
    #[error("invalid training setting: an empty search grid")]
    EmptyGrid,
    #[error(
        "a per-user table needs training pairs with a `user_id`: none of them has one; train without the table"
    )]
    NoUserIds,
    #[error("a per-user table sits beside a router: method {method} has none; use method micro")]
    TableNeedsRouter { method: crate::Method },
    #[error(
        "invalid training setting: {heads} heads for {pairs} training pairs (after holding out {held_out}): use fewer heads or more data"
    )]
    TooFewPairs {
        heads: usize,
        pairs: usize,
        held_out: usize,
    },
    #[error("invalid training setting: {pairs} pairs of width {dim}: both must be at least 1")]
    EmptyArrays { pairs: usize, dim: usize },
    #[error(
        "no training pairs: all {pairs} pairs of the cache are in the test split: train on a cache with split \"train\" (or no split) pairs"
    )]
    NoTrainPairs { pairs: usize },
    /// `row` is the 0-based row of the cache.
    #[error(
        "pair {} (row {row} of the cache) has a NaN or infinite embedding: re-embed it or drop it from the data",
        row + 1
    )]
    NotFiniteEmbedding { row: usize },
    /// `step` counts the optimiser steps of the run from 1.
    #[error(
        "the training loss became {loss} at epoch {epoch}, step {step}: lower the learning rate or check the embeddings"
    )]
    NotFiniteLoss {
        loss: f32,
        epoch: usize,
        step: usize,
    },
    /// The run's stop flag was set ([`crate::with_stop_flag`]).
    #[error("training stopped before it finished: no model was kept")]
    Cancelled,
}

impl TrainConfig {
    /// Checks the settings that do not depend on the data.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.k == 0 {
            return Err(TrainError::NoHeads);
        }
        if self.method == Method::Single && self.k != 1 {
            return Err(TrainError::SingleWithHeads { heads: self.k });
        }
        if self.batch == 0 {
            return Err(TrainError::NoBatch);
        }
        if self.max_epochs == 0 {
            return Err(TrainError::NoEpochs);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::LearningRate { lr: self.lr });
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return Err(TrainError::Holdout {
                holdout: self.holdout,
            });
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err(TrainError::Warmup {
                warmup_ratio: self.warmup_ratio,
            });
        }
        if !(self.alpha.is_finite() && self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(TrainError::Regulariser {
                alpha: self.alpha,
                weight_decay: self.weight_decay,
            });
        }
        if self.router_hidden == Some(0) {
            return Err(TrainError::NoHiddenUnits);
        }
        Ok(())
    }

    /// Worker threads: `threads`, or rayon's pool size for 0.
    pub(super) fn threads(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }
}

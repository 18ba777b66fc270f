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

    /// Worker threads: `threads`, or rayon's pool size for 0.
    pub(super) fn threads(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }
}

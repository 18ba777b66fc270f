//! What `config.json` records about how a model was made, beside its shape: `training`
//! ([`Training`]: Stage 1's settings and figures, the hyperparameter search, Stage 2's settings)
//! and `history` ([`HistoryEvent`]: heads masked or merged away). The trainer, micro-route's
//! Stage 2 and head tools, and the readers (`micro train`, the demo) all use these types, so a
//! field has one name and one type everywhere. The field names are those `config.json` has
//! always had; a record or field missing from an older file reads as absent.

use crate::search::Search;
use crate::train::{TrainConfig, TrainReport};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// `config.json`'s `training`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// How Stage 1 trained (`None` for a model made another way, e.g. by hand). Its fields sit
    /// at the top of `training`, as they always have.
    #[serde(flatten)]
    pub stage1: Option<Stage1Record>,
    /// The hyperparameter search that chose Stage 1's alpha and learning rate, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    /// Stage 2's settings, once the router was adapted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage2: Option<Stage2Record>,
}

/// Stage 1's settings and what the run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage1Record {
    /// The settings of the kept run (after a search: the chosen alpha and learning rate).
    pub hyperparameters: TrainConfig,
    pub n_train: usize,
    pub n_holdout: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_holdout_nll: Option<f64>,
    pub stopped_early: bool,
    pub seconds: f64,
}

impl Stage1Record {
    /// The record of a run with `cfg` that reported `report`.
    pub fn new(cfg: &TrainConfig, report: &TrainReport) -> Self {
        Stage1Record {
            hyperparameters: cfg.clone(),
            n_train: report.n_train,
            n_holdout: report.n_holdout,
            epochs_run: report.epochs_run,
            best_epoch: report.best_epoch,
            best_holdout_nll: report.best_holdout_nll,
            stopped_early: report.stopped_early,
            seconds: report.seconds,
        }
    }
}

/// How Stage 2's labelled pairs were picked from a context's pool.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// Drawn at random (the paper).
    #[default]
    Random,
    /// Chosen one at a time by the information of their answer (micro-route's `query`).
    Active,
}

impl Selection {
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Random => "random",
            Selection::Active => "active",
        }
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Selection {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "random" => Ok(Selection::Random),
            "active" => Ok(Selection::Active),
            _ => Err(micro_data::UnknownValue::new(
                "selection",
                s,
                "random or active",
            )),
        }
    }
}

/// Stage 2's settings (micro-route's `AdaptConfig`, in part) and what the adaptation used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage2Record {
    pub tau: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub seed: u64,
    /// Labelled pairs.
    pub pairs: usize,
    /// Unlabelled training pairs the router was also fitted on.
    #[serde(default)]
    pub pool_pairs: usize,
    /// Labelled pairs per attribute.
    #[serde(default)]
    pub per_attribute: BTreeMap<String, usize>,
    /// The cross-entropy of the last epoch.
    #[serde(default)]
    pub final_cross_entropy: Option<f64>,
    /// How the labelled pairs were picked (recorded by `micro adapt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

/// One change to a trained model's heads, in `config.json`'s `history`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum HistoryEvent {
    /// Heads removed because they prefer unsafe answers (micro-route's audit).
    Mask {
        removed: Vec<usize>,
        kept: Vec<usize>,
        reason: String,
        /// The accuracy on the safety set below which a head was removed.
        threshold: f64,
        /// The removed heads' accuracy on the safety set.
        removed_accuracy: Vec<f64>,
        safety_set: String,
        pairs: usize,
    },
    /// Correlated heads merged into their clusters' leaders (micro-route's merge).
    Merge {
        clusters: Vec<Vec<usize>>,
        /// The correlation above which heads were merged.
        threshold: f64,
        pairs: usize,
        removed: Vec<usize>,
        rule: String,
    },
}

/// A field that may be `null` in `config.json` (as `training` and `history` were when empty)
/// reads as its default.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    /// `config.json` as the trainer, `micro adapt --select active` and `micro heads merge` wrote
    /// it before these records were typed (values from a real run).
    const UNTYPED: &str = r#"{
      "format_version": 1, "method": "micro", "k": 2, "dim": 3, "prompt_dim": 3,
      "router": "mlp", "router_hidden": 4, "activation": "relu",
      "backbone": {"name": "all-MiniLM-L6-v2", "kind": "encoder"},
      "train_pairs_hash": "ab",
      "training": {
        "best_epoch": 31, "best_holdout_nll": 0.5039, "epochs_run": 41,
        "hyperparameters": {"activation": "relu", "alpha": 0.05000000074505806, "batch": 32,
          "holdout": 0.10000000149011612, "k": 2, "lr": 0.009999999776482582, "max_epochs": 100,
          "method": "micro", "min_epochs": 30, "patience": 10, "router_hidden": 4, "seed": 0,
          "threads": 0, "warmup_ratio": 0.05000000074505806, "weight_decay": 0.0},
        "n_holdout": 90, "n_train": 810, "seconds": 3.5, "stopped_early": true,
        "search": {"chosen": 1,
          "grid": {"alphas": [0.5, 0.05000000074505806], "lrs": [0.009999999776482582]},
          "trials": [{"alpha": 0.5, "best_epoch": 30, "epochs_run": 40, "holdout_nll": 0.61,
                      "lr": 0.009999999776482582, "seconds": 1.5},
                     {"alpha": 0.05000000074505806, "best_epoch": 31, "epochs_run": 41,
                      "holdout_nll": 0.5039, "lr": 0.009999999776482582, "seconds": 2.0}]},
        "stage2": {"batch_size": 32, "epochs": 10, "final_cross_entropy": 0.12,
          "lr": 0.009999999776482582, "pairs": 100, "per_attribute": {"a": 50, "b": 50},
          "pool_pairs": 300, "seed": 0, "selection": "active", "tau": 0.001, "weight_decay": 0.0}
      },
      "history": [
        {"op": "merge", "clusters": [[0, 2], [1]], "threshold": 0.9, "pairs": 120,
         "removed": [2], "rule": "mass-weighted average of member heads; leader's router row"}
      ]
    }"#;

    #[test]
    fn a_config_written_untyped_loads_with_every_record() {
        let c: ModelConfig = serde_json::from_str(UNTYPED).unwrap();
        let s1 = c.training.stage1.as_ref().expect("Stage 1's record");
        assert_eq!(
            (s1.hyperparameters.alpha, s1.hyperparameters.lr),
            (0.05, 0.01)
        );
        assert_eq!(
            (s1.n_train, s1.best_epoch, s1.best_holdout_nll),
            (810, 31, Some(0.5039))
        );
        let search = c.training.search.as_ref().expect("the search");
        assert_eq!((search.chosen, search.trials.len()), (1, 2));
        let s2 = c.training.stage2.as_ref().expect("Stage 2's record");
        assert_eq!((s2.tau, s2.pairs, s2.pool_pairs), (1e-3, 100, 300));
        assert_eq!(s2.selection, Some(Selection::Active));
        assert_eq!(s2.per_attribute["b"], 50);
        assert_eq!(
            c.history,
            vec![HistoryEvent::Merge {
                clusters: vec![vec![0, 2], vec![1]],
                threshold: 0.9,
                pairs: 120,
                removed: vec![2],
                rule: "mass-weighted average of member heads; leader's router row".into(),
            }]
        );
        // And writes back the same JSON values.
        let old: serde_json::Value = serde_json::from_str(UNTYPED).unwrap();
        assert_eq!(serde_json::to_value(&c.training).unwrap(), old["training"]);
        assert_eq!(serde_json::to_value(&c.history).unwrap(), old["history"]);
    }

    #[test]
    fn empty_records_load_from_null_or_nothing_and_round_trip() {
        let bare = r#"{"format_version": 1, "method": "static", "k": 1, "dim": 1,
            "prompt_dim": 1, "router": "static", "backbone": {"name": "", "kind": ""}}"#;
        let c: ModelConfig = serde_json::from_str(bare).unwrap();
        assert_eq!((&c.training, c.history.len()), (&Training::default(), 0));
        let mut v: serde_json::Value = serde_json::from_str(bare).unwrap();
        v["training"] = serde_json::Value::Null;
        v["history"] = serde_json::Value::Null;
        assert_eq!(serde_json::from_value::<ModelConfig>(v).unwrap(), c);
        let mut masked = c.clone();
        masked.history.push(HistoryEvent::Mask {
            removed: vec![1],
            kept: vec![0],
            reason: "safety audit".into(),
            threshold: 0.5,
            removed_accuracy: vec![0.25],
            safety_set: "safety".into(),
            pairs: 8,
        });
        let text = serde_json::to_string(&masked).unwrap();
        assert!(text.contains(r#""op":"mask""#), "{text}");
        assert_eq!(serde_json::from_str::<ModelConfig>(&text).unwrap(), masked);
    }
}

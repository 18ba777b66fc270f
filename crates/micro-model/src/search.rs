//! Stage 1 hyperparameters chosen by held-out likelihood: a small grid over the entropy weight
//! alpha and the learning rate, each point trained on the same split and initialisation, the
//! point with the lowest held-out mixture NLL kept as it is (no retraining).
//!
//! Why: the paper's alpha 0.5 / lr 2e-3 were tuned on 700K pairs and a 3B backbone. On a few
//! thousand pairs the entropy term keeps the router near uniform and the heads never split
//! (measured on HH-RLHF multi-user data: best head 0.60 at the paper's values against 0.785 at
//! alpha 0.05 / lr 1e-2, which the held-out NLL also prefers: 0.504 against 0.636). The held-out
//! pairs come from the training split, so the choice never sees a test label.

use crate::method::Method;
use crate::model::MixtureModel;
use crate::train::{train, TrainConfig, TrainError, TrainEvent, TrainReport};
use micro_cache::TrainingArrays;
use serde::{Deserialize, Serialize};

/// The values tried. Every (alpha, lr) combination is one training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub alphas: Vec<f32>,
    pub lrs: Vec<f32>,
}

impl Default for Grid {
    /// The paper's values (alpha 0.5, lr 2e-3) and smaller-data ones: 6 trainings.
    fn default() -> Self {
        Grid {
            alphas: vec![0.5, 0.05, 0.005],
            lrs: vec![2e-3, 1e-2],
        }
    }
}

impl Grid {
    /// The (alpha, lr) points for `method`: alpha only matters to a mixture with a gate.
    pub fn points(&self, method: Method) -> Vec<(f32, f32)> {
        let alphas: &[f32] = if method.learns_gate() {
            &self.alphas
        } else {
            &self.alphas[..self.alphas.len().min(1)]
        };
        alphas
            .iter()
            .flat_map(|&a| self.lrs.iter().map(move |&lr| (a, lr)))
            .collect()
    }
}

/// One grid point's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub alpha: f32,
    pub lr: f32,
    /// Mean NLL per held-out pair at the kept epoch.
    pub holdout_nll: f64,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub seconds: f64,
}

/// The whole search, recorded in the model's `config.json` under `training.search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Search {
    pub grid: Grid,
    pub trials: Vec<Trial>,
    /// Index of the kept trial.
    pub chosen: usize,
}

/// What a search tells its observer.
pub enum SearchEvent<'a> {
    /// A trial starts (0-based index of `total`).
    Trial {
        index: usize,
        total: usize,
        alpha: f32,
        lr: f32,
    },
    /// The current trial's training progress.
    Train(&'a TrainEvent<'a>),
    /// The current trial ended.
    Done(&'a Trial),
}

/// Trains one model per grid point with `cfg` otherwise, and keeps the one with the lowest
/// held-out NLL (ties: the earlier point). Needs a held-out fraction (`cfg.holdout > 0`).
pub fn train_search(
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    grid: &Grid,
    mut progress: impl FnMut(SearchEvent<'_>) + Send,
) -> Result<(MixtureModel, TrainReport, Search), TrainError> {
    if cfg.holdout <= 0.0 {
        return Err(TrainError::SearchWithoutHoldout);
    }
    let points = grid.points(cfg.method);
    if points.is_empty() {
        return Err(TrainError::EmptyGrid);
    }
    let mut best: Option<(MixtureModel, TrainReport)> = None;
    let mut trials: Vec<Trial> = Vec::with_capacity(points.len());
    let mut chosen = 0;
    for (index, &(alpha, lr)) in points.iter().enumerate() {
        progress(SearchEvent::Trial {
            index,
            total: points.len(),
            alpha,
            lr,
        });
        let point = TrainConfig {
            alpha,
            lr,
            ..cfg.clone()
        };
        let (model, report) = train(arrays, &point, |e| progress(SearchEvent::Train(e)))?;
        let trial = Trial {
            alpha,
            lr,
            holdout_nll: report.best_holdout_nll.unwrap_or(f64::INFINITY),
            best_epoch: report.best_epoch,
            epochs_run: report.epochs_run,
            seconds: report.seconds,
        };
        progress(SearchEvent::Done(&trial));
        if best.is_none() || trial.holdout_nll < trials[chosen].holdout_nll {
            chosen = index;
            best = Some((model, report));
        }
        trials.push(trial);
    }
    let (mut model, report) = best.expect("at least one grid point ran");
    let search = Search {
        grid: grid.clone(),
        trials,
        chosen,
    };
    model.config.training.search = Some(search.clone());
    Ok((model, report, search))
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_cache::{CacheMeta, Matrix, RouterInput};
    use micro_data::PrefPair;

    #[test]
    fn gateless_methods_search_the_learning_rate_only() {
        let g = Grid::default();
        assert_eq!(g.points(Method::Micro).len(), 6);
        assert_eq!(g.points(Method::Single), vec![(0.5, 2e-3), (0.5, 1e-2)]);
    }

    /// Oracle: each trial is exactly the training `train` gives for its point, and the kept
    /// model is the trial with the lowest held-out NLL.
    #[test]
    fn keeps_the_point_with_the_lowest_holdout_nll() {
        let n = 120;
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| vec![1.0 + (i % 3) as f32, (i % 5) as f32 - 2.0])
            .collect();
        let arrays = TrainingArrays {
            meta: CacheMeta::default(),
            pairs: vec![PrefPair::new("q", "good", "bad"); n],
            diff: Matrix::from_rows(&rows),
            prompt: Matrix::from_rows(&rows),
            router_input: RouterInput::Prompt,
        };
        let cfg = TrainConfig {
            k: 2,
            max_epochs: 4,
            min_epochs: 0,
            ..Default::default()
        };
        let grid = Grid {
            alphas: vec![0.5, 0.01],
            lrs: vec![1e-3, 3e-2],
        };
        let (model, _, search) = train_search(&arrays, &cfg, &grid, |_| {}).unwrap();
        assert_eq!(search.trials.len(), 4);
        for t in &search.trials {
            let point = TrainConfig {
                alpha: t.alpha,
                lr: t.lr,
                ..cfg.clone()
            };
            let (_, report) = train(&arrays, &point, |_| {}).unwrap();
            assert_eq!(report.best_holdout_nll, Some(t.holdout_nll));
        }
        let min = search
            .trials
            .iter()
            .map(|t| t.holdout_nll)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(search.trials[search.chosen].holdout_nll, min);
        let training = &model.config.training;
        let kept = &training.stage1.as_ref().unwrap().hyperparameters;
        assert_eq!(kept.alpha, search.trials[search.chosen].alpha);
        assert_eq!(training.search.as_ref(), Some(&search));
    }

    #[test]
    fn needs_held_out_pairs() {
        let arrays = TrainingArrays {
            meta: CacheMeta::default(),
            pairs: vec![PrefPair::new("q", "a", "b"); 4],
            diff: Matrix::zeros(4, 2),
            prompt: Matrix::zeros(4, 2),
            router_input: RouterInput::Prompt,
        };
        let cfg = TrainConfig {
            holdout: 0.0,
            ..Default::default()
        };
        let e = train_search(&arrays, &cfg, &Grid::default(), |_| {}).unwrap_err();
        assert_eq!(e, TrainError::SearchWithoutHoldout);
        assert!(e.to_string().contains("holdout fraction above 0"), "{e}");
    }
}

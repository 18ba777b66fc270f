//! Stage 1 chosen by held-out likelihood: the model's shape (one BT head, the K-head mixture, the
//! mixture with a per-user table) and, for each, the entropy weight alpha and the learning rate,
//! each point trained on the same split and initialisation; the kept point is trained as it is
//! (no retraining).
//!
//! **Hyperparameters.** The paper's alpha 0.5 / lr 2e-3 were tuned on 700K pairs and a 3B
//! backbone. On a few thousand pairs the entropy term keeps the router near uniform and the
//! heads never split (measured on HH-RLHF multi-user data: best head 0.60 at the paper's values
//! against 0.785 at alpha 0.05 / lr 1e-2, which the held-out NLL also prefers: 0.504 against
//! 0.636).
//!
//! **Shape: the mixture earns its heads.** K heads fit a training set better than one, so the
//! held-out NLL decides, and a more complex shape is kept only when it beats the simpler one
//! clearly: by more than one standard error of the pair-by-pair difference of their held-out
//! NLLs (the one-standard-error rule; the pairs are the same for every point). On data that does
//! not support a mixture the search returns the single BT model and says why: a mixture's held-out
//! NLL within noise of one head's buys nothing and costs the users of small groups (LoRe's
//! discipline: without evidence for personal rewards, return the shared one). When the mixture
//! is kept, the single model trained beside it is appended
//! as its shared head ([`crate::MixtureModel::append_shared_head`]): a shared prediction that
//! Stage 2 and the server weigh beside the heads.
//!
//! The held-out pairs come from the training split, so the choice never sees a test label.

use crate::method::Method;
use crate::model::MixtureModel;
use crate::train::{train, TrainConfig, TrainError, TrainEvent, TrainReport};
use micro_cache::TrainingArrays;
use serde::{Deserialize, Serialize};

/// The values tried: every shape, and for each its (alpha, lr) points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub alphas: Vec<f32>,
    pub lrs: Vec<f32>,
    /// Also train one BT head (K = 1) against MiCRo's mixture, which keeps its heads only if it
    /// beats it clearly (the baselines keep their own shape). Records written before shapes
    /// were searched read as false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single: bool,
    /// Also train the mixture with a per-user table, where training pairs carry user ids.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub users: bool,
}

impl Default for Grid {
    /// The paper's values (alpha 0.5, lr 2e-3) and smaller-data ones, against one head and, where
    /// pairs carry user ids, with the table: 8 trainings (14 with ids).
    fn default() -> Self {
        Grid {
            alphas: vec![0.5, 0.05, 0.005],
            lrs: vec![2e-3, 1e-2],
            single: true,
            users: true,
        }
    }
}

/// A model shape the search compares, simplest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub method: Method,
    pub heads: usize,
    /// With the per-user table.
    pub users: bool,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.heads, self.users) {
            (1, _) => f.write_str("one head"),
            (k, false) => write!(f, "{} K={k}", self.method),
            (k, true) => write!(f, "{} K={k} + users", self.method),
        }
    }
}

/// One point of the search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub shape: Shape,
    pub alpha: f32,
    pub lr: f32,
}

impl Grid {
    /// The shapes for `cfg`, simplest first: one head (if [`Grid::single`] and `cfg` trains
    /// MiCRo's mixture), `cfg`'s own, and `cfg`'s with the per-user table (if [`Grid::users`],
    /// `cfg` is MiCRo without a table already and `has_users`).
    pub fn shapes(&self, cfg: &TrainConfig, has_users: bool) -> Vec<Shape> {
        let own = Shape {
            method: cfg.method,
            heads: cfg.k,
            users: cfg.users,
        };
        let mut out = Vec::new();
        if self.single && cfg.k > 1 && cfg.method == Method::Micro {
            out.push(Shape {
                method: Method::Single,
                heads: 1,
                users: false,
            });
        }
        out.push(own);
        if self.users && !cfg.users && has_users && cfg.method == Method::Micro && cfg.k > 1 {
            out.push(Shape { users: true, ..own });
        }
        out
    }

    /// The (alpha, lr) points of `shape`: alpha only matters to a mixture with a gate.
    pub fn points(&self, shape: Shape) -> Vec<Point> {
        let alphas: &[f32] = if shape.method.learns_gate() {
            &self.alphas
        } else {
            &self.alphas[..self.alphas.len().min(1)]
        };
        alphas
            .iter()
            .flat_map(|&alpha| (self.lrs.iter()).map(move |&lr| Point { shape, alpha, lr }))
            .collect()
    }
}

/// One grid point's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub alpha: f32,
    pub lr: f32,
    /// The shape trained (`None` in records written before shapes were searched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
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
    /// Why the kept trial's shape was kept, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// The trial whose single head was appended as the shared head, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_head_from: Option<usize>,
}

/// What a search tells its observer.
pub enum SearchEvent<'a> {
    /// A trial starts (0-based index of `total`).
    Trial {
        index: usize,
        total: usize,
        point: Point,
    },
    /// The current trial's training progress.
    Train(&'a TrainEvent<'a>),
    /// The current trial ended.
    Done(&'a Trial),
}

/// The best trial of one shape: its index, model, report.
struct Best {
    trial: usize,
    model: MixtureModel,
    report: TrainReport,
}

/// Trains every point of `grid` for `cfg`'s method and K, and keeps the simplest shape not
/// clearly worse than the best (see the module docs), at its best point. Needs a held-out
/// fraction (`cfg.holdout > 0`).
pub fn train_search(
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    grid: &Grid,
    mut progress: impl FnMut(SearchEvent<'_>) + Send,
) -> Result<(MixtureModel, TrainReport, Search), TrainError> {
    if cfg.holdout <= 0.0 {
        return Err(TrainError::SearchWithoutHoldout);
    }
    let has_users = arrays
        .pairs
        .iter()
        .any(|p| p.is_train() && p.user_id.is_some());
    let points: Vec<Point> = (grid.shapes(cfg, has_users).into_iter())
        .flat_map(|s| grid.points(s))
        .collect();
    if points.is_empty() {
        return Err(TrainError::EmptyGrid);
    }
    let mut bests: Vec<(Shape, Best)> = Vec::new();
    let mut trials: Vec<Trial> = Vec::with_capacity(points.len());
    for (index, &point) in points.iter().enumerate() {
        progress(SearchEvent::Trial {
            index,
            total: points.len(),
            point,
        });
        let shape = point.shape;
        let run = TrainConfig {
            method: shape.method,
            k: shape.heads,
            users: shape.users,
            alpha: point.alpha,
            lr: point.lr,
            ..cfg.clone()
        };
        let (model, report) = train(arrays, &run, |e| progress(SearchEvent::Train(e)))?;
        let trial = Trial {
            alpha: point.alpha,
            lr: point.lr,
            shape: Some(shape),
            holdout_nll: report.best_holdout_nll.unwrap_or(f64::INFINITY),
            best_epoch: report.best_epoch,
            epochs_run: report.epochs_run,
            seconds: report.seconds,
        };
        progress(SearchEvent::Done(&trial));
        let best = Best {
            trial: index,
            model,
            report,
        };
        match bests.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, b)) if trial.holdout_nll < trials[b.trial].holdout_nll => *b = best,
            Some(_) => {}
            None => bests.push((shape, best)),
        }
        trials.push(trial);
    }
    let (kept, why) = choose_shape(&bests);
    let single_head = (bests.iter().find(|(s, _)| s.heads == 1))
        .filter(|_| bests[kept].0.heads > 1 && bests[kept].0.method == Method::Micro)
        .map(|(_, b)| (b.trial, b.model.heads().row(0).to_vec()));
    let Best {
        trial: chosen,
        mut model,
        report,
    } = bests.swap_remove(kept).1;
    if let Some((_, head)) = &single_head {
        model
            .append_shared_head(head)
            .expect("the single model reads the same embeddings");
    }
    let search = Search {
        grid: grid.clone(),
        trials,
        chosen,
        why,
        shared_head_from: single_head.map(|(t, _)| t),
    };
    model.config.training.search = Some(search.clone());
    Ok((model, report, search))
}

/// The index in `bests` (simplest shape first) of the shape to keep, and why: the simplest shape
/// whose held-out NLL is within one standard error of the best shape's, pair by pair.
fn choose_shape(bests: &[(Shape, Best)]) -> (usize, String) {
    let nll = |b: &Best| b.report.best_holdout_nll.unwrap_or(f64::INFINITY);
    let best = (0..bests.len())
        .min_by(|&a, &b| nll(&bests[a].1).total_cmp(&nll(&bests[b].1)))
        .unwrap_or(0);
    for (i, (shape, b)) in bests.iter().enumerate().take(best) {
        let (diff, se) = paired_gap(&b.report, &bests[best].1.report);
        if diff <= se {
            return (
                i,
                format!(
                    "{shape}: its held-out NLL {:.4} is within one standard error ({se:.4}) of the best shape's ({}, {:.4}), so the simpler shape is kept",
                    nll(b),
                    bests[best].0,
                    nll(&bests[best].1)
                ),
            );
        }
    }
    let why = match best.checked_sub(1).map(|i| &bests[i]) {
        Some((simpler, b)) => {
            let (diff, se) = paired_gap(&b.report, &bests[best].1.report);
            format!(
                "{}: its held-out NLL {:.4} is below the simpler {simpler}'s ({:.4}) by {diff:.4}, more than one standard error ({se:.4})",
                bests[best].0,
                nll(&bests[best].1),
                nll(b)
            )
        }
        None => format!("{}: the only shape tried", bests[best].0),
    };
    (best, why)
}

/// The mean of `a`'s held-out NLLs minus `b`'s, pair by pair, and the standard error of that
/// mean. Both runs held out the same pairs (same seed and split); without per-pair figures
/// (no held-out pairs) the gap is the difference of the means and the error 0.
fn paired_gap(a: &TrainReport, b: &TrainReport) -> (f64, f64) {
    let n = a.holdout_nlls.len();
    if n < 2 || b.holdout_nlls.len() != n {
        let m = |r: &TrainReport| r.best_holdout_nll.unwrap_or(f64::INFINITY);
        return (m(a) - m(b), 0.0);
    }
    let d: Vec<f64> = (a.holdout_nlls.iter().zip(&b.holdout_nlls))
        .map(|(x, y)| x - y)
        .collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use micro_cache::{CacheMeta, Matrix, RouterInput};
    use micro_data::PrefPair;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn shapes_go_from_one_head_to_the_table_and_gateless_ones_search_the_rate_only() {
        let g = Grid::default();
        let cfg = TrainConfig {
            k: 4,
            ..Default::default()
        };
        let shapes = g.shapes(&cfg, true);
        let heads: Vec<(usize, bool)> = shapes.iter().map(|s| (s.heads, s.users)).collect();
        assert_eq!(heads, [(1, false), (4, false), (4, true)]);
        assert_eq!(g.shapes(&cfg, false).len(), 2, "no ids: no table");
        let baseline = TrainConfig {
            method: Method::Static,
            ..cfg.clone()
        };
        assert_eq!(
            g.shapes(&baseline, true).len(),
            1,
            "baselines keep their shape"
        );
        assert_eq!(g.points(shapes[1]).len(), 6);
        let single: Vec<(f32, f32)> = g
            .points(shapes[0])
            .iter()
            .map(|p| (p.alpha, p.lr))
            .collect();
        assert_eq!(single, vec![(0.5, 2e-3), (0.5, 1e-2)]);
    }

    /// Pairs of `dim`-d differences labelled by user `users[i % users.len()]`: user j prefers the
    /// response higher on coordinate 0 when `flip[j]` is false, lower when true; each pair's
    /// orientation is drawn from the BT probability, so labels are noisy as real ones are.
    pub(crate) fn arrays(
        n: usize,
        dim: usize,
        users: &[&str],
        flip: &[bool],
        seed: u64,
    ) -> TrainingArrays {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut rows, mut prompts, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let u: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let j = i % users.len();
            let score = 3.0 * u[0] * if flip[j] { -1.0 } else { 1.0 };
            let keep = rng.random::<f32>() < 1.0 / (1.0 + (-score).exp());
            rows.push(if keep {
                u.clone()
            } else {
                u.iter().map(|v| -v).collect()
            });
            prompts.push(
                (0..dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect::<Vec<f32>>(),
            );
            let mut p = PrefPair::new(format!("q{}", i / users.len()), "a", "b");
            p.user_id = Some(users[j].to_string());
            pairs.push(p);
        }
        TrainingArrays {
            meta: CacheMeta::default(),
            pairs,
            diff: Matrix::from_rows(&rows),
            prompt: Matrix::from_rows(&prompts),
            router_input: RouterInput::Prompt,
        }
    }

    pub(crate) fn quick(k: usize) -> TrainConfig {
        TrainConfig {
            k,
            max_epochs: 40,
            min_epochs: 10,
            patience: 5,
            router_hidden: Some(8),
            holdout: 0.25,
            ..Default::default()
        }
    }

    /// Data drawn from one BT model: every shape fits it, none clearly better than one head.
    #[test]
    fn one_head_is_kept_on_data_from_one_bt_model() {
        let data = arrays(800, 6, &["a", "b"], &[false, false], 3);
        let grid = Grid {
            alphas: vec![0.05],
            lrs: vec![1e-2],
            ..Grid::default()
        };
        let (model, _, search) = train_search(&data, &quick(4), &grid, |_| {}).unwrap();
        assert_eq!(
            search.trials.len(),
            3,
            "one head, the mixture, the mixture with users"
        );
        assert_eq!(model.k(), 1, "{}", search.why);
        assert_eq!(model.config().method, Method::Single);
        assert!(search.why.starts_with("one head: "), "{}", search.why);
        assert_eq!(search.shared_head_from, None);
        // The kept single head points along the preference.
        assert!(model.heads().row(0)[0] > 1.0, "{:?}", model.heads().row(0));
    }

    /// Two users known by id who judge the same kind of pairs in reverse: only the table lets
    /// the heads split along them, and the search keeps it, with the single head appended.
    #[test]
    fn the_table_is_kept_where_users_reverse_each_other() {
        let data = arrays(800, 6, &["a", "b"], &[false, true], 5);
        let grid = Grid {
            alphas: vec![0.05],
            lrs: vec![1e-2],
            ..Grid::default()
        };
        let (model, _, search) = train_search(&data, &quick(2), &grid, |_| {}).unwrap();
        let kept = search.trials[search.chosen].shape.unwrap();
        assert!(kept.users && kept.heads == 2, "{}", search.why);
        assert_eq!(model.k(), 3, "two heads and the shared one");
        assert_eq!(model.shared_head(), Some(2));
        assert_eq!(search.shared_head_from, Some(0));
        let table = model.users().unwrap();
        assert_eq!(table.len(), 2);
        // Each user's gate, with their row, puts nearly all weight on a head of their sign,
        // and nothing on the shared head.
        let x = data.prompt.row(0);
        for (user, sign) in [("a", 1.0f32), ("b", -1.0)] {
            let w = model.log_weights_for(x, Some(user));
            let top = (0..3).max_by(|&i, &j| w[i].total_cmp(&w[j])).unwrap();
            assert!(w[top].exp() > 0.9, "{user}: {w:?}");
            assert!(sign * model.heads().row(top)[0] > 1.0, "{user}: head {top}");
            assert!(w[2].exp() < 1e-9);
        }
        // An unknown user is routed by the router alone.
        assert_eq!(model.log_weights_for(x, Some("c")), model.log_weights(x));
        // The folder keeps the table and the shared head.
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let back = MixtureModel::load(dir.path()).unwrap();
        assert_eq!(back, model);
    }

    /// Oracle: each trial is exactly the training `train` gives for its point, and within a
    /// shape the kept trial is the one with the lowest held-out NLL.
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
            single: false,
            users: false,
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

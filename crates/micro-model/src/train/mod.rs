//! The Stage 1 trainer: minibatch AdamW with warm-up + cosine decay on the pairs of the train
//! split, early-stopped on the log-likelihood of a held-out part of that split (best parameters
//! kept), so one set of defaults suits a few hundred pairs and a few hundred thousand.
//!
//! The parts: settings and reports ([`config`]), the rows held out ([`holdout`]), the
//! data-parallel step ([`engine`]) stepped by [`Optimiser`] (the optimiser Stage 2 uses too),
//! and the saved artefact ([`artefact`]).

mod artefact;
mod config;
mod engine;
mod holdout;
pub mod options;

pub use config::{EpochStats, TrainConfig, TrainError, TrainEvent, TrainReport};
pub use options::{Heads, RouterLayout, TrainOptions, UsersChoice, AUTO_HEADS};

use crate::loss::{Objective, Params};
use crate::model::MixtureModel;
use crate::optim::Optimiser;
use crate::users::UserIds;
use artefact::{to_model, train_pairs_hash};
use engine::Run;
pub(crate) use holdout::prompt_groups;
use holdout::{check_finite_rows, split_holdout};
use micro_cache::{Matrix, TrainingArrays};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

thread_local! {
    /// The stop flag [`with_stop_flag`] set for the trainings this thread runs.
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` with `stop` as the stop flag of every training it runs on this thread, the search's
/// and the cross-fit's included: once the flag is set, the training under way ends before its
/// next step with [`TrainError::Cancelled`]. How a host that cannot end a thread from outside
/// (the Python module, on Ctrl-C) stops a long training.
pub fn with_stop_flag<R>(stop: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    let previous = STOP.with(|s| s.replace(Some(stop)));
    let out = f();
    STOP.with(|s| s.replace(previous));
    out
}

/// The arrays Stage 1 reads, by row.
#[derive(Clone, Copy, Debug)]
pub struct TrainData<'a> {
    /// h_w - h_l, [n, dim].
    pub diff: &'a Matrix,
    /// The router input, [n, prompt_dim].
    pub prompt: &'a Matrix,
    /// A group id per row (e.g. its prompt): the held-out pairs are whole groups, since test
    /// splits are by prompt and a router that memorises prompts would look good on held-out
    /// pairs of prompts it has seen.
    pub groups: Option<&'a [u64]>,
    /// Each row's user-table row: needed when the configuration learns a table
    /// ([`TrainConfig::users`]).
    pub users: Option<&'a UserIds>,
}

/// The training rows of `arrays` (split train or unset), refused when there are none.
pub fn train_rows_of(arrays: &TrainingArrays) -> Result<Vec<usize>, TrainError> {
    let rows: Vec<usize> = (0..arrays.pairs.len())
        .filter(|&i| arrays.pairs[i].is_train())
        .collect();
    if rows.is_empty() {
        return Err(TrainError::NoTrainPairs {
            pairs: arrays.pairs.len(),
        });
    }
    Ok(rows)
}

/// Trains on the pairs of `arrays` whose split is train (or unset); with
/// [`TrainConfig::users`], a table of the training pairs' users beside the router.
pub fn train(
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    progress: impl FnMut(&TrainEvent) + Send,
) -> Result<(MixtureModel, TrainReport), TrainError> {
    cfg.validate()?;
    let train_idx = train_rows_of(arrays)?;
    train_on(arrays, &train_idx, cfg, progress)
}

/// [`train`] on the rows `rows` of `arrays` (e.g. all training folds but one).
pub fn train_on(
    arrays: &TrainingArrays,
    rows: &[usize],
    cfg: &TrainConfig,
    progress: impl FnMut(&TrainEvent) + Send,
) -> Result<(MixtureModel, TrainReport), TrainError> {
    let hash = train_pairs_hash(arrays, rows);
    let groups = prompt_groups(&arrays.pairs);
    let users = cfg.users.then(|| UserIds::of_pairs(&arrays.pairs, rows));
    let data = TrainData {
        diff: &arrays.diff,
        prompt: &arrays.prompt,
        groups: Some(&groups),
        users: users.as_ref(),
    };
    let (params, report) = train_rows(&data, rows, cfg, progress)?;
    let model = to_model(params, arrays, cfg, hash, &report, users);
    Ok((model, report))
}

/// The trainer on raw arrays: rows `rows` of `data`.
///
/// The run happens on a thread of rayon's pool (the caller waits), so `progress` is called there.
pub fn train_rows(
    data: &TrainData<'_>,
    rows: &[usize],
    cfg: &TrainConfig,
    progress: impl FnMut(&TrainEvent) + Send,
) -> Result<(Params<f32>, TrainReport), TrainError> {
    // From a pool thread, the per-step split of the batch is picked up by the other worker
    // while it still spins; from outside, every step pays to wake it and to wake us back
    // (measured on 2 cores: an empty rayon::join costs 7-14 µs from outside, ~0 from inside;
    // AdamW over 107k parameters in two halves took 114 µs from outside, 50 µs from inside).
    let stop = STOP.with(|s| s.borrow().clone());
    rayon::scope(|_| train_rows_here(data, rows, cfg, stop.as_deref(), progress))
}

/// The user table's size for `cfg`: refused when it asks for one and no training pair has a user.
fn table_users(data: &TrainData<'_>, cfg: &TrainConfig) -> Result<usize, TrainError> {
    if !cfg.users {
        return Ok(0);
    }
    match data.users {
        Some(u) if !u.is_empty() && cfg.method == crate::Method::Micro => Ok(u.len()),
        Some(u) if !u.is_empty() => Err(TrainError::TableNeedsRouter { method: cfg.method }),
        _ => Err(TrainError::NoUserIds),
    }
}

fn train_rows_here(
    data: &TrainData<'_>,
    rows: &[usize],
    cfg: &TrainConfig,
    stop: Option<&AtomicBool>,
    mut progress: impl FnMut(&TrainEvent),
) -> Result<(Params<f32>, TrainReport), TrainError> {
    cfg.validate()?;
    let (diff, prompt) = (data.diff, data.prompt);
    check_finite_rows(diff, prompt, rows, cfg.method)?;
    let n_users = table_users(data, cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (fit, held) = split_holdout(rows, data.groups, cfg.holdout, &mut rng);
    if cfg.k > fit.len() {
        return Err(TrainError::TooFewPairs {
            heads: cfg.k,
            pairs: fit.len(),
            held_out: held.len(),
        });
    }
    let mut params = Params::init(
        cfg.method,
        cfg.k,
        diff.cols,
        prompt.cols,
        cfg.router_hidden,
        cfg.activation,
        &mut rng,
    )
    .with_users(n_users);
    let objective = Objective {
        method: cfg.method,
        alpha: cfg.alpha as f64,
    };
    let steps_per_epoch = fit.len().div_ceil(cfg.batch);
    let mut opt = Optimiser::new(
        cfg.lr,
        cfg.warmup_ratio,
        cfg.weight_decay,
        steps_per_epoch * cfg.max_epochs,
    );
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
            &mut opt,
            &mut params,
            data,
            &order,
            (epoch, stop),
            &mut progress,
        )?;
        let holdout_nll = (!held.is_empty()).then(|| run.mean_nll(&params, data, &held));
        let stats = EpochStats {
            epoch,
            train_loss,
            holdout_nll,
            lr: opt.lr(),
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
    let holdout_nlls = run.pair_nlls(&best.2, data, &held);
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
        holdout_nlls,
    };
    Ok((best.2, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_cache::{CacheMeta, RouterInput};
    use micro_data::PrefPair;
    use std::sync::atomic::Ordering;

    /// A set stop flag ends the training at its first step, and only inside `with_stop_flag`.
    #[test]
    fn a_set_stop_flag_cancels_the_training_it_scopes() {
        let rows: Vec<Vec<f32>> = (0..40).map(|i| vec![1.0, (i % 5) as f32 - 2.0]).collect();
        let arrays = TrainingArrays {
            meta: CacheMeta::default(),
            pairs: vec![PrefPair::new("q", "good", "bad"); 40],
            diff: Matrix::from_rows(&rows),
            prompt: Matrix::zeros(40, 1),
            router_input: RouterInput::Prompt,
        };
        let cfg = TrainConfig {
            k: 2,
            max_epochs: 3,
            ..Default::default()
        };
        let stop = Arc::new(AtomicBool::new(true));
        let mut steps = 0;
        let out = with_stop_flag(stop.clone(), || {
            train(&arrays, &cfg, |e| {
                if let TrainEvent::Step { .. } = e {
                    steps += 1;
                }
            })
        });
        assert_eq!(out.unwrap_err(), TrainError::Cancelled);
        assert_eq!(steps, 0);
        stop.store(false, Ordering::Relaxed);
        assert!(with_stop_flag(stop, || train(&arrays, &cfg, |_| {})).is_ok());
        assert!(
            train(&arrays, &cfg, |_| {}).is_ok(),
            "no flag outside the scope"
        );
    }
}

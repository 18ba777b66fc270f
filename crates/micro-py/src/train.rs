//! `micro.train`: Stage 1 as `micro train` runs it, on a cache folder or a `micro.Cache`.

use crate::cache::Cache;
use crate::error::{opened, Error, OrRaise};
use crate::job::{self, send_search, send_train, Event, Progress};
use crate::model::Model;
use micro_cache::{RouterInput, TrainingArrays};
use micro_data::UnknownValue;
use micro_model::{
    Evidence, Heads, MixtureModel, RouterLayout, TrainConfig, TrainOptions, UsersChoice,
};
use micro_route::UserStates;
use pyo3::prelude::*;
use std::path::PathBuf;

/// Trains Stage 1 on `cache`, as `micro train --cache ... -o ...` does, and returns the model
/// with its cross-fitted evidence (`Model.save` writes the folder `micro train` writes).
///
/// `cache` is a `micro.Cache` or a cache folder (read as `micro train` reads it, without
/// holding both response arrays). The keywords are `micro train`'s flags with their defaults:
/// `heads` a number or `"auto"` (default 10, 1 for `single`); `lr` and `alpha` left unset are
/// chosen by the held-out search, which also compares one head, the K-head mixture and (where
/// pairs carry user ids, `users="auto"`) the mixture with a per-user table; `cross_fit` folds
/// keep each training pair's prediction by a model that did not train on it (0: none).
///
/// `progress`, if given, is called on the calling thread with a dict per event (`"event"`:
/// `"trial"`, `"start"`, `"epoch"`, `"fold"`). The GIL is released while training; Ctrl-C (or
/// an exception from `progress`) stops the training before its next step and is raised here.
#[pyfunction]
#[pyo3(signature = (cache, *, method="micro", heads=None, keep_heads=false, users="auto", epochs=TrainConfig::default().max_epochs, lr=None, alpha=None, router_input="pair", batch_size=TrainConfig::default().batch, router="mlp", hidden=TrainConfig::default().router_hidden.unwrap_or_default(), activation="relu", seed=TrainConfig::default().seed, holdout=TrainConfig::default().holdout, patience=TrainConfig::default().patience, min_epochs=TrainConfig::default().min_epochs, warmup=TrainConfig::default().warmup_ratio, weight_decay=TrainConfig::default().weight_decay, cross_fit=micro_model::DEFAULT_FOLDS, progress=None))]
#[pyo3(
    text_signature = "(cache, *, method='micro', heads=None, keep_heads=False, users='auto', epochs=100, lr=None, alpha=None, router_input='pair', batch_size=32, router='mlp', hidden=128, activation='relu', seed=42, holdout=0.1, patience=10, min_epochs=30, warmup=0.05, weight_decay=0.0, cross_fit=5, progress=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    cache: &Bound<'_, PyAny>,
    method: &str,
    heads: Option<&Bound<'_, PyAny>>,
    keep_heads: bool,
    users: &str,
    epochs: usize,
    lr: Option<f32>,
    alpha: Option<f32>,
    router_input: &str,
    batch_size: usize,
    router: &str,
    hidden: usize,
    activation: &str,
    seed: u64,
    holdout: f32,
    patience: usize,
    min_epochs: usize,
    warmup: f32,
    weight_decay: f32,
    cross_fit: usize,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Model> {
    let options = TrainOptions {
        method: method.parse().or_raise()?,
        heads: heads.map(parse_heads).transpose()?,
        keep_heads,
        users: users_choice(users).or_raise()?,
        epochs,
        lr,
        alpha,
        router_input: router_input.parse().or_raise()?,
        batch_size,
        router: router_layout(router).or_raise()?,
        hidden,
        activation: activation.parse().or_raise()?,
        seed,
        holdout,
        patience,
        min_epochs,
        warmup,
        weight_decay,
        cross_fit,
    };
    options.config().validate().or_raise()?;
    let arrays = training_arrays(py, cache, options.router_input)?;
    let (model, evidence) = job::run(py, progress, |tx| stage1(&arrays, &options, tx))?;
    Ok(Model {
        inner: model,
        evidence,
        users: UserStates::default(),
    })
}

/// What Stage 1 reads of `cache`: from a `micro.Cache`, or loaded from a folder as `micro
/// train` loads it.
fn training_arrays(
    py: Python<'_>,
    cache: &Bound<'_, PyAny>,
    router_input: RouterInput,
) -> PyResult<TrainingArrays> {
    if let Ok(c) = cache.cast::<Cache>() {
        let cache = &c.get().inner;
        return Ok(py.detach(|| cache.training_arrays(router_input)));
    }
    let dir: PathBuf = cache.extract()?;
    let loaded = py.detach(|| TrainingArrays::load(&dir, router_input));
    opened(&dir, loaded)
}

/// `micro train`'s steps: the search (or the one training), `--heads auto`'s merge, and the
/// cross-fit.
fn stage1(
    arrays: &TrainingArrays,
    options: &TrainOptions,
    tx: &Progress,
) -> Result<(MixtureModel, Option<Evidence>), Error> {
    let cfg = options.config();
    let (model, report) = match options.grid() {
        None => micro_model::train(arrays, &cfg, |e| send_train(tx, "train", e))?,
        Some(grid) => {
            let (model, report, _) =
                micro_model::train_search(arrays, &cfg, &grid, |e| send_search(tx, e))?;
            (model, report)
        }
    };
    let model = match options.heads {
        Some(Heads::Auto) => {
            micro_route::auto_heads(
                &model,
                arrays,
                &report.holdout_rows,
                micro_route::DEFAULT_MERGE_THRESHOLD,
            )?
            .0
        }
        _ => model,
    };
    let folds = options.cross_fit;
    let mut fold = usize::MAX;
    let evidence = micro_model::cross_fit(arrays, &model, folds, |f, e| {
        if f != fold {
            fold = f;
            let _ = tx.send(Event::Fold { fold: f, folds });
        }
        send_train(tx, "cross-fit", e)
    })?;
    Ok((model, evidence))
}

fn parse_heads(obj: &Bound<'_, PyAny>) -> PyResult<Heads> {
    match obj.extract::<usize>() {
        Ok(k) => Ok(Heads::Fixed(k)),
        Err(_) => obj.extract::<String>()?.parse().or_raise(),
    }
}

fn users_choice(s: &str) -> Result<UsersChoice, UnknownValue> {
    match s {
        "auto" => Ok(UsersChoice::Auto),
        "on" => Ok(UsersChoice::On),
        "off" => Ok(UsersChoice::Off),
        _ => Err(UnknownValue::new("users", s, "auto, on or off")),
    }
}

fn router_layout(s: &str) -> Result<RouterLayout, UnknownValue> {
    match s {
        "mlp" => Ok(RouterLayout::Mlp),
        "linear" => Ok(RouterLayout::Linear),
        _ => Err(UnknownValue::new("router", s, "mlp or linear")),
    }
}

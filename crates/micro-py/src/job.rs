//! Long work off the interpreter: it runs on a thread of its own while the caller's thread,
//! holding the GIL only for moments, hands its progress to the Python callback and watches for
//! Ctrl-C (`PyErr_CheckSignals`). A `KeyboardInterrupt`, or an exception the callback raises,
//! sets the work's stop flag: a training ends before its next step
//! ([`micro_model::with_stop_flag`]), other work at the end of its current call, and the
//! exception is raised once the thread has ended, so nothing runs on after the call returns.

use crate::arrays::to_py;
use crate::error::Error;
use micro_model::{SearchEvent, TrainEvent};
use pyo3::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// How often the caller's thread looks for Ctrl-C while no progress arrives.
const POLL: Duration = Duration::from_millis(50);

/// What a progress callback is told, as a dict with `"event"` naming the kind.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A training starts (`stage`: `train`, `search` or `cross-fit`).
    Start {
        stage: &'static str,
        n_train: usize,
        n_holdout: usize,
        max_epochs: usize,
    },
    /// An epoch of the training under way ended.
    Epoch {
        stage: &'static str,
        epoch: usize,
        train_loss: f64,
        holdout_nll: Option<f64>,
        seconds: f64,
    },
    /// A point of the held-out search starts (0-based `index` of `total`).
    Trial {
        index: usize,
        total: usize,
        shape: String,
        alpha: f32,
        lr: f32,
    },
    /// A cross-fit fold starts (0-based).
    Fold { fold: usize, folds: usize },
    /// Texts embedded so far.
    Embedded { done: usize, total: usize },
}

/// Where long work sends its progress.
pub type Progress = Sender<Event>;

/// Sends a training's events (not its steps: too many to be worth the interpreter's time).
pub fn send_train(tx: &Progress, stage: &'static str, e: &TrainEvent) {
    let event = match e {
        TrainEvent::Start {
            n_train,
            n_holdout,
            max_epochs,
            ..
        } => Event::Start {
            stage,
            n_train: *n_train,
            n_holdout: *n_holdout,
            max_epochs: *max_epochs,
        },
        TrainEvent::Epoch(s) => Event::Epoch {
            stage,
            epoch: s.epoch,
            train_loss: s.train_loss,
            holdout_nll: s.holdout_nll,
            seconds: s.seconds,
        },
        TrainEvent::Step { .. } => return,
    };
    // The receiver outlives the work; a send fails only once the caller has given up on it.
    let _ = tx.send(event);
}

/// Sends a held-out search's events.
pub fn send_search(tx: &Progress, e: SearchEvent<'_>) {
    match e {
        SearchEvent::Trial {
            index,
            total,
            point,
        } => {
            let _ = tx.send(Event::Trial {
                index,
                total,
                shape: point.shape.to_string(),
                alpha: point.alpha,
                lr: point.lr,
            });
        }
        SearchEvent::Train(e) => send_train(tx, "search", e),
        SearchEvent::Done(_) => {}
    }
}

/// Runs `work` on a thread of its own with the GIL released, passing its progress to
/// `callback` on the caller's thread (see the module docs).
pub fn run<T: Send>(
    py: Python<'_>,
    callback: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(&Progress) -> Result<T, Error> + Send,
) -> PyResult<T> {
    let callback: Option<Py<PyAny>> = callback
        .filter(|c| !c.is_none())
        .map(|c| c.clone().unbind());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Event>();
    let (outcome, raised) = py.detach(move || {
        std::thread::scope(|s| {
            let flag = stop.clone();
            let worker = s.spawn(move || micro_model::with_stop_flag(flag, || work(&tx)));
            let mut raised: Option<PyErr> = None;
            loop {
                let event = match rx.recv_timeout(POLL) {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if raised.is_some() {
                    continue;
                }
                let step = Python::attach(|py| {
                    if let (Some(event), Some(cb)) = (&event, &callback) {
                        cb.call1(py, (to_py(py, event)?,))?;
                    }
                    py.check_signals()
                });
                if let Err(e) = step {
                    stop.store(true, Ordering::Relaxed);
                    raised = Some(e);
                }
            }
            (worker.join(), raised)
        })
    });
    let outcome = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match raised {
        Some(e) => Err(e),
        None => outcome.map_err(PyErr::from),
    }
}

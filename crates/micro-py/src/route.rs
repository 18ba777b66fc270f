//! Stage 2: `micro.adapt` (`micro adapt` on a model and a cache) and `micro.UserState` (a
//! user's weights over a model's experts, the state the server keeps per user).

use crate::arrays::{self, to_py};
use crate::cache::Cache;
use crate::error::OrRaise;
use crate::job;
use crate::model::Model;
use micro_route::recipe::{adapt_budget, AdaptJob, AdaptOptions};
use micro_route::{AdaptConfig, ExpertView};
use numpy::PyArray1;
use pyo3::prelude::*;

/// A user's weights over a model's experts (its K heads, then the gate), updated by Hedge
/// with each piece of feedback (`Model.feedback`): the state `micro serve` keeps per user and
/// `micro adapt` writes for users known by id. Make one with `Model.new_user`, or take an
/// adapted one with `Model.user`.
#[pyclass(module = "micro", name = "UserState")]
pub struct UserState {
    /// The user's id: where Stage 1's per-user table knows it, its row joins the gate.
    pub user_id: Option<String>,
    pub state: micro_route::UserState,
}

#[pymethods]
impl UserState {
    /// The weights over the experts (the heads, then the gate).
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        arrays::array1(py, self.state.weights())
    }

    /// Feedback events folded in.
    #[getter]
    fn updates(&self) -> u64 {
        self.state.updates
    }

    #[getter]
    fn user_id(&self) -> Option<String> {
        self.user_id.clone()
    }

    /// The state as the server and `user-states.jsonl` store it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.state)
    }

    /// A state from `to_dict`'s form.
    #[staticmethod]
    #[pyo3(signature = (state, user_id=None))]
    fn from_dict(state: &Bound<'_, PyAny>, user_id: Option<String>) -> PyResult<Self> {
        Ok(UserState {
            user_id,
            state: arrays::from_py(state, "state")?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "UserState(user_id={:?}, experts={}, updates={})",
            self.user_id,
            self.state.k(),
            self.state.updates
        )
    }
}

/// Stage 2 as `micro adapt --model ... --cache ...` runs it: the router adapted to the
/// contexts of `cache`'s labelled training pairs (up to `budget` per context) and each user
/// known only by id given weights of their own (up to `budget` of their pairs), the pairs
/// drawn at random or chosen actively (`select="active"`). Returns the adapted model, its users
/// adapted (`Model.users`, `Model.user`); `Model.save` writes the folder `micro adapt` writes.
/// The keywords are `micro adapt`'s flags with their defaults. The GIL is released meanwhile.
#[pyfunction]
#[pyo3(signature = (model, cache, *, budget=AdaptJob::default().budget, tau=AdaptConfig::default().tau, epochs=AdaptConfig::default().epochs, batch_size=AdaptConfig::default().batch_size, lr=AdaptConfig::default().lr, weight_decay=AdaptConfig::default().weight_decay, output_layer_only=false, seed=AdaptJob::default().seed, select="random", pool_inputs=AdaptConfig::default().pool_inputs, evidence="context"))]
#[pyo3(
    text_signature = "(model, cache, *, budget=50, tau=1.0, epochs=10, batch_size=32, lr=0.01, weight_decay=0.0, output_layer_only=False, seed=0, select='random', pool_inputs=True, evidence='context')"
)]
#[allow(clippy::too_many_arguments)]
pub fn adapt(
    py: Python<'_>,
    model: &Model,
    cache: &Cache,
    budget: usize,
    tau: f64,
    epochs: usize,
    batch_size: usize,
    lr: f32,
    weight_decay: f32,
    output_layer_only: bool,
    seed: u64,
    select: &str,
    pool_inputs: bool,
    evidence: &str,
) -> PyResult<Model> {
    let options = AdaptOptions {
        budget,
        tau,
        epochs,
        batch_size,
        lr,
        weight_decay,
        output_layer_only,
        seed,
        select: select.parse().or_raise()?,
        pool_inputs,
        evidence: evidence.parse().or_raise()?,
    };
    let out = job::run(py, None, |_| {
        let view = ExpertView::new(&model.inner, &cache.inner, model.evidence.as_ref())?;
        Ok(adapt_budget(&view, &options.job())?)
    })?;
    Ok(Model {
        inner: out.adapted,
        evidence: model.evidence.clone(),
        users: out.users,
    })
}

//! `micro.Model`: a trained model (micro-model's [`MixtureModel`]) with what its folder keeps
//! beside it (the cross-fitted evidence, the users adapted by id), and scoring: each head's
//! reward, the mixture weights and the personalised reward, batched over numpy rows.

use crate::arrays::{self, to_py, Rows};
use crate::error::{opened, Error, OrRaise};
use crate::route::UserState;
use micro_eval::EvalError;
use micro_model::{Evidence, MixtureModel};
use micro_route::{Experts, Rate, UserStates, BAYES};
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// A MiCRo model: K linear reward heads r_k(x, a) = w_k . h(x, a) and a gate f(x) that mixes
/// them, with the cross-fitted evidence `micro train` keeps beside it and the users `micro
/// adapt` adapted by id.
///
/// Scoring takes numpy arrays of embeddings (float32 C-contiguous arrays are read in place):
/// `rewards` (each head's), `weights` (the mixture's) and `score` (the personalised reward
/// sum_k w_k r_k), for one router input or one per row, and for nobody in particular (the
/// router), a user id, or a `UserState`.
#[pyclass(module = "micro", name = "Model", frozen)]
pub struct Model {
    pub inner: MixtureModel,
    pub evidence: Option<Evidence>,
    pub users: UserStates,
}

/// Whose weights mix the heads.
enum Who<'a> {
    /// The model's gate on the router input.
    Gate,
    /// A user by id: their adapted weights if the model has them, else the gate with their
    /// row of Stage 1's per-user table where it has one.
    Id(String),
    /// A state held by the caller, over the model's experts.
    State(&'a micro_route::UserState, Option<&'a str>),
}

impl<'a> Who<'a> {
    fn of<'py>(
        user: Option<&'a Bound<'py, PyAny>>,
        held: &'a mut Option<PyRef<'py, UserState>>,
    ) -> PyResult<Self> {
        let Some(user) = user.filter(|u| !u.is_none()) else {
            return Ok(Who::Gate);
        };
        if let Ok(s) = user.cast::<UserState>() {
            let s = held.insert(s.borrow());
            return Ok(Who::State(&s.state, s.user_id.as_deref()));
        }
        Ok(Who::Id(user.extract()?))
    }
}

impl Model {
    fn experts(&self) -> Experts {
        Experts::of(&self.inner)
    }

    /// The mixture weights over the heads for router input `x` (any, for a static gate).
    fn head_weights(&self, x: &[f32], who: &Who<'_>) -> Result<Vec<f32>, Error> {
        let (state, id) = match who {
            // The server's arithmetic for a request without a user.
            Who::Gate => return Ok(self.inner.weights(x)),
            Who::Id(id) => (self.users.get(id), Some(id.as_str())),
            Who::State(s, id) => (Some(*s), *id),
        };
        let log_gate = self.inner.log_weights_for(x, id);
        let Some(state) = state else {
            return Ok(log_gate.iter().map(|l| l.exp()).collect());
        };
        let experts = self.experts();
        if state.k() != experts.len() {
            return Err(EvalError::UserStateExperts {
                user: id.unwrap_or("?").to_string(),
                state: state.k(),
                experts: experts.len(),
            }
            .into());
        }
        let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
        Ok(experts.head_weights(&w, &log_gate))
    }

    /// Every expert's margin (the heads', then the gate's) on `first[i]` over `second[i]`
    /// (row-major `[n, dim]`), the gate routed on row `i` of `x` with `id`'s table row: the
    /// margins `micro serve` folds into a user's state, the heads' computed on the feature
    /// difference by `micro_route::query::pair_margins` as the server computes them.
    fn expert_margins(
        &self,
        first: &[f32],
        second: &[f32],
        x: &Option<(&[f32], usize, bool)>,
        id: Option<&str>,
    ) -> Result<Vec<Vec<f32>>, micro_route::RouteError> {
        let heads = micro_route::query::pair_margins(&self.inner, first, second)?;
        let experts = self.experts();
        Ok((heads.chunks_exact(self.inner.k().max(1)).enumerate())
            .map(|(i, m)| experts.margins(m, &self.inner.log_weights_for(row_of(x, i), id)))
            .collect())
    }

    /// The router inputs for `n` rows (any number when `None`): one per row, one for all, or
    /// none for a static gate.
    fn router_inputs<'py>(
        &self,
        prompt: Option<&Bound<'py, PyAny>>,
        n: Option<usize>,
    ) -> PyResult<Option<Rows<'py>>> {
        let Some(p) = prompt.filter(|p| !p.is_none()) else {
            if self.inner.router().is_some() {
                return Err(Error::NoRouterInput.into());
            }
            return Ok(None);
        };
        let x = arrays::rows(p, "prompt", self.inner.config().prompt_dim, true)?;
        match n {
            Some(n) if !x.single && x.rows != n => Err(Error::Length {
                name: "prompt",
                got: x.rows,
                pairs: n,
            }
            .into()),
            _ => Ok(Some(x)),
        }
    }

    fn dim(&self) -> usize {
        self.inner.config().dim
    }
}

/// Row `i` of the router inputs (the one row for all, or none).
fn row_of<'a>(x: &'a Option<(&'a [f32], usize, bool)>, i: usize) -> &'a [f32] {
    match x {
        Some((data, cols, single)) => {
            let i = if *single { 0 } else { i };
            &data[i * cols..(i + 1) * cols]
        }
        None => &[],
    }
}

/// The router inputs' values, width and whether one row is for all.
fn view<'a>(x: &'a Option<Rows<'_>>) -> PyResult<Option<(&'a [f32], usize, bool)>> {
    x.as_ref()
        .map(|x| Ok((x.data()?, x.cols, x.single)))
        .transpose()
}

#[pymethods]
impl Model {
    /// Reads a model folder (`micro train` or `micro adapt`'s output, or `Model.save`'s).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let loaded = py.detach(|| read_folder(&path));
        opened(&path, loaded)
    }

    /// Writes the model folder: `model.safetensors` and `config.json`, the cross-fitted
    /// evidence and the adapted users' `user-states.jsonl` when the model has them.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.write_folder(&path)).or_raise()
    }

    /// Number of heads K.
    #[getter]
    fn k(&self) -> usize {
        self.inner.k()
    }

    /// Width of the response embeddings the heads read.
    #[getter(dim)]
    fn py_dim(&self) -> usize {
        self.dim()
    }

    /// Width of the router input.
    #[getter]
    fn prompt_dim(&self) -> usize {
        self.inner.config().prompt_dim
    }

    /// The Stage 1 method: `micro`, `single`, `static` or `shared-base`.
    #[getter]
    fn method(&self) -> String {
        self.inner.config().method.to_string()
    }

    /// `config.json` as a dict, with the training record and the held-out search.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.inner.config())
    }

    /// The heads' weights, `[K, dim]` (a copy).
    #[getter]
    fn heads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        arrays::matrix_copy(py, self.inner.heads())
    }

    /// The head that is the single model trained beside the mixture, if Stage 1 kept one.
    #[getter]
    fn shared_head(&self) -> Option<usize> {
        self.inner.shared_head()
    }

    /// The users of Stage 1's per-user table, if it learned one.
    #[getter]
    fn table_users(&self) -> Vec<String> {
        self.inner
            .users()
            .map_or_else(Vec::new, |t| t.names().to_vec())
    }

    /// The users adapted by id (`micro.adapt`), whose weights `user=` finds.
    #[getter]
    fn users(&self) -> Vec<String> {
        self.users.users.keys().cloned().collect()
    }

    /// Each head's reward r_k(x, a) for response embeddings `[n, dim]`: `[n, K]`.
    fn rewards<'py>(
        &self,
        py: Python<'py>,
        responses: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let h = arrays::rows(responses, "responses", self.dim(), false)?;
        let data = h.data()?;
        let out = py.detach(|| self.head_rewards(data));
        arrays::array2(py, h.rows, self.inner.k(), out)
    }

    /// The mixture weights over the heads: for router inputs `prompt` (`[prompt_dim]` gives
    /// `[K]`, `[n, prompt_dim]` gives `[n, K]`; e(x, c) with a context), and `user`: `None` (the
    /// router), a user id (their adapted weights, else their row of Stage 1's table) or a
    /// `UserState`. A model with a static gate needs no `prompt`.
    #[pyo3(signature = (prompt=None, *, user=None))]
    fn weights<'py>(
        &self,
        py: Python<'py>,
        prompt: Option<&Bound<'py, PyAny>>,
        user: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut held = None;
        let who = Who::of(user, &mut held)?;
        let x = self.router_inputs(prompt, None)?;
        let (rows, batched) = match &x {
            Some(x) if !x.single => (x.rows, true),
            _ => (1, false),
        };
        let v = view(&x)?;
        let out: Result<Vec<Vec<f32>>, Error> = py.detach(|| {
            (0..rows)
                .map(|i| self.head_weights(row_of(&v, i), &who))
                .collect()
        });
        let out: Vec<f32> = out.or_raise()?.concat();
        if batched {
            Ok(arrays::array2(py, rows, self.inner.k(), out)?.into_any())
        } else {
            Ok(arrays::array1(py, out).into_any())
        }
    }

    /// The personalised reward sum_k w_k r_k(x, a) of each response `[n, dim]`: `[n]`, the
    /// weights as `weights` gives them (`prompt`: one router input for all, or one per row).
    #[pyo3(signature = (responses, prompt=None, *, user=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        responses: &Bound<'py, PyAny>,
        prompt: Option<&Bound<'py, PyAny>>,
        user: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut held = None;
        let who = Who::of(user, &mut held)?;
        let h = arrays::rows(responses, "responses", self.dim(), false)?;
        let x = self.router_inputs(prompt, Some(h.rows))?;
        let (data, v) = (h.data()?, view(&x)?);
        let k = self.inner.k();
        let shared = x.as_ref().is_none_or(|x| x.single);
        let out: Result<Vec<f32>, Error> = py.detach(|| {
            let rewards = self.head_rewards(data);
            let one = if shared {
                Some(self.head_weights(row_of(&v, 0), &who)?)
            } else {
                None
            };
            (0..h.rows)
                .map(|i| {
                    let w = match &one {
                        Some(w) => w.clone(),
                        None => self.head_weights(row_of(&v, i), &who)?,
                    };
                    Ok(MixtureModel::mixed_reward(&w, &rewards[i * k..(i + 1) * k]))
                })
                .collect()
        });
        Ok(arrays::array1(py, out.or_raise()?))
    }

    /// A new user's state over the model's experts (its heads and the gate), at the prior
    /// Stage 2 starts from. `rate` is the Hedge step: `"bayes"` (eta 1, the Bayesian posterior
    /// `micro adapt` folds users with and `micro serve --rate`'s default; the default here
    /// too), `"anytime"`, or a fixed eta.
    #[pyo3(signature = (user_id=None, *, rate=None))]
    fn new_user(
        &self,
        user_id: Option<String>,
        rate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<UserState> {
        let rate = match rate.filter(|r| !r.is_none()) {
            None => BAYES,
            Some(r) => match r.extract::<String>() {
                Ok(s) if s == "bayes" => BAYES,
                Ok(s) => s.parse::<Rate>().or_raise()?,
                Err(_) => r.extract::<f64>()?.to_string().parse::<Rate>().or_raise()?,
            },
        };
        let prior: Vec<f32> = self.experts().prior().iter().map(|&w| w as f32).collect();
        Ok(UserState {
            user_id,
            state: micro_route::UserState::with_rate(&prior, rate),
        })
    }

    /// The adapted state of user `user_id` (a copy); `KeyError` for a user not adapted.
    fn user(&self, user_id: &str) -> PyResult<UserState> {
        match self.users.users.get(user_id) {
            Some(r) => Ok(UserState {
                user_id: Some(user_id.to_string()),
                state: r.state.clone(),
            }),
            None => Err(PyKeyError::new_err(user_id.to_string())),
        }
    }

    /// What `user`'s weights favour: `{"kind": "head", "head": h, "weight": w}` or `{"kind":
    /// "shared", "weight": w}` (no head fits them better than the shared reward).
    fn fit<'py>(
        &self,
        py: Python<'py>,
        user: PyRef<'py, UserState>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w: Vec<f64> = user.state.log_weights.iter().map(|l| l.exp()).collect();
        if w.len() != self.experts().len() {
            return Err(Error::from(EvalError::UserStateExperts {
                user: user.user_id.clone().unwrap_or_default(),
                state: w.len(),
                experts: self.experts().len(),
            })
            .into());
        }
        to_py(py, &self.experts().fit(&w))
    }

    /// Folds feedback into `user` with the server's Hedge update, one pair at a time in order:
    /// `chosen[i]` was preferred to `rejected[i]` (`[n, dim]`), routed on `prompt`.
    #[pyo3(signature = (user, chosen, rejected, prompt=None))]
    fn feedback<'py>(
        &self,
        py: Python<'py>,
        mut user: PyRefMut<'py, UserState>,
        chosen: &Bound<'py, PyAny>,
        rejected: &Bound<'py, PyAny>,
        prompt: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let c = arrays::rows(chosen, "chosen", self.dim(), false)?;
        let r = arrays::rows(rejected, "rejected", self.dim(), false)?;
        same_rows(&c, &r)?;
        let x = self.router_inputs(prompt, Some(c.rows))?;
        let (cd, rd, v) = (c.data()?, r.data()?, view(&x)?);
        let user = &mut *user;
        let (id, state) = (user.user_id.as_deref(), &mut user.state);
        py.detach(|| {
            for m in self.expert_margins(cd, rd, &v, id)? {
                state.try_update(&m)?;
            }
            Ok::<_, micro_route::RouteError>(())
        })
        .or_raise()
    }

    /// The comparison to ask `user` next among candidate pairs (`first[i]` against
    /// `second[i]`, `[n, dim]`, routed on `prompt`): the one whose answer is expected to tell
    /// most about which expert the user follows. `{"index", "information" (nats), "p_first"}`.
    #[pyo3(signature = (user, first, second, prompt=None, *, seed=0))]
    fn next_question<'py>(
        &self,
        py: Python<'py>,
        user: PyRef<'py, UserState>,
        first: &Bound<'py, PyAny>,
        second: &Bound<'py, PyAny>,
        prompt: Option<&Bound<'py, PyAny>>,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = arrays::rows(first, "first", self.dim(), false)?;
        let b = arrays::rows(second, "second", self.dim(), false)?;
        same_rows(&a, &b)?;
        let x = self.router_inputs(prompt, Some(a.rows))?;
        let (ad, bd, v) = (a.data()?, b.data()?, view(&x)?);
        let id = user.user_id.as_deref();
        let state = &user.state;
        let question = py.detach(|| {
            let margins = self.expert_margins(ad, bd, &v, id)?.concat();
            micro_route::next_question(state, &margins, seed)
        });
        to_py(py, &question.or_raise()?)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "Model(method={:?}, k={}, dim={}, prompt_dim={}, backbone={:?}, users={})",
            c.method.to_string(),
            c.k,
            c.dim,
            c.prompt_dim,
            c.backbone.name,
            self.users.users.len()
        )
    }
}

impl Model {
    /// r_k(x, a) of every row of `data` (`[n, dim]`), row-major `[n, K]`.
    fn head_rewards(&self, data: &[f32]) -> Vec<f32> {
        data.par_chunks(self.dim().max(1))
            .flat_map_iter(|h| self.inner.rewards(h))
            .collect()
    }

    fn write_folder(&self, dir: &Path) -> Result<(), Error> {
        self.inner.save(dir)?;
        if let Some(e) = &self.evidence {
            e.save(dir)?;
        }
        self.users.save(dir)?;
        Ok(())
    }
}

/// A model folder with what `micro eval` reads beside the model.
fn read_folder(dir: &Path) -> Result<Model, Error> {
    Ok(Model {
        inner: MixtureModel::load(dir)?,
        evidence: Evidence::load(dir)?,
        users: UserStates::load(dir)?,
    })
}

/// Refuses two arrays of pairs with different numbers of rows.
fn same_rows(a: &Rows<'_>, b: &Rows<'_>) -> PyResult<()> {
    if a.rows != b.rows {
        return Err(Error::Length {
            name: "the second array",
            got: b.rows,
            pairs: a.rows,
        }
        .into());
    }
    Ok(())
}

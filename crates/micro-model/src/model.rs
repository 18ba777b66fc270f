//! The trained artefact: K linear reward heads and a gate that mixes them, with its
//! `config.json`. The fields are private: the operations that change the heads or the gate live
//! in [`crate::edit`] and keep `config.json`'s K, widths and router kind true to the tensors.

use crate::folder::ModelError;
use crate::gate::{Gate, RouterKind};
use crate::linalg::dot;
use crate::method::Method;
use crate::record::{null_as_default, HistoryEvent, Training};
use crate::router::{log_softmax, Activation, Router};
use crate::users::UserTable;
use micro_cache::{BackboneInfo, CacheMeta, Matrix, Recipe, RecipeMismatch, RouterInput};
use serde::{Deserialize, Serialize};

/// `config.json` of a model folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format_version: u32,
    pub method: Method,
    pub k: usize,
    /// Width of the response embeddings the heads read.
    pub dim: usize,
    /// Width of the router input.
    pub prompt_dim: usize,
    /// Which gate the model has (stored as `"mlp"`, `"linear"` or `"static"`).
    pub router: RouterKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_hidden: Option<usize>,
    #[serde(default)]
    pub activation: Activation,
    /// The backbone of the cache the model was trained on; a cache from another is refused.
    pub backbone: BackboneInfo,
    /// How the training cache made its vectors (text forms, context insertion, pooling); a cache
    /// made another way is refused.
    #[serde(default)]
    pub recipe: Recipe,
    /// Which router input Stage 1 trained on: e(x) (`prompt`) or e(x, c) (`pair`). Stage 2,
    /// evaluation and serving always route by e(x, c).
    #[serde(default)]
    pub router_input: RouterInput,
    /// Hash of the training pairs (provenance only).
    #[serde(default)]
    pub train_pairs_hash: String,
    /// Rows of the per-user table (0: none): the users are listed in `users.json`, their rows
    /// are the tensor `users.logits` [users, K].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users: usize,
    /// The head that is the single BT model trained beside the mixture (Stage 1's gate gives it
    /// no weight): a shared prediction Stage 2 and the server weigh beside the heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_head: Option<usize>,
    /// How the model was trained (Stage 1, the search, Stage 2).
    #[serde(default, deserialize_with = "null_as_default")]
    pub training: Training,
    /// Heads that were masked or merged away, and why, oldest first.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<HistoryEvent>,
}

/// K reward heads r_k(x, a) = w_k . h(x, a) and a gate f(x) on the simplex.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureModel {
    pub(crate) config: ModelConfig,
    /// [K, dim]
    pub(crate) heads: Matrix,
    /// Never [`Gate::Uniform`]: a uniform gate is held as zero static logits.
    pub(crate) gate: Gate,
    /// Stage 1's per-user table, [users, K].
    pub(crate) users: Option<UserTable>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl MixtureModel {
    /// A model from its parts, refused when they disagree (heads not [K, dim], a gate over
    /// another K or router input, a router kind other than `config.router`).
    pub fn new(config: ModelConfig, heads: Matrix, gate: Gate) -> Result<Self, ModelError> {
        check_parts(&config, &heads, &gate)?;
        Ok(Self::from_parts(config, heads, gate))
    }

    /// The parts as they are, a uniform gate stored as zero static logits (its saved form).
    pub(crate) fn from_parts(config: ModelConfig, heads: Matrix, gate: Gate) -> Self {
        let gate = held_gate(gate, heads.rows);
        MixtureModel {
            config,
            heads,
            gate,
            users: None,
        }
    }

    /// The model with a per-user table (refused when its width is not K); `config.json` counts
    /// its rows.
    pub fn with_users(mut self, table: UserTable) -> Result<Self, ModelError> {
        if table.logits().cols != self.k() {
            return Err(ModelError::UserTableHeads {
                table: table.logits().cols,
                model: self.k(),
            });
        }
        self.config.users = table.len();
        self.users = Some(table);
        Ok(self)
    }

    /// `config.json`.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The heads' weights, [K, dim].
    pub fn heads(&self) -> &Matrix {
        &self.heads
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The router, when the weights depend on the router input (`None` for a static mixture).
    pub fn router(&self) -> Option<&Router> {
        self.gate.router()
    }

    pub fn k(&self) -> usize {
        self.heads.rows
    }

    /// Stage 1's per-user table, if it learned one.
    pub fn users(&self) -> Option<&UserTable> {
        self.users.as_ref()
    }

    /// The head that is the single BT model trained beside the mixture, if any.
    pub fn shared_head(&self) -> Option<usize> {
        self.config.shared_head
    }

    /// log f_k(x) for a router input (ignored by a static gate).
    pub fn log_weights(&self, prompt: &[f32]) -> Vec<f32> {
        self.gate.log_weights(self.k(), prompt)
    }

    /// log f_k(x, u): the gate for a router input and, when the per-user table knows `user`, that
    /// user's row added to the logits (any other user, or none, is routed by the gate alone).
    pub fn log_weights_for(&self, prompt: &[f32], user: Option<&str>) -> Vec<f32> {
        log_softmax(&self.logits_for(prompt, user))
    }

    /// The logits [`MixtureModel::log_weights_for`] is the log softmax of.
    pub fn logits_for(&self, prompt: &[f32], user: Option<&str>) -> Vec<f32> {
        let mut z = self.gate.logits(self.k(), prompt);
        if let Some(b) = user.and_then(|u| self.users.as_ref()?.row(u)) {
            z.iter_mut().zip(b).for_each(|(z, b)| *z += b);
        }
        z
    }

    /// f_k(x).
    pub fn weights(&self, prompt: &[f32]) -> Vec<f32> {
        self.log_weights(prompt).into_iter().map(f32::exp).collect()
    }

    /// r_k(x, a) for one response embedding.
    pub fn rewards(&self, h: &[f32]) -> Vec<f32> {
        (0..self.k()).map(|k| dot(self.heads.row(k), h)).collect()
    }

    /// delta_k = r_k(x, a_w) - r_k(x, a_l) from h_w - h_l.
    pub fn margins(&self, diff: &[f32]) -> Vec<f32> {
        self.rewards(diff)
    }

    /// P(a_w > a_l | x) = sum_k f_k(x) sigma(delta_k), given the log weights.
    pub fn pair_prob_with(&self, log_w: &[f32], diff: &[f32]) -> f32 {
        mixture_prob(log_w, &self.margins(diff))
    }

    /// P(a_w > a_l | x) with the model's own gate.
    pub fn pair_prob(&self, prompt: &[f32], diff: &[f32]) -> f32 {
        self.pair_prob_with(&self.log_weights(prompt), diff)
    }

    /// The personalised scalar reward sum_k w_k r_k(x, a).
    pub fn mixed_reward(weights: &[f32], rewards: &[f32]) -> f32 {
        weights.iter().zip(rewards).map(|(w, r)| w * r).sum()
    }

    /// Refuses a cache whose backbone, widths or recipe differ from the training cache's.
    pub fn check_cache(&self, meta: &CacheMeta) -> Result<(), CacheMismatch> {
        let c = &self.config;
        if meta.dim != c.dim || meta.prompt_dim != c.prompt_dim {
            return Err(CacheMismatch::Widths {
                model: (c.dim, c.prompt_dim),
                cache: (meta.dim, meta.prompt_dim),
                backbone: c.backbone.name.clone(),
            });
        }
        if !c.backbone.name.is_empty()
            && !meta.backbone.name.is_empty()
            && c.backbone.name != meta.backbone.name
        {
            return Err(CacheMismatch::Backbone {
                model: c.backbone.name.clone(),
                cache: meta.backbone.name.clone(),
            });
        }
        match c.recipe.mismatch(&meta.recipe()) {
            Some(m) => Err(CacheMismatch::Recipe(m)),
            None => Ok(()),
        }
    }
}

/// Why a model cannot read a cache's vectors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheMismatch {
    /// (response, prompt) widths.
    #[error(
        "the model reads {}-d responses and {}-d prompts, the cache has {}-d and {}-d: embed the data with the model's backbone ({backbone})",
        model.0, model.1, cache.0, cache.1
    )]
    Widths {
        model: (usize, usize),
        cache: (usize, usize),
        backbone: String,
    },
    #[error(
        "the model was trained on embeddings from backbone `{model}`, the cache is from `{cache}`"
    )]
    Backbone { model: String, cache: String },
    #[error(
        "the model was trained on a cache made another way ({0}, model first): embed the data with the same options as the training cache"
    )]
    Recipe(RecipeMismatch),
}

/// The gate as a model holds it: a uniform gate becomes zero static logits over `k` heads.
pub(crate) fn held_gate(gate: Gate, k: usize) -> Gate {
    match gate {
        Gate::Uniform => Gate::Static(vec![0.0; k]),
        g => g,
    }
}

/// Why `config`, `heads` and `gate` cannot make one model, if they cannot.
pub(crate) fn check_parts(c: &ModelConfig, heads: &Matrix, gate: &Gate) -> Result<(), ModelError> {
    if heads.rows != c.k || heads.cols != c.dim || heads.data.len() != c.k * c.dim {
        return Err(ModelError::HeadsShape {
            heads: [heads.rows, heads.cols],
            config: [c.k, c.dim],
        });
    }
    if let Some(k) = gate.k().filter(|&k| k != c.k) {
        return Err(ModelError::GateHeads {
            gate: k,
            model: c.k,
        });
    }
    if gate.kind() != c.router {
        return Err(ModelError::GateKind {
            gate: gate.kind(),
            config: c.router,
        });
    }
    let Some(r) = gate.router() else {
        return Ok(());
    };
    if r.input_dim != c.prompt_dim {
        return Err(ModelError::RouterInput {
            router: r.input_dim,
            config: c.prompt_dim,
        });
    }
    if r.hidden.is_some() && (r.hidden != c.router_hidden || r.activation != c.activation) {
        return Err(ModelError::RouterHidden {
            router: (r.hidden, r.activation),
            config: (c.router_hidden, c.activation),
        });
    }
    let h = r.hidden.unwrap_or(0);
    let want = [h * r.input_dim, h, r.k * r.width(), r.k];
    if r.params().iter().map(|t| t.len()).ne(want) {
        return Err(ModelError::RouterTensors { want });
    }
    Ok(())
}

/// Why the shared head index or the user table do not fit the model, if they do not.
pub(crate) fn check_extras(m: &MixtureModel) -> Result<(), ModelError> {
    if let Some(h) = m.config.shared_head.filter(|&h| h >= m.k()) {
        return Err(ModelError::NoSuchHead { head: h, k: m.k() });
    }
    let rows = m.users.as_ref().map_or(0, UserTable::len);
    let cols = m.users.as_ref().map_or(m.k(), |t| t.logits().cols);
    if rows != m.config.users || cols != m.k() {
        return Err(ModelError::UserTableHeads {
            table: cols,
            model: m.k(),
        });
    }
    Ok(())
}

/// sum_k f_k sigma(delta_k) from the log weights and the head margins.
fn mixture_prob(log_w: &[f32], margins: &[f32]) -> f32 {
    log_w
        .iter()
        .zip(margins)
        .map(|(lw, d)| lw.exp() * sigmoid(*d))
        .sum()
}

/// sigma(x) for f32 ([`Float::sigmoid`](crate::float::Float::sigmoid)).
pub fn sigmoid(x: f32) -> f32 {
    crate::float::Float::sigmoid(x)
}

/// log sigma(x) without overflow ([`Float::log_sigmoid`](crate::float::Float::log_sigmoid)).
pub fn log_sigmoid(x: f32) -> f32 {
    crate::float::Float::log_sigmoid(x)
}

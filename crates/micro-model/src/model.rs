//! The trained artefact: K linear reward heads and a gate that mixes them.

use crate::router::{dot, log_softmax, Activation, Router};
use micro_cache::{Backbone, CacheMeta, Matrix, Recipe, RouterInput};
use serde::{Deserialize, Serialize};

/// Which Stage 1 objective produced the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Mixture of BT heads with a prompt-dependent router (the paper's MiCRo).
    #[default]
    Micro,
    /// One BT head.
    Single,
    /// Mixture with input-independent weights (MaxMin-style).
    Static,
    /// K heads trained on the uniform sum of BT losses (HyRe's shared-base ensemble).
    SharedBase,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "micro" => Ok(Method::Micro),
            "single" => Ok(Method::Single),
            "static" => Ok(Method::Static),
            "shared-base" | "shared_base" | "shared" => Ok(Method::SharedBase),
            _ => Err(format!(
                "unknown method {s:?}: use micro, single, static or shared-base"
            )),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Micro => "micro",
            Method::Single => "single",
            Method::Static => "static",
            Method::SharedBase => "shared-base",
        })
    }
}

/// How the heads are mixed for a prompt.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// f(x) from the prompt embedding.
    Router(Router),
    /// softmax(logits), the same for every prompt.
    Static(Vec<f32>),
}

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
    /// `"mlp"`, `"linear"` or `"static"`.
    pub router: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_hidden: Option<usize>,
    #[serde(default)]
    pub activation: Activation,
    /// The backbone of the cache the model was trained on; a cache from another is refused.
    pub backbone: Backbone,
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
    /// Training hyperparameters and summary figures, free-form.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Head indices that were masked or merged away, and why.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub history: serde_json::Value,
}

/// K reward heads r_k(x, a) = w_k . h(x, a) and a gate f(x) on the simplex.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureModel {
    pub config: ModelConfig,
    /// [K, dim]
    pub heads: Matrix,
    pub gate: Gate,
}

impl MixtureModel {
    pub fn k(&self) -> usize {
        self.heads.rows
    }

    /// log f_k(x) for a router input (ignored by a static gate).
    pub fn log_weights(&self, prompt: &[f32]) -> Vec<f32> {
        match &self.gate {
            Gate::Router(r) => r.log_weights(prompt),
            Gate::Static(logits) => log_softmax(logits),
        }
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
    pub fn check_cache(&self, meta: &CacheMeta) -> Result<(), String> {
        let c = &self.config;
        if meta.dim != c.dim || meta.prompt_dim != c.prompt_dim {
            return Err(format!(
                "the model reads {}-d responses and {}-d prompts, the cache has {}-d and {}-d: embed the data with the model's backbone ({})",
                c.dim, c.prompt_dim, meta.dim, meta.prompt_dim, c.backbone.name
            ));
        }
        if !c.backbone.name.is_empty()
            && !meta.backbone.name.is_empty()
            && c.backbone.name != meta.backbone.name
        {
            return Err(format!(
                "the model was trained on embeddings from backbone `{}`, the cache is from `{}`",
                c.backbone.name, meta.backbone.name
            ));
        }
        if let Some(what) = c.recipe.mismatch(&meta.recipe()) {
            return Err(format!(
                "the model was trained on a cache made another way ({what}, model first): embed the data with the same options as the training cache"
            ));
        }
        Ok(())
    }
}

/// sum_k f_k sigma(delta_k) from the log weights and the head margins.
pub fn mixture_prob(log_w: &[f32], margins: &[f32]) -> f32 {
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

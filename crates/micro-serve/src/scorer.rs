//! The model side of serving: checking vectors against the model's widths, turning text into
//! vectors with the backbone (batched across requests, off the async threads), and the mixture
//! arithmetic.

#[cfg(feature = "text")]
use crate::batch::{BatchOptions, TextEmbedder};
use crate::error::ApiError;
use micro_cache::Matrix;
use micro_data::Prompt;
#[cfg(feature = "text")]
use micro_embed::Backbone;
use micro_model::{sigmoid, MixtureModel};
#[cfg(feature = "text")]
use std::sync::Arc;

/// Scores responses with the served model: its head rewards and mixture weights, and,
/// optionally (feature `text`), the backbone that embeds text requests.
pub struct Scorer {
    pub model: MixtureModel,
    #[cfg(feature = "text")]
    text: Option<TextEmbedder>,
}

/// What one request needs embedded.
#[derive(Clone, Debug)]
pub enum Texts {
    /// Router inputs e(x, c), one row each.
    Prompts(Vec<(Prompt, Option<String>)>),
    /// Reward features h(x, a) of several responses to one prompt, one row each.
    Responses {
        prompt: Prompt,
        context: Option<String>,
        responses: Vec<String>,
    },
}

impl Texts {
    /// Rows this request gets back.
    pub fn len(&self) -> usize {
        match self {
            Texts::Prompts(p) => p.len(),
            Texts::Responses { responses, .. } => responses.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Scorer {
    /// A scorer of embeddings: text requests are refused (400) with a message saying to send
    /// embeddings or start the server with a backbone.
    pub fn new(model: MixtureModel) -> Self {
        Scorer {
            model,
            #[cfg(feature = "text")]
            text: None,
        }
    }

    /// A scorer that also embeds text with `backbone`, sharing backbone passes between
    /// concurrent requests as `batching` says; refuses a backbone whose widths differ from the
    /// model's.
    #[cfg(feature = "text")]
    pub fn with_backbone(
        model: MixtureModel,
        backbone: Arc<dyn Backbone>,
        batching: BatchOptions,
    ) -> Result<Self, String> {
        let c = model.config();
        if backbone.dim() != c.dim || backbone.prompt_dim() != c.prompt_dim {
            return Err(format!(
                "the backbone `{}` makes {}-d features and {}-d router inputs, the model reads {}-d and {}-d: pass the backbone the model was trained with ({})",
                backbone.info().name,
                backbone.dim(),
                backbone.prompt_dim(),
                c.dim,
                c.prompt_dim,
                c.backbone.name
            ));
        }
        let text = TextEmbedder::start(backbone, batching)
            .map_err(|e| format!("cannot start the batching thread: {e}"))?;
        Ok(Scorer {
            model,
            text: Some(text),
        })
    }

    pub fn k(&self) -> usize {
        self.model.k()
    }

    pub fn dim(&self) -> usize {
        self.model.config().dim
    }

    pub fn prompt_dim(&self) -> usize {
        self.model.config().prompt_dim
    }

    /// Whether text requests are embedded (a backbone was given).
    #[cfg(feature = "text")]
    pub fn has_backbone(&self) -> bool {
        self.text.is_some()
    }

    /// Whether text requests are embedded: never in a build without text support.
    #[cfg(not(feature = "text"))]
    pub fn has_backbone(&self) -> bool {
        false
    }

    /// Refuses a vector of the wrong width or with non-finite values.
    pub fn check(&self, field: &str, v: &[f32], want: usize) -> Result<(), ApiError> {
        if v.len() != want {
            return Err(ApiError::unprocessable(format!(
                "`{field}` has {} values, the model reads {want}-d embeddings (backbone `{}`): embed with that backbone",
                v.len(),
                self.model.config().backbone.name
            )));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(ApiError::unprocessable(format!(
                "`{field}`[{i}] is not a finite f32"
            )));
        }
        Ok(())
    }

    /// The input-independent weights of a static gate; `None` for a router.
    pub fn static_weights(&self) -> Option<Vec<f32>> {
        match self.model.router() {
            None => Some(self.model.weights(&[])),
            Some(_) => None,
        }
    }

    /// f(x) for a router input the caller has checked.
    pub fn router_weights(&self, x: &[f32]) -> Vec<f32> {
        self.model.weights(x)
    }

    /// r_k(x, a) for every head, one row per response.
    pub fn head_rewards(&self, features: &Matrix) -> Vec<Vec<f32>> {
        (0..features.rows)
            .map(|i| self.model.rewards(features.row(i)))
            .collect()
    }

    /// e(x, c): the router input for a prompt and context, embedded by the backbone.
    pub async fn embed_router_input(
        &self,
        prompt: Option<&Prompt>,
        context: Option<&str>,
    ) -> Result<Vec<f32>, ApiError> {
        let item = (
            prompt.cloned().unwrap_or_default(),
            context.map(str::to_owned),
        );
        let rows = self.embed(Texts::Prompts(vec![item])).await?;
        Ok(rows.row(0).to_vec())
    }

    /// h(x, a) for each response text.
    pub async fn embed_responses(
        &self,
        prompt: Option<&Prompt>,
        context: Option<&str>,
        responses: Vec<String>,
    ) -> Result<Matrix, ApiError> {
        self.embed(Texts::Responses {
            prompt: prompt.cloned().unwrap_or_default(),
            context: context.map(str::to_owned),
            responses,
        })
        .await
    }

    /// Embeds with the backbone, or refuses when this scorer has none.
    #[cfg(feature = "text")]
    async fn embed(&self, texts: Texts) -> Result<Matrix, ApiError> {
        match &self.text {
            Some(text) => text.embed(texts).await.map_err(ApiError::unprocessable),
            None => Err(ApiError::bad_request(NO_BACKBONE)),
        }
    }

    /// Refuses: this build embeds no text.
    #[cfg(not(feature = "text"))]
    async fn embed(&self, _texts: Texts) -> Result<Matrix, ApiError> {
        Err(ApiError::bad_request(NO_BACKBONE))
    }
}

/// Why a text request is refused by a scorer without a backbone.
#[cfg(feature = "text")]
const NO_BACKBONE: &str = "this server has no backbone to embed text: send embeddings instead, or start it with --backbone DIR";
#[cfg(not(feature = "text"))]
const NO_BACKBONE: &str = "this server was built without text support (micro-serve's `text` feature): send embeddings instead";

/// The personalised reward sum_k w_k r_k.
pub fn mixed_reward(weights: &[f32], head_rewards: &[f32]) -> f32 {
    MixtureModel::mixed_reward(weights, head_rewards)
}

/// P(i preferred to j) = sum_k w_k sigma(r_k(i) - r_k(j)).
pub fn pair_prob(weights: &[f32], ri: &[f32], rj: &[f32]) -> f32 {
    weights
        .iter()
        .zip(ri.iter().zip(rj))
        .map(|(w, (a, b))| w * sigmoid(a - b))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_probabilities_are_complementary_and_match_the_closed_form() {
        let w = [0.25f32, 0.75];
        let (ri, rj) = ([1.0f32, -2.0], [0.0f32, 1.0]);
        let want = 0.25 / (1.0 + (-1.0f32).exp()) + 0.75 / (1.0 + 3.0f32.exp());
        assert!((pair_prob(&w, &ri, &rj) - want).abs() < 1e-6);
        assert!((pair_prob(&w, &ri, &rj) + pair_prob(&w, &rj, &ri) - 1.0).abs() < 1e-6);
        assert!((mixed_reward(&w, &ri) - (0.25 - 1.5)).abs() < 1e-6);
    }
}

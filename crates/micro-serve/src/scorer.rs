//! The model side of serving: checking vectors against the model's widths, turning text into
//! vectors with the backbone (batched across requests, off the async threads), and the mixture
//! arithmetic.

use crate::batch::{self, BatchOptions, Batcher, Texts};
use crate::error::ApiError;
use micro_cache::Matrix;
use micro_data::Prompt;
use micro_embed::Backbone;
use micro_model::{sigmoid, MixtureModel};
use std::sync::Arc;

/// Scores responses with the served model: its head rewards and mixture weights, and,
/// optionally, the backbone that embeds text requests.
pub struct Scorer {
    pub model: MixtureModel,
    backbone: Option<Arc<dyn Backbone>>,
    /// Shares backbone passes between concurrent requests; `None` when batching is off.
    batcher: Option<Batcher>,
}

impl Scorer {
    /// [`Scorer::with_batching`] with the default batching.
    pub fn new(model: MixtureModel, backbone: Option<Box<dyn Backbone>>) -> Result<Self, String> {
        Self::with_batching(model, backbone.map(Arc::from), BatchOptions::default())
    }

    /// Refuses a backbone whose widths differ from the model's.
    pub fn with_batching(
        model: MixtureModel,
        backbone: Option<Arc<dyn Backbone>>,
        batching: BatchOptions,
    ) -> Result<Self, String> {
        if let Some(b) = &backbone {
            let c = model.config();
            if b.dim() != c.dim || b.prompt_dim() != c.prompt_dim {
                return Err(format!(
                    "the backbone `{}` makes {}-d features and {}-d router inputs, the model reads {}-d and {}-d: pass the backbone the model was trained with ({})",
                    b.info().name,
                    b.dim(),
                    b.prompt_dim(),
                    c.dim,
                    c.prompt_dim,
                    c.backbone.name
                ));
            }
        }
        let batcher = match &backbone {
            Some(b) if batching.max_texts > 0 => Some(
                Batcher::start(b.clone(), batching)
                    .map_err(|e| format!("cannot start the batching thread: {e}"))?,
            ),
            _ => None,
        };
        Ok(Scorer {
            model,
            backbone,
            batcher,
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

    pub fn has_backbone(&self) -> bool {
        self.backbone.is_some()
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

    /// Embeds through the batcher, or alone on the blocking pool when batching is off.
    async fn embed(&self, texts: Texts) -> Result<Matrix, ApiError> {
        let backbone = self.backbone.clone().ok_or_else(|| {
            ApiError::bad_request(
                "this server has no backbone to embed text: send embeddings instead, or start it with --backbone DIR",
            )
        })?;
        let rows = match &self.batcher {
            Some(b) => b.embed(texts).await,
            None => tokio::task::spawn_blocking(move || {
                batch::embed_all(backbone.as_ref(), &[&texts]).map(|mut v| v.remove(0))
            })
            .await
            .unwrap_or_else(|e| Err(format!("embedding task failed: {e}"))),
        };
        rows.map_err(ApiError::unprocessable)
    }
}

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

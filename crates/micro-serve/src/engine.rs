//! The model side of serving: checking vectors against the model's widths, turning text into
//! vectors with the backbone (off the async threads), and the mixture arithmetic.

use crate::error::ApiError;
use micro_cache::Matrix;
use micro_data::Prompt;
use micro_embed::{Backbone, Item, PromptItem};
use micro_model::{sigmoid, Gate, MixtureModel};
use std::sync::Arc;

/// The served model and, optionally, the backbone that embeds text requests.
pub struct Engine {
    pub model: MixtureModel,
    backbone: Option<Arc<dyn Backbone>>,
}

impl Engine {
    /// Refuses a backbone whose widths differ from the model's.
    pub fn new(model: MixtureModel, backbone: Option<Box<dyn Backbone>>) -> Result<Self, String> {
        if let Some(b) = &backbone {
            let c = &model.config;
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
        Ok(Engine {
            model,
            backbone: backbone.map(Arc::from),
        })
    }

    pub fn k(&self) -> usize {
        self.model.k()
    }

    pub fn dim(&self) -> usize {
        self.model.config.dim
    }

    pub fn prompt_dim(&self) -> usize {
        self.model.config.prompt_dim
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
                self.model.config.backbone.name
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
        match &self.model.gate {
            Gate::Static(_) => Some(self.model.weights(&[])),
            Gate::Router(_) => None,
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

    fn text_backbone(&self) -> Result<Arc<dyn Backbone>, ApiError> {
        self.backbone.clone().ok_or_else(|| {
            ApiError::bad_request(
                "this server has no backbone to embed text: send embeddings instead, or start it with --backbone DIR",
            )
        })
    }

    /// e(x, c): the router input for a prompt and context, embedded by the backbone.
    pub async fn embed_router_input(
        &self,
        prompt: Option<&Prompt>,
        context: Option<&str>,
    ) -> Result<Vec<f32>, ApiError> {
        let backbone = self.text_backbone()?;
        let prompt = prompt.cloned().unwrap_or_default();
        let context = context.map(str::to_owned);
        let features = run_blocking(move || {
            let item = PromptItem {
                prompt: &prompt,
                context: context.as_deref(),
            };
            backbone.embed_prompts(&[item]).map(|f| f.features)
        })
        .await?;
        Ok(features.row(0).to_vec())
    }

    /// h(x, a) for each response text.
    pub async fn embed_responses(
        &self,
        prompt: Option<&Prompt>,
        context: Option<&str>,
        responses: Vec<String>,
    ) -> Result<Matrix, ApiError> {
        let backbone = self.text_backbone()?;
        let prompt = prompt.cloned().unwrap_or_default();
        let context = context.map(str::to_owned);
        run_blocking(move || {
            let items: Vec<Item<'_>> = responses
                .iter()
                .map(|r| Item {
                    prompt: &prompt,
                    context: context.as_deref(),
                    response: r,
                })
                .collect();
            backbone.embed_responses(&items).map(|f| f.features)
        })
        .await
    }
}

/// Runs a forward pass on the blocking pool so the async workers keep serving.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> micro_embed::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::unprocessable(format!("embedding failed: {e}"))),
        Err(e) => Err(ApiError::internal(format!("embedding task failed: {e}"))),
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

//! The model side of serving: the experts whose predictions are mixed and their mixture
//! arithmetic, the gate's weights, checking vectors against the model's widths, and turning
//! text into vectors with the backbone (batched across requests, off the async threads).
//!
//! The experts a user's weights range over are micro-route's [`Experts`]: the model's K heads
//! (the shared head among them) and the gate, the model's own mixture for the request (routed on
//! its prompt and context, with the user's row where Stage 1's table knew the user). A request
//! is scored on the heads, with weights over the heads that hand the gate's share to the heads
//! as the gate weighs them ([`Experts::head_weights`]), which is the experts' mixture exactly; a
//! user's feedback is folded in through every expert's margin ([`Scorer::expert_margins`]).

#[cfg(feature = "text")]
use crate::batch::{BatchOptions, TextEmbedder};
use crate::error::ApiError;
use crate::texts::Texts;
use micro_cache::Matrix;
#[cfg(feature = "text")]
use micro_embed::Backbone;
use micro_model::{sigmoid, MixtureModel};
use micro_route::Experts;
#[cfg(feature = "text")]
use std::sync::Arc;

/// Scores responses with the served model: its head rewards and mixture weights, and,
/// optionally (feature `text`), the backbone that embeds text requests.
pub struct Scorer {
    model: MixtureModel,
    #[cfg(feature = "text")]
    text: Option<TextEmbedder>,
}

/// Why [`Scorer::with_backbone`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error("the backbone `{backbone}` makes {dim}-d features and {prompt_dim}-d router inputs, the model reads {model_dim}-d and {model_prompt_dim}-d: pass the backbone the model was trained with ({trained_on})")]
    Widths {
        backbone: String,
        dim: usize,
        prompt_dim: usize,
        model_dim: usize,
        model_prompt_dim: usize,
        trained_on: String,
    },
    #[error("cannot start the batching thread: {0}")]
    Thread(#[from] std::io::Error),
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
    ) -> Result<Self, ScorerError> {
        let c = model.config();
        if backbone.dim() != c.dim || backbone.prompt_dim() != c.prompt_dim {
            return Err(ScorerError::Widths {
                backbone: backbone.info().name,
                dim: backbone.dim(),
                prompt_dim: backbone.prompt_dim(),
                model_dim: c.dim,
                model_prompt_dim: c.prompt_dim,
                trained_on: c.backbone.name.clone(),
            });
        }
        let text = TextEmbedder::start(backbone, batching)?;
        Ok(Scorer {
            model,
            text: Some(text),
        })
    }

    /// The served model.
    pub fn model(&self) -> &MixtureModel {
        &self.model
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
    pub(crate) fn check(&self, field: &str, v: &[f32], want: usize) -> Result<(), ApiError> {
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

    /// The experts a user's weights range over.
    pub(crate) fn experts(&self) -> Experts {
        Experts::of(&self.model)
    }

    /// Each head's reward, one row per response: r_k(x, a).
    pub(crate) fn head_rewards(&self, features: &Matrix) -> Vec<Vec<f32>> {
        (0..features.rows)
            .map(|i| self.model.rewards(features.row(i)))
            .collect()
    }

    /// Each expert's margin on `n` pairs given as two row-major `[n, dim]` feature arrays, the
    /// gate weighing the heads as `log_gate` says: `n * experts` values, pair by pair. The heads'
    /// are r_k(first) - r_k(second), computed on the feature difference as the feedback log
    /// has always stored them.
    pub(crate) fn expert_margins(
        &self,
        first: &[f32],
        second: &[f32],
        log_gate: &[f32],
    ) -> Result<Vec<f32>, ApiError> {
        let heads = micro_route::query::pair_margins(&self.model, first, second)
            .map_err(|e| ApiError::internal(format!("pair margins: {e}")))?;
        let experts = self.experts();
        Ok(heads
            .chunks_exact(self.k().max(1))
            .flat_map(|m| experts.margins(m, log_gate))
            .collect())
    }

    /// log f_k of the gate for a request: on its router input where it has one, with the
    /// user's table row where Stage 1 knew `user`. Without an input: a static gate's weights,
    /// else the table row alone, else an even split over the heads (the shared head aside).
    pub(crate) fn log_gate(&self, x: Option<&[f32]>, user: Option<&str>) -> Vec<f32> {
        match (x, self.model.router()) {
            (Some(x), _) => self.model.log_weights_for(x, user),
            (None, None) => self.model.log_weights(&[]),
            (None, Some(_)) => {
                let k = self.k();
                let row = user.and_then(|u| self.model.users()?.row(u));
                let z: Vec<f32> = (0..k)
                    .map(|h| match self.model.shared_head() {
                        Some(s) if s == h => micro_model::SHARED_HEAD_LOGIT,
                        _ => row.map_or(0.0, |b| b[h]),
                    })
                    .collect();
                let mut out = vec![0.0; k];
                micro_model::float::log_softmax_into(&z, &mut out);
                out
            }
        }
    }

    /// Whether the gate reads a router input (`false` for a static gate).
    pub(crate) fn routes(&self) -> bool {
        self.model.router().is_some()
    }

    /// Embeds with the backbone, or refuses when this scorer has none.
    #[cfg(feature = "text")]
    pub(crate) async fn embed(&self, texts: Texts) -> Result<Matrix, ApiError> {
        match &self.text {
            Some(text) => Ok(text.embed(texts).await?),
            None => Err(ApiError::bad_request(NO_BACKBONE)),
        }
    }

    /// Refuses: this build embeds no text.
    #[cfg(not(feature = "text"))]
    pub(crate) async fn embed(&self, _texts: Texts) -> Result<Matrix, ApiError> {
        Err(ApiError::bad_request(NO_BACKBONE))
    }
}

/// Why a text request is refused by a scorer without a backbone.
#[cfg(feature = "text")]
const NO_BACKBONE: &str = "this server has no backbone to embed text: send embeddings instead, or start it with --backbone DIR";
#[cfg(not(feature = "text"))]
const NO_BACKBONE: &str = "this server was built without text support (micro-serve's `text` feature): send embeddings instead";

/// The personalised reward sum_k w_k r_k.
pub(crate) fn mixed_reward(weights: &[f32], expert_rewards: &[f32]) -> f32 {
    MixtureModel::mixed_reward(weights, expert_rewards)
}

/// P(i preferred to j) = sum_k w_k sigma(r_k(i) - r_k(j)).
pub(crate) fn pair_prob(weights: &[f32], ri: &[f32], rj: &[f32]) -> f32 {
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

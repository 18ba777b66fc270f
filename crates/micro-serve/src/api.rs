//! The JSON bodies of the `/v1` API (documented in `docs/openapi.json`).
//!
//! Every request that needs vectors takes either text (embedded in process by the server's
//! backbone) or precomputed embeddings from the backbone the model was trained on.

use crate::store::{LogEntry, UserRecord};
use micro_data::Prompt;
use micro_route::{Experts, Fit, Rate};
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// `POST /v1/score`: rewards for several responses to one prompt.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Use this user's adapted weights.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Without a user: the router weights for this context (text, prepended to the prompt).
    #[serde(default)]
    pub context: Option<String>,
    /// Without a user: the router weights for this router-input embedding.
    #[serde(default)]
    pub context_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub prompt: Option<Prompt>,
    /// Router input for the prompt (used when there is no user and no context embedding).
    #[serde(default)]
    pub prompt_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub responses: Option<Vec<String>>,
    /// h(x, a) for each response, as the backbone makes them.
    #[serde(default)]
    pub response_embeddings: Option<Vec<Vec<f32>>>,
    /// Also return P(i preferred to j) for every pair i < j.
    #[serde(default = "yes")]
    pub pairs: bool,
    /// Also return each head's reward per response.
    #[serde(default)]
    pub head_rewards: bool,
}

/// Where the mixture weights of a response came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsFrom {
    /// The user's Hedge state.
    User,
    /// The router on the context (and prompt).
    Router,
    /// The model's input-independent gate.
    Static,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairProb {
    pub i: usize,
    pub j: usize,
    /// P(response i is preferred to response j) = sum_k w_k sigma(r_k(i) - r_k(j)).
    pub p: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreResponse {
    /// Over the heads: what the rewards are mixed with.
    pub weights: Vec<f32>,
    pub weights_from: WeightsFrom,
    /// For a user: what their weights favour, a head of their own or the shared reward ("no
    /// head fits this user").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    /// The personalised reward sum_k w_k r_k per response, in request order.
    pub rewards: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_rewards: Option<Vec<Vec<f32>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairProb>,
}

/// `POST /v1/compare`: one pair.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub context_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub prompt: Option<Prompt>,
    #[serde(default)]
    pub prompt_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub a: Option<String>,
    #[serde(default)]
    pub b: Option<String>,
    #[serde(default)]
    pub a_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub b_embedding: Option<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareResponse {
    /// P(a preferred to b).
    pub p_a: f32,
    pub reward_a: f32,
    pub reward_b: f32,
    /// r_k(a) - r_k(b) per head.
    pub margins: Vec<f32>,
    pub weights: Vec<f32>,
    pub weights_from: WeightsFrom,
}

/// `POST /v1/users/{user_id}/feedback`: the user preferred `chosen` to `rejected`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    #[serde(default)]
    pub prompt: Option<Prompt>,
    #[serde(default)]
    pub chosen: Option<String>,
    #[serde(default)]
    pub rejected: Option<String>,
    #[serde(default)]
    pub chosen_embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub rejected_embedding: Option<Vec<f32>>,
    /// Sets the prior of a user this event creates (ignored for an existing user).
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub context_embedding: Option<Vec<f32>>,
}

/// One candidate pair of `POST /v1/users/{user_id}/next-question`: the pair fields of a feedback
/// body ([`FeedbackRequest`]), so the pair asked can be sent back as feedback unchanged when the
/// user prefers `chosen`, or with `chosen` and `rejected` swapped when the user prefers the other.
/// Until the user answers, the names only say which response is first: the information of a
/// pair does not depend on its order.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_embedding: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_embedding: Option<Vec<f32>>,
}

/// `POST /v1/users/{user_id}/next-question`: which of these pairs to ask the user next.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NextQuestionRequest {
    pub candidates: Vec<Candidate>,
    /// Embedded with text candidates, as feedback embeds its pair with its `context`.
    #[serde(default)]
    pub context: Option<String>,
    /// Breaks ties and seeds the random draw below the information floor; by default a hash
    /// of the user id and the user's number of updates (the same request, the same answer).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The pair to ask next and what its answer is expected to tell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextQuestionResponse {
    /// The candidate to ask, its position in `candidates`.
    pub index: usize,
    /// The mutual information between the answer and the head the user follows, in nats
    /// (0 to ln 2 = 0.693), under the user's current weights.
    pub information: f64,
    /// True when even the most informative candidate was below the floor
    /// (`micro_route::query::MIN_INFORMATION` nats) and `index` was drawn at random.
    pub random: bool,
    /// P(the user prefers the candidate's `chosen`) under the current weights.
    pub p_chosen: f64,
    /// The user's current weights over the heads, which the choice used.
    pub weights: Vec<f32>,
    /// Feedback events folded into those weights.
    pub updates: u64,
    /// How many candidates were considered.
    pub candidates: usize,
}

/// `PUT /v1/users/{user_id}`: create a user with a prior.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub context_embedding: Option<Vec<f32>>,
    /// Explicit prior weights over the heads (non-negative, normalised by the server).
    #[serde(default)]
    pub prior: Option<Vec<f32>>,
}

/// A user's state as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub user_id: String,
    /// Over the experts: the model's heads, then the gate (its own mixture for a request).
    pub weights: Vec<f32>,
    /// What the weights favour: a head of their own, or the shared reward ("no head fits
    /// this user").
    pub fit: Fit,
    pub log_weights: Vec<f64>,
    pub prior: Vec<f32>,
    /// The user's context (criterion), when it was created with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Hedge learning rate: `{"fixed": eta}` or `"anytime"` (eta_t = sqrt(8 ln K / t) / C).
    pub rate: Rate,
    /// The rate the next update uses.
    pub eta: f64,
    /// Each expert's cumulative clipped log-loss on this user's feedback.
    pub head_loss: Vec<f64>,
    /// Feedback events folded in.
    pub updates: u64,
    /// Sequence number of the last logged event.
    pub seq: i64,
    /// Sum over events of -log P(chosen preferred) under the weights before each event.
    pub cumulative_loss: f64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserView {
    /// The view of a stored user of a model with these `experts`.
    pub fn of(r: &UserRecord, experts: &Experts) -> Self {
        let w: Vec<f64> = r.state.log_weights.iter().map(|l| l.exp()).collect();
        UserView {
            user_id: r.key.user_id.clone(),
            weights: r.state.weights(),
            fit: experts.fit(&w),
            log_weights: r.state.log_weights.clone(),
            prior: r.prior.clone(),
            context: r.state.context.clone(),
            rate: r.state.rate,
            eta: r.state.eta(),
            head_loss: r.state.expert_loss.clone(),
            updates: r.state.updates,
            seq: r.seq,
            cumulative_loss: r.state.cumulative_loss,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `GET /v1/users/{user_id}/feedback`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogView {
    pub user_id: String,
    pub entries: Vec<LogEntry>,
    /// Pass as `after` to read on; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub after: i64,
    #[serde(default)]
    pub limit: Option<i64>,
}

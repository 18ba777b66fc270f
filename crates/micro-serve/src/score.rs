//! The one scoring path. Every route that scores responses (`/v1/score`, `/v1/compare`,
//! feedback, OpenRLHF's `/get_reward`, slime's `/slime/reward`) builds a [`Query`] from its
//! body and calls [`score`]: the mixture weights ([`resolve`], the weight resolver) and the
//! experts' predictions for the responses are computed side by side (text requests may then
//! share one backbone pass), then checked finite.
//!
//! The parts of a query are checked when they are built, once per request: [`Turn`] (prompt
//! and context within the text limits), [`Responses`] (texts or embeddings, within the limits
//! and of the model's width) and [`Who`] (a valid user id, or a router input of the right
//! width).

use crate::api::WeightsFrom;
use crate::error::ApiError;
use crate::extract::Tenant;
use crate::scorer::{mixed_reward, pair_prob};
use crate::state::{AppState, Limits};
use crate::store::{UserKey, UserRecord};
use crate::texts::Texts;
use micro_cache::Matrix;
use micro_data::Prompt;

/// The conversation a request is about: its prompt and the user's context (criterion).
#[derive(Clone, Debug, Default)]
pub(crate) struct Turn {
    pub prompt: Option<Prompt>,
    pub context: Option<String>,
}

impl Turn {
    /// Checks both against `--max-text-chars` whether or not the request also carries
    /// embeddings: both are logged or stored with the user.
    pub fn new(
        limits: &Limits,
        prompt: Option<Prompt>,
        context: Option<String>,
    ) -> Result<Self, ApiError> {
        if let Some(p) = &prompt {
            check_text(limits, "prompt", &p.to_text())?;
        }
        if let Some(c) = &context {
            check_text(limits, "context", c)?;
        }
        Ok(Turn { prompt, context })
    }
}

/// What a request calls its response fields, for messages.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Names {
    /// One list field; row `i` is `name[i]`.
    List(&'static str),
    /// One field per row (`a` and `b`).
    Each(&'static [&'static str]),
}

impl Names {
    fn row(self, i: usize) -> String {
        match self {
            Names::List(name) => format!("{name}[{i}]"),
            Names::Each(names) => names.get(i).copied().unwrap_or("?").to_owned(),
        }
    }

    fn all(self) -> String {
        match self {
            Names::List(name) => format!("`{name}`"),
            Names::Each(names) => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }
}

/// The responses of a request, checked: at most `--max-texts` and at least one, texts within
/// `--max-text-chars`, or embeddings of the model's width with finite values.
#[derive(Debug)]
pub(crate) struct Responses {
    rows: Rows,
    names: Names,
}

#[derive(Debug)]
enum Rows {
    Texts(Vec<String>),
    Embeddings(Matrix),
}

impl Responses {
    /// Texts or embeddings (exactly one of the two), named `texts` and `embeddings` in messages.
    pub fn new(
        st: &AppState,
        texts: Option<Vec<String>>,
        embeddings: Option<Vec<Vec<f32>>>,
        names: [Names; 2],
    ) -> Result<Self, ApiError> {
        let n = texts.as_ref().map_or(0, Vec::len) + embeddings.as_ref().map_or(0, Vec::len);
        if n > st.limits.max_texts {
            return Err(ApiError::too_large(format!(
                "{n} responses in one request, the limit is {} (--max-texts): split the request",
                st.limits.max_texts
            )));
        }
        let [text, emb] = names;
        match (texts, embeddings) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "give {} or {}, not both",
                text.all(),
                emb.all()
            ))),
            (None, None) => Err(ApiError::bad_request(format!(
                "give the responses as {} (text) or {}",
                text.all(),
                emb.all()
            ))),
            (Some(texts), None) => {
                if texts.is_empty() {
                    return Err(ApiError::bad_request(format!("{} is empty", text.all())));
                }
                for (i, t) in texts.iter().enumerate() {
                    check_text(&st.limits, &text.row(i), t)?;
                }
                Ok(Responses {
                    rows: Rows::Texts(texts),
                    names: text,
                })
            }
            (None, Some(rows)) => {
                if rows.is_empty() {
                    return Err(ApiError::bad_request(format!("{} is empty", emb.all())));
                }
                for (i, r) in rows.iter().enumerate() {
                    st.scorer.check(&emb.row(i), r, st.scorer.dim())?;
                }
                Ok(Responses {
                    rows: Rows::Embeddings(Matrix::from_rows(&rows)),
                    names: emb,
                })
            }
        }
    }

    /// Two responses, each a text field or an embedding field (`a`/`b`, `a_embedding`/
    /// `b_embedding`); one of a pair alone is refused.
    pub fn pair(
        st: &AppState,
        texts: [Option<String>; 2],
        embeddings: [Option<Vec<f32>>; 2],
        names: [&'static [&'static str]; 2],
    ) -> Result<Self, ApiError> {
        let texts = both_or_none(texts, names[0])?;
        let embeddings = both_or_none(embeddings, names[1])?;
        Responses::new(st, texts, embeddings, names.map(Names::Each))
    }

    /// One response text (the RL trainers' routes).
    pub fn text(st: &AppState, response: String, name: &'static str) -> Result<Self, ApiError> {
        let names = [Names::List(name), Names::List(name)];
        Responses::new(st, Some(vec![response]), None, names)
    }

    /// h(x, a) of each response: embeddings as sent, texts through the backbone.
    async fn features(self, st: &AppState, turn: &Turn) -> Result<Matrix, ApiError> {
        match self.rows {
            Rows::Embeddings(m) => Ok(m),
            Rows::Texts(responses) => {
                let texts = Texts::Responses {
                    prompt: turn.prompt.clone().unwrap_or_default(),
                    context: turn.context.clone(),
                    responses,
                };
                st.scorer.embed(texts).await
            }
        }
    }
}

/// Both of a pair of optional fields as two rows, or neither; one alone is an error.
fn both_or_none<T>(pair: [Option<T>; 2], names: &[&str]) -> Result<Option<Vec<T>>, ApiError> {
    match pair {
        [Some(x), Some(y)] => Ok(Some(vec![x, y])),
        [None, None] => Ok(None),
        _ => Err(ApiError::bad_request(format!(
            "give both `{}` and `{}`",
            names[0], names[1]
        ))),
    }
}

/// What the router reads when the weights come from the router.
#[derive(Clone, Debug)]
pub(crate) enum RouterInput {
    None,
    /// e(x, c) as the client sent it, checked against the model's router-input width.
    Embedding(Vec<f32>),
    /// e(x, c) of this prompt and context, from the backbone.
    Text {
        prompt: Prompt,
        context: Option<String>,
    },
}

impl RouterInput {
    /// The first given of `context_embedding`, `prompt_embedding`, and the text of the
    /// context and prompt.
    pub fn new(
        st: &AppState,
        context_embedding: Option<Vec<f32>>,
        prompt_embedding: Option<Vec<f32>>,
        prompt: Option<&Prompt>,
        context: Option<&str>,
    ) -> Result<Self, ApiError> {
        let pd = st.scorer.prompt_dim();
        if let Some(x) = context_embedding {
            st.scorer.check("context_embedding", &x, pd)?;
            return Ok(RouterInput::Embedding(x));
        }
        if let Some(x) = prompt_embedding {
            st.scorer.check("prompt_embedding", &x, pd)?;
            return Ok(RouterInput::Embedding(x));
        }
        if prompt.is_none() && context.is_none() {
            return Ok(RouterInput::None);
        }
        Ok(RouterInput::Text {
            prompt: prompt.cloned().unwrap_or_default(),
            context: context.map(str::to_owned),
        })
    }
}

/// Whose weights mix the experts, and what the gate reads for this request.
#[derive(Clone, Debug)]
pub(crate) enum Who {
    /// A stored user's adapted weights over the experts (404 when there is no such user).
    User { key: UserKey, input: RouterInput },
    /// Nobody in particular: the model's gate on the input (400 when the model has a router
    /// and there is no input).
    Anyone(RouterInput),
    /// A user about to be created: `prior` over the experts if given, else the experts' prior
    /// (which holds the shared predictions, micro-route's `experts`).
    NewUser {
        key: UserKey,
        prior: Option<Vec<f32>>,
        input: RouterInput,
    },
}

impl Who {
    /// `/v1/score`'s rule: a user id's weights where one is given, else the gate; either way
    /// the gate reads the first router input given (`embeddings` are the request's
    /// `[context_embedding, prompt_embedding]`).
    pub fn of_request(
        st: &AppState,
        tenant: &Tenant,
        user_id: Option<&str>,
        embeddings: [Option<Vec<f32>>; 2],
        turn: &Turn,
    ) -> Result<Self, ApiError> {
        let [context_embedding, prompt_embedding] = embeddings;
        let input = RouterInput::new(
            st,
            context_embedding,
            prompt_embedding,
            turn.prompt.as_ref(),
            turn.context.as_deref(),
        )?;
        Ok(match user_id {
            Some(id) => Who::User {
                key: user_key(tenant, id)?,
                input,
            },
            None => Who::Anyone(input),
        })
    }
}

/// What the resolver found: the weights a request is scored with and where they came from.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// Over the heads: what the rewards are mixed with.
    pub weights: Vec<f32>,
    pub from: WeightsFrom,
    /// The gate's log weights over the heads for this request.
    pub log_gate: Vec<f32>,
    /// Over the experts: a stored user's weights, or a new user's prior.
    pub experts: Option<Vec<f32>>,
}

/// The weight resolver: the weights over the heads for `who`, their source, the gate's weights
/// for this request and, for a user, their weights over the experts.
pub(crate) async fn resolve(st: &AppState, who: Who) -> Result<Resolved, ApiError> {
    let experts = st.scorer.experts();
    match who {
        Who::User { key, input } => {
            let (rec, x) = tokio::join!(st.store.get_user(&key), router_input(st, input));
            let rec = rec?.ok_or_else(|| not_found(&key.user_id))?;
            check_user_k(st, &rec)?;
            let log_gate = st.scorer.log_gate(x?.as_deref(), Some(&key.user_id));
            let w: Vec<f64> = rec.state.log_weights.iter().map(|l| l.exp()).collect();
            Ok(Resolved {
                weights: experts.head_weights(&w, &log_gate),
                from: WeightsFrom::User,
                log_gate,
                experts: Some(rec.state.weights()),
            })
        }
        Who::Anyone(input) => {
            let x = router_input(st, input).await?;
            if x.is_none() && st.scorer.routes() {
                return Err(ApiError::bad_request("give a user_id, a context, a context_embedding, a prompt or a prompt_embedding to weight the heads"));
            }
            let log_gate = st.scorer.log_gate(x.as_deref(), None);
            let weights = log_gate.iter().map(|l| l.exp()).collect();
            let from = match st.scorer.routes() {
                true => WeightsFrom::Router,
                false => WeightsFrom::Static,
            };
            Ok(Resolved {
                weights,
                from,
                log_gate,
                experts: None,
            })
        }
        Who::NewUser { key, prior, input } => {
            let prior = match prior {
                Some(p) => normalised_prior(&p, experts.len())?,
                None => experts.prior().iter().map(|&w| w as f32).collect(),
            };
            let x = router_input(st, input).await?;
            let log_gate = st.scorer.log_gate(x.as_deref(), Some(&key.user_id));
            let w: Vec<f64> = prior.iter().map(|&v| v as f64).collect();
            Ok(Resolved {
                weights: experts.head_weights(&w, &log_gate),
                from: WeightsFrom::User,
                log_gate,
                experts: Some(prior),
            })
        }
    }
}

/// The router input as a vector: as sent, or embedded by the backbone; checked finite under
/// the router. `None` without one.
async fn router_input(st: &AppState, input: RouterInput) -> Result<Option<Vec<f32>>, ApiError> {
    let x = match input {
        RouterInput::None => return Ok(None),
        RouterInput::Embedding(x) => x,
        RouterInput::Text { prompt, context } => {
            let rows = st
                .scorer
                .embed(Texts::Prompts(vec![(prompt, context)]))
                .await?;
            rows.row(0).to_vec()
        }
    };
    let w = st.scorer.log_gate(Some(&x), None);
    check_finite(&w, || {
        "the router weights for this router input are".to_owned()
    })?;
    Ok(Some(x))
}

/// An explicit prior scaled to sum to one. The sum is taken in f64: f32 weights near f32::MAX
/// overflow an f32 sum to infinity, which would normalise every weight to zero.
fn normalised_prior(p: &[f32], k: usize) -> Result<Vec<f32>, ApiError> {
    let sum: f64 = p.iter().map(|&w| f64::from(w)).sum();
    if p.len() != k || p.iter().any(|w| !w.is_finite() || *w < 0.0) || sum <= 0.0 {
        return Err(ApiError::unprocessable(format!(
            "`prior` must be {k} finite non-negative weights with a positive sum, one per expert: the model's heads, then its gate"
        )));
    }
    Ok(p.iter().map(|&w| (f64::from(w) / sum) as f32).collect())
}

/// What a request wants of the experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Predict {
    /// Each expert's reward per response, and the mixed reward.
    Rewards,
    /// Each expert's margin of the first response over the second (feedback).
    Margins,
}

/// A request to score: whose weights, the conversation, the responses, and what to predict.
#[derive(Debug)]
pub(crate) struct Query {
    pub who: Who,
    pub turn: Turn,
    pub responses: Responses,
    pub predict: Predict,
}

/// What [`score`] found, every value finite.
#[derive(Clone, Debug)]
pub(crate) struct Scored {
    /// Over the heads.
    pub weights: Vec<f32>,
    pub from: WeightsFrom,
    /// A user's weights over the experts (or a new user's prior).
    pub experts: Option<Vec<f32>>,
    /// [`Predict::Rewards`]: each head's reward, one row per response.
    pub head_rewards: Vec<Vec<f32>>,
    /// [`Predict::Rewards`]: the mixed reward sum_k w_k r_k per response.
    pub rewards: Vec<f32>,
    /// [`Predict::Margins`]: each expert's margin, first response over second.
    pub margins: Vec<f32>,
}

impl Scored {
    /// P(response i preferred to response j) = sum_k w_k sigma(r_k(i) - r_k(j)).
    pub fn pair_prob(&self, i: usize, j: usize) -> f32 {
        pair_prob(&self.weights, &self.head_rewards[i], &self.head_rewards[j])
    }

    /// What a user's weights favour, when they are a user's.
    pub fn fit(&self, st: &AppState) -> Option<micro_route::Fit> {
        let w: Vec<f64> = self.experts.as_ref()?.iter().map(|&v| v as f64).collect();
        Some(st.scorer.experts().fit(&w))
    }
}

/// Scores a query: its weights and its responses' features side by side, then the experts.
pub(crate) async fn score(st: &AppState, q: Query) -> Result<Scored, ApiError> {
    let names = q.responses.names;
    let (resolved, features) = tokio::join!(resolve(st, q.who), q.responses.features(st, &q.turn));
    let (r, h) = (resolved?, features?);
    let (mut head_rewards, mut rewards, mut margins) = (Vec::new(), Vec::new(), Vec::new());
    match q.predict {
        Predict::Rewards => {
            head_rewards = st.scorer.head_rewards(&h);
            for (i, hr) in head_rewards.iter().enumerate() {
                check_finite(hr, || format!("the head rewards of `{}` are", names.row(i)))?;
            }
            rewards = (head_rewards.iter())
                .map(|hr| mixed_reward(&r.weights, hr))
                .collect();
            check_finite(&rewards, || "the mixed rewards are".to_owned())?;
        }
        Predict::Margins => {
            margins = st.scorer.expert_margins(h.row(0), h.row(1), &r.log_gate)?;
            check_finite(&margins, || {
                format!(
                    "the head margins r_k({}) - r_k({}) are",
                    names.row(0),
                    names.row(1)
                )
            })?;
        }
    }
    Ok(Scored {
        weights: r.weights,
        from: r.from,
        experts: r.experts,
        head_rewards,
        rewards,
        margins,
    })
}

/// Longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 256;

/// The store's key of a user id, refused when empty, too long, or holding an invisible
/// character that would hide or reorder text where ids are shown: control and format
/// characters (bidirectional overrides such as U+202E, zero-width ones) and line or
/// paragraph separators.
pub(crate) fn user_key(tenant: &Tenant, user_id: &str) -> Result<UserKey, ApiError> {
    let n = user_id.chars().count();
    if n == 0 || n > MAX_USER_ID_CHARS {
        return Err(ApiError::bad_request(format!(
            "user_id has {n} characters: it must be 1-{MAX_USER_ID_CHARS} characters"
        )));
    }
    if let Some((i, c)) = user_id.chars().enumerate().find(|(_, c)| invisible(*c)) {
        return Err(ApiError::bad_request(format!(
            "user_id has the invisible character U+{:04X} at position {i}: use printable characters only",
            u32::from(c)
        )));
    }
    Ok(UserKey::new(&tenant.0, user_id))
}

/// Control (Cc) and format (Cf) characters, and line and paragraph separators (Zl, Zp).
fn invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

pub(crate) fn not_found(user_id: &str) -> ApiError {
    ApiError::not_found(format!("no user {user_id:?} for this API key's tenant"))
}

/// Refuses a stored user whose state is over another number of experts than the model has.
pub(crate) fn check_user_k(st: &AppState, rec: &UserRecord) -> Result<(), ApiError> {
    let k = rec.state.log_weights.len();
    let want = st.scorer.experts().len();
    if k != want {
        return Err(ApiError::conflict(format!(
            "user {:?} has weights over {k} experts but the model has {want} (its {} heads and the gate): delete the user or serve the model it was built with",
            rec.key.user_id,
            st.scorer.k()
        )));
    }
    Ok(())
}

pub(crate) fn check_text(limits: &Limits, field: &str, text: &str) -> Result<(), ApiError> {
    let n = text.chars().count();
    if n > limits.max_text_chars {
        return Err(ApiError::too_large(format!(
            "`{field}` has {n} characters, the limit is {} (--max-text-chars)",
            limits.max_text_chars
        )));
    }
    Ok(())
}

/// Refuses a result that overflowed: finite inputs too large for the model's arithmetic.
pub(crate) fn check_finite(values: &[f32], what: impl FnOnce() -> String) -> Result<(), ApiError> {
    if values.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "{} not finite: the values are too large for the model's arithmetic; send embeddings as the backbone makes them",
        what()
    )))
}

//! The `/v1` handlers: each checks its input against the limits and the model, resolves the
//! mixture weights (user state, router or static gate) and answers JSON.

use crate::api::{
    CompareRequest, CompareResponse, CreateUserRequest, FeedbackRequest, LogQuery, LogView,
    PairProb, ScoreRequest, ScoreResponse, UserView, WeightsFrom,
};
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::scorer::{mixed_reward, pair_prob};
use crate::server::{ApiJson, ApiPath, ApiQuery, AppState};
use crate::store::{Feedback, NewUser, UserKey, UserRecord};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use micro_cache::Matrix;
use micro_data::Prompt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// The OpenAPI document, kept in the repository at `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn health(State(st): St) -> Json<serde_json::Value> {
    let c = st.scorer.model.config();
    Json(serde_json::json!({
        "status": "ok",
        "model": {"method": c.method.to_string(), "k": st.scorer.k(), "dim": c.dim, "prompt_dim": c.prompt_dim, "backbone": c.backbone.name},
        "text": st.scorer.has_backbone(),
        "store": st.store.kind(),
    }))
}

pub async fn metrics(State(st): St) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

/// Longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 256;

pub(crate) fn user_key(tenant: &Tenant, user_id: &str) -> Result<UserKey, ApiError> {
    let n = user_id.chars().count();
    if n == 0 || n > MAX_USER_ID_CHARS || user_id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "user_id has {n} characters: it must be 1-{MAX_USER_ID_CHARS} characters without control characters"
        )));
    }
    Ok(UserKey::new(&tenant.0, user_id))
}

fn not_found(user_id: &str) -> ApiError {
    ApiError::not_found(format!("no user {user_id:?} for this API key's tenant"))
}

pub(crate) fn check_text(st: &AppState, field: &str, text: &str) -> Result<(), ApiError> {
    let n = text.chars().count();
    if n > st.limits.max_text_chars {
        return Err(ApiError::too_large(format!(
            "`{field}` has {n} characters, the limit is {} (--max-text-chars)",
            st.limits.max_text_chars
        )));
    }
    Ok(())
}

fn check_prompt(st: &AppState, prompt: Option<&Prompt>) -> Result<(), ApiError> {
    prompt.map_or(Ok(()), |p| check_text(st, "prompt", &p.to_text()))
}

/// The prompt and context limits hold whether or not the request also carries embeddings:
/// both are logged or stored with the user.
pub(crate) fn check_prompt_and_context(
    st: &AppState,
    prompt: Option<&Prompt>,
    context: Option<&str>,
) -> Result<(), ApiError> {
    check_prompt(st, prompt)?;
    context.map_or(Ok(()), |c| check_text(st, "context", c))
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

/// Head rewards per response, each checked finite.
fn checked_head_rewards(st: &AppState, h: &Matrix, field: &str) -> Result<Vec<Vec<f32>>, ApiError> {
    let heads = st.scorer.head_rewards(h);
    for (i, r) in heads.iter().enumerate() {
        check_finite(r, || format!("the head rewards of `{field}`[{i}] are"))?;
    }
    Ok(heads)
}

/// Where a request's weights come from: a user, a context or prompt, or the static gate.
pub(crate) struct WeightSource<'a> {
    pub user_id: Option<&'a str>,
    pub context: Option<&'a str>,
    pub context_embedding: Option<&'a [f32]>,
    pub prompt: Option<&'a Prompt>,
    pub prompt_embedding: Option<&'a [f32]>,
}

pub(crate) async fn resolve_weights(
    st: &AppState,
    tenant: &Tenant,
    src: WeightSource<'_>,
) -> Result<(Vec<f32>, WeightsFrom), ApiError> {
    if let Some(id) = src.user_id {
        let key = user_key(tenant, id)?;
        let rec = st
            .store
            .get_user(&key)
            .await?
            .ok_or_else(|| not_found(id))?;
        check_user_k(st, &rec)?;
        return Ok((rec.state.weights(), WeightsFrom::User));
    }
    if let Some(w) = st.scorer.static_weights() {
        return Ok((w, WeightsFrom::Static));
    }
    let x = router_input(st, src.context, src.context_embedding, src.prompt, src.prompt_embedding).await?.ok_or_else(|| {
        ApiError::bad_request("give a user_id, a context, a context_embedding, a prompt or a prompt_embedding to weight the heads")
    })?;
    Ok((router_weights(st, &x)?, WeightsFrom::Router))
}

/// f(x), refused when the router input's size overflows the router.
fn router_weights(st: &AppState, x: &[f32]) -> Result<Vec<f32>, ApiError> {
    let w = st.scorer.router_weights(x);
    check_finite(&w, || {
        "the router weights for this router input are".to_owned()
    })?;
    Ok(w)
}

/// The router input from an embedding, or from text through the backbone; `None` if neither.
async fn router_input(
    st: &AppState,
    context: Option<&str>,
    context_embedding: Option<&[f32]>,
    prompt: Option<&Prompt>,
    prompt_embedding: Option<&[f32]>,
) -> Result<Option<Vec<f32>>, ApiError> {
    let pd = st.scorer.prompt_dim();
    if let Some(x) = context_embedding {
        st.scorer.check("context_embedding", x, pd)?;
        return Ok(Some(x.to_vec()));
    }
    if let Some(x) = prompt_embedding {
        st.scorer.check("prompt_embedding", x, pd)?;
        return Ok(Some(x.to_vec()));
    }
    if context.is_some() || prompt.is_some() {
        if let Some(c) = context {
            check_text(st, "context", c)?;
        }
        check_prompt(st, prompt)?;
        return Ok(Some(st.scorer.embed_router_input(prompt, context).await?));
    }
    Ok(None)
}

pub(crate) fn check_user_k(st: &AppState, rec: &UserRecord) -> Result<(), ApiError> {
    let k = rec.state.log_weights.len();
    if k != st.scorer.k() {
        return Err(ApiError::conflict(format!(
            "user {:?} has state over {k} heads but the model has {}: delete the user or serve the model it was built with",
            rec.key.user_id,
            st.scorer.k()
        )));
    }
    Ok(())
}

/// Response features from embeddings or texts (exactly one of the two).
pub(crate) async fn features(
    st: &AppState,
    prompt: Option<&Prompt>,
    context: Option<&str>,
    texts: Option<Vec<String>>,
    embeddings: Option<Vec<Vec<f32>>>,
    names: (&str, &str),
) -> Result<Matrix, ApiError> {
    let n = texts.as_ref().map_or(0, Vec::len) + embeddings.as_ref().map_or(0, Vec::len);
    if n > st.limits.max_texts {
        return Err(ApiError::too_large(format!(
            "{n} responses in one request, the limit is {} (--max-texts): split the request",
            st.limits.max_texts
        )));
    }
    match (texts, embeddings) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "give `{}` or `{}`, not both",
            names.0, names.1
        ))),
        (None, Some(rows)) => {
            for (i, r) in rows.iter().enumerate() {
                st.scorer
                    .check(&format!("{}[{i}]", names.1), r, st.scorer.dim())?;
            }
            if rows.is_empty() {
                return Err(ApiError::bad_request(format!("`{}` is empty", names.1)));
            }
            Ok(Matrix::from_rows(&rows))
        }
        (Some(texts), None) => {
            if texts.is_empty() {
                return Err(ApiError::bad_request(format!("`{}` is empty", names.0)));
            }
            for (i, t) in texts.iter().enumerate() {
                check_text(st, &format!("{}[{i}]", names.0), t)?;
            }
            check_prompt(st, prompt)?;
            st.scorer.embed_responses(prompt, context, texts).await
        }
        (None, None) => Err(ApiError::bad_request(format!(
            "give the responses as `{}` (text) or `{}`",
            names.0, names.1
        ))),
    }
}

pub async fn score(
    State(st): St,
    tenant: Tenant,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> Result<Json<ScoreResponse>, ApiError> {
    check_prompt_and_context(&st, req.prompt.as_ref(), req.context.as_deref())?;
    let src = WeightSource {
        user_id: req.user_id.as_deref(),
        context: req.context.as_deref(),
        context_embedding: req.context_embedding.as_deref(),
        prompt: req.prompt.as_ref(),
        prompt_embedding: req.prompt_embedding.as_deref(),
    };
    // Both may need the backbone: concurrently, they can ride in one batch.
    let (weights, h) = tokio::join!(
        resolve_weights(&st, &tenant, src),
        features(
            &st,
            req.prompt.as_ref(),
            req.context.as_deref(),
            req.responses,
            req.response_embeddings,
            ("responses", "response_embeddings"),
        )
    );
    let ((weights, from), h) = (weights?, h?);
    let heads = checked_head_rewards(&st, &h, "responses")?;
    let rewards = heads.iter().map(|r| mixed_reward(&weights, r)).collect();
    let mut pairs = Vec::new();
    if req.pairs {
        for i in 0..heads.len() {
            for j in i + 1..heads.len() {
                pairs.push(PairProb {
                    i,
                    j,
                    p: pair_prob(&weights, &heads[i], &heads[j]),
                });
            }
        }
    }
    let head_rewards = req.head_rewards.then_some(heads);
    Ok(Json(ScoreResponse {
        weights,
        weights_from: from,
        rewards,
        head_rewards,
        pairs,
    }))
}

/// Two responses as one two-row feature matrix (texts or embeddings, not mixed).
async fn pair_features(
    st: &AppState,
    prompt: Option<&Prompt>,
    context: Option<&str>,
    texts: (Option<String>, Option<String>),
    embeddings: (Option<Vec<f32>>, Option<Vec<f32>>),
    names: [&str; 4],
) -> Result<Matrix, ApiError> {
    let texts = both_or_none(texts, names[0], names[1])?;
    let embeddings = both_or_none(embeddings, names[2], names[3])?;
    let both = format!("{} and {}", names[0], names[1]);
    let both_emb = format!("{} and {}", names[2], names[3]);
    features(st, prompt, context, texts, embeddings, (&both, &both_emb)).await
}

/// Both of a pair of optional fields as two rows, or neither; one alone is an error.
fn both_or_none<T>(
    pair: (Option<T>, Option<T>),
    a: &str,
    b: &str,
) -> Result<Option<Vec<T>>, ApiError> {
    match pair {
        (Some(x), Some(y)) => Ok(Some(vec![x, y])),
        (None, None) => Ok(None),
        _ => Err(ApiError::bad_request(format!("give both `{a}` and `{b}`"))),
    }
}

pub async fn compare(
    State(st): St,
    tenant: Tenant,
    ApiJson(req): ApiJson<CompareRequest>,
) -> Result<Json<CompareResponse>, ApiError> {
    check_prompt_and_context(&st, req.prompt.as_ref(), req.context.as_deref())?;
    let src = WeightSource {
        user_id: req.user_id.as_deref(),
        context: req.context.as_deref(),
        context_embedding: req.context_embedding.as_deref(),
        prompt: req.prompt.as_ref(),
        prompt_embedding: req.prompt_embedding.as_deref(),
    };
    let (weights, h) = tokio::join!(
        resolve_weights(&st, &tenant, src),
        pair_features(
            &st,
            req.prompt.as_ref(),
            req.context.as_deref(),
            (req.a, req.b),
            (req.a_embedding, req.b_embedding),
            ["a", "b", "a_embedding", "b_embedding"],
        )
    );
    let ((weights, from), h) = (weights?, h?);
    let heads = checked_head_rewards(&st, &h, "a and b")?;
    let margins = heads[0].iter().zip(&heads[1]).map(|(a, b)| a - b).collect();
    Ok(Json(CompareResponse {
        p_a: pair_prob(&weights, &heads[0], &heads[1]),
        reward_a: mixed_reward(&weights, &heads[0]),
        reward_b: mixed_reward(&weights, &heads[1]),
        margins,
        weights,
        weights_from: from,
    }))
}

/// The prior of a user being created: an explicit vector, the router on the context, the
/// static gate, or uniform.
async fn prior_for(
    st: &AppState,
    explicit: Option<&[f32]>,
    context: Option<&str>,
    context_embedding: Option<&[f32]>,
) -> Result<Vec<f32>, ApiError> {
    let k = st.scorer.k();
    if let Some(p) = explicit {
        return normalised_prior(p, k);
    }
    if let Some(w) = st.scorer.static_weights() {
        return Ok(w);
    }
    match router_input(st, context, context_embedding, None, None).await? {
        Some(x) => router_weights(st, &x),
        None => Ok(vec![1.0 / k as f32; k]),
    }
}

/// An explicit prior scaled to sum to one. The sum is taken in f64: f32 weights near f32::MAX
/// overflow an f32 sum to infinity, which would normalise every weight to zero.
fn normalised_prior(p: &[f32], k: usize) -> Result<Vec<f32>, ApiError> {
    let sum: f64 = p.iter().map(|&w| f64::from(w)).sum();
    if p.len() != k || p.iter().any(|w| !w.is_finite() || *w < 0.0) || sum <= 0.0 {
        return Err(ApiError::unprocessable(format!(
            "`prior` must be {k} finite non-negative weights with a positive sum"
        )));
    }
    Ok(p.iter().map(|&w| (f64::from(w) / sum) as f32).collect())
}

pub async fn create_user(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let key = user_key(&tenant, &user_id)?;
    check_prompt_and_context(&st, None, req.context.as_deref())?;
    let prior = prior_for(
        &st,
        req.prior.as_deref(),
        req.context.as_deref(),
        req.context_embedding.as_deref(),
    )
    .await?;
    let new = NewUser {
        prior,
        rate: st.rate,
        context: req.context,
    };
    match st.store.create_user(&key, &new).await? {
        Some(rec) => Ok((StatusCode::CREATED, Json(UserView::from(&rec)))),
        None => Err(ApiError::conflict(format!(
            "user {user_id:?} exists: DELETE it first to start over"
        ))),
    }
}

pub async fn get_user(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let rec = st
        .store
        .get_user(&key)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(Json(UserView::from(&rec)))
}

pub async fn delete_user(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let _guard = st.locks.stripe(&key).lock().await;
    if st.store.delete_user(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&user_id))
    }
}

pub async fn feedback(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(req): ApiJson<FeedbackRequest>,
) -> Result<Json<UserView>, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    check_prompt_and_context(&st, req.prompt.as_ref(), req.context.as_deref())?;
    let h = pair_features(
        &st,
        req.prompt.as_ref(),
        req.context.as_deref(),
        (req.chosen.clone(), req.rejected.clone()),
        (req.chosen_embedding, req.rejected_embedding),
        [
            "chosen",
            "rejected",
            "chosen_embedding",
            "rejected_embedding",
        ],
    )
    .await?;
    let diff: Vec<f32> = h.row(0).iter().zip(h.row(1)).map(|(w, l)| w - l).collect();
    let margins = st.scorer.model.margins(&diff);
    check_finite(&margins, || {
        "the head margins r_k(chosen) - r_k(rejected) are".to_owned()
    })?;
    // The prior matters only for a new user; skip embedding a context for an existing one.
    let needs_prior = (req.context.is_some() || req.context_embedding.is_some())
        && st.store.get_user(&key).await?.is_none();
    let prior = if needs_prior {
        prior_for(
            &st,
            None,
            req.context.as_deref(),
            req.context_embedding.as_deref(),
        )
        .await?
    } else {
        prior_for(&st, None, None, None).await?
    };
    let new = NewUser {
        prior,
        rate: st.rate,
        context: req.context,
    };
    let event = Feedback {
        margins,
        prompt: req.prompt.map(|p| p.to_text()),
        chosen: req.chosen,
        rejected: req.rejected,
    };
    // A spawned task commits even if the client goes away or the timeout fires: an event is
    // either logged and folded in, or not at all.
    let task_state = st.clone();
    let rec = tokio::spawn(async move {
        let _guard = task_state.locks.stripe(&key).lock().await;
        task_state.store.append_feedback(&key, &new, &event).await
    })
    .await
    .map_err(|e| ApiError::internal(format!("feedback task failed: {e}")))??;
    st.metrics.feedback_stored.fetch_add(1, Ordering::Relaxed);
    Ok(Json(UserView::from(&rec)))
}

pub async fn feedback_log(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogView>, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let entries = st.store.feedback_log(&key, q.after, limit).await?;
    // An empty page is a real answer only for a user that exists, whatever `after` says.
    if entries.is_empty() && st.store.get_user(&key).await?.is_none() {
        return Err(not_found(&user_id));
    }
    let next_after =
        (entries.len() as i64 == limit).then(|| entries.last().map_or(q.after, |e| e.seq));
    Ok(Json(LogView {
        user_id,
        entries,
        next_after,
    }))
}

pub async fn rebuild(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let _guard = st.locks.stripe(&key).lock().await;
    let rec = st
        .store
        .rebuild(&key)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(Json(UserView::from(&rec)))
}

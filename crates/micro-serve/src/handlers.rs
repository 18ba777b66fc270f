//! The `/v1` handlers: each turns its JSON body into the parts of a scoring query (checked as
//! they are built), calls the one scoring path (`score.rs`) or the store, and answers JSON.

use crate::api::{
    CompareRequest, CompareResponse, CreateUserRequest, FeedbackRequest, LogQuery, LogView,
    PairProb, ScoreRequest, ScoreResponse, UserView,
};
use crate::error::ApiError;
use crate::extract::Tenant;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::score::{
    self, not_found, user_key, Names, Predict, Query, Responses, RouterInput, Turn, Who,
};
use crate::state::AppState;
use crate::store::{Feedback, NewUser};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// The OpenAPI document, kept in the repository at `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn health(State(st): St) -> Json<serde_json::Value> {
    let c = st.scorer.model().config();
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

pub async fn score(
    State(st): St,
    tenant: Tenant,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> Result<Json<ScoreResponse>, ApiError> {
    let turn = Turn::new(&st.limits, req.prompt, req.context)?;
    let embeddings = [req.context_embedding, req.prompt_embedding];
    let q = Query {
        who: Who::of_request(&st, &tenant, req.user_id.as_deref(), embeddings, &turn)?,
        responses: Responses::new(
            &st,
            req.responses,
            req.response_embeddings,
            [Names::List("responses"), Names::List("response_embeddings")],
        )?,
        turn,
        predict: Predict::Rewards,
    };
    let scored = score::score(&st, q).await?;
    let n = scored.rewards.len();
    let pairs = match req.pairs {
        true => (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| PairProb {
                i,
                j,
                p: scored.pair_prob(i, j),
            })
            .collect(),
        false => Vec::new(),
    };
    Ok(Json(ScoreResponse {
        pairs,
        weights_from: scored.from,
        fit: scored.fit(&st),
        head_rewards: req.head_rewards.then_some(scored.head_rewards),
        rewards: scored.rewards,
        weights: scored.weights,
    }))
}

pub async fn compare(
    State(st): St,
    tenant: Tenant,
    ApiJson(req): ApiJson<CompareRequest>,
) -> Result<Json<CompareResponse>, ApiError> {
    let turn = Turn::new(&st.limits, req.prompt, req.context)?;
    let embeddings = [req.context_embedding, req.prompt_embedding];
    let q = Query {
        who: Who::of_request(&st, &tenant, req.user_id.as_deref(), embeddings, &turn)?,
        responses: Responses::pair(
            &st,
            [req.a, req.b],
            [req.a_embedding, req.b_embedding],
            [&["a", "b"], &["a_embedding", "b_embedding"]],
        )?,
        turn,
        predict: Predict::Rewards,
    };
    let scored = score::score(&st, q).await?;
    let [a, b] = [&scored.head_rewards[0], &scored.head_rewards[1]];
    Ok(Json(CompareResponse {
        p_a: scored.pair_prob(0, 1),
        reward_a: scored.rewards[0],
        reward_b: scored.rewards[1],
        margins: a.iter().zip(b).map(|(a, b)| a - b).collect(),
        weights: scored.weights,
        weights_from: scored.from,
    }))
}

pub async fn create_user(
    State(st): St,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let turn = Turn::new(&st.limits, None, req.context)?;
    let input = RouterInput::new(
        &st,
        req.context_embedding,
        None,
        None,
        turn.context.as_deref(),
    )?;
    let who = Who::NewUser {
        key: key.clone(),
        prior: req.prior,
        input,
    };
    let resolved = score::resolve(&st, who).await?;
    let new = NewUser {
        prior: resolved.experts.unwrap_or_default(),
        rate: st.rate,
        context: turn.context,
    };
    match st.store.create_user(&key, &new).await? {
        Some(rec) => Ok((
            StatusCode::CREATED,
            Json(UserView::of(&rec, &st.scorer.experts())),
        )),
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
    Ok(Json(UserView::of(&rec, &st.scorer.experts())))
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
    let turn = Turn::new(&st.limits, req.prompt, req.context)?;
    let responses = Responses::pair(
        &st,
        [req.chosen.clone(), req.rejected.clone()],
        [req.chosen_embedding, req.rejected_embedding],
        [
            &["chosen", "rejected"],
            &["chosen_embedding", "rejected_embedding"],
        ],
    )?;
    // The gate's margin reads the prompt and context, as the gate routes them.
    let input = RouterInput::new(
        &st,
        req.context_embedding,
        None,
        turn.prompt.as_ref(),
        turn.context.as_deref(),
    )?;
    let q = Query {
        who: Who::NewUser {
            key: key.clone(),
            prior: None,
            input,
        },
        responses,
        turn: turn.clone(),
        predict: Predict::Margins,
    };
    let scored = score::score(&st, q).await?;
    let new = NewUser {
        prior: scored.experts.clone().unwrap_or_default(),
        rate: st.rate,
        context: turn.context,
    };
    let event = Feedback {
        margins: scored.margins,
        prompt: turn.prompt.map(|p| p.to_text()),
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
    Ok(Json(UserView::of(&rec, &st.scorer.experts())))
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
    Ok(Json(UserView::of(&rec, &st.scorer.experts())))
}

//! The request shapes RL trainers already speak, so they call micro without a plug-in:
//! OpenRLHF's remote reward model (`POST /get_reward`) and slime's remote reward
//! (`POST /slime/reward`). Both score one response per query with the same arithmetic as
//! `/v1/score`; the trainer's per-sample label says whom to personalise for.
//!
//! A label is a JSON object (or a string holding one) with `user_id` and/or `context`, or a
//! plain string taken as the user id; an empty or absent label leaves the router to weigh the
//! heads from the prompt alone.

use crate::chat::{self, Split};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::Tenant;
use crate::score::{self, check_text, Predict, Query, Responses, Scored, Turn, Who};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use micro_data::Prompt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// OpenRLHF's request: decoded `prompt + response` texts, their prompts and dataset labels.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct OpenRlhfRequest {
    pub query: Vec<String>,
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<Vec<Value>>,
}

/// OpenRLHF's reply, as its reference server `openrlhf/cli/serve_rm.py` sends it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct OpenRlhfResponse {
    /// The personalised reward per query.
    pub rewards: Vec<f32>,
    /// The same values (OpenRLHF filters and logs by `scores`).
    pub scores: Vec<f32>,
    /// Logged by the trainer, one value per query: `micro_head{k}` (head k's reward) and
    /// `micro_weight{k}` (its mixture weight).
    pub extra_logs: BTreeMap<String, Vec<f32>>,
}

/// slime's request (`--rm-type remote_rm`): one sample. The prompt may be text (chat
/// template applied or not) or a message list.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SlimeRequest {
    #[serde(default)]
    pub prompt: Option<Prompt>,
    pub response: String,
    #[serde(default)]
    pub label: Option<Value>,
}

/// Whom a sample's reward is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Personal {
    pub user_id: Option<String>,
    pub context: Option<String>,
}

/// Reads a label: `{"user_id", "context"}` as an object or a JSON string, a plain string as a
/// user id; null or blank for nobody in particular. Other fields of an object are ignored (a
/// label may carry the trainer's own data).
pub fn parse_label(label: Option<&Value>, field: &str) -> Result<Personal, ApiError> {
    match label {
        None | Some(Value::Null) => Ok(Personal::default()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Personal::default()),
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            let v: Value = serde_json::from_str(s).map_err(|e| {
                ApiError::unprocessable(format!(
                    "`{field}` looks like a JSON object but does not parse ({e}): send {{\"user_id\": ..., \"context\": ...}} or a plain user id"
                ))
            })?;
            parse_label(Some(&v), field)
        }
        Some(Value::String(s)) => Ok(Personal {
            user_id: Some(s.trim().to_owned()),
            context: None,
        }),
        Some(Value::Object(m)) => Ok(Personal {
            user_id: text_field(m.get("user_id"), field, "user_id")?,
            context: text_field(m.get("context"), field, "context")?,
        }),
        Some(other) => Err(ApiError::unprocessable(format!(
            "`{field}` is {other}: give a user id, or an object with `user_id` and/or `context`"
        ))),
    }
}

fn text_field(v: Option<&Value>, field: &str, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::unprocessable(format!(
            "`{field}.{name}` is {other}: it must be a string"
        ))),
    }
}

/// Scores one response as `/v1/score` would with `{prompt, user_id, context, responses:
/// [response]}`.
async fn score_one(
    st: &AppState,
    tenant: &Tenant,
    split: Split,
    who: Personal,
) -> Result<Scored, ApiError> {
    let turn = Turn::new(&st.limits, Some(split.prompt), who.context)?;
    let q = Query {
        who: Who::of_request(st, tenant, who.user_id.as_deref(), [None, None], &turn)?,
        responses: Responses::text(st, split.response, "response")?,
        turn,
        predict: Predict::Rewards,
    };
    score::score(st, q).await
}

/// The i-th entry of an optional list that must match `query` in length.
fn nth<T>(list: Option<&[T]>, i: usize) -> Option<&T> {
    list.and_then(|l| l.get(i))
}

fn check_lengths(req: &OpenRlhfRequest, max: usize) -> Result<(), ApiError> {
    let n = req.query.len();
    if n == 0 {
        return Err(ApiError::bad_request("`query` is empty"));
    }
    if n > max {
        return Err(ApiError::too_large(format!(
            "{n} queries in one request, the limit is {max} (--max-texts): split the request"
        )));
    }
    for (name, len) in [
        ("prompts", req.prompts.as_ref().map(Vec::len)),
        ("labels", req.labels.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len.filter(|&l| l != n) {
            return Err(ApiError::unprocessable(format!(
                "`{name}` has {len} entries and `query` has {n}: send one per query"
            )));
        }
    }
    Ok(())
}

/// `POST /get_reward`: OpenRLHF's `--reward.remote_url` (older releases: `--remote_rm_url`).
///
/// Each query is split into the conversation and the response by its prompt (chat template
/// markup removed) and scored for its label; the queries of one call are scored concurrently
/// and share backbone passes.
pub async fn openrlhf(
    State(st): State<Arc<AppState>>,
    tenant: Tenant,
    ApiJson(req): ApiJson<OpenRlhfRequest>,
) -> Result<Json<OpenRlhfResponse>, ApiError> {
    check_lengths(&req, st.limits.max_texts)?;
    let mut tasks = JoinSet::new();
    for (i, query) in req.query.iter().enumerate() {
        check_text(&st.limits, &format!("query[{i}]"), query)?;
        let prompt = nth(req.prompts.as_deref(), i).map(String::as_str);
        let split = chat::split_query(query, prompt);
        let who = parse_label(nth(req.labels.as_deref(), i), &format!("labels[{i}]"))?;
        let (st, tenant) = (st.clone(), tenant.clone());
        tasks.spawn(async move { (i, score_one(&st, &tenant, split, who).await) });
    }
    let mut scored: Vec<Option<Scored>> = vec![None; req.query.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, result) =
            done.map_err(|e| ApiError::internal(format!("scoring task failed: {e}")))?;
        scored[i] = Some(result.map_err(|e| at_query(e, i))?);
    }
    Ok(Json(openrlhf_reply(scored.into_iter().flatten().collect())))
}

/// An error of one query, with its index in the message.
fn at_query(mut e: ApiError, i: usize) -> ApiError {
    e.message = format!("query[{i}]: {}", e.message);
    e
}

fn openrlhf_reply(scored: Vec<Scored>) -> OpenRlhfResponse {
    let rewards: Vec<f32> = scored.iter().map(|s| s.rewards[0]).collect();
    let mut extra_logs: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for s in &scored {
        for (k, (r, w)) in s.head_rewards[0].iter().zip(&s.weights).enumerate() {
            extra_logs
                .entry(format!("micro_head{k}"))
                .or_default()
                .push(*r);
            extra_logs
                .entry(format!("micro_weight{k}"))
                .or_default()
                .push(*w);
        }
    }
    OpenRlhfResponse {
        scores: rewards.clone(),
        rewards,
        extra_logs,
    }
}

/// `POST /slime/reward`: slime's `--rm-type remote_rm --rm-url URL`. The answer's whole body
/// is the reward, a bare JSON number.
pub async fn slime(
    State(st): State<Arc<AppState>>,
    tenant: Tenant,
    ApiJson(req): ApiJson<SlimeRequest>,
) -> Result<Json<f32>, ApiError> {
    check_text(&st.limits, "response", &req.response)?;
    let prompt = match req.prompt {
        Some(Prompt::Text(t)) => chat::prompt_from_text(&t),
        Some(p) => p,
        None => Prompt::default(),
    };
    let split = Split {
        prompt,
        response: chat::clean_response(&req.response),
    };
    let who = parse_label(req.label.as_ref(), "label")?;
    Ok(Json(score_one(&st, &tenant, split, who).await?.rewards[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn who(user: Option<&str>, context: Option<&str>) -> Personal {
        Personal {
            user_id: user.map(str::to_owned),
            context: context.map(str::to_owned),
        }
    }

    #[test]
    fn labels_name_a_user_a_context_or_nobody() {
        let parse = |v: Value| parse_label(Some(&v), "labels[0]");
        assert_eq!(parse(json!("alice")).unwrap(), who(Some("alice"), None));
        assert_eq!(
            parse(json!(r#"{"user_id": "bob", "context": "Be brief."}"#)).unwrap(),
            who(Some("bob"), Some("Be brief."))
        );
        assert_eq!(
            parse(json!({"context": "Be brief.", "answer": 42})).unwrap(),
            who(None, Some("Be brief."))
        );
        assert_eq!(parse(json!("")).unwrap(), Personal::default());
        assert_eq!(parse_label(None, "label").unwrap(), Personal::default());
        let e = parse(json!("{not json")).unwrap_err();
        assert!(e.message.contains("labels[0]"), "{}", e.message);
        assert_eq!(parse(json!({"user_id": 7})).unwrap_err().status, 422);
        assert_eq!(parse(json!([1])).unwrap_err().status, 422);
    }

    #[test]
    fn the_reply_lists_one_value_per_query_under_each_log_name() {
        let s = |r: f32| Scored {
            rewards: vec![r],
            head_rewards: vec![vec![r, -r]],
            weights: vec![0.25, 0.75],
            from: crate::api::WeightsFrom::Router,
            experts: None,
            margins: Vec::new(),
        };
        let reply = openrlhf_reply(vec![s(1.0), s(2.0)]);
        assert_eq!(reply.rewards, vec![1.0, 2.0]);
        assert_eq!(reply.scores, reply.rewards);
        assert_eq!(reply.extra_logs["micro_head1"], vec![-1.0, -2.0]);
        assert_eq!(reply.extra_logs["micro_weight0"], vec![0.25, 0.25]);
        assert_eq!(reply.extra_logs.len(), 4);
    }
}

//! `POST /v1/users/{user_id}/next-question`: of the candidate pairs an application could ask
//! its user to compare, the one whose answer is expected to tell the most about which expert
//! (a head, or the shared predictions) the user follows (`micro_route::query`: the mutual information between the answer and the head
//! under the user's current weights). The answer then goes through the feedback route.
//!
//! Each candidate has the pair fields of a feedback body (texts or embeddings), so it can be
//! sent back as feedback unchanged, or with `chosen` and `rejected` swapped. The margins are
//! the heads on h(chosen) - h(rejected), as feedback computes them; below
//! [`MIN_INFORMATION`] nats even for the best candidate the pair is drawn at random (seeded),
//! as an [`micro_route::query::ActiveSession`] does.

use crate::api::{Candidate, NextQuestionRequest, NextQuestionResponse};
use crate::error::ApiError;
use crate::extract::Tenant;
use crate::extract::{ApiJson, ApiPath};
use crate::score::{check_finite, check_text, check_user_k, user_key};
use crate::state::AppState;
use crate::texts::Texts;
use axum::extract::State;
use axum::Json;
use micro_data::Prompt;
use micro_route::query::information::tie_key;
use micro_route::query::{next_question as choose, Candidates, MIN_INFORMATION};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Most candidate pairs in one request (422 beyond). Text candidates are also bounded by
/// `--max-texts` (two responses each), as every text request is.
pub const MAX_CANDIDATES: usize = 1024;

pub async fn next_question(
    State(st): State<Arc<AppState>>,
    tenant: Tenant,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(req): ApiJson<NextQuestionRequest>,
) -> Result<Json<NextQuestionResponse>, ApiError> {
    let key = user_key(&tenant, &user_id)?;
    let n = req.candidates.len();
    if n == 0 {
        return Err(ApiError::unprocessable(
            "`candidates` is empty: send at least one pair to choose from",
        ));
    }
    if n > MAX_CANDIDATES {
        return Err(ApiError::unprocessable(format!(
            "{n} candidates in one request, the limit is {MAX_CANDIDATES}: send the most promising ones"
        )));
    }
    if let Some(c) = &req.context {
        check_text(&st.limits, "context", c)?;
    }
    let texts = check_candidates(&st, &req.candidates)?;
    // The user and the features are independent; text candidates may wait for the backbone.
    let (rec, features) = tokio::join!(
        async { st.store.get_user(&key).await },
        candidate_features(&st, req.candidates, req.context, texts)
    );
    let rec = rec?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no user {user_id:?} for this API key's tenant: create it with PUT /v1/users/{{user_id}} (a prior from a context, the static gate or uniform) or by its first feedback"
        ))
    })?;
    check_user_k(&st, &rec)?;
    let (first, second) = features?;
    // The gate weighs the heads as it would for this user without a prompt: their table row,
    // or an even split (the candidates' prompts vary; the answer is what is asked about).
    let log_gate = st.scorer.log_gate(None, Some(&user_id));
    let margins = st.scorer.expert_margins(&first, &second, &log_gate)?;
    let k = st.scorer.experts().len();
    for (i, row) in margins.chunks_exact(k).enumerate() {
        check_finite(row, || {
            format!("the experts' margins on chosen over rejected of candidates[{i}] are")
        })?;
    }
    let updates = rec.state.updates;
    let seed = req
        .seed
        .unwrap_or_else(|| tie_key(fnv1a(user_id.as_bytes()), updates));
    let best =
        choose(&rec.state, &margins, seed).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let (index, information, p_chosen, random) = if best.information >= MIN_INFORMATION {
        (best.index, best.information, best.p_first, false)
    } else {
        // No pair is worth choosing for: draw one, as ActiveSession does below its floor.
        let draw = (tie_key(seed ^ 0xD2A3, updates) % n as u64) as usize;
        let w: Vec<f64> = rec.state.log_weights.iter().map(|l| l.exp()).collect();
        let c = Candidates::new(&margins, k).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let (information, p_first) = c.score(draw, &w);
        (draw, information, p_first, true)
    };
    Ok(Json(NextQuestionResponse {
        index,
        information,
        random,
        p_chosen,
        weights: rec.state.weights(),
        updates,
        candidates: n,
    }))
}

/// Checks every candidate's form and limits before any work: exactly one of the two pairs of
/// fields, texts within `--max-text-chars` (and `--max-texts` in all), embeddings of the
/// model's width with finite values. Returns how many candidates are texts.
fn check_candidates(st: &AppState, cands: &[Candidate]) -> Result<usize, ApiError> {
    let dim = st.scorer.dim();
    let mut texts = 0;
    for (i, c) in cands.iter().enumerate() {
        if let Some(p) = &c.prompt {
            check_text(&st.limits, &format!("candidates[{i}].prompt"), &p.to_text())?;
        }
        let has_text = c.chosen.is_some() || c.rejected.is_some();
        let has_emb = c.chosen_embedding.is_some() || c.rejected_embedding.is_some();
        match (has_text, has_emb) {
            (true, true) => {
                return Err(ApiError::bad_request(format!(
                    "candidates[{i}]: give `chosen` and `rejected` or `chosen_embedding` and `rejected_embedding`, not both"
                )))
            }
            (false, false) => {
                return Err(ApiError::bad_request(format!(
                    "candidates[{i}]: give the responses as `chosen` and `rejected` (text) or `chosen_embedding` and `rejected_embedding`"
                )))
            }
            (true, false) => {
                let (Some(a), Some(b)) = (&c.chosen, &c.rejected) else {
                    return Err(ApiError::bad_request(format!(
                        "candidates[{i}]: give both `chosen` and `rejected`"
                    )));
                };
                check_text(&st.limits, &format!("candidates[{i}].chosen"), a)?;
                check_text(&st.limits, &format!("candidates[{i}].rejected"), b)?;
                texts += 1;
            }
            (false, true) => {
                let (Some(a), Some(b)) = (&c.chosen_embedding, &c.rejected_embedding) else {
                    return Err(ApiError::bad_request(format!(
                        "candidates[{i}]: give both `chosen_embedding` and `rejected_embedding`"
                    )));
                };
                st.scorer
                    .check(&format!("candidates[{i}].chosen_embedding"), a, dim)?;
                st.scorer
                    .check(&format!("candidates[{i}].rejected_embedding"), b, dim)?;
            }
        }
    }
    if 2 * texts > st.limits.max_texts {
        return Err(ApiError::too_large(format!(
            "{texts} text candidates are {} responses to embed, the limit is {} (--max-texts): send fewer, or embeddings",
            2 * texts,
            st.limits.max_texts
        )));
    }
    Ok(texts)
}

/// h(chosen) and h(rejected) of every candidate, row-major [n, d] each: embeddings as sent,
/// texts through the backbone, one call per distinct prompt, the calls concurrent (so the
/// batcher can run them in one pass).
async fn candidate_features(
    st: &Arc<AppState>,
    cands: Vec<Candidate>,
    context: Option<String>,
    texts: usize,
) -> Result<(Vec<f32>, Vec<f32>), ApiError> {
    let d = st.scorer.dim();
    let n = cands.len();
    let (mut first, mut second) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
    // Text candidates grouped by prompt: (prompt, [(candidate, chosen, rejected)]).
    type Group = (Prompt, Vec<(usize, String, String)>);
    let mut groups: Vec<Group> = Vec::new();
    for (i, c) in cands.into_iter().enumerate() {
        match (
            c.chosen,
            c.rejected,
            c.chosen_embedding,
            c.rejected_embedding,
        ) {
            (Some(a), Some(b), _, _) => {
                let prompt = c.prompt.unwrap_or_default();
                match groups.iter_mut().find(|g| g.0 == prompt) {
                    Some(g) => g.1.push((i, a, b)),
                    None => groups.push((prompt, vec![(i, a, b)])),
                }
            }
            (_, _, Some(a), Some(b)) => {
                first[i * d..(i + 1) * d].copy_from_slice(&a);
                second[i * d..(i + 1) * d].copy_from_slice(&b);
            }
            _ => unreachable!("check_candidates refused candidate {i}"),
        }
    }
    debug_assert_eq!(groups.iter().map(|g| g.1.len()).sum::<usize>(), texts);
    let mut calls = JoinSet::new();
    for (g, (prompt, members)) in groups.iter().enumerate() {
        let responses: Vec<String> = members
            .iter()
            .flat_map(|(_, a, b)| [a.clone(), b.clone()])
            .collect();
        let (st, prompt, context) = (st.clone(), prompt.clone(), context.clone());
        calls.spawn(async move {
            let texts = Texts::Responses {
                prompt,
                context,
                responses,
            };
            let rows = st.scorer.embed(texts).await;
            (g, rows)
        });
    }
    while let Some(done) = calls.join_next().await {
        let (g, rows) =
            done.map_err(|e| ApiError::internal(format!("embedding task failed: {e}")))?;
        let rows = rows?;
        for (j, (i, _, _)) in groups[g].1.iter().enumerate() {
            first[i * d..(i + 1) * d].copy_from_slice(rows.row(2 * j));
            second[i * d..(i + 1) * d].copy_from_slice(rows.row(2 * j + 1));
        }
    }
    Ok((first, second))
}

/// FNV-1a: a hash of the user id that is the same on every platform and Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

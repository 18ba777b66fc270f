//! The router of the whole API and its middleware: the request timeout, the JSON error
//! contract, metrics and the log line of each rejected request.

use crate::conn::{serve_router, ConnLimits};
use crate::error::ApiError;
use crate::handlers;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// Middleware: answers 408 when the request runs past [`Limits::timeout`].
pub async fn request_timeout(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.limits.timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {} ms (--request-timeout-ms)",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route: see /v1/openapi.json")
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}: see /v1/openapi.json",
            uri.path()
        ),
    )
}

/// Middleware: the last guard of the JSON error contract. Any error answer that is not JSON
/// (a rejection from a layer or extractor without its own mapping) is rewritten into the
/// `{"error": {...}}` body, keeping its status and text.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    // Error bodies from rejections are one short line; read at most 8 KiB of it.
    let text = match axum::body::to_bytes(response.into_body(), 8 << 10).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    ApiError::new(status, "http_error", text).into_response()
}

/// Middleware: counts and times every request under its route template (not the raw path,
/// so user ids do not explode the label set), and logs each rejected one (4xx or 5xx) to
/// stderr with its status, route and reason.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let status = response.status();
    state.metrics.record(
        &method,
        &route,
        status.as_u16(),
        start.elapsed().as_secs_f64(),
    );
    if status.is_client_error() || status.is_server_error() {
        let reason = response
            .extensions()
            .get::<ApiError>()
            .map_or("", |e| e.message.as_str());
        eprintln!(
            "{}",
            rejection_line(status.as_u16(), &method, &route, reason)
        );
    }
    response
}

/// `micro serve: rejected 404 POST /v1/score: no user "bob" ...`, on one line whatever the
/// reason holds (it may quote client input).
fn rejection_line(status: u16, method: &str, route: &str, reason: &str) -> String {
    let reason: String = reason
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    format!("micro serve: rejected {status} {method} {route}: {reason}")
}

/// The whole HTTP API over a state.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/v1/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/v1/score", post(handlers::score))
        .route("/v1/compare", post(handlers::compare))
        .route(
            "/v1/users/{user_id}",
            get(handlers::get_user)
                .put(handlers::create_user)
                .delete(handlers::delete_user),
        )
        .route(
            "/v1/users/{user_id}/feedback",
            post(handlers::feedback).get(handlers::feedback_log),
        )
        .route("/v1/users/{user_id}/rebuild", post(handlers::rebuild))
        .route(
            "/v1/users/{user_id}/next-question",
            post(crate::question::next_question),
        )
        .route("/get_reward", post(crate::rl::openrlhf))
        .route("/slime/reward", post(crate::rl::slime))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conn = ConnLimits::from(&state.limits);
    serve_router(listener, router(state), shutdown, conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_one_log_line_with_status_route_and_reason() {
        let line = rejection_line(422, "POST", "/v1/score", "unknown field `a\nb`");
        assert_eq!(
            line,
            "micro serve: rejected 422 POST /v1/score: unknown field `a\\nb`"
        );
        assert_eq!(line.lines().count(), 1);
    }
}

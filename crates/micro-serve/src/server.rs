//! Wiring: the shared [`AppState`], the request limits, the extractors and middleware that
//! keep every error JSON, and the router of the whole API.

use crate::auth::KeyCache;
use crate::conn::{serve_router, ConnLimits};
use crate::error::ApiError;
use crate::handlers;
use crate::metrics::{self, Metrics};
use crate::scorer::Scorer;
use crate::store::{StateStore, UserKey};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use micro_route::Rate;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// Request limits; each violation is a 4xx with a message naming the limit (413 for the
/// sizes, 408 for the request timeout), or 503 for a connection over the cap. With the `clap`
/// feature these are `micro serve`'s flags.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Limits {
    /// Largest request body, bytes.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_body_bytes))]
    pub max_body_bytes: usize,
    /// Most responses (texts or embeddings), or `/get_reward` queries, per request.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_texts))]
    pub max_texts: usize,
    /// Longest text, characters.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_text_chars))]
    pub max_text_chars: usize,
    /// Requests running longer are answered 408; on SIGTERM, connections still open after
    /// this long are closed.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "request-timeout-ms",
            value_name = "REQUEST_TIMEOUT_MS",
            default_value = "30000",
            value_parser = crate::options::parse_millis
        )
    )]
    pub timeout: Duration,
    /// A connection that has not sent its request headers within this is closed.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "header-timeout-ms",
            value_name = "HEADER_TIMEOUT_MS",
            default_value = "10000",
            value_parser = crate::options::parse_millis
        )
    )]
    pub header_timeout: Duration,
    /// Most connections open at once; beyond it a new connection is answered 503 and closed.
    /// Lowered at start to what the open-file limit allows.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_connections))]
    pub max_connections: usize,
}

/// A limit that cannot serve: every request would be refused, or time out at once.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} 0 would refuse every request: give at least 1")]
pub struct ZeroLimit {
    pub flag: &'static str,
}

impl Limits {
    /// Refuses a limit of zero (a body, a response list, a timeout or a connection count).
    pub fn check(&self) -> Result<(), ZeroLimit> {
        let zero = [
            ("max-body-bytes", self.max_body_bytes == 0),
            ("max-texts", self.max_texts == 0),
            ("request-timeout-ms", self.timeout.is_zero()),
            ("header-timeout-ms", self.header_timeout.is_zero()),
            ("max-connections", self.max_connections == 0),
        ];
        match zero.into_iter().find(|(_, z)| *z) {
            Some((flag, _)) => Err(ZeroLimit { flag }),
            None => Ok(()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_texts: 64,
            max_text_chars: 32_768,
            timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Per-user serialisation in process: a fixed set of striped locks, so concurrent feedback
/// for one user queues here instead of in the database (two users may share a stripe, which
/// only costs a little concurrency).
pub struct UserLocks {
    stripes: Vec<Mutex<()>>,
}

impl UserLocks {
    pub fn new(n: usize) -> Self {
        UserLocks {
            stripes: (0..n.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn stripe(&self, key: &UserKey) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[(h.finish() % self.stripes.len() as u64) as usize]
    }
}

/// Everything a handler needs, shared by all requests.
pub struct AppState {
    pub scorer: Scorer,
    pub store: Arc<dyn StateStore>,
    pub keys: KeyCache,
    pub locks: UserLocks,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Hedge learning rate for new users.
    pub rate: Rate,
}

impl AppState {
    pub fn new(scorer: Scorer, store: Arc<dyn StateStore>, limits: Limits, rate: Rate) -> Self {
        AppState {
            scorer,
            store,
            keys: KeyCache::default(),
            locks: UserLocks::new(1024),
            metrics: Metrics::default(),
            limits,
            rate,
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s with the limit or parse position in the message.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

/// `Path<T>` whose rejections (a segment that is not UTF-8, a wrong type) are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError::bad_request(format!(
                "invalid path: {}",
                r.body_text()
            ))),
        }
    }
}

/// `Query<T>` whose rejections (`?limit=abc`) are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                r.body_text()
            ))),
        }
    }
}

fn json_error(r: JsonRejection) -> ApiError {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::too_large("request body is larger than the server's limit (--max-body-bytes): send fewer or shorter items")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send `Content-Type: application/json`")
        }
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::unprocessable(format!("invalid request fields: {}", r.body_text())),
        _ => ApiError::bad_request(format!("malformed JSON: {}", r.body_text())),
    }
}

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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
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

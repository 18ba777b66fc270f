//! Wiring: the shared [`AppState`], the router with its limits, and serving with graceful
//! shutdown.

use crate::auth::KeyCache;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::handlers;
use crate::metrics::{self, Metrics};
use crate::store::{StateStore, UserKey};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use micro_route::Rate;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// Request limits; each violation is a 4xx with a message naming the limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body, bytes (413).
    pub max_body_bytes: usize,
    /// Most responses (texts or embeddings) in one request (413).
    pub max_texts: usize,
    /// Longest text, in characters (413).
    pub max_text_chars: usize,
    /// A request still running after this is answered 408.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_texts: 64,
            max_text_chars: 32_768,
            timeout: Duration::from_secs(30),
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
    pub engine: Engine,
    pub store: Arc<dyn StateStore>,
    pub keys: KeyCache,
    pub locks: UserLocks,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Hedge learning rate for new users.
    pub rate: Rate,
}

impl AppState {
    pub fn new(engine: Engine, store: Arc<dyn StateStore>, limits: Limits, rate: Rate) -> Self {
        AppState {
            engine,
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
pub async fn timeout(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
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
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Binds `addr` (port 0: the OS picks one) and returns the listener and its bound address.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// [`serve`] for any router (tests wrap extra routes in the same layers).
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

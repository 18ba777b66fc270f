//! The extractors of the handlers: the [`Tenant`] of a request's API key, and JSON, path and
//! query extractors whose rejections are [`ApiError`]s (every error is the JSON error body).

use crate::auth::request_key;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The tenant a request's API key belongs to: `X-Api-Key: KEY`, `Authorization: Bearer KEY`,
/// or HTTP Basic credentials with the key as the password (what a client sends for a URL like
/// `http://name:KEY@host/`; RL trainers that send no headers of their own call such URLs).
///
/// `X-Api-Key` names micro's key and nothing else, so when a request has one it is the key,
/// whatever `Authorization` says: a proxy or an HTTP library may set `Authorization` for its
/// own purposes, and must not hide the key.
#[derive(Clone, Debug)]
pub struct Tenant(pub String);

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let key = request_key(parts)?.ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer KEY`, or put the key in the URL as `http://micro:KEY@host/` (create one with `micro serve keys add`)")
        })?;
        match state.keys.tenant(state.store.as_ref(), &key).await? {
            Some(t) => Ok(Tenant(t)),
            None => Err(ApiError::unauthorized("invalid API key")),
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

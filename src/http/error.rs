//! How an API failure answers: JSON `{"error": {"type": "...", "message": "..."}}`, with the status
//! saying which kind.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::engine::PublishError;

/// An API failure, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 401: no API key, or not one of `API_KEYS` or `TENANT_API_KEYS`.
    #[error(
        "missing or invalid API key: send one of API_KEYS (or TENANT_API_KEYS) as `X-API-Key` or `Authorization: Bearer`"
    )]
    Unauthorized,
    /// 403: a tenant-scoped key (`TENANT_API_KEYS`) asked for another tenant, or for rooms every
    /// tenant shares; the message says which.
    #[error("{0}")]
    Forbidden(String),
    /// 400: the body is not what the endpoint takes; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is over `API_MAX_BODY_SIZE`.
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// 503 with `Retry-After`: the node is stopping and took nothing.
    #[error("{0}")]
    Unavailable(PublishError),
    /// 409 `conflict` with `Retry-After`: a call with the same `Idempotency-Key` (or an event
    /// with the same `id`) is still being processed; the retry gets its answer.
    #[error("a call with the same Idempotency-Key or event id is still being processed: retry shortly")]
    InFlight,
    /// 503 `unavailable`, 502 `bad_gateway`, 504 `timeout` or 400: a notification or query
    /// through a tenant's bridge that could not be sent or was not answered in time.
    #[error("{0}")]
    Bridge(crate::bridge::SendError),
    /// 404 `not_found`: no such bridge or provider (for this key); the message says which.
    #[error("{0}")]
    NotFound(String),
    /// 503 `unavailable`: a run-time provider change could not be stored for the cluster.
    #[error("the provider change could not be stored for the cluster ({0}): nothing changed, retry shortly")]
    Store(String),
    /// 422 `idempotency`: the `Idempotency-Key` was used within the window for another body.
    #[error("this Idempotency-Key was used for a different body: use a new key for a new call")]
    KeyReused,
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::Invalid(message) => ApiError::BadRequest(message),
            unavailable => ApiError::Unavailable(unavailable),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "auth"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "validation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "validation"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::InFlight => (StatusCode::CONFLICT, "conflict"),
            ApiError::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Bridge(e) => {
                use crate::bridge::SendError;
                match e {
                    SendError::NotConnected | SendError::Busy | SendError::Unheld => {
                        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                    }
                    SendError::Lost => (StatusCode::BAD_GATEWAY, "bad_gateway"),
                    SendError::AckTimeout(_) | SendError::HolderTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
                    SendError::NoChannels => (StatusCode::BAD_REQUEST, "validation"),
                }
            }
        };
        let body = Json(json!({ "error": { "type": kind, "message": self.to_string() } }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CONFLICT {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

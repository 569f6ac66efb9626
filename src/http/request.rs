//! Reading an API request: its key, then its body as JSON.

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{HeaderMap, StatusCode},
};
use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState};

/// Checks the API key and reads the body as JSON.
pub(super) fn authorized_json<A: Adapter>(
    state: &HttpState<A>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    if !state.api_keys.authorize(headers) {
        return Err(ApiError::Unauthorized);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(state.max_body_bytes),
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    body_json(&body).map_err(ApiError::BadRequest)
}

/// A request body as JSON, or why it is not.
pub(super) fn body_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("the body is not valid JSON: {}", crate::parse_errors::json(body, &e)))
}

/// Like [`authorized_json`], for endpoints whose body is one object shaped like `shape`.
pub(super) fn authorized_object<A: Adapter>(
    state: &HttpState<A>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<Value, ApiError> {
    let body = authorized_json(state, headers, body)?;
    if !body.is_object() {
        return Err(ApiError::BadRequest(format!("the body must be an object {shape}")));
    }
    Ok(body)
}

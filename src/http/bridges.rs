//! Outbound bridges over the API: `GET /api/v1/bridges` (each bridge's state, last error,
//! attempts, messages each way; platform key only, never a credential), and the notification
//! call's branch for a tenant whose provider is external (`publish::notify` hands it here).

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState, request::caller};
use crate::bridge::{Bridge, Recipient};

/// `GET /api/v1/bridges`: `{"bridges": [...]}`. A tenant key is refused (403): a bridge's peer
/// and errors are the operator's to see.
pub(super) async fn list<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if caller(&state, &headers)?.tenant().is_some() {
        return Err(ApiError::Forbidden("the bridges' status needs a platform key (API_KEYS)".into()));
    }
    Ok(Json(json!({ "bridges": state.bridges.describe() })))
}

/// A notification (`data`: `{id, subject, body, data, userId|channel}`) through `bridge` to the
/// user or channel `target` names. Waits for the peer's acknowledgment when the call asks for one
/// or the provider has `enableAcknowledgments`, up to `timeout`: 200 `{id, bridge, ack}`;
/// otherwise 202 `{id, bridge}` once written to the peer.
pub(super) async fn notify_through(
    bridge: &Bridge,
    target: Value,
    data: Value,
    with_acks: bool,
    timeout: Duration,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let recipient = if target.get("userId").is_some() { Recipient::User } else { Recipient::Channel };
    let id = data.get("id").cloned().unwrap_or(Value::Null);
    let ack = (with_acks || bridge.acknowledged()).then_some(timeout);
    let answer = bridge.notify(&recipient, data, ack).await.map_err(ApiError::Bridge)?;
    Ok(match ack {
        Some(_) => (StatusCode::OK, Json(json!({ "id": id, "bridge": bridge.name(), "ack": answer }))),
        None => (StatusCode::ACCEPTED, Json(json!({ "id": id, "bridge": bridge.name() }))),
    })
}

//! The plain WebSocket endpoints' HTTP side: their handshake and the Go hub's `GET /ws/stats`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState};
use crate::{auth::ApiCaller, front::websocket::StatsScope};

/// A plain WebSocket endpoint's handshake (seed 001's `/ws`).
pub(super) async fn native_upgrade<A: Adapter>(
    State(state): State<HttpState<A>>,
    request: axum::extract::Request,
) -> Response {
    match state.engine.endpoint(request.uri().path()) {
        Some(endpoint) => crate::front::websocket::upgrade(endpoint, &state.api_keys, request).await.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /ws/stats`, the Go hub's statistics of an endpoint over the whole cluster:
/// `{total_clients, total_users, channels: {register, unregister, broadcast}}`. A platform API
/// key sees every connection; a tenant's key or a valid token only that tenant's (a tenant
/// learns nothing of another's traffic). The hub's queue depths become the gateway's: upgrades not yet registered,
/// connections closing, and frames waiting in send buffers. Users are counted per node and summed.
pub(super) async fn native_stats<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let token = crate::auth::query_param(uri.query().unwrap_or_default(), "token").or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
    });
    let by_token = token.and_then(|t| state.engine.verify_token(t.trim()));
    let by_key = state.api_keys.caller(&headers);
    let scope = match (&by_key, &by_token) {
        (Some(ApiCaller::Platform), _) => StatsScope::All,
        (Some(ApiCaller::Tenant(tenant)), _) => StatsScope::Tenant(Some(tenant)),
        (None, Some(identity)) => StatsScope::Tenant(identity.tenant_id.as_deref()),
        (None, None) => return Err(ApiError::Unauthorized),
    };
    // The route is `{path}/stats`: one suffix off, whatever the endpoint's own path ends with.
    let path = uri.path().strip_suffix("/stats").unwrap_or_default();
    let stats = state
        .engine
        .endpoint_stats(path, scope)
        .ok_or_else(|| ApiError::BadRequest(format!("no endpoint `{path}`")))?;
    Ok(Json(json!({
        "total_clients": stats.clients,
        "total_users": stats.users,
        "channels": { "register": stats.registering, "unregister": stats.closing, "broadcast": stats.queued },
    })))
}

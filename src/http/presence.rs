//! `GET /api/v1/presence`: who is connected to a room, or to a tenant, of one namespace, over
//! the whole cluster.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::spec::Transport;

use super::{
    ApiError, HttpState,
    request::{acting_tenant, caller, platform_refusal},
};

/// `GET /api/v1/presence?namespace=..&room=..&tenantId=..`: `{users: [{userId, connections}],
/// connections}` for `room` (a tenant room needs `tenantId`), or without `room` for the namespace
/// (`/` when not given), only `tenantId`'s connections when given. `transport=websocket` asks of
/// the plain WebSocket endpoint at that path (needed only where a Socket.IO namespace shares it). A tenant key sees its own
/// tenant only: another `tenantId` and a platform-wide room are 403.
pub(super) async fn presence<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let tenant = acting_tenant(&caller, query.get("tenantId").filter(|t| !t.is_empty()).cloned(), "tenantId")?;
    let namespace = query.get("namespace").map_or("/", String::as_str);
    let transport = match query.get("transport").map(String::as_str) {
        None => None,
        Some("socketio") => Some(Transport::SocketIo),
        Some("websocket") => Some(Transport::WebSocket),
        Some(other) => {
            return Err(ApiError::BadRequest(format!("transport `{other}`: `socketio` or `websocket`")));
        }
    };
    let room = query.get("room").map(String::as_str);
    if let Some(room) = room
        && caller.tenant().is_some()
        && state.engine.is_platform_room(namespace, transport, room)
    {
        return Err(platform_refusal(&format!("`{room}` is a platform-wide room of {namespace}")));
    }
    state.engine.presence(namespace, transport, room, tenant.as_deref()).await.map(Json).map_err(ApiError::BadRequest)
}

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

use super::{
    ApiError, HttpState,
    request::{acting_tenant, caller, platform_refusal},
};

/// `GET /api/v1/presence?namespace=..&room=..&tenantId=..`: `{users: [{userId, connections}],
/// connections}` for `room` (a tenant room needs `tenantId`), or without `room` for the namespace
/// (`/` when not given), only `tenantId`'s connections when given. A tenant key sees its own
/// tenant only: another `tenantId` and a platform-wide room are 403.
pub(super) async fn presence<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let tenant = acting_tenant(&caller, query.get("tenantId").filter(|t| !t.is_empty()).cloned(), "tenantId")?;
    let namespace = query.get("namespace").map_or("/", String::as_str);
    let room = query.get("room").map(String::as_str);
    if let Some(room) = room
        && caller.tenant().is_some()
        && state.engine.is_platform_room(namespace, room)
    {
        return Err(platform_refusal(&format!("`{room}` is a platform-wide room of {namespace}")));
    }
    state.engine.presence(namespace, room, tenant.as_deref()).await.map(Json).map_err(ApiError::BadRequest)
}

//! `GET /api/v1/stats`: who is connected, per namespace, tenant and room.

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
use crate::engine::RoomQuery;

/// `GET /api/v1/stats`: sockets per namespace and tenant (only `namespace`'s when given); with
/// `room` (and `tenantId` for a tenant room), also how many sockets are in that room. A tenant
/// key sees its own tenant's sockets only, and rooms of its tenant only.
pub(super) async fn stats<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let tenant = acting_tenant(&caller, query.get("tenantId").filter(|t| !t.is_empty()).cloned(), "tenantId")?;
    let room = match (query.get("namespace"), query.get("room")) {
        (_, None) => None,
        (namespace, Some(room)) => Some(RoomQuery {
            namespace: namespace.cloned().unwrap_or_else(|| "/".to_string()),
            room: room.clone(),
            tenant: tenant.clone(),
        }),
    };
    if let Some(query) = &room
        && caller.tenant().is_some()
        && state.engine.is_platform_room(&query.namespace, None, &query.room)
    {
        return Err(platform_refusal(&format!("`{}` is a platform-wide room of {}", query.room, query.namespace)));
    }
    let namespace = query.get("namespace").map(String::as_str);
    state.engine.stats(namespace, room.as_ref(), caller.tenant()).await.map(Json).map_err(ApiError::BadRequest)
}

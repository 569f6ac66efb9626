//! `GET /api/v1/stats`: who is connected, per namespace, tenant and room.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState};
use crate::engine::RoomQuery;

/// `GET /api/v1/stats`: sockets per namespace and tenant (only `namespace`'s when given); with
/// `room` (and `tenantId` for a tenant room), also how many sockets are in that room.
pub(super) async fn stats<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if !state.api_keys.authorize(&headers) {
        return Err(ApiError::Unauthorized);
    }
    let room = match (query.get("namespace"), query.get("room")) {
        (_, None) => None,
        (namespace, Some(room)) => Some(RoomQuery {
            namespace: namespace.cloned().unwrap_or_else(|| "/".to_string()),
            room: room.clone(),
            tenant: query.get("tenantId").filter(|t| !t.is_empty()).cloned(),
        }),
    };
    let namespace = query.get("namespace").map(String::as_str);
    state.engine.stats(namespace, room.as_ref()).await.map(Json).map_err(ApiError::BadRequest)
}

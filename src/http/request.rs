//! Reading an API request: who calls (its key), the tenant the call acts for, then its body as
//! JSON.
//!
//! The tenant rule of the API is decided here, once, for every endpoint: a platform key
//! (`API_KEYS`) acts for the tenant a call names, or none; a tenant key (`TENANT_API_KEYS`) acts
//! for its own tenant, whether the call names it or nothing, and naming another tenant is a 403.
//! A tenant key never reaches a platform-wide (`scope: global`) room either: such a room is
//! shared by every tenant, so an event, emit or room count there is refused (403) rather than
//! sent to (or counted for) the other tenants.

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{HeaderMap, StatusCode},
};
use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState};
use crate::{auth::ApiCaller, engine::PublishedEvent};

/// Who calls, by the request's key; 401 without a valid one.
pub(super) fn caller<A: Adapter>(state: &HttpState<A>, headers: &HeaderMap) -> Result<ApiCaller, ApiError> {
    state.api_keys.caller(headers).ok_or(ApiError::Unauthorized)
}

/// The tenant a call acts for, given the one it names (in `field`): see the module's rule.
pub(super) fn acting_tenant(
    caller: &ApiCaller,
    named: Option<String>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    caller.acting_for(named).map_err(|other| {
        ApiError::Forbidden(format!(
            "{field} is `{other}`, and this API key is tenant `{}`'s: it acts for its own tenant only",
            caller.tenant().unwrap_or_default()
        ))
    })
}

/// A publish batch as `caller` may send it: a tenant key's events are its tenant's (those that
/// name none get it), and one naming another tenant or routed to a platform-wide room refuses
/// the whole batch, so nothing of it is published. A platform key's events are as given.
pub(super) fn scoped_events<A: Adapter>(
    state: &HttpState<A>,
    caller: &ApiCaller,
    events: Vec<PublishedEvent>,
) -> Result<Vec<PublishedEvent>, ApiError> {
    if caller.tenant().is_none() {
        return Ok(events);
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let named = event.tenant_id().map(str::to_string);
            let tenant = acting_tenant(caller, named, &format!("events[{i}].tenantId"))?.unwrap_or_default();
            let event = event.with_tenant(tenant);
            if let Some(rooms) = state.engine.platform_room(&event) {
                return Err(platform_refusal(&format!("events[{i}].type `{}` goes to {rooms}", event.event_type())));
            }
            Ok(event)
        })
        .collect()
}

/// The 403 of a tenant key that asked for rooms every tenant shares (`what` says which).
pub(super) fn platform_refusal(what: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "{what}, which every tenant shares: a tenant's API key reaches its own tenant's rooms only (use one of API_KEYS)"
    ))
}

/// Checks the API key and reads the body as JSON: who calls, and the body.
pub(super) fn authorized_json<A: Adapter>(
    state: &HttpState<A>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(ApiCaller, Value), ApiError> {
    let caller = caller(state, headers)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(state.max_body_bytes),
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    Ok((caller, body_json(&body).map_err(ApiError::BadRequest)?))
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
) -> Result<(ApiCaller, Value), ApiError> {
    let (caller, body) = authorized_json(state, headers, body)?;
    if !body.is_object() {
        return Err(ApiError::BadRequest(format!("the body must be an object {shape}")));
    }
    Ok((caller, body))
}

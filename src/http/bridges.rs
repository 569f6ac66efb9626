//! Outbound bridges over the API: `GET /api/v1/bridges` (each bridge once, with its state and
//! the node holding it; platform key only, never a credential), `POST
//! /api/v1/bridges/{name}/query` (seed 003's request-response: the peer's ack), `PUT` and `GET
//! /api/v1/tenants/{tenantId}/providers/websocket` (seed 003's `updateProviderConfig`, at run
//! time), and the notification call's branch for a tenant whose provider is external
//! (`publish::notify` hands it here).
//!
//! Who may change a provider: a platform key (`API_KEYS`); a tenant's own key only when the
//! operator allows it (`BRIDGE_TENANT_CONFIG`), since a provider names where the gateway
//! connects to and with which credentials.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{
    ApiError, HttpState,
    request::{acting_tenant, authorized_json, authorized_object, caller},
};
use crate::{
    auth::ApiCaller,
    bridge::{Bridges, Recipient, Target},
    config::BridgeConfig,
};

/// The longest a query may wait for the peer's answer.
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /api/v1/bridges`: `{"bridges": [...]}`. A tenant key is refused (403): a bridge's peer
/// and errors are the operator's to see.
pub(super) async fn list<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if caller(&state, &headers)?.tenant().is_some() {
        return Err(ApiError::Forbidden("the bridges' status needs a platform key (API_KEYS)".into()));
    }
    Ok(Json(json!({ "bridges": state.bridges.describe().await })))
}

/// A notification (`data`: `{id, subject, body, data, userId|channel}`) through `target`'s
/// bridge to the user or channel `recipient` names. Waits for the peer's acknowledgment when the
/// call asks for one or the provider has `enableAcknowledgments`, up to `timeout`: 200 `{id,
/// bridge, ack}`; otherwise 202 `{id, bridge}` once written to the peer.
pub(super) async fn notify_through(
    bridges: &Bridges,
    target: &Target,
    recipient: Value,
    data: Value,
    with_acks: bool,
    timeout: Duration,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let recipient = if recipient.get("userId").is_some() { Recipient::User } else { Recipient::Channel };
    let event = target.notification_event(&recipient).map_err(ApiError::Bridge)?;
    let id = data.get("id").cloned().unwrap_or(Value::Null);
    let ack = (with_acks || target.acknowledged()).then_some(timeout);
    let answer = bridges.send(target.tenant(), event, data, ack).await.map_err(ApiError::Bridge)?;
    Ok(match ack {
        Some(_) => (StatusCode::OK, Json(json!({ "id": id, "bridge": target.name(), "ack": answer }))),
        None => (StatusCode::ACCEPTED, Json(json!({ "id": id, "bridge": target.name() }))),
    })
}

/// `POST /api/v1/bridges/{name}/query`: `{event, data, timeout}` sent to the peer, answered 200
/// `{bridge, event, response}` with the peer's ack, or 504 after `timeout` (the provider's
/// `requestTimeout` when not given). A platform key, or the bridge's tenant's key; the provider
/// must have `enableRequestResponse` (else 400).
pub(super) async fn query<A: Adapter>(
    State(state): State<HttpState<A>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (caller, body) = authorized_object(&state, &headers, body, "{event, data, timeout}")?;
    let target = state
        .bridges
        .named(&name)
        .filter(|t| caller.tenant().is_none_or(|own| own == t.tenant()))
        .ok_or_else(|| ApiError::NotFound(format!("no bridge named `{name}` for this API key")))?;
    if let Some(unknown) =
        body.as_object().and_then(|o| o.keys().find(|k| !["event", "data", "timeout"].contains(&k.as_str())))
    {
        return Err(ApiError::BadRequest(format!("unknown field `{unknown}` (known: event, data, timeout)")));
    }
    let Some(request_timeout) = target.queries() else {
        return Err(ApiError::BadRequest(format!(
            "bridge `{name}` does not take queries: its provider needs \"enableRequestResponse\": true"
        )));
    };
    let event = match body.get("event") {
        Some(Value::String(e)) if !e.is_empty() && e.len() <= 200 => e.clone(),
        _ => return Err(ApiError::BadRequest("`event` must be a non-empty string of at most 200 bytes".into())),
    };
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => request_timeout.min(MAX_QUERY_TIMEOUT),
        Some(v) => match v.as_u64() {
            Some(ms) if ms >= 1 && Duration::from_millis(ms) <= MAX_QUERY_TIMEOUT => Duration::from_millis(ms),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`timeout` must be a number of milliseconds from 1 to {}",
                    MAX_QUERY_TIMEOUT.as_millis()
                )));
            }
        },
    };
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let response =
        state.bridges.send(target.tenant(), event.clone(), data, Some(timeout)).await.map_err(ApiError::Bridge)?;
    Ok(Json(json!({ "bridge": target.name(), "event": event, "response": response })))
}

/// Who may read or change `tenant`'s provider: a platform key, or (with `BRIDGE_TENANT_CONFIG`)
/// that tenant's own key.
fn may_configure(caller: &ApiCaller, tenant: &str, tenant_keys_allowed: bool) -> Result<(), ApiError> {
    if caller.tenant().is_some() && !tenant_keys_allowed {
        return Err(ApiError::Forbidden(
            "changing a provider at run time needs a platform key (API_KEYS); an operator may let tenant keys do it with BRIDGE_TENANT_CONFIG=true".into(),
        ));
    }
    acting_tenant(caller, Some(tenant.to_string()), "tenantId").map(|_| ())
}

/// A tenant id in a path: what the API takes elsewhere (a non-empty string of at most 200).
fn path_tenant(tenant: &str) -> Result<(), ApiError> {
    if tenant.trim().is_empty() || tenant.len() > 200 {
        return Err(ApiError::BadRequest("`tenantId` must be a non-empty string of at most 200 bytes".into()));
    }
    Ok(())
}

/// What a provider's answers show: its bridge's name, where it comes from, and its JSON with
/// every credential redacted.
fn provider_view(config: &BridgeConfig, changed: bool) -> Value {
    json!({
        "tenantId": config.tenant_id,
        "name": config.name,
        "source": if changed { "api" } else { "file" },
        "provider": config.json.redacted(),
    })
}

/// `PUT /api/v1/tenants/{tenantId}/providers/websocket`: the seed's provider JSON, checked as a
/// `BRIDGES_FILE` entry is (400 naming the field), replacing the tenant's provider whole. 200
/// with the provider as stored (credentials redacted).
pub(super) async fn put_provider<A: Adapter>(
    State(state): State<HttpState<A>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (caller, body) = authorized_json(&state, &headers, body)?;
    path_tenant(&tenant)?;
    may_configure(&caller, &tenant, state.bridge_tenant_config)?;
    let name = state.bridges.name_for(&tenant).map_err(ApiError::BadRequest)?;
    let config = BridgeConfig::from_provider_json(&tenant, &name, &body, "body").map_err(ApiError::BadRequest)?;
    state.bridges.can_deliver(&config).map_err(ApiError::BadRequest)?;
    state.bridges.change(config.clone()).await.map_err(ApiError::Store)?;
    tracing::info!(tenant = %tenant, bridge = %name, mode = ?config.provider.mode, enabled = config.provider.enabled, "provider changed through the API");
    Ok(Json(provider_view(&config, true)))
}

/// `GET /api/v1/tenants/{tenantId}/providers/websocket`: the tenant's provider as configured now
/// (credentials redacted), 404 when it has none.
pub(super) async fn get_provider<A: Adapter>(
    State(state): State<HttpState<A>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    path_tenant(&tenant)?;
    may_configure(&caller, &tenant, state.bridge_tenant_config)?;
    let (config, changed) = state
        .bridges
        .provider(&tenant)
        .ok_or_else(|| ApiError::NotFound(format!("tenant `{tenant}` has no websocket provider configured")))?;
    Ok(Json(provider_view(&config, changed)))
}

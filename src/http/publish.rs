//! The API's writes: `POST /api/v1/events` (published events, routed by the specs),
//! `/api/v1/emit` (raw emits to named rooms) and `/api/v1/notifications` (seed 003's `send`).

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{
    ApiError, HttpState, idempotency,
    request::{acting_tenant, authorized_json, authorized_object, body_json, platform_refusal, scoped_events},
};
use crate::engine::{EmitRequest, PublishedEvent};

/// How long a notification call waits for acks unless it says otherwise, and at most.
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/v1/events`: one event object or an array of them. 202 `{"accepted": n}`, and
/// `"duplicates": d` when `d` of them carried an `id` already published (not delivered again).
pub(super) async fn publish_events<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Publish-to-delivery time starts here, before the body is parsed.
    let received = std::time::Instant::now();
    let answer = publish_checked(&state, &headers, body, received).await;
    state.metrics.publish_request.observe(received.elapsed());
    answer
}

/// [`publish_events`] without its timing.
async fn publish_checked<A: Adapter>(
    state: &HttpState<A>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    received: std::time::Instant,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (caller, value) = authorized_json(state, headers, body)?;
    let events = events_of(value, state.max_batch, received).map_err(ApiError::BadRequest)?;
    let events = scoped_events(state, &caller, events)?;
    let published = idempotency::publish_new(state, events).await?;
    Ok((StatusCode::ACCEPTED, Json(published.answer())))
}

/// The events of a publish body (one event object or an array of at most `max_batch`), received
/// at `received`, or what is wrong with them. `publish_body` reads bytes through it.
fn events_of(value: Value, max_batch: usize, received: std::time::Instant) -> Result<Vec<PublishedEvent>, String> {
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return Err("the body must be an event object or an array of them".into()),
    };
    if items.len() > max_batch {
        return Err(format!("{} events in one call; the limit is {max_batch}", items.len()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| PublishedEvent::from_json(item, &format!("events[{i}]")).map(|e| e.received_at(received)))
        .collect()
}

/// A publish body's bytes as the API reads them (JSON, then [`events_of`]).
pub(crate) fn publish_body(body: &[u8], max_batch: usize) -> Result<Vec<PublishedEvent>, String> {
    events_of(body_json(body)?, max_batch, std::time::Instant::now())
}

/// A body field that must be an object: `field` names it in errors.
fn object<'a>(body: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>, ApiError> {
    body.get(field)
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::BadRequest(format!("`{field}` must be an object")))
}

/// An id given as a string or a number (the seeds use both), as text.
fn id_field(value: Option<&Value>, field: &str) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::BadRequest(format!("`{field}` must be a non-empty string or a number"))),
    }
}

/// `POST /api/v1/emit`: `{namespace, rooms, event, data, tenantId}`, sent as is to the named
/// rooms (the names clients see). 202 `{"rooms": n}`.
pub(super) async fn emit<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (caller, body) = authorized_object(&state, &headers, body, "{namespace, rooms, event, data, tenantId}")?;
    if let Some(unknown) = body.as_object().and_then(|o| {
        o.keys().find(|k| !["namespace", "rooms", "room", "event", "data", "tenantId"].contains(&k.as_str()))
    }) {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{unknown}` (known: namespace, rooms, event, data, tenantId)"
        )));
    }
    let namespace = match body.get("namespace") {
        None | Some(Value::Null) => "/".to_string(),
        Some(Value::String(ns)) => ns.clone(),
        Some(_) => return Err(ApiError::BadRequest("`namespace` must be a string such as \"/ws\"".into())),
    };
    let rooms = match body.get("rooms").or_else(|| body.get("room")) {
        Some(Value::String(room)) => vec![room.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
        }
        _ => return Err(ApiError::BadRequest("`rooms` must be a room name or a list of room names".into())),
    };
    if rooms.len() > state.max_batch {
        return Err(ApiError::BadRequest(format!(
            "{} rooms in one call; the limit is {}",
            rooms.len(),
            state.max_batch
        )));
    }
    let event = match body.get("event") {
        Some(Value::String(e)) if !e.is_empty() && e.len() <= 200 => e.clone(),
        _ => return Err(ApiError::BadRequest("`event` must be a non-empty string".into())),
    };
    let tenant = acting_tenant(&caller, id_field(body.get("tenantId"), "tenantId")?, "tenantId")?;
    if caller.tenant().is_some()
        && let Some(room) = rooms.iter().find(|room| state.engine.is_platform_room(&namespace, None, room))
    {
        return Err(platform_refusal(&format!("`{room}` is a platform-wide room of {namespace}")));
    }
    let request =
        EmitRequest { namespace, rooms, event, data: body.get("data").cloned().unwrap_or(Value::Null), tenant };
    let rooms = state.engine.emit(&request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "rooms": rooms }))))
}

/// `POST /api/v1/notifications`: the seed's `notificationsService.send` body,
/// `{recipient: {userId} | {channel}, content: {subject, body, data}, tenantId}`.
///
/// Without acknowledgments: 202 `{id}`. With `"enableAcknowledgments": true`: waits up to
/// `ackTimeoutMs` (default 5 s, at most 30 s) and answers 200 `{id, sockets, acknowledged}`.
/// A tenant with an external provider is served by its bridge (`super::bridges`).
pub(super) async fn notify<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let received = std::time::Instant::now();
    let (caller, body) = authorized_object(&state, &headers, body, "{recipient, content, tenantId}")?;
    let recipient = object(&body, "recipient")?;
    let user = id_field(recipient.get("userId"), "recipient.userId")?;
    let channel = id_field(recipient.get("channel"), "recipient.channel")?;
    let (event_type, target) = match (user, channel) {
        (Some(user), None) => ("notification.user", json!({ "userId": user })),
        (None, Some(channel)) => ("notification.channel", json!({ "channel": channel })),
        _ => return Err(ApiError::BadRequest("`recipient` must be either {userId} or {channel}".into())),
    };
    let content = object(&body, "content")?;
    for field in ["subject", "body"] {
        if !content.get(field).is_none_or(|v| v.is_string() || v.is_null()) {
            return Err(ApiError::BadRequest(format!("`content.{field}` must be a string")));
        }
    }
    let tenant = acting_tenant(&caller, id_field(body.get("tenantId"), "tenantId")?, "tenantId")?
        .ok_or_else(|| ApiError::BadRequest("`tenantId` is required: notifications go to a tenant's users".into()))?;
    let with_acks = match body.get("enableAcknowledgments").or_else(|| body.get("acknowledgments")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::BadRequest("`enableAcknowledgments` must be true or false".into())),
    };
    let timeout = match body.get("ackTimeoutMs") {
        None | Some(Value::Null) => DEFAULT_ACK_TIMEOUT,
        Some(v) => match v.as_u64() {
            Some(ms) if ms >= 1 && Duration::from_millis(ms) <= MAX_ACK_TIMEOUT => Duration::from_millis(ms),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`ackTimeoutMs` must be a number of milliseconds from 1 to {}",
                    MAX_ACK_TIMEOUT.as_millis()
                )));
            }
        },
    };

    let id = uuid::Uuid::new_v4().to_string();
    let mut data = json!({
        "id": id,
        "subject": content.get("subject"),
        "body": content.get("body"),
        "data": content.get("data").cloned().unwrap_or_else(|| json!({})),
    });
    if let (Some(d), Some(t)) = (data.as_object_mut(), target.as_object()) {
        d.extend(t.clone());
    }
    // A tenant whose provider is external: the notification goes through its bridge instead.
    if let Some(bridge) = state.bridges.for_tenant(&tenant) {
        return super::bridges::notify_through(&state.bridges, &bridge, target, data, with_acks, timeout).await;
    }
    let event = PublishedEvent::from_json(json!({ "type": event_type, "tenantId": tenant, "data": data }), "body")
        .map_err(ApiError::BadRequest)?
        .received_at(received);
    if caller.tenant().is_some()
        && let Some(rooms) = state.engine.platform_room(&event)
    {
        return Err(platform_refusal(&format!("`{event_type}` goes to {rooms}")));
    }
    if with_acks {
        let report = state.engine.deliver_with_acks(event, timeout).await.map_err(ApiError::BadRequest)?;
        Ok((StatusCode::OK, Json(json!({ "id": id, "sockets": report.sockets, "acknowledged": report.acknowledged }))))
    } else {
        state.engine.publish(vec![event]).await?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
    }
}

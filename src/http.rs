//! The HTTP endpoints beside Socket.IO: the API (publish events, raw emits, notifications,
//! statistics), health, readiness and metrics.
//!
//! API errors are JSON, `{"error": {"type": "...", "message": "..."}}`, with the status saying
//! which kind: 400 for a bad body, 401 for a missing or wrong key, 413 for a body over the limit.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use socketioxide::adapter::{Adapter, LocalAdapter};

use crate::{
    auth::ApiKeys,
    engine::{EmitRequest, PublishError, PublishedEvent, RoomQuery},
    lifecycle::Readiness,
    metrics::Metrics,
    node::Node,
};

/// How long a notification call waits for acks unless it says otherwise, and at most.
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share.
pub(crate) struct HttpState<A: Adapter = LocalAdapter> {
    /// Publishes events.
    pub engine: Node<A>,
    /// Who may call the API.
    pub api_keys: ApiKeys,
    /// Draining or not.
    pub readiness: Arc<Readiness>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Most events in one publish call.
    pub max_batch: usize,
    /// Largest publish body, in bytes.
    pub max_body_bytes: usize,
}

impl<A: Adapter> Clone for HttpState<A> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            api_keys: self.api_keys.clone(),
            readiness: self.readiness.clone(),
            metrics: self.metrics.clone(),
            max_batch: self.max_batch,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// The routes, ready to be layered with Socket.IO and CORS.
pub(crate) fn router<A: Adapter>(state: HttpState<A>) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let mut router = Router::new();
    for path in state.engine.endpoint_paths() {
        router = router
            .route(&path, get(native_upgrade::<A>))
            .route(&format!("{}/stats", path.trim_end_matches('/')), get(native_stats::<A>));
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<A>))
        .route("/metrics", get(metrics::<A>))
        .route("/api/v1/events", post(publish_events::<A>))
        .route("/api/v1/emit", post(emit::<A>))
        .route("/api/v1/notifications", post(notify::<A>))
        .route("/api/v1/stats", get(stats::<A>))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// An API failure, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 401: no API key, or not one of `API_KEYS`.
    #[error("missing or invalid API key: send one of API_KEYS as `X-API-Key` or `Authorization: Bearer`")]
    Unauthorized,
    /// 400: the body is not what the endpoint takes; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is over `API_MAX_BODY_SIZE`.
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// 503 with `Retry-After`: the node is stopping and took nothing.
    #[error("{0}")]
    Unavailable(PublishError),
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::Invalid(message) => ApiError::BadRequest(message),
            unavailable => ApiError::Unavailable(unavailable),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "auth"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "validation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "validation"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let body = Json(json!({ "error": { "type": kind, "message": self.to_string() } }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 503 while draining. A node whose Redis is away answers 200 `{"status": "degraded", "reason"}`:
/// it still serves its own sockets, and every node would be degraded at once, so taking them all
/// out of the load balancer would turn a Redis outage into a total one.
async fn readyz<A: Adapter>(State(state): State<HttpState<A>>) -> (StatusCode, Json<Value>) {
    if state.readiness.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining" })))
    } else if let Some(reason) = state.engine.cluster_degraded() {
        (StatusCode::OK, Json(json!({ "status": "degraded", "reason": reason })))
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

async fn metrics<A: Adapter>(State(state): State<HttpState<A>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}

/// Checks the API key and reads the body as JSON.
fn authorized_json<A: Adapter>(
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
fn body_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("the body is not valid JSON: {}", crate::parse_errors::json(body, &e)))
}

/// Like [`authorized_json`], for endpoints whose body is one object shaped like `shape`.
fn authorized_object<A: Adapter>(
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

/// `POST /api/v1/events`: one event object or an array of them. 202 `{"accepted": n}`.
async fn publish_events<A: Adapter>(
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
    let value = authorized_json(state, headers, body)?;
    let events = events_of(value, state.max_batch, received).map_err(ApiError::BadRequest)?;
    let accepted = state.engine.publish(events).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted }))))
}

/// The events of a publish body (one event object or an array of at most `max_batch`), received
/// at `received`, or what is wrong with them. Also what `crate::fuzzing` feeds its inputs to.
pub(crate) fn events_of(
    value: Value,
    max_batch: usize,
    received: std::time::Instant,
) -> Result<Vec<PublishedEvent>, String> {
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
async fn emit<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = authorized_object(&state, &headers, body, "{namespace, rooms, event, data, tenantId}")?;
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
    let request = EmitRequest {
        namespace,
        rooms,
        event,
        data: body.get("data").cloned().unwrap_or(Value::Null),
        tenant: id_field(body.get("tenantId"), "tenantId")?,
    };
    let rooms = state.engine.emit(&request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "rooms": rooms }))))
}

/// `POST /api/v1/notifications`: the seed's `notificationsService.send` body,
/// `{recipient: {userId} | {channel}, content: {subject, body, data}, tenantId}`.
///
/// Without acknowledgments: 202 `{id}`. With `"enableAcknowledgments": true`: waits up to
/// `ackTimeoutMs` (default 5 s, at most 30 s) and answers 200 `{id, sockets, acknowledged}`.
async fn notify<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let received = std::time::Instant::now();
    let body = authorized_object(&state, &headers, body, "{recipient, content, tenantId}")?;
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
    let tenant = id_field(body.get("tenantId"), "tenantId")?
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
    let event = PublishedEvent::from_json(json!({ "type": event_type, "tenantId": tenant, "data": data }), "body")
        .map_err(ApiError::BadRequest)?
        .received_at(received);
    if with_acks {
        let report = state.engine.deliver_with_acks(event, timeout).await.map_err(ApiError::BadRequest)?;
        Ok((StatusCode::OK, Json(json!({ "id": id, "sockets": report.sockets, "acknowledged": report.acknowledged }))))
    } else {
        state.engine.publish(vec![event]).await?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
    }
}

/// A plain WebSocket endpoint's handshake (seed 001's `/ws`).
async fn native_upgrade<A: Adapter>(State(state): State<HttpState<A>>, request: axum::extract::Request) -> Response {
    match state.engine.endpoint(request.uri().path()) {
        Some(endpoint) => crate::front::websocket::upgrade(endpoint, &state.api_keys, request).await.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /ws/stats`, the Go hub's statistics of an endpoint over the whole cluster:
/// `{total_clients, total_users, channels: {register, unregister, broadcast}}`. An API key sees
/// every connection; a valid token only its own tenant's (a tenant learns nothing of another's
/// traffic). The hub's queue depths become the gateway's: upgrades not yet registered,
/// connections closing, and frames waiting in send buffers. Users are counted per node and summed.
async fn native_stats<A: Adapter>(
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
    let scope = match &by_token {
        _ if state.api_keys.authorize(&headers) => crate::front::websocket::StatsScope::All,
        Some(identity) => crate::front::websocket::StatsScope::Tenant(identity.tenant_id.as_deref()),
        None => return Err(ApiError::Unauthorized),
    };
    let path = uri.path().trim_end_matches("/stats");
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

/// `GET /api/v1/stats`: sockets per namespace and tenant (only `namespace`'s when given); with
/// `room` (and `tenantId` for a tenant room), also how many sockets are in that room.
async fn stats<A: Adapter>(
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

//! The HTTP endpoints beside Socket.IO: the publish API, health, readiness and metrics.
//!
//! API errors are JSON, `{"error": {"type": "...", "message": "..."}}`, with the status saying
//! which kind: 400 for a bad body, 401 for a missing or wrong key, 413 for a body over the limit.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{
    auth::ApiKeys,
    engine::{Engine, PublishedEvent},
    metrics::Metrics,
};

/// Whether the node should receive new traffic. Shared with the shutdown sequence.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// Marks the node as draining: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Publishes events.
    pub engine: Engine,
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

/// The routes, ready to be layered with Socket.IO and CORS.
pub fn router(state: HttpState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/events", post(publish_events).layer(DefaultBodyLimit::max(max_body_bytes)))
        .with_state(state)
}

/// An API failure, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no API key, or not one of `API_KEYS`.
    #[error("missing or invalid API key: send one of API_KEYS as `X-API-Key` or `Authorization: Bearer`")]
    Unauthorized,
    /// 400: the body is not what the endpoint takes; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is over `API_MAX_BODY_SIZE`.
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "auth"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "validation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "validation"),
        };
        let body = Json(json!({ "error": { "type": kind, "message": self.to_string() } }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    if state.readiness.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining" })))
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// `POST /api/v1/events`: one event object or an array of them. 202 `{"accepted": n}`.
async fn publish_events(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state.api_keys.authorize(&headers) {
        return Err(ApiError::Unauthorized);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(state.max_body_bytes),
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return Err(ApiError::BadRequest("the body must be an event object or an array of them".into())),
    };
    if items.len() > state.max_batch {
        return Err(ApiError::BadRequest(format!(
            "{} events in one call; the limit is {}",
            items.len(),
            state.max_batch
        )));
    }
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| PublishedEvent::from_json(item, &format!("events[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::BadRequest)?;
    let accepted = state.engine.publish(events).await.map_err(ApiError::BadRequest)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted }))))
}

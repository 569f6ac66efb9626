//! Health, readiness and metrics: what load balancers and Prometheus ask.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::HttpState;

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 503 while draining. A node whose Redis is away answers 200 `{"status": "degraded", "reason"}`:
/// it still serves its own sockets, and every node would be degraded at once, so taking them all
/// out of the load balancer would turn a Redis outage into a total one.
pub(super) async fn readyz<A: Adapter>(State(state): State<HttpState<A>>) -> (StatusCode, Json<Value>) {
    if state.readiness.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining" })))
    } else if let Some(reason) = state.engine.cluster_degraded() {
        (StatusCode::OK, Json(json!({ "status": "degraded", "reason": reason })))
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

pub(super) async fn metrics<A: Adapter>(State(state): State<HttpState<A>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}

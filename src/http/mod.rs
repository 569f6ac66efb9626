//! The HTTP endpoints beside Socket.IO: the API (publish events, raw emits, notifications,
//! statistics), health, readiness and metrics.
//!
//! API errors are JSON, `{"error": {"type": "...", "message": "..."}}`, with the status saying
//! which kind: 400 for a bad body, 401 for a missing or wrong key, 403 for a tenant-scoped key
//! outside its tenant, 413 for a body over the limit.
//!
//! Here: the routes and the state they share; `request` (who calls, the tenant a call acts for,
//! and its JSON body), `error` (how failures answer), `publish` (events, raw emits,
//! notifications), `idempotency` (the writes' `Idempotency-Key` and events' ids), `stream` (the
//! backend event stream, SSE), `stats`, `presence` (who is in a room, asked of every node),
//! `native` (the plain WebSocket endpoints' handshake and statistics), `probes` (health,
//! readiness, metrics), `bridges` (outbound bridges: their status, notifications and queries
//! through them, providers changed at run time)
//! and `openapi` (the document of every route, registered with it: a route is a `Routes` line
//! naming its handler and its operation).

mod bridges;
mod error;
mod idempotency;
mod native;
pub(crate) mod openapi;
mod presence;
mod probes;
mod publish;
mod request;
mod stats;
mod stream;

use std::sync::Arc;

use axum::{extract::DefaultBodyLimit, middleware};
use socketioxide::adapter::{Adapter, LocalAdapter};

use crate::{
    auth::ApiKeys, bridge::Bridges, idempotency::IdempotencyStore, lifecycle::Readiness, metrics::Metrics, node::Node,
};
pub(crate) use error::ApiError;
use openapi::{Routes, operations as op};
pub(crate) use publish::publish_body;

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
    /// What the writes remember of their keys and events' ids: this node's memory, or Redis
    /// shared by the cluster (behind the trait, so the API does not know which).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The outbound bridges of external-mode tenants (`crate::bridge`), by tenant.
    pub bridges: Bridges,
    /// `BRIDGE_TENANT_CONFIG`: tenant keys may change their own provider.
    pub bridge_tenant_config: bool,
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
            idempotency: self.idempotency.clone(),
            bridges: self.bridges.clone(),
            bridge_tenant_config: self.bridge_tenant_config,
        }
    }
}

/// The routes, each with its operation in the API's document, ready to be merged with the page's
/// and served (`Routes::into_router`), then layered with Socket.IO and CORS.
pub(crate) fn router<A: Adapter>(state: HttpState<A>) -> Routes {
    let max_body_bytes = state.max_body_bytes;
    let mut routes = Routes::new();
    for path in state.engine.endpoint_paths() {
        let stats = format!("{}/stats", path.trim_end_matches('/'));
        routes = routes.get(&path, native::native_upgrade::<A>, op::native_upgrade(&path)).get(
            &stats,
            native::native_stats::<A>,
            op::native_stats(&path),
        );
    }
    // The writes, each run once per `Idempotency-Key`.
    let writes = Routes::new()
        .post("/api/v1/events", publish::publish_events::<A>, op::publish_events())
        .post("/api/v1/emit", publish::emit::<A>, op::emit())
        .post("/api/v1/notifications", publish::notify::<A>, op::notify())
        .map_router(|router| router.route_layer(middleware::from_fn_with_state(state.clone(), idempotency::once::<A>)));
    routes
        .get("/healthz", probes::healthz, op::healthz())
        .get("/readyz", probes::readyz::<A>, op::readyz())
        .get("/metrics", probes::metrics::<A>, op::metrics())
        .merge(writes)
        .get("/api/v1/stats", stats::stats::<A>, op::stats())
        .get("/api/v1/presence", presence::presence::<A>, op::presence())
        .get("/api/v1/events/stream", stream::event_stream::<A>, op::event_stream())
        .get("/api/v1/bridges", bridges::list::<A>, op::bridges())
        .post("/api/v1/bridges/{name}/query", bridges::query::<A>, op::bridge_query())
        .put("/api/v1/tenants/{tenantId}/providers/websocket", bridges::put_provider::<A>, op::put_provider())
        .get("/api/v1/tenants/{tenantId}/providers/websocket", bridges::get_provider::<A>, op::get_provider())
        .map_router(|router| router.layer(DefaultBodyLimit::max(max_body_bytes)).with_state(state))
}

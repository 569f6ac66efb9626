//! The engine core: what every front serves a spec with, and how a published event reaches its
//! members. It knows no front, no transport, no HTTP route and no Redis; the fronts
//! (`crate::front`) drive it, and `crate::node` assembles it with them.
//!
//! - `runtime`: one spec served (its limits, state and routing), shared by both fronts;
//! - `dispatch`: a client event from message to answer (limits, schema, actions, errors), said as
//!   a `dispatch::Handled` each front turns into its own frames;
//! - `actions`: joining and leaving rooms under access rules, emitting, replying;
//! - `publish`: a published event, its checks and the rooms it routes to;
//! - `member`: what a front's connection is to the engine (the `member::Member` trait);
//! - `member_state`: a member's identity, public id and what it has in flight;
//! - `roster`: how an observer (the admin view) sees members, and the traits it is told through;
//! - `link`: what the engine needs from a cluster ([`ClusterLink`]) and the work it carries;
//! - `forward`: client events handed to backends (`forward::Backends`, implemented by
//!   `crate::sink::backends`), and the answers the fronts wait for;
//! - `state`: last-known state built from published events;
//! - `history`: each room's recent events and their positions, for clients that reconnect;
//! - `recovery`: what a join reads from its room's history (`since`, `replay`), under its lock;
//! - `presence`: who is in a room (asked of every node) and the join and leave events a spec asks for;
//! - `perf`: the live performance figures of `{gateway.stats}`;
//! - `expiry`, `limits`, `errors`: what their names say.
//!
//! It never names a namespace: what a namespace does comes from its spec. In a cluster, published
//! events and raw emits go through a [`ClusterLink`] (implemented by `crate::cluster`), which
//! brings them back to every node, where each delivers them to its own members.

pub(crate) mod actions;
pub(crate) mod dispatch;
pub(crate) mod errors;
pub(crate) mod expiry;
pub(crate) mod forward;
pub(crate) mod history;
pub(crate) mod limits;
mod link;
pub(crate) mod member;
pub(crate) mod member_state;
pub(crate) mod perf;
pub(crate) mod presence;
pub(crate) mod publish;
pub(crate) mod recovery;
pub(crate) mod roster;
pub(crate) mod runtime;
pub(crate) mod state;

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

pub(crate) use link::{ClusterLink, EmitRequest, LinkStopped, Outgoing, PublishError, RoomQuery};
pub(crate) use member_state::PublicId;
pub(crate) use publish::{
    AckReport, MAX_ID_LEN as MAX_EVENT_ID_LEN, MAX_TYPE_LEN as MAX_EVENT_TYPE_LEN, PublishedEvent,
};
pub(crate) use roster::{ClientCounts, ClusterState, Observer, Roster, SocketView, endpoint_name};

use crate::{auth::TokenVerifier, config::LimitsConfig, metrics::Metrics};
use expiry::ExpiryQueue;

/// What every namespace shares. Behind one `Arc`, built once at start-up.
pub(crate) struct Shared {
    /// Verifies handshake and refresh tokens.
    pub verifier: TokenVerifier,
    /// Per-socket limits.
    pub limits: LimitsConfig,
    /// Sockets by token expiry.
    pub expiry: ExpiryQueue,
    /// Counters, also read by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Connected sockets per Socket.IO namespace, by namespace index, with the namespace's path
    /// (the namespaces' own gauges, shared).
    pub ns_connections: Vec<(String, prometheus_client::metrics::gauge::Gauge)>,
    /// Rates and latencies for `{gateway.stats}`.
    pub perf: perf::PerfSampler,
    /// The cookie tokens are read from, in namespaces that allow it.
    pub auth_cookie_name: String,
    /// Origins a cookie-authenticated handshake may come from (the CORS origins).
    pub allowed_origins: Vec<String>,
    /// The cluster, when this node is a member of one.
    pub cluster: OnceLock<Arc<dyn ClusterLink>>,
    /// The byte budgets of last-known state, shared by every namespace's stores.
    pub state_budget: state::StateBudget,
    /// The byte budget of room history, shared by every endpoint's.
    pub history_budget: history::HistoryBudget,
    /// Where `forward` actions hand client events (`crate::sink::backends`), once attached.
    pub backends: OnceLock<Arc<dyn forward::Backends>>,
    /// Told of connections' lives (the admin view), when one is attached.
    pub observer: OnceLock<Arc<dyn Observer>>,
    /// The key of the client ids shown to the observer.
    pub client_ids: roster::ClientIds,
}

impl Shared {
    /// What the specs of one node share: `ns_connections` are the Socket.IO namespaces' connection
    /// gauges, by path, for `{gateway.stats}`.
    pub(crate) fn new(
        verifier: TokenVerifier,
        limits: LimitsConfig,
        metrics: Arc<Metrics>,
        ns_connections: Vec<(String, prometheus_client::metrics::gauge::Gauge)>,
        auth_cookie_name: String,
        allowed_origins: Vec<String>,
    ) -> Self {
        Self {
            verifier,
            expiry: ExpiryQueue::default(),
            perf: perf::PerfSampler::new(&metrics),
            ns_connections,
            metrics,
            auth_cookie_name,
            allowed_origins,
            cluster: OnceLock::new(),
            state_budget: state::StateBudget::new(limits.state_bytes_per_tenant, limits.state_bytes),
            history_budget: history::HistoryBudget::new(limits.history_bytes),
            limits,
            observer: OnceLock::new(),
            backends: OnceLock::new(),
            client_ids: roster::ClientIds::default(),
        }
    }

    /// Whether this node is in a cluster that can be reached now (`false` alone).
    pub(crate) fn cluster_reachable(&self) -> bool {
        self.cluster.get().is_some_and(|c| c.reachable())
    }

    /// Why the cluster is degraded, if this node is in one and it is.
    pub(crate) fn cluster_degraded(&self) -> Option<String> {
        self.cluster.get().and_then(|c| c.degraded())
    }

    /// The other live nodes' snapshots (none alone).
    pub(crate) fn peers(&self) -> Vec<Value> {
        self.cluster.get().map(|c| c.peers()).unwrap_or_default()
    }

    /// `{gateway.stats}`: connections per namespace, message rates and latencies since the last
    /// reading, process CPU and memory.
    pub(crate) fn gateway_stats(&self) -> Value {
        let by_namespace: serde_json::Map<String, Value> =
            self.ns_connections.iter().map(|(path, g)| (path.clone(), json!(g.get().max(0)))).collect();
        let mut by_namespace = by_namespace;
        let mut total = self.metrics.connections.get().max(0) as u64;
        let peers = self.peers();
        for peer in &peers {
            for (path, ns) in peer["namespaces"].as_object().into_iter().flatten() {
                let n = ns["connections"].as_u64().unwrap_or(0);
                total += n;
                if let Some(count) = by_namespace.get_mut(path) {
                    *count = json!(count.as_u64().unwrap_or(0) + n);
                }
            }
        }
        let connections = json!({ "total": total, "byNamespace": by_namespace });
        let mut stats = self.perf.sample(&self.metrics, connections);
        stats["cluster"] = json!({ "nodes": peers.len() + 1 });
        stats
    }
}

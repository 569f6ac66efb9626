//! A plain WebSocket endpoint's figures for `/ws/stats`: per tenant (connections, distinct users,
//! upgrades registering, closing, frames queued), this node's and the cluster's, scoped to the
//! caller's tenant unless an API key asks.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use serde_json::{Value, json};

use super::Endpoint;

/// Figures of one endpoint (this node's, or the cluster's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EndpointStats {
    /// Connections.
    pub clients: usize,
    /// Distinct users among them (per tenant).
    pub users: usize,
    /// Upgrades not yet registered.
    pub registering: usize,
    /// Connections closing.
    pub closing: usize,
    /// Frames waiting in send buffers or being written.
    pub queued: usize,
}

impl Endpoint {
    /// This node's figures, per tenant (`None`: connections without one).
    fn stats_by_tenant(&self) -> HashMap<Option<Arc<str>>, EndpointStats> {
        // Per tenant: its figures, and its distinct users.
        type Tally = (EndpointStats, HashSet<Arc<str>>);
        let mut by_tenant: HashMap<Option<Arc<str>>, Tally> = HashMap::new();
        for conn in self.conns.read().unwrap_or_else(|e| e.into_inner()).values() {
            let identity = conn.session.identity();
            let (stats, users) = by_tenant.entry(identity.tenant_id.clone()).or_default();
            stats.clients += 1;
            stats.closing += usize::from(conn.is_closing());
            stats.queued += conn.queued();
            if let Some(user) = identity.user_id.clone() {
                users.insert(user);
            }
        }
        for (tenant, registering) in self.registering.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            by_tenant.entry(tenant.clone()).or_default().0.registering += registering;
        }
        by_tenant
            .into_iter()
            .map(|(tenant, (stats, users))| (tenant, EndpointStats { users: users.len(), ..stats }))
            .collect()
    }

    /// The figures of `scope` over the whole cluster: this node's, plus those `peers` reported
    /// (their [`Self::stats_json`]). Users are counted per node and tenant, and summed.
    pub(crate) fn cluster_stats(&self, peers: &[Value], scope: StatsScope<'_>) -> EndpointStats {
        let mut total = EndpointStats::default();
        for (tenant, stats) in self.stats_by_tenant() {
            if scope.counts(tenant.as_deref()) {
                total.add(&stats);
            }
        }
        for peer in peers {
            let figures = &peer["endpoints"][self.spec.path.as_str()];
            match scope {
                StatsScope::All => total.add(&EndpointStats::from_json(figures)),
                StatsScope::Tenant(Some(tenant)) => total.add(&EndpointStats::from_json(&figures["tenants"][tenant])),
                StatsScope::Tenant(None) => total.add(&EndpointStats::from_json(&figures["untenanted"])),
            }
        }
        total
    }

    /// This node's figures as JSON, for the other nodes: in all, and per tenant.
    pub(crate) fn stats_json(&self) -> Value {
        let mut total = EndpointStats::default();
        let mut tenants = serde_json::Map::new();
        let mut untenanted = EndpointStats::default();
        for (tenant, stats) in self.stats_by_tenant() {
            total.add(&stats);
            match tenant {
                Some(tenant) => {
                    tenants.insert(tenant.to_string(), stats.to_json());
                }
                None => untenanted = stats,
            }
        }
        let mut json = total.to_json();
        json["tenants"] = Value::Object(tenants);
        json["untenanted"] = untenanted.to_json();
        json
    }
}

/// Whose connections statistics count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StatsScope<'a> {
    /// Every connection (the caller holds an API key).
    All,
    /// One tenant's (`None`: connections without a tenant), for a caller with that tenant's token.
    Tenant(Option<&'a str>),
}

impl StatsScope<'_> {
    fn counts(&self, tenant: Option<&str>) -> bool {
        match self {
            StatsScope::All => true,
            StatsScope::Tenant(scope) => *scope == tenant,
        }
    }
}

impl EndpointStats {
    fn add(&mut self, other: &EndpointStats) {
        self.clients += other.clients;
        self.users += other.users;
        self.registering += other.registering;
        self.closing += other.closing;
        self.queued += other.queued;
    }

    fn to_json(self) -> Value {
        json!({ "clients": self.clients, "users": self.users, "registering": self.registering, "closing": self.closing, "queued": self.queued })
    }

    /// Figures another node sent (zero where it sent none).
    fn from_json(figures: &Value) -> Self {
        let n = |field: &str| figures[field].as_u64().unwrap_or(0) as usize;
        Self {
            clients: n("clients"),
            users: n("users"),
            registering: n("registering"),
            closing: n("closing"),
            queued: n("queued"),
        }
    }
}

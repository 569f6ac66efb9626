//! Periodic emits (`every:` in a spec): once per tick into every live instance of a room family,
//! such as each tenant's `tenant` room for `tenant_stats`. Also the per-tenant statistics
//! (`tenant.stats`) those emits can carry.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::Arc,
};

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use crate::{
    clock::iso_now,
    engine::member_state::MemberState,
    front::socketio::{namespace::NamespaceRuntime, outbound::Encoded},
};
use crate::{
    rooms,
    spec::{
        TimerSpec,
        template::{Root, Scope},
    },
};

/// What one tenant has on this node in one namespace.
#[derive(Debug, Default, Clone)]
pub(crate) struct TenantStats {
    pub connections: u64,
    pub users: HashSet<Arc<str>>,
    pub subscriptions: u64,
}

struct TimerScope<'a, A: Adapter> {
    ns: &'a NamespaceRuntime<A>,
    tenant: Option<&'a str>,
    tenant_json: Value,
    stats: Option<&'a TenantStats>,
    now: String,
}

impl<A: Adapter> Scope for TimerScope<'_, A> {
    fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
        match root {
            Root::Tenant => Some(Cow::Borrowed(&self.tenant_json)),
            Root::Now => Some(Cow::Owned(Value::String(self.now.clone()))),
            _ => None,
        }
    }

    fn computed(&self, root: Root, field: &str) -> Option<Cow<'_, Value>> {
        let value = match (root, field) {
            (Root::Tenant, "stats") => {
                let stats = self.stats.cloned().unwrap_or_default();
                // The other nodes' sockets of this tenant (users are counted per node).
                let (mut connections, mut users, mut subscriptions) =
                    (stats.connections, stats.users.len() as u64, stats.subscriptions);
                if let Some(tenant) = self.tenant {
                    for peer in self.ns.shared.peers() {
                        let t = &peer["namespaces"][self.ns.spec.path.as_str()]["tenants"][tenant];
                        connections += t["connections"].as_u64().unwrap_or(0);
                        users += t["users"].as_u64().unwrap_or(0);
                        subscriptions += t["subscriptions"].as_u64().unwrap_or(0);
                    }
                }
                let events = self
                    .tenant
                    .and_then(|t| self.ns.tenant_events.lock().unwrap_or_else(|e| e.into_inner()).peek(t).copied())
                    .unwrap_or(0);
                Some(json!({
                    "connections": connections,
                    "users": users,
                    "subscriptions": subscriptions,
                    "eventsPublished": events,
                }))
            }
            (Root::Gateway, "stats") => Some(self.ns.shared.gateway_stats()),
            _ => None,
        };
        value.map(Cow::Owned)
    }

    fn state(&self, store: &str, key: Option<&str>) -> Option<Value> {
        let id = self.ns.spec.store_id(store)?;
        self.ns.stores.read(id, self.tenant.unwrap_or_default(), key, 100)
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// Runs one tick of `timer`.
    pub(crate) async fn run_timer(&self, timer: &TimerSpec) {
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return };
        let family = &self.spec.rooms[timer.room];
        // This node's rooms: each node emits to its own sockets.
        let rooms = match op.clone().local().rooms().await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(ns = %self.spec.path, error = %e, "cannot list rooms for a timer");
                return;
            }
        };
        let instances: Vec<(Option<String>, String)> = rooms
            .iter()
            .filter_map(|room| {
                let (tenant, visible) = rooms::split_internal(room)?;
                family.pattern.parse_name(visible)?;
                Some((tenant, room.to_string()))
            })
            .collect();
        if instances.is_empty() {
            return;
        }
        let stats = self.tenant_stats();
        for (tenant, room) in instances {
            let scope = TimerScope {
                ns: self,
                tenant: tenant.as_deref(),
                tenant_json: json!({ "id": tenant }),
                stats: tenant.as_ref().and_then(|t| stats.get(t.as_str())),
                now: iso_now(),
            };
            let name = timer.emit.event.render_text(&scope);
            let data = timer.emit.data.as_ref().and_then(|d| d.render(&scope)).unwrap_or(Value::Null);
            let message = match Encoded::new(&self.spec.path, &name, Some(&data)) {
                Ok(message) => message,
                Err(e) => {
                    tracing::error!(ns = %self.spec.path, error = %e, "a timer's emit could not be serialized");
                    continue;
                }
            };
            if let Err(e) = self.emit_here(op.clone().to(room), &name, &message).await {
                self.note_broadcast_failure(&e);
            }
        }
    }

    /// Connections, distinct users and subscriptions per tenant, from this node's sockets.
    pub(crate) fn tenant_stats(&self) -> HashMap<String, TenantStats> {
        let mut stats: HashMap<String, TenantStats> = HashMap::new();
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return stats };
        for socket in op.local().sockets() {
            let Some(session) = socket.extensions.get::<Arc<MemberState>>() else { continue };
            let identity = session.identity();
            let Some(tenant) = identity.tenant_id.as_deref() else { continue };
            let entry = stats.entry(tenant.to_string()).or_default();
            entry.connections += 1;
            if let Some(user) = &identity.user_id {
                entry.users.insert(user.clone());
            }
            entry.subscriptions += socket
                .rooms()
                .iter()
                .filter(|room| {
                    rooms::split_internal(room).is_some_and(|(_, visible)| {
                        self.spec.rooms.iter().any(|f| !f.server_only && f.pattern.parse_name(visible).is_some())
                    })
                })
                .count() as u64;
        }
        stats
    }
}

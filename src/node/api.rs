//! What the HTTP API does to sockets besides publishing: raw emits to named rooms, and
//! statistics (sockets per namespace and tenant, and the size of one room).
//!
//! Both speak in visible room names, as clients do, and scope them with the tenant the caller
//! gives, through the same room families and rules as everything else: a raw emit can reach any
//! room a route could, and nothing a tenant boundary would stop. Statistics can be confined to
//! one tenant (a tenant-scoped key's view).

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::Node;
use crate::engine::{EmitRequest, RoomQuery};
use crate::{
    engine::runtime::SpecRuntime,
    front::socketio::{namespace::NamespaceRuntime, outbound::Encoded},
};
use crate::{
    rooms,
    spec::{RESERVED_EVENTS, Transport},
};

impl<A: Adapter> Node<A> {
    /// Sends a raw emit (in a cluster, from every node to its own sockets); returns how many
    /// rooms it names. The error says what is wrong with the request.
    pub(crate) async fn emit(&self, request: &EmitRequest) -> Result<usize, crate::engine::PublishError> {
        let count = self.check_emit(request)?.len();
        match self.shared.cluster.get() {
            Some(cluster) => cluster.submit(crate::engine::Outgoing::Emit(request.clone())).await?,
            None => self.emit_local(request).await,
        }
        self.shared.metrics.published.inc();
        Ok(count)
    }

    /// Whether `visible` names a platform-wide (`scope: global`) room of `namespace`: one room
    /// every tenant shares.
    pub(crate) fn is_platform_room(&self, namespace: &str, transport: Option<Transport>, visible: &str) -> bool {
        self.runtime_or_err(namespace, transport).is_ok_and(|rt| {
            rt.spec.family_of(visible).is_some_and(|(id, _)| rt.spec.rooms[id].scope == rooms::RoomScope::Global)
        })
    }

    /// The internal rooms of a raw emit, or what is wrong with it.
    fn check_emit(&self, request: &EmitRequest) -> Result<Vec<String>, String> {
        let ns = self.namespace_or_err(&request.namespace)?;
        if request.event.is_empty() || RESERVED_EVENTS.contains(&request.event.as_str()) {
            return Err(format!("event `{}` is reserved by Socket.IO and cannot be emitted", request.event));
        }
        if request.rooms.is_empty() {
            return Err("rooms: name at least one room".into());
        }
        request
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| ns.internal_room(room, request.tenant.as_deref()).map_err(|e| format!("rooms[{i}]: {e}")))
            .collect()
    }

    /// A checked raw emit, to this node's sockets.
    pub(crate) async fn emit_local(&self, request: &EmitRequest) {
        let Ok(rooms) = self.check_emit(request) else { return };
        let Some(ns) = self.namespace(&request.namespace) else { return };
        let Some(op) = self.io_of(ns) else { return };
        let message = match Encoded::new(&ns.spec.path, &request.event, Some(&request.data)) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(ns = %ns.spec.path, error = %e, "a raw emit could not be serialized");
                return;
            }
        };
        if let Err(e) = ns.emit_here(op.to(rooms), &request.event, &message).await {
            ns.note_broadcast_failure(&e);
        }
    }

    /// An emit every node receives itself (`@socket.io/redis-emitter`), to this node's sockets:
    /// `event` with `args` to the sockets in `rooms` (`(tenant, visible name)`; none: the whole
    /// namespace) and not in `except`.
    pub(crate) async fn emit_received(
        &self,
        namespace: &str,
        event: &str,
        args: &[Value],
        rooms: &[(Option<String>, String)],
        except: &[(Option<String>, String)],
    ) -> Result<(), String> {
        let ns = self.namespace_or_err(namespace)?;
        if event.is_empty() || RESERVED_EVENTS.contains(&event) {
            return Err(format!("event `{event}` is reserved by Socket.IO"));
        }
        let Some(op) = self.io_of(ns) else { return Ok(()) };
        // A bare name of a tenant room means that room in every tenant, as an emit without rooms
        // reaches every tenant: a Node backend's `io.to('dashboard')` keeps working unchanged.
        // Such names are matched against this node's rooms, the only place tenants are listed.
        let local_rooms =
            if rooms.iter().chain(except).any(|(tenant, room)| tenant.is_none() && ns.is_tenant_room(room)) {
                op.clone().local().rooms().await.unwrap_or_default()
            } else {
                Vec::new()
            };
        let internal = |names: &[(Option<String>, String)]| -> Result<Vec<String>, String> {
            let mut out = Vec::new();
            for (tenant, room) in names {
                if tenant.is_none() && ns.is_tenant_room(room) {
                    out.extend(
                        local_rooms
                            .iter()
                            .filter(|r| {
                                rooms::split_internal(r).is_some_and(|(t, visible)| t.is_some() && visible == room)
                            })
                            .map(|r| r.to_string()),
                    );
                } else {
                    out.push(ns.internal_room(room, tenant.as_deref())?);
                }
            }
            Ok(out)
        };
        let (targets, except) = (internal(rooms)?, internal(except)?);
        if !rooms.is_empty() && targets.is_empty() {
            // Named rooms, none of which has a socket here: nothing to send (an empty list
            // would mean the whole namespace).
            return Ok(());
        }
        let rooms = targets;
        let op = op.local().to(rooms).except(except);
        ns.charge_all(op.clone(), Encoded::size_of(&ns.spec.path, event, args));
        // Socket.IO events carry their arguments as a list: one to four are sent as they came.
        let result = match args {
            [] => op.emit(event, &()).await,
            [a] => op.emit(event, a).await,
            [a, b] => op.emit(event, &(a, b)).await,
            [a, b, c] => op.emit(event, &(a, b, c)).await,
            [a, b, c, d] => op.emit(event, &(a, b, c, d)).await,
            _ => return Err(format!("{} arguments; at most 4 are relayed", args.len())),
        };
        if let Err(e) = result {
            ns.note_broadcast_failure(&e);
        }
        self.shared.metrics.published.inc();
        Ok(())
    }

    /// What this node holds, for the other nodes' statistics: per namespace, its sockets,
    /// anonymous ones, and per tenant `{connections, users, subscriptions}`.
    pub(crate) fn node_snapshot(&self) -> Value {
        let namespaces: serde_json::Map<String, Value> =
            self.namespaces.iter().map(|ns| (ns.spec.path.clone(), ns.local_summary())).collect();
        let endpoints: serde_json::Map<String, Value> =
            self.endpoints.iter().map(|ep| (ep.spec.path.clone(), ep.stats_json())).collect();
        json!({ "namespaces": namespaces, "endpoints": endpoints })
    }

    /// Connected sockets per namespace (or only `namespace`'s) and per tenant, over the whole
    /// cluster, and the size of `room` when asked. With `only_tenant`, the counts are that
    /// tenant's sockets alone (no other tenant listed, no anonymous ones).
    pub(crate) async fn stats(
        &self,
        namespace: Option<&str>,
        room: Option<&RoomQuery>,
        only_tenant: Option<&str>,
    ) -> Result<Value, String> {
        if let Some(path) = namespace {
            self.namespace_or_err(path)?;
        }
        let peers = self.shared.peers();
        let mut namespaces = serde_json::Map::new();
        let mut total = 0u64;
        for ns in self.namespaces.iter().filter(|ns| namespace.is_none_or(|p| ns.spec.path == p)) {
            let mut summaries = vec![ns.local_summary()];
            summaries.extend(peers.iter().map(|p| p["namespaces"][ns.spec.path.as_str()].clone()));
            let (mut connections, mut anonymous) = (0u64, 0u64);
            let mut tenants: BTreeMap<String, u64> = BTreeMap::new();
            for summary in &summaries {
                connections += summary["connections"].as_u64().unwrap_or(0);
                anonymous += summary["anonymous"].as_u64().unwrap_or(0);
                for (tenant, t) in summary["tenants"].as_object().into_iter().flatten() {
                    *tenants.entry(tenant.clone()).or_default() += t["connections"].as_u64().unwrap_or(0);
                }
            }
            if let Some(only) = only_tenant {
                tenants.retain(|tenant, _| tenant == only);
                connections = tenants.values().sum();
                anonymous = 0;
            }
            total += connections;
            namespaces.insert(
                ns.spec.path.clone(),
                json!({ "connections": connections, "tenants": tenants, "anonymous": anonymous }),
            );
        }
        let mut out = json!({ "connections": total, "namespaces": namespaces, "nodes": peers.len() + 1 });
        if let Some(query) = room {
            let ns = self.namespace_or_err(&query.namespace)?;
            let internal = ns.internal_room(&query.room, query.tenant.as_deref())?;
            let sockets = match self.io_of(ns) {
                None => 0,
                // Counted by asking every node, through the adapter; this node alone while the
                // cluster is unreachable.
                Some(op) if self.shared.cluster.get().is_none() || self.shared.cluster_reachable() => {
                    match op.clone().within(internal.clone()).fetch_sockets().await {
                        Ok(sockets) => sockets.len(),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot count a room across nodes; counting this node's");
                            op.local().within(internal).sockets().len()
                        }
                    }
                }
                Some(op) => op.local().within(internal).sockets().len(),
            };
            out["room"] = json!({
                "namespace": ns.spec.path,
                "room": query.room,
                "tenantId": query.tenant,
                "sockets": sockets,
            });
        }
        Ok(out)
    }

    pub(super) fn namespace_or_err(&self, path: &str) -> Result<&Arc<NamespaceRuntime<A>>, String> {
        self.namespace(path).ok_or_else(|| {
            let known: Vec<&str> = self.namespaces.iter().map(|ns| ns.spec.path.as_str()).collect();
            format!("no namespace `{path}` (known: {})", known.join(", "))
        })
    }

    /// The runtime of the Socket.IO namespace or plain WebSocket endpoint at `path`, for the
    /// calls that speak to both fronts. Both may serve one path (seed 001's `/ws` beside seed
    /// 002's): without `transport`, the Socket.IO namespace, as before plain endpoints were asked.
    pub(crate) fn runtime_or_err(&self, path: &str, transport: Option<Transport>) -> Result<&SpecRuntime, String> {
        let mut at_path = self.runtimes().filter(|rt| rt.spec.path == path);
        let found = match transport {
            Some(transport) => at_path.find(|rt| rt.spec.transport == transport),
            // Namespaces come first.
            None => at_path.next(),
        };
        found.ok_or_else(|| {
            let known: Vec<String> = self
                .runtimes()
                .map(|rt| match rt.spec.transport {
                    Transport::SocketIo => rt.spec.path.clone(),
                    Transport::WebSocket => format!("{} (transport=websocket)", rt.spec.path),
                })
                .collect();
            format!("no namespace `{path}` (known: {})", known.join(", "))
        })
    }

    fn io_of(&self, ns: &NamespaceRuntime<A>) -> Option<socketioxide::operators::BroadcastOperators<A>> {
        ns.io.of(ns.spec.path.as_str())
    }
}

impl SpecRuntime {
    /// The adapter's name for a visible room name of `tenant`.
    pub(crate) fn internal_room(&self, visible: &str, tenant: Option<&str>) -> Result<String, String> {
        let (id, _) = self
            .spec
            .family_of(visible)
            .ok_or_else(|| format!("`{visible}` is not a room name of {}", self.spec.path))?;
        let family = &self.spec.rooms[id];
        rooms::internal_name(family.scope, tenant, visible)
            .ok_or_else(|| format!("`{visible}` is a tenant room (`{}`): give the tenantId", family.name))
    }

    /// Whether `visible` names a room of a tenant-scoped family.
    fn is_tenant_room(&self, visible: &str) -> bool {
        self.spec.family_of(visible).is_some_and(|(id, _)| self.spec.rooms[id].scope == rooms::RoomScope::Tenant)
    }
}

//! What the HTTP API does to sockets besides publishing: raw emits to named rooms, and
//! statistics (sockets per namespace and tenant, and the size of one room).
//!
//! Both speak in visible room names, as clients do, and scope them with the tenant the caller
//! gives, through the same room families and rules as everything else: a raw emit can reach any
//! room a route could, and nothing a tenant boundary would stop.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{Engine, namespace::NamespaceRuntime, session::Session};
use crate::{rooms, spec::RESERVED_EVENTS};

/// `POST /api/v1/emit`: an event sent as is to rooms of one namespace.
#[derive(Debug, Clone)]
pub struct EmitRequest {
    /// The namespace, such as `/ws`.
    pub namespace: String,
    /// Visible room names.
    pub rooms: Vec<String>,
    /// The event name clients receive.
    pub event: String,
    /// Its payload.
    pub data: Value,
    /// The tenant whose rooms are meant (required when a room is a tenant room).
    pub tenant: Option<String>,
}

/// `GET /api/v1/stats?namespace=..&room=..&tenantId=..`: the size of one room.
#[derive(Debug, Clone)]
pub struct RoomQuery {
    /// The namespace.
    pub namespace: String,
    /// The visible room name.
    pub room: String,
    /// The tenant whose room is meant.
    pub tenant: Option<String>,
}

impl<A: Adapter> Engine<A> {
    /// Sends a raw emit; returns how many rooms it went to. The error says what is wrong with
    /// the request.
    pub async fn emit(&self, request: &EmitRequest) -> Result<usize, String> {
        let ns = self.namespace_or_err(&request.namespace)?;
        if request.event.is_empty() || RESERVED_EVENTS.contains(&request.event.as_str()) {
            return Err(format!("event `{}` is reserved by Socket.IO and cannot be emitted", request.event));
        }
        if request.rooms.is_empty() {
            return Err("rooms: name at least one room".into());
        }
        let rooms = request
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| ns.internal_room(room, request.tenant.as_deref()).map_err(|e| format!("rooms[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let count = rooms.len();
        let Some(op) = self.io_of(ns) else { return Ok(0) };
        if let Err(e) = op.to(rooms).emit(&request.event, &request.data).await {
            self.shared.note_broadcast_failure(&ns.spec.path, &e);
        }
        self.shared.metrics.published.inc();
        Ok(count)
    }

    /// Connected sockets per namespace (or only `namespace`'s) and per tenant, and the size of
    /// `room` when asked.
    pub async fn stats(&self, namespace: Option<&str>, room: Option<&RoomQuery>) -> Result<Value, String> {
        if let Some(path) = namespace {
            self.namespace_or_err(path)?;
        }
        let mut namespaces = serde_json::Map::new();
        let mut total = 0usize;
        for ns in self.namespaces.iter().filter(|ns| namespace.is_none_or(|p| ns.spec.path == p)) {
            let (count, tenants, anonymous) = ns.local_counts();
            total += count;
            namespaces.insert(
                ns.spec.path.clone(),
                json!({ "connections": count, "tenants": tenants, "anonymous": anonymous }),
            );
        }
        let mut out = json!({ "connections": total, "namespaces": namespaces });
        if let Some(query) = room {
            let ns = self.namespace_or_err(&query.namespace)?;
            let internal = ns.internal_room(&query.room, query.tenant.as_deref())?;
            let sockets = match self.io_of(ns) {
                Some(op) => op.within(internal).fetch_sockets().await.map_err(|e| format!("cannot count: {e}"))?.len(),
                None => 0,
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

    fn namespace_or_err(&self, path: &str) -> Result<&Arc<NamespaceRuntime<A>>, String> {
        self.namespace(path).ok_or_else(|| {
            let known: Vec<&str> = self.specs().map(|s| s.path.as_str()).collect();
            format!("no namespace `{path}` (known: {})", known.join(", "))
        })
    }

    fn io_of(&self, ns: &NamespaceRuntime<A>) -> Option<socketioxide::operators::BroadcastOperators<A>> {
        ns.io.of(ns.spec.path.as_str())
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// The adapter's name for a visible room name of `tenant`.
    fn internal_room(&self, visible: &str, tenant: Option<&str>) -> Result<String, String> {
        let (id, _) = self
            .spec
            .family_of(visible)
            .ok_or_else(|| format!("`{visible}` is not a room name of {}", self.spec.path))?;
        let family = &self.spec.rooms[id];
        rooms::internal_name(family.scope, tenant, visible)
            .ok_or_else(|| format!("`{visible}` is a tenant room (`{}`): give the tenantId", family.name))
    }

    /// Sockets on this node: the total, per tenant, and how many are anonymous.
    fn local_counts(&self) -> (usize, BTreeMap<String, usize>, usize) {
        let mut tenants = BTreeMap::new();
        let (mut total, mut anonymous) = (0, 0);
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return (0, tenants, 0) };
        for socket in op.sockets() {
            let Some(session) = socket.extensions.get::<Arc<Session>>() else { continue };
            total += 1;
            let identity = session.identity();
            match identity.tenant_id.as_deref() {
                Some(t) => *tenants.entry(t.to_string()).or_default() += 1,
                None if !identity.is_authenticated() => anonymous += 1,
                None => {}
            }
        }
        (total, tenants, anonymous)
    }
}

//! The Admin UI protocol's payloads, built from what the engine's roster shows: a socket, this
//! server's `server_stats`, the `config` with the features supported, and the per-second counts
//! of connections and disconnections (`aggregatedEvents`).
//!
//! The shapes are the official server's (`@socket.io/admin-ui` 0.5, `lib/typed-events.ts`), so
//! the official UI reads them unchanged. Ids are public ids: a socket's `id` is the one its
//! clients and everyone else know it by, and `clientId` groups the sockets of one connection
//! without being its Engine.IO session id.

use std::{collections::BTreeMap, time::Instant};

use serde_json::{Value, json};

use super::handshake;
use crate::engine::{ClientCounts, SocketView};

/// The features this server supports, as the UI names them.
pub fn features(readonly: bool, detail: bool) -> Vec<&'static str> {
    let mut features = Vec::new();
    // Disconnecting a socket (or its whole client) is the one action offered. Joining and
    // leaving rooms and emitting to them are not: they would go around the specs' access rules
    // and the tenant scoping of rooms.
    if !readonly {
        features.push("DISCONNECT");
    }
    // The dashboard counts from `server_stats`, which covers every node of a cluster.
    features.push("AGGREGATED_EVENTS");
    // Sockets, rooms and clients are listed and followed live.
    if detail {
        features.push("ALL_EVENTS");
    }
    features
}

/// One socket, as `all_sockets` and `socket_connected` carry it.
pub fn socket(view: &SocketView<'_>) -> Value {
    let identity = &view.identity;
    let mut handshake = json!({
        "address": view.address.map(|a| a.to_string()),
        "headers": {},
        "query": {},
        "issued": view.connected_at_ms,
        "time": humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(view.connected_at_ms)
        ).to_string(),
        "secure": false,
        "xdomain": false,
        "url": "",
    });
    if let Some(parts) = view.request {
        let query = handshake::query(parts);
        handshake["url"] = json!(handshake::url(parts, &query));
        handshake["query"] = Value::Object(query.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        handshake["headers"] = Value::Object(handshake::headers(parts));
        handshake["xdomain"] = json!(parts.headers.contains_key(http::header::ORIGIN));
        handshake["secure"] =
            json!(parts.headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https")));
    }
    json!({
        "id": view.id.to_string(),
        "clientId": view.client.to_string(),
        "transport": view.transport,
        "nsp": view.namespace,
        "data": {
            "userId": identity.user_id.as_deref(),
            "tenantId": identity.tenant_id.as_deref(),
            "roles": identity.roles.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
            "authenticated": identity.is_authenticated(),
        },
        "handshake": handshake,
        "rooms": view.rooms,
    })
}

/// Who this server is in `server_stats`.
#[derive(Debug)]
pub struct ServerInfo {
    /// The id the UI groups stats by: `hostname#pid`, unique among nodes on one host.
    pub id: String,
    /// The host's name.
    pub hostname: String,
    /// This process.
    pub pid: u32,
    /// When it started.
    pub started: Instant,
}

impl ServerInfo {
    /// This process.
    pub fn current() -> Self {
        let hostname = hostname();
        let pid = std::process::id();
        Self { id: format!("{hostname}#{pid}"), hostname, pid, started: Instant::now() }
    }
}

/// The host's name (`localhost` if it cannot be read).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// This server's `server_stats`.
pub fn server_stats(
    server: &ServerInfo,
    clients: ClientCounts,
    namespaces: &[(String, usize)],
    events: Vec<Value>,
) -> Value {
    json!({
        "serverId": server.id,
        "hostname": server.hostname,
        "pid": server.pid,
        "uptime": server.started.elapsed().as_secs_f64(),
        "clientsCount": clients.clients,
        "pollingClientsCount": clients.polling,
        "aggregatedEvents": events,
        "namespaces": namespaces
            .iter()
            .map(|(name, count)| json!({ "name": name, "socketsCount": count }))
            .collect::<Vec<_>>(),
    })
}

/// Connections and disconnections per second, by kind, since the last `server_stats`.
#[derive(Debug, Default)]
pub struct EventCounts {
    counts: BTreeMap<(u64, &'static str, Option<&'static str>), u64>,
}

impl EventCounts {
    /// Counts one `kind` (`rawConnection`, `rawDisconnection`) with its detail (a disconnection's
    /// reason) in the second of `now_ms`.
    pub fn count(&mut self, now_ms: u64, kind: &'static str, detail: Option<&'static str>) {
        *self.counts.entry((now_ms - now_ms % 1000, kind, detail)).or_default() += 1;
    }

    /// The counts as `aggregatedEvents`, emptied.
    pub fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((timestamp, kind, detail), count)| {
                let mut event = json!({ "timestamp": timestamp, "type": kind, "count": count });
                if let Some(detail) = detail {
                    event["subType"] = json!(detail);
                }
                event
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_offers_no_action_and_production_lists_no_socket() {
        assert_eq!(features(false, true), ["DISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]);
        assert_eq!(features(true, true), ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
        assert_eq!(features(true, false), ["AGGREGATED_EVENTS"]);
    }

    #[test]
    fn events_are_counted_per_second_and_kind_then_emptied() {
        let mut counts = EventCounts::default();
        counts.count(1_000_100, "rawConnection", None);
        counts.count(1_000_900, "rawConnection", None);
        counts.count(1_001_000, "rawDisconnection", Some("transport close"));
        let taken = counts.take();
        assert_eq!(taken[0], json!({ "timestamp": 1_000_000, "type": "rawConnection", "count": 2 }));
        assert_eq!(
            taken[1],
            json!({ "timestamp": 1_001_000, "type": "rawDisconnection", "subType": "transport close", "count": 1 })
        );
        assert!(counts.take().is_empty());
    }
}

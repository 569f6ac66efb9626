//! What a client of each served spec may send and will receive, as JSON for tools and pages
//! (`GET /api/v1/namespaces`, the example page's ready-made forms).
//!
//! A view written for that purpose, not the compiled model serialized: it says what a client
//! sees (event names, payload schemas, limits, visible room patterns, what published events
//! arrive as), never how the engine does it, so the model can change without changing this
//! shape. Nothing in a spec is secret; this leaves out only the file a spec came from (a path on
//! the server) and the actions' internals.

use serde::Serialize;
use serde_json::Value;

use super::{AccessRule, EventSpec, NamespaceSpec, RateLimit, RoomFamily, Route, Transport};
use crate::rooms::RoomScope;

/// One served spec.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceView {
    /// The Socket.IO namespace, or the HTTP path of a plain WebSocket endpoint.
    pub path: String,
    /// `socketio` or `websocket` (a plain WebSocket speaking `{type, timestamp, data}`).
    pub transport: &'static str,
    /// Who may connect.
    pub auth: AuthView,
    /// The events a client may send, by name.
    pub client_events: Vec<ClientEventView>,
    /// Room families, in the order names are matched.
    pub rooms: Vec<RoomView>,
    /// Events the spec itself sends by a fixed name (welcomes, replies, routes, timers), sorted;
    /// `error` is always sent too.
    pub server_events: Vec<String>,
    /// How published events reach the rooms.
    pub routes: Vec<RouteView>,
}

/// The auth policy as a client meets it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthView {
    /// A valid token is needed (otherwise anonymous sockets connect).
    pub required: bool,
    /// Tokens must carry `tenantId`.
    pub require_tenant: bool,
    /// The event that replaces a connected socket's token (Socket.IO only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_event: Option<String>,
    /// The token may also come from the `AUTH_COOKIE_NAME` cookie.
    pub cookie: bool,
    /// A service may connect with `X-API-Key` and `?tenantId=` (plain WebSocket only).
    pub api_keys: bool,
}

/// A client event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientEventView {
    /// Its name.
    pub name: String,
    /// The JSON Schema of its payload as the spec wrote it; absent when any payload (or none)
    /// is taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Requests per socket per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitView>,
    /// The largest payload in bytes, when the spec sets one (else `WS_MAX_EVENT_SIZE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
}

/// `max` per `perMs` milliseconds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitView {
    /// Requests per window (also the burst).
    pub max: u32,
    /// The window in milliseconds.
    pub per_ms: u64,
}

/// A room family.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    /// The family's name in the spec.
    pub name: String,
    /// The visible-name pattern, such as `logs:{resourceId?}:{logLevel?}`.
    pub pattern: String,
    /// `tenant` (one room per tenant) or `global`.
    pub scope: &'static str,
    /// Joined on connect only; clients cannot join or leave it.
    pub server_only: bool,
    /// Subscription filters a join may choose.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Who may join: any rule suffices; none means any authenticated socket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessView>,
}

/// One access rule, without its parameter templates (they say "your own id", which the
/// parameter's name already does).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessView {
    /// Anonymous sockets qualify.
    pub anonymous: bool,
    /// Roles, any of which qualifies (empty: any role).
    pub roles: Vec<String>,
    /// Parameters that must equal something of the socket's (its user id, its tenant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_params: Vec<String>,
}

/// Where published events of some types go.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    /// Event types (`name`, `prefix.*` or `*`); the first matching route is used.
    pub types: Vec<String>,
    /// Fields of `data` the API insists on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// The room families reached.
    pub rooms: Vec<String>,
    /// The event clients receive; `null` when it is computed from the published event (the
    /// shipped specs use the event's own type).
    pub event: Option<String>,
}

/// Describes `spec`.
pub fn describe(spec: &NamespaceSpec) -> NamespaceView {
    let mut client_events: Vec<ClientEventView> = spec.events.values().map(client_event).collect();
    client_events.sort_by(|a, b| a.name.cmp(&b.name));
    let mut server_events = spec.server_events.clone();
    server_events.sort();
    server_events.dedup();
    NamespaceView {
        path: spec.path.clone(),
        transport: spec.transport.name(),
        auth: AuthView {
            required: spec.auth.required,
            require_tenant: spec.auth.require_tenant,
            refresh_event: (spec.transport == Transport::SocketIo).then(|| spec.auth.refresh_event.clone()),
            cookie: spec.auth.cookie,
            api_keys: spec.auth.api_keys,
        },
        client_events,
        rooms: spec.rooms.iter().map(room).collect(),
        server_events,
        routes: spec.routes.iter().map(|r| route(spec, r)).collect(),
    }
}

fn client_event(event: &EventSpec) -> ClientEventView {
    ClientEventView {
        name: event.name.clone(),
        payload: event.schema.as_ref().map(|s| s.raw().clone()),
        rate_limit: event.rate_limit.map(rate_limit),
        max_bytes: event.max_bytes,
    }
}

fn rate_limit(limit: RateLimit) -> RateLimitView {
    RateLimitView { max: limit.max, per_ms: u64::try_from(limit.per.as_millis()).unwrap_or(u64::MAX) }
}

fn room(family: &RoomFamily) -> RoomView {
    let params = family.pattern.params();
    RoomView {
        name: family.name.clone(),
        pattern: family.pattern.source(),
        scope: match family.scope {
            RoomScope::Tenant => "tenant",
            RoomScope::Global => "global",
        },
        server_only: family.server_only,
        filters: family.filters.clone(),
        access: family.access.iter().map(|rule| access(rule, params)).collect(),
    }
}

fn access(rule: &AccessRule, params: &[crate::rooms::Param]) -> AccessView {
    AccessView {
        anonymous: rule.anonymous,
        roles: rule.roles.clone(),
        bound_params: rule.params.iter().filter_map(|(i, _)| params.get(*i).map(|p| p.name.clone())).collect(),
    }
}

fn route(spec: &NamespaceSpec, route: &Route) -> RouteView {
    let mut rooms: Vec<String> =
        route.targets.iter().filter_map(|t| spec.rooms.get(t.room).map(|f| f.name.clone())).collect();
    rooms.dedup();
    RouteView {
        types: route.types.patterns(),
        require: route.require.clone(),
        rooms,
        event: route.emit.event.as_literal().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::load_embedded;

    fn shipped(path: &str, transport: Transport) -> NamespaceView {
        let specs = load_embedded().expect("the shipped specs load");
        describe(specs.iter().find(|s| s.path == path && s.transport == transport).expect("the spec is shipped"))
    }

    #[test]
    fn client_events_carry_their_schema_and_limits() {
        let view = serde_json::to_value(shipped("/workflow", Transport::SocketIo)).unwrap();
        assert_eq!(view["transport"], "socketio");
        assert_eq!(
            view["auth"],
            json!({ "required": true, "requireTenant": true, "refreshEvent": "auth:refresh", "cookie": false, "apiKeys": false })
        );
        let names: Vec<&str> =
            view["clientEvents"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["get_status", "ping", "subscribe", "unsubscribe"]);
        let subscribe = &view["clientEvents"][2];
        assert_eq!(subscribe["rateLimit"], json!({ "max": 10, "perMs": 60000 }));
        assert_eq!(
            subscribe["payload"]["properties"]["type"]["enum"],
            json!(["workflow", "execution", "logs", "metrics", "tenant_activity"])
        );
    }

    #[test]
    fn rooms_routes_and_server_events_are_what_clients_see() {
        let view = serde_json::to_value(shipped("/workflow", Transport::SocketIo)).unwrap();
        let logs = view["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "logs").unwrap();
        assert_eq!(logs["pattern"], "logs:{resourceId?}:{logLevel?}:{stepId?}");
        assert_eq!(
            view["rooms"][0],
            json!({ "name": "tenant", "pattern": "tenant", "scope": "tenant", "serverOnly": true })
        );
        assert_eq!(
            view["routes"][0],
            json!({ "types": ["workflow.*"], "require": ["workflowId"], "rooms": ["workflow", "tenant_activity"], "event": "update" })
        );
        let events = view["serverEvents"].as_array().unwrap();
        for name in ["connected", "update", "initial_data", "tenant_stats", "pong"] {
            assert!(events.iter().any(|e| e == name), "{name} in {events:?}");
        }

        let ws = serde_json::to_value(shipped("/ws", Transport::SocketIo)).unwrap();
        let tenant_admins = ws["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "tenant_admins").unwrap();
        assert_eq!(
            tenant_admins["access"],
            json!([{ "anonymous": false, "roles": ["admin", "tenant_admin"], "boundParams": ["tenantId"] }])
        );
        assert_eq!(ws["routes"][2]["event"], Value::Null, "routed under the event's own type");
    }

    #[test]
    fn a_plain_websocket_endpoint_says_so() {
        let view = serde_json::to_value(shipped("/ws", Transport::WebSocket)).unwrap();
        assert_eq!(view["transport"], "websocket");
        assert_eq!(view["auth"]["apiKeys"], true);
        assert!(view["auth"].get("refreshEvent").is_none());
        let executions = view["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "executions").unwrap();
        assert_eq!(executions["filters"], json!(["workflow_id", "execution_id", "status"]));
    }
}

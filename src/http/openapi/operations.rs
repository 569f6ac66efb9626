//! What each operation of the API takes and answers: one function per route, named after its
//! handler, which `Routes` files under the route's method and path where the route is
//! registered (`http::router`, `page::router`). When a handler learns to answer a new status, its
//! function here gains one line.

use serde_json::json;

use super::{operation::Operation, schemas::schema_ref};

const API: &str = "API";
const OPERATIONS: &str = "Operations";
const PAGE: &str = "Example page";
const WEBSOCKET: &str = "Plain WebSocket";

/// The API's body errors: 400 for what the endpoint does not take, 413 over the limit.
fn body_errors(op: Operation) -> Operation {
    op.error(400, "The body is not what the endpoint takes; the message names the field.")
        .error(413, "The body is over `API_MAX_BODY_SIZE`.")
}

/// Publishing refused whole while the node stops.
fn stopping(op: Operation) -> Operation {
    op.error(503, "The node is stopping and took nothing: send it again, to another node.")
}

/// A key of `TENANT_API_KEYS` acts for its own tenant only.
fn tenant_scoped(op: Operation) -> Operation {
    op.error(403, "A tenant-scoped key (`TENANT_API_KEYS`) named another tenant, or rooms every tenant shares.")
}

/// The writes run once per `Idempotency-Key` (the `idempotency::once` layer); `success` is
/// their 2xx statuses, which a repeat answers again.
fn idempotent(op: Operation, success: &[u16]) -> Operation {
    let op = op
        .request_header(
            "Idempotency-Key",
            "Runs the call once within `IDEMPOTENCY_WINDOW`: a repeat gets the first answer again and delivers nothing.",
            json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }),
        )
        .error(409, "A call with the same `Idempotency-Key` (or an event with the same `id`) is still running.")
        .error(422, "The `Idempotency-Key` was used for another body.");
    success.iter().fold(op, |op, status| {
        op.optional_header(*status, "Idempotent-Replayed", "`true` on a repeat's answer.", json!({ "const": "true" }))
    })
}

/// `POST /api/v1/events`.
pub(crate) fn publish_events() -> Operation {
    let op = Operation::new("publishEvents", API, "Publish domain events, routed by the specs")
        .describe("One event or an array of up to `API_MAX_BATCH`, checked whole before anything is delivered.")
        .with_api_key()
        .json_body("An event, or an array of them.", schema_ref("PublishBody"))
        .body_example(
            "event",
            json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1", "workflowId": "w1", "status": "running" } }),
        )
        .body_example(
            "batch",
            json!([
                { "type": "log.created", "tenantId": "t1", "data": { "executionId": "e1", "level": "error", "message": "boom" } },
                { "type": "metrics.updated", "tenantId": "t1", "data": { "running": 3 }, "timestamp": "2024-01-15T10:30:00.000Z" },
            ]),
        )
        .json(202, "Delivered to every matching socket on this node; in a cluster, on the bus to every node.", schema_ref("Accepted"));
    idempotent(tenant_scoped(stopping(body_errors(op))), &[202])
}

/// `POST /api/v1/emit`.
pub(crate) fn emit() -> Operation {
    let op = Operation::new("emit", API, "Emit an event as is to rooms, by the names clients see")
        .describe("For what no route covers. Tenant rooms need `tenantId`.")
        .with_api_key()
        .json_body("What to emit where.", schema_ref("EmitBody"))
        .body_example(
            "global",
            json!({ "namespace": "/ws", "rooms": ["platform.health"], "event": "platform.health.changed", "data": { "status": "ok" } }),
        )
        .body_example(
            "tenant",
            json!({ "namespace": "/ws", "rooms": "tenant.t1.users", "event": "announcement", "data": { "text": "hi" }, "tenantId": "t1" }),
        )
        .json(202, "Emitted.", schema_ref("EmitAccepted"));
    idempotent(tenant_scoped(stopping(body_errors(op))), &[202])
}

/// `POST /api/v1/notifications`.
pub(crate) fn notify() -> Operation {
    let op = Operation::new("sendNotification", API, "Notify a user or a channel")
        .describe("The seeds' `notificationsService.send`. With `enableAcknowledgments`, waits up to `ackTimeoutMs` for clients' acks and counts them.")
        .with_api_key()
        .json_body("The recipient, the content and the tenant.", schema_ref("NotificationBody"))
        .body_example(
            "user",
            json!({ "recipient": { "userId": "u1" }, "content": { "subject": "Welcome", "body": "Hello" }, "tenantId": "t1" }),
        )
        .body_example(
            "channelWithAcks",
            json!({
                "recipient": { "channel": "news" },
                "content": { "subject": "Release", "body": "1.2 is out", "data": { "version": "1.2" } },
                "tenantId": "t1",
                "enableAcknowledgments": true,
                "ackTimeoutMs": 200,
            }),
        )
        .json(202, "Sent, without counting acks (through the tenant's bridge: written to its peer).", schema_ref("NotificationQueued"))
        .json(
            200,
            "Sent, with the acks that came back in time (through the tenant's bridge: the peer's ack).",
            schema_ref("NotificationDelivered"),
        )
        .error(502, "The tenant's outbound bridge lost its connection before the peer acknowledged.")
        .error(504, "The tenant's outbound bridge's peer did not acknowledge within the timeout.");
    idempotent(tenant_scoped(stopping(body_errors(op))), &[200, 202])
}

/// `GET /api/v1/stats`.
pub(crate) fn stats() -> Operation {
    Operation::new("stats", API, "Sockets per namespace and tenant over the whole cluster")
        .describe("With `room` (and `tenantId` for a tenant room), also how many sockets are in that room.")
        .with_api_key()
        .query("namespace", "Only this namespace, such as `/ws`.", json!({ "type": "string", "examples": ["/ws"] }))
        .query(
            "room",
            "A room, by the name clients see, to count the sockets of.",
            json!({ "type": "string", "examples": ["platform.health"] }),
        )
        .query(
            "tenantId",
            "The tenant of `room`, when it is a tenant room.",
            json!({ "type": "string", "examples": ["t1"] }),
        )
        .json(200, "The counts.", schema_ref("Stats"))
        .error(400, "No such namespace, or a room name that is not one of its rooms.")
        .error(403, "A tenant-scoped key (`TENANT_API_KEYS`) named another tenant, or a room every tenant shares.")
}

/// `GET /api/v1/bridges`.
pub(crate) fn bridges() -> Operation {
    Operation::new("bridges", API, "Outbound bridges and their state")
        .describe(
            "Each external provider's bridge once (`BRIDGES_FILE` and run-time changes): its peer (without credentials), \
             state, last error, attempts, messages each way, and in a cluster the node holding it. Platform keys only.",
        )
        .with_api_key()
        .json(200, "The bridges.", schema_ref("Bridges"))
        .error(403, "A tenant-scoped key (`TENANT_API_KEYS`): the bridges' status is the operator's.")
}

/// `POST /api/v1/bridges/{name}/query`.
pub(crate) fn bridge_query() -> Operation {
    Operation::new("queryBridge", API, "Ask a bridge's peer and wait for its answer (request-response)")
        .describe(
            "Seed 003's `query`: sends `event` with `data` to the peer and answers with its acknowledgment (a Socket.IO \
             ack, or a `ws` peer's `{event: \"ack\", id, data}`), waiting up to `timeout` ms (the provider's \
             `requestTimeout` when not given). The provider needs `enableRequestResponse`. A platform key, or the \
             bridge's tenant's key.",
        )
        .with_api_key()
        .path_param("name", "The bridge's name.", json!({ "type": "string", "minLength": 1, "maxLength": 100 }))
        .json_body("What to ask, such as `{\"event\": \"user:info\", \"data\": {\"userId\": \"12345\"}, \"timeout\": 10000}`.", schema_ref("BridgeQuery"))
        .json(200, "The peer's answer.", schema_ref("BridgeAnswer"))
        .error(400, "The body is not `{event, data, timeout}`, or the provider does not take queries (`enableRequestResponse`).")
        .error(404, "No bridge of that name, or not one of this tenant key's.")
        .error(413, "The body is over `API_MAX_BODY_SIZE`.")
        .error(502, "The bridge lost its connection before the peer answered.")
        .error(503, "The bridge is not connected, has too many sends waiting, or (in a cluster) no node holds it right now.")
        .error(504, "The peer did not answer within the timeout (or, in a cluster, the node holding the bridge did not).")
}

/// The path parameter of the tenant provider routes.
fn tenant_path(op: Operation) -> Operation {
    op.path_param(
        "tenantId",
        "The tenant.",
        json!({ "type": "string", "minLength": 1, "maxLength": 200, "examples": ["t-provider"] }),
    )
}

/// Who may configure a tenant's provider.
fn provider_keys(op: Operation) -> Operation {
    op.error(
        403,
        "A tenant-scoped key (`TENANT_API_KEYS`) while `BRIDGE_TENANT_CONFIG` is off, or one of another tenant.",
    )
}

/// `PUT /api/v1/tenants/{tenantId}/providers/websocket`.
pub(crate) fn put_provider() -> Operation {
    let op = Operation::new("putProvider", API, "Set a tenant's websocket provider at run time")
        .describe(
            "Seed 003's `tenantService.updateProviderConfig`: the provider configuration, checked as a `BRIDGES_FILE` \
             entry is, replaces the tenant's whole (its bridge keeps its name; a new one is `tenant-{tenantId}`). An \
             external provider's bridge is replaced (the old connection closed, then the new one opened); `mode: \
             internal` or `enabled: false` stops it. Alone, applied before the answer and kept until a restart; in a \
             cluster, stored in Redis and applied by every node within a second.",
        )
        .with_api_key();
    let op = tenant_path(op)
        // The example is internal: an external one would make its tenant's notifications 503
        // (not connected) in every operation schemathesis tries after it.
        .json_body("The seed's provider configuration (docs/bridges.md shows external ones).", schema_ref("Provider"))
        .body_example(
            "internal",
            json!({ "providerType": "websocket", "channel": "websocket", "mode": "internal", "enabled": true }),
        )
        .json(200, "The provider as now configured, credentials redacted.", schema_ref("ProviderView"))
        .error(503, "In a cluster: Redis could not store the change; nothing changed.");
    provider_keys(body_errors(op))
}

/// `GET /api/v1/tenants/{tenantId}/providers/websocket`.
pub(crate) fn get_provider() -> Operation {
    let op = Operation::new("getProvider", API, "A tenant's websocket provider, credentials redacted")
        .describe("From `BRIDGES_FILE` (`source: file`) or a run-time change (`source: api`).")
        .with_api_key();
    let op = tenant_path(op)
        .json(200, "The provider.", schema_ref("ProviderView"))
        .error(400, "A `tenantId` that is no tenant id.")
        .error(404, "The tenant has no websocket provider configured.");
    provider_keys(op)
}

/// `GET /api/v1/presence`.
pub(crate) fn presence() -> Operation {
    Operation::new("presence", API, "Who is connected to a room, or to a tenant, over every live node")
        .describe(
            "Users with their connection counts, asked of every live node (nothing is stored: a dead node's users are in no \
             answer given after it died). Without `room`, the namespace's users of `tenantId` (every tenant's, each with \
             its `tenantId`, when neither is given). Socket.IO namespaces and plain WebSocket endpoints alike (their \
             channels are rooms; a backend connected with an API key is the user `service`; a connection without \
             a user counts in `connections` only). `complete` is false when a node did not answer within a second.",
        )
        .with_api_key()
        .query(
            "namespace",
            "The Socket.IO namespace, or a plain WebSocket endpoint's path; `/` when not given.",
            json!({ "type": "string", "examples": ["/"] }),
        )
        .query(
            "transport",
            "`websocket`: the plain WebSocket endpoint at `namespace`, where a Socket.IO namespace has the same name \
             (the namespace is meant otherwise).",
            json!({ "type": "string", "enum": ["socketio", "websocket"] }),
        )
        .query(
            "room",
            "A room, by the name clients see, whose users to list.",
            json!({ "type": "string", "examples": ["system"] }),
        )
        .query(
            "tenantId",
            "The tenant of `room` when it is a tenant room; without `room`, the tenant whose users to list.",
            json!({ "type": "string", "examples": ["t1"] }),
        )
        .json(200, "Who is connected.", schema_ref("Presence"))
        .error(
            400,
            "No such namespace (or endpoint), a room name that is not one of its rooms, or a tenant room without `tenantId`.",
        )
        .error(403, "A tenant-scoped key (`TENANT_API_KEYS`) named another tenant, or a room every tenant shares.")
}

/// `GET /api/v1/events/stream`.
pub(crate) fn event_stream() -> Operation {
    Operation::new("eventStream", API, "The backend event stream: published events as Server-Sent Events")
        .describe(
            "Every event published to the gateway whose type matches, from every node, in order, each with its `id:`. \
             Resume with `Last-Event-ID`; `event: gap` when the history no longer holds everything after it. \
             A tenant-scoped key reads its own tenant's events only. The stream does not end.",
        )
        .with_api_key()
        .required_query(
            "types",
            "Event types, comma-separated: `name`, `prefix.*`, or `*` for all.",
            json!({ "type": "string", "minLength": 1, "examples": ["execution.*"] }),
        )
        .query("tenantId", "Only this tenant's events.", json!({ "type": "string", "minLength": 1 }))
        .request_header(
            "Last-Event-ID",
            "Resume after this event: the `id` of the last event received. Ids are `<ms>-<seq>.<index>`; \
             over a sharded cluster bus, one such slot per shard joined by `,` (what the consumer has had of each \
             shard), so a consumer resumes exactly on any node. Opaque to consumers.",
            json!({ "type": "string" }),
        )
        .text(
            200,
            "Server-Sent Events: per event its `event`, `id` and `data` (the event as JSON).",
            "text/event-stream",
        )
        .error(400, "`types` is missing or not patterns, or another parameter is unknown or unreadable.")
        .error(403, "A tenant-scoped key (`TENANT_API_KEYS`) asked for another tenant.")
}

/// `GET {path}`, a plain WebSocket endpoint's handshake.
pub(crate) fn native_upgrade(path: &str) -> Operation {
    Operation::new(&format!("connect{}", id_part(path)), WEBSOCKET, &format!("Open a plain WebSocket on `{path}`"))
        .describe(
            "A WebSocket handshake (`Upgrade: websocket`, `Sec-WebSocket-Key`). Credentials: `X-API-Key` (when the \
             spec allows API keys, with `?tenantId=`), or a client token as `?token=`, `Authorization: Bearer` or \
             the spec's cookie. The messages are `{type, timestamp, data}` envelopes (README).",
        )
        .security(&["tokenQuery", "bearer", "apiKey"])
        .query("tenantId", "With `X-API-Key`: the tenant the calling service acts for.", json!({ "type": "string" }))
        .empty(101, "Upgraded to a WebSocket.")
        .error(400, "An API key without the tenant it serves.")
        .error(401, "No credentials when they are required, or invalid or expired ones.")
        .error(403, "An `Origin` that is not one of `CORS_ORIGINS`, or a cookie token from one.")
        .error(426, "Not a WebSocket handshake.")
        .header(426, "Upgrade", "`websocket`.", json!({ "const": "websocket" }))
        .error(429, "Over the spec's connection limit for this address.")
}

/// `GET {path}/stats`.
pub(crate) fn native_stats(path: &str) -> Operation {
    Operation::new(
        &format!("stats{}", id_part(path)),
        WEBSOCKET,
        &format!("Statistics of `{path}` over the whole cluster"),
    )
    .describe("The Go hub's statistics. An API key sees every connection; a client token only its own tenant's.")
    .security(&["apiKey", "bearer", "tokenQuery"])
    .json(200, "The counts.", schema_ref("EndpointStats"))
    .error(401, "Neither an API key nor a valid token.")
    .header(401, "WWW-Authenticate", "`Bearer`.", json!({ "type": "string" }))
}

/// `GET /healthz`.
pub(crate) fn healthz() -> Operation {
    Operation::new("healthz", OPERATIONS, "Whether the process runs").public().json(
        200,
        "It runs.",
        schema_ref("Health"),
    )
}

/// `GET /readyz`.
pub(crate) fn readyz() -> Operation {
    Operation::new("readyz", OPERATIONS, "Whether to send traffic here")
        .describe("A node whose Redis is away is `degraded` but ready: it still serves its own sockets.")
        .public()
        .json(200, "`ready`, or `degraded` with the reason.", schema_ref("Readiness"))
        .json(503, "`draining`: the node is stopping.", schema_ref("Readiness"))
}

/// `GET /metrics`.
pub(crate) fn metrics() -> Operation {
    Operation::new("metrics", OPERATIONS, "Prometheus metrics").public().text(
        200,
        "Prometheus text format 0.0.4.",
        "text/plain",
    )
}

/// `GET /api/v1/openapi.json`.
pub(crate) fn openapi() -> Operation {
    Operation::new("openapi", API, "This document").public().json(
        200,
        "The OpenAPI 3.1 document of this gateway's HTTP API.",
        schema_ref("OpenApiDocument"),
    )
}

/// `GET /api/v1/namespaces`.
pub(crate) fn namespaces() -> Operation {
    Operation::new("namespaces", PAGE, "What each served spec lets a client send and receive")
        .describe("The specs' public contract, readable from any origin; the example page builds its forms from it.")
        .public()
        .json(200, "The catalog.", schema_ref("Catalog"))
}

/// `GET /api/v1/dev`.
pub(crate) fn dev_credentials() -> Operation {
    Operation::new("devCredentials", PAGE, "Dev mode's demo credentials, for the example page")
        .describe("Given only to a browser on the gateway's own machine, and only in dev mode.")
        .public()
        .json(200, "The credentials, or why there are none.", schema_ref("DevCredentials"))
}

/// A path as part of an operation id: `/ws/hub` is `WsHub`.
fn id_part(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|s| s[..1].to_ascii_uppercase() + &s[1..])
        .collect()
}

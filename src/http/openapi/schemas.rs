//! The document's components: the bodies the API takes and answers (JSON Schema 2020-12, the
//! dialect of OpenAPI 3.1) and its security schemes. Each schema says what the handler that reads
//! or writes that body checks (`engine::PublishedEvent::from_json` for events; `http::publish`
//! for emits and notifications); the handler stays the judge, and schemathesis holds every answer
//! to these shapes.

use serde_json::{Value, json};

use crate::engine::{MAX_EVENT_ID_LEN, MAX_EVENT_TYPE_LEN};

/// A reference to the component schema `name`.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `components`, with the limits this gateway runs with (most events or rooms in one call).
pub(super) fn components(max_batch: usize) -> Value {
    // Filed apart: one `json!` of every schema is past the macro's recursion limit.
    let mut components = json!({
        "securitySchemes": {
            "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "One of `API_KEYS`." },
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "One of `API_KEYS` as `Authorization: Bearer <key>`; on a plain WebSocket endpoint, a client token (JWT) too.",
            },
            "tokenQuery": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "A client token (JWT) in the query, for plain WebSocket clients that cannot set headers.",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["type", "message"],
                        "properties": {
                            "type": {
                                "type": "string",
                                "description": "The kind: `validation` (400, 413, 426), `auth` (401; 403 on a plain WebSocket handshake), `forbidden` (403: a tenant-scoped key outside its tenant), `conflict` (409), `idempotency` (422), `rate_limit` (429), `bad_gateway` (502: an outbound bridge lost its peer), `unavailable` (503), `timeout` (504: an outbound bridge's peer did not acknowledge), `not_found` (404).",
                            },
                            "message": { "type": "string", "description": "What is wrong, for people: the field and what it must be." },
                        },
                    },
                },
            },
            "Id": {
                "description": "An id, as a non-empty string or a number.",
                "anyOf": [{ "type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S" }, { "type": "number" }],
            },
            "Event": {
                "type": "object",
                "description": "A domain event. The specs' routes decide which rooms of which namespaces get it.",
                "required": ["type"],
                "additionalProperties": false,
                "properties": {
                    "type": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_EVENT_TYPE_LEN,
                        "pattern": "\\S",
                        "description": "Such as `execution.started`; no control characters.",
                        "examples": ["execution.started"],
                    },
                    "tenantId": {
                        "type": ["string", "number", "null"],
                        "minLength": 1,
                        "description": "The tenant; required when the type is routed to tenant rooms.",
                    },
                    "data": { "type": ["object", "null"], "description": "The payload; routes may require fields of it." },
                    "timestamp": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "description": "ISO 8601; default: when the gateway received it.",
                    },
                    "id": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "maxLength": MAX_EVENT_ID_LEN,
                        "description": "The publisher's id of the event: published once per tenant within `IDEMPOTENCY_WINDOW`; consumers get it as `eventId`.",
                    },
                },
            },
            "PublishBody": {
                "oneOf": [
                    schema_ref("Event"),
                    { "type": "array", "items": schema_ref("Event"), "maxItems": max_batch, "description": "Checked whole: one bad event and none is published." },
                ],
            },
            "Accepted": {
                "type": "object",
                "required": ["accepted"],
                "properties": {
                    "accepted": { "type": "integer", "minimum": 0, "description": "Events taken, those left out as duplicates included." },
                    "duplicates": { "type": "integer", "minimum": 1, "description": "Events whose `id` was already published for their tenant: left out." },
                },
            },
            "EmitBody": {
                "type": "object",
                "required": ["event"],
                "additionalProperties": false,
                "properties": {
                    "namespace": { "type": ["string", "null"], "description": "Default `/`.", "examples": ["/ws"] },
                    "rooms": { "$ref": "#/components/schemas/RoomNames" },
                    "room": { "$ref": "#/components/schemas/RoomNames", "description": "Same as `rooms`." },
                    "event": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "data": { "description": "Sent as is." },
                    "tenantId": {
                        "anyOf": [schema_ref("Id"), { "type": "null" }],
                        "description": "Needed for tenant rooms.",
                    },
                },
            },
            "RoomNames": {
                "description": "A room name, or a list of them, as clients see them.",
                "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" }, "maxItems": max_batch }],
            },
            "EmitAccepted": {
                "type": "object",
                "required": ["rooms"],
                "properties": { "rooms": { "type": "integer", "minimum": 0, "description": "Rooms emitted to." } },
            },
            "NotificationBody": {
                "type": "object",
                "required": ["recipient", "content"],
                "properties": {
                    "recipient": {
                        "type": "object",
                        "description": "Either `{userId}` or `{channel}`.",
                        "properties": { "userId": schema_ref("Id"), "channel": schema_ref("Id") },
                    },
                    "content": {
                        "type": "object",
                        "properties": {
                            "subject": { "type": ["string", "null"] },
                            "body": { "type": ["string", "null"] },
                            "data": { "description": "Sent as is; default `{}`." },
                        },
                    },
                    "tenantId": {
                        "allOf": [schema_ref("Id")],
                        "description": "Required with a key of `API_KEYS`; a tenant-scoped key's own tenant when left out.",
                    },
                    "enableAcknowledgments": { "type": ["boolean", "null"], "description": "Wait for clients' acks and count them." },
                    "acknowledgments": { "type": ["boolean", "null"], "description": "Same as `enableAcknowledgments`." },
                    "ackTimeoutMs": { "type": ["integer", "null"], "minimum": 1, "maximum": 30000, "description": "Default 5000." },
                },
            },
            "NotificationQueued": notification_queued(),
            "NotificationDelivered": notification_delivered(),
            "Stats": {
                "type": "object",
                "required": ["connections", "namespaces", "nodes"],
                "properties": {
                    "connections": { "type": "integer", "minimum": 0 },
                    "namespaces": {
                        "type": "object",
                        "description": "By namespace path.",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["connections", "tenants", "anonymous"],
                            "properties": {
                                "connections": { "type": "integer", "minimum": 0 },
                                "tenants": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 } },
                                "anonymous": { "type": "integer", "minimum": 0 },
                            },
                        },
                    },
                    "nodes": { "type": "integer", "minimum": 1 },
                    "room": {
                        "type": "object",
                        "description": "With `room` in the query.",
                        "required": ["namespace", "room", "tenantId", "sockets"],
                        "properties": {
                            "namespace": { "type": "string" },
                            "room": { "type": "string" },
                            "tenantId": { "type": ["string", "null"] },
                            "sockets": { "type": "integer", "minimum": 0 },
                        },
                    },
                },
            },
            "EndpointStats": {
                "type": "object",
                "description": "The Go hub's `GET /ws/stats`.",
                "required": ["total_clients", "total_users", "channels"],
                "properties": {
                    "total_clients": { "type": "integer", "minimum": 0 },
                    "total_users": { "type": "integer", "minimum": 0 },
                    "channels": {
                        "type": "object",
                        "required": ["register", "unregister", "broadcast"],
                        "properties": {
                            "register": { "type": "integer", "minimum": 0, "description": "Upgrades not yet registered." },
                            "unregister": { "type": "integer", "minimum": 0, "description": "Connections closing." },
                            "broadcast": { "type": "integer", "minimum": 0, "description": "Frames waiting in send buffers." },
                        },
                    },
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": { "status": { "const": "ok" } },
            },
            "Readiness": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": { "enum": ["ready", "degraded", "draining"] },
                    "reason": { "type": "string", "description": "Why degraded: the cluster's Redis is unreachable." },
                },
            },
            "Catalog": {
                "type": "object",
                "description": "What each served spec lets a client send and receive.",
                "required": ["socketio", "namespaces"],
                "properties": {
                    "socketio": {
                        "type": "object",
                        "required": ["path", "client"],
                        "properties": {
                            "path": { "type": "string" },
                            "client": {
                                "type": "object",
                                "required": ["version", "served"],
                                "properties": { "version": { "type": "string" }, "served": { "type": "boolean" } },
                            },
                        },
                    },
                    "namespaces": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path", "transport", "auth", "clientEvents", "rooms", "serverEvents", "routes"],
                            "properties": {
                                "path": { "type": "string" },
                                "transport": { "type": "string" },
                                "auth": { "type": "object" },
                                "clientEvents": { "type": "array", "items": { "type": "object" } },
                                "rooms": { "type": "array", "items": { "type": "object" } },
                                "serverEvents": { "type": "array", "items": { "type": "string" } },
                                "routes": { "type": "array", "items": { "type": "object" } },
                            },
                        },
                    },
                },
            },
            "DevCredentials": {
                "type": "object",
                "required": ["devMode"],
                "description": "`{devMode: false}`; in dev mode the demo credentials, or why they are withheld.",
                "properties": {
                    "devMode": { "type": "boolean" },
                    "userId": { "type": "string" },
                    "tenantId": { "type": "string" },
                    "token": { "type": "string" },
                    "apiKey": { "type": ["string", "null"], "description": "`null` when `API_KEYS` is set: a real key is never shown." },
                    "withheld": { "type": "string" },
                },
            },
            "OpenApiDocument": {
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": { "openapi": { "const": "3.1.0" } },
            },
        },
    });
    components["schemas"]["Bridges"] = bridges();
    components["schemas"]["BridgeQuery"] = bridge_query();
    components["schemas"]["BridgeAnswer"] = bridge_answer();
    components["schemas"]["Provider"] = provider();
    components["schemas"]["ProviderView"] = provider_view();
    components["schemas"]["Presence"] = presence();
    components
}

/// `GET /api/v1/bridges`'s answer (`bridge::Bridge::describe`).
fn bridges() -> Value {
    json!({
        "type": "object",
        "required": ["bridges"],
        "properties": {
            "bridges": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "tenantId", "protocol", "url", "state", "attempts", "messagesIn", "messagesOut"],
                    "properties": {
                        "name": { "type": "string" },
                        "tenantId": { "type": "string" },
                        "protocol": { "type": "string", "enum": ["socketio", "ws"] },
                        "url": { "type": "string", "description": "Without its query (where credentials may be)." },
                        "defaultChannels": { "type": "array", "items": { "type": "string" } },
                        "subscribeToEvents": { "type": "array", "items": { "type": "string" } },
                        "strategy": { "type": ["string", "null"] },
                        "requestResponse": { "type": "boolean", "description": "`enableRequestResponse`: it takes queries." },
                        "state": {
                            "type": "string",
                            "enum": ["connecting", "connected", "backing_off", "failed", "disabled", "waiting"],
                            "description": "`waiting`: in a cluster, no node holds it right now (one takes it over within seconds).",
                        },
                        "node": { "type": ["string", "null"], "description": "In a cluster, the node running it." },
                        "lastError": { "type": ["string", "null"] },
                        "cause": { "type": ["string", "null"] },
                        "attempts": { "type": "integer", "minimum": 0 },
                        "connectedSince": { "type": ["string", "null"] },
                        "messagesIn": { "type": "integer", "minimum": 0 },
                        "messagesOut": { "type": "integer", "minimum": 0 },
                    },
                },
            },
        },
    })
}

/// `POST /api/v1/bridges/{name}/query`'s body.
fn bridge_query() -> Value {
    json!({
        "type": "object",
        "required": ["event"],
        "additionalProperties": false,
        "properties": {
            "event": { "type": "string", "minLength": 1, "maxLength": 200, "description": "The event the peer answers." },
            "data": { "description": "Its payload." },
            "timeout": { "type": "integer", "minimum": 1, "maximum": 60000, "description": "Milliseconds; the provider's `requestTimeout` when not given." },
        },
    })
}

/// `POST /api/v1/bridges/{name}/query`'s answer.
fn bridge_answer() -> Value {
    json!({
        "type": "object",
        "required": ["bridge", "event", "response"],
        "properties": {
            "bridge": { "type": "string" },
            "event": { "type": "string" },
            "response": { "description": "What the peer answered (its ack's argument; several arguments as a list)." },
        },
    })
}

/// Seed 003's provider configuration (checked field by field by the gateway, as `BRIDGES_FILE`).
fn provider() -> Value {
    json!({
        "type": "object",
        "required": ["mode"],
        "description": "Seed 003's provider configuration: every field of the seed, nothing else (docs/bridges.md).",
        "properties": {
            "providerType": { "const": "websocket" },
            "channel": { "const": "websocket" },
            "mode": { "enum": ["internal", "external"] },
            "protocol": { "enum": ["ws", "socketio"] },
            "url": { "type": "string" },
            "enabled": { "type": "boolean" },
        },
    })
}

/// A provider as the API shows it.
fn provider_view() -> Value {
    json!({
        "type": "object",
        "required": ["tenantId", "name", "source", "provider"],
        "properties": {
            "tenantId": { "type": "string" },
            "name": { "type": "string", "description": "Its bridge's name." },
            "source": { "enum": ["file", "api"] },
            "provider": { "type": "object", "description": "The configuration, every credential replaced by `[redacted]`." },
        },
    })
}

/// The `NotificationQueued` schema.
fn notification_queued() -> Value {
    json!({
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "bridge": { "type": "string", "description": "The outbound bridge it went through, for a tenant in external mode." },
        },
    })
}

/// The `NotificationDelivered` schema.
fn notification_delivered() -> Value {
    json!({
        "type": "object",
        "description": "Sockets and acks on this gateway; through a tenant's outbound bridge, `{id, bridge, ack}` with the peer's ack.",
        "anyOf": [
            { "required": ["id", "sockets", "acknowledged"] },
            { "required": ["id", "bridge", "ack"] },
        ],
        "properties": {
            "bridge": { "type": "string" },
            "ack": { "description": "What the peer answered." },
            "id": { "type": "string", "format": "uuid" },
            "sockets": { "type": "integer", "minimum": 0, "description": "Sockets it was sent to." },
            "acknowledged": { "type": "integer", "minimum": 0, "description": "Of those, how many acknowledged in time." },
        },
    })
}

/// `GET /api/v1/presence`'s answer.
fn presence() -> Value {
    json!({
        "type": "object",
        "required": ["namespace", "transport", "room", "tenantId", "users", "connections", "nodes", "complete", "truncated"],
        "properties": {
            "namespace": { "type": "string" },
            "transport": {
                "type": "string",
                "enum": ["socketio", "websocket"],
                "description": "Whose connections: the Socket.IO namespace's or the plain WebSocket endpoint's.",
            },
            "room": { "type": ["string", "null"] },
            "tenantId": { "type": ["string", "null"] },
            "users": {
                "type": "array",
                "description": "Sorted by user id; at most 10,000.",
                "items": {
                    "type": "object",
                    "required": ["userId", "connections"],
                    "properties": {
                        "userId": { "type": "string" },
                        "connections": { "type": "integer", "minimum": 1 },
                        "tenantId": {
                            "type": ["string", "null"],
                            "description": "The user's tenant, when the query names none.",
                        },
                    },
                },
            },
            "connections": {
                "type": "integer",
                "minimum": 0,
                "description": "Every connection counted, anonymous ones included.",
            },
            "nodes": { "type": "integer", "minimum": 1, "description": "Nodes that answered, this one included." },
            "complete": { "type": "boolean", "description": "False when a node did not answer in time, or Redis is away." },
            "truncated": { "type": "boolean", "description": "True when users were left out to stay within 10,000." },
        },
    })
}

// The shapes of the gateway's HTTP API (README "The HTTP API"), as the SDK sends and reads them.

import type { PublishedData } from './generated';
import type { TenantId } from './tenant';

/** A JSON object. */
export type JsonObject = { [field: string]: unknown };

/** One event for `POST /api/v1/events`, routed to sockets by the namespace specs. */
export interface PublishEvent<Data extends JsonObject = JsonObject> {
  /** The event type, such as `commission:calculated` or `platform.security.alert`. */
  type: string;
  /** The tenant whose rooms it goes to; needed by every type routed to a tenant's rooms. */
  tenantId?: TenantId | null;
  /** The payload, an object; most namespaces deliver it as it is. */
  data?: Data;
  /** ISO 8601; the gateway stamps the time it received the event when there is none. */
  timestamp?: string;
  /**
   * The event's own id (1 to 255 characters), for idempotent publishing: the gateway delivers
   * an event whose id it has seen for the same tenant within its window only once. Sent only
   * when given.
   */
  id?: string;
}

/**
 * One event whose data is checked against what the namespace specs require of its type
 * (`src/generated/published.ts`, written by `realtime-gateway codegen typescript`): a type they
 * route, such as `queue:job-progress`, needs its `jobId`; a type they do not name takes any object.
 */
export type TypedPublishEvent<T extends string> = PublishEvent<PublishedData<T> & JsonObject> & { type: T };

/** `202 {"accepted": n}`. */
export interface PublishResult {
  accepted: number;
}

/** `POST /api/v1/emit`: an event sent as it is to rooms of one namespace, by their visible names. */
export interface EmitRequest {
  /** The namespace, such as `/ws`; `/` when absent. */
  namespace?: string;
  /** One room name or several. */
  rooms: string | string[];
  /** The event name clients receive. */
  event: string;
  /** Its payload (any JSON value). */
  data?: unknown;
  /** The tenant whose rooms are meant; needed for tenant rooms. */
  tenantId?: TenantId | null;
}

/** `202 {"rooms": n}`: how many rooms the emit named. */
export interface EmitResult {
  rooms: number;
}

/** `POST /api/v1/notifications`, seed 003's `notificationsService.send` body. */
export interface NotificationRequest {
  /** One user (every socket of it) or one channel. */
  recipient: { userId: string | number } | { channel: string };
  /** What clients receive as `notification:new` `{id, subject, body, data, timestamp}`. */
  content: { subject?: string | null; body?: string | null; data?: JsonObject };
  /** The tenant of the user or the channel. */
  tenantId?: TenantId | null;
  /** Wait for each reached socket to acknowledge, and count them. */
  enableAcknowledgments?: boolean;
  /** How long to wait for acknowledgments (ms; the gateway's default 5000, at most 30000). */
  ackTimeoutMs?: number;
}

/**
 * `202 {"id"}`, or with acknowledgments `200 {"id", "sockets", "acknowledged"}`: how many sockets
 * the notification reached and how many acknowledged it in time.
 */
export interface NotificationResult {
  id: string;
  sockets?: number;
  acknowledged?: number;
}

/** `GET /api/v1/stats` query: one namespace, and one room's size. */
export interface StatsQuery {
  namespace?: string;
  room?: string;
  tenantId?: TenantId | null;
}

/** One namespace in `GET /api/v1/stats`, over the whole cluster. */
export interface NamespaceStats {
  connections: number;
  /** Connections per tenant. */
  tenants: Record<string, number>;
  /** Connections without a signed-in user. */
  anonymous: number;
}

/** `GET /api/v1/stats`. */
export interface GatewayStats {
  connections: number;
  namespaces: Record<string, NamespaceStats>;
  nodes: number;
  /** With `room` in the query: how many sockets are in it, on every node. */
  room?: { namespace: string; room: string; tenantId: string | null; sockets: number };
}

/** `GET /api/v1/presence`: a room (a tenant room needs the tenant), or without `room` a tenant. */
export interface PresenceQuery {
  /** The Socket.IO namespace, or a plain WebSocket endpoint's path (default `/`). */
  namespace?: string;
  /**
   * `websocket`: the plain WebSocket endpoint at `namespace`, needed only where a Socket.IO
   * namespace has the same name (the shipped `/ws`); the namespace is meant otherwise.
   */
  transport?: 'socketio' | 'websocket';
  room?: string;
  tenantId?: TenantId | null;
}

/** One user in a presence answer. */
export interface PresentUser {
  userId: string;
  /** Its connections in the room (or tenant), over every node. */
  connections: number;
  /** Its tenant, when the answer spans tenants (no `tenantId` in the query). */
  tenantId?: string | null;
}

/** `GET /api/v1/presence`, over every live node. */
export interface Presence {
  namespace: string;
  /** Whose connections: the Socket.IO namespace's or the plain WebSocket endpoint's. */
  transport: 'socketio' | 'websocket';
  room: string | null;
  tenantId: string | null;
  /** Sorted by user id. */
  users: PresentUser[];
  /** Every connection counted, anonymous ones included. */
  connections: number;
  /** Nodes that answered, this one included. */
  nodes: number;
  /** False when a node did not answer in time (or Redis was unreachable): the answer is a part. */
  complete: boolean;
  /** True when users were left out to stay within the gateway's bound (10,000). */
  truncated: boolean;
}

/** `GET /ws/stats` (seed 001's hub statistics of a plain WebSocket endpoint). */
export interface HubStats {
  total_clients: number;
  total_users: number;
  channels: { register: number; unregister: number; broadcast: number };
}

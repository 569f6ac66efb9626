// Seed 003's notification sending (internal mode), as a backend calls it:
// `notificationsService.send({ recipient: { userId } | { channel }, content, tenantId, channel:
// 'websocket' })` and `websocketProvider.sendToChannel(channel, { subject, body, data })`. Both
// are the gateway's `POST /api/v1/notifications`, which namespaces/notifications.yaml delivers
// as `notification:new` `{id, subject, body, data, timestamp}` to the user's sockets or the
// channel's members on `/` (a user's notification also reaches `/ws` as `user.notification`).
//
// Only the `websocket` channel is the gateway's: `send` refuses another (`email`, `sms`) rather
// than deliver it as a socket notification. Calls go through the client's ordered queue, except
// those that wait for acknowledgments, which would hold every later call for up to their
// `ackTimeoutMs`.

import type { GatewayClient } from '../client';
import { GatewayUsageError } from '../errors';
import { payloadTenant, type TenantId } from '../tenant';
import type { JsonObject, NotificationRequest, NotificationResult } from '../types';
import { clientOf, type GatewayTarget } from './target';

/** Seed 003's `send` argument. */
export interface SendNotificationRequest {
  recipient: { userId: string | number } | { channel: string };
  content: { subject?: string; body?: string; data?: JsonObject };
  /** The tenant of the user or the channel (seed 003 passes numbers such as `1`). */
  tenantId?: TenantId;
  /** Seed 003's delivery channel: only `websocket` is the gateway's. */
  channel?: string;
  /** Wait for each reached socket's acknowledgment and count them. */
  enableAcknowledgments?: boolean;
  /** How long to wait for them (ms). */
  ackTimeoutMs?: number;
}

/** Seed 003's `sendToChannel` message. */
export interface ChannelMessage {
  subject?: string;
  body?: string;
  data?: JsonObject;
  /** The channel's tenant, when the client has no `tenantId`. */
  tenantId?: TenantId;
}

/** Sends one notification request in order with the client's other ordered calls. */
function sendInOrder(client: GatewayClient, request: NotificationRequest): Promise<NotificationResult> {
  return request.enableAcknowledgments ? client.notify(request) : client.notifyOrdered(request);
}

export class NotificationsService {
  /** The client it sends with. */
  readonly client: GatewayClient;

  constructor(target: GatewayTarget) {
    this.client = clientOf(target).client;
  }

  /** Notifies a user (every socket of it) or a channel's members; resolves to the gateway's answer. */
  async send(request: SendNotificationRequest): Promise<NotificationResult> {
    if (request.channel !== undefined && request.channel !== 'websocket') {
      throw new GatewayUsageError(
        `the gateway delivers notifications over websocket only; channel "${request.channel}" is not one of its`,
      );
    }
    const body: NotificationRequest = { recipient: request.recipient, content: request.content };
    if (request.tenantId !== undefined) body.tenantId = request.tenantId;
    if (request.enableAcknowledgments !== undefined) body.enableAcknowledgments = request.enableAcknowledgments;
    if (request.ackTimeoutMs !== undefined) body.ackTimeoutMs = request.ackTimeoutMs;
    return sendInOrder(this.client, body);
  }
}

export class WebSocketProvider {
  /** The client it sends with. */
  readonly client: GatewayClient;

  constructor(target: GatewayTarget) {
    this.client = clientOf(target).client;
  }

  /** `notification:new` to every member of `channel` on `/`. */
  async sendToChannel(channel: string, message: ChannelMessage): Promise<NotificationResult> {
    if (typeof channel !== 'string' || channel === '')
      throw new GatewayUsageError('sendToChannel needs a channel name');
    const content: NotificationRequest['content'] = {};
    if (message.subject !== undefined) content.subject = message.subject;
    if (message.body !== undefined) content.body = message.body;
    if (message.data !== undefined) content.data = message.data;
    const body: NotificationRequest = { recipient: { channel }, content };
    const tenantId = payloadTenant(message);
    if (tenantId !== undefined) body.tenantId = tenantId;
    return sendInOrder(this.client, body);
  }
}

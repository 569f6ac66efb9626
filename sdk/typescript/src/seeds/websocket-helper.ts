// Seed 002's `WebSocketHelper` (the helper of the NestJS gateway of namespace `/ws`), as a backend
// calls it. Each method publishes the event type that namespaces/ws.yaml routes to the room the
// seed's helper sent to, under the event name the seed's frontends listen for:
//
// - `sendUserNotification(userId, n)`: `user.notification` with data `n` plus `userId`, to
//   `user.{userId}.notifications`;
// - `sendToPlatformAdmins(event, data)`: `platform.{event}` to `platform.admins` (and also to
//   `platform.security` or `platform.health` for those families, whose members are the same);
// - `sendTenantDataUpdate(tenantId, update)`: `tenant.data.update` to `tenant.{tenantId}.users`.
//
// Published events (not raw emits) because seed 002's helper published on its event bus, which
// `subscribeToEvents` listens to: other backends see these events on the gateway's event stream.
// `sendUserNotification` adds `userId` to the data (the route needs it to find the room), so the
// frontend's `user.notification` payload carries it too.
//
// `subscribeToEvents(pattern, handler, options)` subscribes to the gateway's event stream for
// backends (src/stream.ts); it needs a gateway that serves `GET /api/v1/events/stream`.

import type { GatewayClient } from '../client';
import { GatewayUsageError } from '../errors';
import type { EventSubscription, StreamHandler, SubscribeOptions } from '../stream';
import { payloadTenant, type TenantId } from '../tenant';
import type { JsonObject } from '../types';
import { clientOf, objectPayload, publishOrdered, type GatewayTarget } from './target';

/** The namespace these events go to. */
export const WS_NAMESPACE = '/ws';

/** The type `sendTenantDataUpdate` publishes, which namespaces/ws.yaml sends to the tenant's users. */
export const TENANT_DATA_UPDATE = 'tenant.data.update';

export class WebSocketHelper {
  /** The client it publishes with. */
  readonly client: GatewayClient;
  private readonly ownsClient: boolean;
  private readonly subscriptions = new Map<string, EventSubscription<JsonObject>>();

  constructor(target: GatewayTarget) {
    const { client, owned } = clientOf(target);
    this.client = client;
    this.ownsClient = owned;
  }

  /** `user.notification` to the user's `user.{userId}.notifications` room. */
  async sendUserNotification(userId: string | number, notification: JsonObject): Promise<void> {
    const data = { ...objectPayload(notification, 'sendUserNotification'), userId };
    await publishOrdered(
      this.client,
      'user.notification',
      data,
      payloadTenant(notification),
      "sendUserNotification's notification",
    );
  }

  /**
   * `platform.{event}` to the platform administrators (`sendToPlatformAdmins('security.alert', ..)`
   * reaches their `platform.security.alert` listeners). An event already named `platform.*` is
   * sent under that name. Platform rooms belong to no tenant.
   */
  async sendToPlatformAdmins(event: string, data: JsonObject): Promise<void> {
    if (typeof event !== 'string' || event.trim() === '' || event === 'platform.') {
      throw new GatewayUsageError('sendToPlatformAdmins needs an event name such as "security.alert"');
    }
    const type = event.startsWith('platform.') ? event : `platform.${event}`;
    const payload = objectPayload(data, 'sendToPlatformAdmins');
    await publishOrdered(this.client, type, payload, payloadTenant(payload), "sendToPlatformAdmins's data");
  }

  /** `tenant.data.update` to every user of the tenant (`tenant.{tenantId}.users`). */
  async sendTenantDataUpdate(tenantId: TenantId, update: JsonObject): Promise<void> {
    const payload = objectPayload(update, 'sendTenantDataUpdate');
    await publishOrdered(this.client, TENANT_DATA_UPDATE, payload, tenantId, 'sendTenantDataUpdate');
  }

  /**
   * Calls `handler` with every event published to the gateway whose type matches `pattern`
   * (`user.notification`, `platform.*`, `*`, or a list of them), from every node, in order,
   * until `unsubscribeFromEvents(id)` or `close()`. Returns the subscription's id at once, as the
   * seed did; the connection is made in the background and reconnects by itself. Its failures go
   * to `options.onError`, else to the client's `onError`. Needs a gateway that serves the
   * event stream (`GET /api/v1/events/stream`).
   */
  subscribeToEvents<Data = JsonObject>(
    pattern: string | readonly string[],
    handler: StreamHandler<Data>,
    options: SubscribeOptions = {},
  ): string {
    const subscription = this.client.subscribe<Data>(pattern, handler, options);
    const tracked = subscription as unknown as EventSubscription<JsonObject>;
    this.subscriptions.set(subscription.id, tracked);
    void subscription.done.then(() => this.subscriptions.delete(subscription.id));
    return subscription.id;
  }

  /** Stops a subscription; `false` when there is none of that id (any more). */
  unsubscribeFromEvents(subscriptionId: string): boolean {
    const subscription = this.subscriptions.get(subscriptionId);
    if (subscription === undefined) return false;
    subscription.close();
    this.subscriptions.delete(subscriptionId);
    return true;
  }

  /** The subscription of that id, to read its state (`connected`, `lastEventId`). */
  subscription(subscriptionId: string): EventSubscription<JsonObject> | undefined {
    return this.subscriptions.get(subscriptionId);
  }

  /** Stops every subscription (and closes the client if this helper made it). */
  async close(): Promise<void> {
    const running = [...this.subscriptions.values()];
    for (const subscription of running) subscription.close();
    this.subscriptions.clear();
    await Promise.all(running.map((subscription) => subscription.done));
    if (this.ownsClient) await this.client.close();
  }

  /** NestJS calls it when the application stops. */
  async onModuleDestroy(): Promise<void> {
    await this.close();
  }
}

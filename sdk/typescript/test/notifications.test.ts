// Seed 003's NotificationsService and WebSocketProvider against the gateway binary: the seed's
// `send` calls (to a user, to a channel, with the seed's numeric tenant) and `sendToChannel`
// reach the socket.io-client frontends on `/` as `notification:new` `{id, subject, body, data,
// timestamp}`, and only those of that user or channel and tenant.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { GatewayUsageError, NotificationsService, WebSocketProvider } from '@realtime-gateway/sdk';

import {
  API_KEY,
  frontend,
  mintToken,
  request,
  startGateway,
  uid,
  type Frontend,
  type Gateway,
} from './support/gateway';

/** `notification:new` with its timestamp checked and set aside. */
function withoutTimestamp(notification: unknown): Record<string, unknown> {
  const { timestamp, ...rest } = notification as Record<string, unknown>;
  assert.ok(typeof timestamp === 'string' && !Number.isNaN(Date.parse(timestamp)), `timestamp ${String(timestamp)}`);
  return rest;
}

describe('NotificationsService and WebSocketProvider (seed 003)', { timeout: 60_000 }, () => {
  let gateway: Gateway;
  const sockets: Frontend[] = [];
  const connect = async (claims: Record<string, unknown>) => {
    const f = await frontend(gateway.url, '/', { token: mintToken(claims) });
    sockets.push(f);
    return f;
  };

  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    for (const f of sockets) f.close();
    await gateway?.stop();
  });

  it('sends to a user and to a channel as the seed does, with its numeric tenant', async () => {
    const tenant = 1;
    const user = await connect({ sub: 'user-123', tenantId: String(tenant) });
    const other = await connect({ sub: 'user-456', tenantId: String(tenant) });
    const stranger = await connect({ sub: 'user-123', tenantId: '2' });
    const notificationsService = new NotificationsService({ url: gateway.url, apiKey: API_KEY });

    // Seed 003, example 1, as written there.
    const toUser = await notificationsService.send({
      recipient: {
        userId: 'user-123',
      },
      content: {
        subject: 'New Message',
        body: 'You have a new message from John',
        data: {
          messageId: 'msg-456',
          from: 'John Doe',
        },
      },
      tenantId: 1,
      channel: 'websocket',
    });
    // Seed 003, example 2: every member of `alerts` (a default channel every socket is in).
    const toChannel = await notificationsService.send({
      recipient: {
        channel: 'alerts',
      },
      content: {
        subject: 'System Maintenance',
        body: 'System will be down for maintenance at 2 AM',
        data: {
          maintenanceWindow: '2025-01-09T02:00:00Z',
        },
      },
      tenantId: 1,
      channel: 'websocket',
    });

    const maintenance = {
      id: toChannel.id,
      subject: 'System Maintenance',
      body: 'System will be down for maintenance at 2 AM',
      data: { maintenanceWindow: '2025-01-09T02:00:00Z' },
    };
    const received = await user.until((_, data) => (data as { id: string }).id === toChannel.id);
    assert.deepEqual(
      received.map(([event]) => event),
      ['notification:new', 'notification:new'],
    );
    assert.deepEqual(withoutTimestamp(received[0]![1]), {
      id: toUser.id,
      subject: 'New Message',
      body: 'You have a new message from John',
      data: { messageId: 'msg-456', from: 'John Doe' },
    });
    assert.deepEqual(withoutTimestamp(received[1]![1]), maintenance);
    const otherReceived = await other.until((_, data) => (data as { id: string }).id === toChannel.id);
    assert.deepEqual(
      otherReceived.map(([, data]) => withoutTimestamp(data)),
      [maintenance],
      'another user gets the channel only',
    );

    // Tenant 2's user-123 and its `alerts` got neither: the next thing it receives is its own.
    const own = await new NotificationsService({ url: gateway.url, apiKey: API_KEY }).send({
      recipient: { channel: 'alerts' },
      content: { subject: 'tenant 2' },
      tenantId: 2,
    });
    const strangerReceived = await stranger.until((_, data) => (data as { id: string }).id === own.id);
    assert.equal(strangerReceived.length, 1);
  });

  it("sendToChannel reaches the channel's members of the client's tenant", async () => {
    const tenant = `t-${uid()}`;
    const member = await connect({ sub: 'u1', tenantId: tenant });
    const ack = (await request(member, 'channel:join', { channelName: 'security' })) as { success: boolean };
    assert.equal(ack.success, true);
    const outsider = await connect({ sub: 'u2', tenantId: tenant });
    const websocketProvider = new WebSocketProvider({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });

    // Seed 003's "Send to Channel (Provider Direct)", as written there.
    const sent = await websocketProvider.sendToChannel('security', {
      subject: 'Security Alert',
      body: 'New login detected from unknown location',
      data: {
        ip: '192.168.1.100',
        location: 'San Francisco, CA',
      },
    });
    assert.deepEqual(withoutTimestamp(await member.next('notification:new')), {
      id: sent.id,
      subject: 'Security Alert',
      body: 'New login detected from unknown location',
      data: { ip: '192.168.1.100', location: 'San Francisco, CA' },
    });
    const end = await websocketProvider.sendToChannel('alerts', { subject: 'end' });
    const outsiderReceived = await outsider.until((_, data) => (data as { id: string }).id === end.id);
    assert.equal(outsiderReceived.length, 1, 'a socket outside the channel got nothing before the end marker');
  });

  it('counts acknowledgments when asked', async () => {
    const tenant = `t-${uid()}`;
    const user = await connect({ sub: 'acker', tenantId: tenant });
    user.socket.on('notification:new', (_: unknown, ack?: () => void) => ack?.());
    const result = await new NotificationsService({ url: gateway.url, apiKey: API_KEY, tenantId: tenant }).send({
      recipient: { userId: 'acker' },
      content: { subject: 'ack me' },
      channel: 'websocket',
      enableAcknowledgments: true,
      ackTimeoutMs: 2000,
    });
    assert.deepEqual({ sockets: result.sockets, acknowledged: result.acknowledged }, { sockets: 1, acknowledged: 1 });
  });

  it("refuses a channel the gateway does not deliver, and another tenant than the client's", async () => {
    const service = new NotificationsService({ url: gateway.url, apiKey: API_KEY, tenantId: 'a' });
    await assert.rejects(
      service.send({ recipient: { userId: 'u1' }, content: { subject: 's' }, channel: 'email' }),
      (error: unknown) => error instanceof GatewayUsageError && /websocket only/.test(error.message),
    );
    await assert.rejects(service.send({ recipient: { userId: 'u1' }, content: {}, tenantId: 'b' }), GatewayUsageError);
    assert.equal(service.client.metrics.requests, 0);
  });
});

// GatewayClient against the gateway binary: each endpoint's call reaches socket.io-client
// frontends and answers its documented shape; the gateway's 400, 401 and 413 become typed errors
// carrying its body and are not retried; a gateway that hangs is a timeout, a closed port a
// network error, both retried before they are thrown.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  GatewayClient,
  GatewayError,
  GatewayNetworkError,
  GatewayTimeoutError,
  GatewayUsageError,
} from '@realtime-gateway/sdk';

import {
  API_KEY,
  freePort,
  frontend,
  mintToken,
  request,
  startGateway,
  uid,
  type Frontend,
  type Gateway,
} from './support/gateway';

describe('GatewayClient against the gateway', { timeout: 60_000 }, () => {
  let gateway: Gateway;
  const sockets: Frontend[] = [];
  const track = (f: Frontend) => {
    sockets.push(f);
    return f;
  };

  before(async () => {
    gateway = await startGateway({ env: { API_MAX_BODY_SIZE: '4096' } });
  });
  after(async () => {
    for (const f of sockets) f.close();
    await gateway?.stop();
  });

  it('publishes one event and a batch, which frontends receive in order', async () => {
    const tenant = `t-${uid()}`;
    const queue = track(
      await frontend(gateway.url, '/realtime', {
        token: mintToken({ tenantId: tenant }),
        welcome: 'connection:success',
      }),
    );
    await request(queue, 'subscribe:queue');
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY });
    const one = { type: 'queue:stats', tenantId: tenant, data: { waiting: 1 } };
    assert.deepEqual(await client.publish(one), { accepted: 1 });
    const batch = [1, 2, 3].map((n) => ({
      type: 'queue:job-progress',
      tenantId: tenant,
      data: { jobId: 'j', progress: n },
    }));
    assert.deepEqual(await client.publish(batch), { accepted: 3 });
    const received = await queue.until((_, data) => (data as { progress?: number }).progress === 3);
    assert.deepEqual(received, [
      ['queue:stats', { waiting: 1 }],
      ['queue:job-progress', { jobId: 'j', progress: 1 }],
      ['queue:job-progress', { jobId: 'j', progress: 2 }],
      ['queue:job-progress', { jobId: 'j', progress: 3 }],
    ]);
  });

  it('emits raw events to named rooms, notifies, and reads statistics', async () => {
    const tenant = `t-${uid()}`;
    const user = `u-${uid()}`;
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    const ws = track(
      await frontend(gateway.url, '/ws', {
        token: mintToken({ sub: user, tenantId: tenant }),
        welcome: 'connection.confirmed',
      }),
    );
    await request(ws, 'join_room', { room: 'global.general' });
    await ws.next('room_joined');

    assert.deepEqual(
      await client.emit({ namespace: '/ws', rooms: ['global.general'], event: 'chat.message', data: { text: 'hi' } }),
      { rooms: 1 },
    );
    assert.deepEqual(await ws.next('chat.message'), { text: 'hi' });

    const notifications = track(
      await frontend(gateway.url, '/', { token: mintToken({ sub: user, tenantId: tenant }) }),
    );
    notifications.socket.on('notification:new', (_: unknown, ack?: () => void) => ack?.());
    const sent = await client.notify({
      recipient: { userId: user },
      content: { subject: 'S', body: 'B', data: { k: 1 } },
    });
    assert.match(sent.id, /^[0-9a-f-]{36}$/);
    const note = (await notifications.next('notification:new')) as Record<string, unknown>;
    assert.deepEqual(
      { ...note, timestamp: typeof note['timestamp'] },
      { id: sent.id, subject: 'S', body: 'B', data: { k: 1 }, timestamp: 'string' },
    );
    const acked = await client.notify({
      recipient: { userId: user },
      content: { subject: 'acked' },
      enableAcknowledgments: true,
      ackTimeoutMs: 2000,
    });
    // The user's `/ws` socket gets it too (as `user.notification`), and does not acknowledge it.
    assert.deepEqual({ sockets: acked.sockets, acknowledged: acked.acknowledged }, { sockets: 2, acknowledged: 1 });
    assert.equal(((await ws.next('user.notification')) as { id: string }).id, sent.id);

    const stats = await client.stats({ namespace: '/ws', room: 'global.general' });
    assert.equal(stats.namespaces['/ws']!.tenants[tenant], 1);
    assert.deepEqual(stats.room, { namespace: '/ws', room: 'global.general', tenantId: tenant, sockets: 1 });
    const hub = await client.hubStats('/ws');
    assert.deepEqual(Object.keys(hub).sort(), ['channels', 'total_clients', 'total_users']);
    assert.equal(typeof hub.total_clients, 'number');
  });

  it('turns a 400 into a GatewayError with the API body, not retried', async () => {
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY, retries: 3 });
    const error = await client.publish({ type: 'no.such.type', tenantId: 't1' }).catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError && !(error instanceof GatewayUsageError));
    assert.equal(error.status, 400);
    assert.equal(error.type, 'validation');
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 1);
    assert.equal(client.metrics.requests, 1, 'a 400 is not retried');
    assert.deepEqual(error.body, {
      error: { type: 'validation', message: 'events[0].type `no.such.type` is not routed by any namespace spec' },
    });
    assert.equal(
      error.message,
      'POST /api/v1/events answered 400: events[0].type `no.such.type` is not routed by any namespace spec',
    );
  });

  it('turns a 401 into a GatewayError of type auth, and never shows the key', async () => {
    const client = new GatewayClient({ url: gateway.url, apiKey: 'not-the-key', retries: 3 });
    const error = await client.stats().catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 401);
    assert.equal(error.type, 'auth');
    assert.equal(error.retryable, false);
    assert.equal(client.metrics.requests, 1);
    assert.doesNotMatch(`${error.message} ${JSON.stringify(error.body)}`, /not-the-key/);
  });

  it('turns a 413 into a GatewayError, not retried', async () => {
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY });
    const error = await client
      .publish({ type: 'queue:stats', tenantId: 't1', data: { big: 'x'.repeat(8000) } })
      .catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 413);
    assert.equal(error.retryable, false);
    assert.equal(client.metrics.requests, 1);
  });

  it('times out on a gateway that hangs, after retrying', async () => {
    const hung = await startGateway();
    try {
      const client = new GatewayClient({
        url: hung.url,
        apiKey: API_KEY,
        timeoutMs: 300,
        retries: 1,
        backoff: { baseMs: 10, maxMs: 10 },
      });
      await client.stats(); // a connection is open before the hang, as a long-running backend's would be
      await hung.pause();
      const started = Date.now();
      const error = await client.publish({ type: 'queue:stats', tenantId: 't1' }).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      assert.ok(error instanceof GatewayTimeoutError, String(error));
      assert.equal(error.status, null);
      assert.equal(error.retryable, true);
      assert.equal(error.attempts, 2);
      assert.ok(elapsed >= 600, `two tries of 300 ms took ${elapsed} ms`);
      assert.match(error.message, /no answer within 300 ms \(after 2 tries\)/);
    } finally {
      hung.resume();
      await hung.stop();
    }
  });

  it('is a network error when nothing listens, after retrying', async () => {
    const port = await freePort();
    const client = new GatewayClient({
      url: `http://127.0.0.1:${port}`,
      apiKey: API_KEY,
      retries: 2,
      backoff: { baseMs: 5, maxMs: 5 },
    });
    const error = await client
      .emit({ namespace: '/ws', rooms: 'global.general', event: 'e', tenantId: 't1' })
      .catch((e: unknown) => e);
    assert.ok(error instanceof GatewayNetworkError, String(error));
    assert.equal(error.retryable, true);
    assert.equal(error.attempts, 3);
    assert.equal(client.metrics.requests, 3);
    assert.match(error.message, /ECONNREFUSED/);
  });

  it('refuses bad options and a call for another tenant before sending anything', async () => {
    assert.throws(() => new GatewayClient({ url: 'localhost:3000', apiKey: API_KEY }), GatewayUsageError);
    assert.throws(() => new GatewayClient({ url: gateway.url, apiKey: '' }), GatewayUsageError);
    assert.throws(() => new GatewayClient({ url: gateway.url, apiKey: API_KEY, timeoutMs: 0 }), GatewayUsageError);
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY, tenantId: 'a' });
    await assert.rejects(client.publish({ type: 'queue:stats', tenantId: 'b' }), GatewayUsageError);
    await assert.rejects(
      client.notify({ recipient: { channel: 'alerts' }, content: {}, tenantId: 'b' }),
      GatewayUsageError,
    );
    await assert.rejects(client.publish({ type: 'queue:stats' }, { idempotencyKey: 'has space' }), GatewayUsageError);
    assert.equal(client.metrics.requests, 0);
  });
});

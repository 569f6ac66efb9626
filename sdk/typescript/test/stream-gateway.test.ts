// The event stream's client against the real gateway binary (`GET /api/v1/events/stream`):
// `subscribeToEvents` gets the matching events in publish order with the gateway's ids; a
// subscription that starts from a `lastEventId` resumes after it; a gateway that restarted (and
// so no longer holds where the subscription was) reports a gap and goes on; a wrong key stops
// it. What a real gateway cannot be made to do on cue (cuts at a chosen moment, a 503 with
// Retry-After, silence) stays in stream.test.ts against the stub server.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { GatewayClient, GatewayError, WebSocketHelper, type StreamEvent, type StreamGap } from '@realtime-gateway/sdk';

import { API_KEY, freePort, sleep, startGateway, uid } from './support/gateway';

const quick = { reconnect: { baseMs: 50, maxMs: 200 } };

/** Resolves once `condition()` holds, checking every 10 ms; rejects after `timeoutMs`. */
async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}

describe('event stream subscriptions against the gateway', { timeout: 60_000 }, () => {
  it('delivers the matching events in publish order, with ids a subscription resumes after', async (t) => {
    const gateway = await startGateway();
    t.after(() => gateway.stop());
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY });
    t.after(() => client.close());
    const websocketHelper = new WebSocketHelper(client);
    const seen: StreamEvent[] = [];
    let opened = 0;
    const id = websocketHelper.subscribeToEvents(
      ['platform.*', 'user.notification'],
      async (event) => {
        seen.push(event);
      },
      { module: 'user_service', ...quick, onOpen: () => (opened += 1) },
    );
    await eventually(() => opened === 1, 'the stream open');
    const user = `u${uid()}`;
    await websocketHelper.sendToPlatformAdmins('security.alert', { attempts: 5 });
    await client.publish({ type: 'tenant.data.update', tenantId: 't1', data: { n: 1 } });
    await websocketHelper.sendUserNotification(user, { title: 'hi', tenantId: 't1' });
    await eventually(() => seen.length === 2, 'two events');
    assert.deepEqual(
      seen.map((e) => [e.type, e.tenantId, e.data]),
      [
        ['platform.security.alert', null, { attempts: 5 }],
        ['user.notification', 't1', { title: 'hi', tenantId: 't1', userId: user }],
      ],
    );
    assert.ok(seen.every((e) => typeof e.id === 'string' && typeof e.timestamp === 'string'));
    assert.equal(websocketHelper.subscription(id)!.lastEventId, seen[1]!.id);
    websocketHelper.unsubscribeFromEvents(id);

    // A new subscription from the first event's id gets what came after it.
    const again: StreamEvent[] = [];
    client.subscribe('platform.*,user.notification'.split(','), (event) => void again.push(event), {
      ...quick,
      lastEventId: seen[0]!.id,
    });
    await eventually(() => again.length === 1, 'the event after the first');
    assert.equal(again[0]!.id, seen[1]!.id);
  });

  it('reports a gap after the gateway restarted, then goes on', async (t) => {
    const port = await freePort();
    let gateway = await startGateway({ port });
    t.after(() => gateway.stop());
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY });
    t.after(() => client.close());
    const seen: number[] = [];
    const gaps: StreamGap[] = [];
    let opened = 0;
    const subscription = client.subscribe('platform.*', (event) => void seen.push(event.data['n'] as number), {
      ...quick,
      onOpen: () => (opened += 1),
      onGap: (gap) => gaps.push(gap),
      onError: () => {},
    });
    await eventually(() => opened === 1, 'the stream open');
    await client.publish({ type: 'platform.alert', data: { n: 1 } });
    await eventually(() => seen.length === 1, 'the first event');
    const before = subscription.lastEventId;
    await gateway.stop();
    gateway = await startGateway({ port });
    await eventually(() => opened === 2, 'reconnected', 10_000);
    await eventually(() => gaps.length === 1, 'the gap');
    assert.deepEqual(gaps, [{ lastEventId: before, resumedFrom: null, missed: null }]);
    await client.publish({ type: 'platform.alert', data: { n: 2 } });
    await eventually(() => seen.length === 2, 'the next event');
    assert.deepEqual(seen, [1, 2]);
  });

  it('stops for good on a wrong key', async (t) => {
    const gateway = await startGateway();
    t.after(() => gateway.stop());
    const client = new GatewayClient({ url: gateway.url, apiKey: 'wrong' });
    t.after(() => client.close());
    const errors: unknown[] = [];
    const subscription = client.subscribe('*', () => {}, { ...quick, onError: (e) => errors.push(e) });
    await subscription.done;
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof GatewayError);
    assert.equal(errors[0].status, 401);
    assert.equal(errors[0].retryable, false);
  });
});

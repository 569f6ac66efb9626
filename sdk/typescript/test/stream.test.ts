// The client side of the event stream for backends (seed 002's `subscribeToEvents`), against a
// local server that follows the stream's contract (support/sse-server.ts), for what the real
// gateway (stream-gateway.test.ts) cannot be made to do on cue: matching events in order; resuming with Last-Event-ID after a cut, with nothing lost
// or repeated; a gap reported; Retry-After honoured; 401 stops; a stalled stream reconnects;
// handlers run one at a time. And the SSE parser and type patterns on their own.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  GatewayClient,
  GatewayError,
  GatewayUsageError,
  typeMatcher,
  WebSocketHelper,
  type StreamEvent,
} from '@realtime-gateway/sdk';
// The parser is internal: its unit test compiles it from the sources.
import { SseParser } from '../src/sse';

import { API_KEY, sleep } from './support/gateway';
import { streamServer } from './support/sse-server';

const quick = { reconnect: { baseMs: 20, maxMs: 50 } };

/** `promise`, or a rejection after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `condition()` holds, checking every 10 ms; rejects after `timeoutMs`. */
async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}

describe('event stream subscriptions', { timeout: 60_000 }, () => {
  it("delivers the matching events in order, as the seed's handlers read them", async (t) => {
    const server = await streamServer();
    t.after(() => server.close());
    const websocketHelper = new WebSocketHelper({ url: server.url, apiKey: API_KEY, tenantId: 't1' });
    t.after(() => websocketHelper.close());
    const seen: StreamEvent[] = [];
    const id = websocketHelper.subscribeToEvents(
      ['platform.*', 'user.notification'],
      async (event) => {
        seen.push(event);
      },
      { module: 'user_service', ...quick },
    );
    await server.opened(1);
    const request = server.requests[0]!;
    const query = new URL(request.url, 'http://x').searchParams;
    assert.equal(query.get('types'), 'platform.*,user.notification');
    assert.equal(query.get('tenantId'), 't1');
    assert.equal(request.headers['x-api-key'], API_KEY);
    assert.equal(request.headers.accept, 'text/event-stream');
    assert.equal(request.headers['last-event-id'], undefined);

    const a = server.publish('platform.security.alert', { attempts: 5 }, 't1');
    server.publish('tenant.data.update', { n: 1 }, 't1');
    const b = server.publish('user.notification', { title: 'hi' }, 't1');
    await eventually(() => seen.length === 2, 'two events');
    assert.deepEqual(seen, [
      { id: a.id, type: a.type, tenantId: 't1', data: { attempts: 5 }, timestamp: a.timestamp },
      { id: b.id, type: b.type, tenantId: 't1', data: { title: 'hi' }, timestamp: b.timestamp },
    ]);
    assert.equal(websocketHelper.subscription(id)!.lastEventId, b.id);
    assert.equal(websocketHelper.unsubscribeFromEvents(id), true);
    await eventually(() => server.open === 0, 'the connection closed');
  });

  it('resumes after a cut from the last handled event: nothing lost, nothing twice', async (t) => {
    const server = await streamServer();
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    const seen: number[] = [];
    let opens = 0;
    const subscription = client.subscribe(
      'job.*',
      (event) => {
        seen.push(event.data['n'] as number);
      },
      { ...quick, onOpen: () => (opens += 1), onError: () => {} },
    );
    t.after(() => client.close());
    await server.opened(1);
    for (let n = 1; n <= 5; n++) server.publish('job.progress', { n });
    await eventually(() => seen.length === 5, 'the first five');
    server.cut();
    for (let n = 6; n <= 10; n++) server.publish('job.progress', { n });
    await eventually(() => seen.length >= 10, 'all ten');
    await sleep(50);
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(opens, 2);
    const resumed = server.requests.at(-1)!;
    assert.equal(resumed.headers['last-event-id'], '1-5');
    assert.equal(subscription.lastEventId, '1-10');
  });

  it('reports a gap when the gateway no longer holds where it left off, then goes on', async (t) => {
    const server = await streamServer({ keep: 3 });
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    const seen: number[] = [];
    const gaps: unknown[] = [];
    client.subscribe('*', (event) => void seen.push(event.data['n'] as number), {
      ...quick,
      onGap: (gap) => gaps.push(gap),
      onError: () => {},
    });
    await server.opened(1);
    server.publish('a', { n: 1 });
    await eventually(() => seen.length === 1, 'the first event');
    server.cut();
    for (let n = 2; n <= 8; n++) server.publish('a', { n });
    await eventually(() => seen.length === 4, 'what the log still holds');
    assert.deepEqual(seen, [1, 6, 7, 8]);
    assert.deepEqual(gaps, [{ lastEventId: '1-1', resumedFrom: '1-6', missed: 4 }]);
  });

  it('goes to onError with a GatewayError for a gap when there is no onGap', async (t) => {
    const server = await streamServer({ keep: 1 });
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    const errors: unknown[] = [];
    client.subscribe('*', () => {}, { ...quick, lastEventId: '1-0', onError: (e) => errors.push(e) });
    server.publish('a');
    server.publish('a');
    await eventually(() => errors.length === 1, 'the gap reported');
    assert.ok(errors[0] instanceof GatewayError);
    assert.equal(errors[0].type, 'gap');
  });

  it('waits what a 503 Retry-After asks before connecting again', async (t) => {
    const server = await streamServer({
      refuse: [
        { status: 503, headers: { 'Retry-After': '1' }, body: { error: { type: 'draining', message: 'later' } } },
      ],
    });
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    const errors: unknown[] = [];
    client.subscribe('*', () => {}, { ...quick, onError: (e) => errors.push(e) });
    await server.opened(1, 5000);
    const [refused, accepted] = server.requests;
    assert.ok(refused && accepted);
    assert.ok(
      accepted.at - refused.at >= 1000,
      `connected again after ${accepted.at - refused.at} ms, not the 1 s asked`,
    );
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof GatewayError && errors[0].status === 503 && errors[0].retryable);
  });

  it('stops with a clear error on a gateway without the event stream (404)', async (t) => {
    const server = await streamServer({
      refuse: [{ status: 404, body: { error: { type: 'not_found', message: 'no such route' } } }],
    });
    t.after(() => server.close());
    const websocketHelper = new WebSocketHelper({ url: server.url, apiKey: API_KEY });
    t.after(() => websocketHelper.close());
    const errors: unknown[] = [];
    const id = websocketHelper.subscribeToEvents('platform.*', async () => {}, {
      module: 'user_service',
      onError: (e) => errors.push(e),
    });
    await within(websocketHelper.subscription(id)!.done, 5000, 'the subscription stopping on 404');
    assert.equal(errors.length, 1);
    const error = errors[0];
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 404);
    assert.match(error.message, /does not serve the event stream/);
    assert.match(error.message, /user_service/);
    assert.equal(websocketHelper.unsubscribeFromEvents(id), false, 'it has stopped');
  });

  it('stops for good on 401 and on 400', async (t) => {
    const server = await streamServer({
      refuse: [{ status: 400, body: { error: { type: 'validation', message: 'bad types' } } }],
    });
    t.after(() => server.close());
    // The first connect is the scripted 400, the second a 401 for the wrong key.
    for (const [apiKey, status] of [
      [API_KEY, 400],
      ['wrong', 401],
    ] as const) {
      const client = new GatewayClient({ url: server.url, apiKey });
      const errors: unknown[] = [];
      const subscription = client.subscribe('a.*', () => {}, { ...quick, onError: (e) => errors.push(e) });
      await within(subscription.done, 5000, `the subscription stopping on ${status}`);
      assert.equal(subscription.closed, true);
      assert.equal(errors.length, 1, `one error for ${status}`);
      assert.ok(errors[0] instanceof GatewayError);
      assert.equal(errors[0].status, status);
      assert.equal(errors[0].retryable, false);
      await client.close();
    }
  });

  it('reconnects when a stream goes silent past the idle timeout', async (t) => {
    const server = await streamServer({ silent: true });
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    const errors: unknown[] = [];
    client.subscribe('*', () => {}, { ...quick, idleTimeoutMs: 200, onError: (e) => errors.push(e) });
    await eventually(() => server.requests.length >= 2, 'a second connection', 3000);
    assert.ok(errors[0] instanceof GatewayError && errors[0].type === 'timeout', String(errors[0]));
  });

  it('runs handlers one at a time, in order, and keeps to the patterns asked for', async (t) => {
    const server = await streamServer({ ignoreTypes: true });
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    let running = 0;
    let most = 0;
    const seen: string[] = [];
    client.subscribe(
      ['a.*', 'b'],
      async (event) => {
        running += 1;
        most = Math.max(most, running);
        await sleep(5);
        seen.push(event.type);
        running -= 1;
      },
      quick,
    );
    await server.opened(1);
    for (const type of ['a.1', 'c', 'b', 'a.2.x', 'bb', 'a', 'b']) server.publish(type);
    await eventually(() => seen.length === 4, 'four matching events');
    await sleep(50);
    assert.deepEqual(seen, ['a.1', 'b', 'a.2.x', 'b']);
    assert.equal(most, 1);
  });

  it('keeps going after a handler throws, reporting it', async (t) => {
    const server = await streamServer();
    t.after(() => server.close());
    const client = new GatewayClient({ url: server.url, apiKey: API_KEY });
    t.after(() => client.close());
    const errors: unknown[] = [];
    const seen: number[] = [];
    client.subscribe(
      '*',
      (event) => {
        if (event.data['n'] === 1) throw new Error('handler bug');
        seen.push(event.data['n'] as number);
      },
      { ...quick, onError: (e) => errors.push(e) },
    );
    await server.opened(1);
    server.publish('x', { n: 1 });
    server.publish('x', { n: 2 });
    await eventually(() => seen.length === 1, 'the second event');
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['handler bug'],
    );
  });

  it('refuses invalid patterns', () => {
    const client = new GatewayClient({ url: 'http://127.0.0.1:1', apiKey: API_KEY });
    for (const bad of ['', 'a*', '*.b', 'a.*.*', 'a,b']) {
      assert.throws(() => client.subscribe(bad, () => {}), GatewayUsageError, bad);
    }
    assert.throws(() => client.subscribe([], () => {}), GatewayUsageError);
  });
});

describe('type patterns', { timeout: 60_000 }, () => {
  it("match as the gateway's specs do", () => {
    const match = typeMatcher(['platform.*', 'user.notification']);
    assert.equal(match('platform.security.alert'), true);
    assert.equal(match('platform.x'), true);
    assert.equal(match('platform'), false);
    assert.equal(match('platformx.y'), false);
    assert.equal(match('user.notification'), true);
    assert.equal(match('user.notification.x'), false);
    assert.equal(typeMatcher(['*'])('anything'), true);
  });
});

describe('SSE parser', { timeout: 60_000 }, () => {
  it('reads messages across any chunking and line ending', () => {
    const text =
      '\ufeff: comment\r\nid: 7\r\nevent: gap\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: two\rid: 8\r\rdata:three\n\n';
    const expected = [
      { event: 'gap', data: '{"a":\n1}', id: '7' },
      { event: 'message', data: 'two', id: '8' },
      { event: 'message', data: 'three', id: '8' },
    ];
    for (let size = 1; size <= text.length; size++) {
      const parser = new SseParser();
      const out = [];
      for (let i = 0; i < text.length; i += size) out.push(...parser.push(text.slice(i, i + size)));
      assert.deepEqual(out, expected, `chunks of ${size}`);
    }
  });

  it('does not dispatch a message without data, keeps the id across messages, and reads retry', () => {
    const parser = new SseParser('5');
    assert.deepEqual(parser.push('id: 6\n\nretry: 250\nretry: soon\n\ndata\n\n'), [
      { event: 'message', data: '', id: '6' },
    ]);
    assert.equal(parser.lastEventId, '6');
    assert.equal(parser.retryMs, 250);
    assert.deepEqual(
      parser.push('id: a\0b\ndata: x\n\n'),
      [{ event: 'message', data: 'x', id: '6' }],
      'an id with NUL is ignored',
    );
  });
});

// The client's retry policy and idempotency keys, against a stub server that answers what each
// test scripts (503 and 429 with Retry-After, 500s, a hang) and records what it was sent.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  backoffDelay,
  GatewayClient,
  GatewayError,
  GatewayOverloadError,
  parseRetryAfter,
  RealtimeGateway,
  SDK_VERSION,
} from '@realtime-gateway/sdk';

import { API_KEY } from './support/gateway';
import { json, stubServer } from './support/stub';

const ACCEPTED = { accepted: 1 };

/** Resolves once the stub has received `n` requests; rejects after 5 s. */
async function requestsReach(stub: { requests: unknown[] }, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (stub.requests.length < n) {
    if (Date.now() > deadline) throw new Error(`${stub.requests.length} requests, not ${n}, within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
const event = { type: 'queue:stats', tenantId: 't1', data: {} };
const fast = { backoff: { baseMs: 5, maxMs: 5 } };

describe('retries', { timeout: 60_000 }, () => {
  it('waits what a 503 Retry-After asks, then retries with the same Idempotency-Key', async (t) => {
    const stub = await stubServer((_req, res, _body, i) =>
      i === 0
        ? json(res, 503, { error: { type: 'unavailable', message: 'draining' } }, { 'Retry-After': '1' })
        : json(res, 202, ACCEPTED),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, ...fast });
    assert.deepEqual(await client.publish(event), ACCEPTED);
    assert.equal(stub.requests.length, 2);
    const [first, second] = stub.requests;
    assert.ok(second!.at - first!.at >= 1000, `retried after ${second!.at - first!.at} ms, not the 1 s asked`);
    assert.match(String(first!.headers['idempotency-key']), /^[0-9a-f-]{36}$/);
    assert.equal(second!.headers['idempotency-key'], first!.headers['idempotency-key']);
    assert.equal(second!.body, first!.body);
    assert.equal(first!.headers['x-api-key'], API_KEY);
    const { version } = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(SDK_VERSION, version);
    assert.match(String(first!.headers['user-agent']), new RegExp(`^realtime-gateway-sdk/${version} node/`));
    assert.equal(client.metrics.retries, 1);
  });

  it('honours a 429 Retry-After given as an HTTP date', async (t) => {
    const stub = await stubServer((_req, res, _body, i) =>
      i === 0
        ? json(
            res,
            429,
            { error: { type: 'rate_limit', message: 'slow down' } },
            { 'Retry-After': new Date(Date.now() + 1500).toUTCString() },
          )
        : json(res, 202, ACCEPTED),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, ...fast });
    assert.deepEqual(await client.publish(event), ACCEPTED);
    const waited = stub.requests[1]!.at - stub.requests[0]!.at;
    // An HTTP date has whole seconds: 1.5 s from now is between 0.5 and 1.5 s away.
    assert.ok(waited >= 400, `retried after ${waited} ms`);
  });

  it('gives up after `retries` on 5xx, with the last answer', async (t) => {
    const stub = await stubServer((_req, res, _body, i) =>
      json(res, 500, { error: { type: 'internal', message: `boom ${i}` } }),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, retries: 2, ...fast });
    const error = await client.emit({ rooms: 'alerts', event: 'x' }).catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 500);
    assert.equal(error.retryable, true);
    assert.equal(error.attempts, 3);
    assert.deepEqual(error.body, { error: { type: 'internal', message: 'boom 2' } });
    assert.equal(stub.requests.length, 3);
    assert.equal(new Set(stub.requests.map((r) => r.headers['idempotency-key'])).size, 1, 'one key for the whole call');
  });

  it('does not wait for a Retry-After longer than maxRetryAfterMs', async (t) => {
    const stub = await stubServer((_req, res) =>
      json(res, 503, { error: { type: 'unavailable', message: 'later' } }, { 'Retry-After': '3600' }),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, maxRetryAfterMs: 1000 });
    const started = Date.now();
    const error = await client.publish(event).catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError);
    assert.equal(error.retryAfterMs, 3_600_000);
    assert.equal(stub.requests.length, 1);
    assert.ok(Date.now() - started < 5000, 'not the hour asked');
  });

  it('never retries other 4xx', async (t) => {
    const stub = await stubServer((_req, res) =>
      json(res, 403, { error: { type: 'forbidden', message: 'another tenant' } }),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, ...fast });
    const error = await client
      .notify({ recipient: { channel: 'a' }, content: {}, tenantId: 't1' })
      .catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 403);
    assert.equal(error.type, 'forbidden');
    assert.equal(stub.requests.length, 1);
  });

  it("uses a new key per call, the caller's when given, and none on GET", async (t) => {
    const stub = await stubServer((req, res) =>
      req.method === 'GET' ? json(res, 200, { connections: 0, namespaces: {}, nodes: 1 }) : json(res, 202, ACCEPTED),
    );
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY });
    await client.publish(event);
    await client.publish(event);
    await client.publish(event, { idempotencyKey: 'order-42-shipped' });
    await client.stats();
    const keys = stub.requests.map((r) => r.headers['idempotency-key']);
    assert.notEqual(keys[0], keys[1]);
    assert.equal(keys[2], 'order-42-shipped');
    assert.equal(keys[3], undefined);
  });

  it("sends an event's own id, and only when given", async (t) => {
    const stub = await stubServer((_req, res) => json(res, 202, { accepted: 2 }));
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY, tenantId: 't1' });
    await client.publish([
      { type: 'a.b', id: 'evt-1', data: { n: 1 } },
      { type: 'a.b', data: { n: 2 } },
    ]);
    assert.deepEqual(JSON.parse(stub.requests[0]!.body), [
      { type: 'a.b', id: 'evt-1', data: { n: 1 }, tenantId: 't1' },
      { type: 'a.b', data: { n: 2 }, tenantId: 't1' },
    ]);
  });

  it('stops waiting between tries when the caller aborts', async (t) => {
    const controller = new AbortController();
    // Aborted once the first try has its answer, which asks for a 10 s wait.
    const stub = await stubServer((_req, res) => {
      json(res, 503, {}, { 'Retry-After': '10' });
      setTimeout(() => controller.abort(new Error('shutting down')), 100);
    });
    t.after(() => stub.close());
    const client = new GatewayClient({ url: stub.url, apiKey: API_KEY });
    const started = Date.now();
    await assert.rejects(client.publish(event, { signal: controller.signal }), /shutting down/);
    assert.ok(Date.now() - started < 5000, 'not the 10 s asked');
    assert.equal(stub.requests.length, 1);
  });

  it('spreads backoff waits over the whole window (full jitter) and reads Retry-After', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    assert.equal(
      backoffDelay(0, policy, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(0, policy, () => 0.999),
      99,
    );
    assert.equal(
      backoffDelay(2, policy, () => 0.5),
      200,
    );
    assert.equal(
      backoffDelay(10, policy, () => 0.5),
      500,
      'capped at maxMs',
    );
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('0.5'), 500);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT')), 2000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 08:00:00 GMT')), 0);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });
});

describe('the ordered queue', { timeout: 60_000 }, () => {
  it('is bounded in calls and in bytes, refusing and counting what does not fit', async (t) => {
    // Holds every answer until released, so that calls pile up behind the first.
    const held: Array<() => void> = [];
    const stub = await stubServer((_req, res, body) =>
      held.push(() => json(res, 202, { accepted: JSON.parse(body).length })),
    );
    t.after(() => stub.close());
    const reported: unknown[] = [];
    const realtimeGateway = new RealtimeGateway({
      url: stub.url,
      apiKey: API_KEY,
      tenantId: 't1',
      queue: { maxCalls: 4, maxBytes: 1000 },
      onError: (e) => reported.push(e),
    });
    const stats = (n: number, pad = '') => realtimeGateway.emitQueueStats({ n, pad });
    const calls = [stats(1), stats(2), stats(3), stats(4), stats(5), stats(6)];
    assert.equal(realtimeGateway.client.queued, 4);
    // Past four calls: refused at once.
    const outcomes = await Promise.allSettled(calls.slice(4));
    assert.deepEqual(
      outcomes.map((o) => o.status === 'rejected' && o.reason instanceof GatewayOverloadError),
      [true, true],
    );
    await requestsReach(stub, 1);
    held.shift()!();
    await calls[0];
    await requestsReach(stub, 2);
    // Three calls now, but past the bytes: refused.
    const big = stats(7, 'x'.repeat(1000));
    await assert.rejects(big, GatewayOverloadError);
    assert.equal(realtimeGateway.client.metrics.dropped, 3);
    assert.equal(reported.length, 3);
    // The rest were sent in order: the first alone, the next two as one batch.
    held.shift()!();
    await Promise.all(calls.slice(1, 4));
    assert.deepEqual(
      stub.requests.map((r) => (JSON.parse(r.body) as Array<{ data: { n: number } }>).map((e) => e.data.n)),
      [[1], [2, 3, 4]],
    );
  });
});

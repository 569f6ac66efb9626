// Per-socket rate limits (the spec's, and a config-file override), invalid payloads and unknown
// events: each refusal is an `error` event (and an {error} ack), and the socket stays usable.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';

let gw;

before(async () => {
  gw = await h.startGateway();
});
after(async () => {
  await gw?.stop();
});

const client = (t, url = gw.url) => h.connectFor(t, url, { token: h.mintToken({ tenantId: `limits-${h.uid()}` }) });

/** Sends `event` `count` times (one at a time) and asserts every ack is a success. */
async function spend(socket, event, payload, count) {
  for (let i = 0; i < count; i++) {
    const ack = await h.request(socket, event, payload(i));
    assert.equal(ack?.error, undefined, `${event} #${i + 1} was refused: ${JSON.stringify(ack?.error)}`);
  }
}

/** Asserts `ack` is a rate-limit refusal of `event`, waiting at most `maxWaitMs`; returns the error. */
function assertLimited(ack, event, maxWaitMs) {
  assert.ok(ack?.error, `expected a rate_limit error, got ${JSON.stringify(ack)}`);
  const { error } = ack;
  assert.equal(error.type, 'rate_limit');
  assert.equal(error.event, event);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.retryAfterMs > 0 && error.retryAfterMs <= maxWaitMs, `retryAfterMs ${error.retryAfterMs}`);
  return error;
}

const LIMITS = [
  { event: 'subscribe', max: 10, payload: (i) => ({ type: 'execution', resourceId: `e${i}` }), other: 'ping' },
  { event: 'unsubscribe', max: 20, payload: (i) => ({ subscriptionKey: `execution:e${i}` }), other: 'ping' },
  { event: 'ping', max: 30, payload: () => ({}), other: 'get_status' },
  { event: 'get_status', max: 10, payload: () => ({ executionId: 'e1' }), other: 'ping' },
];
const OTHER_PAYLOAD = { ping: {}, get_status: { workflowId: 'w1' } };

describe('per-event rate limits', () => {
  for (const { event, max, payload, other } of LIMITS) {
    it(`allows ${max} ${event} per minute to a socket, then refuses with rate_limit, and the socket stays usable`, async (t) => {
      const socket = await client(t);
      await spend(socket, event, payload, max);
      const refusal = assertLimited(await h.request(socket, event, payload(max)), event, 60000 / max);
      assert.deepEqual(await h.waitFor(socket, 'error'), refusal);

      const ack = await h.request(socket, other, OTHER_PAYLOAD[other]);
      assert.equal(ack.error, undefined, `${other} after the ${event} limit: ${JSON.stringify(ack.error)}`);
      assert.equal(socket.connected, true);
    });
  }

  it('sends at most one rate-limit error event per second, but answers every ack', async (t) => {
    const socket = await client(t);
    await spend(socket, 'ping', () => ({}), 30);
    for (let i = 0; i < 3; i++) assertLimited(await h.request(socket, 'ping', {}), 'ping', 2000);
    // Each refusal's error event is sent before its ack, so all of them are in by now.
    const errors = h.pending(socket, 'error');
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0].type, 'rate_limit');
  });

  it('counts per socket: another socket of the same user keeps its whole budget', async (t) => {
    const token = h.mintToken({ sub: 'same-user', tenantId: `limits-${h.uid()}` });
    const first = await h.connectFor(t, gw.url, { token });
    const second = await h.connectFor(t, gw.url, { token });
    await spend(first, 'get_status', () => ({ executionId: 'e1' }), 10);
    assertLimited(await h.request(first, 'get_status', { executionId: 'e1' }), 'get_status', 6000);
    await spend(second, 'get_status', () => ({ executionId: 'e1' }), 10);
    assertLimited(await h.request(second, 'get_status', { executionId: 'e1' }), 'get_status', 6000);
  });
});

describe('a rate limit overridden in the config file', () => {
  let tuned;
  let files;
  before(async () => {
    files = h.tempDir();
    const config = h.writeFile(files.dir, 'gateway.yaml', 'rate_limits:\n  /workflow:\n    ping: { max: 3, per: 1m }\n');
    tuned = await h.startGateway({ env: { CONFIG_FILE: config } });
  });
  after(async () => {
    await tuned?.stop();
    files?.remove();
  });

  it('allows 3 pings per minute instead of 30', async (t) => {
    const socket = await client(t, tuned.url);
    await spend(socket, 'ping', () => ({}), 3);
    const refusal = assertLimited(await h.request(socket, 'ping', {}), 'ping', 20000);
    assert.ok(refusal.retryAfterMs > 10000, `one ping every 20 s, retryAfterMs ${refusal.retryAfterMs}`);
  });

  it('keeps the spec limits of the other events', async (t) => {
    const socket = await client(t, tuned.url);
    await spend(socket, 'get_status', () => ({ executionId: 'e1' }), 10);
    assertLimited(await h.request(socket, 'get_status', { executionId: 'e1' }), 'get_status', 6000);
  });
});

describe('invalid payloads', () => {
  const VALIDATION = [
    ['a string instead of an object', 'subscribe', 'execution', /^payload: "execution" is not of type "object"$/],
    ['no payload at all', 'subscribe', undefined, /^payload: null is not of type "object"$/],
    ['a missing type', 'subscribe', {}, /"type" is a required property/],
    ['an unknown subscription type', 'subscribe', { type: 'jobs' }, /^type: must be one of "workflow", "execution", "logs", "metrics", "tenant_activity", not "jobs"$/],
    ['a type that is not a string', 'subscribe', { type: 42 }, /^type: must be one of .*, not 42$/],
    ['a resourceId longer than 200 characters', 'subscribe', { type: 'execution', resourceId: 'x'.repeat(201) }, /^resourceId: .* is longer than 200 characters$/],
    ['a resourceId that is not a string', 'subscribe', { type: 'execution', resourceId: 5 }, /^resourceId: 5 is not of type "string"$/],
    ['an empty resourceId', 'subscribe', { type: 'execution', resourceId: '' }, /^resourceId: /],
    ['an unknown log level', 'subscribe', { type: 'logs', filters: { logLevel: 'fatal' } }, /^filters\.logLevel: must be one of "debug", "info", "warn", "error", not "fatal"$/],
    ['filters that are not an object', 'subscribe', { type: 'logs', filters: 'error' }, /^filters: /],
    ['a payload over the event size limit', 'subscribe', { type: 'execution', resourceId: 'x'.repeat(70 * 1024) }, /^payload too large: \d+ bytes, the limit is 65536$/],
    ['an unsubscribe without subscriptionKey', 'unsubscribe', {}, /"subscriptionKey" is a required property/],
    ['an unsubscribe key that is no room name', 'unsubscribe', { subscriptionKey: 'jobs:1' }, /^`jobs:1` is not a room name here \(rooms: workflow:\{resourceId\?\}, execution:\{resourceId\?\}, logs:\{resourceId\?\}:\{logLevel\?\}:\{stepId\?\}, metrics, tenant_activity\)$/],
    ['a get_status without ids', 'get_status', {}, /^get_status needs an executionId or a workflowId$/],
    ['a get_status with a numeric executionId', 'get_status', { executionId: 7 }, /^executionId: 7 is not of type "string"$/],
    ['a ping with a string payload', 'ping', 'hello', /^payload: "hello" is not of types "null", "object"$/],
  ];

  for (const [name, event, payload, message] of VALIDATION) {
    it(`refuses ${name} (${event}) with a validation error naming the problem, and the socket stays usable`, async (t) => {
      const socket = await client(t);
      const ack = await h.request(socket, event, payload);
      const error = await h.waitFor(socket, 'error');
      assert.deepEqual(ack, { error });
      assert.equal(error.type, 'validation');
      assert.equal(error.event, event);
      assert.match(error.message, message);
      assert.match(error.timestamp, /^\d{4}-\d\d-\d\dT/);

      const { confirmed } = await h.subscribe(socket, { type: 'metrics' });
      assert.equal(confirmed.subscriptionKey, 'metrics');
    });
  }

  it('refuses an unsubscribe of the server-managed tenant room with a permission error', async (t) => {
    const socket = await client(t);
    const ack = await h.request(socket, 'unsubscribe', { subscriptionKey: 'tenant' });
    const error = await h.waitFor(socket, 'error');
    assert.deepEqual(ack, { error });
    assert.equal(error.type, 'permission');
    assert.equal(error.message, 'room `tenant` is managed by the server');
    const { confirmed } = await h.subscribe(socket, { type: 'metrics' });
    assert.equal(confirmed.subscriptionKey, 'metrics');
  });

  it('sends the error event also when the client asked for no ack', async (t) => {
    const socket = await client(t);
    socket.emit('subscribe', { type: 'logs', filters: { logLevel: 'loud' } });
    const error = await h.waitFor(socket, 'error');
    assert.equal(error.type, 'validation');
    assert.match(error.message, /^filters\.logLevel: /);
  });
});

describe('unknown events', () => {
  it('ignores an unknown event sent without an ack', async (t) => {
    const socket = await client(t);
    socket.emit('no_such_event', { type: 'execution' });
    // The ping's ack is the barrier: an error for the unknown event would have come before it.
    assert.ok((await h.request(socket, 'ping')).timestamp);
    assert.deepEqual(h.pending(socket, 'error'), []);
  });

  it('answers an unknown event\'s ack with a validation error, without an error event', async (t) => {
    const socket = await client(t);
    const ack = await h.request(socket, 'no_such_event', {});
    assert.deepEqual(ack, {
      error: { type: 'validation', message: 'unknown event `no_such_event`', event: 'no_such_event', timestamp: ack.error.timestamp },
    });
    assert.ok((await h.request(socket, 'ping')).timestamp);
    assert.deepEqual(h.pending(socket, 'error'), []);
  });
});

// Idempotent publishing across a cluster: two gateways on a private redis-server share their
// Idempotency-Keys and events' ids, so a retry that reaches the other node is answered the same
// and a frontend (the official socket.io-client) receives the event once; while Redis is away a
// node still answers its own repeats from memory.
//
// Every wait has a timeout. The frontend records every `update` it gets; each test ends with a
// barrier event published without key or id, and asserts what arrived before it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

/** POSTs `body` to `path` of `url` with the API key and `key` as `Idempotency-Key`. */
async function post(url, path, body, key) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': h.API_KEY, ...(key ? { 'Idempotency-Key': key } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(h.TIMEOUT),
  });
  return { status: response.status, replayed: response.headers.get('idempotent-replayed') === 'true', text: await response.text() };
}

const metric = (tenantId, n, id) => ({ type: 'metrics.updated', tenantId, data: { n }, ...(id ? { id } : {}) });

describe('idempotent publishing in a cluster', () => {
  const cluster = { nodes: [] };
  const tenant = `t-${h.uid()}`;
  let frontend;
  /** Every `n` the frontend was sent, in order. */
  const received = [];

  /** Publishes a barrier through `node` and resolves to what arrived before it, emptying the list. */
  async function untilBarrier(node) {
    const barrier = 1_000_000 + received.length + Math.floor(Math.random() * 1000);
    await h.publishOk(node.url, metric(tenant, barrier));
    await h.until(() => received.includes(barrier), h.TIMEOUT, `barrier ${barrier} received`);
    const before = received.splice(0, received.length);
    return before.slice(0, before.indexOf(barrier));
  }

  before(async () => {
    cluster.redis = await startRedis();
    const env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `i${h.uid()}` };
    for (let i = 0; i < 2; i++) cluster.nodes.push(await h.startGateway({ env }));
    for (const node of cluster.nodes) {
      await h.until(async () => (await h.api(node.url, '/readyz')).body?.status === 'ready', 10000, 'the node is ready');
    }
    // On node B; the calls go through A, then B.
    frontend = await h.connectClient(cluster.nodes[1].url, { token: h.mintToken({ sub: 'u1', tenantId: tenant }) });
    frontend.on('update', (update) => received.push(update.payload.n));
    await h.subscribe(frontend, { type: 'tenant_activity' });
    await untilBarrier(cluster.nodes[0]);
  });

  after(async () => {
    frontend?.disconnect();
    for (const node of cluster.nodes) await node.stop();
    await cluster.redis?.stop();
  });

  it('answers a key sent to A then to B with the first answer, and delivers once', async () => {
    const [a, b] = cluster.nodes;
    const key = `k-${h.uid()}`;
    const first = await post(a.url, '/api/v1/events', metric(tenant, 1), key);
    assert.deepEqual([first.status, first.text, first.replayed], [202, '{"accepted":1}', false]);
    const again = await post(b.url, '/api/v1/events', metric(tenant, 1), key);
    assert.deepEqual([again.status, again.text, again.replayed], [202, first.text, true]);
    const other = await post(b.url, '/api/v1/events', metric(tenant, 2), key);
    assert.equal(other.status, 422, 'another body, through the other node');
    assert.deepEqual(await untilBarrier(b), [1]);
  });

  it('answers a notification repeated through the other node with the same id', async () => {
    const [a, b] = cluster.nodes;
    const key = `k-${h.uid()}`;
    const body = { recipient: { userId: 'nobody' }, content: { subject: 's', body: 'b' }, tenantId: tenant };
    const first = await post(a.url, '/api/v1/notifications', body, key);
    assert.equal(first.status, 202, first.text);
    const again = await post(b.url, '/api/v1/notifications', body, key);
    assert.deepEqual([again.status, again.text, again.replayed], [202, first.text, true]);
  });

  it('delivers an event id sent through A then through B once', async () => {
    const [a, b] = cluster.nodes;
    const id = `e-${h.uid()}`;
    const first = await post(a.url, '/api/v1/events', metric(tenant, 3, id));
    assert.deepEqual([first.status, JSON.parse(first.text)], [202, { accepted: 1 }]);
    const again = await post(b.url, '/api/v1/events', [metric(tenant, 4, id), metric(tenant, 5, `${id}-other`)]);
    assert.deepEqual([again.status, JSON.parse(again.text)], [202, { accepted: 2, duplicates: 1 }]);
    assert.deepEqual(await untilBarrier(a), [3, 5]);
  });

  it('delivers once when the same key reaches both nodes at the same time', async () => {
    const [a, b] = cluster.nodes;
    for (let round = 0; round < 5; round++) {
      const key = `k-${h.uid()}`;
      const answers = await Promise.all([a, b].map((node) => post(node.url, '/api/v1/events', metric(tenant, 10 + round), key)));
      const ran = answers.filter((r) => r.status === 202 && !r.replayed);
      const told = answers.filter((r) => r.status === 409 || (r.status === 202 && r.replayed));
      assert.equal(ran.length, 1, JSON.stringify(answers));
      assert.equal(told.length, 1, JSON.stringify(answers));
      const id = `e-${h.uid()}`;
      const byId = await Promise.all([a, b].map((node) => post(node.url, '/api/v1/events', metric(tenant, 20 + round, id))));
      assert.ok(byId.every((r) => r.status === 202 || r.status === 409), JSON.stringify(byId));
      assert.deepEqual(await untilBarrier(a), [10 + round, 20 + round]);
    }
  });

  it('keeps keys in the node\'s memory while Redis is away, and counts it', async () => {
    const [a] = cluster.nodes;
    await cluster.redis.kill();
    try {
      await h.until(async () => (await h.api(a.url, '/readyz')).body?.status === 'degraded', 10000, 'A degraded');
      const key = `k-${h.uid()}`;
      const first = await post(a.url, '/api/v1/events', metric(tenant, 30), key);
      assert.deepEqual([first.status, first.replayed], [202, false], first.text);
      const again = await post(a.url, '/api/v1/events', metric(tenant, 30), key);
      assert.deepEqual([again.status, again.text, again.replayed], [202, first.text, true]);
      assert.ok((await h.metric(a.url, 'idempotency_fallbacks_total')) >= 1);
    } finally {
      await cluster.redis.restart();
    }
    for (const node of cluster.nodes) {
      await h.until(async () => (await h.api(node.url, '/readyz')).body?.status === 'ready', 10000, 'ready again');
    }
    // The frontend is on B: it gets A's outage event once the bus carries it over.
    assert.deepEqual(await untilBarrier(a), [30]);
  });
});

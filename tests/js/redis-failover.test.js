// Three gateways carrying on through a Redis failover, with real failovers: a Redis Cluster
// (three masters, three replicas) whose master is SIGKILLed while a backend publishes steadily,
// and a Sentinel set whose master is SIGKILLed, or switched by `SENTINEL FAILOVER`. What is
// asserted is what docs/cluster.md promises: no event twice, each tenant's events in order,
// everything published after the promotion delivered on every node, a node's own events always
// delivered to its own sockets, and every event another node missed counted as a gap. What was
// lost in the window (accepted by the API, never delivered) is measured and printed, as a line
// `failover window: {...}` for collecting over runs. The Go hub's and @socket.io/redis-emitter's
// inputs are tested on a Cluster after the node holding their subscriptions dies.
//
// Every Redis process runs privately on free ports (tests/js/redis.js); CLUSTER_LOGS=1 prints the
// nodes' and Redis's logs at the end of each describe.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Emitter } from '@socket.io/redis-emitter';
import * as h from './helpers.js';
import { commandOn, startRedisCluster, startSentinel } from './redis.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const NAMES = ['A', 'B', 'C'];

/** Three gateways on `redis`, ready, filling `set.nodes` as they start (so `stopAll` stops them). */
async function startNodes(set, redis) {
  set.redis = redis;
  set.nodes = [];
  set.sockets = [];
  const prefix = `fo${h.uid()}`;
  set.prefix = prefix;
  for (const name of NAMES) {
    const node = await h.startGateway({ env: { REDIS_URL: redis.url, REDIS_PREFIX: prefix } });
    node.name = name;
    set.nodes.push(node);
  }
  await h.untilReady(set.nodes, 20_000);
}

async function stopAll(set) {
  if (process.env.CLUSTER_LOGS) {
    for (const node of set.nodes ?? []) console.log(`--- node ${node.name} (${node.url})\n${node.logs.join('\n')}`);
    if (set.redis) console.log(`--- redis (${set.redis.url})\n${set.redis.logs.join('')}`);
  }
  for (const socket of set.sockets ?? []) socket.disconnect();
  await Promise.all((set.nodes ?? []).map((node) => node.stop()));
  await set.redis?.stop();
}

/** A /workflow socket of `tenantId` on `node`, subscribed to its tenant's executions. */
async function watcher(set, node, tenantId) {
  const socket = await h.connectClient(node.url, { token: h.mintToken({ sub: 'watcher', tenantId }) });
  socket.node = node.name;
  socket.tenant = tenantId;
  set.sockets.push(socket);
  await h.subscribe(socket, { type: 'execution' });
  return socket;
}

/** The executionIds of the updates `socket` received and nobody took yet; takes them. */
function drain(socket) {
  const ids = h.pending(socket, 'update').map((u) => u.payload.executionId);
  socket.inbox = socket.inbox.filter((e) => e.event !== 'update');
  return ids;
}

/** Waits until every node answers /readyz `ready`; resolves to the milliseconds waited. */
async function allReady(nodes, timeoutMs) {
  const started = Date.now();
  await h.untilReady(nodes, timeoutMs);
  return Date.now() - started;
}

/**
 * The failover scenario on `set` (three ready nodes): six tenants, each published by one node
 * (tenant k by node k mod 3: a node's own events keep its order through an outage, events of
 * different senders do not, docs/cluster.md), one event every 20 ms per tenant, and a watcher of
 * every tenant on every node. `fail()` breaks Redis and resolves once the replacement serves
 * (its `{ what }` goes in the report). Asserts the promises and resolves to the measurement.
 */
async function publishThroughFailover(t, set, fail) {
  const tenants = Array.from({ length: 6 }, (_, k) => `t${k}-${h.uid()}`);
  const senderOf = (k) => set.nodes[k % set.nodes.length];
  const sockets = [];
  for (const tenant of tenants) for (const node of set.nodes) sockets.push(await watcher(set, node, tenant));

  // Every watcher receives before the failover.
  for (const [k, tenant] of tenants.entries()) await h.publishOk(senderOf(k).url, [h.event('execution.started', tenant, { executionId: 'warm' })]);
  for (const socket of sockets) assert.equal((await h.waitFor(socket, 'update', 10_000)).payload.executionId, 'warm', `warm-up on node ${socket.node}`);

  const missedBefore = await Promise.all(set.nodes.map((node) => h.metric(node.url, 'bus_missed_total')));
  const published = tenants.map(() => []);
  let refused = 0;
  let publishing = true;
  const publishers = tenants.map(async (tenant, k) => {
    for (let i = 0; publishing; i++) {
      const at = Date.now();
      let answer;
      try {
        answer = await h.publish(senderOf(k).url, [h.event('execution.started', tenant, { executionId: `e${i}` })], { timeoutMs: 10_000 });
      } catch (error) {
        answer = { status: error.name };
      }
      if (answer.status === 202) published[k].push({ i, at, done: Date.now() });
      else refused += 1;
      await sleep(20);
    }
  });
  await sleep(1500);
  const failedAt = Date.now();
  const { what } = await fail(tenants);
  const promotedAt = Date.now();
  note(t, `${what}: the replacement served ${promotedAt - failedAt} ms after the failure`);
  await sleep(3000);
  publishing = false;
  await Promise.all(publishers);
  const readyIn = await allReady(set.nodes, 30_000);

  // A last event per tenant, through its sender: everything else that will come comes before it.
  for (const [k, tenant] of tenants.entries()) await h.publishOk(senderOf(k).url, [h.event('execution.started', tenant, { executionId: 'end' })]);
  const got = new Map();
  for (const socket of sockets) {
    const ids = [];
    for (;;) {
      const id = (await h.waitFor(socket, 'update', 20_000).catch((error) => {
        throw new Error(`tenant ${socket.tenant} on node ${socket.node}, after ${ids.length} events: ${error.message}`);
      })).payload.executionId;
      if (id === 'end') break;
      ids.push(id);
    }
    got.set(socket, ids);
  }

  const missedAfter = await Promise.all(set.nodes.map((node) => h.metric(node.url, 'bus_missed_total')));
  const lost = [];
  for (const socket of sockets) {
    const k = tenants.indexOf(socket.tenant);
    const sender = senderOf(k);
    const ids = got.get(socket);
    const where = `tenant ${k} (sent by ${sender.name}) on node ${socket.node}`;
    const numbers = ids.map((id) => Number(id.slice(1)));
    assert.equal(new Set(numbers).size, numbers.length, `${where}: an event came twice: ${ids}`);
    for (let j = 1; j < numbers.length; j++) assert.ok(numbers[j] > numbers[j - 1], `${where}: out of order: ${numbers.slice(Math.max(0, j - 3), j + 2)}`);
    // Events whose call failed are neither required nor lost (one may still have gone out).
    const received = new Set(numbers);
    for (const p of published[k]) {
      if (received.has(p.i)) continue;
      lost.push({ node: socket.node, sender: sender.name, tenant: k, i: p.i, atMs: p.at - failedAt });
      assert.ok(p.at < promotedAt, `${where}: e${p.i}, published ${p.at - promotedAt} ms after the replacement served, never came`);
      assert.notEqual(socket.node, sender.name, `${where}: e${p.i} never came to a socket of the node that published it`);
    }
  }
  for (const [n, node] of set.nodes.entries()) {
    const lostHere = lost.filter((l) => l.node === node.name);
    // One event per bus message and one socket per tenant and node: each event a node lost is a
    // bus message it never applied, which it must have counted as missed (never silent).
    assert.equal(missedAfter[n] - missedBefore[n], lostHere.length, `node ${node.name} lost ${lostHere.length} events but counted ${missedAfter[n] - missedBefore[n]} as missed`);
  }
  const accepted = published.reduce((total, p) => total + p.length, 0);
  const measure = {
    what,
    promotedMs: promotedAt - failedAt,
    readyMs: readyIn,
    accepted,
    refused,
    lostDeliveries: lost.length,
    lostEvents: new Set(lost.map((l) => `${l.tenant}:${l.i}`)).size,
    lostWindowMs: lost.length ? [Math.min(...lost.map((l) => l.atMs)), Math.max(...lost.map((l) => l.atMs))] : null,
  };
  note(t, `failover window: ${JSON.stringify(measure)}`);
  return measure;
}

/**
 * The bus stream a tenant's messages go through on a Redis Cluster with the default 8 shards, as
 * the gateway names it (src/cluster/keys.rs: FNV-1a of the tenant, `{<prefix>:bus:<shard>}`).
 */
function busStreamOf(prefix, tenant, shards = 8) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(tenant)) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return `{${prefix}:bus:${hash % BigInt(shards)}}`;
}

function note(t, message) {
  t.diagnostic(message);
  if (process.env.FAILOVER_REPORT) console.log(message);
}

describe('three gateways on a Redis Cluster whose master is SIGKILLed mid-stream', { timeout: 180_000 }, () => {
  const set = {};
  before(async () => startNodes(set, await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 })));
  after(() => stopAll(set));

  it('carries on after the promotion: every later event on every node, per-tenant order, none twice, losses counted', async (t) => {
    await publishThroughFailover(t, set, async (tenants) => {
      // The master of the first tenant's bus stream: its events are in flight there.
      const stream = busStreamOf(set.prefix, tenants[0]);
      const length = await commandOn((await set.redis.masterOf(stream)).port, ['XLEN', stream]);
      const killed = await set.redis.killMaster(stream);
      await set.redis.waitFailover(killed);
      return { what: `cluster master on port ${killed.port} (slots ${killed.slots.map((r) => r.join('-'))}, holding ${stream} of ${length} entries) SIGKILLed` };
    });
  });
});

describe('three gateways on Sentinel whose master is SIGKILLed mid-stream', { timeout: 180_000 }, () => {
  const set = {};
  before(async () => startNodes(set, await startSentinel({ downAfterMs: 1000 })));
  after(() => stopAll(set));

  it('follows the Sentinels to the promoted replica: every later event on every node, per-tenant order, none twice, losses counted', async (t) => {
    await publishThroughFailover(t, set, async () => {
      const old = await set.redis.killMaster();
      const { port } = await set.redis.waitNewMaster(old);
      return { what: `Sentinel master on port ${old} SIGKILLed, replica on ${port} promoted` };
    });
  });
});

describe('three gateways on Sentinel switched by SENTINEL FAILOVER mid-stream', { timeout: 180_000 }, () => {
  const set = {};
  before(async () => startNodes(set, await startSentinel({ downAfterMs: 1000 })));
  after(() => stopAll(set));

  it('follows the switch, the old master now a replica: every later event on every node, per-tenant order, none twice, losses counted', async (t) => {
    await publishThroughFailover(t, set, async () => {
      const old = await set.redis.failover();
      const { port } = await set.redis.waitNewMaster(old);
      return { what: `SENTINEL FAILOVER from port ${old} to ${port}` };
    });
  });
});

describe("the Go hub's and @socket.io/redis-emitter's inputs on a Redis Cluster", { timeout: 120_000 }, () => {
  const set = {};
  before(async () => startNodes(set, await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 })));
  after(() => stopAll(set));

  /** A cluster client of the test, new after a failover (it does not follow one by itself here). */
  const client = async (t) => {
    const redis = await set.redis.client();
    t.after(() => redis.disconnect().catch(() => {}));
    return redis;
  };

  /**
   * Sends `send(n)` every 200 ms until every socket got one (`received(socket)` says so), then
   * stops; resolves to the milliseconds it took.
   */
  async function probeUntilEveryone(sockets, send, received, timeoutMs) {
    const started = Date.now();
    for (let n = 0; ; n++) {
      await send(n);
      await sleep(200);
      if (sockets.every(received)) return Date.now() - started;
      if (Date.now() - started > timeoutMs) {
        throw new Error(`after ${n + 1} probes, nodes ${sockets.filter((s) => !received(s)).map((s) => s.node)} still got none`);
      }
    }
  }

  it('delivers ws:broadcast:all and emitter broadcasts on every node once, also after the Redis node holding their subscriptions dies', async (t) => {
    const tenant = `in-${h.uid()}`;
    const watchers = [];
    const dashboards = [];
    for (const node of set.nodes) {
      watchers.push(await watcher(set, node, tenant));
      const dashboard = await h.connectClient(node.url, { namespace: '/realtime', welcome: 'connection:success', token: h.mintToken({ sub: 'd', tenantId: tenant }) });
      dashboard.node = node.name;
      set.sockets.push(dashboard);
      assert.deepEqual(await h.request(dashboard, 'subscribe:dashboard'), { success: true, room: 'dashboard' });
      dashboards.push(dashboard);
    }
    const hubSend = (redis, executionId) => redis.publish('ws:broadcast:all', JSON.stringify({ channel: 'executions', type: 'execution.started', data: { execution_id: executionId, tenant_id: tenant } }));
    const emit = (redis, payload) => new Emitter(redis).of('/realtime').to(`${tenant}/dashboard`).emit('dashboard:metrics', payload);

    /** One message through each input reaches every node once (a second one is the barrier). */
    const onceEach = async (redis, label) => {
      for (const round of [`${label}-1`, `${label}-2`]) {
        await hubSend(redis, round);
        emit(redis, { round });
        for (const socket of watchers) assert.equal((await h.waitFor(socket, 'update', 10_000)).payload.executionId, round, `hub input on node ${socket.node}`);
        for (const socket of dashboards) assert.deepEqual(await h.waitFor(socket, 'dashboard:metrics', 10_000), { round }, `emitter input on node ${socket.node}`);
      }
      for (const socket of [...watchers, ...dashboards]) assert.deepEqual(socket.inbox.filter((e) => e.event === 'update' || e.event === 'dashboard:metrics'), [], `left over on node ${socket.node}`);
    };
    await onceEach(await client(t), 'before');

    // The Redis nodes the gateways' subscriptions to ws:broadcast:all live on (PUBSUB NUMSUB
    // counts one node's own subscribers); the one with most of them is killed.
    const counts = [];
    for (const node of set.redis.nodes) counts.push({ node, n: Number((await commandOn(node.port, ['PUBSUB', 'NUMSUB', 'ws:broadcast:all']))[1]) });
    counts.sort((a, b) => b.n - a.n);
    assert.ok(counts.reduce((total, c) => total + c.n, 0) >= 3, `every gateway subscribes to ws:broadcast:all: ${counts.map((c) => `${c.node.port}:${c.n}`)}`);
    const victim = counts[0].node;
    const masters = await set.redis.masters();
    const master = masters.find((m) => m.port === victim.port);
    await victim.kill();
    if (master) note(t, `SIGKILLed master ${victim.port}, holding ${counts[0].n} subscriptions; failover took ${await set.redis.waitFailover(master)} ms`);
    else note(t, `SIGKILLed replica ${victim.port}, holding ${counts[0].n} subscriptions`);

    const after = await client(t);
    const hubMs = await probeUntilEveryone(watchers, (n) => hubSend(after, `probe-${n}`), (s) => h.pending(s, 'update').length > 0, 30_000);
    const emitterMs = await probeUntilEveryone(dashboards, (n) => emit(after, { probe: n }), (s) => h.pending(s, 'dashboard:metrics').length > 0, 30_000);
    note(t, `after the kill, the hub input reached every node within ${hubMs} ms of probing, the emitter input within ${emitterMs} ms`);
    await sleep(500);
    for (const socket of [...watchers, ...dashboards]) socket.inbox = socket.inbox.filter((e) => e.event !== 'update' && e.event !== 'dashboard:metrics');
    await onceEach(after, 'after');
  });
});

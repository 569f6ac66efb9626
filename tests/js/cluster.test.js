// Several gateways on one Redis acting as one: published events, raw emits and notifications
// reach every node's sockets exactly once and in call order, and every node builds the same
// last-known state; /ws relays and notification acks cross nodes; statistics and room sizes count
// the whole cluster; the Redis inputs backends already use (the Go hub's `ws:broadcast:all` and
// `@socket.io/redis-emitter`) reach every node once; and a Redis outage degrades the nodes to
// serving their own sockets, then heals: what was published meanwhile reaches the other nodes
// once, and nothing is delivered twice.
//
// Every describe runs its own private redis-server (tests/js/redis.js) on a free port, never the
// shared one on 6379, with a REDIS_PREFIX of its own. The last one puts a TCP proxy between one
// node and Redis, so that after an outage the nodes come back in a known order (in production
// they come back in whatever order their reconnect backoff gives). CLUSTER_LOGS=1 prints the
// nodes' logs at the end of each describe.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Emitter } from '@socket.io/redis-emitter';
import * as h from './helpers.js';
import { onOneRedisOnly, redisProxy, startRedis } from './redis.js';

const WELCOME = { '/': null, '/ws': 'connection.confirmed', '/realtime': 'connection:success', '/workflow': 'connected' };
const NAMES = ['A', 'B', 'C'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fixed event timestamp, `n` seconds into 2026. */
const ts = (n) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();


/** Logs a measurement where `node --test` shows it. */
function note(t, message) {
  t.diagnostic(message);
}

/**
 * Starts a private redis-server and `size` gateways on it, filling `cluster` as it goes (so the
 * `after` hook stops whatever did start, even when a start fails).
 */
async function startCluster(cluster, size, env = {}) {
  cluster.prefix = `c${h.uid()}`;
  cluster.nodes = [];
  cluster.sockets = [];
  cluster.clients = [];
  cluster.redis = await startRedis();
  for (let i = 0; i < size; i++) {
    const node = await h.startGateway({ env: { REDIS_URL: cluster.redis.url, REDIS_PREFIX: cluster.prefix, ...env } });
    node.name = NAMES[i];
    cluster.nodes.push(node);
  }
  await h.untilReady(cluster.nodes);
}

async function stopCluster(cluster) {
  // CLUSTER_LOGS=1 prints every node's log (and Redis's), for diagnosing a failure.
  if (process.env.CLUSTER_LOGS) {
    for (const node of cluster.nodes ?? []) console.log(`--- node ${node.name} (${node.url})\n${node.logs.join('\n')}`);
    if (cluster.redis) console.log(`--- redis-server ${cluster.redis.url}\n${cluster.redis.logs.join('')}`);
  }
  for (const socket of cluster.sockets ?? []) socket.disconnect();
  for (const client of cluster.clients ?? []) {
    // QUIT, not a disconnect: an emitter's PUBLISH is not awaited, and its answer may still be
    // on its way (the nodes can deliver before it comes); a disconnect would reject it unhandled.
    try {
      await client.quit();
    } catch {
      // already closed
    }
  }
  await Promise.all((cluster.nodes ?? []).map((node) => node.stop()));
  await cluster.redis?.stop();
}

/** A node-redis v4 client on the cluster's Redis (a cluster client on a Redis Cluster), closed with the cluster. */
async function redisClient(cluster) {
  const client = await cluster.redis.client();
  cluster.clients.push(client);
  return client;
}

/** A socket on `node`'s `namespace` for `claims`, past its welcome, closed when `t` ends. */
async function socketOn(t, node, namespace, claims) {
  const socket = await h.connectFor(t, node.url, { namespace, welcome: WELCOME[namespace], token: h.mintToken(claims) });
  socket.node = node.name;
  return socket;
}

/** A /workflow socket of `tenantId` on `node`, subscribed to every execution of its tenant. */
async function executionWatcher(t, node, tenantId, sub = 'u1') {
  const socket = await socketOn(t, node, '/workflow', { sub, tenantId });
  await h.subscribe(socket, { type: 'execution' });
  return socket;
}

/** The next `n` updates of `socket`, in order. */
async function nextUpdates(socket, n, timeoutMs = h.TIMEOUT) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await h.waitFor(socket, 'update', timeoutMs));
  return out;
}

/**
 * Barrier for /workflow execution watchers of `tenantId`: publishes one more execution through
 * `node` and asserts it is the next update of every socket, and nothing else is left: anything
 * delivered twice, or that should not have come, would have arrived first.
 */
async function workflowBarrier(node, tenantId, sockets) {
  const executionId = `barrier-${h.uid()}`;
  await h.publishOk(node.url, [h.event('execution.started', tenantId, { executionId })]);
  for (const socket of sockets) {
    const next = await h.waitFor(socket, 'update');
    assert.equal(next.payload.executionId, executionId, `on node ${socket.node}, ${JSON.stringify(next)} came before the barrier`);
    assert.deepEqual(h.pending(socket, 'update'), [], `on node ${socket.node}, left over after the barrier`);
  }
}

/** Joins a /ws room; the ack must be the room_joined data. */
async function join(socket, room) {
  const ack = await h.request(socket, 'join_room', { room });
  assert.equal(ack?.error, undefined, `join_room ${room} on node ${socket.node} was refused: ${JSON.stringify(ack?.error)}`);
  assert.equal((await h.waitFor(socket, 'room_joined')).room, room);
}

/** Sends a relay that must be accepted. */
async function relay(socket, event, payload, rooms) {
  const ack = await h.request(socket, 'send_message', { event, payload, rooms });
  assert.deepEqual(ack, { ok: true }, `send_message ${event} to ${rooms} from node ${socket.node} answered ${JSON.stringify(ack)}`);
}

/** What `got` has beyond `expected` (in the same order): {} when they are equal. */
function difference(got, expected) {
  if (got.length === expected.length && got.every((id, i) => id === expected[i])) return {};
  const count = new Map();
  for (const id of got) count.set(id, (count.get(id) ?? 0) + 1);
  const firstOutOfOrder = got.findIndex((id, i) => id !== expected[i]);
  return {
    twice: expected.filter((id) => count.get(id) > 1),
    missing: expected.filter((id) => !count.has(id)),
    firstOutOfOrder: firstOutOfOrder < 0 ? null : { at: firstOutOfOrder, got: got.slice(firstOutOfOrder, firstOutOfOrder + 5) },
    counts: { got: got.length, expected: expected.length },
  };
}

const readyz = (node) => h.api(node.url, '/readyz', undefined, { timeoutMs: 3000 });

/** GET /api/v1/stats on `node`, with an optional query. */
const stats = (node, query) => h.api(node.url, `/api/v1/stats${query ? `?${new URLSearchParams(query)}` : ''}`);

// ---------------------------------------------------------------------------------------------

describe('three gateways on one Redis', () => {
  const cluster = {};
  let A;
  let B;
  let C;

  before(async () => {
    await startCluster(cluster, 3);
    [A, B, C] = cluster.nodes;
  });
  after(() => stopCluster(cluster));

  it('delivers an event published on A to subscribers on A, B and C exactly once, and one published on B to A and C', async (t) => {
    const tenant = `pub-${h.uid()}`;
    const watchers = [await executionWatcher(t, A, tenant), await executionWatcher(t, B, tenant), await executionWatcher(t, C, tenant)];

    const fromA = { executionId: 'e1', workflowId: 'w1', status: 'running' };
    await h.publishOk(A.url, [h.event('execution.started', tenant, fromA, ts(1))]);
    for (const socket of watchers) {
      assert.deepEqual(h.unpositioned(await h.waitFor(socket, 'update')), { type: 'execution.started', payload: fromA, timestamp: ts(1) }, `on node ${socket.node}`);
    }
    await workflowBarrier(A, tenant, watchers);

    const fromB = { executionId: 'e2', workflowId: 'w1', status: 'running' };
    await h.publishOk(B.url, [h.event('execution.started', tenant, fromB, ts(2))]);
    for (const socket of watchers) {
      assert.deepEqual(h.unpositioned(await h.waitFor(socket, 'update')), { type: 'execution.started', payload: fromB, timestamp: ts(2) }, `on node ${socket.node}`);
    }
    await workflowBarrier(B, tenant, watchers);
  });

  it('builds the same state on every node: get_status and initial_data agree after events published through different nodes', async (t) => {
    const tenant = `state-${h.uid()}`;
    const watchers = [];
    for (const node of [A, B, C]) {
      const socket = await socketOn(t, node, '/workflow', { tenantId: tenant });
      await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      watchers.push(socket);
    }
    const created = { workflowId: 'w1', name: 'Nightly' };
    const started = { executionId: 'e1', workflowId: 'w1', status: 'running' };
    const step = { executionId: 'e1', workflowId: 'w1', stepId: 's1', status: 'completed' };
    const completed = { executionId: 'e1', workflowId: 'w1', status: 'completed', durationMs: 1200 };
    await h.publishOk(C.url, [h.event('workflow.created', tenant, created, ts(1))]);
    await h.publishOk(A.url, [h.event('execution.started', tenant, started, ts(2))]);
    await h.publishOk(C.url, [h.event('step.completed', tenant, step, ts(3))]);
    await h.publishOk(B.url, [h.event('execution.completed', tenant, completed, ts(4))]);
    for (const socket of watchers) {
      assert.deepEqual((await nextUpdates(socket, 3)).map((u) => u.type), ['execution.started', 'step.completed', 'execution.completed'], `on node ${socket.node}`);
    }

    const execution = { ...started, ...completed, steps: { s1: step }, lastEvent: 'execution.completed', updatedAt: ts(4) };
    const workflow = {
      ...created,
      lastEvent: 'workflow.created',
      updatedAt: ts(1),
      lastExecution: { executionId: 'e1', status: 'completed', lastEvent: 'execution.completed', updatedAt: ts(4) },
    };
    const activity = [
      { type: 'workflow.created', data: created, timestamp: ts(1) },
      { type: 'execution.started', data: started, timestamp: ts(2) },
      { type: 'step.completed', data: step, timestamp: ts(3) },
      { type: 'execution.completed', data: completed, timestamp: ts(4) },
    ];
    for (const socket of watchers) {
      const on = `on node ${socket.node}`;
      const status = async (payload) => {
        const ack = await h.request(socket, 'get_status', payload);
        assert.deepEqual(ack, await h.waitFor(socket, 'status_response'));
        return ack.status;
      };
      assert.deepEqual(await status({ executionId: 'e1' }), execution, `get_status execution ${on}`);
      assert.deepEqual(await status({ workflowId: 'w1' }), workflow, `get_status workflow ${on}`);

      const all = await h.subscribe(socket, { type: 'execution' });
      assert.deepEqual(all.initial.data, [execution], `initial_data of execution:* ${on}`);
      const one = await h.subscribe(socket, { type: 'workflow', resourceId: 'w1' });
      assert.deepEqual(one.initial.data, workflow, `initial_data of workflow:w1 ${on}`);
      const recent = await h.subscribe(socket, { type: 'tenant_activity' });
      assert.deepEqual(recent.initial.data, activity, `initial_data of tenant_activity ${on}`);
    }
  });

  it('delivers 50 events published alternately through A and B to C (and A and B) complete and in call order', async (t) => {
    const tenant = `order-${h.uid()}`;
    const watchers = [await executionWatcher(t, C, tenant), await executionWatcher(t, A, tenant), await executionWatcher(t, B, tenant)];
    const N = 50;
    for (let i = 0; i < N; i++) {
      await h.publishOk((i % 2 === 0 ? A : B).url, [h.event('execution.started', tenant, { executionId: `e${i}`, seq: i })]);
    }
    const expected = Array.from({ length: N }, (_, i) => i);
    for (const socket of watchers) {
      const got = (await nextUpdates(socket, N)).map((u) => u.payload.seq);
      assert.deepEqual(got, expected, `the order on node ${socket.node}`);
    }
    await workflowBarrier(C, tenant, watchers);
  });

  it('relays a /ws send_message from A to the room members on A, B and C once, never to the sender; refuses a room the sender is not in', async (t) => {
    const tenant = `relay-${h.uid()}`;
    const sender = await socketOn(t, A, '/ws', { sub: 'alice', tenantId: tenant });
    const local = await socketOn(t, A, '/ws', { sub: 'dave', tenantId: tenant });
    const onB = await socketOn(t, B, '/ws', { sub: 'bob', tenantId: tenant });
    const onC = await socketOn(t, C, '/ws', { sub: 'carol', tenantId: tenant });
    const receivers = [local, onB, onC];
    for (const socket of [sender, ...receivers]) await join(socket, 'chat.c1');
    for (const socket of [onB, onC]) await join(socket, 'global.general');

    await relay(sender, 'chat.message', { text: 'hi' }, ['chat.c1']);
    for (const socket of receivers) {
      const got = await h.waitFor(socket, 'chat.message');
      assert.deepEqual(got, { text: 'hi', from: { userId: 'alice', socketId: sender.welcome.socketId }, timestamp: got.timestamp }, `on node ${socket.node}`);
    }

    // global.general exists on B and C, but the sender is not in it.
    const ack = await h.request(sender, 'send_message', { event: 'chat.message', payload: { text: 'leak' }, rooms: ['global.general'] });
    assert.equal(ack?.error?.type, 'permission', `a relay to a room the sender is not in answered ${JSON.stringify(ack)}`);
    assert.equal((await h.waitFor(sender, 'error')).type, 'permission');

    // Same sender, same node: had `hi` been delivered twice or `leak` at all, they would come first.
    await relay(sender, 'chat.message', { text: 'barrier from alice' }, ['chat.c1']);
    for (const socket of receivers) {
      assert.equal((await h.waitFor(socket, 'chat.message')).text, 'barrier from alice', `on node ${socket.node}`);
    }
    // The sender's barrier: its own messages, had they come back, were delivered on A before this.
    await relay(onC, 'chat.message', { text: 'from carol' }, ['chat.c1']);
    for (const socket of [sender, local, onB]) {
      const got = await h.waitFor(socket, 'chat.message');
      assert.equal(got.text, 'from carol', `on node ${socket.node}: ${JSON.stringify(got)} came first`);
      assert.deepEqual(got.from, { userId: 'carol', socketId: onC.welcome.socketId });
    }
    for (const socket of [sender, ...receivers]) {
      assert.deepEqual(h.pending(socket, 'chat.message'), [], `left over on node ${socket.node} (${socket.welcome.userId})`);
      assert.deepEqual(h.pending(socket, 'error'), [], `errors on node ${socket.node}`);
    }
  });

  it('keeps the order of one sender\'s relays on every node: 30 chat messages sent without waiting arrive in order', async (t) => {
    const tenant = `order-${h.uid()}`;
    const sender = await socketOn(t, A, '/ws', { sub: 'alice', tenantId: tenant });
    const receivers = [await socketOn(t, A, '/ws', { sub: 'dave', tenantId: tenant }), await socketOn(t, B, '/ws', { sub: 'bob', tenantId: tenant }), await socketOn(t, C, '/ws', { sub: 'carol', tenantId: tenant })];
    for (const socket of [sender, ...receivers]) await join(socket, 'chat.order');
    const acks = [];
    for (let i = 0; i < 30; i++) {
      acks.push(h.request(sender, 'send_message', { event: 'chat.message', payload: { n: i }, rooms: ['chat.order'] }));
    }
    for (const ack of await Promise.all(acks)) assert.deepEqual(ack, { ok: true });
    for (const socket of receivers) {
      const got = [];
      for (let i = 0; i < 30; i++) got.push((await h.waitFor(socket, 'chat.message')).n);
      assert.deepEqual(got, [...Array(30).keys()], `order on node ${socket.node}`);
    }
  });

  it("counts the user's sockets on every node for a notification with acknowledgments sent through A: {sockets: 2, acknowledged: 2}", async (t) => {
    const tenant = `ack-${h.uid()}`;
    const onB = await socketOn(t, B, '/', { sub: 'nina', tenantId: tenant });
    const onC = await socketOn(t, C, '/', { sub: 'nina', tenantId: tenant });
    const someoneElse = await socketOn(t, A, '/', { sub: 'otto', tenantId: tenant });
    for (const socket of [onB, onC, someoneElse]) socket.on('notification:new', (n, ack) => ack?.());

    const content = { subject: 'across nodes', body: 'ack me', data: { n: 1 } };
    const ackTimeoutMs = 1500;
    const started = Date.now();
    const { status, body } = await h.api(A.url, '/api/v1/notifications', {
      recipient: { userId: 'nina' },
      content,
      tenantId: tenant,
      enableAcknowledgments: true,
      ackTimeoutMs,
    }, { timeoutMs: ackTimeoutMs + 5000 });
    const elapsed = Date.now() - started;
    note(t, `notification with acks across nodes answered in ${elapsed} ms (ackTimeoutMs ${ackTimeoutMs})`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 2, acknowledged: 2 }, JSON.stringify(body));
    // Within the caller's timeout (plus a grace for the other nodes' answers), never the
    // adapter's 5 s request timeout on top of it.
    assert.ok(elapsed <= ackTimeoutMs + 2000, `answered after ${elapsed} ms`);
    for (const socket of [onB, onC]) {
      const n = await h.waitFor(socket, 'notification:new', h.TIMEOUT, (x) => x?.id === body.id);
      assert.deepEqual({ subject: n.subject, body: n.body, data: n.data }, content, `on node ${socket.node}`);
    }

    // otto's barrier: the first notification he gets is his own.
    const barrier = await h.api(A.url, '/api/v1/notifications', { recipient: { userId: 'otto' }, content: { subject: 'barrier', body: 'b' }, tenantId: tenant });
    assert.equal(barrier.status, 202, JSON.stringify(barrier.body));
    assert.equal((await h.waitFor(someoneElse, 'notification:new')).id, barrier.body.id, "another user received nina's notification");
    for (const socket of [onB, onC]) assert.deepEqual(h.pending(socket, 'notification:new'), [], `left over on node ${socket.node}`);
  });

  it("sends a raw /api/v1/emit through A to /ws tenant.T.users on every node once, and to no other tenant", async (t) => {
    const tenant = `emit-${h.uid()}`;
    const other = `emit-other-${h.uid()}`;
    const users = [
      await socketOn(t, A, '/ws', { sub: 'a', tenantId: tenant }),
      await socketOn(t, B, '/ws', { sub: 'b', tenantId: tenant }),
      await socketOn(t, C, '/ws', { sub: 'c', tenantId: tenant }),
    ];
    const stranger = await socketOn(t, B, '/ws', { sub: 'a', tenantId: other });
    const emit = async (node, tenantId, data) => {
      const body = { namespace: '/ws', rooms: [`tenant.${tenantId}.users`], event: 'cluster.emit', data, tenantId };
      assert.deepEqual(await h.api(node.url, '/api/v1/emit', body), { status: 202, body: { rooms: 1 } }, JSON.stringify(body));
    };

    await emit(A, tenant, { marker: 'm1' });
    for (const socket of users) assert.deepEqual(await h.waitFor(socket, 'cluster.emit'), { marker: 'm1' }, `on node ${socket.node}`);
    await emit(A, tenant, { marker: 'barrier' });
    for (const socket of users) {
      assert.deepEqual(await h.waitFor(socket, 'cluster.emit'), { marker: 'barrier' }, `on node ${socket.node}: m1 came twice`);
      assert.deepEqual(h.pending(socket, 'cluster.emit'), []);
    }
    await emit(A, other, { marker: 'other barrier' });
    assert.deepEqual(await h.waitFor(stranger, 'cluster.emit'), { marker: 'other barrier' }, "the other tenant's socket received this tenant's emit");
    assert.deepEqual(h.pending(stranger, 'cluster.emit'), []);
  });

  it('counts sockets of B and C in GET /api/v1/stats on A, and room sizes across nodes', async (t) => {
    const tenant = `stats-${h.uid()}`;
    const wsB1 = await socketOn(t, B, '/ws', { sub: 'u1', tenantId: tenant });
    await socketOn(t, B, '/ws', { sub: 'u2', tenantId: tenant });
    const wsC = await socketOn(t, C, '/ws', { sub: 'u3', tenantId: tenant });
    await socketOn(t, C, '/', { sub: 'u1', tenantId: tenant });
    await socketOn(t, C, '/workflow', { sub: 'u1', tenantId: tenant });
    await join(wsB1, 'global.general');
    await join(wsC, 'global.general');

    const counts = (body) => ({
      nodes: body.nodes,
      ws: body.namespaces?.['/ws']?.tenants?.[tenant] ?? 0,
      main: body.namespaces?.['/']?.tenants?.[tenant] ?? 0,
      workflow: body.namespaces?.['/workflow']?.tenants?.[tenant] ?? 0,
    });
    const settled = async (node, expected) => {
      const started = Date.now();
      await h.until(async () => {
        const { status, body } = await stats(node);
        if (status !== 200) return { status, body };
        const got = counts(body);
        return JSON.stringify(got) === JSON.stringify(expected) || got;
      }, 5000, `the cluster counts on node ${node.name}`, 100);
      return Date.now() - started;
    };
    const waited = await settled(A, { nodes: 3, ws: 3, main: 1, workflow: 1 });
    note(t, `stats on A counted the sockets of B and C after ${waited} ms`);

    const size = async (node, query) => {
      const { status, body } = await stats(node, query);
      assert.equal(status, 200, `${JSON.stringify(query)}: ${JSON.stringify(body)}`);
      return body.room.sockets;
    };
    assert.equal(await size(A, { namespace: '/ws', room: 'global.general', tenantId: tenant }), 2, 'global.general, members on B and C');
    assert.equal(await size(A, { namespace: '/ws', room: `tenant.${tenant}.users`, tenantId: tenant }), 3);
    assert.equal(await size(A, { namespace: '/ws', room: 'user.u1.notifications', tenantId: tenant }), 1);
    assert.equal(await size(A, { namespace: '/', room: 'user:u1', tenantId: tenant }), 1);
    assert.equal(await size(B, { namespace: '/ws', room: 'global.general', tenantId: tenant }), 2, 'asked on B');

    wsC.disconnect();
    await settled(A, { nodes: 3, ws: 2, main: 1, workflow: 1 });
    await h.until(async () => (await size(A, { namespace: '/ws', room: 'global.general', tenantId: tenant })) === 1, 5000, 'global.general after a disconnect on C');
  });

  it('delivers a Go hub message PUBLISHed on ws:broadcast:all to /workflow subscribers of its tenant on every node once; an unroutable type reaches no one', async (t) => {
    const tenant = `hub-${h.uid()}`;
    const other = `hub-other-${h.uid()}`;
    const watchers = [await executionWatcher(t, A, tenant), await executionWatcher(t, B, tenant), await executionWatcher(t, C, tenant)];
    const stranger = await executionWatcher(t, B, other);
    const hub = await redisClient(cluster);
    const send = async (message) => hub.publish('ws:broadcast:all', JSON.stringify(message));

    const data = { execution_id: 'e1', workflow_id: 'w1', tenant_id: tenant, status: 'running' };
    const listeners = await send({ channel: 'executions', type: 'execution.started', data });
    // On a Redis Cluster, PUBLISH counts the subscribers of the node it ran on only.
    const subscribers = cluster.redis.mode === 'cluster' ? await cluster.redis.subscribers('ws:broadcast:all') : listeners;
    assert.equal(subscribers, 3, 'every node subscribes to ws:broadcast:all');
    for (const socket of watchers) {
      const update = await h.waitFor(socket, 'update');
      assert.equal(update.type, 'execution.started', `on node ${socket.node}`);
      assert.deepEqual(update.payload, { ...data, executionId: 'e1', workflowId: 'w1', tenantId: tenant }, `camelCase aliases on node ${socket.node}`);
      assert.ok(Number.isFinite(Date.parse(update.timestamp)), `timestamp ${update.timestamp}`);
    }

    // Routed nowhere: dropped by every node, which keep working.
    await send({ channel: 'approvals', type: 'approval.required', data: { approval_id: 'a1', execution_id: 'e1', tenant_id: tenant } });
    // The barrier, through the same channel, with the tenant beside `type` this time.
    await send({ channel: 'executions', type: 'execution.completed', tenantId: tenant, data: { execution_id: 'e1', status: 'completed' } });
    for (const socket of watchers) {
      const next = await h.waitFor(socket, 'update');
      assert.equal(next.type, 'execution.completed', `on node ${socket.node}: ${JSON.stringify(next)} came before the barrier`);
      assert.deepEqual(h.pending(socket, 'update'), [], `left over on node ${socket.node}`);
    }
    await send({ channel: 'executions', type: 'execution.started', data: { execution_id: 'theirs', tenant_id: other } });
    assert.equal((await h.waitFor(stranger, 'update')).payload.executionId, 'theirs', "another tenant's socket received this tenant's hub message");
    assert.deepEqual(h.pending(stranger, 'update'), []);

    // Every node built its state from the hub messages.
    for (const socket of watchers) {
      const status = (await h.request(socket, 'get_status', { executionId: 'e1' })).status;
      assert.equal(status?.status, 'completed', `get_status on node ${socket.node}: ${JSON.stringify(status)}`);
      assert.equal(status?.lastEvent, 'execution.completed');
    }
    for (const node of cluster.nodes) assert.equal((await h.api(node.url, '/healthz')).status, 200, `node ${node.name}`);
  });

  it("delivers @socket.io/redis-emitter broadcasts to a /realtime tenant room on every node once, and not to another tenant's", async (t) => {
    const tenant = `em-${h.uid()}`;
    const other = `em-other-${h.uid()}`;
    const dashboards = [];
    for (const node of [A, B, C]) dashboards.push(await socketOn(t, node, '/realtime', { sub: 'u1', tenantId: tenant }));
    const stranger = await socketOn(t, B, '/realtime', { sub: 'u1', tenantId: other });
    for (const socket of [...dashboards, stranger]) {
      assert.deepEqual(await h.request(socket, 'subscribe:dashboard'), { success: true, room: 'dashboard' }, `on node ${socket.node}`);
    }
    const emitter = new Emitter(await redisClient(cluster));
    const realtime = emitter.of('/realtime');

    realtime.to(`${tenant}/dashboard`).emit('dashboard:metrics', { activeContracts: 12, revenue: 1200.5 });
    for (const socket of dashboards) {
      assert.deepEqual(await h.waitFor(socket, 'dashboard:metrics'), { activeContracts: 12, revenue: 1200.5 }, `on node ${socket.node}`);
    }
    realtime.to(`${tenant}/dashboard`).emit('dashboard:metrics', { barrier: true });
    for (const socket of dashboards) {
      assert.deepEqual(await h.waitFor(socket, 'dashboard:metrics'), { barrier: true }, `on node ${socket.node}: the first came twice`);
      assert.deepEqual(h.pending(socket, 'dashboard:metrics'), []);
    }
    realtime.to(`${other}/dashboard`).emit('dashboard:metrics', { theirs: true });
    assert.deepEqual(await h.waitFor(stranger, 'dashboard:metrics'), { theirs: true }, "the other tenant's dashboard received this tenant's metrics");
    assert.deepEqual(h.pending(stranger, 'dashboard:metrics'), []);
  });

  it("delivers @socket.io/redis-emitter broadcasts to bare names of tenant rooms in every tenant, as a Node backend's io.to('dashboard') did", async (t) => {
    const [one, two] = [`bare-${h.uid()}`, `bare-${h.uid()}`];
    const dashboards = [
      await socketOn(t, A, '/realtime', { sub: 'u1', tenantId: one }),
      await socketOn(t, B, '/realtime', { sub: 'u2', tenantId: two }),
    ];
    const notDashboard = await socketOn(t, C, '/realtime', { sub: 'u3', tenantId: one });
    for (const socket of dashboards) assert.deepEqual(await h.request(socket, 'subscribe:dashboard'), { success: true, room: 'dashboard' });
    const users = [await socketOn(t, A, '/ws', { sub: 'carol', tenantId: one }), await socketOn(t, C, '/ws', { sub: 'dave', tenantId: one })];
    const emitter = new Emitter(await redisClient(cluster));

    emitter.of('/realtime').to('dashboard').emit('dashboard:metrics', { all: true });
    for (const socket of dashboards) assert.deepEqual(await h.waitFor(socket, 'dashboard:metrics'), { all: true }, `on node ${socket.node}`);
    // A name that carries its tenant (or user) reaches that room only.
    emitter.of('/ws').to(`tenant.${one}.users`).emit('tenant.notice', { n: 1 });
    emitter.of('/ws').to('user.carol.private').emit('private.notice', { n: 2 });
    for (const socket of users) assert.deepEqual(await h.waitFor(socket, 'tenant.notice'), { n: 1 }, `on node ${socket.node}`);
    assert.deepEqual(await h.waitFor(users[0], 'private.notice'), { n: 2 });
    // Barriers: nothing else arrived first, nor twice.
    emitter.of('/realtime').emit('everyone', {});
    emitter.of('/ws').emit('everyone', {});
    for (const socket of [...dashboards, notDashboard, ...users]) {
      await h.waitFor(socket, 'everyone');
      assert.deepEqual(h.pending(socket, 'dashboard:metrics'), [], `on node ${socket.node}`);
      assert.deepEqual(h.pending(socket, 'private.notice'), [], `on node ${socket.node}`);
    }
  });

  it('delivers @socket.io/redis-emitter broadcasts to a /ws global room and to the whole /ws namespace on every node once', async (t) => {
    const tenant = `emws-${h.uid()}`;
    const admins = [
      await socketOn(t, A, '/ws', { sub: 'root-a', tenantId: tenant, roles: ['platform_admin'] }),
      await socketOn(t, C, '/ws', { sub: 'root-c', tenantId: tenant, roles: ['super_admin'] }),
    ];
    for (const socket of admins) assert.ok(socket.welcome.rooms.includes('platform.admins'), JSON.stringify(socket.welcome.rooms));
    const users = [
      await socketOn(t, B, '/ws', { sub: 'u1', tenantId: tenant }),
      await socketOn(t, C, '/ws', { sub: 'u2', tenantId: `${tenant}-2` }),
    ];
    const everyone = [...admins, ...users];
    const ws = new Emitter(await redisClient(cluster)).of('/ws');

    ws.to('platform.admins').emit('platform.notice', { text: 'maintenance at noon' });
    for (const socket of admins) assert.deepEqual(await h.waitFor(socket, 'platform.notice'), { text: 'maintenance at noon' }, `on node ${socket.node}`);

    ws.emit('everyone.notice', { n: 1 });
    for (const socket of everyone) assert.deepEqual(await h.waitFor(socket, 'everyone.notice'), { n: 1 }, `on node ${socket.node}`);
    ws.emit('everyone.notice', { n: 'barrier' });
    for (const socket of everyone) {
      assert.deepEqual(await h.waitFor(socket, 'everyone.notice'), { n: 'barrier' }, `on node ${socket.node}: the first came twice`);
      assert.deepEqual(h.pending(socket, 'everyone.notice'), []);
      assert.deepEqual(h.pending(socket, 'platform.notice'), [], `on node ${socket.node} (${socket.welcome.userId})`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

// Outages. The waits say which node and which step they were for, since a message lost between
// nodes shows up only as a timeout.

/** `h.waitFor`, with the node and the step in the error. */
async function waitOn(socket, event, what, timeoutMs = h.TIMEOUT) {
  try {
    return await h.waitFor(socket, event, timeoutMs);
  } catch (error) {
    throw new Error(`${what}, on node ${socket.node}: ${error.message}`);
  }
}

/** The executionId of the next update of `socket`. */
const nextExecution = async (socket, what, timeoutMs) => (await waitOn(socket, 'update', what, timeoutMs)).payload.executionId;

/** Polls /readyz of `node` until its status is `status`; resolves to the milliseconds waited. */
async function readyzUntil(node, status, timeoutMs) {
  const started = Date.now();
  await h.until(async () => {
    const answer = await readyz(node).catch((error) => ({ error: error.message }));
    return (answer.status === 200 && answer.body?.status === status) || answer;
  }, timeoutMs, `node ${node.name} ${status}`, 50);
  return Date.now() - started;
}

/** Resolves once `node` has logged a line whose message is `message` after line `from`. */
async function logged(node, message, from, timeoutMs) {
  await h.until(() => node.logs.slice(from).some((line) => line.includes(`"message":"${message}"`)) || `not yet`, timeoutMs, `node ${node.name} logging "${message}"`, 20);
}

describe('a Redis outage, and the recovery', () => {
  const cluster = {};
  let A;
  let B;
  const tenant = `outage-${h.uid()}`;
  /** /workflow execution watchers on A and B. */
  let wfA;
  let wfB;
  /** /ws members of `chat.o`: two on A, one on B. */
  let wsA;
  let wsA2;
  let wsB;
  /** When Redis answered PING again. */
  let redisBackAt;

  const open = async (node, namespace, claims) => {
    const socket = await h.connectClient(node.url, { namespace, welcome: WELCOME[namespace], token: h.mintToken({ tenantId: tenant, ...claims }) });
    socket.node = node.name;
    cluster.sockets.push(socket);
    return socket;
  };
  const publishExecution = async (node, executionId) => {
    const { status, body } = await h.publish(node.url, [h.event('execution.started', tenant, { executionId })]);
    assert.deepEqual({ status, body }, { status: 202, body: { accepted: 1 } }, `publish ${executionId} on node ${node.name}`);
  };

  before(async () => {
    await startCluster(cluster, 2);
    [A, B] = cluster.nodes;
    wfA = await open(A, '/workflow', { sub: 'w1' });
    wfB = await open(B, '/workflow', { sub: 'w2' });
    for (const socket of [wfA, wfB]) await h.subscribe(socket, { type: 'execution' });
    wsA = await open(A, '/ws', { sub: 'a' });
    wsA2 = await open(A, '/ws', { sub: 'a2' });
    wsB = await open(B, '/ws', { sub: 'b' });
    for (const socket of [wsA, wsA2, wsB]) await join(socket, 'chat.o');
    // The cluster works before the outage.
    await publishExecution(B, 'before');
    for (const socket of [wfA, wfB]) assert.equal(await nextExecution(socket, 'the event published before the outage'), 'before');
  });
  after(() => stopCluster(cluster));

  it('says degraded on /readyz, with a reason naming Redis, within a few seconds of Redis dying; /healthz stays 200', async (t) => {
    for (const node of cluster.nodes) assert.deepEqual((await readyz(node)).body, { status: 'ready' }, `node ${node.name} before the outage`);
    const killedAt = Date.now();
    await cluster.redis.kill();
    for (const node of cluster.nodes) {
      await readyzUntil(node, 'degraded', 5000);
      note(t, `node ${node.name} reported degraded ${Date.now() - killedAt} ms after Redis was killed`);
      const { status, body } = await readyz(node);
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(body).sort(), ['reason', 'status']);
      assert.match(body.reason, /redis/i, body.reason);
      assert.equal((await h.api(node.url, '/healthz')).status, 200, `/healthz on node ${node.name}`);
    }
  });

  it("keeps serving each node's own sockets: a publish on A is accepted and delivered on A but not on B, and a relay stays on A", async (t) => {
    const started = Date.now();
    await publishExecution(A, 'outage-a1');
    note(t, `a publish on A during the outage answered 202 in ${Date.now() - started} ms`);
    assert.equal(await nextExecution(wfA, 'local delivery during the outage'), 'outage-a1');

    // B's own publish is B's barrier: had A's event reached B, it would have come first.
    await publishExecution(B, 'outage-b1');
    assert.equal(await nextExecution(wfB, "B's own publish during the outage"), 'outage-b1', "B received A's outage event during the outage");
    assert.deepEqual(h.pending(wfB, 'update'), []);
    // And A's barrier for B's event.
    await publishExecution(A, 'outage-a2');
    assert.equal(await nextExecution(wfA, "A's second publish during the outage"), 'outage-a2', "A received B's outage event during the outage");
    assert.deepEqual(h.pending(wfA, 'update'), []);

    const relayStarted = Date.now();
    await relay(wsA, 'chat.message', { text: 'during' }, ['chat.o']);
    note(t, `a relay on A during the outage was acked in ${Date.now() - relayStarted} ms`);
    assert.equal((await waitOn(wsA2, 'chat.message', 'a relay to a member on the same node during the outage')).text, 'during');
  });

  it('says ready again on both nodes after Redis restarts on the same port (recovery time logged)', async (t) => {
    const restartAt = Date.now();
    await cluster.redis.restart();
    redisBackAt = Date.now();
    note(t, `redis-server restarted on port ${cluster.redis.port} and answered PING after ${redisBackAt - restartAt} ms`);
    for (const node of cluster.nodes) {
      await readyzUntil(node, 'ready', 15000);
      note(t, `node ${node.name} ready again ${Date.now() - redisBackAt} ms after Redis answered PING again`);
    }
    for (const node of cluster.nodes) assert.deepEqual((await readyz(node)).body, { status: 'ready' });
  });

  it("after recovery: each node's outage events reach the other once and in order, new events and relays cross nodes again, nothing twice", async (t) => {
    assert.ok(redisBackAt, 'Redis was restarted');
    assert.equal(await nextExecution(wfB, "A's first outage event, kept and sent after recovery"), 'outage-a1');
    assert.equal(await nextExecution(wfB, "A's second outage event, kept and sent after recovery"), 'outage-a2');
    assert.equal(await nextExecution(wfA, "B's outage event, kept and sent after recovery"), 'outage-b1');
    note(t, `the kept outage events had reached the other node ${Date.now() - redisBackAt} ms after Redis came back`);

    await publishExecution(B, 'after-b');
    for (const socket of [wfA, wfB]) assert.equal(await nextExecution(socket, 'a new event published on B after recovery'), 'after-b');

    await relay(wsA, 'chat.message', { text: 'after' }, ['chat.o']);
    for (const socket of [wsB, wsA2]) {
      const got = await waitOn(socket, 'chat.message', 'a relay from A after recovery');
      assert.equal(got.text, 'after', `on node ${socket.node}: ${JSON.stringify(got)} came first (the outage relay must not reach B late)`);
    }
    await relay(wsB, 'chat.message', { text: 'from b' }, ['chat.o']);
    for (const socket of [wsA, wsA2]) assert.equal((await waitOn(socket, 'chat.message', 'a relay from B after recovery')).text, 'from b');

    // Barriers: nothing was delivered twice, to anyone.
    await publishExecution(A, 'final');
    for (const socket of [wfA, wfB]) {
      assert.equal(await nextExecution(socket, 'the final barrier'), 'final', `on node ${socket.node}`);
      assert.deepEqual(h.pending(socket, 'update'), [], `left over on node ${socket.node}`);
    }
    await relay(wsA, 'chat.message', { text: 'final' }, ['chat.o']);
    for (const socket of [wsB, wsA2]) assert.equal((await waitOn(socket, 'chat.message', 'the final relay barrier')).text, 'final');
    for (const socket of [wsA, wsA2, wsB]) assert.deepEqual(h.pending(socket, 'chat.message'), [], `left over on node ${socket.node} (${socket.welcome.userId})`);
  });

  it('lost no gateway: both processes still run, answer /healthz, and count each other in stats again', async () => {
    for (const node of cluster.nodes) {
      assert.equal(node.child.exitCode, null, `node ${node.name} exited`);
      assert.equal(node.child.signalCode, null, `node ${node.name} was killed`);
      assert.equal((await h.api(node.url, '/healthz')).status, 200, `/healthz on node ${node.name}`);
      await h.until(async () => {
        const { body } = await stats(node);
        return body?.nodes === 2 || body;
      }, 5000, `node ${node.name} counting both nodes`, 100);
    }
  });
});

// ---------------------------------------------------------------------------------------------


describe('a Redis that hangs (SIGSTOP) while events are published, then wakes', () => {
  const cluster = {};
  before(() => startCluster(cluster, 2));
  after(() => stopCluster(cluster));

  it('delivers every event once and in order on each node: an append that timed out but went through is not applied twice', async (t) => {
    const [A, B] = cluster.nodes;
    const tenant = `hang-${h.uid()}`;
    const watchers = [];
    for (const node of [A, B]) {
      const socket = await h.connectClient(node.url, { token: h.mintToken({ tenantId: tenant }) });
      socket.node = node.name;
      cluster.sockets.push(socket);
      await h.subscribe(socket, { type: 'execution' });
      watchers.push(socket);
    }
    // Events published through A one after another, every 10 ms (a busy backend, but no burst
    // beyond a socket's buffer when a backlog arrives), so that an append is in flight when
    // Redis hangs, most likely: it hangs twice, for 1.5 s, longer than the bus's 1 s
    // append timeout; the appends that timed out run when it wakes. An append that Redis ran,
    // and whose entry A's reader read, can answer the timeout all the same (Redis was stopped
    // between writing the two answers): A must not apply it twice.
    const ids = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        ids.push(`h${i}`);
        await h.publishOk(A.url, h.event('execution.started', tenant, { executionId: `h${i}` }));
        await sleep(10);
      }
    })();
    for (const wait of [1000, 1500]) {
      await sleep(wait);
      cluster.redis.pause();
      await sleep(1500);
      cluster.redis.resume();
    }
    await sleep(500);
    publishing = false;
    await publisher;
    // A barrier published after the rest comes after them on every node (A keeps it behind
    // whatever it still holds for Redis), and so does any copy of theirs: what came before it
    // is everything each node applied, duplicates included.
    await h.until(async () => (await h.api(A.url, '/readyz')).body?.status === 'ready', 10_000, 'A ready');
    await h.publishOk(A.url, h.event('execution.started', tenant, { executionId: 'barrier' }));
    for (const socket of watchers) {
      const got = [];
      for (;;) {
        const { executionId } = (await h.waitFor(socket, 'update', 15_000)).payload;
        if (executionId === 'barrier') break;
        got.push(executionId);
      }
      assert.deepEqual(difference(got, ids), {}, `node ${socket.node} got each of ${ids.length} events once, in the order published`);
    }
    note(t, `${ids.length} events published through a hang, twice`);
  });
});

describe('a Redis outage after which the nodes reconnect at different times', onOneRedisOnly('a TCP proxy holds one node away from one Redis'), () => {
  const cluster = { nodes: [], sockets: [], clients: [] };
  let proxy;
  let A;
  let B;
  const tenant = `stagger-${h.uid()}`;
  let wfA;
  let wfB;
  let wsA;
  let wsB;

  const publishExecution = async (node, executionId) => {
    const { status, body } = await h.publish(node.url, [h.event('execution.started', tenant, { executionId })]);
    assert.deepEqual({ status, body }, { status: 202, body: { accepted: 1 } }, `publish ${executionId} on node ${node.name}`);
  };

  before(async () => {
    cluster.prefix = `c${h.uid()}`;
    cluster.redis = await startRedis();
    proxy = await redisProxy(cluster.redis.port);
    const env = (url) => ({ REDIS_URL: url, REDIS_PREFIX: cluster.prefix });
    A = await h.startGateway({ env: env(cluster.redis.url) });
    A.name = 'A';
    cluster.nodes.push(A);
    B = await h.startGateway({ env: env(proxy.url) });
    B.name = 'B (through a proxy)';
    cluster.nodes.push(B);
    for (const node of cluster.nodes) await readyzUntil(node, 'ready', 10000);
    for (const node of cluster.nodes) {
      const socket = await h.connectClient(node.url, { token: h.mintToken({ tenantId: tenant }) });
      socket.node = node.name;
      cluster.sockets.push(socket);
      await h.subscribe(socket, { type: 'execution' });
    }
    [wfA, wfB] = cluster.sockets;
    for (const node of cluster.nodes) {
      const socket = await h.connectClient(node.url, { namespace: '/ws', welcome: WELCOME['/ws'], token: h.mintToken({ sub: `user-${node.name[0]}`, tenantId: tenant }) });
      socket.node = node.name;
      cluster.sockets.push(socket);
      await join(socket, 'chat.s');
    }
    [, , wsA, wsB] = cluster.sockets;
    await publishExecution(A, 'before');
    for (const socket of [wfA, wfB]) assert.equal(await nextExecution(socket, 'the event published before the outage'), 'before');
    await relay(wsA, 'chat.message', { text: 'before' }, ['chat.s']);
    assert.equal((await waitOn(wsB, 'chat.message', 'a relay before the outage')).text, 'before');
  });
  after(async () => {
    await stopCluster(cluster);
    await proxy?.close();
  });

  it("delivers what each node published during the outage to the other once, whichever node reconnects first", async (t) => {
    t.after(() => proxy.release());
    await cluster.redis.kill();
    for (const node of cluster.nodes) await readyzUntil(node, 'degraded', 5000);
    await publishExecution(A, 'outage-a');
    await publishExecution(B, 'outage-b');
    assert.equal(await nextExecution(wfA, "A's own publish during the outage"), 'outage-a');
    assert.equal(await nextExecution(wfB, "B's own publish during the outage"), 'outage-b');

    // Redis comes back, but B reconnects later than A: A is back and sends its kept event first.
    proxy.hold();
    const from = A.logs.length;
    await cluster.redis.restart();
    const backAt = Date.now();
    await readyzUntil(A, 'ready', 15000);
    await logged(A, 'sent the backlog kept while Redis was away', from, 5000);
    note(t, `A was ready and had sent its kept event ${Date.now() - backAt} ms after Redis came back; B was still away`);
    assert.equal((await readyz(B)).body?.status, 'degraded', 'B is still away from Redis');

    proxy.release();
    const waited = await readyzUntil(B, 'ready', 15000);
    note(t, `B was ready ${waited} ms after it could reach Redis again`);
    assert.equal(await nextExecution(wfA, "B's outage event, sent when B came back"), 'outage-b');
    assert.equal(await nextExecution(wfB, "A's outage event, kept by A and sent while B was still reconnecting"), 'outage-a');

    await publishExecution(B, 'final');
    for (const socket of [wfA, wfB]) {
      assert.equal(await nextExecution(socket, 'the final barrier'), 'final');
      assert.deepEqual(h.pending(socket, 'update'), [], `left over on node ${socket.node}`);
    }
  });

  it('says ready only once events and relays cross nodes again: an event and a relay sent as soon as B says ready reach B', async (t) => {
    t.after(() => proxy.delay(null));
    await cluster.redis.kill();
    for (const node of cluster.nodes) await readyzUntil(node, 'degraded', 5000);
    // B's socket.io adapter connection comes back a little later than its other connections
    // (here: its SSUBSCRIBE reaches Redis 700 ms late, under the 1 s command timeout).
    const rule = proxy.delay('SSUBSCRIBE', 700);
    await cluster.redis.restart();
    await readyzUntil(A, 'ready', 15000);
    await readyzUntil(B, 'ready', 15000);
    note(t, `B said ready with ${rule.hits} SSUBSCRIBE held by the proxy`);
    await publishExecution(A, 'after-ready');
    await relay(wsA, 'chat.message', { text: 'right after ready' }, ['chat.s']);
    assert.equal(await nextExecution(wfB, 'an event published on A once both nodes said ready'), 'after-ready');
    assert.equal((await waitOn(wsB, 'chat.message', 'a relay from A sent once both nodes said ready')).text, 'right after ready');
  });
});

describe('a node stopped while publishes are in flight', () => {
  const cluster = {};
  before(() => startCluster(cluster, 2, { SHUTDOWN_DELAY: '0', SHUTDOWN_TIMEOUT: '5000' }));
  after(() => stopCluster(cluster));

  it('delivers every publish it answered 202 to the other node, and refuses what it did not send on', async (t) => {
    const [A, B] = cluster.nodes;
    const tenant = `stop-${h.uid()}`;
    const watcher = await executionWatcher(t, B, tenant);
    cluster.sockets.push(watcher);
    const accepted = [];
    let refused = 0;
    let n = 0;
    let stopping = false;
    // Five publishers back to back through A; A is told to stop while they run.
    const publisher = async () => {
      for (;;) {
        const executionId = `s${n++}`;
        let answer;
        try {
          answer = await h.publish(A.url, [h.event('execution.started', tenant, { executionId })]);
        } catch {
          return; // A no longer takes connections.
        }
        if (answer.status === 202) accepted.push(executionId);
        else if (answer.status === 503) refused += 1;
        else assert.fail(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
        if (stopping && answer.status !== 202) return;
      }
    };
    const publishers = Array.from({ length: 5 }, publisher);
    await h.until(() => accepted.length >= 20, h.TIMEOUT, 'publishes accepted before the stop');
    stopping = true;
    A.child.kill('SIGTERM');
    await Promise.all(publishers);
    note(t, `${accepted.length} accepted, ${refused} refused with 503 while A stopped`);
    const got = [];
    await h.until(async () => {
      got.push(...h.pending(watcher, 'update').map((u) => u.payload.executionId));
      watcher.inbox = watcher.inbox.filter((e) => e.event !== 'update');
      return accepted.every((id) => got.includes(id));
    }, 10_000, 'every accepted publish on B');
    assert.deepEqual(difference(got.filter((id) => accepted.includes(id)), accepted).twice ?? [], []);
  });
});

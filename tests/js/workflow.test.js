// The /workflow contract end to end, over each transport setup: every client event (subscribe
// for the five types with filters, unsubscribe, ping, get_status) and every server event
// (connected, subscription_confirmed, initial_data, unsubscription_confirmed, pong,
// status_response, update, tenant_stats, error).

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as h from './helpers.js';

let gw;

before(async () => {
  gw = await h.startGateway({ env: { WS_METRICS_INTERVAL: '500' } });
});
after(async () => {
  await gw?.stop();
});

/** A fixed event timestamp, `n` seconds into 2026. */
const ts = (n) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();

const assertIso = (value) => assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

/** A state record as the spec builds it: the event data plus `lastEvent` and `updatedAt`. */
const record = (data, type, timestamp, extra = {}) => ({ ...data, ...extra, lastEvent: type, updatedAt: timestamp });

/** The `message` fields of the next `n` updates the socket receives, in order. */
async function nextMessages(socket, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await h.waitFor(socket, 'update')).payload.message);
  return out;
}

/** The types of the next `n` updates the socket receives, in order. */
async function nextTypes(socket, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await h.waitFor(socket, 'update')).type);
  return out;
}

for (const setup of h.TRANSPORTS) {
  describe(`the /workflow flow over ${setup.name}`, () => {
    let tenant;
    beforeEach(() => {
      tenant = `flow-${h.uid()}`;
    });

    /** A connected socket of this test's tenant (unless `claims` says otherwise), closed when `t` ends. */
    const client = (t, claims = {}) =>
      h.connectFor(t, gw.url, { token: h.mintToken({ tenantId: tenant, ...claims }), transports: setup.transports });

    /** Publishes `[type, data, timestamp?]` triples for this test's tenant. */
    const send = (events, to = tenant) => h.publishOk(gw.url, events.map(([type, data, at]) => h.event(type, to, data, at)));

    it('connects, runs on the expected transport and is told its clientId, userId and tenantId', async (t) => {
      const socket = await client(t, { sub: 'alice' });
      assert.equal(socket.io.engine.transport.name, setup.expect);
      const { clientId, userId, tenantId, timestamp, ...rest } = socket.welcome;
      assert.deepEqual(rest, {});
      h.assertPublicId(clientId, socket);
      assert.equal(userId, 'alice');
      assert.equal(tenantId, tenant);
      assertIso(timestamp);
    });

    it('subscribes to one execution: confirmation and ack, its last-known record, then its updates only', async (t) => {
      const started = { executionId: 'e1', workflowId: 'w1', status: 'running' };
      const step = { executionId: 'e1', workflowId: 'w1', stepId: 's1', status: 'completed' };
      await send([['execution.started', started, ts(1)], ['step.completed', step, ts(2)]]);
      const socket = await client(t);

      const { ack, confirmed, initial } = await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      assert.deepEqual(confirmed, { type: 'execution', resourceId: 'e1', subscriptionKey: 'execution:e1', timestamp: confirmed.timestamp });
      assertIso(confirmed.timestamp);
      assert.deepEqual(ack, confirmed);
      assert.deepEqual(initial, {
        type: 'execution',
        data: record(started, 'step.completed', ts(2), { steps: { s1: step } }),
        timestamp: initial.timestamp,
      });
      assertIso(initial.timestamp);

      const unknown = await h.subscribe(socket, { type: 'execution', resourceId: 'e404' });
      assert.equal(unknown.initial.data, null);

      const completed = { executionId: 'e1', workflowId: 'w1', status: 'completed' };
      await send([['execution.started', { executionId: 'e2' }, ts(3)], ['execution.completed', completed, ts(4)]]);
      assert.deepEqual(h.unpositioned(await h.waitFor(socket, 'update')), { type: 'execution.completed', payload: completed, timestamp: ts(4) });
    });

    it('subscribes to all executions: records most recently updated first, then every execution update', async (t) => {
      await send([
        ['execution.started', { executionId: 'e1', status: 'running' }, ts(1)],
        ['execution.started', { executionId: 'e2', status: 'running' }, ts(2)],
        ['execution.failed', { executionId: 'e1', status: 'failed' }, ts(3)],
      ]);
      const socket = await client(t);
      const { ack, confirmed, initial } = await h.subscribe(socket, { type: 'execution' });
      assert.deepEqual(confirmed, { type: 'execution', subscriptionKey: 'execution:*', timestamp: confirmed.timestamp });
      assert.deepEqual(ack, confirmed);
      assert.deepEqual(initial.data, [
        record({ executionId: 'e1', status: 'failed' }, 'execution.failed', ts(3)),
        record({ executionId: 'e2', status: 'running' }, 'execution.started', ts(2)),
      ]);

      await send([['execution.started', { executionId: 'e3' }], ['step.started', { executionId: 'e2', stepId: 's1' }]]);
      assert.deepEqual(await nextTypes(socket, 2), ['execution.started', 'step.started']);
    });

    it('subscribes to workflows: one workflow gets its executions and steps, all workflows only workflow events', async (t) => {
      await send([
        ['workflow.created', { workflowId: 'w1', name: 'Nightly' }, ts(1)],
        ['execution.started', { executionId: 'e1', workflowId: 'w1', status: 'running' }, ts(2)],
        ['workflow.created', { workflowId: 'w2', name: 'Hourly' }, ts(3)],
      ]);
      const one = await client(t);
      const all = await client(t);

      const w1 = await h.subscribe(one, { type: 'workflow', resourceId: 'w1' });
      assert.equal(w1.confirmed.subscriptionKey, 'workflow:w1');
      const w1Record = record({ workflowId: 'w1', name: 'Nightly' }, 'workflow.created', ts(1), {
        lastExecution: { executionId: 'e1', status: 'running', lastEvent: 'execution.started', updatedAt: ts(2) },
      });
      assert.deepEqual(w1.initial, { type: 'workflow', data: w1Record, timestamp: w1.initial.timestamp });

      const every = await h.subscribe(all, { type: 'workflow' });
      assert.equal(every.confirmed.subscriptionKey, 'workflow:*');
      assert.deepEqual(every.initial.data, [record({ workflowId: 'w2', name: 'Hourly' }, 'workflow.created', ts(3)), w1Record]);

      await send([
        ['execution.completed', { executionId: 'e1', workflowId: 'w1', status: 'completed' }],
        ['step.started', { executionId: 'e1', workflowId: 'w1', stepId: 's1' }],
        ['workflow.updated', { workflowId: 'w1', name: 'Nightly v2' }],
      ]);
      assert.deepEqual(await nextTypes(one, 3), ['execution.completed', 'step.started', 'workflow.updated']);
      // The workflow update is the barrier: the execution and step events would have come first.
      assert.deepEqual(await nextTypes(all, 1), ['workflow.updated']);
    });

    it('subscribes to logs with filters: by level for one execution, by step across executions, or unfiltered', async (t) => {
      const P1 = { executionId: 'e1', level: 'error', stepId: 's1', message: 'p1' };
      const P2 = { executionId: 'e1', logLevel: 'info', stepId: 's1', message: 'p2' };
      const P3 = { executionId: 'e1', level: 'error', stepId: 's2', message: 'p3' };
      const P4 = { executionId: 'e2', level: 'error', stepId: 's1', message: 'p4' };
      await send([P1, P2, P3, P4].map((data) => ['log.created', data]));
      const stored = (data) => ({ ...data, level: data.level ?? data.logLevel });

      const errors = await client(t);
      const steps = await client(t);
      const everything = await client(t);
      const byLevel = await h.subscribe(errors, { type: 'logs', resourceId: 'e1', filters: { logLevel: 'error' } });
      const byStep = await h.subscribe(steps, { type: 'logs', filters: { stepId: 's1' } });
      const unfiltered = await h.subscribe(everything, { type: 'logs', resourceId: 'e1' });

      assert.deepEqual(byLevel.confirmed, { type: 'logs', resourceId: 'e1', subscriptionKey: 'logs:e1:error:*', timestamp: byLevel.confirmed.timestamp });
      assert.deepEqual(byLevel.ack, byLevel.confirmed);
      assert.equal(byStep.confirmed.subscriptionKey, 'logs:*:*:s1');
      assert.equal(unfiltered.confirmed.subscriptionKey, 'logs:e1:*:*');
      assert.deepEqual(byLevel.initial, { type: 'logs', data: [P1, P3].map(stored), timestamp: byLevel.initial.timestamp });
      assert.deepEqual(byStep.initial.data, [P1, P2, P4].map(stored));
      assert.deepEqual(unfiltered.initial.data, [P1, P2, P3].map(stored));

      const L1 = { executionId: 'e1', logLevel: 'warn', stepId: 's1', message: 'L1' };
      const L2 = { executionId: 'e1', level: 'error', stepId: 's3', message: 'L2' };
      const L3 = { executionId: 'e2', level: 'debug', stepId: 's1', message: 'L3' };
      const L4 = { executionId: 'e3', level: 'error', stepId: 's2', message: 'L4' };
      const END = { executionId: 'e1', level: 'error', stepId: 's1', message: 'END' };
      await send([L1, L2, L3, L4, END].map((data) => ['log.created', data, ts(9)]));

      // END reaches all three: it is the barrier after which nothing unwanted can still come.
      assert.deepEqual(await nextMessages(errors, 2), ['L2', 'END']);
      assert.deepEqual(await nextMessages(steps, 3), ['L1', 'L3', 'END']);
      const first = await h.waitFor(everything, 'update');
      assert.deepEqual(h.unpositioned(first), { type: 'log.created', payload: L1, timestamp: ts(9) });
      assert.deepEqual(await nextMessages(everything, 2), ['L2', 'END']);
    });

    it('subscribes to metrics: null before any metrics, then the last metrics.updated data and each update', async (t) => {
      const socket = await client(t);
      const before = await h.subscribe(socket, { type: 'metrics' });
      assert.deepEqual(before.confirmed, { type: 'metrics', subscriptionKey: 'metrics', timestamp: before.confirmed.timestamp });
      assert.deepEqual(before.ack, before.confirmed);
      assert.deepEqual(before.initial, { type: 'metrics', data: null, timestamp: before.initial.timestamp });

      await send([['metrics.updated', { cpu: 1, memory: 10 }, ts(1)], ['metrics.updated', { cpu: 2 }, ts(2)]]);
      assert.deepEqual(h.unpositioned(await h.waitFor(socket, 'update')), { type: 'metrics.updated', payload: { cpu: 1, memory: 10 }, timestamp: ts(1) });
      assert.deepEqual(h.unpositioned(await h.waitFor(socket, 'update')), { type: 'metrics.updated', payload: { cpu: 2 }, timestamp: ts(2) });

      const late = await client(t);
      const after = await h.subscribe(late, { type: 'metrics' });
      assert.deepEqual(after.initial.data, { cpu: 2 }, 'metrics.updated replaces the record');
    });

    it('subscribes to tenant activity: recent events oldest first, then every event of the tenant', async (t) => {
      const history = [
        ['workflow.created', { workflowId: 'w1' }, ts(1)],
        ['execution.started', { executionId: 'e1', workflowId: 'w1' }, ts(2)],
        ['log.created', { executionId: 'e1', level: 'info', message: 'hello' }, ts(3)],
        ['metrics.updated', { cpu: 3 }, ts(4)],
      ];
      await send(history);
      const socket = await client(t);
      const { ack, confirmed, initial } = await h.subscribe(socket, { type: 'tenant_activity' });
      assert.deepEqual(confirmed, { type: 'tenant_activity', subscriptionKey: 'tenant_activity', timestamp: confirmed.timestamp });
      assert.deepEqual(ack, confirmed);
      assert.deepEqual(initial.data, history.map(([type, data, timestamp]) => ({ type, data, timestamp })));

      await send([
        ['step.failed', { executionId: 'e1', stepId: 's1' }],
        ['workflow.deleted', { workflowId: 'w1' }],
        ['log.created', { executionId: 'e9', logLevel: 'debug' }],
        ['metrics.updated', { cpu: 4 }],
      ]);
      assert.deepEqual(await nextTypes(socket, 4), ['step.failed', 'workflow.deleted', 'log.created', 'metrics.updated']);
    });

    it('unsubscribes: confirmation and ack, no more updates for that key, and twice is harmless', async (t) => {
      const socket = await client(t);
      await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      await h.subscribe(socket, { type: 'execution', resourceId: 'e2' });

      const ack = await h.request(socket, 'unsubscribe', { subscriptionKey: 'execution:e1' });
      const confirmed = await h.waitFor(socket, 'unsubscription_confirmed');
      assert.deepEqual(confirmed, { subscriptionKey: 'execution:e1', timestamp: confirmed.timestamp });
      assertIso(confirmed.timestamp);
      assert.deepEqual(ack, confirmed);

      await send([['execution.started', { executionId: 'e1' }], ['execution.started', { executionId: 'e2' }]]);
      assert.equal((await h.waitFor(socket, 'update')).payload.executionId, 'e2', 'e1 came before the e2 barrier');

      const again = await h.request(socket, 'unsubscribe', { subscriptionKey: 'execution:e1' });
      assert.equal(again.subscriptionKey, 'execution:e1');
      assert.equal((await h.waitFor(socket, 'unsubscription_confirmed')).subscriptionKey, 'execution:e1');
    });

    it('answers ping with pong, with or without a payload and an ack', async (t) => {
      const socket = await client(t);
      socket.emit('ping');
      assertIso((await h.waitFor(socket, 'pong')).timestamp);
      socket.emit('ping', { timestamp: new Date().toISOString() });
      const pong = await h.waitFor(socket, 'pong');
      assert.deepEqual(Object.keys(pong), ['timestamp']);
      const ack = await h.request(socket, 'ping', {});
      assert.deepEqual(ack, await h.waitFor(socket, 'pong'));
    });

    it('answers get_status with the execution record, else the workflow record, else null', async (t) => {
      const execution = { executionId: 'e1', workflowId: 'w1', status: 'running' };
      await send([['workflow.created', { workflowId: 'w1', name: 'Nightly' }, ts(1)], ['execution.started', execution, ts(2)]]);
      const socket = await client(t);
      const status = async (payload) => {
        const ack = await h.request(socket, 'get_status', payload);
        const response = await h.waitFor(socket, 'status_response');
        assert.deepEqual(ack, response);
        assert.deepEqual(Object.keys(response).sort(), ['status', 'timestamp']);
        assertIso(response.timestamp);
        return response.status;
      };
      const workflow = record({ workflowId: 'w1', name: 'Nightly' }, 'workflow.created', ts(1), {
        lastExecution: { executionId: 'e1', status: 'running', lastEvent: 'execution.started', updatedAt: ts(2) },
      });
      assert.deepEqual(await status({ executionId: 'e1' }), record(execution, 'execution.started', ts(2)));
      assert.deepEqual(await status({ executionId: 'e1', workflowId: 'w1' }), record(execution, 'execution.started', ts(2)));
      assert.deepEqual(await status({ workflowId: 'w1' }), workflow);
      assert.deepEqual(await status({ executionId: 'e404', workflowId: 'w1' }), workflow);
      assert.equal(await status({ executionId: 'e404' }), null);
      assert.equal(await status({ workflowId: 'w404' }), null);

      await send([['workflow.deleted', { workflowId: 'w1' }]]);
      assert.equal(await status({ workflowId: 'w1' }), null, 'workflow.deleted removes the record');
    });

    it('sends a socket in several matching rooms, or subscribed twice, each event once', async (t) => {
      const socket = await client(t);
      for (const payload of [
        { type: 'execution', resourceId: 'e1' },
        { type: 'execution', resourceId: 'e1' },
        { type: 'execution' },
        { type: 'workflow', resourceId: 'w1' },
        { type: 'tenant_activity' },
        { type: 'logs', resourceId: 'e1' },
        { type: 'logs', resourceId: 'e1', filters: { logLevel: 'error', stepId: 's1' } },
        { type: 'logs' },
      ]) {
        await h.subscribe(socket, payload);
      }
      await send([
        ['execution.started', { executionId: 'e1', workflowId: 'w1' }],
        ['log.created', { executionId: 'e1', level: 'error', stepId: 's1' }],
        ['metrics.updated', { barrier: true }],
      ]);
      // metrics.updated reaches this socket through tenant_activity only: it is the barrier.
      assert.deepEqual(await nextTypes(socket, 3), ['execution.started', 'log.created', 'metrics.updated']);
    });

    it('sends tenant_stats to each tenant with its own connections, users, subscriptions and events', async (t) => {
      const a = await client(t, { sub: 'u1' });
      const b = await client(t, { sub: 'u2' });
      await client(t, { sub: 'u1' });
      const other = await client(t, { sub: 'u1', tenantId: `${tenant}-other` });
      await h.subscribe(a, { type: 'execution' });
      await h.subscribe(a, { type: 'metrics' });
      await h.subscribe(b, { type: 'tenant_activity' });
      await send([['metrics.updated', { cpu: 1 }], ['metrics.updated', { cpu: 2 }], ['execution.started', { executionId: 'e1' }]]);
      // A tick computed after everything above was set up (its timestamp is taken after the counts).
      const since = Date.now() + 20;
      const after = (stats) => Date.parse(stats.timestamp) > since;

      const stats = await h.waitFor(a, 'tenant_stats', 3000, after);
      assert.deepEqual(stats, {
        tenantId: tenant,
        stats: { connections: 3, users: 2, subscriptions: 3, eventsPublished: 3 },
        timestamp: stats.timestamp,
      });
      assert.deepEqual((await h.waitFor(b, 'tenant_stats', 3000, after)).stats, stats.stats);
      const theirs = await h.waitFor(other, 'tenant_stats', 3000, after);
      assert.deepEqual(theirs, {
        tenantId: `${tenant}-other`,
        stats: { connections: 1, users: 1, subscriptions: 0, eventsPublished: 0 },
        timestamp: theirs.timestamp,
      });
      assert.ok(h.pending(other, 'tenant_stats').every((s) => s.tenantId === `${tenant}-other`), 'only its own tenant stats');
    });

    it('answers an invalid payload with an `error` event and an {error} ack, and keeps the socket usable', async (t) => {
      const socket = await client(t);
      const ack = await h.request(socket, 'subscribe', { type: 'nope' });
      const error = await h.waitFor(socket, 'error');
      assert.deepEqual(ack, { error });
      assert.equal(error.type, 'validation');
      assert.equal(error.event, 'subscribe');
      assert.match(error.message, /^type: must be one of .*"workflow".*, not "nope"$/);
      assertIso(error.timestamp);

      const { confirmed } = await h.subscribe(socket, { type: 'metrics' });
      assert.equal(confirmed.subscriptionKey, 'metrics');
      assert.equal(socket.connected, true);
    });
  });
}

describe('room keys built from ids', () => {
  const tenant = () => `keys-${h.uid()}`;
  const open = (t, tenantId) => h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }) });

  it('treats an id of `*` as an id, not as the all-executions wildcard', async (t) => {
    const tenantId = tenant();
    const socket = await open(t, tenantId);
    const { confirmed } = await h.subscribe(socket, { type: 'execution', resourceId: '*' });
    assert.equal(confirmed.subscriptionKey, 'execution:%2A');
    await h.publishOk(gw.url, [h.event('execution.started', tenantId, { executionId: 'e1' }), h.event('execution.started', tenantId, { executionId: '*' })]);
    assert.equal((await h.waitFor(socket, 'update')).payload.executionId, '*', 'e1 came before the barrier');
  });

  it('escapes `:` in ids, routes to the escaped key and unsubscribes by it', async (t) => {
    const tenantId = tenant();
    const socket = await open(t, tenantId);
    const { confirmed } = await h.subscribe(socket, { type: 'logs', resourceId: 'a:b', filters: { stepId: 'x:y' } });
    assert.equal(confirmed.subscriptionKey, 'logs:a%3Ab:*:x%3Ay');
    await h.subscribe(socket, { type: 'metrics' });
    const log = { executionId: 'a:b', stepId: 'x:y', level: 'info' };
    await h.publishOk(gw.url, [h.event('log.created', tenantId, log)]);
    assert.deepEqual((await h.waitFor(socket, 'update')).payload, log);

    await h.request(socket, 'unsubscribe', { subscriptionKey: confirmed.subscriptionKey });
    await h.publishOk(gw.url, [h.event('log.created', tenantId, log), h.event('metrics.updated', tenantId, { barrier: 1 })]);
    assert.equal((await h.waitFor(socket, 'update')).type, 'metrics.updated', 'the log came before the barrier');
  });

  it('gives a logs subscription with filters that match nothing an empty list', async (t) => {
    const tenantId = tenant();
    await h.publishOk(gw.url, [h.event('log.created', tenantId, { executionId: 'e1', level: 'info' })]);
    const socket = await open(t, tenantId);
    const { initial } = await h.subscribe(socket, { type: 'logs', resourceId: 'e1', filters: { logLevel: 'error' } });
    assert.deepEqual(initial.data, []);
  });

  it('gives a logs subscription for an execution without logs an empty list, as the contract says', async (t) => {
    // initial_data for logs is "an array of the stored log entries"; the gateway sends null here.
    const tenantId = tenant();
    await h.publishOk(gw.url, [h.event('log.created', tenantId, { executionId: 'other', level: 'info' })]);
    const socket = await open(t, tenantId);
    const withLogsElsewhere = await h.subscribe(socket, { type: 'logs', resourceId: 'e1' });
    assert.deepEqual(withLogsElsewhere.initial.data, []);
    const fresh = await open(t, tenant());
    const noLogsAtAll = await h.subscribe(fresh, { type: 'logs', resourceId: 'e1', filters: { logLevel: 'error' } });
    assert.deepEqual(noLogsAtAll.initial.data, []);
  });
});

// Tenant isolation: a user of tenant A never receives tenant B's events, whatever it subscribes
// to, and never sees B's state in get_status or initial_data, even with the same user and ids.

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

/** Two fresh tenant ids. */
const tenants = () => {
  const id = h.uid();
  return [`iso-a-${id}`, `iso-b-${id}`];
};

/** A socket of `tenantId` for user `u1` (the same user id in every tenant). */
const userOf = (t, tenantId) => h.connectFor(t, gw.url, { token: h.mintToken({ sub: 'u1', tenantId }) });

const send = (tenantId, events) => h.publishOk(gw.url, events.map(([type, data]) => h.event(type, tenantId, data)));

/** The types and payloads of the next `n` updates of a socket. */
async function nextUpdates(socket, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const { type, payload } = await h.waitFor(socket, 'update');
    out.push([type, payload]);
  }
  return out;
}

const EVERYTHING = [
  { type: 'execution', resourceId: 'e1' },
  { type: 'execution' },
  { type: 'workflow', resourceId: 'w1' },
  { type: 'workflow' },
  { type: 'logs', resourceId: 'e1' },
  { type: 'logs', resourceId: 'e1', filters: { logLevel: 'error', stepId: 's1' } },
  { type: 'logs' },
  { type: 'metrics' },
  { type: 'tenant_activity' },
];

describe('tenant isolation', () => {
  it("delivers tenant B's events only to tenant B, though A's user subscribed to the same keys", async (t) => {
    const [a, b] = tenants();
    const inA = await userOf(t, a);
    const inB = await userOf(t, b);
    for (const subscription of EVERYTHING) {
      const [fromA, fromB] = await Promise.all([h.subscribe(inA, subscription), h.subscribe(inB, subscription)]);
      assert.equal(fromA.confirmed.subscriptionKey, fromB.confirmed.subscriptionKey, 'both hold the same key');
    }

    const forB = [
      ['workflow.created', { workflowId: 'w1' }],
      ['execution.started', { executionId: 'e1', workflowId: 'w1' }],
      ['step.started', { executionId: 'e1', workflowId: 'w1', stepId: 's1' }],
      ['log.created', { executionId: 'e1', level: 'error', stepId: 's1' }],
      ['metrics.updated', { cpu: 99 }],
    ];
    await send(b, forB);
    assert.deepEqual(await nextUpdates(inB, forB.length), forB);

    // A's own event is the barrier: any of B's events would have reached A before it.
    await send(a, [['metrics.updated', { barrier: 'a' }]]);
    assert.deepEqual(await nextUpdates(inA, 1), [['metrics.updated', { barrier: 'a' }]]);
  });

  it("shows each tenant only its own state in get_status and initial_data, for the same ids", async (t) => {
    const [a, b] = tenants();
    await send(b, [
      ['workflow.created', { workflowId: 'w1', owner: 'B' }],
      ['workflow.created', { workflowId: 'w2', owner: 'B' }],
      ['execution.started', { executionId: 'e1', workflowId: 'w1', owner: 'B' }],
      ['execution.started', { executionId: 'e2', workflowId: 'w2', owner: 'B' }],
      ['log.created', { executionId: 'e1', level: 'info', owner: 'B' }],
      ['log.created', { executionId: 'e2', level: 'info', owner: 'B' }],
      ['metrics.updated', { owner: 'B' }],
    ]);
    await send(a, [
      ['workflow.created', { workflowId: 'w1', owner: 'A' }],
      ['execution.started', { executionId: 'e1', workflowId: 'w1', owner: 'A' }],
      ['log.created', { executionId: 'e1', level: 'info', owner: 'A' }],
      ['metrics.updated', { owner: 'A' }],
    ]);
    const socket = await userOf(t, a);
    const owners = (data) => [data].flat().map((entry) => entry?.data?.owner ?? entry?.owner);

    const status = async (payload) => (await h.request(socket, 'get_status', payload)).status;
    assert.equal((await status({ executionId: 'e1' })).owner, 'A');
    assert.equal((await status({ workflowId: 'w1' })).owner, 'A');
    assert.equal(await status({ executionId: 'e2' }), null);
    assert.equal(await status({ workflowId: 'w2' }), null);

    const initial = async (payload) => (await h.subscribe(socket, payload)).initial.data;
    assert.deepEqual(owners(await initial({ type: 'execution', resourceId: 'e1' })), ['A']);
    assert.equal(await initial({ type: 'execution', resourceId: 'e2' }), null);
    assert.deepEqual(owners(await initial({ type: 'execution' })), ['A']);
    assert.deepEqual(owners(await initial({ type: 'workflow' })), ['A']);
    assert.deepEqual(owners(await initial({ type: 'logs', resourceId: 'e1' })), ['A']);
    assert.deepEqual(owners(await initial({ type: 'logs' })), ['A']);
    assert.deepEqual(owners(await initial({ type: 'metrics' })), ['A']);
    assert.deepEqual(owners(await initial({ type: 'tenant_activity' })), ['A', 'A', 'A', 'A']);
  });

  it("keeps tenants whose ids contain `:` apart from tenants whose rooms would share a prefix", async (t) => {
    // Unescaped, tenant `p:execution` in room `execution:e1` and tenant `p` in room
    // `execution:execution:e1` would both be the adapter room `t:p:execution:execution:e1`.
    const p = `iso-${h.uid()}`;
    const colon = `${p}:execution`;
    const inColon = await userOf(t, colon);
    const inPlain = await userOf(t, p);
    assert.equal((await h.subscribe(inColon, { type: 'execution', resourceId: 'e1' })).confirmed.subscriptionKey, 'execution:e1');
    assert.equal((await h.subscribe(inPlain, { type: 'execution', resourceId: 'execution:e1' })).confirmed.subscriptionKey, 'execution:execution:e1');

    await send(colon, [['execution.started', { executionId: 'e1', from: 'colon' }]]);
    await send(p, [['execution.started', { executionId: 'execution:e1', from: 'plain' }]]);
    await send(colon, [['execution.started', { executionId: 'e1', from: 'colon barrier' }]]);
    // Each socket's events around the other tenant's are the barriers for it.
    assert.deepEqual(await nextUpdates(inPlain, 1), [['execution.started', { executionId: 'execution:e1', from: 'plain' }]]);
    assert.deepEqual(await nextUpdates(inColon, 2), [
      ['execution.started', { executionId: 'e1', from: 'colon' }],
      ['execution.started', { executionId: 'e1', from: 'colon barrier' }],
    ]);
  });
});

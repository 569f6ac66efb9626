// The publish API, POST /api/v1/events: API keys in either header, one event or a batch, and
// every refusal (401, 400, 413) delivering nothing, checked by a subscriber of the tenant.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';

let gw;
let tenant;
let watcher;

/** Everything of `tenant` reaches `watcher`, once per event (through tenant_activity at least). */
before(async () => {
  gw = await h.startGateway();
  tenant = `pub-${h.uid()}`;
  watcher = await h.connectClient(gw.url, { token: h.mintToken({ tenantId: tenant }) });
  for (const subscription of [{ type: 'tenant_activity' }, { type: 'execution' }, { type: 'workflow' }, { type: 'logs' }, { type: 'metrics' }]) {
    await h.subscribe(watcher, subscription);
  }
});
after(async () => {
  watcher?.disconnect();
  await gw?.stop();
});

let barriers = 0;
/** Publishes a marker event and asserts it is the watcher's next update: nothing else came before. */
async function assertNothingDelivered() {
  const marker = `barrier-${++barriers}`;
  await h.publishOk(gw.url, h.event('metrics.updated', tenant, { marker }));
  const next = await h.waitFor(watcher, 'update');
  assert.deepEqual(next.payload, { marker }, `an earlier event was delivered: ${JSON.stringify(next)}`);
}

const valid = (data = { executionId: 'e1' }) => h.event('execution.started', tenant, data);

describe('accepted events', () => {
  it('accepts one event with X-API-Key, answers 202 {accepted: 1} and delivers it with its timestamp', async () => {
    const at = '2026-03-04T05:06:07.000Z';
    const response = await h.publish(gw.url, h.event('workflow.created', tenant, { workflowId: 'w1' }, at));
    assert.deepEqual(response, { status: 202, body: { accepted: 1 } });
    assert.deepEqual(h.unpositioned(await h.waitFor(watcher, 'update')), { type: 'workflow.created', payload: { workflowId: 'w1' }, timestamp: at });
  });

  it('accepts the API key as Authorization: Bearer, also beside an empty X-API-Key header', async () => {
    const response = await h.publish(gw.url, valid({ executionId: 'beside-empty' }), { headers: { 'X-API-Key': '', Authorization: `Bearer ${h.API_KEY}` } });
    assert.deepEqual(response, { status: 202, body: { accepted: 1 } });
    assert.equal((await h.waitFor(watcher, 'update')).payload.executionId, 'beside-empty');
  });

  it('accepts the API key as Authorization: Bearer', async () => {
    const response = await h.publish(gw.url, valid({ executionId: 'bearer' }), { headers: { Authorization: `Bearer ${h.API_KEY}` } });
    assert.deepEqual(response, { status: 202, body: { accepted: 1 } });
    assert.equal((await h.waitFor(watcher, 'update')).payload.executionId, 'bearer');
  });

  it('accepts an array, answers its length and delivers the events in order', async () => {
    const batch = [valid({ executionId: 'b1' }), h.event('log.created', tenant, { executionId: 'b1', level: 'info' }), h.event('metrics.updated', tenant, { n: 3 })];
    assert.deepEqual(await h.publish(gw.url, batch), { status: 202, body: { accepted: 3 } });
    const types = [];
    for (let i = 0; i < batch.length; i++) types.push((await h.waitFor(watcher, 'update')).type);
    assert.deepEqual(types, ['execution.started', 'log.created', 'metrics.updated']);
  });

  it('stamps an event without a timestamp with the server time', async () => {
    const before = Date.now();
    await h.publishOk(gw.url, valid({ executionId: 'stamped' }));
    const { timestamp } = await h.waitFor(watcher, 'update');
    const at = Date.parse(timestamp);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, `timestamp ${timestamp}`);
  });
});

describe('refused API keys', () => {
  const KEYS = [
    ['no key', {}],
    ['a wrong X-API-Key', { 'X-API-Key': 'not-the-key' }],
    ['an empty X-API-Key', { 'X-API-Key': '' }],
    ['a wrong Bearer key', { Authorization: 'Bearer not-the-key' }],
    ['the right key under another scheme', { Authorization: `Basic ${h.API_KEY}` }],
    ["a user's JWT as the Bearer key", { Authorization: `Bearer ${h.mintToken({ tenantId: 'any' })}` }],
  ];
  for (const [name, headers] of KEYS) {
    it(`answers ${name} with 401 {error: {type: "auth"}} and delivers nothing`, async () => {
      const { status, body } = await h.publish(gw.url, valid(), { headers });
      assert.equal(status, 401);
      assert.equal(body.error.type, 'auth');
      assert.equal(typeof body.error.message, 'string');
      await assertNothingDelivered();
    });
  }
});

describe('refused bodies', () => {
  const BODIES = [
    ['a body that is not JSON', () => '{"type": "execution.started",', /^the body is not valid JSON/],
    ['a number', () => '42', /^the body must be an event object or an array of them$/],
    ['a string', () => '"execution.started"', /^the body must be an event object or an array of them$/],
    ['an event without type', () => ({ tenantId: tenant, data: { executionId: 'e1' } }), /^events\[0\]\.type must be a non-empty string/],
    ['an event with an empty type', () => ({ type: '', tenantId: tenant, data: { executionId: 'e1' } }), /^events\[0\]\.type must be a non-empty string/],
    ['data that is an array', () => ({ type: 'metrics.updated', tenantId: tenant, data: [1] }), /^events\[0\]\.data must be an object$/],
    ['data that is a string', () => ({ type: 'metrics.updated', tenantId: tenant, data: 'cpu=1' }), /^events\[0\]\.data must be an object$/],
    ['an unknown field', () => ({ ...valid(), executionId: 'e1' }), /^events\[0\] has an unknown field `executionId`/],
    ['a type no namespace routes', () => h.event('foo.bar', tenant, {}), /^events\[0\]\.type `foo\.bar` is not routed by any namespace spec$/],
    ['an execution event without executionId', () => h.event('execution.completed', tenant, { workflowId: 'w1' }), /^events\[0\]\.data\.executionId is required for `execution\.completed` events$/],
    ['a step event without executionId', () => h.event('step.started', tenant, { stepId: 's1' }), /^events\[0\]\.data\.executionId is required for `step\.started` events$/],
    ['a workflow event without workflowId', () => h.event('workflow.updated', tenant, { name: 'x' }), /^events\[0\]\.data\.workflowId is required for `workflow\.updated` events$/],
    ['a log without executionId', () => h.event('log.created', tenant, { level: 'error' }), /^events\[0\]\.data\.executionId is required for `log\.created` events$/],
    ['an event without tenantId', () => ({ type: 'metrics.updated', data: { cpu: 1 } }), /^events\[0\]\.tenantId is required/],
    ['a batch whose last event is bad', () => [valid({ executionId: 'batch-1' }), valid({ executionId: 'batch-2' }), h.event('workflow.created', tenant, {})], /^events\[2\]\.data\.workflowId is required/],
    ['a type with a control character', () => h.event('execution.started\n', tenant, { executionId: 'e1' }), /^events\[0\]\.type contains a control character$/],
    ['an id that is an object', () => h.event('execution.started', tenant, { executionId: { $ne: null } }), /^events\[0\]\.data\.executionId must be a string or a number \(an id\)$/],
    ['an empty id', () => h.event('execution.started', tenant, { executionId: '' }), /^events\[0\]\.data\.executionId must not be empty$/],
    ['an optional id that is a list', () => h.event('execution.started', tenant, { executionId: 'e1', workflowId: ['w1'] }), /events are routed to `workflow` rooms by an id, and the id given is a list/],
  ];
  for (const [name, body, message] of BODIES) {
    it(`answers ${name} with 400 {error: {type: "validation"}} and delivers nothing`, async () => {
      const response = await h.publish(gw.url, body());
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.equal(response.body.error.type, 'validation');
      assert.match(response.body.error.message, message);
      await assertNothingDelivered();
    });
  }

  it('leaves no state behind from a refused batch', async () => {
    await h.publish(gw.url, [valid({ executionId: 'ghost', workflowId: 'ghost-w' }), h.event('nope.nope', tenant, {})]);
    assert.equal((await h.request(watcher, 'get_status', { executionId: 'ghost' })).status, null);
    assert.equal((await h.request(watcher, 'get_status', { workflowId: 'ghost-w' })).status, null);
  });

  it('answers a body over 1 MB with 413 and delivers nothing', async () => {
    const huge = JSON.stringify(h.event('metrics.updated', tenant, { blob: 'x'.repeat(1_100_000) }));
    const { status, body } = await h.publish(gw.url, huge);
    assert.equal(status, 413);
    assert.equal(body.error.type, 'validation');
    await assertNothingDelivered();
  });
});

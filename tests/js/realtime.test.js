// The /realtime contract (seed 004, namespaces/realtime.yaml) through the official client: the
// seed's React snippet unchanged, every client event and its ack, every published type reaching
// its rooms (and only those) over each transport setup, unsubscribes, invalid payloads, anonymous
// sockets, refused tokens, tenant isolation, and the per-IP connection throttle (trusted proxies,
// untrusted X-Forwarded-For, and a config-file override).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import * as h from './helpers.js';

const RT = '/realtime';
const WELCOME = 'connection:success';
const INVALID = 'Invalid authentication token';
const EXPIRED = 'Authentication token expired';
const NO_TENANT = 'Authentication token has no tenantId';

/** Every event the publish routes of /realtime emit. */
const PUBLISHED = [
  'commission:calculated',
  'commission:updated',
  'queue:job-progress',
  'queue:job-completed',
  'queue:job-failed',
  'queue:stats',
  'dashboard:metrics',
];

const assertIso = (value, what = 'timestamp') => {
  assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `${what} ${value}`);
  assert.ok(Math.abs(Date.parse(value) - Date.now()) < 60000, `${what} ${value} is not about now`);
};

/** A config file (in `dir`) setting the per-IP connection limit of /realtime. */
const connectLimitConfig = (dir, max) =>
  h.writeFile(dir, `connect-${max}.yaml`, `rate_limits:\n  /realtime:\n    connect: { max: ${max}, per: 1m }\n`);

// The main gateway: its many sockets all come from 127.0.0.1, so the per-IP limit is raised.
let gw;
let files;

before(async () => {
  files = h.tempDir();
  gw = await h.startGateway({ env: { CONFIG_FILE: connectLimitConfig(files.dir, 100000) } });
});
after(async () => {
  await gw?.stop();
  files?.remove();
});

const newTenant = (prefix = 'rt') => `${prefix}-${h.uid()}`;

/** A /realtime socket past `connection:success` (kept as `socket.welcome`), closed when `t` ends. */
const connectRt = (t, options = {}, url = gw.url) => h.connectFor(t, url, { namespace: RT, welcome: WELCOME, ...options });

/** A signed-in socket of `tenantId`. */
const member = (t, tenantId, options = {}, claims = {}) => connectRt(t, { token: h.mintToken({ tenantId, ...claims }), ...options });

/** Sends `event` (with `payload`, if any) and asserts its ack. */
async function expectAck(socket, event, payload, expected) {
  const ack = await h.request(socket, event, payload);
  assert.deepEqual(ack, expected, `${event} ${JSON.stringify(payload)} answered ${JSON.stringify(ack)}`);
  return ack;
}

const joinDashboard = (s) => expectAck(s, 'subscribe:dashboard', undefined, { success: true, room: 'dashboard' });
const joinQueue = (s) => expectAck(s, 'subscribe:queue', undefined, { success: true, room: 'queue' });
const joinContract = (s, contractId) =>
  expectAck(s, 'subscribe:contract', { contractId }, { success: true, room: `contract:${contractId}`, contractId });

/** Publishes `[type, data]` pairs for `tenantId` (must all be accepted). */
const send = (tenantId, events) => h.publishOk(gw.url, events.map(([type, data]) => h.event(type, tenantId, data)));

/**
 * Waits for the `type` event whose data has `marker: "end"`, then returns every published event
 * the socket received up to and including it, in order, as `[type, data]`. Events arrive in
 * publication order, so the end marker is the barrier: anything unwanted published before it is in
 * the list.
 */
async function receivedUntilEnd(socket, type) {
  const last = await h.waitFor(socket, type, h.TIMEOUT, (data) => data?.marker === 'end');
  const earlier = socket.inbox.filter((e) => PUBLISHED.includes(e.event));
  socket.inbox = socket.inbox.filter((e) => !PUBLISHED.includes(e.event));
  return [...earlier.map((e) => [e.event, e.args[0]]), [type, last]];
}

/** Published events the socket received and nobody claimed. */
const strayPublished = (socket) => socket.inbox.filter((e) => PUBLISHED.includes(e.event)).map((e) => [e.event, e.args[0]]);

/**
 * Asserts the contract of a refused connection: connected at the protocol level, then `error`
 * {message, type, timestamp}, then a server disconnect, and never `connection:success`.
 */
async function refused(t, url, options, message, type = 'auth') {
  const socket = h.openFor(t, url, { namespace: RT, ...options });
  await h.waitFor(socket, 'connect');
  const error = await h.waitFor(socket, 'error');
  assert.deepEqual(error, { message, type, timestamp: error.timestamp });
  assertIso(error.timestamp);
  assert.equal(await h.waitFor(socket, 'disconnect'), 'io server disconnect');
  // Nothing arrives after the disconnect, so it is the barrier for `connection:success`.
  assert.deepEqual(h.pending(socket, WELCOME), [], 'a refused socket was welcomed');
  return error;
}

// Realistic payloads, as the seed's emit methods send them.
const calc = (contractId, extra = {}) => ({
  id: `calc-${contractId}`,
  contractId,
  commissionAmount: 1250000.5,
  totalRevenue: 25000000,
  period: '2026-01-01 - 2026-01-31',
  ...extra,
});
const METRICS = {
  totalRevenue: 98000000,
  totalCommissions: 4900000,
  pendingPayments: 3,
  overduePayments: 1,
  activeContracts: 17,
  timestamp: '2026-02-01T00:00:00.000Z',
};
const PROGRESS = { jobId: 'j1', type: 'commission-calculation', progress: 40, message: 'Calculating contract 3 of 7' };
const COMPLETED = { jobId: 'j1', type: 'commission-calculation', result: { processed: 7, nested: [1, { deep: null }] } };
const FAILED = { jobId: 'j2', type: 'payment-reminder', error: 'SMTP timeout', attemptsMade: 3 };
const STATS = { waiting: 3, active: 1, completed: 120, failed: 2, delayed: 0 };

/** One event of every published type for `contract:c1`, the queue and the dashboard; the last,
 * `dashboard:metrics` with `marker: 'end'`, closes a `receivedUntilEnd`. */
const everyTypeThenEnd = () => [
  ['commission:calculated', calc('c1')],
  ['commission:updated', { contractId: 'c1', status: 'paid' }],
  ['queue:job-progress', PROGRESS],
  ['queue:job-completed', COMPLETED],
  ['queue:job-failed', FAILED],
  ['queue:stats', STATS],
  ['dashboard:metrics', { ...METRICS, marker: 'end' }],
];

// ---------------------------------------------------------------------------------------------

describe("the seed's React client snippet", () => {
  it('connects as written, is welcomed as authenticated and receives dashboard:metrics and commission:calculated', async (t) => {
    const tenantId = newTenant('react');
    const token = h.mintToken({ sub: 'operator-1', tenantId });

    // The snippet, unchanged (API_URL is the gateway; localStorage holds the token).
    const socket = io(`${gw.url}/realtime`, {
      auth: {
        token,
      },
      transports: ['websocket', 'polling'],
    });
    t.after(() => socket.disconnect());
    const connected = h.waitFor(socket, 'connect');
    const success = h.waitFor(socket, 'connection:success');
    const connectError = [];
    socket.on('connect_error', (error) => connectError.push(error));
    socket.emit('subscribe:dashboard');
    const metrics = h.waitFor(socket, 'dashboard:metrics');
    const commission = h.waitFor(socket, 'commission:calculated');

    await connected;
    const welcome = await success;
    assert.equal(welcome.authenticated, true);
    assert.deepEqual(welcome, { authenticated: true, userId: 'operator-1', tenantId, clientId: welcome.clientId, timestamp: welcome.timestamp });
    h.assertPublicId(welcome.clientId, socket);
    assertIso(welcome.timestamp);
    assert.equal(socket.io.engine.transport.name, 'websocket');
    assert.deepEqual(connectError, []);

    // Client events are handled in the order sent: this ack means the snippet's subscribe is done.
    assert.deepEqual(await socket.timeout(h.TIMEOUT).emitWithAck('subscribe:dashboard'), { success: true, room: 'dashboard' });

    const published = calc('contract-77');
    await h.publishOk(gw.url, [
      { type: 'dashboard:metrics', tenantId, data: METRICS },
      { type: 'commission:calculated', tenantId, data: published },
    ]);
    assert.deepEqual(await metrics, METRICS);
    const data = await commission;
    assert.deepEqual(data, published);
    assert.equal(`New commission: ${data.commissionAmount} UZS`, 'New commission: 1250000.5 UZS');

    // The snippet's cleanup.
    socket.emit('unsubscribe:dashboard');
    socket.disconnect();
    assert.equal(socket.connected, false);
  });
});

for (const setup of h.TRANSPORTS) {
  describe(`the /realtime flow over ${setup.name}`, () => {
    const options = { transports: setup.transports };

    it('connects on the expected transport and is told authenticated, userId, tenantId, clientId and timestamp', async (t) => {
      const tenantId = newTenant('flow');
      const socket = await member(t, tenantId, options, { sub: 'alice' });
      assert.equal(socket.io.engine.transport.name, setup.expect);
      const { timestamp, ...who } = socket.welcome;
      assert.deepEqual(who, { authenticated: true, userId: 'alice', tenantId, clientId: who.clientId });
      h.assertPublicId(who.clientId, socket);
      assertIso(timestamp);
      assert.deepEqual(h.pending(socket, 'error'), []);
    });

    it('answers the ack of every client event with {success: true, room}', async (t) => {
      const socket = await member(t, newTenant('acks'), options);
      await joinDashboard(socket);
      await expectAck(socket, 'unsubscribe:dashboard', undefined, { success: true, room: 'dashboard' });
      await joinQueue(socket);
      await expectAck(socket, 'unsubscribe:queue', undefined, { success: true, room: 'queue' });
      await joinContract(socket, 'c-1');
      await expectAck(socket, 'unsubscribe:contract', { contractId: 'c-1' }, { success: true, room: 'contract:c-1', contractId: 'c-1' });
      // A numeric id (the seed's ids may be numbers) names the same room as its text.
      await joinContract(socket, 42);
      await expectAck(socket, 'unsubscribe:contract', { contractId: 42 }, { success: true, room: 'contract:42', contractId: 42 });
      assert.deepEqual(h.pending(socket, 'error'), []);
    });

    it('delivers every published type to its rooms only, once per socket, with the data unchanged', async (t) => {
      const tenantId = newTenant('routes');
      const dashboard = await member(t, tenantId, options);
      const queue = await member(t, tenantId, options);
      const contract = await member(t, tenantId, options);
      const both = await member(t, tenantId, options);
      const idle = await member(t, tenantId, options);
      await joinDashboard(dashboard);
      await joinQueue(queue);
      await joinContract(contract, 'c1');
      await joinDashboard(both);
      await joinContract(both, 'c1');

      const calc1 = calc('c1');
      const calc2 = calc('c2', { id: 'calc-other' });
      const updated1 = { id: 'calc-c1', contractId: 'c1', status: 'paid', paidAt: '2026-02-03T10:00:00.000Z' };
      const endCommission = { contractId: 'c1', marker: 'end' };
      const endQueue = { marker: 'end' };
      await send(tenantId, [
        ['commission:calculated', calc1],
        ['queue:job-progress', PROGRESS],
        ['commission:calculated', calc2],
        ['queue:job-completed', COMPLETED],
        ['dashboard:metrics', METRICS],
        ['queue:job-failed', FAILED],
        ['commission:updated', updated1],
        ['queue:stats', STATS],
        ['commission:updated', endCommission],
        ['queue:stats', endQueue],
      ]);

      const dashboardEvents = [
        ['commission:calculated', calc1],
        ['commission:calculated', calc2],
        ['dashboard:metrics', METRICS],
        ['commission:updated', updated1],
        ['commission:updated', endCommission],
      ];
      assert.deepEqual(await receivedUntilEnd(dashboard, 'commission:updated'), dashboardEvents, 'the dashboard room');
      assert.deepEqual(await receivedUntilEnd(both, 'commission:updated'), dashboardEvents, 'dashboard + contract:c1, each event once');
      assert.deepEqual(await receivedUntilEnd(contract, 'commission:updated'), [
        ['commission:calculated', calc1],
        ['commission:updated', updated1],
        ['commission:updated', endCommission],
      ], 'the contract:c1 room');
      assert.deepEqual(await receivedUntilEnd(queue, 'queue:stats'), [
        ['queue:job-progress', PROGRESS],
        ['queue:job-completed', COMPLETED],
        ['queue:job-failed', FAILED],
        ['queue:stats', STATS],
        ['queue:stats', endQueue],
      ], 'the queue room');

      // A socket in no room gets nothing. The publish call returned after delivery, so anything
      // for `idle` was queued before this ack.
      await expectAck(idle, 'unsubscribe:queue', undefined, { success: true, room: 'queue' });
      assert.deepEqual(strayPublished(idle), [], 'a socket in no room');
      for (const socket of [dashboard, queue, contract, both]) {
        assert.deepEqual(strayPublished(socket), [], 'nothing after the end markers');
      }
    });

    it('delivers nothing more after each unsubscribe, and unsubscribing twice is harmless', async (t) => {
      const tenantId = newTenant('unsub');
      const socket = await member(t, tenantId, options);
      await joinDashboard(socket);
      await joinQueue(socket);
      await joinContract(socket, 'c1');
      await joinContract(socket, 'c2');

      // Delivered while subscribed.
      await send(tenantId, [['dashboard:metrics', METRICS], ['queue:stats', STATS], ['commission:updated', { contractId: 'c1', marker: 'end' }]]);
      assert.deepEqual(await receivedUntilEnd(socket, 'commission:updated'), [
        ['dashboard:metrics', METRICS],
        ['queue:stats', STATS],
        ['commission:updated', { contractId: 'c1', marker: 'end' }],
      ]);

      for (let i = 0; i < 2; i++) {
        await expectAck(socket, 'unsubscribe:dashboard', undefined, { success: true, room: 'dashboard' });
        await expectAck(socket, 'unsubscribe:queue', undefined, { success: true, room: 'queue' });
        await expectAck(socket, 'unsubscribe:contract', { contractId: 'c1' }, { success: true, room: 'contract:c1', contractId: 'c1' });
      }

      await send(tenantId, [
        ['commission:calculated', calc('c1')],
        ['commission:updated', { contractId: 'c1', status: 'paid' }],
        ['commission:calculated', calc('c3')],
        ['dashboard:metrics', METRICS],
        ['queue:job-progress', PROGRESS],
        ['queue:job-completed', COMPLETED],
        ['queue:job-failed', FAILED],
        ['queue:stats', STATS],
        // Still in contract:c2: the barrier.
        ['commission:calculated', { contractId: 'c2', marker: 'end' }],
      ]);
      assert.deepEqual(await receivedUntilEnd(socket, 'commission:calculated'), [
        ['commission:calculated', { contractId: 'c2', marker: 'end' }],
      ]);
      assert.deepEqual(h.pending(socket, 'error'), []);
    });
  });
}

describe('invalid subscribe:contract / unsubscribe:contract payloads', () => {
  const MISSING = (event) => `${event} needs {contractId}`;
  const CASES = [
    ['an object without contractId', {}, MISSING],
    ['no payload at all', undefined, MISSING],
    ['a bare string instead of an object', 'c1', MISSING],
    ['a boolean contractId', { contractId: true }, () => 'contractId: true is not of types "integer", "string"'],
    ['an array contractId', { contractId: ['c1'] }, () => 'contractId: ["c1"] is not of types "integer", "string"'],
    ['a fractional contractId', { contractId: 1.5 }, () => 'contractId: 1.5 is not of types "integer", "string"'],
    ['an object contractId', { contractId: { id: 'c1' } }, () => /^contractId: .* is not of types "integer", "string"$/],
    ['an empty contractId', { contractId: '' }, () => 'contractId: "" is shorter than 1 character'],
    ['a contractId over 200 characters', { contractId: 'x'.repeat(201) }, () => /^contractId: "x+" is longer than 200 characters$/],
  ];

  for (const event of ['subscribe:contract', 'unsubscribe:contract']) {
    for (const [name, payload, message] of CASES) {
      it(`${event}: refuses ${name} with a validation error and an {error} ack, and the socket stays usable`, async (t) => {
        const tenantId = newTenant('invalid');
        const socket = await member(t, tenantId);
        const ack = await h.request(socket, event, payload);
        const error = await h.waitFor(socket, 'error');
        assert.deepEqual(ack, { error }, 'the ack carries the error event');
        assert.deepEqual(Object.keys(error).sort(), ['event', 'message', 'timestamp', 'type']);
        assert.equal(error.type, 'validation');
        assert.equal(error.event, event);
        const expected = message(event);
        if (expected instanceof RegExp) assert.match(error.message, expected);
        else assert.equal(error.message, expected);
        assertIso(error.timestamp);

        // Still connected and served: a valid subscribe works and its room delivers.
        assert.equal(socket.connected, true);
        await joinContract(socket, 'c1');
        await send(tenantId, [['commission:calculated', { contractId: 'c1', marker: 'end' }]]);
        assert.deepEqual(await receivedUntilEnd(socket, 'commission:calculated'), [['commission:calculated', { contractId: 'c1', marker: 'end' }]]);
      });
    }
  }

  it('sends the validation error event also when the client asked for no ack', async (t) => {
    const socket = await member(t, newTenant('noack'));
    socket.emit('subscribe:contract', { contractId: false });
    const error = await h.waitFor(socket, 'error');
    assert.equal(error.type, 'validation');
    assert.equal(error.event, 'subscribe:contract');
    assert.equal(error.message, 'contractId: false is not of types "integer", "string"');
    await joinQueue(socket);
  });
});

describe('anonymous sockets (no token)', () => {
  for (const transports of [['websocket'], ['polling']]) {
    it(`connect over ${transports[0]} and are welcomed with authenticated: false and userId: null`, async (t) => {
      const socket = await connectRt(t, { transports });
      const { timestamp, ...who } = socket.welcome;
      assert.deepEqual(who, { authenticated: false, userId: null, tenantId: null, clientId: who.clientId });
      h.assertPublicId(who.clientId, socket);
      assertIso(timestamp);
      assert.equal(socket.connected, true);
    });
  }

  it('get a permission error (and an {error} ack) for every subscribe, and stay connected', async (t) => {
    const socket = await connectRt(t);
    for (const [event, payload] of [
      ['subscribe:dashboard', undefined],
      ['subscribe:queue', undefined],
      ['subscribe:contract', { contractId: 'c1' }],
      ['subscribe:contract', { contractId: 7 }],
    ]) {
      const ack = await h.request(socket, event, payload);
      const error = await h.waitFor(socket, 'error');
      assert.deepEqual(ack, { error }, `${event} ack`);
      assert.equal(error.type, 'permission', `${event}: ${JSON.stringify(error)}`);
      assert.equal(error.event, event);
      assert.equal(typeof error.message, 'string');
      assertIso(error.timestamp);
    }
    assert.equal(socket.connected, true);
    assert.deepEqual(h.pending(socket, 'disconnect'), []);
  });

  it('never receive published events of any tenant', async (t) => {
    const tenantId = newTenant('anon');
    const anonymous = await connectRt(t);
    for (const event of ['subscribe:dashboard', 'subscribe:queue']) {
      assert.equal((await h.request(anonymous, event)).error?.type, 'permission');
    }
    assert.equal((await h.request(anonymous, 'subscribe:contract', { contractId: 'c1' })).error?.type, 'permission');

    // A member of every room shows the events were delivered.
    const watcher = await member(t, tenantId);
    await joinDashboard(watcher);
    await joinQueue(watcher);
    await joinContract(watcher, 'c1');
    await send(tenantId, everyTypeThenEnd());
    assert.equal((await receivedUntilEnd(watcher, 'dashboard:metrics')).length, 7);

    // The publish call returned after delivery; anything for the anonymous socket was queued
    // before this ack's answer.
    const ack = await h.request(anonymous, 'subscribe:dashboard');
    assert.equal(ack.error?.type, 'permission');
    assert.deepEqual(strayPublished(anonymous), []);
  });
});

for (const transports of [['websocket'], ['polling']]) {
  describe(`refused tokens over ${transports[0]}`, () => {
    const CASES = [
      ['a token with a modified payload and its original signature', () => h.tamperToken(h.mintToken(), (c) => ({ ...c, tenantId: 'someone-else' })), INVALID],
      ['a token signed with another secret', () => h.mintToken({}, { key: 'not-the-gateway-secret' }), INVALID],
      ['a malformed token', () => 'not-a-jwt', INVALID],
      ['an expired token', () => h.mintToken({ exp: h.nowSecs() - 30 }), EXPIRED],
      ['a token without tenantId', () => h.mintToken({ tenantId: undefined }), NO_TENANT],
    ];
    for (const [name, token, message] of CASES) {
      it(`refuses ${name}: error "${message}" {type: auth}, then a server disconnect`, async (t) => {
        await refused(t, gw.url, { transports, token: token() }, message);
      });
    }

    it('also refuses an invalid token in the ?token= query or the Authorization header, and accepts valid ones there', async (t) => {
      await refused(t, gw.url, { transports, query: { token: 'x.y.z' } }, INVALID);
      await refused(t, gw.url, { transports, extraHeaders: { Authorization: 'Bearer x.y.z' } }, INVALID);
      const tenantId = newTenant('sources');
      const fromQuery = await connectRt(t, { transports, query: { token: h.mintToken({ sub: 'q', tenantId }) } });
      assert.deepEqual([fromQuery.welcome.authenticated, fromQuery.welcome.userId, fromQuery.welcome.tenantId], [true, 'q', tenantId]);
      const fromHeader = await connectRt(t, { transports, extraHeaders: { Authorization: `Bearer ${h.mintToken({ sub: 'b', tenantId })}` } });
      assert.deepEqual([fromHeader.welcome.authenticated, fromHeader.welcome.userId, fromHeader.welcome.tenantId], [true, 'b', tenantId]);
    });
  });
}

describe('tenant isolation', () => {
  it("delivers tenant B's events only to tenant B, though tenant A's sockets hold the same room names", async (t) => {
    const id = h.uid();
    const [a, b] = [`iso-a-${id}`, `iso-b-${id}`];
    // The same user id in both tenants.
    const inA = await member(t, a, {}, { sub: 'u1' });
    const inB = await member(t, b, {}, { sub: 'u1' });
    for (const socket of [inA, inB]) {
      await joinDashboard(socket);
      await joinQueue(socket);
      await joinContract(socket, 'c1');
    }

    const forB = everyTypeThenEnd();
    await send(b, forB);
    assert.deepEqual(await receivedUntilEnd(inB, 'dashboard:metrics'), forB);

    // A's own event is the barrier: any of B's events would have reached A before it.
    await send(a, [['commission:calculated', { contractId: 'c1', marker: 'end' }]]);
    assert.deepEqual(await receivedUntilEnd(inA, 'commission:calculated'), [['commission:calculated', { contractId: 'c1', marker: 'end' }]]);
  });

  it('refuses to publish an event without tenantId, or without the ids its route needs, delivering nothing', async (t) => {
    const tenantId = newTenant('required');
    const socket = await member(t, tenantId);
    await joinDashboard(socket);
    await joinQueue(socket);
    for (const [body, message] of [
      [{ type: 'dashboard:metrics', data: METRICS }, /tenantId is required/],
      [h.event('commission:calculated', tenantId, { id: 'x', commissionAmount: 1 }), /data\.contractId is required/],
      [h.event('commission:updated', tenantId, { id: 'x' }), /data\.contractId is required/],
      [h.event('queue:job-progress', tenantId, { progress: 5 }), /data\.jobId is required/],
      [h.event('queue:job-completed', tenantId, {}), /data\.jobId is required/],
      [h.event('queue:job-failed', tenantId, { error: 'x' }), /data\.jobId is required/],
    ]) {
      const response = await h.publish(gw.url, body);
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.match(response.body?.error?.message ?? '', message);
    }
    await send(tenantId, [['queue:stats', { marker: 'end' }]]);
    assert.deepEqual(await receivedUntilEnd(socket, 'queue:stats'), [['queue:stats', { marker: 'end' }]]);
  });
});

// ---------------------------------------------------------------------------------------------
// The per-IP connection throttle: 10 per minute per client IP (seed: MAX_CONNECTIONS_PER_IP,
// CONNECTION_WINDOW_MS).

/** Asserts the throttle's refusal: `error` {message: "Too many connections", type: rate_limit}, then a disconnect. */
const throttled = (t, url, options) => refused(t, url, options, 'Too many connections', 'rate_limit');

/** Opens `count` /realtime connections one after the other, each welcomed, and closes each at once. */
async function spendConnections(t, url, count, options = () => ({})) {
  for (let i = 0; i < count; i++) {
    const socket = await connectRt(t, options(i), url);
    h.assertPublicId(socket.welcome.clientId, socket);
    socket.disconnect();
  }
}

describe('the per-IP connection throttle behind a trusted proxy', () => {
  let proxied;
  let lastOctet = 0;
  /** A client address of its own for each test. */
  const freshIp = () => `203.0.113.${++lastOctet}`;
  const from = (ip, extra = {}) => ({ extraHeaders: { 'x-forwarded-for': ip }, ...extra });

  before(async () => {
    proxied = await h.startGateway({ env: { TRUSTED_PROXIES: '127.0.0.1' } });
  });
  after(async () => {
    await proxied?.stop();
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`allows 10 connections a minute from one client over ${transports[0]}, then refuses the 11th and disconnects it`, async (t) => {
      const ip = freshIp();
      const tenantId = newTenant('throttle');
      // Signed-in and anonymous connections count alike; closing them gives nothing back.
      await spendConnections(t, proxied.url, 10, (i) => from(ip, i % 2 ? { transports } : { transports, token: h.mintToken({ tenantId }) }));
      await throttled(t, proxied.url, from(ip, { transports, token: h.mintToken({ tenantId }) }));
      await throttled(t, proxied.url, from(ip, { transports }));
    });
  }

  it('gives every forwarded client address its own budget', async (t) => {
    const first = freshIp();
    const second = freshIp();
    const held = [];
    for (let i = 0; i < 10; i++) held.push(await connectRt(t, from(first), proxied.url));
    await throttled(t, proxied.url, from(first));
    await spendConnections(t, proxied.url, 10, () => from(second));
    await throttled(t, proxied.url, from(second));
    assert.ok(held.every((s) => s.connected), 'the admitted connections of the first client stay connected');
  });

  it('believes only the rightmost untrusted X-Forwarded-For entry: addresses a client prepends buy no fresh budget', async (t) => {
    const ip = freshIp();
    await spendConnections(t, proxied.url, 10, () => from(ip));
    await throttled(t, proxied.url, from(`198.51.100.${lastOctet}, ${ip}`));
    await throttled(t, proxied.url, from(`10.9.8.7, 198.51.100.1, ${ip}, 127.0.0.1`));
  });

  it('throttles /realtime only: the same client still connects to /workflow', async (t) => {
    const ip = freshIp();
    await spendConnections(t, proxied.url, 10, () => from(ip));
    await throttled(t, proxied.url, from(ip));
    const workflow = await h.connectFor(t, proxied.url, { token: h.mintToken(), ...from(ip) });
    h.assertPublicId(workflow.welcome.clientId, workflow);
  });
});

describe('the per-IP connection throttle without trusted proxies', () => {
  let direct;
  before(async () => {
    direct = await h.startGateway({ env: { TRUSTED_PROXIES: undefined } });
  });
  after(async () => {
    await direct?.stop();
  });

  it("ignores X-Forwarded-For from an untrusted peer: every connection spends 127.0.0.1's budget", async (t) => {
    await spendConnections(t, direct.url, 10, (i) => ({ extraHeaders: { 'x-forwarded-for': `203.0.113.${100 + i}` } }));
    await throttled(t, direct.url, { extraHeaders: { 'x-forwarded-for': '203.0.113.200' } });
    await throttled(t, direct.url, { token: h.mintToken() });
  });
});

describe('the per-IP connection limit overridden in the config file', () => {
  let tuned;
  let dir;
  before(async () => {
    dir = h.tempDir();
    tuned = await h.startGateway({ env: { CONFIG_FILE: connectLimitConfig(dir.dir, 2), TRUSTED_PROXIES: undefined } });
  });
  after(async () => {
    await tuned?.stop();
    dir?.remove();
  });

  it('allows 2 connections a minute from one address instead of 10, and refuses the third', async (t) => {
    const token = h.mintToken({ tenantId: newTenant('tuned') });
    const first = await connectRt(t, { token }, tuned.url);
    const second = await connectRt(t, { token }, tuned.url);
    assert.deepEqual([first.welcome.authenticated, second.welcome.authenticated], [true, true]);
    await throttled(t, tuned.url, { token });
    assert.ok(first.connected && second.connected, 'the admitted connections stay connected');
  });
});

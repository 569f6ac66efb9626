// The plain WebSocket endpoint at /ws (seed 001, the Go hub), through real WebSocket clients (the
// `ws` package): every message type, each credential and refusal, channels and their ACL,
// filters and their bounds, tenant isolation, errors, bursts and floods, the heartbeat, slow
// consumers, statistics, cookies, the Go backend's Redis messages, two nodes, and a client written
// like the seed's frontend across a restart.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as h from './helpers.js';
import { HubSocket, SeedStyleClient, hubUrl, openHub } from './hub.js';
import { startRedis } from './redis.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A Go backend's execution event, snake_case as it sends it. */
const execution = (type, tenantId, data) => h.event(type, tenantId, data);

describe('the /ws plain WebSocket endpoint', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('answers ping with pong, subscribe with subscribed and unsubscribe with unsubscribed, in the {type, timestamp, data} envelope', async (t) => {
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId: `env-${h.uid()}` }));
    socket.send('ping');
    const pong = await socket.next('pong');
    assert.match(pong.timestamp, ISO);
    assert.deepEqual(Object.keys(pong), ['type', 'timestamp', 'data']);
    assert.deepEqual(await socket.subscribe('executions'), { channel: 'executions' });
    socket.send('unsubscribe', { channel: 'executions' });
    assert.deepEqual((await socket.next('unsubscribed')).data, { channel: 'executions' });
  });

  it('delivers execution, step and approval events to their channels with the data exactly as published', async (t) => {
    const tenantId = `chan-${h.uid()}`;
    const all = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const one = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const workflow = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const approvals = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await all.subscribe('executions');
    await one.subscribe('executions:e1');
    await workflow.subscribe('workflows:w2');
    await approvals.subscribe('approvals');

    const started = { execution_id: 'e1', workflow_id: 'w1', status: 'running', started_at: '2024-01-15T10:30:00Z' };
    await h.publishOk(gw.url, [
      execution('execution.started', tenantId, started),
      execution('step.completed', tenantId, { execution_id: 'e2', workflow_id: 'w2', step_id: 's1' }),
      execution('approval.required', tenantId, { approval_id: 'a1', execution_id: 'e1' }),
    ]);
    const got = await all.next('execution.started');
    assert.deepEqual(got.data, started, 'snake_case fields intact, nothing added');
    assert.equal(got.timestamp.slice(0, 4), new Date().toISOString().slice(0, 4));
    assert.equal((await all.next('step.completed')).data.step_id, 's1');
    assert.deepEqual((await one.next('execution.started')).data, started);
    assert.equal((await workflow.next('step.completed')).data.execution_id, 'e2');
    assert.equal((await approvals.next('approval.required')).data.approval_id, 'a1');
    for (const [socket, type] of [[one, 'step.completed'], [workflow, 'execution.started'], [approvals, 'execution.started']]) {
      assert.deepEqual(socket.pending(type), [], `${type} reached a channel it does not belong to`);
    }
  });

  it('filters by workflow_ids, execution_ids and statuses: an event passes when each given filter contains its value', async (t) => {
    const tenantId = `filter-${h.uid()}`;
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const filters = { workflow_ids: ['w1', 'w2'], statuses: ['running', 'failed'] };
    assert.deepEqual(await socket.subscribe('executions', filters), { channel: 'executions', filters });
    const events = [
      ['e1', 'w1', 'running', true],
      ['e2', 'w2', 'failed', true],
      ['e3', 'w3', 'running', false],
      ['e4', 'w1', 'completed', false],
      ['e5', 'w2', 'running', true],
    ];
    await h.publishOk(gw.url, events.map(([e, w, s]) => execution('execution.updated', tenantId, { execution_id: e, workflow_id: w, status: s })));
    for (const [e] of events.filter(([, , , passes]) => passes)) {
      assert.equal((await socket.next('execution.updated')).data.execution_id, e, 'in order, only those passing');
    }
    // Subscribing again replaces the filters.
    await socket.subscribe('executions', { execution_ids: ['e9'] });
    await h.publishOk(gw.url, [
      execution('execution.updated', tenantId, { execution_id: 'e1', workflow_id: 'w1', status: 'running' }),
      execution('execution.updated', tenantId, { execution_id: 'e9', workflow_id: 'w7', status: 'paused' }),
    ]);
    assert.equal((await socket.next('execution.updated')).data.execution_id, 'e9');
    assert.deepEqual(socket.pending('execution.updated'), []);
  });

  it("lets a user subscribe to their own channel only; another user's or an unknown channel is an error, and the connection stays", async (t) => {
    const tenantId = `user-${h.uid()}`;
    const socket = await openHub(t, gw.url, h.mintToken({ sub: 'alice', tenantId }));
    assert.deepEqual(await socket.subscribe('users:alice'), { channel: 'users:alice' });
    for (const [channel, type] of [['users:bob', 'permission'], ['payroll', 'validation']]) {
      socket.send('subscribe', { channel });
      const error = await socket.next('error');
      assert.equal(error.data.type, type, channel);
      assert.equal(error.data.event, 'subscribe');
    }
    await h.publishOk(gw.url, [execution('approval.required', tenantId, { approval_id: 'a9', approver_id: 'alice' })]);
    assert.equal((await socket.next('approval.required')).data.approval_id, 'a9');
    socket.send('ping');
    await socket.next('pong');
  });

  it("never delivers another tenant's events, whatever a client subscribes to", async (t) => {
    const [mine, theirs] = [`iso-${h.uid()}`, `iso-${h.uid()}`];
    const watcher = await openHub(t, gw.url, h.mintToken({ tenantId: theirs }));
    for (const channel of ['executions', 'executions:e1', 'workflows:w1', 'approvals']) await watcher.subscribe(channel);
    await h.publishOk(gw.url, [
      execution('execution.started', mine, { execution_id: 'e1', workflow_id: 'w1' }),
      execution('approval.required', mine, { execution_id: 'e1' }),
      execution('execution.started', theirs, { execution_id: 'barrier' }),
    ]);
    assert.equal((await watcher.next('execution.started')).data.execution_id, 'barrier');
    assert.deepEqual(watcher.pending('approval.required'), []);
  });

  it('answers a channel that does not exist with the channels that do', async (t) => {
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId: `names-${h.uid()}` }));
    socket.send('subscribe', { channel: 'execution:e1' });
    const error = await socket.next('error');
    assert.equal(error.data.type, 'validation');
    assert.equal(error.data.message, '`execution:e1` is not a room name here (rooms: executions, executions:{execution_id}, workflows:{workflow_id}, approvals, users:{user_id})');
  });

  it('bounds what filters make the gateway hold: values in bytes as stored, combinations, and the bytes of all the room names of a connection', async (t) => {
    const tenantId = `bound-${h.uid()}`;
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const refusal = async (channel, filters) => {
      socket.send('subscribe', { channel, filters });
      return (await socket.next('error', { where: (e) => e.data.event === 'subscribe' })).data;
    };
    // 22 C1 control characters: within the schema's 64 characters, 132 bytes once escaped.
    const controls = '\u0085'.repeat(22);
    const long = await refusal('executions', { statuses: ['running', controls] });
    assert.deepEqual([long.type, long.message], ['validation', 'a value of filter `status` takes 132 bytes; at most 64 (`%`, `*` and control characters count three per byte)']);
    const many = await refusal('executions', { workflow_ids: ['a', 'b', 'c'], execution_ids: ['a', 'b', 'c'], statuses: ['a', 'b'] });
    assert.match(many.message, /^18 filter combinations; at most 16/);

    // The widest subscription the limits allow: 16 rooms with values of 64 bytes.
    const ids = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i}`.padEnd(64, '-'));
    const widest = { workflow_ids: ids('w', 2), execution_ids: ids('e', 2), statuses: ids('s', 4) };
    assert.deepEqual(await socket.subscribe('executions', widest), { channel: 'executions', filters: widest });
    assert.deepEqual(await socket.subscribe('approvals', widest), { channel: 'approvals', filters: widest });
    // As wide again on a third channel would take more room names than a connection may hold.
    const budget = await refusal(`workflows:${'w'.repeat(60)}`, { execution_ids: ids('e', 4), statuses: ids('s', 4) });
    assert.equal(budget.type, 'rate_limit');
    assert.match(budget.message, /^too many rooms: their names would take \d+ bytes, and a socket's rooms may take 9600 /);

    await h.publishOk(gw.url, [
      execution('execution.updated', tenantId, { execution_id: widest.execution_ids[1], workflow_id: widest.workflow_ids[1], status: widest.statuses[2], n: 1 }),
      execution('execution.updated', tenantId, { execution_id: widest.execution_ids[1], workflow_id: widest.workflow_ids[1], status: 'other', n: 2 }),
      execution('execution.updated', tenantId, { execution_id: 'x'.repeat(300), workflow_id: widest.workflow_ids[0], status: widest.statuses[0], n: 3 }),
      execution('execution.updated', tenantId, { execution_id: widest.execution_ids[0], workflow_id: widest.workflow_ids[0], status: widest.statuses[0], n: 4 }),
    ]);
    assert.equal((await socket.next('execution.updated')).data.n, 1);
    assert.equal((await socket.next('execution.updated')).data.n, 4, 'only the events each filter lets through');
    assert.deepEqual(socket.pending('execution.updated'), []);
  });

  it('answers invalid JSON, an unknown type, bad data and a binary frame with an error envelope, and processes nothing', async (t) => {
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId: `err-${h.uid()}` }));
    const cases = [
      ['{not json', /^the message is not valid JSON/],
      [JSON.stringify([1, 2]), /^a message is an object/],
      [JSON.stringify({ data: {} }), /^`type` must be/],
      [JSON.stringify({ type: 'teleport', data: {} }), /^unknown event `teleport`$/],
      [JSON.stringify({ type: 'subscribe', data: { filters: {} } }), /^subscribe needs \{channel/],
      [JSON.stringify({ type: 'subscribe', data: { channel: 'executions', filters: { statuses: 'running' } } }), /^filters\.statuses: "running" is not of type "array"$/],
    ];
    for (const [text, message] of cases) {
      socket.ws.send(text);
      const error = await socket.next('error');
      assert.match(error.data.message, message, text);
      assert.match(error.data.timestamp, ISO);
    }
    socket.ws.send(Buffer.from([1, 2, 3]));
    assert.match((await socket.next('error')).data.message, /^binary frames are not supported/);
    socket.send('ping');
    await socket.next('pong');
  });

  it('closes with 1009 a client message over WS_NATIVE_MAX_MESSAGE_SIZE (64 KiB)', async (t) => {
    const socket = await openHub(t, gw.url, h.mintToken({ tenantId: `big-${h.uid()}` }));
    socket.ws.send(JSON.stringify({ type: 'ping', data: { pad: 'x'.repeat(70 * 1024) } }));
    const { code } = await socket.closed;
    assert.equal(code, 1009);
  });

  describe('who may connect (checked before the upgrade)', () => {
    const refused = async (url, options, status) => {
      const socket = new HubSocket(url, options);
      const error = await socket.opened.then(() => null, (e) => e);
      assert.ok(error, 'it must not open');
      assert.equal(error.status, status, error.message);
      return error.body;
    };

    it('accepts a token as ?token= and as Authorization: Bearer', async (t) => {
      const token = h.mintToken({ sub: 'bearer', tenantId: `src-${h.uid()}` });
      const byHeader = new HubSocket(hubUrl(gw.url), { headers: { Authorization: `Bearer ${token}` } });
      t.after(() => byHeader.close());
      await byHeader.opened;
      byHeader.send('ping');
      await byHeader.next('pong');
      const byQuery = await openHub(t, gw.url, token);
      byQuery.send('ping');
      await byQuery.next('pong');
    });

    it('accepts an API key as a service of the tenant named in ?tenantId=, which sees that tenant only', async (t) => {
      const tenantId = `svc-${h.uid()}`;
      const service = new HubSocket(hubUrl(gw.url, `?tenantId=${tenantId}`), { headers: { 'X-API-Key': h.API_KEY } });
      t.after(() => service.close());
      await service.opened;
      await service.subscribe('executions');
      await h.publishOk(gw.url, [execution('execution.failed', `other-${tenantId}`, { execution_id: 'x' }), execution('execution.failed', tenantId, { execution_id: 'mine' })]);
      assert.equal((await service.next('execution.failed')).data.execution_id, 'mine');
      const body = await refused(hubUrl(gw.url), { headers: { 'X-API-Key': h.API_KEY } }, 400);
      assert.match(body.error.message, /tenantId/);
      await refused(hubUrl(gw.url, '?tenantId=t1'), { headers: { 'X-API-Key': 'wrong-key' } }, 401);
    });

    it('refuses a missing, invalid or expired token with 401 and a JSON error', async () => {
      for (const [query, message] of [
        ['', 'Authentication token required'],
        ['?token=garbage', 'Invalid authentication token'],
        [`?token=${h.mintToken({ exp: h.nowSecs() - 60 })}`, 'Authentication token expired'],
        [`?token=${h.unsignedToken()}`, 'Invalid authentication token'],
      ]) {
        const body = await refused(hubUrl(gw.url, query), {}, 401);
        assert.deepEqual(body, { error: { type: 'auth', message } }, query);
      }
    });

    it('refuses a page of another origin with 403, and accepts one of CORS_ORIGINS', async (t) => {
      const token = h.mintToken({ tenantId: `org-${h.uid()}` });
      await refused(hubUrl(gw.url, `?token=${token}`), { origin: 'https://evil.example' }, 403);
      const ok = new HubSocket(hubUrl(gw.url, `?token=${token}`), { origin: 'http://localhost:3000' });
      t.after(() => ok.close());
      await ok.opened;
    });

    it('takes no token from the AUTH_COOKIE_NAME cookie: seed 001 clients send ?token= (hub.yaml has cookie: false)', async (t) => {
      const token = h.mintToken({ tenantId: `cookie-${h.uid()}` });
      const body = await refused(hubUrl(gw.url), { headers: { Cookie: `access_token=${token}` } }, 401);
      assert.deepEqual(body, { error: { type: 'auth', message: 'Authentication token required' } });
      const byQuery = await openHub(t, gw.url, token, { headers: { Cookie: 'access_token=garbage' } });
      byQuery.send('ping');
      await byQuery.next('pong');
    });

    it('answers a plain GET with 426 Upgrade Required', async () => {
      const response = await fetch(`${gw.url}/ws`);
      assert.equal(response.status, 426);
      assert.equal((await response.json()).error.type, 'validation');
    });
  });

  it("serves GET /ws/stats to an API key, which sees every tenant, or to a token, which sees only its own tenant's", async (t) => {
    const [mine, theirs] = [`stats-${h.uid()}`, `stats-${h.uid()}`];
    const a = await openHub(t, gw.url, h.mintToken({ sub: 'stats-a', tenantId: mine }));
    await openHub(t, gw.url, h.mintToken({ sub: 'stats-a', tenantId: mine }));
    await openHub(t, gw.url, h.mintToken({ sub: 'stats-b', tenantId: mine }));
    await openHub(t, gw.url, h.mintToken({ sub: 'stats-c', tenantId: theirs }));
    a.send('ping');
    await a.next('pong');
    assert.equal((await h.api(gw.url, '/ws/stats', undefined, { headers: {} })).status, 401);
    assert.equal((await h.api(gw.url, '/ws/stats?token=garbage', undefined, { headers: {} })).status, 401);
    const byKey = await h.api(gw.url, '/ws/stats');
    assert.equal(byKey.status, 200);
    assert.deepEqual(Object.keys(byKey.body), ['total_clients', 'total_users', 'channels']);
    assert.deepEqual(Object.keys(byKey.body.channels), ['register', 'unregister', 'broadcast']);
    assert.ok(byKey.body.total_clients >= 4 && byKey.body.total_users >= 3, JSON.stringify(byKey.body));
    const asMine = await h.api(gw.url, `/ws/stats?token=${h.mintToken({ sub: 'stats-x', tenantId: mine })}`, undefined, { headers: {} });
    assert.equal(asMine.status, 200);
    assert.deepEqual(asMine.body, { total_clients: 3, total_users: 2, channels: { register: 0, unregister: 0, broadcast: 0 } });
    const bearer = { headers: { Authorization: `Bearer ${h.mintToken({ tenantId: theirs })}` } };
    assert.deepEqual((await h.api(gw.url, '/ws/stats', undefined, bearer)).body, { total_clients: 1, total_users: 1, channels: { register: 0, unregister: 0, broadcast: 0 } });
    const elsewhere = await h.api(gw.url, `/ws/stats?token=${h.mintToken({ tenantId: `none-${h.uid()}` })}`, undefined, { headers: {} });
    assert.equal(elsewhere.body.total_clients, 0);
  });
});

describe('a plain WebSocket spec that takes cookies', () => {
  it('takes a cookie token only from CORS_ORIGINS or a client that sends no Origin, not from the gateway\'s own pages', async (t) => {
    const { dir, remove } = h.tempDir();
    t.after(remove);
    h.writeFile(dir, 'cookie-hub.yaml', [
      'namespace: /ws',
      'transport: websocket',
      'auth: { required: true, cookie: true }',
      'events:',
      '  ping: { do: [{ reply: { event: pong } }] }',
    ].join('\n'));
    const gw = await h.startGateway({ env: { NAMESPACES_DIR: dir } });
    t.after(() => gw.stop());
    const cookie = { Cookie: `access_token=${h.mintToken({ tenantId: `jar-${h.uid()}` })}` };
    for (const origin of [undefined, 'http://localhost:3000']) {
      const socket = new HubSocket(hubUrl(gw.url), { headers: cookie, ...(origin ? { origin } : {}) });
      t.after(() => socket.close());
      await socket.opened;
      socket.send('ping');
      await socket.next('pong');
    }
    const own = new HubSocket(hubUrl(gw.url), { headers: cookie, origin: gw.url });
    const error = await own.opened.then(() => null, (e) => e);
    own.close();
    assert.equal(error?.status, 403, 'a page of the gateway itself is not one of CORS_ORIGINS');
    assert.deepEqual(error.body, { error: { type: 'auth', message: 'Cookie authentication is not accepted from this origin' } });
    const explicit = new HubSocket(hubUrl(gw.url, `?token=${h.mintToken()}`), { origin: gw.url });
    t.after(() => explicit.close());
    await explicit.opened;
  });
});

describe('bursts and floods on /ws', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  /** `count` events of about `bytes` each for `tenantId`, numbered from `from`. */
  const batch = (tenantId, from, count, bytes = 0) =>
    Array.from({ length: count }, (_, k) => execution('execution.progress', tenantId, { execution_id: 'e1', n: from + k, pad: 'x'.repeat(bytes) }));

  /** Resolves `promise`, or rejects after `ms` saying what did not happen. */
  const within = (promise, ms, what) => Promise.race([promise, sleep(ms).then(() => { throw new Error(`${what} within ${ms} ms`); })]);

  it('delivers every event of a 257-event batch to a client that keeps reading, and keeps it connected', async (t) => {
    const tenantId = `burst-${h.uid()}`;
    const reader = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await reader.subscribe('executions');
    await h.publishOk(gw.url, batch(tenantId, 0, 257));
    for (let n = 0; n < 257; n++) assert.equal((await reader.next('execution.progress')).data.n, n);
    reader.send('ping');
    await reader.next('pong');
  });

  it('delivers every event of a batch, in order, to each of 300 members of one channel: those the publisher writes to and those left to their connections', async (t) => {
    // The publisher writes an event to the first 128 members itself, the rest go through their
    // connections' tasks: both halves must get everything, once, in order.
    const tenantId = `wide-${h.uid()}`;
    const token = h.mintToken({ tenantId });
    const readers = await Promise.all(Array.from({ length: 300 }, () => openHub(t, gw.url, token)));
    await Promise.all(readers.map((r) => r.subscribe('executions')));
    await h.publishOk(gw.url, batch(tenantId, 0, 20));
    await Promise.all(readers.map(async (reader) => {
      for (let n = 0; n < 20; n++) assert.equal((await reader.next('execution.progress')).data.n, n);
    }));
    readers[299].send('ping');
    await readers[299].next('pong');
  });

  it('delivers two concurrent batches of 1,000 events (1 MB each) in full to a client that keeps reading', async (t) => {
    const tenantId = `bursts-${h.uid()}`;
    const reader = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await reader.subscribe('executions');
    const [first, second] = [batch(tenantId, 0, 1000, 880), batch(tenantId, 1000, 1000, 880)];
    assert.ok(JSON.stringify(first).length > 950_000 && JSON.stringify(first).length < 1_000_000, 'just under API_MAX_BODY_SIZE');
    await Promise.all([h.publishOk(gw.url, first), h.publishOk(gw.url, second)]);
    const seen = [];
    for (let i = 0; i < 2000; i++) seen.push((await reader.next('execution.progress')).data.n);
    assert.deepEqual(seen.filter((n) => n < 1000), [...Array(1000).keys()], 'the first batch whole, in order');
    assert.deepEqual(seen.filter((n) => n >= 1000), [...Array(1000).keys()].map((n) => n + 1000), 'the second too');
    reader.send('ping');
    await reader.next('pong');
  });

  it('closes a client that floods ping frames (1008, counted as flood); one that pings now and then gets every pong', async (t) => {
    const calm = await openHub(t, gw.url, h.mintToken());
    let pongs = 0;
    calm.ws.on('pong', () => (pongs += 1));
    for (let i = 0; i < 5; i++) calm.ws.ping();
    await h.eventually(async () => pongs === 5, 'five pongs');

    const flooder = await openHub(t, gw.url, h.mintToken());
    const before = await h.metric(gw.url, 'connections_closed_total', { namespace: '/ws', protocol: 'websocket', reason: 'flood' });
    for (let i = 0; i < 5000; i++) flooder.ws.ping();
    const { code, reason } = await within(flooder.closed, 5000, 'the flooder closed');
    assert.deepEqual([code, reason], [1008, 'too many frames: slow down']);
    await h.eventually(async () => (await h.metric(gw.url, 'connections_closed_total', { namespace: '/ws', protocol: 'websocket', reason: 'flood' })) === before + 1, 'the close counted');
    calm.send('ping');
    await calm.next('pong');
  });
});

describe('heartbeat, slow consumers and token expiry on /ws', () => {
  it('pings every WS_NATIVE_PING_INTERVAL and closes a client silent for WS_NATIVE_PONG_WAIT; a client that pongs stays', async (t) => {
    const gw = await h.startGateway({ env: { WS_NATIVE_PING_INTERVAL: '300', WS_NATIVE_PONG_WAIT: '900' } });
    t.after(() => gw.stop());
    const alive = await openHub(t, gw.url, h.mintToken());
    let pings = 0;
    alive.ws.on('ping', () => (pings += 1));
    // A client that reads nothing answers no ping.
    const silent = await openHub(t, gw.url, h.mintToken());
    silent.ws._socket.pause();
    await h.eventually(async () => (await h.api(gw.url, '/ws/stats')).body.total_clients === 1, 'the silent client closed', 5000);
    silent.ws._socket.resume();
    assert.equal((await silent.closed).code, 1001);
    assert.ok(pings >= 2, `pings seen: ${pings}`);
    alive.send('ping');
    await alive.next('pong');
  });

  it('closes a client that does not read when its send buffer is full (1008), counts it, and the readers get every event', async (t) => {
    const gw = await h.startGateway({ env: { WS_NATIVE_SEND_BUFFER: '64', API_MAX_BATCH: '10', WS_WRITE_TIMEOUT: '60000', API_MAX_BODY_SIZE: '10000000' } });
    t.after(() => gw.stop());
    const tenantId = `slowhub-${h.uid()}`;
    const reader = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await reader.subscribe('executions');
    const stalled = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await stalled.subscribe('executions');
    stalled.ws._socket.pause();
    const count = 300;
    for (let i = 0; i < count; i += 10) {
      await h.publishOk(gw.url, Array.from({ length: 10 }, (_, j) => execution('execution.progress', tenantId, { execution_id: 'e1', n: i + j, blob: 'x'.repeat(50_000) })));
    }
    for (let i = 0; i < count; i++) assert.equal((await reader.next('execution.progress', { timeoutMs: 10_000 })).data.n, i);
    await h.eventually(async () => (await h.metric(gw.url, 'connections_cut_total', { reason: 'slow_consumer' })) >= 1, 'the slow consumer cut', 5000);
    assert.ok((await h.metric(gw.url, 'deliveries_dropped_total')) > 0);
    stalled.ws._socket.resume();
    const { code, reason } = await stalled.closed;
    assert.equal(code, 1008);
    assert.match(reason, /send buffer full/);
    await h.eventually(async () => (await h.api(gw.url, '/ws/stats')).body.total_clients === 1, 'the slow consumer gone', 5000);
  });

  it('cuts a client that stops reading at the write deadline and frees what it held; a reader gets every event', async (t) => {
    // Published slower than a send buffer fills in WS_WRITE_TIMEOUT: here the deadline alone ends it.
    const gw = await h.startGateway({ env: { WS_WRITE_TIMEOUT: '1000' } });
    t.after(() => gw.stop());
    const tenantId = `deadline-${h.uid()}`;
    const baseline = await h.metric(gw.url, 'tcp_connections');
    const reader = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await reader.subscribe('executions');
    const stalled = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await stalled.subscribe('executions');
    stalled.ws._socket.pause();
    let published = 0;
    const cut = async () => (await h.metric(gw.url, 'connections_cut_total', { reason: 'write_timeout' })) >= 1;
    for (const until = Date.now() + 30_000; !(await cut()); ) {
      assert.ok(Date.now() < until, 'the stalled client was not cut');
      await h.publishOk(gw.url, Array.from({ length: 10 }, (_, k) => execution('execution.progress', tenantId, { execution_id: 'e1', n: published + k, pad: 'x'.repeat(10_000) })));
      published += 10;
      await sleep(50);
    }
    assert.equal(await h.metric(gw.url, 'connections_cut_total', { reason: 'slow_consumer' }), 0, 'the deadline, not the buffer');
    for (let n = 0; n < published; n++) assert.equal((await reader.next('execution.progress')).data.n, n);
    await h.eventually(async () => {
      const { body } = await h.api(gw.url, '/ws/stats');
      return body.total_clients === 1 && body.channels.broadcast === 0;
    }, 'only the reader left, nothing queued');
    await h.eventually(async () => (await h.metric(gw.url, 'tcp_connections')) <= baseline + 1, 'the connection freed');
  });

  it('sends an error envelope and closes when the token expires, unless the client refreshed it', async (t) => {
    const gw = await h.startGateway();
    t.after(() => gw.stop());
    const exp = h.nowSecs() + 2;
    const expiring = await openHub(t, gw.url, h.mintToken({ sub: 'x', tenantId: 'tx', exp }));
    const refreshing = await openHub(t, gw.url, h.mintToken({ sub: 'y', tenantId: 'tx', exp }));
    refreshing.send('auth:refresh', { token: h.mintToken({ sub: 'y', tenantId: 'tx', exp: h.nowSecs() + 600 }) });
    assert.ok((await refreshing.next('auth:refreshed')).data.expiresAt);
    const error = await expiring.next('error', { timeoutMs: 5000 });
    assert.deepEqual([error.data.type, error.data.message], ['auth', 'Authentication token expired']);
    assert.equal((await expiring.closed).code, 1008);
    assert.ok(Date.now() - exp * 1000 < 1000, 'at the instant it expired');
    refreshing.send('ping');
    await refreshing.next('pong');
  });
});

describe('/ws with Redis: the Go backend, three nodes, a restart', () => {
  const cluster = {};
  before(async () => {
    cluster.redis = await startRedis();
    cluster.env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `hub${h.uid()}` };
    cluster.a = await h.startGateway({ env: cluster.env });
    cluster.b = await h.startGateway({ env: cluster.env });
    cluster.c = await h.startGateway({ env: cluster.env });
    for (const node of [cluster.a, cluster.b, cluster.c]) {
      await h.eventually(async () => (await h.api(node.url, '/readyz')).body?.status === 'ready', 'node ready', 10_000);
    }
  });
  after(async () => {
    await cluster.a?.stop();
    await cluster.b?.stop();
    await cluster.c?.stop();
    await cluster.redis?.stop();
  });

  it("delivers the Go backend's message PUBLISHed on ws:broadcast:all, unchanged, on every node once", async (t) => {
    const tenantId = `go-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    const onB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    const onC = await openHub(t, cluster.c.url, h.mintToken({ tenantId }));
    for (const socket of [onA, onB, onC]) await socket.subscribe('executions:e1');
    const redis = await cluster.redis.client();
    t.after(() => redis.quit());
    const data = { execution_id: 'e1', workflow_id: 'w1', status: 'completed', tenant_id: tenantId };
    await redis.publish('ws:broadcast:all', JSON.stringify({ channel: 'executions', type: 'execution.completed', data, filters: { status: 'completed' } }));
    for (const socket of [onA, onB, onC]) {
      assert.deepEqual((await socket.next('execution.completed')).data, data, 'the data as the backend sent it');
    }
    await h.publishOk(cluster.a.url, [execution('execution.completed', tenantId, { execution_id: 'e1', n: 'barrier' })]);
    for (const socket of [onA, onB, onC]) {
      assert.equal((await socket.next('execution.completed')).data.n, 'barrier', 'the first came once');
    }
  });

  it('delivers an event published through A to a subscriber on B exactly once, and counts both nodes in /ws/stats', async (t) => {
    const tenantId = `two-${h.uid()}`;
    const onB = await openHub(t, cluster.b.url, h.mintToken({ sub: 'on-b', tenantId }));
    await onB.subscribe('approvals');
    await openHub(t, cluster.a.url, h.mintToken({ sub: 'on-a', tenantId }));
    await h.publishOk(cluster.a.url, [execution('approval.granted', tenantId, { approval_id: 'a1' }), execution('approval.denied', tenantId, { approval_id: 'barrier' })]);
    assert.equal((await onB.next('approval.granted')).data.approval_id, 'a1');
    assert.equal((await onB.next('approval.denied')).data.approval_id, 'barrier');
    assert.deepEqual(onB.pending('approval.granted'), []);
    await h.eventually(async () => (await h.api(cluster.a.url, '/ws/stats')).body.total_clients >= 2, 'both nodes counted', 8000);
  });

  it('keeps a client written like the seed frontend receiving across a gateway restart: it reconnects and resubscribes', async (t) => {
    const tenantId = `seed-${h.uid()}`;
    const port = cluster.b.port;
    const client = new SeedStyleClient(cluster.b.url, { getToken: () => h.mintToken({ tenantId }), interval: 200 });
    t.after(() => client.stop());
    const opened = client.next('open');
    client.connect();
    await opened;
    client.subscribe('workflows:w1', { statuses: ['running'] });
    await client.next('subscribed');
    await h.publishOk(cluster.a.url, [execution('execution.started', tenantId, { execution_id: 'e1', workflow_id: 'w1', status: 'running' })]);
    assert.equal((await client.next('execution.started')).data.execution_id, 'e1');

    await cluster.b.stop();
    const reopened = client.next('open', 15_000);
    cluster.b = await h.startGateway({ env: { ...cluster.env, PORT: String(port) } });
    await reopened;
    await client.next('subscribed');
    await h.publishOk(cluster.a.url, [
      execution('execution.started', tenantId, { execution_id: 'e2', workflow_id: 'w1', status: 'completed' }),
      execution('execution.started', tenantId, { execution_id: 'e3', workflow_id: 'w1', status: 'running' }),
    ]);
    assert.equal((await client.next('execution.started', 10_000)).data.execution_id, 'e3', 'resubscribed with its filters');
  });
});

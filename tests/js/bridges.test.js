// Outbound bridges (seed 003's external mode) against real peers started here: a Node socket.io
// server with bearer auth, a Node `ws` server with query auth, and a webhook receiver. The
// gateway reads its bridges from BRIDGES_FILE and lists 127.0.0.1 in BRIDGE_ALLOWED_HOSTS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import net from 'node:net';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';

import { API_KEY, api, eventually, metric, runGateway, startGateway, tempDir, writeFile } from './helpers.js';

const IO_TOKEN = 'io-bearer-secret-7f3a';
const WS_TOKEN = 'ws-query-secret-91bc';
const BASIC_PASSWORD = 'basic-pass-55d1';
const CUSTOM_KEY = 'custom-key-0e4f';
// Tokens a provider changed at run time authenticates with.
const ROTATED_A = 'rotated-token-a-3c7e';
const ROTATED_B = 'rotated-token-b-8d21';
const IO_TENANT_KEY = 'io-tenant-key-5b90';
const RT_TENANT_KEY = 'rt-tenant-key-1f6a';
const WAIT = 8000;

/**
 * A webhook receiver: every JSON body POSTed to it and answered 2xx, in order (`attempts`: every
 * one). A body whose data says `fail: 'once'` is answered 503 the first time, `fail: 'final'`
 * always 400.
 */
async function startWebhook() {
  const bodies = [];
  const attempts = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => { text += c; });
    req.on('end', () => {
      const body = JSON.parse(text);
      attempts.push(body);
      const fail = body.data?.fail;
      if (fail === 'final') return res.writeHead(400).end();
      if (fail === 'once' && attempts.filter((a) => a.data?.tag === body.data.tag).length === 1) return res.writeHead(503).end();
      bodies.push({ path: req.url, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { bodies, attempts, url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/**
 * A socket.io server on `port` (0: a free one) that wants `Authorization: Bearer IO_TOKEN`.
 * It records channel joins and the notifications it receives, and acknowledges them unless the
 * user is `silent`.
 */
async function startIoPeer(port = 0) {
  const peer = { joins: [], notes: [], broadcasts: [], sockets: new Set(), authorizations: [], closed: [], connected: [] };
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  const accepted = [IO_TOKEN, ROTATED_A, ROTATED_B].map((t) => `Bearer ${t}`);
  io.use((socket, next) => {
    peer.authorizations.push(socket.handshake.headers.authorization);
    if (accepted.includes(socket.handshake.headers.authorization)) next();
    else next(new Error('Unauthorized'));
  });
  // Namespace /partner wants basic auth instead.
  const partner = io.of('/partner');
  peer.partnerJoins = [];
  partner.use((socket, next) => {
    const expected = `Basic ${Buffer.from(`partner:${BASIC_PASSWORD}`).toString('base64')}`;
    if (socket.handshake.headers.authorization === expected) next();
    else next(new Error('Unauthorized'));
  });
  partner.on('connection', (socket) => {
    socket.on('channel:join', ({ channelName }) => peer.partnerJoins.push(channelName));
  });
  io.on('connection', (socket) => {
    peer.sockets.add(socket);
    peer.connected.push([...peer.sockets].map((s) => s.handshake.headers.authorization));
    socket.on('disconnect', () => {
      peer.sockets.delete(socket);
      peer.closed.push(socket.handshake.headers.authorization);
    });
    // Request-response: `user:info` is answered, `never:answers` never is.
    socket.on('user:info', (data, ack) => ack({ userId: data.userId, name: `User ${data.userId}` }));
    socket.on('never:answers', () => {});
    socket.on('channel:join', ({ channelName }) => {
      socket.join(channelName);
      peer.joins.push(channelName);
    });
    socket.on('notify', (data, ack) => {
      peer.notes.push(data);
      if (data.userId !== 'silent' && typeof ack === 'function') ack({ delivered: true, to: data.userId });
    });
    socket.on('channel:broadcast', (data, ack) => {
      peer.broadcasts.push(data);
      if (typeof ack === 'function') ack({ delivered: true, channel: data.channel });
    });
  });
  await new Promise((resolve) => http.listen(port, '127.0.0.1', resolve));
  peer.port = http.address().port;
  peer.emit = (event, data) => io.emit(event, data);
  /** The most sockets authenticated with one of `tokens` connected at once, as each connected. */
  peer.mostAtOnce = (tokens) => Math.max(0, ...peer.connected.map((live) => live.filter((a) => tokens.some((t) => a === `Bearer ${t}`)).length));
  /** Connected sockets authenticated with `token`. */
  peer.live = (token) => [...peer.sockets].filter((s) => s.handshake.headers.authorization === `Bearer ${token}`).length;
  peer.close = () => new Promise((resolve) => { io.close(() => resolve()); });
  return peer;
}

/**
 * A `ws` server that wants `?token=WS_TOKEN` (or, on path `/custom`, the header
 * `X-API-Key: CUSTOM_KEY`); answers `{event: 'ack', id}` to sends with an id.
 */
async function startWsPeer() {
  const peer = { joins: [], messages: [], clients: new Set(), queries: [], customJoins: [] };
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info) => {
      const url = new URL(info.req.url, 'http://x');
      if (url.pathname === '/custom') return info.req.headers['x-api-key'] === CUSTOM_KEY;
      peer.queries.push(Object.fromEntries(url.searchParams));
      return url.searchParams.get('token') === WS_TOKEN;
    },
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, req) => {
    if (req.url === '/custom') {
      ws.on('message', (raw) => peer.customJoins.push(JSON.parse(raw.toString()).data?.channelName));
      return;
    }
    peer.clients.add(ws);
    ws.on('close', () => peer.clients.delete(ws));
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.event === 'channel:join') peer.joins.push(message.data.channelName);
      else peer.messages.push(message);
      if (message.id !== undefined) ws.send(JSON.stringify({ event: 'ack', id: message.id, data: { ok: true } }));
    });
  });
  peer.port = wss.address().port;
  peer.send = (message) => peer.clients.forEach((ws) => ws.send(JSON.stringify(message)));
  peer.close = () => new Promise((resolve) => { peer.clients.forEach((ws) => ws.terminate()); wss.close(() => resolve()); });
  return peer;
}

/** A port nothing listens on (bound, then released). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const bridgeNamed = async (gw, name) => (await api(gw.url, '/api/v1/bridges')).body.bridges.find((b) => b.name === name);

const notify = (gw, tenantId, recipient, extra = {}) =>
  api(gw.url, '/api/v1/notifications', {
    tenantId,
    recipient,
    content: { subject: 'Order Shipped', body: 'Your order #12345 has been shipped', data: { order: 12345 } },
    ...extra,
  }, { timeoutMs: WAIT });

let io;
let wsPeer;
let hook;
let hang;
let gw;
let files;

before(async () => {
  io = await startIoPeer();
  wsPeer = await startWsPeer();
  hook = await startWebhook();
  // Accepts TCP and never answers the WebSocket handshake.
  hang = net.createServer(() => {});
  await new Promise((resolve) => hang.listen(0, '127.0.0.1', resolve));
  const dead = await freePort();
  files = tempDir('rtgw-bridges-');
  const bridges = [
    {
      tenantId: 'io', name: 'io-peer', providerType: 'websocket', channel: 'websocket', mode: 'external',
      protocol: 'socketio', url: `http://127.0.0.1:${io.port}`, authType: 'bearer', authToken: IO_TOKEN,
      supportChannelBroadcast: true, defaultChannels: ['notifications', 'alerts'],
      reconnection: true, reconnectionAttempts: 20, reconnectionDelay: 100, timeout: 2000,
      enableAcknowledgments: true,
      customEvents: { notification: 'notify', channelBroadcast: 'channel:broadcast', incomingMessage: 'message:received' },
      enableReceiving: true, subscribeToEvents: ['message:received', 'status:update'],
      messageHandling: { strategy: 'callback', callbackUrl: `${hook.url}/webhooks/io` },
      enableRequestResponse: true, requestTimeout: 800,
      transports: ['websocket'], path: '/socket.io', enabled: true,
    },
    {
      tenantId: 'wsq', name: 'ws-peer', providerType: 'websocket', channel: 'websocket', mode: 'external',
      protocol: 'ws', url: `ws://127.0.0.1:${wsPeer.port}/ws`, authType: 'query',
      authQuery: { token: WS_TOKEN, client: 'notification-system' },
      defaultChannels: ['system'], reconnectionDelay: 100,
      enableReceiving: true, subscribeToEvents: ['notification', 'status', 'error'],
      messageHandling: { strategy: 'callback', callbackUrl: `${hook.url}/webhooks/ws` },
    },
    {
      tenantId: 'dead', name: 'dead-peer', mode: 'external', protocol: 'ws', url: `ws://127.0.0.1:${dead}/ws`,
      reconnectionAttempts: 2, reconnectionDelay: 50, timeout: 1000,
    },
    {
      tenantId: 'hang', name: 'hanging-peer', mode: 'external', protocol: 'socketio', url: `http://127.0.0.1:${hang.address().port}`,
      reconnection: false, timeout: 300,
    },
    { tenantId: 'inside', name: 'internal-one', mode: 'internal', enabled: true },
    {
      tenantId: 'basic', name: 'io-basic', mode: 'external', protocol: 'socketio', url: `http://127.0.0.1:${io.port}/partner`,
      authType: 'basic', username: 'partner', password: BASIC_PASSWORD, defaultChannels: ['p1'], reconnectionDelay: 100,
    },
    {
      tenantId: 'custom', name: 'ws-custom', mode: 'external', protocol: 'ws', url: `ws://127.0.0.1:${wsPeer.port}/custom`,
      authType: 'custom', authHeaders: { 'X-API-Key': CUSTOM_KEY }, defaultChannels: ['c1'], reconnectionDelay: 100,
    },
  ];
  const file = writeFile(files.dir, 'bridges.json', JSON.stringify(bridges));
  gw = await startGateway({
    env: { BRIDGES_FILE: file, BRIDGE_ALLOWED_HOSTS: '127.0.0.1', TENANT_API_KEYS: `io:${IO_TENANT_KEY},rt:${RT_TENANT_KEY}` },
  });
  await eventually(async () => (await bridgeNamed(gw, 'io-peer'))?.state === 'connected', 'the socket.io bridge connected', WAIT);
  await eventually(async () => (await bridgeNamed(gw, 'ws-peer'))?.state === 'connected', 'the ws bridge connected', WAIT);
});

after(async () => {
  await gw?.stop();
  await io?.close();
  await wsPeer?.close();
  hook?.close();
  hang?.close();
  files?.remove();
});

test('a socket.io bridge authenticates with its bearer token and joins its default channels', async () => {
  assert.ok(io.authorizations.includes(`Bearer ${IO_TOKEN}`));
  await eventually(() => io.joins.includes('notifications') && io.joins.includes('alerts'), 'channels joined');
});

test('basic auth reaches a Socket.IO namespace, custom headers a ws peer', async () => {
  await eventually(async () => (await bridgeNamed(gw, 'io-basic'))?.state === 'connected', 'basic bridge connected', WAIT);
  await eventually(async () => (await bridgeNamed(gw, 'ws-custom'))?.state === 'connected', 'custom bridge connected', WAIT);
  await eventually(() => io.partnerJoins.includes('p1') && wsPeer.customJoins.includes('c1'), 'channels joined');
});

test('a notification for an external tenant reaches the peer user and returns its ack', async () => {
  const { status, body } = await notify(gw, 'io', { userId: 'external-user-789' });
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.bridge, 'io-peer');
  assert.deepEqual(body.ack, { delivered: true, to: 'external-user-789' });
  const note = io.notes.find((n) => n.id === body.id);
  assert.equal(note.userId, 'external-user-789');
  assert.equal(note.subject, 'Order Shipped');
  assert.deepEqual(note.data, { order: 12345 });
});

test('a channel notification reaches the peer as its channel broadcast event', async () => {
  const { status, body } = await notify(gw, 'io', { channel: 'alerts' });
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.ack, { delivered: true, channel: 'alerts' });
  assert.ok(io.broadcasts.some((b) => b.id === body.id && b.channel === 'alerts'));
});

test('an ack the peer never sends is a 504 after the call timeout', async () => {
  const started = Date.now();
  const { status, body } = await notify(gw, 'io', { userId: 'silent' }, { ackTimeoutMs: 300 });
  assert.equal(status, 504, JSON.stringify(body));
  assert.equal(body.error.type, 'timeout');
  assert.ok(Date.now() - started < 3000);
});

test('subscribed events from the socket.io peer reach the callback with the seed payload', async () => {
  const tag = `t-${Date.now()}`;
  io.emit('not:subscribed', { tag });
  io.emit('status:update', { tag, status: 'ok' });
  const got = await eventually(() => hook.bodies.find((b) => b.body.data?.tag === tag), 'callback called', WAIT);
  assert.equal(got.path, '/webhooks/io');
  assert.equal(got.body.event, 'status:update');
  assert.deepEqual(got.body.data, { tag, status: 'ok' });
  assert.ok(!Number.isNaN(Date.parse(got.body.timestamp)));
  assert.deepEqual(got.body.metadata, { tenantId: 'io', bridge: 'io-peer' });
  assert.deepEqual(got.body.source, { provider: 'websocket', url: `http://127.0.0.1:${io.port}`, protocol: 'socketio' });
  assert.ok(!hook.bodies.some((b) => b.body.event === 'not:subscribed'));
});

test('a ws bridge sends its query credentials, joins channels, is acknowledged and forwards events', async () => {
  assert.ok(wsPeer.queries.some((q) => q.token === WS_TOKEN && q.client === 'notification-system'));
  await eventually(() => wsPeer.joins.includes('system'), 'ws channel joined');
  const { status, body } = await notify(gw, 'wsq', { userId: 'u1' }, { enableAcknowledgments: true });
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.ack, { ok: true });
  const sent = wsPeer.messages.find((m) => m.data?.id === body.id);
  assert.equal(sent.event, 'notification:new');
  assert.equal(sent.data.userId, 'u1');
  // Without supportChannelBroadcast, channels are refused.
  assert.equal((await notify(gw, 'wsq', { channel: 'c' })).status, 400);

  const tag = `w-${Date.now()}`;
  wsPeer.send({ type: 'status', data: { tag } });
  wsPeer.send({ event: 'error', data: { tag, code: 7 } });
  wsPeer.send({ event: 'ignored', data: { tag } });
  await eventually(() => hook.bodies.filter((b) => b.body.data?.tag === tag).length === 2, 'ws events forwarded', WAIT);
  const events = hook.bodies.filter((b) => b.body.data?.tag === tag).map((b) => b.body.event);
  assert.deepEqual(events, ['status', 'error']);
  assert.equal(hook.bodies.find((b) => b.body.data?.tag === tag).body.source.protocol, 'ws');
});

test('a failing callback is retried, and one refused for good is dropped, counted and logged', async () => {
  const tag = `r-${Date.now()}`;
  const droppedBefore = await metric(gw.url, 'bridge_sink_dropped_total', { reason: 'failed' });
  wsPeer.send({ event: 'status', data: { tag, fail: 'once' } });
  await eventually(() => hook.bodies.some((b) => b.body.data?.tag === tag), 'delivered after a retry', WAIT);
  assert.equal(hook.attempts.filter((a) => a.data?.tag === tag).length, 2);
  wsPeer.send({ event: 'status', data: { tag: `${tag}-x`, fail: 'final' } });
  await eventually(async () => (await metric(gw.url, 'bridge_sink_dropped_total', { reason: 'failed' })) === droppedBefore + 1, 'drop counted', WAIT);
  assert.equal(hook.attempts.filter((a) => a.data?.tag === `${tag}-x`).length, 1);
  await eventually(() => gw.logs.some((l) => l.includes('callback delivery failed')), 'drop logged');
});

test('internal-mode and bridge-less tenants keep the gateway own delivery', async () => {
  for (const tenantId of ['inside', 'nobody']) {
    const { status, body } = await notify(gw, tenantId, { userId: 'u' });
    assert.equal(status, 202, JSON.stringify(body));
    assert.equal(body.bridge, undefined);
  }
});

test('a peer that restarts is reconnected to and its channels joined again', async () => {
  const port = io.port;
  const joinsBefore = io.joins.filter((c) => c === 'alerts').length;
  await io.close();
  await eventually(async () => ['backing_off', 'connecting'].includes((await bridgeNamed(gw, 'io-peer')).state), 'bridge noticed', WAIT);
  assert.equal((await notify(gw, 'io', { userId: 'x' })).status, 503);
  const joins = io.joins;
  io = await startIoPeer(port);
  io.joins.unshift(...joins);
  await eventually(async () => (await bridgeNamed(gw, 'io-peer')).state === 'connected', 'bridge reconnected', WAIT);
  await eventually(() => io.joins.filter((c) => c === 'alerts').length > joinsBefore, 'channels rejoined', WAIT);
  assert.equal((await notify(gw, 'io', { userId: 'back' })).status, 200);
});

test('a peer that never answers fails with the seed messages', async () => {
  const hanging = await eventually(async () => {
    const b = await bridgeNamed(gw, 'hanging-peer');
    return b.state === 'failed' && b;
  }, 'hanging bridge failed', WAIT);
  assert.equal(hanging.lastError, 'WebSocket validation failed: Connection timeout');
  const dead = await eventually(async () => {
    const b = await bridgeNamed(gw, 'dead-peer');
    return b.state === 'failed' && b;
  }, 'dead bridge failed', WAIT);
  assert.equal(dead.lastError, 'Max reconnection attempts (2) reached');
  assert.match(dead.cause, /cannot connect/);
  assert.equal((await notify(gw, 'dead', { userId: 'x' })).status, 503);
});

test('GET /api/v1/bridges shows states and counts, never credentials, to platform keys only', async () => {
  const { status, body } = await api(gw.url, '/api/v1/bridges');
  assert.equal(status, 200);
  const text = JSON.stringify(body);
  const logs = gw.logs.join('\n');
  for (const secret of [IO_TOKEN, WS_TOKEN, BASIC_PASSWORD, CUSTOM_KEY]) {
    assert.ok(!text.includes(secret) && !logs.includes(secret), secret);
  }
  const io = body.bridges.find((b) => b.name === 'io-peer');
  assert.equal(io.protocol, 'socketio');
  assert.ok(io.messagesOut >= 3 && io.messagesIn >= 1, JSON.stringify(io));
  assert.deepEqual(body.bridges.map((b) => b.name).sort(), ['dead-peer', 'hanging-peer', 'io-basic', 'io-peer', 'ws-custom', 'ws-peer']);
  assert.equal((await api(gw.url, '/api/v1/bridges', undefined, { headers: {} })).status, 401);
  assert.ok((await metric(gw.url, 'bridge_messages_out_total')) >= 3);
});

test('a private destination is refused unless BRIDGE_ALLOWED_HOSTS lists it', async () => {
  const dir = tempDir('rtgw-bridges-private-');
  const file = writeFile(dir.dir, 'bridges.yaml', `
- tenantId: p
  name: private
  mode: external
  protocol: ws
  url: ws://127.0.0.1:${wsPeer.port}/ws
  authType: query
  authQuery: {token: ${WS_TOKEN}}
  reconnection: false
`);
  const closed = await startGateway({ env: { BRIDGES_FILE: file, API_KEYS: API_KEY } });
  try {
    const b = await eventually(async () => {
      const found = await bridgeNamed(closed, 'private');
      return found.state === 'failed' && found;
    }, 'private bridge refused', WAIT);
    assert.match(b.lastError, /loopback, link-local or private address: list it in BRIDGE_ALLOWED_HOSTS/);
  } finally {
    await closed.stop();
    dir.remove();
  }
});

test('a bad bridges file stops the start with the field named', () => {
  const dir = tempDir('rtgw-bridges-bad-');
  try {
    const file = writeFile(dir.dir, 'bridges.json', JSON.stringify([
      { tenantId: 'a', name: 'a', mode: 'external', protocol: 'ws', url: 'ws://x.example/ws', timout: 5 },
    ]));
    const run = runGateway([], { env: { BRIDGES_FILE: file, JWT_SECRET: 'x'.repeat(32), API_KEYS: API_KEY, PORT: '0', HOST: '127.0.0.1' } });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr + run.stdout, /bridges\[0\]: unknown field `timout`.*did you mean `timeout`/);
  } finally {
    dir.remove();
  }
});

// Request-response (seed 003's `query`): POST /api/v1/bridges/{name}/query.

const query = (gw, name, body, key = API_KEY) =>
  api(gw.url, `/api/v1/bridges/${name}/query`, body, { headers: { 'X-API-Key': key }, timeoutMs: WAIT });

test('a query is answered with the peer ack, for a platform key or the bridge tenant key', async () => {
  await eventually(async () => (await bridgeNamed(gw, 'io-peer'))?.state === 'connected', 'io bridge connected', WAIT);
  for (const key of [API_KEY, IO_TENANT_KEY]) {
    const { status, body } = await query(gw, 'io-peer', { event: 'user:info', data: { userId: '12345' }, timeout: 3000 }, key);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, { bridge: 'io-peer', event: 'user:info', response: { userId: '12345', name: 'User 12345' } });
  }
  // Another tenant's key does not see the bridge; an unknown bridge is a 404 too.
  assert.equal((await query(gw, 'io-peer', { event: 'user:info' }, RT_TENANT_KEY)).status, 404);
  assert.equal((await query(gw, 'no-such-bridge', { event: 'user:info' })).status, 404);
});

test('a query the peer never answers is a 504 after its timeout, or after requestTimeout', async () => {
  for (const [body, limit] of [[{ event: 'never:answers', data: {}, timeout: 300 }, 300], [{ event: 'never:answers' }, 800]]) {
    const started = Date.now();
    const { status, body: answer } = await query(gw, 'io-peer', body);
    const took = Date.now() - started;
    assert.equal(status, 504, JSON.stringify(answer));
    assert.equal(answer.error.type, 'timeout');
    assert.ok(took >= limit - 50 && took < limit + 2500, `answered after ${took} ms, the wait was ${limit} ms`);
  }
});

test('a query to a provider without enableRequestResponse, or a bad query, is a clear 400', async () => {
  const { status, body } = await query(gw, 'ws-peer', { event: 'status' });
  assert.equal(status, 400);
  assert.match(body.error.message, /enableRequestResponse/);
  assert.match((await query(gw, 'io-peer', { data: {} })).body.error.message, /`event`/);
  assert.match((await query(gw, 'io-peer', { event: 'user:info', timeout: 0 })).body.error.message, /`timeout`/);
  assert.match((await query(gw, 'io-peer', { event: 'user:info', tiemout: 5 })).body.error.message, /unknown field `tiemout`/);
});

// Run-time changes (seed 003's `tenantService.updateProviderConfig`).

const providerPath = (tenant) => `/api/v1/tenants/${tenant}/providers/websocket`;
const putProvider = (gw, tenant, provider, key = API_KEY) =>
  api(gw.url, providerPath(tenant), provider, { headers: { 'X-API-Key': key }, method: 'PUT', timeoutMs: WAIT });
const ioProvider = (token, channel, extra = {}) => ({
  providerType: 'websocket', channel: 'websocket', mode: 'external', protocol: 'socketio',
  url: `http://127.0.0.1:${io.port}`, authType: 'bearer', authToken: token,
  defaultChannels: [channel], reconnectionDelay: 100, reconnectionAttempts: 20, timeout: 2000,
  customEvents: { notification: 'notify' }, enableAcknowledgments: true, enabled: true, ...extra,
});

test('PUT adds a provider at run time and replaces its bridge: the old connection closes, the new one authenticates', async () => {
  const { status, body } = await putProvider(gw, 'rt', ioProvider(ROTATED_A, 'rt-a'));
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.name, 'tenant-rt');
  assert.equal(body.source, 'api');
  assert.equal(body.provider.authToken, '[redacted]');
  await eventually(() => io.live(ROTATED_A) === 1 && io.joins.includes('rt-a'), 'the new bridge connected with its token', WAIT);
  await eventually(async () => (await bridgeNamed(gw, 'tenant-rt'))?.state === 'connected', 'listed connected', WAIT);
  const sent = await notify(gw, 'rt', { userId: 'rt-user' });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  assert.equal(sent.body.bridge, 'tenant-rt');

  // Rotating the token (the seed's example) replaces the connection: never both at once.
  assert.equal((await putProvider(gw, 'rt', ioProvider(ROTATED_B, 'rt-b'))).status, 200);
  await eventually(() => io.closed.includes(`Bearer ${ROTATED_A}`) && io.live(ROTATED_A) === 0, 'the old connection closed', WAIT);
  await eventually(() => io.live(ROTATED_B) === 1 && io.joins.includes('rt-b'), 'the replacement connected', WAIT);
  await eventually(async () => (await notify(gw, 'rt', { userId: 'rt-user' })).status === 200, 'sends go through the new bridge', WAIT);
  assert.equal(io.live(ROTATED_A) + io.live(ROTATED_B), 1);
  assert.equal(io.mostAtOnce([ROTATED_A, ROTATED_B]), 1, 'the old connection closed before the new one opened');

  const shown = await api(gw.url, providerPath('rt'));
  assert.equal(shown.status, 200);
  assert.deepEqual([shown.body.name, shown.body.source, shown.body.provider.authToken], ['tenant-rt', 'api', '[redacted]']);
  // A file provider is shown too, redacted; a tenant without one is a 404.
  const file = await api(gw.url, providerPath('wsq'));
  assert.deepEqual([file.body.source, file.body.provider.authQuery.token], ['file', '[redacted]']);
  assert.equal((await api(gw.url, providerPath('nobody'))).status, 404);
});

test('PUT enabled: false disables the bridge and mode: internal stops it for the gateway own delivery', async () => {
  assert.equal((await putProvider(gw, 'rt', ioProvider(ROTATED_B, 'rt-b', { enabled: false }))).status, 200);
  await eventually(() => io.live(ROTATED_B) === 0, 'the disabled bridge closed its connection', WAIT);
  assert.equal((await bridgeNamed(gw, 'tenant-rt')).state, 'disabled');
  assert.equal((await notify(gw, 'rt', { userId: 'u' })).status, 503);

  assert.equal((await putProvider(gw, 'rt', ioProvider(ROTATED_B, 'rt-b'))).status, 200);
  await eventually(() => io.live(ROTATED_B) === 1, 'enabled again', WAIT);
  const internal = await putProvider(gw, 'rt', { providerType: 'websocket', channel: 'websocket', mode: 'internal', enabled: true });
  assert.equal(internal.status, 200, JSON.stringify(internal.body));
  await eventually(() => io.live(ROTATED_B) === 0, 'the internal tenant bridge closed its connection', WAIT);
  assert.equal(await bridgeNamed(gw, 'tenant-rt'), undefined);
  const own = await notify(gw, 'rt', { userId: 'u' });
  assert.equal(own.status, 202, JSON.stringify(own.body));
  assert.equal(own.body.bridge, undefined);
});

test('a bad provider is a 400 naming the field, and nothing changes', async () => {
  const cases = [
    [{ ...ioProvider(ROTATED_A, 'x'), timout: 5 }, /^body: unknown field `timout`.*did you mean `timeout`/],
    [ioProvider(ROTATED_A, 'x', { reconnectionAttempts: 'five' }), /^body\.reconnectionAttempts: must be a whole number/],
    [ioProvider(ROTATED_A, 'x', { url: 'ftp://127.0.0.1' }), /^body\.url:/],
    [{ ...ioProvider(ROTATED_A, 'x'), authToken: undefined }, /^body\.authToken: required by authType "bearer"/],
    [[1, 2], /^body: must be an object/],
  ];
  for (const [provider, message] of cases) {
    const { status, body } = await putProvider(gw, 'io', provider);
    assert.equal(status, 400, JSON.stringify(body));
    assert.match(body.error.message, message);
    assert.ok(!body.error.message.includes(ROTATED_A));
  }
  assert.equal((await bridgeNamed(gw, 'io-peer')).state, 'connected');
  assert.equal((await api(gw.url, providerPath('io'))).body.source, 'file');
});

test('a tenant key may not change providers unless BRIDGE_TENANT_CONFIG allows it, and then only its own', async () => {
  const refused = await putProvider(gw, 'rt', ioProvider(ROTATED_A, 'x'), RT_TENANT_KEY);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /BRIDGE_TENANT_CONFIG/);
  assert.equal((await api(gw.url, providerPath('rt'), undefined, { headers: { 'X-API-Key': RT_TENANT_KEY } })).status, 403);

  const open = await startGateway({
    env: { BRIDGE_TENANT_CONFIG: 'true', BRIDGE_ALLOWED_HOSTS: '127.0.0.1', TENANT_API_KEYS: `rt:${RT_TENANT_KEY}` },
  });
  try {
    const own = await putProvider(open, 'rt', ioProvider(ROTATED_A, 'open-rt'), RT_TENANT_KEY);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.equal((await putProvider(open, 'other', ioProvider(ROTATED_A, 'x'), RT_TENANT_KEY)).status, 403);
    await eventually(() => io.joins.includes('open-rt'), 'the tenant-set provider connected', WAIT);
    assert.ok(!open.logs.join('\n').includes(ROTATED_A));
  } finally {
    await open.stop();
  }
});

test('credentials given at run time never appear in answers or logs', async () => {
  const { body } = await api(gw.url, '/api/v1/bridges');
  const logs = gw.logs.join('\n');
  for (const secret of [ROTATED_A, ROTATED_B, IO_TENANT_KEY, RT_TENANT_KEY]) {
    assert.ok(!JSON.stringify(body).includes(secret) && !logs.includes(secret), secret);
  }
});

// Outbound bridges' transports against real peers started here: TLS (a socket.io server and a
// `ws` server on `https`, with a certificate signed by a CA this test makes with `openssl` and
// hands the gateway as BRIDGE_CA_FILE; a peer whose CA is not trusted), an `https` webhook, and
// Socket.IO long-polling (a socket.io server with `transports: ['polling']`).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';

import { api, eventually, makeCertificates, startGateway, tempDir, writeFile } from './helpers.js';

const IO_TOKEN = 'transport-io-secret-4c2d';
const WAIT = 8000;

/** An `https` webhook receiver: the JSON bodies POSTed to it, answered 204. */
async function startWebhook(tls) {
  const bodies = [];
  const server = createHttpsServer(tls, (req, res) => {
    let text = '';
    req.on('data', (c) => { text += c; });
    req.on('end', () => {
      bodies.push({ path: req.url, body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { bodies, port: server.address().port, close: () => server.close() };
}

/**
 * A socket.io server (on `https` when `tls` is given) that wants `Authorization: Bearer
 * IO_TOKEN`, with the given `transports`; records joins (`{channel, transport}`), notifications,
 * connections and the `Content-Encoding` of its poll answers, and acknowledges notifications.
 */
async function startIoPeer({ tls, transports, port = 0 }) {
  const peer = { joins: [], notes: [], connections: 0, encodings: [], sockets: new Set() };
  const http = tls ? createHttpsServer(tls) : createServer();
  const io = new Server(http, { transports, pingInterval: 1000, pingTimeout: 1000 });
  // Watches what engine.io writes (it answers with `writeHead(status, headers)`), before it runs.
  http.prependListener('request', (req, res) => {
    if (req.method !== 'GET') return;
    const writeHead = res.writeHead;
    res.writeHead = function watched(status, headers) {
      if (status === 200) peer.encodings.push(headers?.['Content-Encoding'] ?? 'identity');
      return writeHead.apply(this, arguments);
    };
  });
  io.use((socket, next) => {
    if (socket.handshake.headers.authorization === `Bearer ${IO_TOKEN}`) next();
    else next(new Error('Unauthorized'));
  });
  io.on('connection', (socket) => {
    peer.connections += 1;
    peer.sockets.add(socket);
    socket.on('disconnect', () => peer.sockets.delete(socket));
    const transport = socket.conn.transport.name;
    socket.on('channel:join', ({ channelName }) => peer.joins.push({ channel: channelName, transport }));
    socket.on('notify', (data, ack) => {
      peer.notes.push({ ...data, transport });
      if (typeof ack === 'function') ack({ delivered: true, to: data.userId, transport });
    });
  });
  await new Promise((resolve) => http.listen(port, '127.0.0.1', resolve));
  peer.port = http.address().port;
  peer.emit = (event, data) => io.emit(event, data);
  peer.close = () => new Promise((resolve) => { io.close(() => resolve()); });
  return peer;
}

/** A `ws` server on `https` that acknowledges sends with an id and records channel joins. */
async function startWssPeer(tls) {
  const peer = { joins: [], messages: [] };
  const server = createHttpsServer(tls);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.event === 'channel:join') peer.joins.push(message.data.channelName);
      else peer.messages.push(message);
      if (message.id !== undefined) ws.send(JSON.stringify({ event: 'ack', id: message.id, data: { secure: true } }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.port = server.address().port;
  peer.close = () => new Promise((resolve) => {
    wss.clients.forEach((ws) => ws.terminate());
    wss.close(() => server.close(() => resolve()));
  });
  return peer;
}

const bridgeNamed = async (gw, name) => (await api(gw.url, '/api/v1/bridges')).body.bridges.find((b) => b.name === name);

const connected = (gw, name) =>
  eventually(async () => (await bridgeNamed(gw, name))?.state === 'connected', `${name} connected`, WAIT);

const notify = (gw, tenantId, userId) =>
  api(gw.url, '/api/v1/notifications', {
    tenantId,
    recipient: { userId },
    content: { subject: 'Order Shipped', body: 'Your order #12345 has been shipped' },
    enableAcknowledgments: true,
  }, { timeoutMs: WAIT });

let files;
let tlsIo;
let wssPeer;
let untrusted;
let pollIo;
let hook;
let gw;

before(async () => {
  files = tempDir('rtgw-bridges-transport-');
  const trusted = makeCertificates(files.dir, 'trusted');
  const stranger = makeCertificates(files.dir, 'stranger');
  const tls = { key: trusted.key, cert: trusted.cert };
  tlsIo = await startIoPeer({ tls, transports: ['polling', 'websocket'] });
  wssPeer = await startWssPeer(tls);
  untrusted = await startWssPeer({ key: stranger.key, cert: stranger.cert });
  pollIo = await startIoPeer({ transports: ['polling'] });
  hook = await startWebhook(tls);
  const callback = (path) => ({ strategy: 'callback', callbackUrl: `https://localhost:${hook.port}/webhooks/${path}` });
  const io = (port, secure) => ({
    mode: 'external', protocol: 'socketio', url: `${secure ? 'https://localhost' : 'http://127.0.0.1'}:${port}`,
    authType: 'bearer', authToken: IO_TOKEN, customEvents: { notification: 'notify' },
    reconnectionAttempts: 20, reconnectionDelay: 100, timeout: 3000,
  });
  const bridges = [
    {
      tenantId: 'tio', name: 'tls-io', ...io(tlsIo.port, true), transports: ['websocket'], defaultChannels: ['secure'],
      enableReceiving: true, subscribeToEvents: ['status:update'], messageHandling: callback('tls'),
    },
    { tenantId: 'tiop', name: 'tls-io-polling', ...io(tlsIo.port, true), transports: ['polling'], defaultChannels: ['secure-poll'] },
    {
      tenantId: 'tws', name: 'tls-ws', mode: 'external', protocol: 'ws', url: `wss://localhost:${wssPeer.port}/ws`,
      defaultChannels: ['wss-chan'], reconnectionDelay: 100,
    },
    {
      tenantId: 'bad', name: 'untrusted', mode: 'external', protocol: 'ws', url: `wss://localhost:${untrusted.port}/ws`,
      reconnection: false, timeout: 3000,
    },
    {
      tenantId: 'pio', name: 'poll-io', ...io(pollIo.port, false), transports: ['polling'], enableCompression: true,
      defaultChannels: ['news', 'alerts'], enableReceiving: true, subscribeToEvents: ['status:update'],
      messageHandling: callback('poll'),
    },
    { tenantId: 'pfb', name: 'poll-fallback', ...io(pollIo.port, false), transports: ['websocket', 'polling'], defaultChannels: ['fallback'] },
  ];
  const file = writeFile(files.dir, 'bridges.json', JSON.stringify(bridges));
  gw = await startGateway({ env: { BRIDGES_FILE: file, BRIDGE_ALLOWED_HOSTS: '127.0.0.1', BRIDGE_CA_FILE: trusted.caFile } });
});

after(async () => {
  await gw?.stop();
  await tlsIo?.close();
  await wssPeer?.close();
  await untrusted?.close();
  await pollIo?.close();
  hook?.close();
  files?.remove();
});

test('a socket.io bridge reaches an https peer over TLS, and its events an https callback', async () => {
  await connected(gw, 'tls-io');
  await eventually(() => tlsIo.joins.some((j) => j.channel === 'secure' && j.transport === 'websocket'), 'channel joined', WAIT);
  const { status, body } = await notify(gw, 'tio', 'u-tls');
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.ack, { delivered: true, to: 'u-tls', transport: 'websocket' });
  const tag = `tls-${Date.now()}`;
  tlsIo.emit('status:update', { tag });
  const got = await eventually(() => hook.bodies.find((b) => b.body.data?.tag === tag), 'https callback called', WAIT);
  assert.equal(got.path, '/webhooks/tls');
  assert.deepEqual(got.body.metadata, { tenantId: 'tio', bridge: 'tls-io' });
});

test('long-polling works over TLS too', async () => {
  await connected(gw, 'tls-io-polling');
  await eventually(() => tlsIo.joins.some((j) => j.channel === 'secure-poll' && j.transport === 'polling'), 'channel joined', WAIT);
  const { status, body } = await notify(gw, 'tiop', 'u-tls-poll');
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.ack.transport, 'polling');
});

test('a ws bridge reaches a wss peer', async () => {
  await connected(gw, 'tls-ws');
  await eventually(() => wssPeer.joins.includes('wss-chan'), 'channel joined', WAIT);
  const { status, body } = await notify(gw, 'tws', 'u-wss');
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.ack, { secure: true });
});

test('a peer whose certificate no trusted CA signed fails with the TLS error', async () => {
  const failed = await eventually(async () => {
    const b = await bridgeNamed(gw, 'untrusted');
    return b?.state === 'failed' && b;
  }, 'untrusted bridge failed', WAIT);
  assert.match(failed.lastError, /^TLS error: invalid peer certificate: UnknownIssuer \(a private CA can be trusted with BRIDGE_CA_FILE\)$/);
  assert.deepEqual(untrusted.joins, []);
});

test('a polling-only socket.io peer: channels joined, notifications acknowledged, events forwarded', async () => {
  await connected(gw, 'poll-io');
  await eventually(() => ['news', 'alerts'].every((c) => pollIo.joins.some((j) => j.channel === c)), 'channels joined', WAIT);
  assert.ok(pollIo.joins.every((j) => j.transport === 'polling'));
  const { status, body } = await notify(gw, 'pio', 'u-poll');
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.ack, { delivered: true, to: 'u-poll', transport: 'polling' });

  // A large event: its poll answer is gzip-compressed (enableCompression) and arrives whole.
  const tag = `poll-${Date.now()}`;
  const text = 'compressible '.repeat(2000);
  pollIo.emit('status:update', { tag, text });
  const got = await eventually(() => hook.bodies.find((b) => b.body.data?.tag === tag), 'callback called', WAIT);
  assert.equal(got.path, '/webhooks/poll');
  assert.equal(got.body.data.text, text);
  assert.equal(got.body.source.protocol, 'socketio');
  assert.ok(pollIo.encodings.includes('gzip'), JSON.stringify(pollIo.encodings));
});

test('websocket listed first falls back to polling when the peer only polls', async () => {
  await connected(gw, 'poll-fallback');
  await eventually(() => pollIo.joins.some((j) => j.channel === 'fallback' && j.transport === 'polling'), 'channel joined', WAIT);
});

test('a polling bridge answers the heartbeat and stays connected', async () => {
  await connected(gw, 'poll-io');
  const before = pollIo.connections;
  // Two pingInterval + pingTimeout periods: an unanswered ping would have closed the session.
  await new Promise((resolve) => setTimeout(resolve, 4500));
  assert.equal(pollIo.connections, before);
  const b = await bridgeNamed(gw, 'poll-io');
  assert.equal(b.state, 'connected');
  assert.equal(b.attempts, 0);
});

test('a polling peer that restarts is reconnected to and its channels joined again', async () => {
  await connected(gw, 'poll-io');
  const port = pollIo.port;
  await pollIo.close();
  await eventually(async () => ['backing_off', 'connecting'].includes((await bridgeNamed(gw, 'poll-io')).state), 'bridge noticed', WAIT);
  pollIo = await startIoPeer({ transports: ['polling'], port });
  await connected(gw, 'poll-io');
  await eventually(() => ['news', 'alerts'].every((c) => pollIo.joins.some((j) => j.channel === c)), 'channels joined again', WAIT);
  const { status, body } = await notify(gw, 'pio', 'back');
  assert.equal(status, 200, JSON.stringify(body));
});

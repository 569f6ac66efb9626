// Bridges' sinks (docs/bridges.md, "Receiving") against real destinations: seed 003's two
// external examples end to end, (a) Socket.IO with bearer auth and the `all` strategy (webhook,
// PostgreSQL and Kafka at once) and (b) native ws with query auth and the `kafka` strategy, then
// each destination going away and coming back. PostgreSQL is the one on this machine
// (127.0.0.1:5432, or PG_ADMIN_URL), in a database this file creates and drops; Kafka is
// librdkafka's mock cluster (kafka.js: tests/kafka-broker, built here by cargo when missing),
// read back by kafkajs, a client independent of the gateway's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import pg from 'pg';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';

import { API_KEY, api, eventually, metric, runGateway, startGateway, tempDir, uid, writeFile } from './helpers.js';
import { readTopic, startBroker } from './kafka.js';

const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const IO_TOKEN = 'sinks-bearer-secret-3c1d';
const WS_TOKEN = 'sinks-query-secret-8e2f';
const IO_TOPIC = 'websocket.incoming.messages';
const WS_TOPIC = 'external.websocket.messages';
const WAIT = 20000;

/** A webhook receiver: every JSON body POSTed to it, answered 204. */
async function startWebhook() {
  const bodies = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => { text += c; });
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { bodies, url: `http://127.0.0.1:${server.address().port}/webhooks/websocket`, close: () => server.close() };
}

/** The seed's Socket.IO server: wants `Authorization: Bearer IO_TOKEN`; `emit` sends to the bridge. */
async function startIoPeer() {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  io.use((socket, next) => (socket.handshake.headers.authorization === `Bearer ${IO_TOKEN}` ? next() : next(new Error('Unauthorized'))));
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    port: http.address().port,
    connected: () => io.of('/').sockets.size > 0,
    emit: (event, data) => io.emit(event, data),
    close: () => new Promise((resolve) => { io.close(() => resolve()); }),
  };
}

/** The seed's native WebSocket server: wants `?token=WS_TOKEN`; `send` sends to the bridge. */
async function startWsPeer() {
  const clients = new Set();
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info) => new URL(info.req.url, 'http://x').searchParams.get('token') === WS_TOKEN,
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
  });
  return {
    port: wss.address().port,
    connected: () => clients.size > 0,
    send: (message) => clients.forEach((ws) => ws.send(JSON.stringify(message))),
    close: () => new Promise((resolve) => { clients.forEach((ws) => ws.terminate()); wss.close(() => resolve()); }),
  };
}

let admin;
let database;
let databaseUrl;
let broker;
let hook;
let io;
let wsPeer;
let gw;
let files;

/** A client of the test's database (closed by the caller). */
async function db() {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
}

async function rows(where = 'TRUE', params = []) {
  const client = await db();
  try {
    return (await client.query(`SELECT * FROM bridge_messages WHERE ${where} ORDER BY id`, params)).rows;
  } finally {
    await client.end();
  }
}

/** Rows of `tenant`, or `[]` while the database or its table is missing. */
async function countRows(tenant) {
  try {
    return (await rows('tenant_id = $1', [tenant])).length;
  } catch {
    return -1;
  }
}

before(async () => {
  admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  database = `rtgw_sinks_${uid()}`;
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  databaseUrl = url.toString();

  broker = await startBroker([IO_TOPIC, WS_TOPIC]);
  hook = await startWebhook();
  io = await startIoPeer();
  wsPeer = await startWsPeer();
  files = tempDir('rtgw-sinks-');
  // Seed 003's two external examples, as the seed writes them but for the addresses.
  const bridges = [
    {
      tenantId: 1, name: 'notify-io', providerType: 'websocket', channel: 'websocket', mode: 'external',
      protocol: 'socketio', url: `http://127.0.0.1:${io.port}`, authType: 'bearer', authToken: IO_TOKEN,
      supportChannelBroadcast: true, defaultChannels: ['notifications', 'alerts', 'system'],
      reconnection: true, reconnectionAttempts: 5, reconnectionDelay: 1000, timeout: 20000,
      enableCompression: true, enableAcknowledgments: true,
      customEvents: { notification: 'notify', channelBroadcast: 'channel:broadcast', incomingMessage: 'message:received' },
      enableReceiving: true, subscribeToEvents: ['message:received', 'status:update', 'data:sync'],
      messageHandling: { strategy: 'all', callbackUrl: hook.url, storeInDatabase: true, publishToKafka: true, kafkaTopic: IO_TOPIC },
      enableRequestResponse: true, requestTimeout: 10000, transports: ['websocket', 'polling'], path: '/socket.io', enabled: true,
    },
    {
      tenantId: 'acme', name: 'api-ws', providerType: 'websocket', channel: 'websocket', mode: 'external',
      protocol: 'ws', url: `ws://127.0.0.1:${wsPeer.port}/ws`, authType: 'query',
      authQuery: { token: WS_TOKEN, client: 'notification-system' },
      reconnection: true, reconnectionAttempts: 3, reconnectionDelay: 2000, enableCompression: true, enableAcknowledgments: true,
      enableReceiving: true, subscribeToEvents: ['notification', 'status', 'error'],
      messageHandling: { strategy: 'kafka', publishToKafka: true, kafkaTopic: WS_TOPIC },
      enabled: true,
    },
  ];
  const file = writeFile(files.dir, 'bridges.json', JSON.stringify(bridges));
  gw = await startGateway({
    env: { BRIDGES_FILE: file, BRIDGE_ALLOWED_HOSTS: '127.0.0.1', DATABASE_URL: databaseUrl, KAFKA_BROKERS: broker.bootstrap },
  });
  await eventually(() => io.connected() && wsPeer.connected(), 'both bridges connected to their peers', WAIT);
});

after(async () => {
  await gw?.stop();
  await io?.close();
  await wsPeer?.close();
  hook?.close();
  await broker?.stop();
  files?.remove();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
});

test('seed example (a): Socket.IO, bearer auth, `all`: each event reaches the webhook, a row and a Kafka record', async () => {
  const tag = uid();
  io.emit('status:update', { status: 'ok', tag });
  io.emit('not:subscribed', { tag });
  io.emit('data:sync', { items: [1, 2, 3], tag });

  await eventually(() => hook.bodies.filter((b) => b.data.tag === tag).length === 2, 'the webhook got both subscribed events', WAIT);
  const calls = hook.bodies.filter((b) => b.data.tag === tag);
  assert.deepEqual(calls.map((b) => b.event), ['status:update', 'data:sync']);
  assert.deepEqual(calls[0].metadata, { tenantId: '1', bridge: 'notify-io' });
  assert.deepEqual(calls[0].source, { provider: 'websocket', url: `http://127.0.0.1:${io.port}`, protocol: 'socketio' });

  await eventually(async () => (await countRows('1')) >= 2, 'both rows written', WAIT);
  const stored = (await rows("tenant_id = '1' AND data->>'tag' = $1", [tag]));
  assert.deepEqual(stored.map((r) => [r.tenant_id, r.bridge, r.event]), [['1', 'notify-io', 'status:update'], ['1', 'notify-io', 'data:sync']]);
  assert.deepEqual(stored[1].data, { items: [1, 2, 3], tag });
  assert.deepEqual(stored[0].metadata, calls[0].metadata);
  assert.deepEqual(stored[0].source, calls[0].source);
  assert.equal(stored[0].timestamp.toISOString(), calls[0].timestamp, 'the row has the payload\'s timestamp');
  assert.ok(stored[0].received_at instanceof Date);

  const records = await readTopic(broker.bootstrap, IO_TOPIC, tag, 2);
  assert.equal(records.length, 2);
  assert.deepEqual(records.map((m) => m.key), ['1', '1'], 'keyed by tenant');
  assert.deepEqual(records.map((m) => m.value), calls, 'the record is the webhook\'s payload, byte for byte the same JSON');

  assert.ok(await metric(gw.url, 'bridge_sink_delivered_total', { sink: 'callback' }) >= 2);
  assert.ok(await metric(gw.url, 'bridge_sink_delivered_total', { sink: 'database' }) >= 2);
  assert.ok(await metric(gw.url, 'bridge_sink_delivered_total', { sink: 'kafka' }) >= 2);
  assert.equal(await metric(gw.url, 'bridge_sink_dropped_total'), 0);
});

test('a row PostgreSQL refuses for its data is dropped and counted; the rows beside it are written', async () => {
  const failed = () => metric(gw.url, 'bridge_sink_dropped_total', { sink: 'database', reason: 'failed' });
  const before = await failed();
  const tag = uid();
  // jsonb takes no \u0000 in a string: the middle one is refused, within its batch or alone.
  io.emit('status:update', { tag, i: 0 });
  io.emit('status:update', { tag, i: 1, text: 'nul \u0000 inside' });
  io.emit('status:update', { tag, i: 2 });
  await eventually(async () => (await failed()) === before + 1, 'the refused row counted', WAIT);
  await eventually(async () => (await rows("data->>'tag' = $1", [tag])).length === 2, 'the other two written', WAIT);
  assert.deepEqual((await rows("data->>'tag' = $1", [tag])).map((r) => r.data.i), [0, 2]);
  await eventually(() => hook.bodies.filter((b) => b.data.tag === tag).length === 3, 'the webhook got all three', WAIT);
  assert.ok(gw.logs.some((l) => l.includes('"sink":"database"') && l.includes('PostgreSQL refused the row')), 'the drop is logged with PostgreSQL\'s reason');
});

test('seed example (b): native ws, query auth, `kafka`: events become records of the topic, in order', async () => {
  const tag = uid();
  wsPeer.send({ event: 'notification', data: { n: 1, tag } });
  wsPeer.send({ type: 'status', data: { n: 2, tag } });
  wsPeer.send({ event: 'ignored', data: { n: 0, tag } });
  wsPeer.send({ event: 'error', data: { n: 3, tag } });
  const records = await readTopic(broker.bootstrap, WS_TOPIC, tag, 3);
  assert.deepEqual(records.map((m) => [m.key, m.value.event, m.value.data.n]), [['acme', 'notification', 1], ['acme', 'status', 2], ['acme', 'error', 3]]);
  assert.deepEqual(records[0].value.metadata, { tenantId: 'acme', bridge: 'api-ws' });
  assert.deepEqual(records[0].value.source, { provider: 'websocket', url: `ws://127.0.0.1:${wsPeer.port}/ws`, protocol: 'ws' });
  assert.equal(await countRows('acme'), 0, 'the kafka strategy writes no rows');
});

/**
 * Emits `count` status updates from the Socket.IO peer in rounds of 100, each round waiting for
 * the webhook to have them all (so only the sink that is down fills its queue).
 */
async function emitPaced(tag, count) {
  for (let sent = 0; sent < count;) {
    const round = Math.min(100, count - sent);
    for (let i = 0; i < round; i += 1) io.emit('status:update', { tag, i: sent + i });
    sent += round;
    await eventually(() => hook.bodies.filter((b) => b.data.tag === tag).length === sent, `the webhook got ${sent}`, WAIT);
  }
}

test('PostgreSQL gone: its queue fills to its bound, the rest is dropped and counted, the other sinks go on; rows resume when it is back', async () => {
  await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
  const dropped = () => metric(gw.url, 'bridge_sink_dropped_total', { sink: 'database', reason: 'queue_full' });
  const before = await dropped();
  const kafkaBefore = await metric(gw.url, 'bridge_sink_delivered_total', { sink: 'kafka' });
  const tag = uid();
  const total = 1150;
  await emitPaced(tag, total);
  // 1000 queued, up to 100 more in the batch in hand: at least 50 dropped.
  await eventually(async () => (await dropped()) - before >= 50, 'database drops counted', WAIT);
  await eventually(async () => (await metric(gw.url, 'bridge_sink_delivered_total', { sink: 'kafka' })) - kafkaBefore === total, 'Kafka got every one', WAIT);
  assert.ok(gw.logs.some((l) => l.includes('incoming messages dropped') && l.includes('"sink":"database"')), 'the drop is logged');
  assert.ok(!gw.logs.join('\n').includes('postgres://postgres@'), 'DATABASE_URL is never logged');
  const { body } = await api(gw.url, '/api/v1/bridges');
  assert.equal(body.bridges.find((b) => b.name === 'notify-io').state, 'connected', 'the bridge itself is unaffected');

  await admin.query(`CREATE DATABASE ${database}`);
  const lost = (await dropped()) - before;
  await eventually(async () => {
    const stored = (await rows("data->>'tag' = $1", [tag]).catch(() => [])).length;
    return stored === total - lost;
  }, `the ${total - lost} queued messages written once PostgreSQL is back`, 60000);
  const stored = await rows("data->>'tag' = $1", [tag]);
  const order = stored.map((r) => r.data.i);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'in the order received');
  assert.equal(order[0], 0, 'the oldest kept, the newest dropped');
});

test('Kafka gone: its queue fills, the rest is dropped and counted, the webhook and PostgreSQL go on; records resume when it is back', async () => {
  await broker.command('down');
  const dropped = () => metric(gw.url, 'bridge_sink_dropped_total', { sink: 'kafka', reason: 'queue_full' });
  const before = await dropped();
  const tag = uid();
  const total = 1150;
  await emitPaced(tag, total);
  await eventually(async () => (await dropped()) - before >= 50, 'kafka drops counted', WAIT);
  await eventually(async () => (await rows("data->>'tag' = $1", [tag])).length === total, 'PostgreSQL got every one', WAIT);
  assert.ok(gw.logs.some((l) => l.includes('incoming messages dropped') && l.includes('"sink":"kafka"')), 'the drop is logged');

  await broker.command('up');
  const lost = (await dropped()) - before;
  const got = await readTopic(broker.bootstrap, IO_TOPIC, tag, total - lost, 60000);
  assert.equal(got.length, total - lost, 'every queued message produced once Kafka is back');
  assert.equal(got[0].value.data.i, 0, 'the oldest kept, the newest dropped');
  const order = got.map((m) => m.value.data.i);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'in the order received');
});

test('a bridge whose strategy needs a destination that is not configured stops the start, naming both', () => {
  const dir = tempDir('rtgw-sinks-bad-');
  try {
    const file = writeFile(dir.dir, 'bridges.json', JSON.stringify([{
      tenantId: 'a', name: 'needs-kafka', mode: 'external', protocol: 'ws', url: 'ws://x.example/ws',
      enableReceiving: true, subscribeToEvents: ['status'], messageHandling: { strategy: 'kafka', kafkaTopic: 'events' },
    }]));
    const env = { BRIDGES_FILE: file, JWT_SECRET: 'x'.repeat(32), API_KEYS: API_KEY, PORT: '0', HOST: '127.0.0.1' };
    const run = runGateway([], { env });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr + run.stdout, /bridge `needs-kafka` publishes incoming messages to Kafka .*set KAFKA_BROKERS/);
    const secret = 'pw-never-shown-42';
    const bad = runGateway([], { env: { ...env, KAFKA_BROKERS: 'k:9092', DATABASE_URL: `postgres://u:${secret}@db:port/x` } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr + bad.stdout, /DATABASE_URL: /);
    assert.ok(!(bad.stderr + bad.stdout).includes(secret), 'the password is not repeated');
  } finally {
    dir.remove();
  }
});

test('Kafka gone past a produce\'s time limit: the sink reconnects and produces the batch it kept, in order', { timeout: 120000 }, async () => {
  await broker.command('down');
  const tag = uid();
  for (let i = 0; i < 5; i += 1) io.emit('status:update', { tag, i });
  await eventually(() => hook.bodies.filter((b) => b.data.tag === tag).length === 5, 'the webhook got them', WAIT);
  // A produce gives up after 15 s; the sink then rebuilds its client, with backoff.
  await eventually(() => gw.logs.some((l) => l.includes('Kafka produce failed: reconnecting')), 'the failed produce logged', 40000);
  await broker.command('up');
  const got = await readTopic(broker.bootstrap, IO_TOPIC, tag, 5, 60000);
  assert.deepEqual(got.map((m) => m.value.data.i), [0, 1, 2, 3, 4]);
  await eventually(() => gw.logs.some((l) => l.includes('Kafka reachable again')), 'the recovery logged', WAIT);
});

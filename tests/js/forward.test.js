// Client events forwarded to a team's backend (the spec's `forward` action), against a real Node
// HTTP backend started here: the backend's JSON answer is the client's ack, the call carries the
// socket's identity (from its token; the public id, never the Engine.IO session id) and is
// signed; a backend that is down, slow or full gives the client a clear `error` (and the ack
// with it) while other clients go on; fire-and-forget calls reach the backend and the backend
// event stream. Socket.IO through socket.io-client, and one plain WebSocket endpoint.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { HubSocket } from './hub.js';
import { startRedis } from './redis.js';

const SIGNING_KEY = 'forward-test-signing-key-5a1c';
const BACKEND_TOKEN = 'backend-token-77e2';

/**
 * The team's backend: records every call (`calls`: path, headers, body). `/users` answers
 * `user:info` with the caller's identity, refuses `mode: 'refuse'` with a 404 `{error}`, fails
 * `mode: 'fail'` with a 503, and answers `mode: 'slow'` after `ms`. `/held` keeps every call
 * until `release()`. `/audit` answers 204. Over `https` with `tls` (`{key, cert}`).
 */
async function startBackend(tls) {
  const backend = { calls: [], held: [] };
  const handle = (req, res) => {
    let text = '';
    req.on('data', (chunk) => { text += chunk; });
    req.on('end', () => {
      const body = JSON.parse(text);
      backend.calls.push({ path: req.url, headers: req.headers, body, text });
      const json = (status, value) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (req.url === '/audit') return res.writeHead(204).end();
      if (req.url === '/held') return backend.held.push(() => json(200, { done: body.data }));
      const { mode, ms } = body.data ?? {};
      if (mode === 'refuse') return json(404, { error: { message: 'no such user', type: 'validation' } });
      if (mode === 'fail') return res.writeHead(503).end('down for maintenance');
      const answer = () => json(200, { id: body.socket.userId, tenantId: body.socket.tenantId, roles: body.socket.roles, asked: body.data });
      if (mode === 'slow') return setTimeout(answer, ms);
      return answer();
    });
  };
  const server = tls ? createHttpsServer(tls, handle) : createServer(handle);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = server.address().port;
  backend.release = () => backend.held.splice(0).forEach((answer) => answer());
  backend.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
  return backend;
}

/** A port nothing listens on. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const APP_SPEC = `
namespace: /app
events:
  user:info:
    do:
      - forward: { to: users }
  user:secure:
    do:
      - forward: { to: secure }
  user:slow:
    do:
      - forward: { to: users, timeout: 500ms }
  ping:
    do:
      - reply: { data: { pong: true } }
  down:
    do:
      - forward: { to: down }
  held:
    do:
      - forward: { to: held }
  audit:
    do:
      - forward: { to: audit, reply: false }
      - forward: { to: stream }
`;

const PLAIN_SPEC = `
namespace: /plain-forward
transport: websocket
events:
  user:info:
    do:
      - forward: { to: users, event: user:info:result }
`;

describe('client events forwarded to backends', { timeout: 60_000 }, () => {
  let backend;
  let secure;
  let gateway;
  let dirs;

  before(async () => {
    backend = await startBackend();
    const down = await closedPort();
    const specs = h.tempDir('rtgw-forward-');
    h.writeFile(specs.dir, 'app.yaml', APP_SPEC);
    h.writeFile(specs.dir, 'plain.yaml', PLAIN_SPEC);
    const config = h.tempDir('rtgw-forward-config-');
    dirs = [specs, config];
    const { caFile, key, cert } = h.makeCertificates(config.dir, 'backend');
    secure = await startBackend({ key, cert });
    const base = `http://127.0.0.1:${backend.port}`;
    const file = h.writeFile(config.dir, 'backends.yaml', [
      `users: { url: '${base}/users', secret: ${SIGNING_KEY}, headers: { Authorization: 'Bearer ${BACKEND_TOKEN}' }, timeout: 3s }`,
      `audit: { url: '${base}/audit' }`,
      `down: { url: 'http://127.0.0.1:${down}/x' }`,
      `held: { url: '${base}/held', concurrency: 1, queue: 1, timeout: 10s }`,
      `secure: { url: 'https://localhost:${secure.port}/users' }`,
      '',
    ].join('\n'));
    gateway = await h.startGateway({
      env: { NAMESPACES_DIR: specs.dir, BACKENDS_FILE: file, BRIDGE_ALLOWED_HOSTS: '127.0.0.1', BRIDGE_CA_FILE: caFile },
    });
  });

  after(async () => {
    await gateway?.stop();
    await backend?.close();
    await secure?.close();
    for (const d of dirs ?? []) d.remove();
  });

  const connect = (t, claims = {}) =>
    h.connectFor(t, gateway.url, { namespace: '/app', token: h.mintToken(claims), welcome: null });

  it("answers the ack with the backend's JSON, and tells the backend who asked", async (t) => {
    const socket = await connect(t, { sub: 'alice', tenantId: 'acme', roles: ['admin'] });
    const ack = await h.request(socket, 'user:info', { fields: ['email'] });
    assert.deepEqual(ack, { id: 'alice', tenantId: 'acme', roles: ['admin'], asked: { fields: ['email'] } });

    const call = backend.calls.findLast((c) => c.path === '/users');
    const { body, headers } = call;
    assert.equal(body.event, 'user:info');
    assert.equal(body.namespace, '/app');
    assert.deepEqual(body.data, { fields: ['email'] });
    assert.equal(body.socket.userId, 'alice');
    assert.equal(body.socket.tenantId, 'acme');
    assert.equal(body.socket.authenticated, true);
    assert.equal(body.socket.transport, 'websocket');
    h.assertPublicId(body.socket.id, socket);
    assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(headers.authorization, `Bearer ${BACKEND_TOKEN}`);
    const expected = createHmac('sha256', SIGNING_KEY).update(`${headers['x-gateway-timestamp']}.${call.text}`).digest('hex');
    assert.equal(headers['x-gateway-signature'], `sha256=${expected}`);
    assert.ok(!gateway.logs.join('\n').includes(BACKEND_TOKEN), 'the backend credential is never logged');
    assert.ok(!gateway.logs.join('\n').includes(SIGNING_KEY), 'the signing key is never logged');
  });

  it('calls an https:// backend, verifying its certificate with BRIDGE_CA_FILE', async (t) => {
    const socket = await connect(t, { sub: 'bob', tenantId: 'acme' });
    const ack = await h.request(socket, 'user:secure', { over: 'tls' });
    assert.deepEqual({ id: ack.id, tenantId: ack.tenantId, asked: ack.asked }, { id: 'bob', tenantId: 'acme', asked: { over: 'tls' } });
    assert.equal(secure.calls.at(-1).body.socket.userId, 'bob');
  });

  it("turns a backend's refusal into the seeds' error, and its failure into backend_unavailable", async (t) => {
    const socket = await connect(t);
    const refused = await h.request(socket, 'user:info', { mode: 'refuse' });
    assert.equal(refused.error.type, 'validation');
    assert.equal(refused.error.message, 'no such user');
    assert.equal(refused.error.event, 'user:info');
    assert.equal((await h.waitFor(socket, 'error')).message, 'no such user');

    const failed = await h.request(socket, 'user:info', { mode: 'fail' });
    assert.equal(failed.error.type, 'backend_unavailable');
    assert.match(failed.error.message, /answered 503/);
    await h.waitFor(socket, 'error', h.TIMEOUT, (e) => e.type === 'backend_unavailable');
    assert.ok(socket.connected, 'the socket stays connected');
  });

  it('says backend_unavailable at once when the backend is down', async (t) => {
    const socket = await connect(t);
    const started = Date.now();
    const ack = await h.request(socket, 'down', {});
    assert.equal(ack.error.type, 'backend_unavailable');
    assert.match(ack.error.message, /cannot be reached/);
    assert.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
    assert.ok(!JSON.stringify(ack).includes('127.0.0.1'), 'no address is shown to the client');
  });

  it('times a slow backend out within the bound while other clients are served', async (t) => {
    const slow = await connect(t);
    const other = await connect(t, { sub: 'bob' });
    const started = Date.now();
    const timedOut = h.request(slow, 'user:slow', { mode: 'slow', ms: 2500 });
    // Meanwhile: another client's own events, and its calls to the same backend.
    assert.deepEqual(await h.request(other, 'ping'), { pong: true });
    assert.equal((await h.request(other, 'user:info', {})).id, 'bob');
    const ack = await timedOut;
    const took = Date.now() - started;
    assert.equal(ack.error.type, 'backend_timeout');
    assert.match(ack.error.message, /within 500 ms/);
    assert.ok(took >= 450 && took < 1500, `timed out after ${took} ms`);
    // The slow socket itself goes on too.
    assert.deepEqual(await h.request(slow, 'ping'), { pong: true });
  });

  it('refuses a call at once as backend_busy past the concurrency and the queue', async (t) => {
    const socket = await connect(t);
    const busyBefore = await h.metric(gateway.url, 'backend_calls_total', { outcome: 'busy' });
    const first = h.request(socket, 'held', { n: 1 }, 10_000);
    await h.until(() => backend.held.length === 1, h.TIMEOUT, 'the first call in flight');
    const second = h.request(socket, 'held', { n: 2 }, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    const third = await h.request(socket, 'held', { n: 3 });
    assert.equal(third.error.type, 'backend_busy');
    assert.ok(Date.now() - started < 1000, 'refused at once');
    assert.equal(await h.metric(gateway.url, 'backend_calls_total', { outcome: 'busy' }), busyBefore + 1);
    backend.release();
    assert.deepEqual(await first, { done: { n: 1 } });
    await h.until(() => backend.held.length === 1, h.TIMEOUT, 'the queued call in flight');
    backend.release();
    assert.deepEqual(await second, { done: { n: 2 } });
  });

  it('sends fire-and-forget events to the backend and to the event stream', async (t) => {
    const stream = await h.openStream(gateway.url, 'types=client.*');
    t.after(() => stream.close());
    const socket = await connect(t, { sub: 'carol', tenantId: 'acme' });
    assert.deepEqual(await h.request(socket, 'audit', { page: '/billing' }), { ok: true });
    const streamed = await stream.next();
    assert.equal(streamed.data.type, 'client.audit');
    assert.equal(streamed.data.tenantId, 'acme');
    assert.deepEqual(streamed.data.data.data, { page: '/billing' });
    assert.equal(streamed.data.data.socket.userId, 'carol');
    h.assertPublicId(streamed.data.data.socket.id, socket);
    await h.until(() => backend.calls.some((c) => c.path === '/audit' && c.body.socket.userId === 'carol'), h.TIMEOUT, 'the audit call');
    const call = backend.calls.find((c) => c.path === '/audit');
    assert.deepEqual(call.body.data, { page: '/billing' });
    assert.equal(call.headers['x-gateway-signature'], undefined, 'a backend without a secret gets no signature');
  });

  it("answers a plain WebSocket client with the backend's answer as an event", async (t) => {
    const url = `${gateway.url.replace(/^http/, 'ws')}/plain-forward?token=${encodeURIComponent(h.mintToken({ sub: 'dave' }))}`;
    const socket = new HubSocket(url);
    t.after(() => socket.close());
    await socket.opened;
    socket.send('user:info', { fields: ['name'] });
    const answer = await socket.next('user:info:result');
    assert.deepEqual(answer.data, { id: 'dave', tenantId: 't1', roles: ['user'], asked: { fields: ['name'] } });
    socket.send('user:info', { mode: 'refuse' });
    const error = await socket.next('error');
    assert.equal(error.data.type, 'validation');
    assert.equal(error.data.event, 'user:info');
  });
});

describe('client events on the event stream of a cluster', { timeout: 60_000 }, () => {
  const cluster = {};

  before(async () => {
    cluster.specs = h.tempDir('rtgw-forward-cluster-');
    h.writeFile(cluster.specs.dir, 'app.yaml', 'namespace: /app\nevents:\n  seen:\n    do:\n      - forward: { to: stream }\n');
    cluster.redis = await startRedis();
    const env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `fw${h.uid()}`, NAMESPACES_DIR: cluster.specs.dir };
    cluster.nodes = [await h.startGateway({ env }), await h.startGateway({ env })];
    await h.untilReady(cluster.nodes);
  });

  after(async () => {
    await Promise.all((cluster.nodes ?? []).map((node) => node.stop()));
    await cluster.redis?.stop();
    cluster.specs?.remove();
  });

  it("puts a socket's streamed event on every node's stream, under the same id", async (t) => {
    const [a, b] = cluster.nodes;
    const onA = await h.openStream(a.url, 'types=client.*');
    const onB = await h.openStream(b.url, 'types=client.*');
    t.after(() => { onA.close(); onB.close(); });
    const socket = await h.connectFor(t, a.url, { namespace: '/app', token: h.mintToken({ sub: 'erin', tenantId: 'acme' }), welcome: null });
    for (const n of [1, 2, 3]) assert.deepEqual(await h.request(socket, 'seen', { n }), { ok: true });
    const [seenOnA, seenOnB] = [await onA.take(3), await onB.take(3)];
    assert.deepEqual(seenOnA.map((m) => m.data.data.data.n), [1, 2, 3], "one socket's events in its order");
    assert.deepEqual(seenOnB.map((m) => m.id), seenOnA.map((m) => m.id), 'the same ids on both nodes');
    assert.ok(seenOnB.every((m) => m.data.type === 'client.seen' && m.data.tenantId === 'acme' && m.data.data.socket.userId === 'erin'));
  });
});

describe('checking a spec that forwards', () => {
  it('refuses a backend no BACKENDS_FILE names, at its `to`', () => {
    const specs = h.tempDir('rtgw-forward-check-');
    try {
      h.writeFile(specs.dir, 'app.yaml', 'namespace: /app\nevents:\n  user:info:\n    do:\n      - forward: { to: usres }\n');
      const backends = h.writeFile(specs.dir, 'backends.json', JSON.stringify({ users: { url: 'http://127.0.0.1:9/u' } }));
      const refused = h.runGateway(['check', specs.dir], { env: { JWT_SECRET: h.SECRET, BACKENDS_FILE: backends } });
      assert.equal(refused.status, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /app\.yaml:5:24: unknown backend `usres` \(known: users, stream: backends come from BACKENDS_FILE\) \(did you mean `users`\?\)/);
      h.writeFile(specs.dir, 'app.yaml', 'namespace: /app\nevents:\n  user:info:\n    do:\n      - forward: { to: users }\n');
      const ok = h.runGateway(['check', specs.dir], { env: { JWT_SECRET: h.SECRET, BACKENDS_FILE: backends } });
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    } finally {
      specs.remove();
    }
  });
});

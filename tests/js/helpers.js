// Shared machinery of the compatibility suite: start and stop gateway processes, mint tokens,
// connect socket.io-client sockets that record everything they receive, wait for events with a
// timeout, and publish over the HTTP API.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const GATEWAY_BIN = path.resolve(HERE, process.env.GATEWAY_BIN ?? '../../target/debug/realtime-gateway');
export const SECRET = 'js-suite-secret-0123456789abcdef0123456789abcdef';
export const API_KEY = 'js-suite-api-key';
export const NS = '/workflow';

/** Default wait for anything the gateway should do promptly. */
export const TIMEOUT = 5000;

// ---------------------------------------------------------------------------------------------
// Gateway processes
// ---------------------------------------------------------------------------------------------

const running = new Set();
const killAll = () => {
  for (const child of running) child.kill('SIGKILL');
};
// Last resort when a test run dies before its `after` hooks: never leave a gateway behind.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/**
 * Starts a gateway on a free loopback port and resolves once it logs `listening`.
 * `env` entries override the defaults; an entry set to `undefined` removes that variable.
 * Resolves to `{ url, port, logs, child, stop() }`.
 */
export async function startGateway({ env = {}, timeoutMs = 15000 } = {}) {
  const merged = {
    PATH: process.env.PATH,
    JWT_SECRET: SECRET,
    API_KEYS: API_KEY,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT: '2000',
    ...env,
  };
  const childEnv = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
  const child = spawn(GATEWAY_BIN, [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));
  child.stderr.on('data', (chunk) => logs.push(chunk.toString()));

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the gateway did not log "listening" within ${timeoutMs} ms`)), timeoutMs);
    const lines = readline.createInterface({ input: child.stdout });
    let settled = false;
    function fail(error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${logs.join('\n')}`));
    }
    child.once('error', fail);
    exited.then(({ code, signal }) => fail(new Error(`the gateway exited (code ${code}, signal ${signal}) before listening`)));
    lines.on('line', (line) => {
      logs.push(line);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (!settled && entry.message === 'listening' && typeof entry.addr === 'string') {
        settled = true;
        clearTimeout(timer);
        resolve(Number(entry.addr.split(':').pop()));
      }
    });
  });

  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    logs,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Runs `realtime-gateway <args>` to completion: `{ status, stdout, stderr }`. */
export function runGateway(args, { env = {} } = {}) {
  const result = spawnSync(GATEWAY_BIN, args, { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 15000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A fresh temporary folder outside the repository, and a function that removes it. */
export function tempDir(prefix = 'rtgw-js-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `text` to `dir/name` and returns the full path. */
export function writeFile(dir, name, text) {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/** Seconds since the epoch. */
export const nowSecs = () => Math.floor(Date.now() / 1000);

/**
 * A signed token. Claims default to user `u1` of tenant `t1`, role `user`, valid one hour;
 * a claim set to `undefined` is left out. `key` and `algorithm` default to the suite's HS256 secret.
 */
export function mintToken(claims = {}, { key = SECRET, algorithm = 'HS256' } = {}) {
  const payload = { sub: 'u1', tenantId: 't1', roles: ['user'], exp: nowSecs() + 3600, ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return jwt.sign(payload, key, { algorithm });
}

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An unsigned token (`alg: none`), as an attacker would craft it. */
export function unsignedToken(claims = {}) {
  const payload = { sub: 'u1', tenantId: 't1', roles: ['user'], exp: nowSecs() + 3600, ...claims };
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
}

/** An HS256 token signed by hand with an arbitrary byte string (such as a PEM public key). */
export function hmacToken(claims, key) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ exp: nowSecs() + 3600, ...claims })}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/** `token` with its payload changed by `change`, keeping the original header and signature. */
export function tamperToken(token, change) {
  const [head, body, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
  return `${head}.${b64url(change(claims))}.${signature}`;
}

/** A PEM key pair for RS256 (`rsa`) or ES256 (`ec`). */
export function keyPair(kind) {
  const options = kind === 'rsa' ? { modulusLength: 2048 } : { namedCurve: 'P-256' };
  return generateKeyPairSync(kind, {
    ...options,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** A short unique suffix, so tests never share tenants or ids. */
export const uid = () => randomUUID().slice(0, 8);

// ---------------------------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------------------------

/** The three transport setups every main flow runs over. */
export const TRANSPORTS = [
  { name: 'websocket only', transports: ['websocket'], expect: 'websocket' },
  { name: 'polling only', transports: ['polling'], expect: 'polling' },
  { name: 'polling upgraded to websocket', transports: ['polling', 'websocket'], expect: 'websocket', upgrade: true },
];

/**
 * A socket.io-client socket on `namespace` (default `/workflow`) that records everything it
 * receives (`socket.inbox`), so no event can slip by between two awaits. `connect`, `disconnect`
 * (with its reason), `connect_error` and the engine's `upgrade` are recorded too. Never
 * reconnects by itself. Acks the server asks for are not answered unless a test does so.
 */
export function openSocket(url, { token, transports = ['websocket'], namespace = NS, ...options } = {}) {
  const socket = io(url + (namespace === '/' ? '' : namespace), {
    transports,
    forceNew: true,
    reconnection: false,
    timeout: TIMEOUT,
    ...(token === undefined ? {} : { auth: { token } }),
    ...options,
  });
  return recording(socket);
}

/**
 * Makes `socket` (any socket.io-client socket, such as one made with `io()` directly) record
 * everything it receives in `socket.inbox`, so `waitFor` and `pending` work on it and no event
 * slips by between two awaits.
 */
export function recording(socket) {
  socket.inbox = [];
  socket.waiters = [];
  const record = (event, args) => {
    const waiter = socket.waiters.find((w) => w.event === event && w.where(args[0]));
    if (waiter) {
      socket.waiters.splice(socket.waiters.indexOf(waiter), 1);
      waiter.resolve(args[0]);
    } else {
      socket.inbox.push({ event, args });
    }
  };
  socket.onAny((event, ...args) => record(event, args));
  socket.on('connect', () => record('connect', [socket.id]));
  socket.on('disconnect', (reason) => record('disconnect', [reason]));
  socket.on('connect_error', (error) => record('connect_error', [error]));
  socket.io.engine?.once('upgrade', (transport) => record('upgrade', [transport.name]));
  return socket;
}

/**
 * The first `event` the socket received (and has not handed out yet) for which `where(data)`
 * holds; waits up to `timeoutMs`, then rejects. Resolves to the event's first argument.
 */
export function waitFor(socket, event, timeoutMs = TIMEOUT, where = () => true) {
  if (!socket.inbox) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no \`${event}\` within ${timeoutMs} ms`)), timeoutMs);
      socket.once(event, (data) => {
        clearTimeout(timer);
        resolve(data);
      });
    });
  }
  const index = socket.inbox.findIndex((e) => e.event === event && where(e.args[0]));
  if (index >= 0) return Promise.resolve(socket.inbox.splice(index, 1)[0].args[0]);
  return new Promise((resolve, reject) => {
    const waiter = { event, where, resolve: undefined };
    const timer = setTimeout(() => {
      socket.waiters.splice(socket.waiters.indexOf(waiter), 1);
      const seen = socket.inbox.map((e) => e.event).join(', ') || 'nothing';
      reject(new Error(`no \`${event}\` within ${timeoutMs} ms (unclaimed: ${seen})`));
    }, timeoutMs);
    waiter.resolve = (data) => {
      clearTimeout(timer);
      resolve(data);
    };
    socket.waiters.push(waiter);
  });
}

/** Events of this name received and not handed out yet (their first arguments). */
export function pending(socket, event) {
  return socket.inbox.filter((e) => e.event === event).map((e) => e.args[0]);
}

/**
 * Opens a socket and waits until it is connected and has received its namespace's welcome event
 * (`welcome`, default `connected`; `null` waits for none), kept as `socket.welcome`.
 */
export async function connectClient(url, { welcome = 'connected', ...options } = {}) {
  const socket = openSocket(url, options);
  try {
    await waitFor(socket, 'connect');
    socket.welcome = welcome === null ? undefined : await waitFor(socket, welcome);
    if (options.transports?.length > 1 && options.transports.includes('websocket')) {
      await waitFor(socket, 'upgrade');
    }
  } catch (error) {
    socket.disconnect();
    throw error;
  }
  return socket;
}

/**
 * Asserts that `id` is the id the gateway shows for `socket`: 20 URL-safe characters, and never
 * its Engine.IO session id (`socket.id` under socketioxide), which works as a session credential.
 */
export function assertPublicId(id, socket) {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{20}$/.test(id)) {
    throw new Error(`not a public socket id: ${JSON.stringify(id)}`);
  }
  if (id === socket.id || id === socket.io?.engine?.id) {
    throw new Error(`the public id ${id} is the Engine.IO session id`);
  }
}

/** `openSocket`, closing the socket when test `t` ends. */
export function openFor(t, url, options) {
  const socket = openSocket(url, options);
  t.after(() => socket.disconnect());
  return socket;
}

/** `connectClient`, closing the socket when test `t` ends. */
export async function connectFor(t, url, options) {
  const socket = await connectClient(url, options);
  t.after(() => socket.disconnect());
  return socket;
}

/** Sends an event and resolves to its ack, rejecting after `timeoutMs`. */
export function request(socket, event, payload, timeoutMs = TIMEOUT) {
  return payload === undefined
    ? socket.timeout(timeoutMs).emitWithAck(event)
    : socket.timeout(timeoutMs).emitWithAck(event, payload);
}

/**
 * An event's data without the `position` that events of rooms with history carry (an additive
 * field), after checking its shape: `{offset, epoch, room}`.
 */
export function unpositioned(data) {
  const { position, ...rest } = data;
  if (position !== undefined) {
    if (!Number.isInteger(position.offset) || typeof position.epoch !== 'string' || typeof position.room !== 'string') {
      throw new Error(`not a position: ${JSON.stringify(position)}`);
    }
  }
  return rest;
}

/** Subscribes and returns `{ ack, confirmed, initial }` (the ack and both events). */
export async function subscribe(socket, payload) {
  const ack = await request(socket, 'subscribe', payload);
  if (ack?.error) throw new Error(`subscribe ${JSON.stringify(payload)} failed: ${JSON.stringify(ack.error)}`);
  const confirmed = await waitFor(socket, 'subscription_confirmed');
  const initial = await waitFor(socket, 'initial_data');
  return { ack, confirmed, initial };
}

// ---------------------------------------------------------------------------------------------
// The backend event stream
// ---------------------------------------------------------------------------------------------

/**
 * Opens the event stream at `url` with `query` (and `lastEventId`); resolves once it answered
 * 200. `next()` resolves to the next message `{ event, id, data }` (rejecting after `timeoutMs`),
 * `close()` ends it.
 */
export async function openStream(url, query, { lastEventId, timeoutMs = TIMEOUT } = {}) {
  const abort = new AbortController();
  const headers = { 'X-API-Key': API_KEY, Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const response = await fetch(`${url}/api/v1/events/stream?${query}`, { headers, signal: abort.signal });
  if (response.status !== 200) throw new Error(`the event stream answered ${response.status}: ${await response.text()}`);
  const type = response.headers.get('content-type');
  if (type !== 'text/event-stream') throw new Error(`the event stream's content type is ${type}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const nextMessage = async () => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: 'message', id: null, data: null };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const at = line.indexOf(': ');
          const [field, value] = [line.slice(0, at), line.slice(at + 2)];
          if (field === 'event') message.event = value;
          if (field === 'id') message.id = value;
          if (field === 'data') message.data = JSON.parse(value);
        }
        if (message.data !== null) return message;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
  let reading = Promise.resolve();
  return {
    next() {
      // One read at a time, each with its own deadline.
      const result = reading.then(() => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
        nextMessage().then((m) => { clearTimeout(timer); resolve(m); }, (e) => { clearTimeout(timer); reject(e); });
      }));
      reading = result.catch(() => {});
      return result;
    },
    async take(n) {
      const out = [];
      for (let i = 0; i < n; i++) out.push(await this.next());
      return out;
    },
    close() {
      abort.abort();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Publish API
// ---------------------------------------------------------------------------------------------

/**
 * POSTs `body` to `/api/v1/events` (a value is sent as JSON, a string as is) with the API key
 * unless `headers` replaces it. Resolves to `{ status, body }` (body parsed when it is JSON).
 */
export function publish(url, body, options) {
  return api(url, '/api/v1/events', body, options);
}

/**
 * Calls the HTTP API at `path`: POSTs `body` (a value as JSON, a string as is), or GETs when
 * `body` is undefined. The API key is sent unless `headers` replaces it. Resolves to
 * `{ status, body }` (body parsed when it is JSON). `timeoutMs` bounds the call; `method`
 * replaces the method (`PUT`).
 */
export async function api(url, path, body, { headers = { 'X-API-Key': API_KEY }, timeoutMs = TIMEOUT, method } = {}) {
  const response = await fetch(`${url}${path}`, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { 'Content-Type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // left as text
  }
  return { status: response.status, body: parsed };
}

/** Publishes events that must be accepted (202). */
export async function publishOk(url, events) {
  const count = Array.isArray(events) ? events.length : 1;
  // A call's deadline grows with its batch: a test of a 1,000-event burst asserts what arrives,
  // not how fast a debug build applies it on a loaded machine (speed is the benchmarks' business).
  const { status, body } = await publish(url, events, { timeoutMs: TIMEOUT + 10 * count });
  if (status !== 202 || body?.accepted !== count) {
    throw new Error(`publish answered ${status} ${JSON.stringify(body)}, expected 202 {"accepted": ${count}}`);
  }
}

/** An event object; `timestamp` is left to the server unless given. */
export const event = (type, tenantId, data, timestamp) => ({ type, tenantId, data, ...(timestamp ? { timestamp } : {}) });

// ---------------------------------------------------------------------------------------------
// Metrics, polling conditions, raw protocol clients
// ---------------------------------------------------------------------------------------------

/** The gateway's `/metrics` page, as text. */
export async function scrape(url) {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT) });
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}

/**
 * The samples of a Prometheus text page: `[{ name, labels: { k: v }, value }]`. Label values are
 * unescaped (`\\`, `\"`, `\n`).
 */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    const value = { '+Inf': Infinity, '-Inf': -Infinity }[match[3]] ?? Number(match[3]);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/**
 * The sum of the samples named `realtime_gateway_<name>` whose labels include `labels` (so an
 * unlabelled query sums a labelled family); 0 when there is none.
 */
export function sumOf(samples, name, labels = {}) {
  const full = `realtime_gateway_${name}`;
  return samples
    .filter((s) => s.name === full && Object.entries(labels).every(([k, v]) => s.labels[k] === String(v)))
    .reduce((total, s) => total + s.value, 0);
}

/**
 * The value of metric `name` (with `labels`, such as `{ reason: 'write_timeout' }`) in the
 * gateway's `/metrics`, summed over the series those labels match; 0 when it is not there.
 */
export async function metric(url, name, labels = {}) {
  return sumOf(parseMetrics(await scrape(url)), name, labels);
}

/**
 * Polls `probe` every `every` ms until it returns `true` (exactly: a probe may return what it saw
 * instead, which the failure then shows); fails after `timeoutMs` naming `what`.
 */
export async function until(probe, timeoutMs = TIMEOUT, what = 'condition', every = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await probe();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/** Waits until every node of a cluster (each `{url, name}`) answers `/readyz` with `ready`. */
export async function untilReady(nodes, timeoutMs = 10000) {
  for (const node of nodes) {
    await until(async () => {
      const { status, body } = await api(node.url, '/readyz');
      return (status === 200 && body?.status === 'ready') || { status, body };
    }, timeoutMs, `node ${node.name} ready`);
  }
}

/** Resolves once `condition()` (sync or async) is truthy, checking every 50 ms; rejects after `timeoutMs`. */
export async function eventually(condition, what, timeoutMs = TIMEOUT) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A CA and a certificate it signs for `localhost` and 127.0.0.1, made with `openssl` in `dir`:
 * `{caFile, key, cert}` (the CA's PEM file, for BRIDGE_CA_FILE; the leaf's key and certificate).
 */
export function makeCertificates(dir, name) {
  const at = (file) => `${dir}/${name}-${file}`;
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', `/CN=${name} test CA`);
  openssl('req', ...ec, '-keyout', at('leaf.key'), '-out', at('leaf.csr'), '-subj', '/CN=localhost');
  writeFile(dir, `${name}-leaf.ext`, [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  openssl('x509', '-req', '-in', at('leaf.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial',
    '-out', at('leaf.pem'), '-days', '2', '-extfile', at('leaf.ext'));
  return { caFile: at('ca.pem'), key: readFileSync(at('leaf.key')), cert: readFileSync(at('leaf.pem')) };
}

// The admin view (issue 10): the official Socket.IO Admin UI's protocol on /admin, spoken to by
// socket.io-client as the UI speaks it, then the real UI (served by the gateway at /admin/) in
// headless Chromium. Logins with good and bad credentials and login sessions; `config`;
// `server_stats` counting real clients; `all_sockets` and the live events as sockets connect,
// join rooms, upgrade and leave; the `_disconnect` command; read-only and production modes; no
// Engine.IO session id, token, cookie or key anywhere in what /admin sends; in a cluster each
// node's stats reaching an admin connected to another node; what /admin sends staying within its
// byte bounds however many rooms clients make and however fast they churn; and a password flood
// from many addresses answered at once, leaving the operator able to log in.
//
// Screenshots of the UI go to tests/js/output/ (git-ignored). CHROMIUM_BIN names the browser
// (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import * as h from './helpers.js';
import { openHub } from './hub.js';
import { startRedis } from './redis.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUTPUT = path.join(HERE, 'output');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

const USERNAME = 'operator';
const PASSWORD = 'correct horse battery staple';
const ALL_FEATURES = ['DISCONNECT', 'AGGREGATED_EVENTS', 'ALL_EVENTS'];
const PLAIN_WS = '/ws (plain WebSocket)';

/** The bcrypt hash of `password`, made by the gateway's own `hash-password` (cost 4: fast). */
function hashPassword(password, cost = 4) {
  const run = spawnSync(h.GATEWAY_BIN, ['hash-password', '--cost', String(cost)], { input: `${password}\n`, encoding: 'utf8', timeout: 15000 });
  assert.equal(run.status, 0, run.stderr);
  const hash = run.stdout.trim();
  assert.match(hash, new RegExp(`^\\$2b\\$${String(cost).padStart(2, '0')}\\$.{53}$`));
  return hash;
}

const HASH = hashPassword(PASSWORD);
const ADMIN_ENV = { ADMIN_USERNAME: USERNAME, ADMIN_PASSWORD_HASH: HASH };

/**
 * An admin socket on `/admin` with `auth` (the right credentials unless told; `null` sends none),
 * recording what it receives (`inbox`, for `h.waitFor`) and keeping every message with all its
 * arguments (`log`, for `waitForArgs`) and as JSON text (`seen`), closed when `t` ends.
 */
function openAdmin(t, url, auth = { username: USERNAME, password: PASSWORD }, options = {}) {
  const socket = h.openFor(t, url, { namespace: '/admin', ...(auth === null ? {} : { auth }), ...options });
  socket.log = [];
  socket.seen = [];
  socket.onAny((event, ...args) => {
    socket.log.push([event, args]);
    socket.seen.push(JSON.stringify([event, ...args]));
  });
  return socket;
}

/** An admin socket past its login: `{socket, session, config, stats, sockets}`. */
async function loggedIn(t, url, auth, options) {
  const socket = openAdmin(t, url, auth, options);
  await h.waitFor(socket, 'connect');
  const session = auth?.sessionId ? undefined : await h.waitFor(socket, 'session');
  const config = await h.waitFor(socket, 'config');
  const stats = await h.waitFor(socket, 'server_stats');
  const sockets = config.supportedFeatures.includes('ALL_EVENTS') ? await h.waitFor(socket, 'all_sockets') : undefined;
  return { socket, session, config, stats, sockets };
}

/**
 * The arguments of an `event` the admin socket received (already, or within `timeoutMs`) for
 * which `where(args)` holds.
 */
function waitForArgs(socket, event, where, timeoutMs = h.TIMEOUT) {
  const past = socket.log.find(([name, args]) => name === event && where(args));
  if (past) return Promise.resolve(past[1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.offAny(listener);
      reject(new Error(`no matching \`${event}\` within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (name, ...args) => {
      if (name === event && where(args)) {
        clearTimeout(timer);
        socket.offAny(listener);
        resolve(args);
      }
    };
    socket.onAny(listener);
  });
}

/** The `server_stats` of `serverId` (any server unless told) for which `where(stats)` holds. */
const statsWhere = (admin, where, timeoutMs = 8000) => h.waitFor(admin, 'server_stats', timeoutMs, where);

const countOf = (stats, name) => stats.namespaces.find((n) => n.name === name)?.socketsCount;

/** A /workflow client of a fresh tenant, past its welcome (`clientId` is its public id). */
const workflowClient = (t, url, options = {}) =>
  h.connectFor(t, url, { token: h.mintToken({ sub: `u-${h.uid()}`, tenantId: options.tenantId ?? `adm-${h.uid()}` }), ...options });

describe('without ADMIN_USERNAME and ADMIN_PASSWORD_HASH', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: { ADMIN_USERNAME: undefined, ADMIN_PASSWORD_HASH: undefined } });
  });
  after(() => gw?.stop());

  it('mounts neither /admin nor the UI, and says so at start-up', async (t) => {
    const socket = h.openFor(t, gw.url, { namespace: '/admin', auth: { username: USERNAME, password: PASSWORD } });
    const error = await h.waitFor(socket, 'connect_error');
    assert.equal(error.message, 'Invalid namespace');
    assert.equal((await fetch(`${gw.url}/admin/`, { signal: AbortSignal.timeout(h.TIMEOUT) })).status, 404);
    assert.ok(gw.logs.some((line) => line.includes('admin view off')), gw.logs.join('\n'));
  });
});

describe('the admin namespace', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: ADMIN_ENV });
  });
  after(() => gw?.stop());

  it('refuses wrong or missing credentials with the connect_error the UI recognises', async (t) => {
    for (const auth of [
      { username: USERNAME, password: 'wrong' },
      { username: 'root', password: PASSWORD },
      { username: USERNAME },
      { sessionId: 'f'.repeat(32) },
      {},
      null,
    ]) {
      const socket = openAdmin(t, gw.url, auth);
      const error = await h.waitFor(socket, 'connect_error');
      assert.equal(error.message, 'invalid credentials', JSON.stringify(auth));
      assert.deepEqual(socket.seen, [], 'a refused admin is sent nothing');
    }
  });

  it('logs in: a session id, the config, this server\'s stats and its sockets; the session id logs in again', async (t) => {
    const { session, config, stats, sockets } = await loggedIn(t, gw.url);
    assert.match(session, /^[0-9a-f]{32}$/);
    assert.deepEqual(config, { supportedFeatures: ALL_FEATURES });
    assert.deepEqual(Object.keys(stats).sort(), [
      'aggregatedEvents', 'clientsCount', 'hostname', 'namespaces', 'pid', 'pollingClientsCount', 'serverId', 'uptime',
    ]);
    assert.equal(stats.serverId, `${stats.hostname}#${stats.pid}`);
    assert.equal(stats.pid, gw.child.pid);
    assert.ok(stats.uptime > 0 && stats.uptime < 600, String(stats.uptime));
    assert.deepEqual(stats.namespaces.map((n) => n.name), ['/', '/realtime', '/workflow', '/ws', PLAIN_WS]);
    assert.ok(Array.isArray(sockets));

    const again = await loggedIn(t, gw.url, { sessionId: session });
    assert.deepEqual(again.config, config, 'a session id logs in without the password');
    assert.equal(h.pending(again.socket, 'session').length, 0, 'no new session for a session login');
    assert.ok(gw.logs.every((line) => !line.includes(session) && !line.includes(HASH) && !line.includes(PASSWORD)),
      'no password, hash or session id in the logs');
  });

  it('counts real clients in server_stats, lists them in all_sockets and follows them: connected, rooms, disconnected', async (t) => {
    // The first test here with clients: the counts start at zero (admin sockets are not counted).
    const tenantId = `adm-${h.uid()}`;
    const { socket: admin, stats: before } = await loggedIn(t, gw.url);
    assert.equal(countOf(before, '/workflow'), 0);
    assert.equal(before.clientsCount, 0, 'admin connections are not clients of the gateway');

    const first = await workflowClient(t, gw.url, { tenantId });
    const connected = await waitForArgs(admin, 'socket_connected', ([s]) => s.id === first.welcome.clientId);
    const [view, at] = connected;
    h.assertPublicId(view.id, first);
    assert.equal(view.nsp, '/workflow');
    assert.equal(view.transport, 'websocket');
    assert.match(view.clientId, /^[0-9a-f]{16}$/);
    assert.deepEqual(view.data, { userId: first.welcome.userId, tenantId, roles: ['user'], authenticated: true });
    assert.deepEqual(view.rooms, [], 'reported before its on_connect actions join rooms');
    await waitForArgs(admin, 'room_joined', ([nsp, room, id]) => nsp === '/workflow' && room === `${tenantId} / tenant` && id === view.id);
    assert.equal(view.handshake.address, '127.0.0.1');
    assert.ok(Math.abs(view.handshake.issued - Date.now()) < 10000, 'issued is when it connected');
    assert.ok(!Number.isNaN(Date.parse(at)), at);

    await h.subscribe(first, { type: 'execution', resourceId: 'e1' });
    await waitForArgs(admin, 'room_joined', ([nsp, room, id]) => nsp === '/workflow' && room === `${tenantId} / execution:e1` && id === view.id);

    const second = await workflowClient(t, gw.url, { tenantId, transports: ['polling'] });
    await waitForArgs(admin, 'socket_connected', ([s]) => s.id === second.welcome.clientId && s.transport === 'polling');
    const counted = await statsWhere(admin, (s) => countOf(s, '/workflow') === 2);
    assert.equal(counted.clientsCount, 2);
    assert.equal(counted.pollingClientsCount, 1);

    const late = await loggedIn(t, gw.url);
    const listed = late.sockets.find((s) => s.id === view.id);
    assert.deepEqual(listed.rooms.sort(), [`${tenantId} / execution:e1`, `${tenantId} / tenant`], 'all_sockets has the rooms');
    assert.ok(late.sockets.some((s) => s.id === second.welcome.clientId && s.transport === 'polling'));

    first.disconnect();
    for (const left of ['execution:e1', 'tenant']) {
      await waitForArgs(admin, 'room_left', ([nsp, room, id]) => nsp === '/workflow' && room === `${tenantId} / ${left}` && id === view.id);
    }
    const [gone, goneId, reason] = await waitForArgs(admin, 'socket_disconnected', ([, sid]) => sid === view.id);
    assert.deepEqual([gone, goneId, reason], ['/workflow', view.id, 'client namespace disconnect']);
    const events = await statsWhere(admin, (s) => s.aggregatedEvents.some((e) => e.type === 'rawDisconnection'));
    const disconnection = events.aggregatedEvents.find((e) => e.type === 'rawDisconnection');
    assert.equal(disconnection.subType, 'client namespace disconnect');
    assert.equal(disconnection.timestamp % 1000, 0, 'counted per second');
  });

  it('tells the UI when a long-polling client upgrades to WebSocket', async (t) => {
    const { socket: admin } = await loggedIn(t, gw.url);
    const client = await workflowClient(t, gw.url, { transports: ['polling', 'websocket'] });
    const [update] = await waitForArgs(admin, 'socket_updated', ([u]) => u.id === client.welcome.clientId);
    assert.deepEqual(update, { id: client.welcome.clientId, nsp: '/workflow', transport: 'websocket' });
  });

  it('lists and follows plain WebSocket connections of /ws too', async (t) => {
    const { socket: admin } = await loggedIn(t, gw.url);
    const tenantId = `hub-${h.uid()}`;
    const hub = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const [view] = await waitForArgs(admin, 'socket_connected', ([s]) => s.nsp === PLAIN_WS && s.data.tenantId === tenantId);
    assert.equal(view.transport, 'websocket');
    assert.match(view.id, /^[A-Za-z0-9_-]{20}$/);
    await hub.subscribe('executions');
    await waitForArgs(admin, 'room_joined', ([nsp, room, id]) => nsp === PLAIN_WS && id === view.id && room.startsWith(`${tenantId} / executions`));
    hub.ws.close();
    await waitForArgs(admin, 'socket_disconnected', ([nsp, id]) => nsp === PLAIN_WS && id === view.id);
  });

  it('shows no Engine.IO session id, token, cookie or API key, whatever the client sent them in', async (t) => {
    const { socket: admin } = await loggedIn(t, gw.url);
    const tenantId = `leak-${h.uid()}`;
    const tokens = [1, 2, 3].map(() => h.mintToken({ sub: `u-${h.uid()}`, tenantId }));
    const clients = [
      // auth.token, over polling then WebSocket (the upgrade names the session in its URL)
      await h.connectFor(t, gw.url, { token: tokens[0], transports: ['polling', 'websocket'] }),
      // ?token= in the URL, with a cookie and an API key header
      await h.connectFor(t, gw.url, {
        query: { token: tokens[1] },
        extraHeaders: { cookie: `access_token=${tokens[1]}; io=sticky-secret`, 'x-api-key': h.API_KEY },
        transports: ['polling'],
      }),
      // Authorization: Bearer
      await h.connectFor(t, gw.url, { extraHeaders: { authorization: `Bearer ${tokens[2]}` }, transports: ['polling'] }),
    ];
    for (const client of clients) {
      await waitForArgs(admin, 'socket_connected', ([s]) => s.id === client.welcome.clientId);
    }
    await waitForArgs(admin, 'socket_updated', ([u]) => u.id === clients[0].welcome.clientId);
    const late = await loggedIn(t, gw.url);
    const listed = late.sockets.filter((s) => s.data.tenantId === tenantId);
    assert.equal(listed.length, 3);
    const [, withQuery, withHeader] = clients.map((c) => listed.find((s) => s.id === c.welcome.clientId));
    assert.equal(withQuery.handshake.query.token, '[redacted]');
    assert.equal(withQuery.handshake.headers.cookie, '[redacted]');
    assert.equal(withQuery.handshake.headers['x-api-key'], undefined, 'a session keeps only the headers admission reads');
    assert.ok(withQuery.handshake.url.includes('token=[redacted]'), withQuery.handshake.url);
    assert.equal(withHeader.handshake.headers.authorization, '[redacted]');

    const everything = [...admin.seen, ...late.socket.seen].join('\n');
    const secrets = [...tokens, h.API_KEY, 'sticky-secret', HASH, PASSWORD];
    for (const client of clients) secrets.push(client.id, client.io.engine.id);
    for (const secret of secrets) {
      assert.ok(secret && !everything.includes(secret), `/admin sent ${secret}`);
    }
  });

  it('disconnects a socket by its public id, or its whole client; an unknown id or no id does nothing', async (t) => {
    const { socket: admin } = await loggedIn(t, gw.url);
    const bystander = await workflowClient(t, gw.url);
    const target = await workflowClient(t, gw.url);
    admin.emit('_disconnect', '/workflow', false);
    admin.emit('_disconnect', '/workflow', false, 'not-a-socket-id-at-all');
    admin.emit('_disconnect', '/workflow', false, target.welcome.clientId);
    assert.equal(await h.waitFor(target, 'disconnect'), 'io server disconnect');
    const [, , reason] = await waitForArgs(admin, 'socket_disconnected', ([, id]) => id === target.welcome.clientId);
    assert.equal(reason, 'server namespace disconnect');

    const whole = await workflowClient(t, gw.url);
    admin.emit('_disconnect', '/workflow', true, whole.welcome.clientId);
    assert.equal(await h.waitFor(whole, 'disconnect'), 'transport close', 'the whole connection is closed');
    assert.ok(bystander.connected, 'the others stay');
    assert.equal(await h.metric(gw.url, 'connections_cut_total', { reason: 'admin' }), 1);
  });

  it('serves the UI with a policy that keeps the page on this gateway', async () => {
    const page = await fetch(`${gw.url}/admin/`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    const html = await page.text();
    assert.ok(!/https?:/.test(html), html);
    for (const asset of html.match(/(?:href|src)="([^"]+)"/g).map((m) => m.slice(m.indexOf('"') + 1, -1))) {
      const response = await fetch(`${gw.url}/admin/${asset}`, { signal: AbortSignal.timeout(h.TIMEOUT) });
      assert.equal(response.status, 200, asset);
    }
    const redirect = await fetch(`${gw.url}/admin`, { redirect: 'manual', signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(redirect.headers.get('location'), '/admin/');
  });
});

describe('ADMIN_READONLY with ADMIN_MODE=production', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: { ...ADMIN_ENV, ADMIN_READONLY: 'true', ADMIN_MODE: 'production' } });
  });
  after(() => gw?.stop());

  it('offers no action and lists no socket, and still counts them', async (t) => {
    const { socket: admin, config } = await loggedIn(t, gw.url);
    assert.deepEqual(config, { supportedFeatures: ['AGGREGATED_EVENTS'] });
    const client = await workflowClient(t, gw.url);
    const stats = await statsWhere(admin, (s) => countOf(s, '/workflow') === 1);
    assert.equal(stats.clientsCount, 1);
    admin.emit('_disconnect', '/workflow', true, client.welcome.clientId);
    await statsWhere(admin, () => true);
    assert.ok(client.connected, 'read-only: the command is ignored');
    assert.ok(!admin.seen.some((m) => /^\["(all_sockets|socket_connected|room_joined)"/.test(m)), 'nothing per socket');
  });
});

describe('in a cluster', () => {
  const nodes = [];
  let redis;
  before(async () => {
    redis = await startRedis();
    const prefix = `adm${h.uid()}`;
    for (let i = 0; i < 2; i++) {
      nodes.push(await h.startGateway({ env: { ...ADMIN_ENV, REDIS_URL: redis.url, REDIS_PREFIX: prefix } }));
    }
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it("an admin on one node gets every node's server_stats, each with its own sockets", async (t) => {
    const [a, b] = nodes;
    const { socket: admin, stats: own } = await loggedIn(t, a.url);
    await workflowClient(t, b.url);
    await workflowClient(t, b.url);
    const fromB = await statsWhere(admin, (s) => s.pid === b.child.pid && countOf(s, '/workflow') === 2);
    assert.notEqual(fromB.serverId, own.serverId);
    const fromA = await statsWhere(admin, (s) => s.pid === a.child.pid);
    assert.equal(countOf(fromA, '/workflow'), 0, "node A counts its own sockets only");
  });
});

// What /admin may send (src/admin/wire.rs, listeners.rs): one socket's entry, a whole
// `all_sockets`, and over any stretch of time an admin socket's budget (its capacity, then so
// many bytes a second).
const SOCKET_MAX_BYTES = 8 * 1024;
const LIST_MAX_BYTES = 4 * 1024 * 1024;
const BUDGET_CAPACITY = LIST_MAX_BYTES + 1024 * 1024;
const BUDGET_RATE = 512 * 1024;
const MORE_ROOMS = '… more rooms, not listed';

/** Filter values as wide as the hub takes (64 bytes as stored, `rooms::MAX_FILTER_VALUE_BYTES`). */
const widestValues = (seed, n) => Array.from({ length: n }, (_, i) => `${seed}${i}`.padEnd(64, '-'));

/** The widest subscriptions the hub allows one connection (16 combinations each on two
 * channels, 4 on a third: 36 rooms of about 200 bytes, near the connection's room-name budget);
 * `round` picks other values, so subscribing again leaves and joins. */
const widestSubscriptions = (round) => [
  ['executions', { workflow_ids: widestValues(`w${round}`, 2), execution_ids: widestValues(`e${round}`, 2), statuses: widestValues(`s${round}`, 4) }],
  ['approvals', { workflow_ids: widestValues(`w${round}`, 2), execution_ids: widestValues(`e${round}`, 2), statuses: widestValues(`s${round}`, 4) }],
  [`executions:${'x'.repeat(60)}`, { workflow_ids: widestValues(`w${round}`, 2), statuses: widestValues(`s${round}`, 2) }],
];

/** A plain WebSocket client of a fresh tenant, subscribed with the widest filters. */
async function widestHub(t, url) {
  const hub = await openHub(t, url, h.mintToken({ sub: `u-${h.uid()}`, tenantId: `wide-${h.uid()}` }));
  await Promise.all(widestSubscriptions(0).map(([channel, filters]) => hub.subscribe(channel, filters)));
  return hub;
}

/** Counts the bytes of every message the admin socket receives from now on (`socket.bytes`). */
function countBytes(socket) {
  socket.bytes = 0;
  socket.io.engine.on('packet', (packet) => {
    if (packet.type === 'message') socket.bytes += Buffer.byteLength(packet.data);
  });
}

/**
 * What the UI makes of what an admin socket (of `openAdmin`) received and receives: the sockets
 * it knows, by namespace and id, from the last `all_sockets` and the events after it
 * (`socket.view`).
 */
function followLikeTheUi(socket) {
  socket.view = new Set();
  const apply = (event, args) => {
    const view = socket.view;
    if (event === 'all_sockets') {
      view.clear();
      for (const s of args[0]) view.add(`${s.nsp} ${s.id}`);
    } else if (event === 'socket_connected') {
      view.add(`${args[0].nsp} ${args[0].id}`);
    } else if (event === 'socket_disconnected') {
      view.delete(`${args[0]} ${args[1]}`);
    }
  };
  for (const [event, args] of socket.log) apply(event, args);
  socket.onAny((event, ...args) => apply(event, args));
}

describe('a large population of clients with the widest filters', () => {
  let gw;
  let browser;
  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_BIN`);
    gw = await h.startGateway({ env: ADMIN_ENV });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('gets an all_sockets within its byte bounds, a churn within the admin\'s budget, and the UI loads', async (t) => {
    const hubs = [];
    for (let i = 0; i < 60; i += 20) hubs.push(...await Promise.all(Array.from({ length: 20 }, () => widestHub(t, gw.url))));

    const { socket: admin, sockets } = await loggedIn(t, gw.url);
    const listBytes = Buffer.byteLength(JSON.stringify(sockets));
    t.diagnostic(`all_sockets: ${sockets.length} sockets, ${listBytes} bytes`);
    assert.ok(listBytes <= LIST_MAX_BYTES, `all_sockets is ${listBytes} bytes`);
    const listed = sockets.filter((s) => s.nsp === PLAIN_WS);
    assert.equal(listed.length, hubs.length, 'every client fits once its entry is bounded');
    for (const s of listed) {
      assert.ok(Buffer.byteLength(JSON.stringify(s)) <= SOCKET_MAX_BYTES, `${JSON.stringify(s).length} bytes`);
      assert.equal(s.rooms.at(-1), MORE_ROOMS, 'rooms past the bounds are said to be left out');
    }

    // Churn: subscribing again with other values leaves and joins 64 rooms each time; some
    // clients leave and others come meanwhile. The admin is sent at most its budget.
    countBytes(admin);
    followLikeTheUi(admin);
    const started = performance.now();
    const newcomers = [];
    for (let round = 1; round <= 8; round++) {
      await Promise.all(hubs.map((hub) => {
        const [channel, filters] = widestSubscriptions(round)[round % 3];
        return hub.subscribe(channel, filters);
      }));
      if (round === 4) {
        for (const hub of hubs.splice(0, 5)) hub.close();
        newcomers.push(...await Promise.all(Array.from({ length: 5 }, () => widestHub(t, gw.url))));
      }
    }
    const churnBytes = admin.bytes;
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`churn: ${churnBytes} bytes to the admin in ${seconds.toFixed(1)} s`);
    // Sends are charged when queued, so allow what was queued a few seconds before counting began.
    assert.ok(churnBytes <= BUDGET_CAPACITY + BUDGET_RATE * (seconds + 5), `${churnBytes} bytes in ${seconds.toFixed(1)} s`);
    assert.ok(admin.connected, 'the admin stays connected');

    const dropped = h.parseMetrics(await h.scrape(gw.url));
    t.diagnostic(`dropped: ${['queue_full', 'budget', 'socket_full'].map((r) => `${r} ${h.sumOf(dropped, 'admin_events_dropped_total', { reason: r })}`).join(', ')}`);

    // Whatever it missed, the admin's view comes back to the node's sockets: the clients that
    // left are gone from it, the newcomers are in it.
    const { sockets: fresh } = await loggedIn(t, gw.url);
    const ids = (list) => list.filter((s) => s.nsp === PLAIN_WS).map((s) => s.id).sort();
    assert.equal(ids(fresh).length, hubs.length + newcomers.length);
    const followed = () => [...admin.view].filter((s) => s.startsWith(`${PLAIN_WS} `)).map((s) => s.slice(PLAIN_WS.length + 1)).sort();
    await h.eventually(
      () => JSON.stringify(followed()) === JSON.stringify(ids(fresh)),
      'the followed view has every client that is there and none that left',
      15000,
    );

    // The UI takes the list and shows the clients.
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    t.after(() => page.close());
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${gw.url}/admin/`);
    await page.getByLabel('Server URL').fill(gw.url);
    await page.getByLabel('Username').fill(USERNAME);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('.v-dialog--active').waitFor({ state: 'detached', timeout: h.TIMEOUT });
    await page.goto(`${gw.url}/admin/#/sockets/`);
    await page.getByText(`of ${ids(fresh).length}`).waitFor({ timeout: 10000 });
    // A socket's details: its rooms, cut names ending with a hash, then (a page on) the room
    // saying more are not listed.
    await page.getByRole('row').nth(1).click();
    await page.getByText(/ executions \(.*#[0-9a-f]{8}$/).first().waitFor({ timeout: h.TIMEOUT });
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText(MORE_ROOMS).waitFor({ timeout: h.TIMEOUT });
    await shot(page, 'admin-many-rooms');
    assert.deepEqual(errors, [], 'no error in the page');
  });
});

/**
 * One login attempt on /admin from `localAddress`, over WebSocket: `{outcome, message, ms}`, the
 * outcome `ok`, `refused` (with the connect_error's message) or `timeout` (no answer within
 * `timeout` ms: socket.io-client's own timeout covers the transport, not the namespace's answer).
 */
function attempt(url, auth, localAddress, timeout = 15000) {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = io(`${url}/admin`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout, auth, localAddress });
    const done = (outcome, message) => {
      clearTimeout(timer);
      socket.disconnect();
      resolve({ outcome, message, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done('timeout'), timeout);
    socket.on('connect', () => done('ok'));
    socket.on('connect_error', (error) => done(error.message === 'timeout' ? 'timeout' : 'refused', error.message));
  });
}

/** Logs in as a person would: after a refusal that says when to retry, retries then. */
async function loginRetrying(url, auth, localAddress, tries = 4) {
  let result;
  for (let i = 0; i < tries; i++) {
    result = await attempt(url, auth, localAddress);
    const retry = /retry in (\d+) s/.exec(result.message ?? '');
    if (result.outcome !== 'refused' || !retry) return result;
    await sleep(Number(retry[1]) * 1000);
  }
  return result;
}

describe('a password flood from many addresses', () => {
  let gw;
  before(async () => {
    // A costlier hash than the other tests', so the checks take time as real ones do.
    gw = await h.startGateway({ env: { ...ADMIN_ENV, ADMIN_PASSWORD_HASH: hashPassword(PASSWORD, 8) } });
  });
  after(() => gw?.stop());

  it('is answered at once, and the operator logs in meanwhile with a session, from a known address, and then from another', async (t) => {
    // The operator logged in from 127.0.0.1 earlier: a session, and a known address.
    const { session } = await loggedIn(t, gw.url);
    const started = performance.now();
    const wrong = { username: USERNAME, password: 'wrong' };
    const flood = [];
    for (let a = 0; a < 60; a++) {
      for (let i = 0; i < 10; i++) flood.push(attempt(gw.url, { ...wrong, password: `wrong-${i}` }, `127.0.0.${10 + a}`));
    }
    // Once the first answers come, the flood's other attempts are all in: the checks are
    // saturated.
    const first = await Promise.race([
      Promise.any(flood.map((p) => p.then((r) => (r.outcome === 'refused' ? r : Promise.reject())))),
      sleep(15000).then(() => assert.fail('no attempt of the flood was answered')),
    ]);
    t.diagnostic(`first answer after ${first.ms.toFixed(0)} ms: ${first.message}`);

    // Meanwhile a session logs in without a check, and the known address waits its turn (behind
    // a bounded queue) instead of being refused.
    const withSession = await attempt(gw.url, { sessionId: session }, '127.0.0.250');
    assert.equal(withSession.outcome, 'ok', JSON.stringify(withSession));
    t.diagnostic(`session login during the flood: ${withSession.ms.toFixed(0)} ms`);
    const known = await attempt(gw.url, { username: USERNAME, password: PASSWORD }, '127.0.0.1');
    assert.equal(known.outcome, 'ok', JSON.stringify(known));
    t.diagnostic(`password login from the known address during the flood: ${known.ms.toFixed(0)} ms`);

    const results = await Promise.all(flood);
    const tally = {};
    for (const r of results) {
      const kind = r.outcome === 'refused' ? r.message.replace(/\d+/g, 'N') : r.outcome;
      tally[kind] = (tally[kind] ?? 0) + 1;
    }
    t.diagnostic(`flood: ${JSON.stringify(tally)}, answered in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(
      // Refused by the node's budget or, for an address whose own attempts came in a rush, by its
      // per-address limit: which of the two says no first depends on when each attempt lands.
      Object.keys(tally).filter(
        (k) =>
          ![
            'invalid credentials',
            'too many login attempts on this node: retry in N s',
            'too many login attempts from this address: retry in N s',
          ].includes(k),
      ),
      [],
      'every attempt is answered: wrong, or refused at once with when to retry',
    );

    // From an address never seen, the operator gets in, retrying when told.
    const fresh = await loginRetrying(gw.url, { username: USERNAME, password: PASSWORD }, '127.0.0.251');
    assert.equal(fresh.outcome, 'ok', JSON.stringify(fresh));

    // The node checked a bounded number of passwords: its budget, refilled one every 2 s, and
    // the operator's own.
    const seconds = (performance.now() - started) / 1000;
    const checks = await h.metric(gw.url, 'admin_password_checks_total');
    t.diagnostic(`${checks} password checks in ${seconds.toFixed(1)} s`);
    assert.ok(checks <= 30 + Math.ceil(seconds / 2) + 3, `${checks} checks`);
    assert.ok(await h.metric(gw.url, 'admin_logins_total', { outcome: 'busy' }) > 0);
  });
});

/** Saves a screenshot of the whole page to tests/js/output/NAME.png, once its transitions and
 * charts have settled. */
async function shot(page, name) {
  await page.waitForTimeout(800);
  await page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
}

/** Resolves once no element matches `locator`; rejects after the suite's timeout. */
const eventuallyGone = (locator) => h.eventually(async () => (await locator.count()) === 0, `${locator} gone`);

describe('the official UI in headless Chromium', () => {
  let gw;
  let browser;
  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_BIN`);
    mkdirSync(OUTPUT, { recursive: true });
    gw = await h.startGateway({ env: ADMIN_ENV });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('logs in, shows the dashboard, the sockets with their public ids and details, and disconnects one; no request leaves the gateway', async (t) => {
    const tenantId = `ui-${h.uid()}`;
    const alice = await workflowClient(t, gw.url, { tenantId });
    const bob = await workflowClient(t, gw.url, { tenantId, transports: ['polling'] });
    await h.subscribe(alice, { type: 'execution', resourceId: 'e42' });

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    t.after(() => page.close());
    const elsewhere = [];
    const errors = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(gw.url) && !request.url().startsWith('data:')) elsewhere.push(request.url());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    // Failed requests are judged by their answers below; the console only repeats them.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
    });
    // Engine.IO sessions the page closed itself while polling (the refused login's when the
    // operator tries again): a close packet ("1") posted.
    const closedByPage = new Set();
    const sessionOf = (url) => new URL(url).searchParams.get('sid');
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.postData()?.split('\x1e').includes('1')) closedByPage.add(sessionOf(request.url()));
    });
    page.on('response', async (response) => {
      if (response.status() < 400) return;
      const request = response.request();
      const body = await response.text().catch(() => '');
      // Engine.IO's own races when a polling client closes its session: the close packet can
      // arrive after its aborted poll already ended the session, and the poll the client sent
      // just before closing can arrive after the close. Both are answered "Session ID unknown",
      // by Node's engine.io too (measured: the same page against socket.io, both cores busy).
      const closing = request.method() === 'POST' ? request.postData() === '1' : closedByPage.has(sessionOf(request.url()));
      if (closing && body.includes('Session ID unknown')) return;
      errors.push(`${response.status()} ${request.method()} ${response.url()}: ${body}`);
    });

    await page.goto(`${gw.url}/admin/`);
    await page.getByLabel('Server URL').fill(gw.url);
    await page.getByLabel('Username').fill(USERNAME);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByText('Invalid credentials').waitFor({ timeout: h.TIMEOUT });
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('.v-dialog--active').waitFor({ state: 'detached', timeout: h.TIMEOUT });
    // The dashboard counts from server_stats: /workflow has the two clients.
    await page.getByRole('row').filter({ hasText: '/workflow' }).filter({ hasText: '2' }).waitFor({ timeout: 8000 });
    await shot(page, 'admin-dashboard');

    await page.goto(`${gw.url}/admin/#/servers/`);
    const stats = await page.getByRole('row').filter({ hasText: String(gw.child.pid) }).first();
    await stats.waitFor({ timeout: 8000 });
    await shot(page, 'admin-servers');

    await page.goto(`${gw.url}/admin/#/sockets/`);
    for (const client of [alice, bob]) {
      await page.getByRole('row').filter({ hasText: client.welcome.clientId }).waitFor({ timeout: h.TIMEOUT });
    }
    const body = await page.locator('body').innerText();
    for (const client of [alice, bob]) assert.ok(!body.includes(client.id), 'the session id is not shown');
    await shot(page, 'admin-sockets');

    await page.getByRole('row').filter({ hasText: alice.welcome.clientId }).click();
    await page.getByText(`${tenantId} / execution:e42`).first().waitFor({ timeout: h.TIMEOUT });
    await shot(page, 'admin-socket-details');

    // The row's last button disconnects the socket (the row's own click then opens its details).
    await page.goto(`${gw.url}/admin/#/sockets/`);
    await page.getByRole('row').filter({ hasText: bob.welcome.clientId }).getByRole('button').last().click();
    assert.equal(await h.waitFor(bob, 'disconnect'), 'io server disconnect', 'the UI disconnected the socket');
    await page.goto(`${gw.url}/admin/#/sockets/`);
    await page.getByRole('row').filter({ hasText: alice.welcome.clientId }).waitFor({ timeout: h.TIMEOUT });
    await eventuallyGone(page.getByRole('row').filter({ hasText: bob.welcome.clientId }));
    await shot(page, 'admin-after-disconnect');
    assert.ok(alice.connected);

    // A reload logs in again with the login session the UI kept, without the password.
    await page.reload();
    await page.getByRole('row').filter({ hasText: alice.welcome.clientId }).waitFor({ timeout: h.TIMEOUT });
    assert.equal(await page.locator('.v-dialog--active').count(), 0, 'no login form after a reload');

    assert.deepEqual(elsewhere, [], 'every request stays on the gateway');
    assert.deepEqual(errors, [], 'no error in the page');
  });
});

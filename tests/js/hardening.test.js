// What a gateway exposed to the internet must withstand, tried the way an attacker would: taking
// over another user's session, consumers that stop reading, connections that send nothing or half
// a request, floods of handshakes, refused clients that linger, and a refresh that drops roles.
// Raw TCP, raw Engine.IO over `ws` and plain HTTP where the attack needs them; socket.io-client
// for the victims.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import * as h from './helpers.js';

/** A client speaking Engine.IO v4 and Socket.IO by hand over one WebSocket (`ws` options allowed). */
class RawClient {
  constructor(url, { query = 'EIO=4&transport=websocket', ...options } = {}) {
    this.frames = [];
    this.waiters = [];
    this.answerPings = true;
    this.ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?${query}`, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      const text = data.toString();
      if (text === '2' && this.answerPings) this.ws.send('3');
      const waiter = this.waiters.find((w) => w.match(text));
      if (waiter) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(text);
      } else {
        this.frames.push(text);
      }
    });
  }

  /** The first frame (received or to come) for which `match(text)` holds. */
  next(match, what, timeoutMs = h.TIMEOUT) {
    const index = this.frames.findIndex(match);
    if (index >= 0) return Promise.resolve(this.frames.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no frame ${what} within ${timeoutMs} ms (got ${this.frames.map((f) => f.slice(0, 60)).join(' | ')})`));
      }, timeoutMs);
    });
  }

  /** Connects namespace `ns` with `auth`; resolves to the namespace's first event frame. */
  async join(ns, auth, welcome) {
    await this.opened;
    await this.next((f) => f.startsWith('0{'), 'open');
    this.ws.send(`40${ns},${JSON.stringify(auth)}`);
    await this.next((f) => f.startsWith(`40${ns},`), 'CONNECT');
    return this.next((f) => f.startsWith(`42${ns},["${welcome}"`), welcome);
  }

  emit(ns, event, data) {
    this.ws.send(`42${ns},${JSON.stringify([event, data])}`);
  }

  /** Stops reading from the TCP socket: the kernel buffers fill and the server's writes block. */
  stopReading() {
    this.ws._socket.pause();
  }

  close() {
    this.ws.terminate();
  }
}

/** Sends an HTTP request by hand from `localAddress`; resolves to `{ status, body }`. */
function httpFrom(url, path, { method = 'GET', body, localAddress } = {}) {
  return fetchLike(new URL(url + path), method, body, localAddress);
}

async function fetchLike(target, method, body, localAddress) {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method, localAddress, headers: body ? { 'Content-Type': 'text/plain;charset=UTF-8' } : {} },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.setTimeout(h.TIMEOUT, () => req.destroy(new Error('timed out')));
    if (body) req.write(body);
    req.end();
  });
}

/** A /workflow update carrying `bytes` of text. */
const bigUpdate = (tenantId, i, bytes) => h.event('execution.progress', tenantId, { executionId: 'e1', n: i, blob: 'x'.repeat(bytes) });

// ---------------------------------------------------------------------------------------------

describe('session takeover through a leaked id', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('shows other clients an opaque id that opens nothing, and refuses the real session id from another address', async (t) => {
    const tenantId = `takeover-${h.uid()}`;
    const victim = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', transports: ['polling'], token: h.mintToken({ sub: 'alice', tenantId }) });
    const attacker = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken({ sub: 'mallory', tenantId }) });
    for (const s of [victim, attacker]) assert.deepEqual(await h.request(s, 'join_room', { room: 'global.general' }), { room: 'global.general', timestamp: (await h.waitFor(s, 'room_joined')).timestamp });

    victim.emit('send_message', { event: 'chat', payload: { text: 'hi' }, rooms: ['global.general'] });
    const seen = (await h.waitFor(attacker, 'chat')).from.socketId;
    h.assertPublicId(seen, victim);
    assert.equal(seen, victim.welcome.socketId);

    // What the attacker saw opens nothing: no upgrade, no post, no poll.
    const upgrade = new RawClient(gw.url, { query: `EIO=4&transport=websocket&sid=${seen}` });
    await assert.rejects(upgrade.opened, (e) => e.status === 400);
    for (const method of ['POST', 'GET']) {
      const answer = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${seen}`, { method, body: method === 'POST' ? '42/ws,["send_message",{}]' : undefined });
      assert.equal(answer.status, 400, `${method} with the public id`);
    }

    // Even the real Engine.IO id (socket.io-client shows it as socket.id) is refused from
    // another address, answered as an unknown session.
    const sid = victim.io.engine.id;
    const before = await h.metric(gw.url, 'session_address_mismatch_total');
    const hijack = new RawClient(gw.url, { query: `EIO=4&transport=websocket&sid=${sid}`, localAddress: '127.0.0.2' });
    await assert.rejects(hijack.opened, (e) => e.status === 400);
    const post = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '42/ws,["send_message",{"event":"chat","payload":{"text":"as alice"},"rooms":["global.general"]}]', localAddress: '127.0.0.2' });
    assert.deepEqual([post.status, JSON.parse(post.body)], [400, { code: 1, message: 'Session ID unknown' }]);
    const poll = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { localAddress: '127.0.0.2' });
    assert.equal(poll.status, 400);
    assert.equal(await h.metric(gw.url, 'session_address_mismatch_total'), before + 3);

    // The victim kept its session, on polling, and hears from others as before.
    attacker.emit('send_message', { event: 'chat', payload: { text: 'still there?' }, rooms: ['global.general'] });
    assert.equal((await h.waitFor(victim, 'chat')).text, 'still there?');
    assert.equal(victim.io.engine.transport.name, 'polling');
    assert.equal(victim.connected, true);
    assert.deepEqual(h.pending(attacker, 'chat'), [], 'the post as alice was not relayed');
  });
});

// ---------------------------------------------------------------------------------------------

describe('consumers that stop reading', () => {
  it('are cut at the write deadline and freed; the reading clients get every event', async (t) => {
    // A long heartbeat and a large queue: here the write deadline alone must end it.
    const gw = await h.startGateway({ env: { WS_WRITE_TIMEOUT: '1000', WS_PING_INTERVAL: '20000', WS_PING_TIMEOUT: '20000', API_MAX_BODY_SIZE: '10000000' } });
    t.after(() => gw.stop());
    const tenantId = `slow-${h.uid()}`;
    const baseline = await h.metric(gw.url, 'tcp_connections');
    const reader = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }) });
    await h.subscribe(reader, { type: 'execution' });
    await stalledSubscriber(t, gw, tenantId);
    await flood(gw, tenantId, 120);
    // Two watches see the same stall, and the first to see it cuts: the writer blocked for
    // WS_WRITE_TIMEOUT (write_timeout), or, when a publish comes after the writer has written
    // nothing for as long, the session's backlog (slow_consumer). Which one depends on when the
    // flood's last call lands, so either counts; the byte budget (4 x 10 MB) is never reached.
    await cutAndFreed(gw, ['write_timeout', 'slow_consumer'], baseline + 1);
    assert.equal((await h.api(gw.url, '/api/v1/stats?namespace=/workflow')).body.connections, 1, 'the reader stays');
    for (let i = 0; i < 120; i++) {
      const update = await h.waitFor(reader, 'update', 10_000);
      assert.equal(update.payload.n, i, 'in order, none missing');
    }
  });

  /** A raw /workflow client of `tenantId`, subscribed to its executions, that then stops reading. */
  async function stalledSubscriber(t, gw, tenantId) {
    const stalled = new RawClient(gw.url);
    t.after(() => stalled.close());
    await stalled.join('/workflow', { token: h.mintToken({ sub: 'stalled', tenantId }) }, 'connected');
    stalled.emit('/workflow', 'subscribe', { type: 'execution' });
    await stalled.next((f) => f.includes('"subscription_confirmed"'), 'subscription_confirmed');
    stalled.stopReading();
    return stalled;
  }

  /** Publishes `count` updates of 100 kB for `tenantId`, 20 per call. */
  async function flood(gw, tenantId, count) {
    for (let i = 0; i < count; i += 20) {
      await h.publishOk(gw.url, Array.from({ length: 20 }, (_, j) => bigUpdate(tenantId, i + j, 100_000)));
    }
  }

  /**
   * Waits until the gateway counts a cut for one of `reasons`, then until the stalled connection is
   * closed: the writer that was blocked on it let go of it (and of the queue it held), which the
   * open-connection gauge shows. Without the cut, a writer blocked on a peer that never reads
   * keeps it open for ever (and the session's end waits for that writer).
   */
  async function cutAndFreed(gw, reasons, baseline) {
    const cuts = async () => {
      let total = 0;
      for (const reason of reasons) total += await h.metric(gw.url, 'connections_cut_total', { reason });
      return total;
    };
    await h.eventually(async () => (await cuts()) >= 1, `a cut (${reasons.join(' or ')})`, 8000);
    await h.eventually(async () => (await h.metric(gw.url, 'tcp_connections')) <= baseline + 1, 'the connection freed', 8000);
  }

  it('whose queue fills are ended at once, and their connection is cut and freed', async (t) => {
    // A long write deadline and heartbeat: here the full queue alone must end it.
    const gw = await h.startGateway({ env: { WS_MAX_BUFFER_SIZE: '8', WS_WRITE_TIMEOUT: '60000', WS_PING_INTERVAL: '20000', WS_PING_TIMEOUT: '20000', API_MAX_BODY_SIZE: '10000000' } });
    t.after(() => gw.stop());
    const tenantId = `full-${h.uid()}`;
    const baseline = await h.metric(gw.url, 'tcp_connections');
    await stalledSubscriber(t, gw, tenantId);
    assert.ok((await h.metric(gw.url, 'tcp_connections')) > baseline, 'the stalled connection is open');
    await flood(gw, tenantId, 200);
    assert.ok((await h.metric(gw.url, 'deliveries_dropped_total')) > 0, 'the drops are counted');
    await cutAndFreed(gw, ['slow_consumer'], baseline);
    assert.equal((await h.api(gw.url, '/api/v1/stats?namespace=/workflow')).body.connections, 0);
  });

});

// ---------------------------------------------------------------------------------------------

describe('connections that send nothing, half a request, or too much', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: { HTTP_HEADER_TIMEOUT: '500', MAX_CONNECTIONS_PER_IP: '5' } });
  });
  after(() => gw.stop());

  /** A raw TCP connection from `localAddress`; resolves `closed` with the ms it stayed open. */
  function rawTcp(localAddress, send) {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port: gw.port, localAddress });
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - started, received })));
    socket.once('connect', () => send && socket.write(send));
    return { socket, closed };
  }

  it('closes half-sent requests and silent connections at the header deadline', async () => {
    const slow = ['GET / HT', 'GET /healthz HTTP/1.1\r\nHost: x\r\n', ''].map((send) => rawTcp('127.0.0.3', send));
    for (const { closed } of slow) {
      const { ms } = await closed;
      assert.ok(ms >= 400 && ms < 3000, `closed after ${ms} ms`);
    }
  });

  it('closes an idle keep-alive connection after the same deadline', async () => {
    const conn = rawTcp('127.0.0.4', 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { ms, received } = await conn.closed;
    assert.match(received, /^HTTP\/1\.1 200/);
    assert.ok(ms >= 400 && ms < 3000, `closed after ${ms} ms`);
  });

  it('caps the connections one address holds, counts the refusals, and serves other addresses', async () => {
    const held = Array.from({ length: 5 }, () => rawTcp('127.0.0.5', ''));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = await h.metric(gw.url, 'connections_refused_per_ip_total');
    const sixth = rawTcp('127.0.0.5', 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { ms, received } = await sixth.closed;
    assert.equal(received, '', 'closed without an answer');
    assert.ok(ms < 300, `closed after ${ms} ms`);
    assert.equal(await h.metric(gw.url, 'connections_refused_per_ip_total'), before + 1);
    assert.equal((await httpFrom(gw.url, '/healthz', { localAddress: '127.0.0.6' })).status, 200);
    for (const { socket } of held) socket.destroy();
  });

  it('refuses a request head over HTTP_MAX_HEADER_SIZE with 431', async () => {
    const conn = rawTcp('127.0.0.7', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(300_000)}\r\n\r\n`);
    const { received } = await conn.closed;
    assert.match(received, /^HTTP\/1\.1 431/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('sessions bound to the address that opened them', () => {
  it('from their handshake, before they join any namespace', async (t) => {
    const gw = await h.startGateway();
    t.after(() => gw.stop());
    const open = await httpFrom(gw.url, '/socket.io/?EIO=4&transport=polling');
    const { sid } = JSON.parse(open.body.slice(1));
    const before = await h.metric(gw.url, 'session_address_mismatch_total');
    // From another address: no poll, and no CONNECT posted into it (which would join the
    // victim's session to a namespace that takes anonymous clients).
    const poll = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { localAddress: '127.0.0.2' });
    assert.equal(poll.status, 400);
    const post = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40/realtime,{}', localAddress: '127.0.0.2' });
    assert.deepEqual([post.status, JSON.parse(post.body)], [400, { code: 1, message: 'Session ID unknown' }]);
    const upgrade = new RawClient(gw.url, { query: `EIO=4&transport=websocket&sid=${sid}`, localAddress: '127.0.0.2' });
    await assert.rejects(upgrade.opened, (e) => e.status === 400);
    assert.equal(await h.metric(gw.url, 'session_address_mismatch_total'), before + 3);
    // Its own client still uses it.
    const own = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40/realtime,{}' });
    assert.equal(own.status, 200);
    const connected = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.match(connected.body, /(^|\x1e)40\/realtime,/);
  });

  it("whatever namespace they are in, the admin view's included", async (t) => {
    const hash = spawnSync(h.GATEWAY_BIN, ['hash-password', '--cost', '4'], { input: 'pw\n', encoding: 'utf8' }).stdout.trim();
    const gw = await h.startGateway({ env: { ADMIN_USERNAME: 'op', ADMIN_PASSWORD_HASH: hash } });
    t.after(() => gw.stop());
    const admin = await h.connectFor(t, gw.url, { namespace: '/admin', welcome: 'config', transports: ['polling'], auth: { username: 'op', password: 'pw' } });
    const sid = admin.io.engine.id;
    const poll = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { localAddress: '127.0.0.2' });
    assert.equal(poll.status, 400, 'the operator\'s session polled from another address');
    const post = await httpFrom(gw.url, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '42/admin,["_disconnect","x"]', localAddress: '127.0.0.2' });
    assert.equal(post.status, 400);
    assert.ok(admin.connected);
  });
});

describe('floods of new sessions', () => {
  it('are refused per client address past WS_HANDSHAKE_RATE_LIMIT, with 429 and Retry-After', async (t) => {
    const gw = await h.startGateway({ env: { TRUSTED_PROXIES: '127.0.0.1', WS_HANDSHAKE_RATE_LIMIT: '5/1m' } });
    t.after(() => gw.stop());
    const handshake = (ip) => fetch(`${gw.url}/socket.io/?EIO=4&transport=polling`, { headers: { 'X-Forwarded-For': ip }, signal: AbortSignal.timeout(h.TIMEOUT) });
    for (let i = 0; i < 5; i++) assert.equal((await handshake('10.9.9.9')).status, 200);
    const refused = await handshake('10.9.9.9');
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.deepEqual(await refused.json(), { code: 4, message: 'Too many connections from this address' });
    assert.equal((await handshake('10.9.9.8')).status, 200, 'another address is not affected');
    assert.equal(await h.metric(gw.url, 'handshakes_throttled_total'), 1);
    const socket = h.openFor(t, gw.url, { token: h.mintToken(), transports: ['polling'], extraHeaders: { 'X-Forwarded-For': '10.9.9.9' } });
    assert.ok(await h.waitFor(socket, 'connect_error'), 'socket.io-client sees a connect_error');
  });

  it('are charged only for sessions that never authenticate: a storm of real users through one address gets in', async (t) => {
    const gw = await h.startGateway({ env: { WS_HANDSHAKE_RATE_LIMIT: '20/1m' } });
    t.after(() => gw.stop());
    const tenantId = `storm-${h.uid()}`;
    // 200 users behind one NAT reconnect, ten at a time: ten times the limit, all admitted.
    const sockets = [];
    t.after(() => sockets.forEach((s) => s.disconnect()));
    for (let wave = 0; wave < 20; wave++) {
      const transports = wave % 2 ? ['polling', 'websocket'] : ['websocket'];
      sockets.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => h.connectClient(gw.url, { token: h.mintToken({ tenantId, sub: `u${wave}-${i}` }), transports })))));
    }
    assert.equal(sockets.filter((s) => s.connected).length, 200);
    assert.equal(await h.metric(gw.url, 'handshakes_throttled_total'), 0);
    // Sessions refused at auth keep their charge: the budget runs out.
    for (let i = 0; i < 20; i++) {
      const refused = await h.connectClient(gw.url, { token: 'not-a-token', welcome: null });
      await h.waitFor(refused, 'error');
      refused.disconnect();
    }
    const flood = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(flood.status, 429);
  });
});

// ---------------------------------------------------------------------------------------------

describe('connections refused at auth', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('are told why, then closed even when they keep answering pings (WebSocket)', async (t) => {
    const raw = new RawClient(gw.url);
    t.after(() => raw.close());
    const error = await raw.join('/workflow', { token: 'not-a-token' }, 'error');
    assert.match(error, /"type":"auth"/);
    const started = Date.now();
    assert.ok(await Promise.race([raw.closed, new Promise((r) => setTimeout(() => r(false), 5000))]) !== false, 'closed by the server');
    assert.ok(Date.now() - started < 4000);
    assert.ok((await h.metric(gw.url, 'connections_cut_total', { reason: 'refused' })) >= 1);
  });

  it('are told why, then their polling session is ended', async () => {
    const open = await httpFrom(gw.url, '/socket.io/?EIO=4&transport=polling');
    const { sid } = JSON.parse(open.body.slice(1));
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await httpFrom(gw.url, path, { method: 'POST', body: '40/workflow,{"token":"bad"}' })).status, 200);
    // The error may come in the first poll or a later one (after the CONNECT, or a ping).
    const told = /"error",\{"message":"Invalid authentication token","type":"auth"/;
    let received = '';
    await h.eventually(async () => {
      const poll = await httpFrom(gw.url, path);
      received += poll.body;
      return told.test(received) || poll.status !== 200;
    }, 'a poll with the error', 5000);
    assert.match(received, told);
    await h.eventually(async () => {
      const poll = await httpFrom(gw.url, path);
      // The session's close packet, then no session at all.
      return poll.status === 400 || poll.body === '1';
    }, 'the session ended', 5000);
  });
});

// ---------------------------------------------------------------------------------------------

describe('token refresh', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('with fewer roles leaves the rooms the old roles gave, and says which', async (t) => {
    const tenantId = `refresh-${h.uid()}`;
    const socket = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken({ sub: 'boss', tenantId, roles: ['platform_admin', 'admin'] }) });
    assert.ok(socket.welcome.rooms.includes('platform.security'), JSON.stringify(socket.welcome.rooms));
    const reply = await h.request(socket, 'auth:refresh', { token: h.mintToken({ sub: 'boss', tenantId, roles: [] }) });
    assert.deepEqual(reply.roomsLeft, ['performance.dashboard', 'platform.admins', 'platform.health', 'platform.security', `tenant.${tenantId}.admins`].filter((r) => socket.welcome.rooms.includes(r)));
    await h.publishOk(gw.url, [
      h.event('platform.security.alert', tenantId, { n: 1 }),
      h.event('tenant.admin.audit', tenantId, { n: 2 }),
      h.event('tenant.data.update', tenantId, { n: 3 }),
    ]);
    assert.equal((await h.waitFor(socket, 'tenant.data.update')).n, 3);
    assert.deepEqual(h.pending(socket, 'platform.security.alert'), [], 'no platform alert after losing the role');
    assert.deepEqual(h.pending(socket, 'tenant.admin.audit'), [], 'no admin event after losing the role');
  });
});

// ---------------------------------------------------------------------------------------------

describe('binary attachments', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('are refused with a clear error rather than relayed as placeholders', async (t) => {
    const tenantId = `bin-${h.uid()}`;
    const sender = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken({ sub: 'a', tenantId }) });
    const receiver = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken({ sub: 'b', tenantId }) });
    for (const s of [sender, receiver]) await h.request(s, 'join_room', { room: 'global.general' });
    const ack = await h.request(sender, 'send_message', { event: 'file', payload: { blob: Buffer.from([1, 2, 3]) }, rooms: ['global.general'] });
    assert.equal(ack.error.type, 'validation');
    assert.match(ack.error.message, /binary attachments are not supported/);
    sender.emit('send_message', { event: 'file', payload: { text: 'barrier' }, rooms: ['global.general'] });
    const got = await h.waitFor(receiver, 'file');
    assert.equal(got.text, 'barrier', `the binary message was relayed first: ${JSON.stringify(got)}`);
    assert.deepEqual(h.pending(receiver, 'file'), []);
  });
});

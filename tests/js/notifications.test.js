// Notifications on the main namespace `/` (seed 003, internal mode): the seed's client snippet
// and request body unchanged, default channels, channel:join / channel:leave and their access
// rules, notifications to a user (every tab on `/`, and `user.notification` on `/ws`), delivery
// acknowledgments, and tenant isolation, over every transport for the main flow.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import * as h from './helpers.js';

let gw;

before(async () => {
  gw = await h.startGateway();
});
after(async () => {
  await gw?.stop();
});

const NOTIFY = '/api/v1/notifications';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ADMIN_ROLES = ['admin', 'tenant_admin', 'platform_admin', 'super_admin'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh tenant id; a number, as the seed's `tenantId: 1`, when `numeric`. */
const newTenant = (numeric = false) => (numeric ? 100000 + Math.floor(Math.random() * 1e9) : `nt-${h.uid()}`);

/** A socket on `/` for `claims`, closed when `t` ends. `/` has no welcome event. */
const mainSocket = (t, claims, transports) =>
  h.connectFor(t, gw.url, { namespace: '/', welcome: null, token: h.mintToken(claims), ...(transports ? { transports } : {}) });

/** A socket on `/ws` for `claims`, past its `connection.confirmed`, closed when `t` ends. */
const wsSocket = (t, claims) => h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken(claims) });

/** The seed's body: `{recipient, content, tenantId, channel: 'websocket'}`. */
const toChannel = (tenantId, channel, content, extra = {}) => ({ recipient: { channel }, content, tenantId, channel: 'websocket', ...extra });
const toUser = (tenantId, userId, content, extra = {}) => ({ recipient: { userId }, content, tenantId, channel: 'websocket', ...extra });

const notify = (body, options) => h.api(gw.url, NOTIFY, body, options);

/** Sends a notification that must be accepted without acks: 202 `{id}`; returns the id. */
async function notifyOk(body) {
  const response = await notify(body);
  assert.equal(response.status, 202, `POST ${NOTIFY} ${JSON.stringify(body)} answered ${response.status} ${JSON.stringify(response.body)}`);
  assert.deepEqual(Object.keys(response.body), ['id']);
  assert.match(response.body.id, UUID);
  return response.body.id;
}

/** Sends a notification with acknowledgments; resolves to `{status, body, elapsed}`. */
async function notifyWithAcks(body, ackTimeoutMs) {
  const started = Date.now();
  const response = await notify({ ...body, enableAcknowledgments: true, ackTimeoutMs }, { timeoutMs: ackTimeoutMs * 3 + 5000 });
  return { ...response, elapsed: Date.now() - started };
}

/** The notification with this id, as `event` (default `notification:new`), within the default timeout. */
const receive = (socket, id, event = 'notification:new') => h.waitFor(socket, event, h.TIMEOUT, (n) => n?.id === id);

/** Asserts `n` is exactly the seed's `{id, subject, body, data, timestamp}` for `content`. */
function assertNotification(n, id, content, sentAt) {
  assert.deepEqual(Object.keys(n).sort(), ['body', 'data', 'id', 'subject', 'timestamp'], JSON.stringify(n));
  assert.equal(n.id, id);
  assert.equal(n.subject, content.subject);
  assert.equal(n.body, content.body);
  assert.deepEqual(n.data, content.data);
  const at = Date.parse(n.timestamp);
  assert.ok(Number.isFinite(at), `timestamp ${n.timestamp}`);
  if (sentAt !== undefined) assert.ok(at >= sentAt - 1000 && at <= Date.now() + 1000, `timestamp ${n.timestamp}`);
}

/**
 * Barrier: sends a notification to `userId` of `tenantId`, waits for it on every socket (as
 * `notification:new` on `/`, `user.notification` on `/ws`), then asserts nothing else reached
 * them before it. Every socket must belong to that user and tenant.
 */
async function assertNothingElse(sockets, tenantId, userId, what = 'an earlier notification') {
  const id = await notifyOk(toUser(tenantId, userId, { subject: 'barrier', body: 'barrier', data: {} }));
  for (const socket of sockets) {
    const event = socket.nsp === '/ws' ? 'user.notification' : 'notification:new';
    await receive(socket, id, event);
    assert.deepEqual(h.pending(socket, 'notification:new'), [], `${what} reached ${socket.nsp} socket of ${userId}@${tenantId}`);
    assert.deepEqual(h.pending(socket, 'user.notification'), [], `${what} reached ${socket.nsp} socket of ${userId}@${tenantId}`);
  }
}


/** The number of sockets in room `room` of `/` for `tenantId`, from GET /api/v1/stats. */
async function roomSize(room, tenantId) {
  const query = new URLSearchParams({ namespace: '/', room, tenantId: String(tenantId) });
  const { status, body } = await h.api(gw.url, `/api/v1/stats?${query}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.room.sockets;
}

// ---------------------------------------------------------------------------------------------

describe("the seed's client snippet and request bodies, unchanged", () => {
  it("io(url, {auth: {token}}), channel:join / channel:leave without acks, and the seed's bodies with tenantId 1 and channel 'websocket'", async (t) => {
    const token = h.mintToken({ sub: 'user-123', tenantId: 1 });
    const url = gw.url;
    const received = [];

    // ---- the seed's "Client-Side Channel Subscription", verbatim but for the log line ----
    const socket = io(url, {
      auth: { token: token },
    });
    socket.emit('channel:join', { channelName: 'alerts' });
    socket.emit('channel:join', { channelName: 'updates' });
    socket.on('notification:new', (notification) => {
      received.push(notification);
    });
    // ------------------------------------------------------------------------------------
    t.after(() => socket.disconnect());

    // The snippet's emits carry no ack; joining again with one is a harmless sync point.
    assert.deepEqual(await socket.timeout(h.TIMEOUT).emitWithAck('channel:join', { channelName: 'updates' }), { success: true, channel: 'updates' });
    const next = async (id) => {
      await h.until(() => received.some((n) => n.id === id), h.TIMEOUT, `notification ${id}`);
      return received.find((n) => n.id === id);
    };

    // "Example 2: Broadcast to Channel (Internal Mode)", exactly.
    const example2 = {
      recipient: {
        channel: 'alerts',
      },
      content: {
        subject: 'System Maintenance',
        body: 'System will be down for maintenance at 2 AM',
        data: {
          maintenanceWindow: '2025-01-09T02:00:00Z',
        },
      },
      tenantId: 1,
      channel: 'websocket',
    };
    const sentAt = Date.now();
    const r2 = await notify(example2);
    assert.equal(r2.status, 202, `the seed's Example 2 body was refused: ${r2.status} ${JSON.stringify(r2.body)}`);
    assertNotification(await next(r2.body.id), r2.body.id, example2.content, sentAt);

    // "Send to Channel (API)", exactly, to the channel the snippet joined.
    const toUpdates = {
      recipient: {
        channel: 'updates',
      },
      content: {
        subject: 'System Alert',
        body: 'Database backup completed successfully',
        data: {
          type: 'system',
          severity: 'info',
        },
      },
      tenantId: 1,
      channel: 'websocket',
    };
    const ru = await notify(toUpdates);
    assert.equal(ru.status, 202, JSON.stringify(ru.body));
    assertNotification(await next(ru.body.id), ru.body.id, toUpdates.content);

    // "Example 1: Send Notification to User (Internal Mode)", exactly.
    const example1 = {
      recipient: {
        userId: 'user-123',
      },
      content: {
        subject: 'New Message',
        body: 'You have a new message from John',
        data: {
          messageId: 'msg-456',
          from: 'John Doe',
        },
      },
      tenantId: 1,
      channel: 'websocket',
    };
    const r1 = await notify(example1);
    assert.equal(r1.status, 202, `the seed's Example 1 body was refused: ${r1.status} ${JSON.stringify(r1.body)}`);
    assertNotification(await next(r1.body.id), r1.body.id, example1.content);

    // ---- the snippet's last line ----
    socket.emit('channel:leave', { channelName: 'alerts' });
    // ---------------------------------
    assert.deepEqual(await socket.timeout(h.TIMEOUT).emitWithAck('channel:leave', { channelName: 'alerts' }), { success: true, channel: 'alerts' });
    const gone = await notify(example2);
    assert.equal(gone.status, 202);
    const barrier = await notify(toUpdates);
    await next(barrier.body.id);
    assert.deepEqual(received.filter((n) => n.id === gone.body.id), [], 'a notification to alerts arrived after channel:leave');
    assert.equal(received.length, 4, JSON.stringify(received));
  });
});

for (const transport of h.TRANSPORTS) {
  describe(`the main flow over ${transport.name}`, () => {
    it('auto-joins system, alerts and the user room; channel:join / channel:leave ack {success, channel}; nothing arrives after a leave', async (t) => {
      const tenantId = newTenant(true);
      const userId = `user-${h.uid()}`;
      const socket = await mainSocket(t, { sub: userId, tenantId }, transport.transports);
      assert.equal(socket.io.engine.transport.name, transport.expect);

      // Default channels, without any channel:join.
      for (const channel of ['system', 'alerts']) {
        const content = { subject: `to ${channel}`, body: `${channel} body`, data: { channel, n: 1 } };
        const sentAt = Date.now();
        const id = await notifyOk(toChannel(tenantId, channel, content));
        assertNotification(await receive(socket, id), id, content, sentAt);
      }
      const personal = { subject: 'for you', body: 'only you', data: { nested: { ok: true }, list: [1, 2] } };
      const personalId = await notifyOk(toUser(tenantId, userId, personal));
      assertNotification(await receive(socket, personalId), personalId, personal);

      // A channel of its own choosing.
      assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'updates' }), { success: true, channel: 'updates' });
      const update = { subject: 'update', body: 'v2', data: {} };
      const updateId = await notifyOk(toChannel(tenantId, 'updates', update));
      assertNotification(await receive(socket, updateId), updateId, update);

      // Leave a default channel: nothing more from it, the others still arrive.
      assert.deepEqual(await h.request(socket, 'channel:leave', { channelName: 'alerts' }), { success: true, channel: 'alerts' });
      await notifyOk(toChannel(tenantId, 'alerts', { subject: 'after leave', body: 'x', data: {} }));
      const stillId = await notifyOk(toChannel(tenantId, 'system', { subject: 'still here', body: 'x', data: {} }));
      await receive(socket, stillId);
      assert.deepEqual(h.pending(socket, 'notification:new'), [], 'a notification to alerts arrived after channel:leave');

      // Leave a joined channel too.
      assert.deepEqual(await h.request(socket, 'channel:leave', { channelName: 'updates' }), { success: true, channel: 'updates' });
      await notifyOk(toChannel(tenantId, 'updates', { subject: 'after leave', body: 'x', data: {} }));
      await assertNothingElse([socket], tenantId, userId, 'a notification to updates after channel:leave');
      assert.equal(socket.connected, true);
      assert.equal(socket.io.engine.transport.name, transport.expect);
    });
  });
}

describe('default channels', () => {
  it('puts every socket in system, alerts and user:<its user> on connect (room sizes from /api/v1/stats)', async (t) => {
    const tenantId = newTenant();
    await mainSocket(t, { sub: 'ann', tenantId });
    await mainSocket(t, { sub: 'ann', tenantId });
    await mainSocket(t, { sub: 'bob', tenantId });
    assert.equal(await roomSize('system', tenantId), 3);
    assert.equal(await roomSize('alerts', tenantId), 3);
    assert.equal(await roomSize('user:ann', tenantId), 2);
    assert.equal(await roomSize('user:bob', tenantId), 1);
    assert.equal(await roomSize('updates', tenantId), 0);
  });

  it('joining a channel twice and leaving one never joined both answer success', async (t) => {
    const tenantId = newTenant();
    const socket = await mainSocket(t, { sub: 'u1', tenantId });
    assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'alerts' }), { success: true, channel: 'alerts' });
    assert.deepEqual(await h.request(socket, 'channel:leave', { channelName: 'never-joined' }), { success: true, channel: 'never-joined' });
    assert.equal(await roomSize('alerts', tenantId), 1);
  });
});

describe('channel permissions', () => {
  for (const role of ADMIN_ROLES) {
    it(`lets role ${role} join admin and admin.<topic> and receive their notifications`, async (t) => {
      const tenantId = newTenant();
      const socket = await mainSocket(t, { sub: 'boss', tenantId, roles: [role] });
      assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'admin' }), { success: true, channel: 'admin' });
      assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'admin.billing' }), { success: true, channel: 'admin.billing' });
      for (const channel of ['admin', 'admin.billing']) {
        const content = { subject: channel, body: 'admins only', data: { channel } };
        const id = await notifyOk(toChannel(tenantId, channel, content));
        assertNotification(await receive(socket, id), id, content);
      }
      assert.deepEqual(h.pending(socket, 'error'), []);
    });
  }

  const NON_ADMINS = [
    ['role user', ['user']],
    ['roles viewer and editor', ['viewer', 'editor']],
    ['no roles', []],
    ['no roles claim', undefined],
  ];
  for (const [name, roles] of NON_ADMINS) {
    it(`refuses admin and admin.<topic> to ${name} with a permission error, and delivers their notifications elsewhere`, async (t) => {
      const tenantId = newTenant();
      const socket = await mainSocket(t, { sub: 'pleb', tenantId, roles });
      const admin = await mainSocket(t, { sub: 'boss', tenantId, roles: ['admin'] });
      assert.deepEqual(await h.request(admin, 'channel:join', { channelName: 'admin' }), { success: true, channel: 'admin' });
      assert.deepEqual(await h.request(admin, 'channel:join', { channelName: 'admin.security' }), { success: true, channel: 'admin.security' });

      for (const channelName of ['admin', 'admin.security']) {
        const ack = await h.request(socket, 'channel:join', { channelName });
        assert.equal(ack?.error?.type, 'permission', `channel:join ${channelName}: ${JSON.stringify(ack)}`);
        assert.equal(ack.error.event, 'channel:join');
        assert.equal(typeof ack.error.message, 'string');
        assert.equal(ack.success, undefined);
        const event = await h.waitFor(socket, 'error');
        assert.equal(event.type, 'permission');
      }
      const ids = [];
      for (const channel of ['admin', 'admin.security']) ids.push(await notifyOk(toChannel(tenantId, channel, { subject: channel, body: 'x', data: {} })));
      for (const id of ids) await receive(admin, id);
      await assertNothingElse([socket], tenantId, 'pleb', 'an admin-channel notification');

      // Still usable.
      assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'general' }), { success: true, channel: 'general' });
      assert.equal(socket.connected, true);
    });
  }

  for (const role of ['user', 'super_admin']) {
    it(`refuses user:<id> (the server-only personal room) to role ${role}, for another user and for itself`, async (t) => {
      const tenantId = newTenant();
      const socket = await mainSocket(t, { sub: 'me', tenantId, roles: [role] });
      for (const channelName of ['user:victim', 'user:me']) {
        const ack = await h.request(socket, 'channel:join', { channelName });
        assert.equal(ack?.error?.type, 'permission', `channel:join ${channelName}: ${JSON.stringify(ack)}`);
        assert.equal((await h.waitFor(socket, 'error')).type, 'permission');
      }
      // Nothing for the victim reaches this socket; its own personal room still works.
      await notifyOk(toUser(tenantId, 'victim', { subject: 'private', body: 'for the victim', data: {} }));
      await assertNothingElse([socket], tenantId, 'me', "another user's notification");
      // Leaving the personal room is refused too: the socket keeps getting its own notifications.
      const leave = await h.request(socket, 'channel:leave', { channelName: 'user:me' });
      assert.equal(leave?.error?.type, 'permission', JSON.stringify(leave));
      const id = await notifyOk(toUser(tenantId, 'me', { subject: 'still mine', body: 'x', data: {} }));
      await receive(socket, id);
    });
  }

  it('refuses invalid channel names with a validation error and the socket stays usable', async (t) => {
    const tenantId = newTenant();
    const socket = await mainSocket(t, { sub: 'u1', tenantId });
    const INVALID = [
      ['an empty name', { channelName: '' }],
      ['a name of 101 characters', { channelName: 'x'.repeat(101) }],
      ['a name with a space', { channelName: 'my channel' }],
      ['a name with a slash', { channelName: 'a/b' }],
      ['a number', { channelName: 42 }],
      ['null', { channelName: null }],
      ['an object', { channelName: { name: 'alerts' } }],
      ['no channelName', {}],
      ['a bare string payload', 'alerts'],
    ];
    for (const [name, payload] of INVALID) {
      for (const event of ['channel:join', 'channel:leave']) {
        const ack = await h.request(socket, event, payload);
        assert.equal(ack?.error?.type, 'validation', `${event} with ${name}: ${JSON.stringify(ack)}`);
        assert.equal(ack.error.event, event);
        assert.equal(typeof ack.error.message, 'string');
        assert.equal((await h.waitFor(socket, 'error')).type, 'validation');
      }
    }
    assert.equal(socket.connected, true);
    const longest = 'y'.repeat(100);
    assert.deepEqual(await h.request(socket, 'channel:join', { channelName: longest }), { success: true, channel: longest });
    assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'a_b.c:d-E9' }), { success: true, channel: 'a_b.c:d-E9' });
    const id = await notifyOk(toChannel(tenantId, 'a_b.c:d-E9', { subject: 'odd name', body: 'x', data: {} }));
    await receive(socket, id);
    await assertNothingElse([socket], tenantId, 'u1', 'a notification to a refused channel');
  });
});

describe('notifications to a user', () => {
  it('reach every tab of the user on / (notification:new) and on /ws (user.notification), and nobody else', async (t) => {
    const tenantId = newTenant();
    const otherTenant = newTenant();
    const userId = `alice-${h.uid()}`;
    const tab1 = await mainSocket(t, { sub: userId, tenantId });
    const tab2 = await mainSocket(t, { sub: userId, tenantId }, ['polling']);
    const wsTab = await wsSocket(t, { sub: userId, tenantId });
    const bob = await mainSocket(t, { sub: 'bob', tenantId });
    const bobWs = await wsSocket(t, { sub: 'bob', tenantId });
    const twin = await mainSocket(t, { sub: userId, tenantId: otherTenant });
    const twinWs = await wsSocket(t, { sub: userId, tenantId: otherTenant });

    const content = { subject: 'Hi Alice', body: 'two tabs', data: { messageId: 'm1' } };
    const sentAt = Date.now();
    const id = await notifyOk(toUser(tenantId, userId, content));
    for (const tab of [tab1, tab2]) assertNotification(await receive(tab, id), id, content, sentAt);
    assert.deepEqual(await receive(wsTab, id, 'user.notification'), { id, ...content, userId });

    await assertNothingElse([tab1, tab2, wsTab], tenantId, userId, 'a second copy');
    await assertNothingElse([bob, bobWs], tenantId, 'bob', "Alice's notification");
    await assertNothingElse([twin, twinWs], otherTenant, userId, "another tenant's user's notification");
  });

  it('accepts the user id and tenant id as numbers, as the seed sends them', async (t) => {
    const tenantId = newTenant(true);
    const socket = await mainSocket(t, { sub: '42', tenantId });
    const content = { subject: 'numeric', body: 'ids', data: {} };
    const id = await notifyOk(toUser(tenantId, 42, content));
    assertNotification(await receive(socket, id), id, content);
  });
});

describe('acknowledgments', () => {
  it('3 sockets of the user, 2 call ack() and 1 stays silent: 200 {id, sockets: 3, acknowledged: 2} after about ackTimeoutMs', async (t) => {
    const tenantId = newTenant();
    const ackers = [await mainSocket(t, { sub: 'carol', tenantId }), await mainSocket(t, { sub: 'carol', tenantId })];
    const silent = await mainSocket(t, { sub: 'carol', tenantId });
    for (const socket of ackers) socket.on('notification:new', (n, ack) => ack());

    const content = { subject: 'ack me', body: 'please', data: { n: 1 } };
    const ackTimeoutMs = 1000;
    const { status, body, elapsed } = await notifyWithAcks(toUser(tenantId, 'carol', content), ackTimeoutMs);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(Object.keys(body).sort(), ['acknowledged', 'id', 'sockets']);
    assert.match(body.id, UUID);
    assert.ok(elapsed >= ackTimeoutMs - 50, `answered after ${elapsed} ms, before the ${ackTimeoutMs} ms timeout although a socket never acked`);
    assert.ok(elapsed <= ackTimeoutMs + 3000, `answered after ${elapsed} ms`);
    for (const socket of [...ackers, silent]) assertNotification(await receive(socket, body.id), body.id, content);
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 3, acknowledged: 2 });
  });

  it('counts acks that carry a value: ack({received: true}) and ack("ok")', async (t) => {
    const tenantId = newTenant();
    const a = await mainSocket(t, { sub: 'dave', tenantId });
    const b = await mainSocket(t, { sub: 'dave', tenantId });
    await mainSocket(t, { sub: 'dave', tenantId }); // silent
    a.on('notification:new', (n, ack) => ack({ received: true }));
    b.on('notification:new', (n, ack) => ack('ok'));
    // The silent socket makes the call wait for the whole ack timeout; the two acks must arrive
    // within it, which on a loaded machine takes more than a moment.
    const ackTimeoutMs = 3000;
    const { status, body, elapsed } = await notifyWithAcks(toUser(tenantId, 'dave', { subject: 's', body: 'b', data: {} }), ackTimeoutMs);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 3, acknowledged: 2 });
    assert.ok(elapsed >= ackTimeoutMs - 50, `answered after ${elapsed} ms, before the silent socket's ack timed out`);
  });

  it('counts a /ws socket of the user as reached, and answers as soon as every socket acked', async (t) => {
    const tenantId = newTenant();
    const main = await mainSocket(t, { sub: 'erin', tenantId });
    const ws = await wsSocket(t, { sub: 'erin', tenantId });
    main.on('notification:new', (n, ack) => ack({ received: true }));
    ws.on('user.notification', (n, ack) => ack({ received: true }));
    const ackTimeoutMs = 5000;
    const { status, body, elapsed } = await notifyWithAcks(toUser(tenantId, 'erin', { subject: 's', body: 'b', data: {} }), ackTimeoutMs);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 2, acknowledged: 2 });
    assert.ok(elapsed < ackTimeoutMs / 2, `answered after ${elapsed} ms although every socket acked at once`);
    await receive(main, body.id);
    await receive(ws, body.id, 'user.notification');
  });

  it('delivers to /ws at once, not after the acks of / time out', async (t) => {
    const tenantId = newTenant();
    await mainSocket(t, { sub: 'fay', tenantId }); // silent on /
    const ws = await wsSocket(t, { sub: 'fay', tenantId });
    const ackTimeoutMs = 1500;
    const started = Date.now();
    const call = notifyWithAcks(toUser(tenantId, 'fay', { subject: 's', body: 'b', data: {} }), ackTimeoutMs);
    const delivered = await h.waitFor(ws, 'user.notification', ackTimeoutMs * 3);
    const deliveredAfter = Date.now() - started;
    const { body } = await call;
    assert.equal(delivered.id, body.id);
    assert.ok(deliveredAfter < ackTimeoutMs / 2, `/ws got the notification ${deliveredAfter} ms after the call (ackTimeoutMs ${ackTimeoutMs})`);
  });

  it('waits ackTimeoutMs once in all, not once per namespace, when sockets on / and /ws stay silent', async (t) => {
    const tenantId = newTenant();
    await mainSocket(t, { sub: 'gus', tenantId });
    await wsSocket(t, { sub: 'gus', tenantId });
    const ackTimeoutMs = 2000;
    const { status, body, elapsed } = await notifyWithAcks(toUser(tenantId, 'gus', { subject: 's', body: 'b', data: {} }), ackTimeoutMs);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 2, acknowledged: 0 });
    assert.ok(elapsed >= ackTimeoutMs - 50, `answered after ${elapsed} ms`);
    assert.ok(elapsed <= ackTimeoutMs + 1000, `answered after ${elapsed} ms with ackTimeoutMs ${ackTimeoutMs}`);
  });

  it('answers {sockets: 0, acknowledged: 0} at once when nobody is connected', async () => {
    const { status, body, elapsed } = await notifyWithAcks(toUser(newTenant(), 'nobody', { subject: 's', body: 'b', data: {} }), 5000);
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(body.id, UUID);
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 0, acknowledged: 0 });
    assert.ok(elapsed < 2000, `answered after ${elapsed} ms`);
  });

  it("counts only the channel's members of that tenant for a channel notification", async (t) => {
    const tenantId = newTenant();
    const a = await mainSocket(t, { sub: 'a', tenantId });
    const b = await mainSocket(t, { sub: 'b', tenantId });
    const stranger = await mainSocket(t, { sub: 'a', tenantId: newTenant() });
    for (const socket of [a, b, stranger]) socket.on('notification:new', (n, ack) => ack({ received: true }));
    const { status, body } = await notifyWithAcks(toChannel(tenantId, 'alerts', { subject: 's', body: 'b', data: {} }), 3000);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual({ sockets: body.sockets, acknowledged: body.acknowledged }, { sockets: 2, acknowledged: 2 });
    assert.deepEqual(h.pending(stranger, 'notification:new'), []);
  });

  it('without enableAcknowledgments (or with false) answers 202 {id} at once, and sockets get the notification with no callback', async (t) => {
    const tenantId = newTenant();
    const socket = await mainSocket(t, { sub: 'hal', tenantId });
    const callbacks = [];
    socket.on('notification:new', (n, ack) => callbacks.push(typeof ack));
    for (const extra of [{}, { enableAcknowledgments: false }, { enableAcknowledgments: false, ackTimeoutMs: 1000 }]) {
      const started = Date.now();
      const id = await notifyOk(toUser(tenantId, 'hal', { subject: 's', body: 'b', data: {} }, extra));
      assert.ok(Date.now() - started < 1000);
      await receive(socket, id);
    }
    assert.deepEqual(callbacks, ['undefined', 'undefined', 'undefined']);
  });
});

describe('tenant isolation of channels', () => {
  it("never delivers tenant t1's channel notifications to t2's members of the same channels, same user id or not", async (t) => {
    const t1 = newTenant();
    const t2 = newTenant();
    const inT1 = await mainSocket(t, { sub: 'u1', tenantId: t1 });
    const sameUser = await mainSocket(t, { sub: 'u1', tenantId: t2 });
    const otherUser = await mainSocket(t, { sub: 'u2', tenantId: t2, roles: ['admin'] });
    for (const socket of [inT1, sameUser, otherUser]) {
      assert.deepEqual(await h.request(socket, 'channel:join', { channelName: 'news' }), { success: true, channel: 'news' });
    }
    assert.deepEqual(await h.request(inT1, 'channel:join', { channelName: 'admin' }).then((a) => a.error?.type), 'permission');
    assert.deepEqual(await h.request(otherUser, 'channel:join', { channelName: 'admin' }), { success: true, channel: 'admin' });

    const ids = [];
    for (const channel of ['alerts', 'system', 'news', 'admin']) {
      ids.push(await notifyOk(toChannel(t1, channel, { subject: channel, body: 't1 only', data: {} })));
    }
    for (const id of ids.slice(0, 3)) await receive(inT1, id);
    // With acks too: only t1's members count.
    const { body } = await notifyWithAcks(toChannel(t1, 'news', { subject: 'news', body: 'acked', data: {} }), 1000);
    assert.equal(body.sockets, 1, JSON.stringify(body));
    await receive(inT1, body.id);

    await assertNothingElse([sameUser], t2, 'u1', "t1's channel notification");
    await assertNothingElse([otherUser], t2, 'u2', "t1's channel notification");
    await assertNothingElse([inT1], t1, 'u1', 'an unexpected notification');
  });
});

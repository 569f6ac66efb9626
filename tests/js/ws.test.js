// The /ws contract of seed 002 (namespaces/ws.yaml): the seed's browser snippets unchanged,
// the rooms each socket joins on connect by role and tenant, join_room / leave_room with their
// access rules, send_message relays (who gets them, once, never the sender, never another tenant,
// never under a server's name, `from` set by the gateway), cookie tokens and their origin check,
// published notifications, alerts and tenant updates, POST /api/v1/notifications, and the live
// performance stream; the main flow over each transport setup.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import * as h from './helpers.js';

const NS = '/ws';
const WELCOME = 'connection.confirmed';

let gw;

before(async () => {
  gw = await h.startGateway();
});
after(async () => {
  await gw?.stop();
});

const assertIso = (value) => assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

/** A fresh tenant id. */
const tenantId = () => `ws-${h.uid()}`;

/** A connected /ws socket with these claims (user u1 of t1, role user, unless told), closed when `t` ends. */
const client = (t, claims = {}, options = {}) =>
  h.connectFor(t, options.url ?? gw.url, { namespace: NS, welcome: WELCOME, token: h.mintToken(claims), ...options });

/** Joins `room`: asserts the ack and the room_joined event are both {room, timestamp}. */
async function join(socket, room) {
  const ack = await h.request(socket, 'join_room', { room });
  assert.equal(ack?.error, undefined, `join_room ${room} was refused: ${JSON.stringify(ack?.error)}`);
  const event = await h.waitFor(socket, 'room_joined');
  assert.deepEqual(event, { room, timestamp: event.timestamp });
  assertIso(event.timestamp);
  assert.deepEqual(ack, event, 'the ack is the room_joined data');
  return event;
}

/**
 * Sends `event` with `payload` and asserts it is refused with `type`: an {error} ack and the same
 * `error` event {message, type, timestamp, event}. Returns the error.
 */
async function refused(socket, event, payload, type) {
  const ack = await h.request(socket, event, payload);
  assert.ok(ack?.error, `${event} ${JSON.stringify(payload)} was accepted: ${JSON.stringify(ack)}`);
  assert.equal(ack.error.type, type, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack.error)}`);
  assert.equal(ack.error.event, event);
  assert.equal(typeof ack.error.message, 'string');
  assertIso(ack.error.timestamp);
  assert.deepEqual(await h.waitFor(socket, 'error'), ack.error, 'the error event is the ack error');
  return ack.error;
}

/** Sends a relay that must be accepted (ack {ok: true}). */
async function send(socket, event, payload, rooms) {
  const ack = await h.request(socket, 'send_message', { event, payload, rooms });
  assert.deepEqual(ack, { ok: true }, `send_message ${event} to ${rooms} was refused`);
}

/** The relayed data a receiver should get from `sender`. */
const relayed = (sender, payload, received) => ({
  ...payload,
  from: { userId: sender.welcome?.userId ?? sender.userId, socketId: sender.welcome.socketId },
  timestamp: received.timestamp,
});

/** Asserts nothing of `event` is left unclaimed on `socket` (after a barrier). */
const nothingPending = (socket, event, why) => assert.deepEqual(h.pending(socket, event), [], why);

// ---------------------------------------------------------------------------------------------

describe('the seed browser snippets, unchanged', () => {
  const WS_URL = () => gw.url.replace(/^http/, 'ws');

  it("connects with io(url + '/ws', {auth: {token}}) and with io(url + '/ws?token=...'), joins global.general and relays test.message", async (t) => {
    const tenant = tenantId();
    const senderToken = h.mintToken({ sub: 'alice', tenantId: tenant, roles: ['user'] });
    const receiverToken = h.mintToken({ sub: 'bob', tenantId: tenant, roles: ['user'] });

    // The seed's snippets, word for word apart from the URL and token.
    const socket = h.recording(io(WS_URL() + '/ws', {
      auth: {
        token: senderToken,
      },
    }));
    t.after(() => socket.disconnect());
    const other = h.recording(io(WS_URL() + '/ws?token=' + receiverToken));
    t.after(() => other.disconnect());

    await h.waitFor(socket, 'connect');
    await h.waitFor(other, 'connect');
    const confirmed = await h.waitFor(socket, WELCOME);
    const { socketId, userId, tenantId: tid, roles, rooms, timestamp, ...rest } = confirmed;
    assert.deepEqual(rest, {});
    h.assertPublicId(socketId, socket);
    assert.equal(userId, 'alice');
    assert.equal(tid, tenant);
    assert.deepEqual(roles, ['user']);
    assert.ok(Array.isArray(rooms) && rooms.includes(`user.alice.private`), JSON.stringify(rooms));
    assertIso(timestamp);
    const otherConfirmed = await h.waitFor(other, WELCOME);
    assert.equal(otherConfirmed.userId, 'bob', 'the ?token= query parameter authenticates');
    h.assertPublicId(otherConfirmed.socketId, other);

    socket.emit('join_room', { room: 'global.general' });
    other.emit('join_room', { room: 'global.general' });
    for (const s of [socket, other]) {
      const joined = await h.waitFor(s, 'room_joined');
      assert.deepEqual(joined, { room: 'global.general', timestamp: joined.timestamp });
      assertIso(joined.timestamp);
    }

    socket.emit('send_message', {
      event: 'test.message',
      payload: { message: 'Hello WebSocket!' },
      rooms: ['global.general'],
    });
    const message = await h.waitFor(other, 'test.message');
    assert.deepEqual(message, { message: 'Hello WebSocket!', from: { userId: 'alice', socketId: confirmed.socketId }, timestamp: message.timestamp });
    assertIso(message.timestamp);

    // The answer is the sender's barrier: its own message would have reached it first.
    other.emit('send_message', { event: 'test.message', payload: { message: 'Hello back' }, rooms: ['global.general'] });
    const answer = await h.waitFor(socket, 'test.message');
    assert.deepEqual(answer.message, 'Hello back', `the sender received its own message first: ${JSON.stringify(answer)}`);
    assert.deepEqual(answer.from, { userId: 'bob', socketId: otherConfirmed.socketId });
    nothingPending(socket, 'test.message');
    nothingPending(other, 'test.message', 'the receiver got its own answer');
    nothingPending(socket, 'error');
    nothingPending(other, 'error');
  });

  it('overwrites a client-supplied `from` (and the timestamp): receivers see only the gateway-set sender', async (t) => {
    const tenant = tenantId();
    const sender = await client(t, { sub: 'mallory', tenantId: tenant });
    const receiver = await client(t, { sub: 'victim', tenantId: tenant });
    await join(sender, 'global.general');
    await join(receiver, 'global.general');

    const forged = {
      message: 'approve my request',
      from: { userId: 'ceo', socketId: 'forged-socket', tenantId: 'other-tenant', roles: ['platform_admin'], name: 'The CEO' },
      timestamp: '1999-01-01T00:00:00.000Z',
    };
    await send(sender, 'test.message', forged, ['global.general']);
    const got = await h.waitFor(receiver, 'test.message');
    assert.equal(got.message, 'approve my request');
    assert.notEqual(got.timestamp, forged.timestamp, 'the timestamp is the gateway\'s');
    assertIso(got.timestamp);
    assert.deepEqual(got.from, { userId: 'mallory', socketId: sender.welcome.socketId }, 'the whole `from` is the gateway\'s: no client field survives in it');

    // A `from` that is not an object is replaced too.
    await send(sender, 'test.message', { message: 'two', from: 'ceo' }, ['global.general']);
    const second = await h.waitFor(receiver, 'test.message');
    assert.deepEqual(second, { message: 'two', from: { userId: 'mallory', socketId: sender.welcome.socketId }, timestamp: second.timestamp });
  });
});

// ---------------------------------------------------------------------------------------------

for (const setup of h.TRANSPORTS) {
  describe(`the /ws main flow over ${setup.name}`, () => {
    it('connects and is confirmed, joins rooms, relays to the other members and never back to the sender', async (t) => {
      const tenant = tenantId();
      const chat = `chat.${h.uid()}`;
      const alice = await client(t, { sub: 'alice', tenantId: tenant }, { transports: setup.transports });
      const bob = await client(t, { sub: 'bob', tenantId: tenant }, { transports: setup.transports });
      for (const s of [alice, bob]) {
        assert.equal(s.io.engine.transport.name, setup.expect);
        h.assertPublicId(s.welcome.socketId, s);
        assert.equal(s.welcome.tenantId, tenant);
      }
      assert.equal(alice.welcome.userId, 'alice');

      for (const s of [alice, bob]) {
        await join(s, 'global.general');
        await join(s, chat);
      }

      await send(alice, 'test.message', { message: 'Hello WebSocket!' }, ['global.general']);
      const first = await h.waitFor(bob, 'test.message');
      assert.deepEqual(first, relayed(alice, { message: 'Hello WebSocket!' }, first));

      await send(alice, 'chat.message', { text: 'in the chat' }, [chat]);
      const second = await h.waitFor(bob, 'chat.message');
      assert.deepEqual(second, relayed(alice, { text: 'in the chat' }, second));

      // Bob's answer is Alice's barrier.
      await send(bob, 'chat.message', { text: 'answer' }, [chat]);
      const answer = await h.waitFor(alice, 'chat.message');
      assert.deepEqual(answer, relayed(bob, { text: 'answer' }, answer), 'alice got her own message back first');
      nothingPending(alice, 'test.message', 'alice got her own message back');
      nothingPending(alice, 'chat.message');
      nothingPending(bob, 'chat.message');
      assert.equal(alice.connected && bob.connected, true);
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('rooms joined on connect, by role', () => {
  const userRooms = (id, tenant) => [`tenant.${tenant}.notifications`, `tenant.${tenant}.users`, `user.${id}.notifications`, `user.${id}.private`];
  const PLATFORM = ['platform.admins', 'platform.health', 'platform.security'];
  const sorted = (rooms) => [...rooms].sort();

  it('a plain user joins its own private and notification rooms and its tenant\'s users and notifications', async (t) => {
    const tenant = tenantId();
    const socket = await client(t, { sub: 'plain', tenantId: tenant, roles: ['user'] });
    const { socketId, userId, tenantId: tid, roles, rooms, timestamp, ...rest } = socket.welcome;
    assert.deepEqual(rest, {});
    h.assertPublicId(socketId, socket);
    assert.equal(userId, 'plain');
    assert.equal(tid, tenant);
    assert.deepEqual(roles, ['user']);
    assertIso(timestamp);
    assert.deepEqual(sorted(rooms), sorted(userRooms('plain', tenant)));
  });

  for (const role of ['admin', 'tenant_admin']) {
    it(`role ${role} also joins tenant.<tenantId>.admins`, async (t) => {
      const tenant = tenantId();
      const socket = await client(t, { sub: 'boss', tenantId: tenant, roles: ['user', role] });
      assert.deepEqual(sorted(socket.welcome.rooms), sorted([...userRooms('boss', tenant), `tenant.${tenant}.admins`]));
      assert.deepEqual(socket.welcome.roles, ['user', role]);
    });
  }

  for (const role of ['platform_admin', 'super_admin']) {
    it(`role ${role} also joins platform.admins, platform.health and platform.security`, async (t) => {
      const tenant = tenantId();
      const socket = await client(t, { sub: 'op', tenantId: tenant, roles: [role] });
      assert.deepEqual(sorted(socket.welcome.rooms), sorted([...userRooms('op', tenant), ...PLATFORM]));
    });
  }

  it('a platform admin token without tenantId connects and gets only the platform rooms', async (t) => {
    const socket = await client(t, { sub: 'root', tenantId: undefined, roles: ['platform_admin'] });
    assert.equal(socket.welcome.userId, 'root');
    assert.equal(socket.welcome.tenantId ?? null, null);
    assert.deepEqual(sorted(socket.welcome.rooms), PLATFORM);
    // Still usable: a global room it may join.
    await join(socket, 'performance.dashboard');
  });

  it('an admin of both kinds gets every room its roles allow, each once', async (t) => {
    const tenant = tenantId();
    const socket = await client(t, { sub: 'all', tenantId: tenant, roles: ['admin', 'tenant_admin', 'platform_admin', 'super_admin'] });
    assert.deepEqual(sorted(socket.welcome.rooms), sorted([...userRooms('all', tenant), `tenant.${tenant}.admins`, ...PLATFORM]));
  });
});

// ---------------------------------------------------------------------------------------------

describe('join_room and leave_room access rules', () => {
  it('refuses a plain user every platform, foreign-tenant, admin, other-user and dashboard room, with permission, and stays usable', async (t) => {
    const tenant = tenantId();
    const other = tenantId();
    const socket = await client(t, { sub: 'u1', tenantId: tenant, roles: ['user'] });
    const forbidden = [
      'platform.admins',
      'platform.health',
      'platform.security',
      'performance.dashboard',
      `tenant.${other}.users`,
      `tenant.${other}.notifications`,
      `tenant.${other}.admins`,
      `tenant.${tenant}.admins`,
      'user.u2.private',
      'user.u2.notifications',
    ];
    for (const room of forbidden) {
      const error = await refused(socket, 'join_room', { room }, 'permission');
      assert.ok(error.message.includes(room), error.message);
    }
    nothingPending(socket, 'room_joined', 'a refused join answered room_joined too');
    assert.equal(socket.connected, true);
    await join(socket, 'global.general');
  });

  it('refuses a tenant admin the other tenant\'s admin room and the platform rooms', async (t) => {
    const tenant = tenantId();
    const socket = await client(t, { sub: 'boss', tenantId: tenant, roles: ['admin'] });
    await join(socket, `tenant.${tenant}.admins`);
    for (const room of [`tenant.${tenantId()}.admins`, 'platform.admins', 'platform.security', 'performance.dashboard']) {
      await refused(socket, 'join_room', { room }, 'permission');
    }
  });

  it('lets platform admins (platform_admin or super_admin) join the platform rooms and the dashboard', async (t) => {
    for (const role of ['platform_admin', 'super_admin']) {
      const socket = await client(t, { sub: `op-${role}`, tenantId: tenantId(), roles: [role] });
      for (const room of ['platform.admins', 'platform.health', 'platform.security', 'performance.dashboard']) await join(socket, room);
    }
  });

  it('lets any user join document.<id>.collaboration, chat.<id>, global.general and its own rooms', async (t) => {
    const tenant = tenantId();
    const socket = await client(t, { sub: 'u7', tenantId: tenant, roles: [] });
    for (const room of ['document.doc-42.collaboration', 'chat.team-1', 'global.general', 'user.u7.private', 'user.u7.notifications', `tenant.${tenant}.users`, `tenant.${tenant}.notifications`]) {
      await join(socket, room);
    }
    // Joining twice is harmless.
    await join(socket, 'chat.team-1');
  });

  it('answers unknown room names and malformed payloads with validation', async (t) => {
    const socket = await client(t, { tenantId: tenantId() });
    for (const room of ['foo.bar', 'general', `tenant.x`, 'document.d1', 'platform', '']) {
      await refused(socket, 'join_room', { room }, 'validation');
    }
    await refused(socket, 'join_room', {}, 'validation');
    await refused(socket, 'join_room', 'global.general', 'validation');
    await refused(socket, 'leave_room', { room: 'foo.bar' }, 'validation');
    await refused(socket, 'leave_room', {}, 'validation');
    await join(socket, 'global.general');
  });

  it('leave_room answers room_left {room, timestamp}; the socket then gets no relays there and may not send there', async (t) => {
    const tenant = tenantId();
    const chat = `chat.${h.uid()}`;
    const leaver = await client(t, { sub: 'leaver', tenantId: tenant });
    const talker = await client(t, { sub: 'talker', tenantId: tenant });
    for (const s of [leaver, talker]) {
      await join(s, chat);
      await join(s, 'global.general');
    }

    const ack = await h.request(leaver, 'leave_room', { room: chat });
    const left = await h.waitFor(leaver, 'room_left');
    assert.deepEqual(left, { room: chat, timestamp: left.timestamp });
    assertIso(left.timestamp);
    assert.deepEqual(ack, left);

    await send(talker, 'chat.message', { text: 'after you left' }, [chat]);
    await send(talker, 'chat.message', { text: 'barrier' }, ['global.general']);
    assert.equal((await h.waitFor(leaver, 'chat.message')).text, 'barrier', 'a relay to the room it left arrived');
    nothingPending(leaver, 'chat.message');

    await refused(leaver, 'send_message', { event: 'chat.message', payload: { text: 'x' }, rooms: [chat] }, 'permission');

    // Leaving a room one is not in is not an error.
    const again = await h.request(leaver, 'leave_room', { room: chat });
    assert.equal(again.room, chat);
    await h.waitFor(leaver, 'room_left');
  });
});

// ---------------------------------------------------------------------------------------------

describe('send_message rules', () => {
  it('refuses a relay to a room the sender has not joined with permission, and delivers none of a partly refused relay', async (t) => {
    const tenant = tenantId();
    const sender = await client(t, { sub: 's', tenantId: tenant });
    const member = await client(t, { sub: 'm', tenantId: tenant });
    await join(member, 'global.general');
    await join(member, 'chat.c1');
    await join(sender, 'chat.c1');

    const error = await refused(sender, 'send_message', { event: 'test.message', payload: { n: 1 }, rooms: ['global.general'] }, 'permission');
    assert.ok(error.message.includes('global.general'), error.message);
    await refused(sender, 'send_message', { event: 'test.message', payload: { n: 2 }, rooms: ['chat.c1', 'global.general'] }, 'permission');
    await refused(sender, 'send_message', { event: 'test.message', payload: { n: 3 }, rooms: [`tenant.${tenantId()}.users`] }, 'permission');
    await refused(sender, 'send_message', { event: 'test.message', payload: { n: 4 }, rooms: ['platform.admins'] }, 'permission');

    await send(sender, 'test.message', { n: 'barrier' }, ['chat.c1']);
    const next = await h.waitFor(member, 'test.message');
    assert.equal(next.n, 'barrier', `a refused relay was delivered: ${JSON.stringify(next)}`);
    nothingPending(member, 'test.message');
  });

  const SERVER_NAMES = [
    'error',
    'connect',
    'disconnect',
    'user.notification',
    'room_joined',
    'room_left',
    'connection.confirmed',
    'connection.anything',
    'auth:refresh',
    'platform.security.alert',
    'platform.health.check',
    'platform.anything',
    'tenant.data.update',
    'tenant.admin.something',
    'performance.metrics',
    'performance.alert',
  ];

  it(`refuses relays under reserved or server-sent names (${SERVER_NAMES.join(', ')}) with permission, and delivers none`, async (t) => {
    const tenant = tenantId();
    const sender = await client(t, { sub: 's', tenantId: tenant });
    const member = await client(t, { sub: 'm', tenantId: tenant });
    await join(sender, 'global.general');
    await join(member, 'global.general');

    for (const name of SERVER_NAMES) {
      await refused(sender, 'send_message', { event: name, payload: { forged: name, userId: 'm', room: 'x' }, rooms: ['global.general'] }, 'permission');
    }
    await send(sender, 'test.message', { n: 'barrier' }, ['global.general']);
    assert.equal((await h.waitFor(member, 'test.message')).n, 'barrier');
    const leaked = member.inbox.filter((e) => SERVER_NAMES.includes(e.event));
    assert.deepEqual(leaked, [], 'a forged server event reached the member');
  });

  it('answers payloads that are not objects, and missing or malformed rooms or event, with validation', async (t) => {
    const socket = await client(t, { tenantId: tenantId() });
    await join(socket, 'global.general');
    const cases = [
      { event: 'test.message', payload: 'text', rooms: ['global.general'] },
      { event: 'test.message', payload: [1, 2], rooms: ['global.general'] },
      { event: 'test.message', payload: 42, rooms: ['global.general'] },
      { event: 'test.message', payload: null, rooms: ['global.general'] },
      { event: 'test.message', payload: {} },
      { event: 'test.message', payload: {}, rooms: [] },
      { event: 'test.message', payload: {}, rooms: 'global.general' },
      { event: 'test.message', payload: {}, rooms: [42] },
      { payload: {}, rooms: ['global.general'] },
      { event: '', payload: {}, rooms: ['global.general'] },
      { event: 'x'.repeat(101), payload: {}, rooms: ['global.general'] },
      'not an object',
    ];
    for (const payload of cases) await refused(socket, 'send_message', payload, 'validation');
    assert.equal(socket.connected, true);
    await send(socket, 'test.message', { still: 'usable' }, ['global.general']);
  });

  it('reaches each receiver once however many of the named rooms it shares with the sender', async (t) => {
    const tenant = tenantId();
    const doc = `document.${h.uid()}.collaboration`;
    const chat = `chat.${h.uid()}`;
    const sender = await client(t, { sub: 'sender', tenantId: tenant });
    const both = await client(t, { sub: 'both', tenantId: tenant });
    const chatOnly = await client(t, { sub: 'chat-only', tenantId: tenant });
    const docOnly = await client(t, { sub: 'doc-only', tenantId: tenant });
    for (const [s, rooms] of [[sender, [doc, chat, 'global.general']], [both, [doc, chat, 'global.general']], [chatOnly, [chat]], [docOnly, [doc]]]) {
      for (const room of rooms) await join(s, room);
    }

    await send(sender, 'test.message', { n: 1 }, [doc, chat]);
    await send(sender, 'test.message', { n: 2 }, [chat, chat, chat]);
    // The sender is in tenant.<t>.users and global.general: both name the same receivers again.
    await send(sender, 'test.message', { n: 3 }, [doc, chat, 'global.general', `tenant.${tenant}.users`]);
    await send(sender, 'test.message', { n: 'end' }, [doc, chat]);

    const sequence = async (socket, count) => {
      const out = [];
      for (let i = 0; i < count; i++) out.push((await h.waitFor(socket, 'test.message')).n);
      return out;
    };
    assert.deepEqual(await sequence(both, 4), [1, 2, 3, 'end']);
    assert.deepEqual(await sequence(chatOnly, 4), [1, 2, 3, 'end']);
    assert.deepEqual(await sequence(docOnly, 3), [1, 3, 'end']);
    for (const s of [both, chatOnly, docOnly]) nothingPending(s, 'test.message');
    // The sender's barrier: an answer sent after all of them.
    await send(both, 'test.message', { n: 'answer' }, [chat]);
    assert.equal((await h.waitFor(sender, 'test.message')).n, 'answer', 'the sender received its own relay');
    nothingPending(sender, 'test.message');
  });

  it('relays cursor, typing and chat events in document.<id>.collaboration and chat.<id> to their members only', async (t) => {
    const tenant = tenantId();
    const doc = `document.${h.uid()}.collaboration`;
    const otherDoc = `document.${h.uid()}.collaboration`;
    const chat = `chat.${h.uid()}`;
    const writer = await client(t, { sub: 'writer', tenantId: tenant });
    const reader = await client(t, { sub: 'reader', tenantId: tenant });
    const elsewhere = await client(t, { sub: 'elsewhere', tenantId: tenant });
    for (const room of [doc, chat]) {
      await join(writer, room);
      await join(reader, room);
    }
    await join(elsewhere, otherDoc);
    await join(writer, otherDoc);

    const cursor = { documentId: doc, position: { line: 3, column: 14 }, selection: null };
    const typing = { chatId: chat, isTyping: true };
    const message = { text: 'hi there', attachments: [] };
    await send(writer, 'document.cursor', cursor, [doc]);
    await send(writer, 'typing.start', typing, [chat]);
    await send(writer, 'chat.message', message, [chat]);
    await send(writer, 'typing.stop', { chatId: chat }, [chat]);
    await send(writer, 'document.cursor', { barrier: true }, [otherDoc]);

    const gotCursor = await h.waitFor(reader, 'document.cursor');
    assert.deepEqual(gotCursor, relayed(writer, cursor, gotCursor));
    const gotTyping = await h.waitFor(reader, 'typing.start');
    assert.deepEqual(gotTyping, relayed(writer, typing, gotTyping));
    const gotMessage = await h.waitFor(reader, 'chat.message');
    assert.deepEqual(gotMessage, relayed(writer, message, gotMessage));
    assert.equal((await h.waitFor(reader, 'typing.stop')).chatId, chat);

    const barrier = await h.waitFor(elsewhere, 'document.cursor');
    assert.equal(barrier.barrier, true, `a member of another document got this one's cursor first: ${JSON.stringify(barrier)}`);
    for (const name of ['document.cursor', 'typing.start', 'chat.message', 'typing.stop']) nothingPending(elsewhere, name);
  });

  it('keeps tenants apart: a user of another tenant in its own global.general (same user id, same room names) never gets the relays', async (t) => {
    const [a, b] = [tenantId(), tenantId()];
    const chat = `chat.${h.uid()}`;
    const senderA = await client(t, { sub: 'u1', tenantId: a });
    const receiverA = await client(t, { sub: 'u2', tenantId: a });
    const senderB = await client(t, { sub: 'u1', tenantId: b });
    const receiverB = await client(t, { sub: 'u2', tenantId: b });
    for (const s of [senderA, receiverA, senderB, receiverB]) {
      await join(s, 'global.general');
      await join(s, chat);
    }

    await send(senderA, 'test.message', { tenant: 'a', n: 1 }, ['global.general']);
    await send(senderA, 'test.message', { tenant: 'a', n: 2 }, [chat, 'global.general']);
    assert.deepEqual((await h.waitFor(receiverA, 'test.message')).tenant, 'a');
    assert.deepEqual((await h.waitFor(receiverA, 'test.message')).n, 2);

    // B's own relay, sent after A's were delivered, is the barrier for both of B's sockets.
    await send(senderB, 'test.message', { tenant: 'b', n: 'barrier' }, ['global.general']);
    const gotB = await h.waitFor(receiverB, 'test.message');
    assert.deepEqual(gotB, relayed(senderB, { tenant: 'b', n: 'barrier' }, gotB), `tenant b received tenant a's relay: ${JSON.stringify(gotB)}`);
    await send(receiverB, 'test.message', { tenant: 'b', n: 'answer' }, [chat]);
    assert.equal((await h.waitFor(senderB, 'test.message')).n, 'answer', "tenant b's sender received tenant a's relay");
    for (const s of [receiverB, senderB]) nothingPending(s, 'test.message');
    // And A's sockets never got B's.
    await send(receiverA, 'test.message', { tenant: 'a', n: 'answer' }, ['global.general']);
    assert.equal((await h.waitFor(senderA, 'test.message')).n, 'answer');
    nothingPending(senderA, 'test.message');
    nothingPending(receiverA, 'test.message');
  });
});

// ---------------------------------------------------------------------------------------------

describe('cookie tokens', () => {
  const APP = 'https://app.example';
  let cookieGw;
  let renamedGw;
  before(async () => {
    [cookieGw, renamedGw] = await Promise.all([
      h.startGateway({ env: { CORS_ORIGINS: APP } }),
      h.startGateway({ env: { AUTH_COOKIE_NAME: 'rt_session', CORS_ORIGINS: APP } }),
    ]);
  });
  after(async () => {
    await Promise.all([cookieGw?.stop(), renamedGw?.stop()]);
  });

  /** Options for a socket whose only token is the cookie header. */
  const withCookie = (cookie, headers = {}, transports = ['websocket']) => ({
    namespace: NS,
    welcome: WELCOME,
    transports,
    extraHeaders: { cookie, ...headers },
  });

  /** Asserts the refusal contract: connect, `error` {type: auth}, server disconnect, no welcome. */
  async function refusedConnection(t, url, options, message) {
    const socket = h.openFor(t, url, options);
    await h.waitFor(socket, 'connect');
    const error = await h.waitFor(socket, 'error');
    assert.equal(error.type, 'auth', JSON.stringify(error));
    if (message) assert.equal(error.message, message);
    assert.equal(typeof error.message, 'string');
    assertIso(error.timestamp);
    assert.equal(await h.waitFor(socket, 'disconnect'), 'io server disconnect');
    nothingPending(socket, WELCOME);
    nothingPending(socket, 'connected');
    return error;
  }

  for (const transports of [['websocket'], ['polling']]) {
    it(`accepts Cookie: access_token=<jwt> without an Origin header over ${transports[0]}`, async (t) => {
      const token = h.mintToken({ sub: 'cookie-user', tenantId: tenantId() });
      const socket = await h.connectFor(t, cookieGw.url, withCookie(`access_token=${token}`, {}, transports));
      assert.equal(socket.welcome.userId, 'cookie-user');
      await join(socket, 'global.general');
    });
  }

  it('finds the token among other cookies', async (t) => {
    const token = h.mintToken({ sub: 'many-cookies', tenantId: tenantId() });
    const socket = await h.connectFor(t, cookieGw.url, withCookie(`theme=dark; access_token=${token}; lang=en`));
    assert.equal(socket.welcome.userId, 'many-cookies');
  });

  it('accepts the cookie from an allowed origin (CORS_ORIGINS)', async (t) => {
    const token = h.mintToken({ sub: 'app-user', tenantId: tenantId() });
    const socket = await h.connectFor(t, cookieGw.url, withCookie(`access_token=${token}`, { origin: APP }));
    assert.equal(socket.welcome.userId, 'app-user');
  });

  it('refuses the cookie from a foreign origin with auth and a server disconnect', async (t) => {
    const token = h.mintToken({ sub: 'hijacked', tenantId: tenantId() });
    await refusedConnection(t, cookieGw.url, withCookie(`access_token=${token}`, { origin: 'https://evil.example' }));
    // An allowed origin's look-alike is foreign too.
    await refusedConnection(t, cookieGw.url, withCookie(`access_token=${token}`, { origin: 'https://app.example.evil.example' }));
    // The default CORS origin is not allowed on a gateway configured with others.
    await refusedConnection(t, cookieGw.url, withCookie(`access_token=${token}`, { origin: 'http://localhost:3000' }));
  });

  it('accepts an explicit token (not a cookie) from any origin', async (t) => {
    const socket = await h.connectFor(t, cookieGw.url, {
      namespace: NS,
      welcome: WELCOME,
      token: h.mintToken({ sub: 'explicit', tenantId: tenantId() }),
      extraHeaders: { origin: 'https://evil.example' },
    });
    assert.equal(socket.welcome.userId, 'explicit');
  });

  it('refuses an invalid cookie token like any invalid token', async (t) => {
    await refusedConnection(t, cookieGw.url, withCookie('access_token=not.a-jwt'), 'Invalid authentication token');
    await refusedConnection(t, cookieGw.url, withCookie(`access_token=${h.mintToken({ exp: h.nowSecs() - 30 })}`), 'Authentication token expired');
  });

  it('reads the cookie named by AUTH_COOKIE_NAME, and no longer access_token', async (t) => {
    const token = h.mintToken({ sub: 'renamed', tenantId: tenantId() });
    const socket = await h.connectFor(t, renamedGw.url, withCookie(`rt_session=${token}`, { origin: APP }));
    assert.equal(socket.welcome.userId, 'renamed');
    await refusedConnection(t, renamedGw.url, withCookie(`access_token=${token}`), 'Authentication token required');
    await refusedConnection(t, renamedGw.url, withCookie(`rt_session=${token}`, { origin: 'https://evil.example' }));
  });

  it('does not take cookies on /workflow, whose spec does not allow them', async (t) => {
    const token = h.mintToken({ sub: 'cookie-user', tenantId: tenantId() });
    await refusedConnection(t, cookieGw.url, { namespace: '/workflow', transports: ['websocket'], extraHeaders: { cookie: `access_token=${token}` } }, 'Authentication token required');
    await refusedConnection(t, cookieGw.url, { namespace: '/workflow', transports: ['websocket'], extraHeaders: { cookie: `access_token=${token}`, origin: APP } }, 'Authentication token required');
  });
});

// ---------------------------------------------------------------------------------------------

describe('published events on /ws', () => {
  /** The sockets of one scene: two tenants with the same user ids, admins and platform admins. */
  async function scene(t) {
    const a = tenantId();
    const b = tenantId();
    const s = {
      a,
      b,
      u1: await client(t, { sub: 'u1', tenantId: a }),
      u1Again: await client(t, { sub: 'u1', tenantId: a }),
      u2: await client(t, { sub: 'u2', tenantId: a }),
      adminA: await client(t, { sub: 'boss', tenantId: a, roles: ['admin'] }),
      tenantAdminA: await client(t, { sub: 'boss2', tenantId: a, roles: ['tenant_admin'] }),
      u1B: await client(t, { sub: 'u1', tenantId: b }),
      adminB: await client(t, { sub: 'boss', tenantId: b, roles: ['admin'] }),
      platform: await client(t, { sub: 'root', tenantId: undefined, roles: ['platform_admin'] }),
      superA: await client(t, { sub: 'super', tenantId: a, roles: ['super_admin'] }),
    };
    return s;
  }

  /** Publishes `events` followed by one barrier update per tenant, and waits for the barriers on every tenant socket. */
  async function publishWithBarrier(s, events) {
    const marker = h.uid();
    await h.publishOk(gw.url, [...events, h.event('tenant.data.update', s.a, { barrier: marker }), h.event('tenant.data.update', s.b, { barrier: marker })]);
    for (const name of ['u1', 'u1Again', 'u2', 'adminA', 'tenantAdminA', 'u1B', 'adminB', 'superA']) {
      const got = await h.waitFor(s[name], 'tenant.data.update', h.TIMEOUT, (d) => d?.barrier === marker);
      assert.deepEqual(got, { barrier: marker });
    }
  }

  it('user.notification reaches only that user\'s sockets in that tenant', async (t) => {
    const s = await scene(t);
    const data = { userId: 'u1', type: 'info', title: 'Task Completed', message: 'Your data export is ready', timestamp: Date.now() };
    await publishWithBarrier(s, [h.event('user.notification', s.a, data)]);
    assert.deepEqual(await h.waitFor(s.u1, 'user.notification'), data);
    assert.deepEqual(await h.waitFor(s.u1Again, 'user.notification'), data);
    for (const name of ['u1', 'u1Again', 'u2', 'adminA', 'tenantAdminA', 'u1B', 'adminB', 'superA', 'platform']) {
      nothingPending(s[name], 'user.notification', `${name} got u1's notification (or twice)`);
    }
  });

  it('platform.security.alert without a tenantId reaches platform admins only, once each', async (t) => {
    const s = await scene(t);
    const alert = { type: 'failed_login', attempts: 5, ipAddress: '192.168.1.100' };
    await publishWithBarrier(s, [h.event('platform.security.alert', undefined, alert), h.event('platform.security.alert', undefined, { end: true })]);
    for (const name of ['platform', 'superA']) {
      assert.deepEqual(await h.waitFor(s[name], 'platform.security.alert'), alert);
      assert.deepEqual(await h.waitFor(s[name], 'platform.security.alert'), { end: true }, `${name} got the alert twice`);
    }
    for (const name of ['u1', 'u1Again', 'u2', 'adminA', 'tenantAdminA', 'u1B', 'adminB', 'superA']) {
      nothingPending(s[name], 'platform.security.alert', `${name} got the platform alert`);
    }
  });

  it('tenant.data.update reaches every user of its tenant and no one else', async (t) => {
    const s = await scene(t);
    const update = { type: 'inventory_update', item: { id: 'i1', qty: 3 } };
    await h.publishOk(gw.url, [h.event('tenant.data.update', s.a, update), h.event('platform.health.ping', undefined, { barrier: true })]);
    for (const name of ['u1', 'u1Again', 'u2', 'adminA', 'tenantAdminA', 'superA']) {
      assert.deepEqual(await h.waitFor(s[name], 'tenant.data.update'), update, name);
    }
    assert.deepEqual(await h.waitFor(s.platform, 'platform.health.ping'), { barrier: true });
    nothingPending(s.platform, 'tenant.data.update', 'a tenantless platform admin got a tenant update');
    await publishWithBarrier(s, []);
    for (const name of ['u1B', 'adminB']) nothingPending(s[name], 'tenant.data.update', `${name} of the other tenant got it`);
    for (const name of ['u1', 'u2', 'adminA']) nothingPending(s[name], 'tenant.data.update', `${name} got it twice`);
  });

  it('tenant.admin.* reaches only the admins of its tenant', async (t) => {
    const s = await scene(t);
    const data = { type: 'billing', note: 'for admins' };
    await publishWithBarrier(s, [h.event('tenant.admin.something', s.a, data)]);
    assert.deepEqual(await h.waitFor(s.adminA, 'tenant.admin.something'), data);
    assert.deepEqual(await h.waitFor(s.tenantAdminA, 'tenant.admin.something'), data);
    for (const name of ['u1', 'u1Again', 'u2', 'u1B', 'adminB', 'superA', 'platform', 'adminA', 'tenantAdminA']) {
      nothingPending(s[name], 'tenant.admin.something', `${name} got the admin update (or twice)`);
    }
  });

  it('POST /api/v1/notifications {recipient: {userId}} reaches that user\'s /ws sockets as user.notification', async (t) => {
    const s = await scene(t);
    const body = { recipient: { userId: 'u1' }, content: { subject: 'Export ready', body: 'Your data export is ready', data: { exportId: 'x1' } }, tenantId: s.a };
    const response = await h.api(gw.url, '/api/v1/notifications', body);
    assert.equal(response.status, 202, JSON.stringify(response.body));
    assert.equal(typeof response.body.id, 'string');
    const expected = { id: response.body.id, subject: 'Export ready', body: 'Your data export is ready', data: { exportId: 'x1' }, userId: 'u1' };
    assert.deepEqual(await h.waitFor(s.u1, 'user.notification'), expected);
    assert.deepEqual(await h.waitFor(s.u1Again, 'user.notification'), expected);
    await publishWithBarrier(s, []);
    for (const name of ['u1', 'u1Again', 'u2', 'adminA', 'tenantAdminA', 'u1B', 'adminB', 'superA', 'platform']) {
      nothingPending(s[name], 'user.notification', `${name} got u1's notification (or twice)`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('the performance stream', () => {
  let perfGw;
  before(async () => {
    perfGw = await h.startGateway();
  });
  after(async () => {
    await perfGw?.stop();
  });

  it('sends performance.metrics to performance.dashboard members within ~7 s, and to no one else', async (t) => {
    const options = { url: perfGw.url };
    const watcher = await client(t, { sub: 'ops', tenantId: undefined, roles: ['platform_admin'] }, options);
    const idleAdmin = await client(t, { sub: 'ops2', tenantId: tenantId(), roles: ['super_admin'] }, options);
    const user = await client(t, { sub: 'u1', tenantId: tenantId() }, options);
    await join(watcher, 'performance.dashboard');
    await join(user, 'global.general');

    const metrics = await h.waitFor(watcher, 'performance.metrics', 7000);
    const number = (value, what) => assert.equal(typeof value, 'number', `${what}: ${JSON.stringify(metrics)}`);
    number(metrics.connections.total, 'connections.total');
    number(metrics.connections.byNamespace['/ws'], "connections.byNamespace['/ws']");
    assert.ok(metrics.connections.byNamespace['/ws'] >= 3, JSON.stringify(metrics.connections));
    assert.ok(metrics.connections.total >= metrics.connections.byNamespace['/ws'], JSON.stringify(metrics.connections));
    number(metrics.messages.receivedPerSecond, 'messages.receivedPerSecond');
    assert.ok(metrics.messages.receivedPerSecond > 0, 'the join_room events were received in the interval');
    number(metrics.latency.eventHandlingMs.avg, 'latency.eventHandlingMs.avg');
    number(metrics.latency.eventHandlingMs.max, 'latency.eventHandlingMs.max');
    assert.ok(metrics.latency.eventHandlingMs.max >= metrics.latency.eventHandlingMs.avg, JSON.stringify(metrics.latency));
    number(metrics.process.cpuPercent, 'process.cpuPercent');
    assert.ok(metrics.process.cpuPercent > 0, JSON.stringify(metrics.process));
    number(metrics.process.memoryRssBytes, 'process.memoryRssBytes');
    assert.ok(metrics.process.memoryRssBytes > 1024 * 1024, JSON.stringify(metrics.process));
    assertIso(metrics.timestamp);

    // A round trip of each other socket, after the tick, is its barrier.
    await join(idleAdmin, 'platform.health');
    await join(user, 'chat.after');
    nothingPending(idleAdmin, 'performance.metrics', 'a platform admin outside the room got the stream');
    nothingPending(user, 'performance.metrics', 'a user got the stream');
  });
});

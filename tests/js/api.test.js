// The HTTP API's contracts and its refusals: API keys (401), bad bodies (400), the body limit
// (413) on every endpoint; raw emits to named rooms of one tenant (POST /api/v1/emit); the
// refusals of POST /api/v1/notifications; and the counts of GET /api/v1/stats. Every refused
// call is checked to deliver nothing, with a barrier the watching sockets do receive.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';

/** The gateway most tests use, with the default limits. */
let gw;
/** A gateway with API_MAX_BODY_SIZE=1000, for the body limit and for exact counts in stats. */
let small;

/** A tenant with a watcher on `/` and one on `/ws`, user `watcher`: refused calls target them. */
let tenant;
let watchMain;
let watchWs;

before(async () => {
  [gw, small] = await Promise.all([h.startGateway(), h.startGateway({ env: { API_MAX_BODY_SIZE: '1000' } })]);
  tenant = `api-${h.uid()}`;
  const token = h.mintToken({ sub: 'watcher', tenantId: tenant });
  watchMain = await h.connectClient(gw.url, { namespace: '/', welcome: null, token });
  watchWs = await h.connectClient(gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token });
});
after(async () => {
  watchMain?.disconnect();
  watchWs?.disconnect();
  await Promise.all([gw?.stop(), small?.stop()]);
});

const EVENTS = '/api/v1/events';
const EMIT = '/api/v1/emit';
const NOTIFY = '/api/v1/notifications';
const STATS = '/api/v1/stats';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A valid body for each POST endpoint, aimed at the watchers. */
const VALID = {
  [EVENTS]: () => h.event('tenant.data.update', tenant, { marker: 'valid event' }),
  [EMIT]: () => ({ namespace: '/ws', rooms: [`tenant.${tenant}.users`], event: 'valid.emit', data: { marker: 'valid emit' }, tenantId: tenant }),
  [NOTIFY]: () => ({ recipient: { userId: 'watcher' }, content: { subject: 'valid', body: 'notification' }, tenantId: tenant }),
};

let barriers = 0;
/**
 * Barrier: a notification to the watcher reaches both watchers (`notification:new` on `/`,
 * `user.notification` on `/ws`); anything a refused call delivered would have arrived before it.
 */
async function assertNothingDelivered() {
  const subject = `barrier-${++barriers}`;
  const response = await h.api(gw.url, NOTIFY, { recipient: { userId: 'watcher' }, content: { subject }, tenantId: tenant });
  assert.equal(response.status, 202, JSON.stringify(response.body));
  const main = await h.waitFor(watchMain, 'notification:new');
  const ws = await h.waitFor(watchWs, 'user.notification');
  assert.equal(main.subject, subject, `/ got something before the barrier: ${JSON.stringify(main)}`);
  assert.equal(ws.subject, subject, `/ws got something before the barrier: ${JSON.stringify(ws)}`);
  assert.deepEqual(watchMain.inbox, [], 'the / watcher got something before the barrier');
  assert.deepEqual(watchWs.inbox, [], 'the /ws watcher got something before the barrier');
}

/** Asserts a 400 `{error: {type: 'validation', message}}` whose message matches `message`. */
function assertValidation(response, message, what) {
  assert.equal(response.status, 400, `${what}: ${response.status} ${JSON.stringify(response.body)}`);
  assert.equal(response.body?.error?.type, 'validation', `${what}: ${JSON.stringify(response.body)}`);
  assert.match(response.body.error.message, message, what);
}


// ---------------------------------------------------------------------------------------------

describe('API keys', () => {
  const KEYS = [
    ['no key', {}],
    ['a wrong X-API-Key', { 'X-API-Key': 'not-the-key' }],
    ['a wrong Bearer key', { Authorization: 'Bearer not-the-key' }],
    ["a user's JWT as the Bearer key", { Authorization: `Bearer ${h.mintToken({ tenantId: tenant })}` }],
  ];
  for (const path of [EVENTS, EMIT, NOTIFY, STATS]) {
    const method = path === STATS ? 'GET' : 'POST';
    for (const [name, headers] of KEYS) {
      it(`${method} ${path} with ${name}: 401 {error: {type: "auth", message}} and nothing delivered`, async () => {
        const response = await h.api(gw.url, path, path === STATS ? undefined : VALID[path](), { headers });
        assert.equal(response.status, 401, JSON.stringify(response.body));
        assert.equal(response.body?.error?.type, 'auth');
        assert.equal(typeof response.body.error.message, 'string');
        assert.ok(response.body.error.message.length > 0);
        if (path !== STATS) await assertNothingDelivered();
      });
    }
    if (method === 'POST') {
      it(`POST ${path} with no key and a body that is not JSON: 401 (the key is checked first)`, async () => {
        const response = await h.api(gw.url, path, '{not json', { headers: {} });
        assert.equal(response.status, 401, JSON.stringify(response.body));
        assert.equal(response.body?.error?.type, 'auth');
      });
    }
    it(`${method} ${path} with the right key is not refused (control)`, async () => {
      const response = await h.api(gw.url, path, path === STATS ? undefined : VALID[path]());
      assert.equal(response.status, path === STATS ? 200 : 202, JSON.stringify(response.body));
      if (path === EVENTS) assert.equal((await h.waitFor(watchWs, 'tenant.data.update')).marker, 'valid event');
      if (path === EMIT) assert.equal((await h.waitFor(watchWs, 'valid.emit')).marker, 'valid emit');
      if (path === NOTIFY) {
        assert.equal((await h.waitFor(watchMain, 'notification:new')).subject, 'valid');
        assert.equal((await h.waitFor(watchWs, 'user.notification')).subject, 'valid');
      }
      await assertNothingDelivered();
    });
  }
});

describe('bodies that are not JSON objects', () => {
  const NOT_OBJECT = {
    [EVENTS]: /^the body must be an event object or an array of them$/,
    [EMIT]: /^the body must be an object \{namespace, rooms, event, data, tenantId\}$/,
    [NOTIFY]: /^the body must be an object \{recipient, content, tenantId\}$/,
  };
  const INVALID_JSON = [
    ['a truncated object', '{"recipient": {"userId": "watcher"},'],
    ['a bare word', 'hello'],
    ['an empty body', ''],
    ['single-quoted JSON', "{'event': 'x'}"],
  ];
  const NON_OBJECTS = [
    ['a number', '42'],
    ['a string', '"watcher"'],
    ['null', 'null'],
    ['true', 'true'],
  ];
  for (const path of [EVENTS, EMIT, NOTIFY]) {
    for (const [name, text] of INVALID_JSON) {
      it(`POST ${path} with ${name}: 400 validation "the body is not valid JSON"`, async () => {
        assertValidation(await h.api(gw.url, path, text), /^the body is not valid JSON/, name);
        await assertNothingDelivered();
      });
    }
    // An array is a batch for /events; the others take one object. (`null` text below: the valid
    // body needs the tenant, known only once `before` ran.)
    const nonObjects = path === EVENTS ? NON_OBJECTS : [...NON_OBJECTS, ['an array', '[]'], ['an array holding a valid body', null]];
    for (const [name, text] of nonObjects) {
      it(`POST ${path} with ${name}: 400 validation naming the expected shape`, async () => {
        const body = text ?? JSON.stringify([VALID[path]()]);
        assertValidation(await h.api(gw.url, path, body), NOT_OBJECT[path], name);
        await assertNothingDelivered();
      });
    }
  }
});

describe('the body limit (API_MAX_BODY_SIZE=1000)', () => {
  /** JSON text of exactly `size` bytes: `build(padding)` with the padding grown to fit. */
  const sized = (build, size) => {
    const base = JSON.stringify(build('')).length;
    const text = JSON.stringify(build('x'.repeat(size - base)));
    assert.equal(Buffer.byteLength(text), size);
    return text;
  };
  const BUILD = {
    [EVENTS]: (pad) => h.event('tenant.data.update', 'big', { pad }),
    [EMIT]: (pad) => ({ namespace: '/ws', rooms: ['tenant.big.users'], event: 'big', data: { pad }, tenantId: 'big' }),
    [NOTIFY]: (pad) => ({ recipient: { userId: 'nobody' }, content: { subject: 'big', body: pad }, tenantId: 'big' }),
  };
  for (const path of [EVENTS, EMIT, NOTIFY]) {
    it(`POST ${path}: 1001 bytes -> 413 {error: {type, message}} naming the limit; 1000 bytes -> 202`, async () => {
      const over = await h.api(small.url, path, sized(BUILD[path], 1001));
      assert.equal(over.status, 413, JSON.stringify(over.body));
      assert.equal(typeof over.body?.error?.type, 'string', JSON.stringify(over.body));
      assert.match(over.body.error.message, /1000 bytes/);
      const far = await h.api(small.url, path, sized(BUILD[path], 50_000));
      assert.equal(far.status, 413, JSON.stringify(far.body));
      const at = await h.api(small.url, path, sized(BUILD[path], 1000));
      assert.equal(at.status, 202, `a body of exactly the limit: ${at.status} ${JSON.stringify(at.body)}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('POST /api/v1/emit', () => {
  /** A socket on `namespace` for `claims`, past its welcome, closed when `t` ends. */
  const WELCOME = { '/': null, '/ws': 'connection.confirmed', '/realtime': 'connection:success', '/workflow': 'connected' };
  const socketOn = (t, namespace, claims) =>
    h.connectFor(t, gw.url, { namespace, welcome: WELCOME[namespace], ...(claims === null ? {} : { token: h.mintToken(claims) }) });
  const emit = (body) => h.api(gw.url, EMIT, body);
  async function emitOk(body, rooms) {
    const response = await emit(body);
    assert.deepEqual(response, { status: 202, body: { rooms } }, JSON.stringify(body));
  }
  /** Emits `barrier` with `{marker}` to `rooms` and waits for it on `socket`; then nothing else may be pending. */
  async function barrier(socket, namespace, rooms, tenantId, events) {
    const marker = `b-${h.uid()}`;
    await emitOk({ namespace, rooms, event: 'barrier', data: { marker }, ...(tenantId ? { tenantId } : {}) }, rooms.length);
    await h.waitFor(socket, 'barrier', h.TIMEOUT, (d) => d?.marker === marker);
    for (const event of events) assert.deepEqual(h.pending(socket, event), [], `${event} reached a socket it was not for`);
  }

  it("/ws tenant.<t1>.users with tenantId t1: every socket of t1 gets the event and data as is, t2's do not", async (t) => {
    const t1 = `em1-${h.uid()}`;
    const t2 = `em2-${h.uid()}`;
    const ann = await socketOn(t, '/ws', { sub: 'ann', tenantId: t1 });
    const bob = await socketOn(t, '/ws', { sub: 'bob', tenantId: t1, roles: ['admin'] });
    const eve = await socketOn(t, '/ws', { sub: 'ann', tenantId: t2 });
    const data = { text: 'hello', n: 1, nested: { list: [1, 'two', null] } };
    await emitOk({ namespace: '/ws', rooms: [`tenant.${t1}.users`], event: 'custom.hello', data, tenantId: t1 }, 1);
    for (const socket of [ann, bob]) assert.deepEqual(await h.waitFor(socket, 'custom.hello'), data);
    await barrier(eve, '/ws', [`tenant.${t2}.users`], t2, ['custom.hello']);
    await barrier(ann, '/ws', [`tenant.${t1}.users`], t1, ['custom.hello']);
  });

  it("a tenant room named for t1 but sent with tenantId t2 reaches nobody: neither t1's room nor t2's", async (t) => {
    const t1 = `em1-${h.uid()}`;
    const t2 = `em2-${h.uid()}`;
    const inT1 = await socketOn(t, '/ws', { sub: 'u1', tenantId: t1 });
    const inT2 = await socketOn(t, '/ws', { sub: 'u1', tenantId: t2 });
    await emitOk({ namespace: '/ws', rooms: [`tenant.${t1}.users`], event: 'cross.tenant', data: { leak: true }, tenantId: t2 }, 1);
    await barrier(inT1, '/ws', [`tenant.${t1}.users`], t1, ['cross.tenant']);
    await barrier(inT2, '/ws', [`tenant.${t2}.users`], t2, ['cross.tenant']);
  });

  it("/realtime dashboard with tenantId: only that tenant's subscribers of dashboard get it", async (t) => {
    const t1 = `em1-${h.uid()}`;
    const t2 = `em2-${h.uid()}`;
    const subscriber = await socketOn(t, '/realtime', { sub: 'u1', tenantId: t1 });
    const bystander = await socketOn(t, '/realtime', { sub: 'u2', tenantId: t1 });
    const foreign = await socketOn(t, '/realtime', { sub: 'u1', tenantId: t2 });
    const anonymous = await socketOn(t, '/realtime', null);
    assert.equal(anonymous.welcome.authenticated, false);
    assert.deepEqual(await h.request(subscriber, 'subscribe:dashboard'), { success: true, room: 'dashboard' });
    assert.deepEqual(await h.request(foreign, 'subscribe:dashboard'), { success: true, room: 'dashboard' });
    assert.deepEqual(await h.request(bystander, 'subscribe:queue'), { success: true, room: 'queue' });

    const data = { revenue: 42 };
    await emitOk({ namespace: '/realtime', rooms: ['dashboard'], event: 'dashboard:custom', data, tenantId: t1 }, 1);
    assert.deepEqual(await h.waitFor(subscriber, 'dashboard:custom'), data);
    await barrier(foreign, '/realtime', ['dashboard'], t2, ['dashboard:custom']);
    await barrier(bystander, '/realtime', ['queue'], t1, ['dashboard:custom']);
    await barrier(subscriber, '/realtime', ['dashboard'], t1, ['dashboard:custom']);
    assert.deepEqual(h.pending(anonymous, 'dashboard:custom'), []);
  });

  it('several rooms: answers their number, and a socket in two of them gets the event once', async (t) => {
    const t1 = `em1-${h.uid()}`;
    const both = await socketOn(t, '/realtime', { sub: 'u1', tenantId: t1 });
    assert.equal((await h.request(both, 'subscribe:dashboard')).success, true);
    assert.equal((await h.request(both, 'subscribe:queue')).success, true);
    await emitOk({ namespace: '/realtime', rooms: ['dashboard', 'queue'], event: 'twice', data: { n: 1 }, tenantId: t1 }, 2);
    assert.deepEqual(await h.waitFor(both, 'twice'), { n: 1 });
    await barrier(both, '/realtime', ['queue'], t1, ['twice']);
  });

  it('/ channels and user rooms by name, with tenantId', async (t) => {
    const t1 = `em1-${h.uid()}`;
    const socket = await socketOn(t, '/', { sub: 'u1', tenantId: t1 });
    const other = await socketOn(t, '/', { sub: 'u2', tenantId: t1 });
    await emitOk({ namespace: '/', rooms: ['alerts'], event: 'raw.alert', data: { level: 'high' }, tenantId: t1 }, 1);
    for (const s of [socket, other]) assert.deepEqual(await h.waitFor(s, 'raw.alert'), { level: 'high' });
    await emitOk({ namespace: '/', rooms: ['user:u1'], event: 'raw.personal', data: { only: 'u1' }, tenantId: t1 }, 1);
    assert.deepEqual(await h.waitFor(socket, 'raw.personal'), { only: 'u1' });
    await barrier(other, '/', ['alerts'], t1, ['raw.personal']);
  });

  it('a global room (/ws platform.admins) needs no tenantId, and reaches platform admins of any tenant or none', async (t) => {
    const t1 = `em1-${h.uid()}`;
    const platform = await socketOn(t, '/ws', { sub: 'root', tenantId: undefined, roles: ['platform_admin'] });
    const superAdmin = await socketOn(t, '/ws', { sub: 'sa', tenantId: t1, roles: ['super_admin'] });
    const user = await socketOn(t, '/ws', { sub: 'u1', tenantId: t1 });
    await emitOk({ namespace: '/ws', rooms: ['platform.admins'], event: 'ops.notice', data: { msg: 'deploy' } }, 1);
    for (const s of [platform, superAdmin]) assert.deepEqual(await h.waitFor(s, 'ops.notice'), { msg: 'deploy' });
    await barrier(user, '/ws', [`tenant.${t1}.users`], t1, ['ops.notice']);
  });

  describe('refusals: 400 {error: {type: "validation"}} naming the problem, and nothing delivered', () => {
    const room = () => `tenant.${tenant}.users`;
    const ok = () => ({ namespace: '/ws', rooms: [room()], event: 'bad.emit', data: { bad: true }, tenantId: tenant });
    const REFUSALS = [
      ['an unknown namespace', () => ({ ...ok(), namespace: '/nope' }), /^no namespace `\/nope` \(known: \/, \/realtime, \/workflow, \/ws\)$/],
      ['a namespace that is not a string', () => ({ ...ok(), namespace: 5 }), /^`namespace` must be a string/],
      ['a room name /ws does not have', () => ({ ...ok(), rooms: ['nope.room'] }), /^rooms\[0\]: `nope\.room` is not a room name of \/ws$/],
      ['a room name /realtime does not have', () => ({ ...ok(), namespace: '/realtime', rooms: ['nope'] }), /^rooms\[0\]: `nope` is not a room name of \/realtime$/],
      ['a known room beside an unknown one', () => ({ ...ok(), rooms: [room(), 'nope.room'] }), /^rooms\[1\]: `nope\.room` is not a room name of \/ws$/],
      ['a /ws tenant room without tenantId', () => ({ ...ok(), tenantId: undefined }), /^rooms\[0\]: `tenant\.[^`]+\.users` is a tenant room \(`tenant_users`\): give the tenantId$/],
      ['a / channel without tenantId', () => ({ ...ok(), namespace: '/', rooms: ['alerts'], tenantId: undefined }), /^rooms\[0\]: `alerts` is a tenant room .*give the tenantId$/],
      ['a tenant room with tenantId null', () => ({ ...ok(), tenantId: null }), /give the tenantId$/],
      ['an empty tenantId', () => ({ ...ok(), tenantId: '' }), /^`tenantId` must be a non-empty string or a number$/],
      ['the reserved event connect', () => ({ ...ok(), event: 'connect' }), /^event `connect` is reserved by Socket\.IO and cannot be emitted$/],
      ['the reserved event disconnect', () => ({ ...ok(), event: 'disconnect' }), /^event `disconnect` is reserved/],
      ['the reserved event error', () => ({ ...ok(), event: 'error' }), /^event `error` is reserved/],
      ['the reserved event connect_error', () => ({ ...ok(), event: 'connect_error' }), /^event `connect_error` is reserved/],
      ['the reserved event disconnecting', () => ({ ...ok(), event: 'disconnecting' }), /^event `disconnecting` is reserved/],
      ['no event', () => ({ ...ok(), event: undefined }), /^`event` must be a non-empty string$/],
      ['an empty event', () => ({ ...ok(), event: '' }), /^`event` must be a non-empty string$/],
      ['an event that is not a string', () => ({ ...ok(), event: 7 }), /^`event` must be a non-empty string$/],
      ['no rooms', () => ({ ...ok(), rooms: undefined }), /^`rooms` must be a room name or a list of room names$/],
      ['rooms that is a number', () => ({ ...ok(), rooms: 5 }), /^`rooms` must be a room name or a list of room names$/],
      ['rooms that is an object', () => ({ ...ok(), rooms: { name: room() } }), /^`rooms` must be a room name or a list of room names$/],
      ['rooms with a non-string item', () => ({ ...ok(), rooms: [room(), 5] }), /^`rooms` must be a room name or a list of room names$/],
      ['an empty rooms list', () => ({ ...ok(), rooms: [] }), /^rooms: name at least one room$/],
      ['an unknown field', () => ({ ...ok(), target: 'everyone' }), /^unknown field `target` \(known: namespace, rooms, event, data, tenantId\)$/],
      ['an unknown field beside a valid body', () => ({ ...ok(), event: 'bad.emit', userId: 'watcher' }), /^unknown field `userId`/],
    ];
    for (const [name, body, message] of REFUSALS) {
      it(`refuses ${name}`, async () => {
        assertValidation(await emit(body()), message, name);
        await assertNothingDelivered();
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('POST /api/v1/notifications refusals: 400 {error: {type: "validation"}} naming the problem, and nothing delivered', () => {
  const ok = (extra = {}) => ({ recipient: { userId: 'watcher' }, content: { subject: 'bad', body: 'refused', data: {} }, tenantId: tenant, ...extra });
  const acks = (ackTimeoutMs) => ok({ enableAcknowledgments: true, ackTimeoutMs });
  const REFUSALS = [
    ['no recipient', () => ok({ recipient: undefined }), /^`recipient` must be an object$/],
    ['a recipient that is a string', () => ok({ recipient: 'watcher' }), /^`recipient` must be an object$/],
    ['an empty recipient', () => ok({ recipient: {} }), /^`recipient` must be either \{userId\} or \{channel\}$/],
    ['a recipient with both userId and channel', () => ok({ recipient: { userId: 'watcher', channel: 'alerts' } }), /^`recipient` must be either \{userId\} or \{channel\}$/],
    ['an empty userId', () => ok({ recipient: { userId: '' } }), /^`recipient\.userId` must be a non-empty string or a number$/],
    ['a userId that is an object', () => ok({ recipient: { userId: { id: 'watcher' } } }), /^`recipient\.userId` must be/],
    ['a channel that is a boolean', () => ok({ recipient: { channel: true } }), /^`recipient\.channel` must be/],
    ['no content', () => ok({ content: undefined }), /^`content` must be an object$/],
    ['content that is a string', () => ok({ content: 'hello' }), /^`content` must be an object$/],
    ['a subject that is a number', () => ok({ content: { subject: 5, body: 'b' } }), /^`content\.subject` must be a string$/],
    ['a body that is an object', () => ok({ content: { subject: 's', body: { text: 'b' } } }), /^`content\.body` must be a string$/],
    ['no tenantId', () => ok({ tenantId: undefined }), /^`tenantId` is required/],
    ['tenantId null', () => ok({ tenantId: null }), /^`tenantId` is required/],
    ['an empty tenantId', () => ok({ tenantId: '' }), /^`tenantId` must be a non-empty string or a number$/],
    ['enableAcknowledgments "true"', () => ok({ enableAcknowledgments: 'true' }), /^`enableAcknowledgments` must be true or false$/],
    ['enableAcknowledgments 1', () => ok({ enableAcknowledgments: 1 }), /^`enableAcknowledgments` must be true or false$/],
    ['ackTimeoutMs 0', () => acks(0), /^`ackTimeoutMs` must be a number of milliseconds from 1 to 30000$/],
    ['ackTimeoutMs 30001', () => acks(30001), /^`ackTimeoutMs` must be a number of milliseconds from 1 to 30000$/],
    ['ackTimeoutMs -1', () => acks(-1), /^`ackTimeoutMs` must be/],
    ['ackTimeoutMs 1.5', () => acks(1.5), /^`ackTimeoutMs` must be/],
    ['ackTimeoutMs "1000"', () => acks('1000'), /^`ackTimeoutMs` must be/],
  ];
  for (const [name, body, message] of REFUSALS) {
    it(`refuses ${name}`, async () => {
      assertValidation(await h.api(gw.url, NOTIFY, body()), message, name);
      await assertNothingDelivered();
    });
  }

  it('accepts the bounds ackTimeoutMs 1 and 30000', async () => {
    for (const ackTimeoutMs of [1, 30000]) {
      const body = { recipient: { userId: `nobody-${h.uid()}` }, content: { subject: 's' }, tenantId: tenant, enableAcknowledgments: true, ackTimeoutMs };
      const response = await h.api(gw.url, NOTIFY, body);
      assert.equal(response.status, 200, `ackTimeoutMs ${ackTimeoutMs}: ${JSON.stringify(response.body)}`);
      assert.deepEqual({ sockets: response.body.sockets, acknowledged: response.body.acknowledged }, { sockets: 0, acknowledged: 0 });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('GET /api/v1/stats (on a gateway of its own, for exact counts)', () => {
  const sockets = {};
  const open = (namespace, welcome, claims) =>
    h.connectClient(small.url, { namespace, welcome, ...(claims === null ? {} : { token: h.mintToken(claims) }) });
  const stats = (query) => h.api(small.url, `${STATS}${query ? `?${new URLSearchParams(query)}` : ''}`);

  before(async () => {
    sockets.mainA = await open('/', null, { sub: 'a', tenantId: 't1' });
    sockets.mainB = await open('/', null, { sub: 'b', tenantId: 't1' });
    sockets.mainC = await open('/', null, { sub: 'c', tenantId: 't2' });
    sockets.wsA = await open('/ws', 'connection.confirmed', { sub: 'a', tenantId: 't1' });
    sockets.wsB = await open('/ws', 'connection.confirmed', { sub: 'b', tenantId: 't1' });
    sockets.wsAdmin = await open('/ws', 'connection.confirmed', { sub: 'sa', tenantId: 't1', roles: ['super_admin'] });
    sockets.wsC = await open('/ws', 'connection.confirmed', { sub: 'c', tenantId: 't2' });
    sockets.rtAnon = await open('/realtime', 'connection:success', null);
    sockets.rtA = await open('/realtime', 'connection:success', { sub: 'a', tenantId: 't1' });
    sockets.wfC = await open('/workflow', 'connected', { sub: 'c', tenantId: 't2' });
    for (const name of ['wsA', 'wsB', 'wsC']) {
      const ack = await h.request(sockets[name], 'join_room', { room: 'global.general' });
      assert.equal(ack.room, 'global.general', JSON.stringify(ack));
    }
  });
  after(() => {
    for (const socket of Object.values(sockets)) socket.disconnect();
  });

  it('counts connections per namespace, per tenant and anonymous', async () => {
    const { status, body } = await stats();
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, {
      connections: 10,
      namespaces: {
        '/': { connections: 3, tenants: { t1: 2, t2: 1 }, anonymous: 0 },
        '/realtime': { connections: 2, tenants: { t1: 1 }, anonymous: 1 },
        '/workflow': { connections: 1, tenants: { t2: 1 }, anonymous: 0 },
        '/ws': { connections: 4, tenants: { t1: 3, t2: 1 }, anonymous: 0 },
      },
      nodes: 1,
    });
  });

  it('?namespace=/ws&room=global.general&tenantId=t1 adds {namespace, room, tenantId, sockets} for that tenant only', async () => {
    const { status, body } = await stats({ namespace: '/ws', room: 'global.general', tenantId: 't1' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.room, { namespace: '/ws', room: 'global.general', tenantId: 't1', sockets: 2 });
    assert.deepEqual(Object.keys(body.namespaces), ['/ws'], 'a namespace query shows that namespace only');
    assert.equal(body.connections, body.namespaces['/ws'].connections);
    const t2 = await stats({ namespace: '/ws', room: 'global.general', tenantId: 't2' });
    assert.deepEqual(t2.body.room, { namespace: '/ws', room: 'global.general', tenantId: 't2', sockets: 1 });
    const t3 = await stats({ namespace: '/ws', room: 'global.general', tenantId: 't3' });
    assert.deepEqual(t3.body.room, { namespace: '/ws', room: 'global.general', tenantId: 't3', sockets: 0 });
  });

  it('counts rooms joined on connect: /ws tenant and user rooms, / channels and user rooms', async () => {
    const size = async (query) => {
      const { status, body } = await stats(query);
      assert.equal(status, 200, `${JSON.stringify(query)}: ${JSON.stringify(body)}`);
      return body.room.sockets;
    };
    assert.equal(await size({ namespace: '/ws', room: 'tenant.t1.users', tenantId: 't1' }), 3);
    assert.equal(await size({ namespace: '/ws', room: 'tenant.t1.admins', tenantId: 't1' }), 0);
    assert.equal(await size({ namespace: '/ws', room: 'user.a.notifications', tenantId: 't1' }), 1);
    assert.equal(await size({ namespace: '/', room: 'alerts', tenantId: 't1' }), 2);
    assert.equal(await size({ namespace: '/', room: 'system', tenantId: 't2' }), 1);
    assert.equal(await size({ namespace: '/', room: 'user:b', tenantId: 't1' }), 1);
    assert.equal(await size({ namespace: '/realtime', room: 'dashboard', tenantId: 't1' }), 0);
  });

  it('a global room needs no tenantId: /ws platform.admins holds the super_admin', async () => {
    const { status, body } = await stats({ namespace: '/ws', room: 'platform.admins' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.room, { namespace: '/ws', room: 'platform.admins', tenantId: null, sockets: 1 });
  });

  it('refuses a tenant room without tenantId with 400 validation', async () => {
    assertValidation(await stats({ namespace: '/ws', room: 'global.general' }), /^`global\.general` is a tenant room \(`global_general`\): give the tenantId$/, 'no tenantId');
    assertValidation(await stats({ namespace: '/ws', room: 'global.general', tenantId: '' }), /give the tenantId$/, 'empty tenantId');
    assertValidation(await stats({ namespace: '/', room: 'alerts' }), /give the tenantId$/, '/ alerts without tenantId');
  });

  it('refuses an unknown namespace or room name with 400 validation', async () => {
    assertValidation(await stats({ namespace: '/nope', room: 'x', tenantId: 't1' }), /^no namespace `\/nope` \(known: \/, \/realtime, \/workflow, \/ws\)$/, 'unknown namespace');
    assertValidation(await stats({ namespace: '/ws', room: 'nope.room', tenantId: 't1' }), /^`nope\.room` is not a room name of \/ws$/, 'unknown room');
  });

  it('refuses an unknown namespace given without a room with 400 validation', async () => {
    assertValidation(await stats({ namespace: '/nope' }), /no namespace `\/nope`/, '?namespace=/nope');
  });

  it('follows sockets that leave a room or disconnect', async () => {
    const ack = await h.request(sockets.wsB, 'leave_room', { room: 'global.general' });
    assert.equal(ack.room, 'global.general', JSON.stringify(ack));
    assert.equal((await stats({ namespace: '/ws', room: 'global.general', tenantId: 't1' })).body.room.sockets, 1);

    sockets.mainC.disconnect();
    sockets.rtAnon.disconnect();
    await h.until(async () => {
      const { body } = await stats();
      const ok = body.connections === 8 &&
        JSON.stringify(body.namespaces['/']) === JSON.stringify({ connections: 2, tenants: { t1: 2 }, anonymous: 0 }) &&
        JSON.stringify(body.namespaces['/realtime']) === JSON.stringify({ connections: 1, tenants: { t1: 1 }, anonymous: 0 });
      return ok || body;
    }, h.TIMEOUT, 'the counts after two disconnects');
  });
});

// Who may connect to /workflow: the three token sources and their order, every way a token is
// refused (connect, then `error` {type: auth}, then a server disconnect), the pinned algorithm
// on HS256, RS256 and ES256 gateways, and token expiry and refresh while connected.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';

let gw;

before(async () => {
  gw = await h.startGateway();
});
after(async () => {
  await gw?.stop();
});

const RSA = h.keyPair('rsa');
const EC = h.keyPair('ec');

const accepted = h.connectFor;

/**
 * Asserts the contract of a refused connection: accepted at the protocol level (`connect`),
 * then `error` {message, type: "auth", timestamp}, then a server disconnect, and never `connected`.
 */
async function refused(t, url, options, message) {
  const socket = h.openFor(t, url, options);
  await h.waitFor(socket, 'connect');
  const error = await h.waitFor(socket, 'error');
  assert.deepEqual(error, { message, type: 'auth', timestamp: error.timestamp });
  assert.match(error.timestamp, /^\d{4}-\d\d-\d\dT/);
  assert.equal(await h.waitFor(socket, 'disconnect'), 'io server disconnect');
  // Nothing arrives after the disconnect, so it is the barrier for `connected`.
  assert.deepEqual(h.pending(socket, 'connected'), []);
  return socket;
}

const INVALID = 'Invalid authentication token';

for (const transports of [['websocket'], ['polling']]) {
  describe(`token sources over ${transports[0]}`, () => {
    it('accepts a token in the handshake auth payload', async (t) => {
      const socket = await accepted(t, gw.url, { transports, token: h.mintToken({ sub: 'from-auth' }) });
      assert.equal(socket.welcome.userId, 'from-auth');
    });

    it('accepts a token in the ?token= query parameter', async (t) => {
      const socket = await accepted(t, gw.url, { transports, query: { token: h.mintToken({ sub: 'from-query' }) } });
      assert.equal(socket.welcome.userId, 'from-query');
    });

    it('accepts a token in the Authorization: Bearer header', async (t) => {
      const socket = await accepted(t, gw.url, { transports, extraHeaders: { Authorization: `Bearer ${h.mintToken({ sub: 'from-header' })}` } });
      assert.equal(socket.welcome.userId, 'from-header');
    });

    it('takes the auth payload before the query, and the query before the header', async (t) => {
      const first = await accepted(t, gw.url, {
        transports,
        token: h.mintToken({ sub: 'auth-wins' }),
        query: { token: 'garbage' },
        extraHeaders: { Authorization: 'Bearer garbage' },
      });
      assert.equal(first.welcome.userId, 'auth-wins');
      await refused(t, gw.url, { transports, query: { token: 'garbage' }, extraHeaders: { Authorization: `Bearer ${h.mintToken()}` } }, INVALID);
    });

    it('takes the userId claim when there is no sub', async (t) => {
      const socket = await accepted(t, gw.url, { transports, token: h.mintToken({ sub: undefined, userId: 'legacy-7' }) });
      assert.equal(socket.welcome.userId, 'legacy-7');
    });
  });

  describe(`refused tokens over ${transports[0]}`, () => {
    const cases = [
      ['a missing token', () => ({}), 'Authentication token required'],
      ['an expired token', () => ({ token: h.mintToken({ exp: h.nowSecs() - 30 }) }), 'Authentication token expired'],
      ['a token with a modified payload and its original signature', () => ({ token: h.tamperToken(h.mintToken(), (c) => ({ ...c, tenantId: 'someone-else' })) }), INVALID],
      ['a token signed with another secret', () => ({ token: h.mintToken({}, { key: 'not-the-secret' }) }), INVALID],
      ['an HS512 token signed with the right secret', () => ({ token: h.mintToken({}, { algorithm: 'HS512' }) }), INVALID],
      ['an RS256 token', () => ({ token: h.mintToken({}, { algorithm: 'RS256', key: RSA.privateKey }) }), INVALID],
      ['an unsigned `alg: none` token', () => ({ token: h.unsignedToken() }), INVALID],
      ['a malformed token', () => ({ token: 'not.a-jwt' }), INVALID],
      ['a token without exp', () => ({ token: h.mintToken({ exp: undefined }) }), INVALID],
      ['a token without sub or userId', () => ({ token: h.mintToken({ sub: undefined }) }), INVALID],
      ['a token without tenantId', () => ({ token: h.mintToken({ tenantId: undefined }) }), 'Authentication token has no tenantId'],
      ['an expired token in the query', () => ({ query: { token: h.mintToken({ exp: h.nowSecs() - 30 }) } }), 'Authentication token expired'],
      ['a bad token in the header', () => ({ extraHeaders: { Authorization: 'Bearer x.y.z' } }), INVALID],
    ];
    for (const [name, options, message] of cases) {
      it(`refuses ${name} with "${message}"`, async (t) => {
        await refused(t, gw.url, { transports, ...options() }, message);
      });
    }
  });
}

describe('a gateway with an RS256 public key', () => {
  let rs;
  before(async () => {
    // The PEM with its newlines written as `\n`, as it would sit in a .env file.
    rs = await h.startGateway({ env: { JWT_SECRET: undefined, JWT_PUBLIC_KEY: RSA.publicKey.replace(/\n/g, '\\n'), JWT_ALGORITHM: 'RS256' } });
  });
  after(async () => {
    await rs?.stop();
  });

  it('accepts RS256 tokens signed with the private key', async (t) => {
    const socket = await accepted(t, rs.url, { token: h.mintToken({ sub: 'rsa-user' }, { algorithm: 'RS256', key: RSA.privateKey }) });
    assert.equal(socket.welcome.userId, 'rsa-user');
  });

  it('refuses an HS256 token signed with the public key PEM as the secret', async (t) => {
    await refused(t, rs.url, { token: h.hmacToken({ sub: 'u1', tenantId: 't1' }, RSA.publicKey) }, INVALID);
  });

  it('refuses HS256 tokens of the HS256 secret and ES256 tokens', async (t) => {
    await refused(t, rs.url, { token: h.mintToken() }, INVALID);
    await refused(t, rs.url, { token: h.mintToken({}, { algorithm: 'ES256', key: EC.privateKey }) }, INVALID);
  });

  it('refuses an RS256 token signed with another key', async (t) => {
    const other = h.keyPair('rsa');
    await refused(t, rs.url, { token: h.mintToken({}, { algorithm: 'RS256', key: other.privateKey }) }, INVALID);
  });
});

describe('a gateway with an ES256 public key', () => {
  let es;
  before(async () => {
    // The PEM with literal newlines.
    es = await h.startGateway({ env: { JWT_SECRET: undefined, JWT_PUBLIC_KEY: EC.publicKey, JWT_ALGORITHM: 'ES256' } });
  });
  after(async () => {
    await es?.stop();
  });

  it('accepts ES256 tokens signed with the private key', async (t) => {
    const socket = await accepted(t, es.url, { token: h.mintToken({ sub: 'ec-user' }, { algorithm: 'ES256', key: EC.privateKey }) });
    assert.equal(socket.welcome.userId, 'ec-user');
  });

  it('refuses RS256 tokens and HS256 tokens signed with the public key PEM', async (t) => {
    await refused(t, es.url, { token: h.mintToken({}, { algorithm: 'RS256', key: RSA.privateKey }) }, INVALID);
    await refused(t, es.url, { token: h.hmacToken({ sub: 'u1', tenantId: 't1' }, EC.publicKey) }, INVALID);
  });
});

describe('time claims', () => {
  it('accepts a fractional exp and nbf, as RFC 7519 allows', async (t) => {
    const now = Date.now() / 1000;
    const socket = await accepted(t, gw.url, { token: h.mintToken({ exp: now + 600.5, nbf: now - 1.25 }) });
    assert.equal(socket.connected, true);
  });
});

describe('token expiry while connected', { concurrency: true }, () => {
  // Each test waits for a token to run out; they run side by side.
  const soon = () => h.nowSecs() + 2;

  /** Waits for the expiry notice and the server disconnect; returns when it came, in ms after exp. */
  async function expires(socket, exp) {
    const error = await h.waitFor(socket, 'error', 6000);
    assert.equal(error.type, 'auth');
    assert.equal(error.message, 'Authentication token expired');
    assert.equal(await h.waitFor(socket, 'disconnect', 3000), 'io server disconnect');
    return Date.now() - exp * 1000;
  }

  it('disconnects a socket at the instant its token expires, not a sweep later', async (t) => {
    const exp = soon();
    const socket = await accepted(t, gw.url, { token: h.mintToken({ exp }) });
    assert.deepEqual(await h.request(socket, 'ping'), { timestamp: (await h.waitFor(socket, 'pong')).timestamp }, 'served before exp');
    const late = await expires(socket, exp);
    assert.ok(late >= 0, `disconnected ${-late} ms before exp`);
    assert.ok(late <= 600, `disconnected ${late} ms after exp`);
  });

  it('keeps a socket that refreshed its token connected past the old expiry', async (t) => {
    const exp = soon();
    const tenantId = `refresh-${h.uid()}`;
    const refreshed = await accepted(t, gw.url, { token: h.mintToken({ sub: 'r1', tenantId, exp }) });
    const control = await accepted(t, gw.url, { token: h.mintToken({ sub: 'r1', tenantId, exp }) });

    const newExp = h.nowSecs() + 120;
    const ack = await h.request(refreshed, 'auth:refresh', { token: h.mintToken({ sub: 'r1', tenantId, exp: newExp }) });
    const event = await h.waitFor(refreshed, 'auth:refreshed');
    assert.deepEqual(event, { expiresAt: new Date(newExp * 1000).toISOString(), roomsLeft: [], timestamp: event.timestamp });
    assert.deepEqual(ack, event);

    // The control socket, with the same old exp, is swept: the sweep has passed the old expiry.
    await expires(control, exp);
    const pong = await h.request(refreshed, 'ping');
    assert.ok(pong.timestamp, 'the refreshed socket is still served');
    assert.equal(refreshed.connected, true);
    assert.deepEqual(h.pending(refreshed, 'error'), []);
    assert.deepEqual(h.pending(refreshed, 'disconnect'), []);
  });

  it('refuses a refresh token of another user or tenant, keeps the connection and still expires it', async (t) => {
    const exp = soon();
    const socket = await accepted(t, gw.url, { token: h.mintToken({ sub: 'r2', tenantId: 'tr', exp }) });
    for (const claims of [{ sub: 'someone-else', tenantId: 'tr' }, { sub: 'r2', tenantId: 'another-tenant' }]) {
      const ack = await h.request(socket, 'auth:refresh', { token: h.mintToken(claims) });
      const error = await h.waitFor(socket, 'error');
      assert.deepEqual(ack, { error });
      assert.equal(error.type, 'auth');
      assert.equal(error.event, 'auth:refresh');
    }
    assert.ok((await h.request(socket, 'ping')).timestamp, 'still connected and served');
    const late = await expires(socket, exp);
    assert.ok(late >= 0 && late <= 600, `disconnected ${late} ms after exp`);
  });

  it('refuses an invalid or expired refresh token with an auth error and keeps the connection', async (t) => {
    const socket = await accepted(t, gw.url, { token: h.mintToken() });
    for (const [token, message] of [['garbage', INVALID], [h.mintToken({ exp: h.nowSecs() - 30 }), 'Authentication token expired']]) {
      const ack = await h.request(socket, 'auth:refresh', { token });
      assert.equal(ack.error.type, 'auth');
      assert.equal(ack.error.message, message);
      assert.deepEqual(await h.waitFor(socket, 'error'), ack.error);
    }
    assert.ok((await h.request(socket, 'ping')).timestamp);
  });
});

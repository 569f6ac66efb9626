// Clients and deployments the gateway must keep working for, beyond socket.io-client 4: the 2.x
// client (Engine.IO protocol 3), a custom Socket.IO path, and a node that drains behind a load
// balancer (readiness answers 503 while it still answers at all).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import io2 from 'socket.io-client-2';
import * as h from './helpers.js';

/** A socket.io-client 2.x socket on `namespace`, recording what it receives like `h.recording`. */
function openV2(t, url, { namespace = '/workflow', token, transports = ['websocket'], path, extraHeaders } = {}) {
  const socket = io2(url + namespace, {
    transports,
    ...(extraHeaders ? { extraHeaders, transportOptions: { polling: { extraHeaders } } } : {}),
    forceNew: true,
    reconnection: false,
    timeout: h.TIMEOUT,
    ...(path ? { path } : {}),
    ...(token === undefined ? {} : { query: { token } }),
  });
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
  // 2.x has no onAny: record the events these tests look at.
  for (const event of ['connect', 'connect_error', 'error', 'disconnect', 'connected', 'subscription_confirmed', 'initial_data', 'update']) {
    socket.on(event, (...args) => record(event, args));
  }
  t.after(() => socket.close());
  return socket;
}

describe('socket.io-client 2.x (Engine.IO protocol 3)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  // `query` is how 2.x clients usually send a token; 2.x also appends it to the namespace's
  // CONNECT packet, which the gateway drops from the posted body or the WebSocket frame.
  const SETUPS = [
    ['polling, ?token=', { transports: ['polling'] }],
    ['polling upgraded to websocket, ?token=', { transports: ['polling', 'websocket'] }],
    ['websocket, ?token=', { transports: ['websocket'] }],
    ['websocket, Authorization header', { transports: ['websocket'], header: true }],
  ];
  for (const [name, { transports, header }] of SETUPS) {
    it(`connects over ${name}, subscribes with an ack and receives updates`, async (t) => {
      const tenantId = `v2-${h.uid()}`;
      const token = h.mintToken({ sub: 'old-client', tenantId });
      const socket = header
        ? openV2(t, gw.url, { transports, extraHeaders: { Authorization: `Bearer ${token}` } })
        : openV2(t, gw.url, { token, transports });
      const welcome = await h.waitFor(socket, 'connected');
      assert.equal(welcome.userId, 'old-client');
      h.assertPublicId(welcome.clientId, socket);
      const ack = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ack')), h.TIMEOUT);
        socket.emit('subscribe', { type: 'execution', resourceId: 'e1' }, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
      });
      assert.equal(ack.subscriptionKey, 'execution:e1');
      await h.publishOk(gw.url, h.event('execution.started', tenantId, { executionId: 'e1', status: 'running' }));
      const update = await h.waitFor(socket, 'update');
      assert.deepEqual(update.payload, { executionId: 'e1', status: 'running' });
      assert.equal(socket.connected, true);
    });
  }

  it('is refused when ALLOW_EIO3=false', async (t) => {
    const strict = await h.startGateway({ env: { ALLOW_EIO3: 'false' } });
    t.after(() => strict.stop());
    const socket = openV2(t, strict.url, { token: h.mintToken(), transports: ['polling'] });
    assert.ok(await h.waitFor(socket, 'connect_error'));
    const answer = await fetch(`${strict.url}/socket.io/?EIO=3&transport=polling`);
    assert.deepEqual([answer.status, await answer.json()], [400, { code: 5, message: 'Unsupported protocol version' }]);
  });
});

describe('SOCKETIO_PATH', () => {
  it('serves Socket.IO under the configured path, as socket.io-client\'s `path` option expects', async (t) => {
    const gw = await h.startGateway({ env: { SOCKETIO_PATH: '/realtime-io' } });
    t.after(() => gw.stop());
    for (const transports of [['websocket'], ['polling']]) {
      const socket = await h.connectFor(t, gw.url, { token: h.mintToken(), transports, path: '/realtime-io' });
      assert.equal(socket.connected, true);
    }
    const lost = h.openFor(t, gw.url, { token: h.mintToken(), transports: ['polling'] });
    assert.ok(await h.waitFor(lost, 'connect_error'), 'the default path is not served');
  });
});

describe('draining', () => {
  it('answers /readyz 503 and refuses new sessions for SHUTDOWN_DELAY, then closes its sockets and exits', async (t) => {
    const gw = await h.startGateway({ env: { SHUTDOWN_DELAY: '1500' } });
    t.after(() => gw.stop());
    const socket = await h.connectFor(t, gw.url, { token: h.mintToken() });
    assert.equal((await h.api(gw.url, '/readyz')).status, 200);
    gw.child.kill('SIGTERM');
    await h.eventually(async () => (await h.api(gw.url, '/readyz')).status === 503, 'readiness 503');
    assert.deepEqual((await h.api(gw.url, '/readyz')).body, { status: 'draining' });
    assert.equal((await h.api(gw.url, '/healthz')).status, 200, 'still alive');
    const handshake = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(handshake.status, 503, 'no new sessions on a draining node');
    assert.equal(socket.connected, true, 'existing sockets are served until the delay ends');
    // The node closes every transport; the client reconnects, to another node behind a balancer.
    assert.equal(await h.waitFor(socket, 'disconnect', 5000), 'transport close');
    const exit = await gw.stop();
    assert.equal(exit.code, 0);
  });
});

// Outbound bridges in a cluster: three gateways on one private Redis, each given the same
// BRIDGES_FILE, and a Node socket.io peer. The peer sees exactly one connection from the
// gateways (the node holding the bridge's lease); notifications and queries sent through every
// node reach it; a provider changed at run time through one node is applied by the holder; and
// when the holder is killed with SIGKILL another node connects within TAKEOVER_BOUND_MS, with
// the stored change, and sends through every live node work again; a holder stopped with
// SIGTERM hands the bridge over within HANDOVER_BOUND_MS. With Redis gone, the bridge
// stops within STOP_BOUND_MS (no node can prove it holds it) and runs again once Redis is back.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Server } from 'socket.io';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

const TOKEN = 'cluster-bearer-6a1d';
const ROTATED = 'cluster-rotated-93fe';
const WAIT = 10000;
/**
 * How long after the holder's death another node is connected: the lease lasts 4 s and the
 * others try for it every second (cluster::bridges), plus connecting and the test machine's slack.
 */
const TAKEOVER_BOUND_MS = 8000;
/**
 * How long after its holder is told to stop (SIGTERM) another node is connected: the holder
 * gives the lease up, and the others try for it every second; plus connecting and slack.
 */
const HANDOVER_BOUND_MS = 3000;
/** How long after Redis dies a holder has closed its bridge's connection: the lease's 4 s, plus slack. */
const STOP_BOUND_MS = 6000;

/** A socket.io peer that wants one of the bearer tokens, answers `notify` and `user:info` with acks. */
async function startPeer() {
  const peer = { sockets: new Set(), connections: [], notes: [], mostAtOnce: 0 };
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  io.use((socket, next) => {
    const auth = socket.handshake.headers.authorization;
    if (auth === `Bearer ${TOKEN}` || auth === `Bearer ${ROTATED}`) next();
    else next(new Error('Unauthorized'));
  });
  io.on('connection', (socket) => {
    peer.sockets.add(socket);
    peer.connections.push({ at: Date.now(), auth: socket.handshake.headers.authorization });
    peer.mostAtOnce = Math.max(peer.mostAtOnce, peer.sockets.size);
    socket.on('disconnect', () => peer.sockets.delete(socket));
    socket.on('notify', (data, ack) => {
      peer.notes.push(data);
      ack({ delivered: true, to: data.userId });
    });
    socket.on('user:info', (data, ack) => ack({ userId: data.userId }));
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  peer.port = http.address().port;
  peer.auths = () => [...peer.sockets].map((s) => s.handshake.headers.authorization);
  peer.close = () => new Promise((resolve) => { io.close(() => resolve()); });
  return peer;
}

describe('bridges across three nodes', () => {
  const nodes = [];
  let redis;
  let peer;
  let files;

  const provider = (token) => ({
    providerType: 'websocket', channel: 'websocket', mode: 'external', protocol: 'socketio',
    url: `http://127.0.0.1:${peer.port}`, authType: 'bearer', authToken: token,
    reconnectionDelay: 100, reconnectionAttempts: 50, timeout: 2000,
    customEvents: { notification: 'notify' }, enableAcknowledgments: true,
    enableRequestResponse: true, requestTimeout: 3000,
  });

  before(async () => {
    peer = await startPeer();
    redis = await startRedis();
    files = h.tempDir('rtgw-bridge-cluster-');
    const file = h.writeFile(files.dir, 'bridges.json', JSON.stringify([{ tenantId: 'c1', name: 'cluster-io', ...provider(TOKEN) }]));
    const prefix = `b${h.uid()}`;
    for (const name of ['A', 'B', 'C']) {
      const node = await h.startGateway({
        env: { REDIS_URL: redis.url, REDIS_PREFIX: prefix, BRIDGES_FILE: file, BRIDGE_ALLOWED_HOSTS: '127.0.0.1' },
      });
      node.name = name;
      const joined = node.logs.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((e) => e.message === 'joined the cluster');
      node.id = joined?.node;
      assert.ok(node.id, `node ${name} logged its cluster id`);
      nodes.push(node);
    }
    await h.untilReady(nodes);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
    await peer?.close();
    files?.remove();
  });

  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const listed = async (node) => {
    const { status, body } = await h.api(node.url, '/api/v1/bridges');
    assert.equal(status, 200, JSON.stringify(body));
    return body.bridges;
  };
  /** The bridge as every live node lists it, once connected, and the node holding it. */
  async function connectedEverywhere() {
    return h.eventually(async () => {
      const views = await Promise.all(live().map(listed));
      const ok = views.every((v) => v.length === 1 && v[0].state === 'connected' && v[0].node === views[0][0].node);
      return ok && nodes.find((n) => n.id === views[0][0].node);
    }, 'every node lists the bridge connected, on the same holder', WAIT);
  }
  const notify = (node, userId) => h.api(node.url, '/api/v1/notifications', {
    tenantId: 'c1', recipient: { userId }, content: { subject: 's', body: 'b' },
  }, { timeoutMs: WAIT });
  const query = (node, userId) => h.api(node.url, '/api/v1/bridges/cluster-io/query', { event: 'user:info', data: { userId } }, { timeoutMs: WAIT });

  async function sendThroughEveryNode(t) {
    for (const node of live()) {
      const user = `u-${node.name}-${h.uid()}`;
      const sent = await notify(node, user);
      assert.equal(sent.status, 200, `notify through ${node.name}: ${JSON.stringify(sent.body)}`);
      assert.deepEqual(sent.body.ack, { delivered: true, to: user });
      assert.equal(sent.body.bridge, 'cluster-io');
      const asked = await query(node, user);
      assert.equal(asked.status, 200, `query through ${node.name}: ${JSON.stringify(asked.body)}`);
      assert.deepEqual(asked.body.response, { userId: user });
      t.diagnostic(`through ${node.name}: notified and queried`);
    }
  }

  it('runs the bridge once, reached from every node', async (t) => {
    const holder = await connectedEverywhere();
    t.diagnostic(`held by ${holder.name}`);
    // Three renewals later the peer still has the one connection it ever had.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(peer.sockets.size, 1);
    assert.equal(peer.connections.length, 1, JSON.stringify(peer.connections));
    await sendThroughEveryNode(t);
    assert.equal(peer.sockets.size, 1);
  });

  it('applies a provider changed through another node on the holder', async (t) => {
    const holder = await connectedEverywhere();
    const other = live().find((n) => n !== holder);
    const { status, body } = await h.api(other.url, '/api/v1/tenants/c1/providers/websocket', provider(ROTATED), { method: 'PUT' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.name, 'cluster-io');
    await h.eventually(() => peer.sockets.size === 1 && peer.auths()[0] === `Bearer ${ROTATED}`, 'the holder reconnected with the new token', WAIT);
    assert.equal(peer.mostAtOnce, 1, 'never two connections at once');
    const after = await connectedEverywhere();
    t.diagnostic(`after the change, held by ${after.name}`);
    // Every node reads the change at its next tick (each second), not when the holder did: the
    // holder reconnecting says nothing of a third node's tick.
    for (const node of live()) {
      await h.eventually(async () => {
        const shown = await h.api(node.url, '/api/v1/tenants/c1/providers/websocket');
        return shown.body.source === 'api';
      }, `${node.name} shows the stored change`, WAIT);
    }
    await sendThroughEveryNode(t);
  });

  it('moves to another node within the bound when the holder is killed', async (t) => {
    const holder = await connectedEverywhere();
    const before = peer.connections.length;
    holder.child.kill('SIGKILL');
    const killedAt = Date.now();
    await holder.stop();
    await h.eventually(() => peer.connections.length > before && peer.sockets.size === 1, 'another node connected', TAKEOVER_BOUND_MS + 2000);
    const took = peer.connections.at(-1).at - killedAt;
    t.diagnostic(`${holder.name} killed; the peer saw the next connection ${took} ms later`);
    assert.ok(took <= TAKEOVER_BOUND_MS, `took over after ${took} ms`);
    assert.equal(peer.connections.at(-1).auth, `Bearer ${ROTATED}`, 'the new holder runs the stored change');
    const next = await connectedEverywhere();
    assert.notEqual(next, holder);
    await sendThroughEveryNode(t);
    assert.equal(peer.sockets.size, 1);
    assert.equal(peer.mostAtOnce, 1);
  });

  it('hands the bridge over at once when its holder stops gracefully', async (t) => {
    const holder = await connectedEverywhere();
    const before = peer.connections.length;
    const stoppedAt = Date.now();
    await holder.stop();
    await h.eventually(() => peer.connections.length > before && peer.sockets.size === 1, 'another node connected', WAIT);
    const took = peer.connections.at(-1).at - stoppedAt;
    t.diagnostic(`${holder.name} stopped (SIGTERM); the peer saw the next connection ${took} ms later`);
    assert.ok(took <= HANDOVER_BOUND_MS, `handed over after ${took} ms`);
    assert.ok(holder.logs.some((l) => l.includes("the bridge's lease is handed over")), 'the holder gave its lease up');
    await connectedEverywhere();
    await sendThroughEveryNode(t);
    assert.equal(peer.mostAtOnce, 1);
  });

  it('stops the bridge while Redis is away, and runs it once again when Redis is back', async (t) => {
    await connectedEverywhere();
    await redis.kill();
    const killedAt = Date.now();
    await h.eventually(() => peer.sockets.size === 0, 'the holder stopped its bridge', STOP_BOUND_MS + 2000);
    const took = Date.now() - killedAt;
    t.diagnostic(`Redis killed; the bridge's connection closed ${took} ms later`);
    assert.ok(took <= STOP_BOUND_MS, `stopped after ${took} ms`);
    // An empty Redis: the stored change is gone, so the file's provider runs again.
    await redis.restart();
    await h.eventually(() => peer.sockets.size === 1 && peer.auths()[0] === `Bearer ${TOKEN}`, 'a node runs the bridge again', WAIT);
    await connectedEverywhere();
    await sendThroughEveryNode(t);
    assert.equal(peer.sockets.size, 1);
    assert.equal(peer.mostAtOnce, 1, 'never two connections at once');
  });
});

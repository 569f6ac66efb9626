// Presence across three gateways on one private Redis, with socket.io-client: `GET
// /api/v1/presence` answers the same users and connection counts from every node, for users
// with sockets on several nodes; a node killed with SIGKILL takes its users out of every answer
// within the stated bound (ANSWER_BOUND_MS: presence is asked of the live nodes, never stored);
// and a room family with `presence:` sends `user:online` / `user:offline` to the room's
// members on every node.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

const SPEC = `
namespace: /presence
auth: { required: true, require_tenant: true }
rooms:
  lobby:
    pattern: "lobby:{name}"
    presence: { online: "user:online", offline: "user:offline" }
events:
  enter:
    payload: { type: object, required: [room], properties: { room: { type: string } } }
    do:
      - join: { name: "{payload.room}" }
      - reply: { data: { ok: true } }
`;

/**
 * How long after a node's death an answer may still be slow: the gateway's own bound is one
 * second (how long it waits for a node that Redis still counts), plus the test machine's slack.
 * No answer after the death includes the dead node's users.
 */
const ANSWER_BOUND_MS = 3000;

describe('presence across three nodes', () => {
  const cluster = { nodes: [] };
  let specs;

  before(async () => {
    specs = h.tempDir();
    h.writeFile(specs.dir, 'presence.yaml', SPEC);
    cluster.redis = await startRedis();
    const prefix = `p${h.uid()}`;
    for (const name of ['A', 'B', 'C']) {
      const node = await h.startGateway({
        env: { REDIS_URL: cluster.redis.url, REDIS_PREFIX: prefix, NAMESPACES_DIR: specs.dir },
      });
      node.name = name;
      cluster.nodes.push(node);
    }
    await h.untilReady(cluster.nodes);
  });

  after(async () => {
    await Promise.all(cluster.nodes.map((node) => node.stop()));
    await cluster.redis?.stop();
    specs?.remove();
  });

  /** A socket of `sub` (tenant `tenantId`) on `node`, in `room`. */
  async function member(t, node, sub, room, tenantId = 't1') {
    const token = h.mintToken({ sub, tenantId });
    const socket = await h.connectFor(t, node.url, { namespace: '/presence', welcome: null, token });
    assert.deepEqual(await h.request(socket, 'enter', { room }), { ok: true });
    return socket;
  }

  async function presence(node, room, tenantId = 't1') {
    const query = new URLSearchParams({ namespace: '/presence', room, tenantId });
    const { status, body } = await h.api(node.url, `/api/v1/presence?${query}`);
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  }

  const byUser = (body) => Object.fromEntries(body.users.map((u) => [u.userId, u.connections]));

  it('answers the same from every node, and a killed node leaves every answer within the bound', async (t) => {
    const [a, b, c] = cluster.nodes;
    const room = `lobby:${h.uid()}`;
    await member(t, a, 'alice', room);
    await member(t, b, 'alice', room);
    await member(t, c, 'bob', room);
    await member(t, b, 'carol', room);
    await member(t, c, 'carol', room);
    // Another tenant's user in a room of the same name is not counted.
    await member(t, a, 'dave', room, 't2');

    for (const node of cluster.nodes) {
      const body = await presence(node, room);
      assert.deepEqual(byUser(body), { alice: 2, bob: 1, carol: 2 }, `asked on ${node.name}: ${JSON.stringify(body)}`);
      assert.equal(body.connections, 5);
      assert.equal(body.nodes, 3);
      assert.equal(body.complete, true);
    }

    c.child.kill('SIGKILL');
    const killedAt = Date.now();
    await c.stop();
    for (const node of [a, b]) {
      const started = Date.now();
      const body = await presence(node, room);
      t.diagnostic(`on ${node.name}, ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(body)} in ${Date.now() - started} ms`);
      assert.ok(Date.now() - killedAt <= ANSWER_BOUND_MS, `answered ${Date.now() - killedAt} ms after the kill`);
      assert.deepEqual(byUser(body), { alice: 2, carol: 1 }, `asked on ${node.name}: ${JSON.stringify(body)}`);
      assert.equal(body.connections, 3);
      assert.equal(body.nodes, 2);
    }
  });

  it('sends user:online and user:offline to the room on every node, once per user', async (t) => {
    const [a, b] = cluster.nodes;
    const room = `lobby:${h.uid()}`;
    const watcher = await member(t, a, 'watcher', room);
    assert.equal((await h.waitFor(watcher, 'user:online')).userId, 'watcher');

    // Erin comes on node B: the watcher on node A hears it once.
    const erin = await member(t, b, 'erin', room);
    const online = await h.waitFor(watcher, 'user:online');
    assert.deepEqual([online.userId, online.room], ['erin', room]);
    erin.disconnect();
    const offline = await h.waitFor(watcher, 'user:offline');
    assert.deepEqual([offline.userId, offline.room], ['erin', room]);
    assert.deepEqual(h.pending(watcher, 'user:online'), []);
    assert.deepEqual(h.pending(watcher, 'user:offline'), []);
  });
});

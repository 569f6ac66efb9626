// Presence across three gateways on one private Redis, with socket.io-client and plain
// WebSocket clients of `/ws` (the shipped hub spec): `GET /api/v1/presence` answers the same
// users and connection counts from every node, for users with connections on several nodes; a
// node killed with SIGKILL takes its users out of every answer within the stated bound
// (ANSWER_BOUND_MS: presence is asked of the live nodes, never stored); a tenant key sees its
// own tenant only; and a room family with `presence:` sends `user:online` / `user:offline` to
// the room's members on every node.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { HubSocket, hubUrl, openHub } from './hub.js';
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

/** The plain WebSocket clients' tenant, and a key scoped to it. */
const HUB_TENANT = `hub-${h.uid()}`;
const HUB_TENANT_KEY = `presence-key-${h.uid()}`;

describe('presence across three nodes', () => {
  const cluster = { nodes: [] };
  let specs;

  before(async () => {
    specs = h.tempDir();
    h.writeFile(specs.dir, 'presence.yaml', SPEC);
    h.writeFile(specs.dir, 'hub.yaml', readFileSync(new URL('../../namespaces/hub.yaml', import.meta.url), 'utf8'));
    cluster.redis = await startRedis();
    const prefix = `p${h.uid()}`;
    for (const name of ['A', 'B', 'C']) {
      const node = await h.startGateway({
        env: {
          REDIS_URL: cluster.redis.url,
          REDIS_PREFIX: prefix,
          NAMESPACES_DIR: specs.dir,
          TENANT_API_KEYS: `${HUB_TENANT}:${HUB_TENANT_KEY}`,
        },
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

  /** A plain `/ws` client of `sub` (tenant `tenantId`) on `node`, subscribed to `channel`. */
  async function subscriber(t, node, sub, channel, { tenantId = HUB_TENANT, filters } = {}) {
    const socket = await openHub(t, node.url, h.mintToken({ sub, tenantId }));
    assert.equal((await socket.subscribe(channel, filters)).channel, channel);
    return socket;
  }

  /** `GET /api/v1/presence` of the plain `/ws` endpoint (`room` may be left out), as `key`. */
  async function hubPresence(node, { room, tenantId = HUB_TENANT, key = h.API_KEY, status = 200 } = {}) {
    const query = new URLSearchParams({ namespace: '/ws', transport: 'websocket' });
    if (room) query.set('room', room);
    if (tenantId) query.set('tenantId', tenantId);
    const { status: got, body } = await h.api(node.url, `/api/v1/presence?${query}`, undefined, { headers: { 'X-API-Key': key } });
    assert.equal(got, status, JSON.stringify(body));
    return body;
  }

  /** Every node's answers for the plain clients: the channel's, and the tenant's over the endpoint. */
  async function hubAnswers(nodes, channel) {
    return Promise.all(
      nodes.map(async (node) => {
        const [room, tenant, tenantKey] = await Promise.all([
          hubPresence(node, { room: channel }),
          hubPresence(node),
          // A tenant key names no tenant: its own is meant.
          hubPresence(node, { room: channel, tenantId: null, key: HUB_TENANT_KEY }),
        ]);
        return { node: node.name, room, tenant, tenantKey, at: Date.now() };
      }),
    );
  }

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

    // Plain /ws clients of one execution's channel: alice on A, and on B with a filter (a room
    // variant); bob and a backend service (an API key: user `service`, as everywhere) on C; and
    // another tenant's.
    const channel = `executions:${h.uid()}`;
    await subscriber(t, a, 'alice', channel);
    await subscriber(t, b, 'alice', channel, { filters: { statuses: ['running'] } });
    await subscriber(t, c, 'bob', channel);
    const service = new HubSocket(hubUrl(c.url, `?tenantId=${HUB_TENANT}`), { headers: { 'X-API-Key': h.API_KEY } });
    t.after(() => service.close());
    await service.opened;
    assert.equal((await service.subscribe(channel)).channel, channel);
    await subscriber(t, a, 'dave', channel, { tenantId: `other-${h.uid()}` });
    // A user of the tenant elsewhere on the endpoint: in the tenant's answer, not the channel's.
    await subscriber(t, b, 'erin', `executions:${h.uid()}`);

    for (const node of cluster.nodes) {
      const body = await presence(node, room);
      assert.deepEqual(byUser(body), { alice: 2, bob: 1, carol: 2 }, `asked on ${node.name}: ${JSON.stringify(body)}`);
      assert.equal(body.connections, 5);
      assert.equal(body.nodes, 3);
      assert.equal(body.complete, true);
    }
    for (const answer of await hubAnswers(cluster.nodes, channel)) {
      const on = `asked on ${answer.node}: ${JSON.stringify(answer)}`;
      assert.deepEqual(byUser(answer.room), { alice: 2, bob: 1, service: 1 }, on);
      assert.equal(answer.room.connections, 4, on);
      assert.deepEqual([answer.room.nodes, answer.room.complete, answer.room.transport], [3, true, 'websocket'], on);
      assert.deepEqual(byUser(answer.tenant), { alice: 2, bob: 1, erin: 1, service: 1 }, on);
      assert.equal(answer.tenant.connections, 5, on);
      assert.deepEqual(answer.tenantKey.users, answer.room.users, on);
      assert.equal(answer.tenantKey.connections, 4, on);
    }
    // A tenant key asking of another tenant is refused.
    await hubPresence(a, { room: channel, tenantId: 't1', key: HUB_TENANT_KEY, status: 403 });

    c.child.kill('SIGKILL');
    const killedAt = Date.now();
    await c.stop();
    // Asked alongside the Socket.IO answers below, as a user would: every answer is bounded.
    const hubAfter = hubAnswers([a, b], channel);
    hubAfter.catch(() => {});
    for (const node of [a, b]) {
      const started = Date.now();
      const body = await presence(node, room);
      t.diagnostic(`on ${node.name}, ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(body)} in ${Date.now() - started} ms`);
      assert.ok(Date.now() - killedAt <= ANSWER_BOUND_MS, `answered ${Date.now() - killedAt} ms after the kill`);
      assert.deepEqual(byUser(body), { alice: 2, carol: 1 }, `asked on ${node.name}: ${JSON.stringify(body)}`);
      assert.equal(body.connections, 3);
      assert.equal(body.nodes, 2);
    }
    // The killed node's plain clients (bob, the service) are gone from every answer too.
    for (const answer of await hubAfter) {
      const on = `asked on ${answer.node}, answered ${answer.at - killedAt} ms after the kill: ${JSON.stringify(answer)}`;
      t.diagnostic(on);
      assert.ok(answer.at - killedAt <= ANSWER_BOUND_MS, on);
      assert.deepEqual(byUser(answer.room), { alice: 2 }, on);
      assert.deepEqual([answer.room.connections, answer.room.nodes], [2, 2], on);
      assert.deepEqual(byUser(answer.tenant), { alice: 2, erin: 1 }, on);
      assert.equal(answer.tenant.connections, 3, on);
      assert.deepEqual([answer.tenantKey.users, answer.tenantKey.connections], [answer.room.users, 2], on);
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

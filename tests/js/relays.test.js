// Relays (a /ws `send_message`) in a cluster wait their turn behind the sender's previous ones, so
// they keep its order across nodes. While Redis hangs they cannot leave: how many of one socket's
// may wait is bounded, and the client is told to slow down rather than the node holding them all.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

describe("one socket's relays waiting on a Redis that hangs", () => {
  let redis;
  let gw;
  before(async () => {
    redis = await startRedis();
    gw = await h.startGateway({ env: { REDIS_URL: redis.url, REDIS_PREFIX: `r${h.uid()}` } });
    await h.eventually(async () => (await h.api(gw.url, '/readyz')).body?.status === 'ready', 'ready', 10_000);
  });
  after(async () => {
    redis?.resume();
    await gw?.stop();
    await redis?.stop();
  });

  it('are bounded: past 64 the sender is told to slow down, and the others arrive in order', async (t) => {
    const tenantId = `relays-${h.uid()}`;
    const join = async (sub) => {
      const socket = await h.connectFor(t, gw.url, { namespace: '/ws', welcome: 'connection.confirmed', token: h.mintToken({ sub, tenantId }) });
      await h.request(socket, 'join_room', { room: 'global.general' });
      return socket;
    };
    const [sender, reader] = [await join('alice'), await join('bob')];
    redis.pause();
    const acks = await Promise.all(
      Array.from({ length: 80 }, (_, n) =>
        h.request(sender, 'send_message', { event: 'chat', payload: { n }, rooms: ['global.general'] }, 15_000)),
    );
    redis.resume();
    const refused = acks.filter((ack) => ack?.error);
    assert.ok(refused.length >= 16, `${refused.length} refused of 80`);
    for (const ack of refused) assert.equal(ack.error.type, 'rate_limit', JSON.stringify(ack));
    const accepted = acks.map((ack, n) => (ack?.error ? undefined : n)).filter((n) => n !== undefined);
    assert.ok(accepted.length <= 64 && accepted.length >= 1, `${accepted.length} accepted`);
    for (const n of accepted) assert.equal((await h.waitFor(reader, 'chat', 15_000)).n, n, 'in the order sent');
  });
});

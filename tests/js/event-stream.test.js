// The backend event stream across a cluster: two gateways on a private redis-server, events
// published through both, read as Server-Sent Events (`GET /api/v1/events/stream`) with Node's
// fetch. Every consumer sees every event once, in one order, with the same ids on either node,
// and a consumer that reconnects to the other node with Last-Event-ID goes on with no gap and
// nothing twice.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

const numbers = (messages) => messages.map((m) => m.data.data.n);

describe('the event stream across a cluster', { timeout: 60_000 }, () => {
  const cluster = {};

  before(async () => {
    cluster.prefix = `es${h.uid()}`;
    cluster.redis = await startRedis();
    cluster.nodes = [];
    for (const name of ['A', 'B']) {
      const node = await h.startGateway({ env: { REDIS_URL: cluster.redis.url, REDIS_PREFIX: cluster.prefix } });
      node.name = name;
      cluster.nodes.push(node);
    }
    await h.untilReady(cluster.nodes);
  });

  after(async () => {
    if (process.env.CLUSTER_LOGS) {
      for (const node of cluster.nodes ?? []) console.log(`--- node ${node.name}\n${node.logs.join('\n')}`);
    }
    await Promise.all((cluster.nodes ?? []).map((node) => node.stop()));
    await cluster.redis?.stop();
  });

  it('gives every consumer every event once, in one order, with the same ids on both nodes; a consumer resumes on the other node', async () => {
    const [a, b] = cluster.nodes;
    const run = h.uid();
    const types = `types=${encodeURIComponent(`platform.run${run}.*`)}`;
    // The same run's types only: each `it` (and a looped run) reads its own events.
    const onB = await h.openStream(b.url, types);
    const onA = await h.openStream(a.url, types);
    const total = 40;
    // Through both nodes at once, batches and single events, so the bus interleaves them.
    const through = (node, from, to) => (async () => {
      for (let n = from; n < to; n += 2) {
        await h.publishOk(node.url, [
          h.event(`platform.run${run}.step`, undefined, { n, via: node.name }),
          h.event(`platform.run${run}.step`, undefined, { n: n + 1, via: node.name }),
        ]);
      }
    })();
    await Promise.all([through(a, 0, total / 2), through(b, total / 2, total)]);

    const seenOnB = await onB.take(total);
    const seenOnA = await onA.take(total);
    assert.deepEqual([...numbers(seenOnB)].sort((x, y) => x - y), [...Array(total).keys()], 'every event once');
    assert.deepEqual(seenOnA.map((m) => m.id), seenOnB.map((m) => m.id), 'the same ids in the same order on both nodes');
    assert.deepEqual(numbers(seenOnA), numbers(seenOnB));
    // Each node's own publishes keep their order.
    for (const via of ['A', 'B']) {
      const mine = numbers(seenOnB.filter((m) => m.data.data.via === via));
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `node ${via}'s events in the order it took them`);
    }
    onA.close();

    // The consumer on B stops after some events and resumes on A.
    const stopAt = 15;
    onB.close();
    const resumed = await h.openStream(a.url, types, { lastEventId: seenOnB[stopAt - 1].id });
    const rest = await resumed.take(total - stopAt);
    assert.deepEqual(rest.map((m) => m.id), seenOnB.slice(stopAt).map((m) => m.id), 'no gap, nothing twice');
    assert.ok(rest.every((m) => m.event === 'message'), 'no gap event');

    // And live events keep coming after the resumed ones, whichever node took them.
    await h.publishOk(b.url, h.event(`platform.run${run}.done`, undefined, { n: total }));
    const [live] = await resumed.take(1);
    assert.equal(live.data.data.n, total);
    assert.equal(live.data.type, `platform.run${run}.done`);
    resumed.close();
  });
});

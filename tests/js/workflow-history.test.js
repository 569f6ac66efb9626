// Room history on the Socket.IO namespace /workflow, with the official socket.io-client as seed
// 000's frontends use it: updates of subscriptions carry a `position` ({offset, epoch, room});
// a client whose transport is cut mid-stream reconnects by itself (socket.io-client's own
// reconnection), subscribes again with `since` (the last position it saw) and gets exactly what
// it missed, once, in order, then live updates, while a backend keeps publishing; a gap longer
// than the history answers `recovered: false`; a spec with `replay` sends a late joiner the
// room's last events. Over websocket and over polling. Two nodes and a private Redis: positions
// are numbered once, in Redis, as an update goes on the bus, so a client whose transport is cut on
// one node recovers on the other, while a backend publishes through both; a gap longer than the
// history answers `recovered: false` there too; a client that got updates the node it moves to
// has not applied yet (that node's bus reads held back by a proxy) is recovered with nothing yet,
// and those updates are not sent to it again.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as h from './helpers.js';
import { onOneRedisOnly, startProxiedPair, startRedis } from './redis.js';

const SPECS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../namespaces');

const step = (tenantId, seq) =>
  h.event('step.completed', tenantId, { executionId: 'e1', workflowId: 'w1', stepId: `s${seq}`, seq });

/** Publishes steps `from`..`to`, one call each, `gapMs` apart. */
async function publishSteps(url, tenantId, from, to, gapMs) {
  for (let seq = from; seq <= to; seq++) {
    await h.publishOk(url, step(tenantId, seq));
    if (gapMs) await sleep(gapMs);
  }
}

/**
 * A /workflow socket that reconnects by itself, as frontends' sockets do, and subscribes again
 * after every reconnect with the last position it saw of that subscription (what the README
 * shows socket.io-client users). `socket.answers` holds each subscribe's ack, in order.
 */
async function resumingClient(t, url, token, transports, subscription) {
  const socket = h.openSocket(url, { token, transports, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
  t.after(() => socket.disconnect());
  socket.last = {};
  socket.answers = [];
  socket.on('update', (update) => {
    if (update.position) socket.last[update.position.room] = update.position;
  });
  socket.on('connected', () => {
    const since = socket.last[socket.key];
    socket.emit('subscribe', { ...subscription, ...(since ? { since } : {}) }, (ack) => {
      socket.key = ack.subscriptionKey;
      socket.answers.push(ack);
    });
  });
  await h.waitFor(socket, 'connect');
  await h.until(() => socket.answers.length === 1, h.TIMEOUT, 'the first subscribe answered');
  return socket;
}

for (const setup of h.TRANSPORTS.filter((s) => !s.upgrade)) {
  describe(`history and recovery on /workflow over ${setup.name}`, () => {
    let gw;
    before(async () => {
      gw = await h.startGateway();
    });
    after(() => gw?.stop());

    it('positions updates in the subscription they came through; a subscribe without since is answered as before', async (t) => {
      const tenantId = `pos-${h.uid()}`;
      const socket = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }), transports: setup.transports });
      const { ack, confirmed } = await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      assert.deepEqual(Object.keys(ack), ['type', 'resourceId', 'subscriptionKey', 'timestamp'], 'no recovered without since');
      assert.deepEqual(confirmed, ack);
      await h.publishOk(gw.url, [step(tenantId, 1), step(tenantId, 2)]);
      const first = await h.waitFor(socket, 'update');
      const second = await h.waitFor(socket, 'update');
      assert.deepEqual(Object.keys(first), ['type', 'payload', 'timestamp', 'position'], 'position after the seed fields');
      assert.deepEqual(h.unpositioned(first).payload, step(tenantId, 1).data);
      assert.deepEqual(first.position, { offset: 1, epoch: first.position.epoch, room: 'execution:e1' });
      assert.match(first.position.epoch, /^[0-9a-f]{12}$/);
      assert.deepEqual(second.position, { ...first.position, offset: 2 });
    });

    it('gives a client whose transport was cut mid-stream exactly what it missed, once, in order, then live updates', async (t) => {
      const tenantId = `rec-${h.uid()}`;
      const TOTAL = 120;
      const socket = await resumingClient(t, gw.url, h.mintToken({ tenantId }), setup.transports, { type: 'execution', resourceId: 'e1' });
      const publishing = publishSteps(gw.url, tenantId, 1, TOTAL, 2);
      const seen = [];
      let offset = 0;
      let epoch;
      const take = async () => {
        const update = await h.waitFor(socket, 'update', 10_000);
        offset += 1;
        assert.equal(update.position.offset, offset, `in order, none twice: ${JSON.stringify(update)}`);
        epoch ??= update.position.epoch;
        assert.equal(update.position.epoch, epoch);
        seen.push(update.payload.seq);
      };
      while (seen.length < 20) await take();
      // The transport goes away as a network would take it; socket.io-client reconnects.
      socket.io.engine.close();
      await h.until(() => socket.answers.length === 2, 10_000, 'the subscribe after the reconnect answered');
      assert.equal(socket.answers[1].recovered, true, JSON.stringify(socket.answers[1]));
      while (seen.length < TOTAL) await take();
      await publishing;
      assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1));
      await sleep(100);
      assert.deepEqual(h.pending(socket, 'update'), [], 'nothing more');
      const confirmations = h.pending(socket, 'subscription_confirmed');
      assert.equal(confirmations.at(-1).recovered, true, 'the event says it too');
    });

    it('answers recovered: false for a gap longer than the history, and sends only live updates', async (t) => {
      const tenantId = `gap-${h.uid()}`;
      const token = h.mintToken({ tenantId });
      const first = await h.connectFor(t, gw.url, { token, transports: setup.transports });
      await h.subscribe(first, { type: 'metrics' });
      await h.publishOk(gw.url, h.event('metrics.updated', tenantId, { n: 0 }));
      const { position } = await h.waitFor(first, 'update');
      first.disconnect();
      // The shipped spec keeps 300 updates a room.
      await h.publishOk(gw.url, Array.from({ length: 301 }, (_, i) => h.event('metrics.updated', tenantId, { n: i + 1 })));

      const again = await h.connectFor(t, gw.url, { token, transports: setup.transports });
      const { ack, confirmed } = await h.subscribe(again, { type: 'metrics', since: position });
      assert.equal(ack.recovered, false);
      assert.equal(confirmed.recovered, false);
      const other = await h.connectFor(t, gw.url, { token, transports: setup.transports });
      const stranger = await h.subscribe(other, { type: 'metrics', since: { offset: 1, epoch: 'ffffffffffff' } });
      assert.equal(stranger.ack.recovered, false, 'another epoch');
      await h.publishOk(gw.url, h.event('metrics.updated', tenantId, { n: 'live' }));
      for (const socket of [again, other]) {
        const update = await h.waitFor(socket, 'update');
        assert.equal(update.payload.n, 'live', 'live updates only');
        assert.equal(update.position.offset, 303);
      }
    });

    it('refuses a since that is not a position, and the socket stays subscribed to nothing new', async (t) => {
      const tenantId = `bad-${h.uid()}`;
      const socket = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }), transports: setup.transports });
      const ack = await h.request(socket, 'subscribe', { type: 'metrics', since: { offset: -1, epoch: 'x' } });
      assert.equal(ack.error?.type, 'validation', JSON.stringify(ack));
      assert.equal((await h.waitFor(socket, 'error')).type, 'validation');
      assert.equal((await h.request(socket, 'ping', {})).timestamp !== undefined, true, 'still connected');
    });
  });
}

describe('late joiners on /workflow (a spec with replay)', () => {
  let gw;
  let specs;
  before(async () => {
    specs = h.tempDir();
    // The shipped spec, with the subscribe join sending the room's last 5 updates.
    const spec = readFileSync(path.join(SPECS, 'workflow.yaml'), 'utf8').replace(
      '          since: "{payload.since}"\n',
      '          since: "{payload.since}"\n          replay: 5\n',
    );
    assert.match(spec, /replay: 5/);
    h.writeFile(specs.dir, 'workflow.yaml', spec);
    gw = await h.startGateway({ env: { NAMESPACES_DIR: specs.dir } });
  });
  after(async () => {
    await gw?.stop();
    specs?.remove();
  });

  for (const setup of h.TRANSPORTS.filter((s) => !s.upgrade)) {
    it(`sends a new subscriber the room's last 5 updates after its answer, then live ones (${setup.name})`, async (t) => {
      const tenantId = `late-${h.uid()}`;
      await h.publishOk(gw.url, Array.from({ length: 8 }, (_, i) => step(tenantId, i + 1)));
      const socket = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }), transports: setup.transports });
      const { ack } = await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      assert.equal(ack.recovered, undefined, 'no since, no recovered');
      const replayed = [];
      for (let i = 0; i < 5; i++) replayed.push(await h.waitFor(socket, 'update'));
      assert.deepEqual(replayed.map((u) => u.payload.seq), [4, 5, 6, 7, 8]);
      assert.deepEqual(replayed.map((u) => u.position.offset), [4, 5, 6, 7, 8]);
      await h.publishOk(gw.url, step(tenantId, 9));
      assert.equal((await h.waitFor(socket, 'update')).position.offset, 9);
      await sleep(100);
      assert.deepEqual(h.pending(socket, 'update'), [], 'each once');
      // With since, replay does not apply: all or nothing from the position.
      const back = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }), transports: setup.transports });
      const resumed = await h.subscribe(back, { type: 'execution', resourceId: 'e1', since: replayed[4].position });
      assert.equal(resumed.ack.recovered, true);
      assert.equal((await h.waitFor(back, 'update')).position.offset, 9);
      await sleep(100);
      assert.deepEqual(h.pending(back, 'update'), []);
    });
  }
});

describe('history and recovery on /workflow across two nodes', () => {
  const cluster = {};
  before(async () => {
    cluster.redis = await startRedis();
    const env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `siohist${h.uid()}` };
    cluster.a = await h.startGateway({ env });
    cluster.b = await h.startGateway({ env });
    await h.untilReady([{ url: cluster.a.url, name: 'a' }, { url: cluster.b.url, name: 'b' }]);
  });
  after(async () => {
    await cluster.a?.stop();
    await cluster.b?.stop();
    await cluster.redis?.stop();
  });

  for (const setup of h.TRANSPORTS.filter((s) => !s.upgrade)) {
    it(`gives a client whose transport was cut mid-stream on one node exactly what it missed on the other, once, in order, while publishing goes on (${setup.name})`, async (t) => {
      const tenantId = `move-${h.uid()}`;
      const token = h.mintToken({ tenantId });
      const TOTAL = 120;
      const onA = await h.connectFor(t, cluster.a.url, { token, transports: setup.transports });
      await h.subscribe(onA, { type: 'execution', resourceId: 'e1' });
      // Published through both nodes in turn, one call at a time: one order, whoever takes it.
      const publishing = (async () => {
        for (let seq = 1; seq <= TOTAL; seq++) {
          await h.publishOk((seq % 2 ? cluster.a : cluster.b).url, step(tenantId, seq));
          await sleep(2);
        }
      })();
      const seen = [];
      let last;
      while (seen.length < 20) {
        const update = await h.waitFor(onA, 'update', 10_000);
        seen.push(update.payload.seq);
        last = update.position;
      }
      // The transport goes away as a network would take it (this socket does not reconnect);
      // the client comes back through the other node, as a load balancer may send it.
      onA.io.engine.close();

      const onB = await h.connectFor(t, cluster.b.url, { token, transports: setup.transports });
      const { ack, confirmed } = await h.subscribe(onB, { type: 'execution', resourceId: 'e1', since: last });
      assert.equal(ack.recovered, true, JSON.stringify(ack));
      assert.equal(confirmed.recovered, true);
      let offset = last.offset;
      while (seen.at(-1) < TOTAL) {
        const update = await h.waitFor(onB, 'update', 10_000);
        offset += 1;
        assert.equal(update.position.offset, offset, `in order, none twice: ${JSON.stringify(update)} after ${seen.at(-1)}`);
        assert.equal(update.position.epoch, last.epoch, 'one numbering on both nodes');
        seen.push(update.payload.seq);
      }
      await publishing;
      assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1));
      await sleep(100);
      assert.deepEqual(h.pending(onB, 'update'), [], 'nothing more');
    });
  }

  it('numbers a subscription the same on both nodes', async (t) => {
    const tenantId = `same-${h.uid()}`;
    const token = h.mintToken({ tenantId });
    const onA = await h.connectFor(t, cluster.a.url, { token });
    const onB = await h.connectFor(t, cluster.b.url, { token });
    await h.subscribe(onA, { type: 'execution', resourceId: 'e1' });
    await h.subscribe(onB, { type: 'execution', resourceId: 'e1' });
    await h.publishOk(cluster.a.url, [step(tenantId, 1), step(tenantId, 2)]);
    await h.publishOk(cluster.b.url, step(tenantId, 3));
    for (let seq = 1; seq <= 3; seq++) {
      const [a, b] = [await h.waitFor(onA, 'update'), await h.waitFor(onB, 'update')];
      assert.deepEqual([a.payload.seq, b.payload.seq], [seq, seq]);
      assert.deepEqual(a.position, b.position);
      assert.equal(a.position.offset, seq);
    }
  });

  it('answers recovered: false on the other node for a gap longer than the history, and sends only live updates', async (t) => {
    const tenantId = `gap2-${h.uid()}`;
    const token = h.mintToken({ tenantId });
    const onA = await h.connectFor(t, cluster.a.url, { token });
    await h.subscribe(onA, { type: 'metrics' });
    await h.publishOk(cluster.a.url, h.event('metrics.updated', tenantId, { n: 0 }));
    const { position } = await h.waitFor(onA, 'update');
    onA.disconnect();
    // The shipped spec keeps 300 updates a room.
    await h.publishOk(cluster.a.url, Array.from({ length: 301 }, (_, i) => h.event('metrics.updated', tenantId, { n: i + 1 })));
    // B has applied the batch once a probe on B got the update after it.
    const probe = await h.connectFor(t, cluster.b.url, { token });
    await h.subscribe(probe, { type: 'metrics' });
    await h.publishOk(cluster.a.url, h.event('metrics.updated', tenantId, { n: 'probe' }));
    // (B may still be applying the batch when the probe subscribes: its updates can come first.)
    const probed = await h.waitFor(probe, 'update', h.TIMEOUT, (u) => u.payload.n === 'probe');
    assert.equal(probed.position.offset, 303);

    const onB = await h.connectFor(t, cluster.b.url, { token });
    const { ack, confirmed } = await h.subscribe(onB, { type: 'metrics', since: position });
    assert.equal(ack.recovered, false);
    assert.equal(confirmed.recovered, false);
    await h.publishOk(cluster.a.url, h.event('metrics.updated', tenantId, { n: 'live' }));
    const update = await h.waitFor(onB, 'update');
    assert.equal(update.payload.n, 'live', 'live updates only');
    assert.equal(update.position.offset, 304);
    await sleep(50);
    assert.deepEqual(h.pending(onB, 'update'), [], 'no old updates');
  });
});

describe('history on /workflow: a client ahead of the node it reconnects to', onOneRedisOnly('a TCP proxy delays one node\'s reads of one Redis'), () => {
  let cluster;
  before(async () => {
    cluster = await startProxiedPair('sioahead');
  });
  after(async () => {
    await cluster?.stop();
  });

  it('recovers it with nothing yet, then skips what it had and sends what follows, once, in order', async (t) => {
    const tenantId = `ahead-${h.uid()}`;
    const token = h.mintToken({ tenantId });
    const onA = await h.connectFor(t, cluster.a.url, { token });
    await h.subscribe(onA, { type: 'execution', resourceId: 'e1' });
    await h.publishOk(cluster.a.url, step(tenantId, 1));
    const first = await h.waitFor(onA, 'update');
    // B is in the room's history from update 1 on: a probe on B got update 2.
    const probe = await h.connectFor(t, cluster.b.url, { token });
    await h.subscribe(probe, { type: 'execution', resourceId: 'e1' });
    await h.publishOk(cluster.a.url, step(tenantId, 2));
    await h.waitFor(probe, 'update', h.TIMEOUT, (u) => u.payload.seq === 2);

    // B's next bus read is held for 1.2 s (its read times out after 1.5 s: it is slow, not down).
    t.after(() => cluster.proxy.delay(null));
    const rule = cluster.proxy.delay('XREAD', 1200);
    await h.eventually(() => rule.hits > 0, "B's next read held");
    await h.publishOk(cluster.a.url, [step(tenantId, 3), step(tenantId, 4)]);
    let last;
    for (const seq of [2, 3, 4]) last = (await h.waitFor(onA, 'update', h.TIMEOUT, (u) => u.payload.seq === seq)).position;
    assert.equal(last.offset, first.position.offset + 3);
    onA.io.engine.close();

    const onB = await h.connectFor(t, cluster.b.url, { token });
    const { ack } = await h.subscribe(onB, { type: 'execution', resourceId: 'e1', since: last });
    assert.equal(ack.recovered, true, JSON.stringify(ack));
    t.diagnostic(`B had applied ${h.pending(probe, 'update').map((u) => u.payload.seq).join(', ') || 'none'} of 3 and 4 when it answered`);
    // B applies 3 and 4 once its read is let through; then 5 and 6 are what the client gets.
    await h.waitFor(probe, 'update', h.TIMEOUT, (u) => u.payload.seq === 4);
    await h.publishOk(cluster.a.url, [step(tenantId, 5), step(tenantId, 6)]);
    const next = [await h.waitFor(onB, 'update'), await h.waitFor(onB, 'update')];
    assert.deepEqual(next.map((u) => u.payload.seq), [5, 6], 'none of what it had, nothing missed');
    assert.deepEqual(next.map((u) => u.position.offset), [last.offset + 1, last.offset + 2]);
    await sleep(100);
    assert.deepEqual(h.pending(onB, 'update'), [], 'nothing more');
  });
});

// Room history on the Socket.IO namespace /workflow, with the official socket.io-client as seed
// 000's frontends use it: updates of subscriptions carry a `position` ({offset, epoch, room});
// a client whose transport is cut mid-stream reconnects by itself (socket.io-client's own
// reconnection), subscribes again with `since` (the last position it saw) and gets exactly what
// it missed, once, in order, then live updates, while a backend keeps publishing; a gap longer
// than the history answers `recovered: false`; a spec with `replay` sends a late joiner the
// room's last events. Over websocket and over polling. Two nodes: each keeps its own history, so
// a client that moves to the other node is told `recovered: false`, never given wrong updates.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

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

  it('recovers on the node the client was on, and tells a client that moved to the other node recovered: false', async (t) => {
    const tenantId = `two-${h.uid()}`;
    const token = h.mintToken({ tenantId });
    const onA = await h.connectFor(t, cluster.a.url, { token });
    await h.subscribe(onA, { type: 'execution', resourceId: 'e1' });
    await h.publishOk(cluster.b.url, step(tenantId, 1));
    const { position } = await h.waitFor(onA, 'update');
    onA.disconnect();
    await h.publishOk(cluster.b.url, [step(tenantId, 2), step(tenantId, 3)]);
    // B applies the bus on its own: wait until it has delivered all three.
    const probe = await h.connectFor(t, cluster.b.url, { token });
    await h.subscribe(probe, { type: 'execution', resourceId: 'e1' });
    await h.publishOk(cluster.a.url, step(tenantId, 4));
    assert.equal((await h.waitFor(probe, 'update')).payload.seq, 4);

    const movedToB = await h.connectFor(t, cluster.b.url, { token });
    const onB = await h.subscribe(movedToB, { type: 'execution', resourceId: 'e1', since: position });
    assert.equal(onB.ack.recovered, false, 'another node numbers its own history');
    const backOnA = await h.connectFor(t, cluster.a.url, { token });
    const again = await h.subscribe(backOnA, { type: 'execution', resourceId: 'e1', since: position });
    assert.equal(again.ack.recovered, true);
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push((await h.waitFor(backOnA, 'update')).payload.seq);
    assert.deepEqual(missed, [2, 3, 4]);
    await sleep(100);
    assert.deepEqual(h.pending(movedToB, 'update'), [], 'nothing from a history that does not match');
    assert.deepEqual(h.pending(backOnA, 'update'), [], 'each once');
  });
});

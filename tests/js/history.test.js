// Room history on the plain WebSocket endpoint /ws (seed 001's hub protocol), through the `ws`
// package as seed 001's frontend uses it: events of channels with history carry their `channel`
// and `position`; a client whose socket is destroyed mid-stream subscribes again with `since`
// and gets exactly what it missed, once, in order, while publishing goes on; a gap longer than
// the history, or another epoch, answers `recovered: false`; channels without history are
// unchanged. Two nodes and a private Redis: positions are numbered once, in Redis, as an event
// goes on the bus, so a client that moves to the other node recovers there; a gap longer than
// the history, or a Redis restart (its numbering lost: new epochs), answers `recovered: false`;
// a client that got events the node it moves to has not applied yet (that node's bus reads held
// back by a proxy) is recovered with nothing yet, and those events are not sent to it again.
// A spec whose subscribe joins with `replay` sends a late joiner the channel's last events.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as h from './helpers.js';
import { openHub } from './hub.js';
import { onOneRedisOnly, startProxiedPair, startRedis } from './redis.js';

const step = (tenantId, seq, extra = {}) =>
  h.event('step.progress', tenantId, { execution_id: 'e1', workflow_id: 'w1', status: 'running', seq, ...extra });

/** Subscribes with `since` and resolves to the `subscribed` envelope's data. */
async function resubscribe(socket, channel, since) {
  socket.send('subscribe', { channel, since });
  return (await socket.next('subscribed', { where: (e) => e.data.channel === channel })).data;
}

/** Publishes steps `from`..`to` one call each, `gapMs` apart. */
async function publishSteps(url, tenantId, from, to, gapMs) {
  for (let seq = from; seq <= to; seq++) {
    await h.publishOk(url, step(tenantId, seq));
    if (gapMs) await sleep(gapMs);
  }
}

describe('history and recovery on /ws', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stop());

  it('puts channel and position on events of channels with history, and leaves other channels as they were', async (t) => {
    const tenantId = `pos-${h.uid()}`;
    const watcher = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const user = await openHub(t, gw.url, h.mintToken({ tenantId, sub: 'u7' }));
    assert.deepEqual(await watcher.subscribe('executions:e1'), { channel: 'executions:e1' });
    await user.subscribe('users:u7');
    await h.publishOk(gw.url, [step(tenantId, 1, { user_id: 'u7' }), step(tenantId, 2, { user_id: 'u7' })]);
    const first = await watcher.next('step.progress');
    const second = await watcher.next('step.progress');
    assert.deepEqual(Object.keys(first), ['type', 'timestamp', 'data', 'channel', 'position']);
    assert.equal(first.channel, 'executions:e1');
    assert.equal(first.position.offset, 1);
    assert.equal(second.position.offset, 2);
    assert.equal(first.position.epoch, second.position.epoch);
    assert.match(first.position.epoch, /^[0-9a-f]{12}$/);
    const plain = await user.next('step.progress');
    assert.deepEqual(Object.keys(plain), ['type', 'timestamp', 'data'], 'users:{id} keeps no history');
  });

  it('gives a client whose socket was destroyed mid-stream exactly what it missed, once, in order, while publishing goes on', async (t) => {
    const tenantId = `rec-${h.uid()}`;
    const TOTAL = 150;
    const first = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await first.subscribe('workflows:w1');
    const publishing = publishSteps(gw.url, tenantId, 1, TOTAL, 3);
    const seen = [];
    let last;
    while (seen.length < 25) {
      const got = await first.next('step.progress');
      seen.push(got.data.seq);
      last = got.position;
    }
    first.ws.terminate();
    await sleep(40);

    const second = await openHub(t, gw.url, h.mintToken({ tenantId }));
    const answer = await resubscribe(second, 'workflows:w1', last);
    assert.equal(answer.recovered, true, JSON.stringify(answer));
    assert.equal(answer.channel, 'workflows:w1');
    let offset = last.offset;
    while (seen.at(-1) < TOTAL) {
      const got = await second.next('step.progress');
      offset += 1;
      assert.equal(got.position.offset, offset, `in order, none twice: ${JSON.stringify(got)}`);
      assert.equal(got.position.epoch, last.epoch);
      seen.push(got.data.seq);
    }
    await publishing;
    assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1));
    await sleep(100);
    assert.deepEqual(second.pending('step.progress'), [], 'nothing more');
  });

  it('answers recovered: false for a gap longer than the history and for another epoch, and sends no old events', async (t) => {
    const tenantId = `gap-${h.uid()}`;
    const client = await openHub(t, gw.url, h.mintToken({ tenantId }));
    await client.subscribe('approvals');
    await h.publishOk(gw.url, h.event('approval.required', tenantId, { approval_id: 'a0', execution_id: 'e1' }));
    const position = (await client.next('approval.required')).position;
    client.ws.terminate();
    // The shipped hub spec keeps 300 events a channel.
    const batch = Array.from({ length: 301 }, (_, i) => h.event('approval.required', tenantId, { approval_id: `a${i + 1}` }));
    await h.publishOk(gw.url, batch);

    const again = await openHub(t, gw.url, h.mintToken({ tenantId }));
    assert.equal((await resubscribe(again, 'approvals', position)).recovered, false);
    const other = await openHub(t, gw.url, h.mintToken({ tenantId }));
    assert.equal((await resubscribe(other, 'approvals', { offset: 301, epoch: 'ffffffffffff' })).recovered, false);
    await h.publishOk(gw.url, h.event('approval.required', tenantId, { approval_id: 'live' }));
    assert.equal((await again.next('approval.required')).data.approval_id, 'live', 'live events only');
    assert.equal((await other.next('approval.required')).data.approval_id, 'live', 'live events only');
  });
});

describe('history and recovery on /ws across two nodes', () => {
  const cluster = {};
  before(async () => {
    cluster.redis = await startRedis();
    const env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `hist${h.uid()}` };
    cluster.a = await h.startGateway({ env });
    cluster.a.name = 'A';
    cluster.b = await h.startGateway({ env });
    cluster.b.name = 'B';
    await h.untilReady([cluster.a, cluster.b]);
  });
  after(async () => {
    if (process.env.CLUSTER_LOGS) {
      for (const node of [cluster.a, cluster.b]) if (node) console.log(`--- node ${node.name}\n${node.logs.join('\n')}`);
    }
    await cluster.a?.stop();
    await cluster.b?.stop();
    await cluster.redis?.stop();
  });

  it('gives a client whose socket was destroyed mid-stream on one node exactly what it missed on the other, once, in order, while publishing goes on', async (t) => {
    const tenantId = `move-${h.uid()}`;
    const TOTAL = 150;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    await onA.subscribe('workflows:w1');
    // Published through both nodes in turn, one call at a time: one order, whoever takes it.
    const publishing = (async () => {
      for (let seq = 1; seq <= TOTAL; seq++) {
        await h.publishOk((seq % 2 ? cluster.a : cluster.b).url, step(tenantId, seq));
        await sleep(3);
      }
    })();
    const seen = [];
    let last;
    while (seen.length < 25) {
      const got = await onA.next('step.progress');
      seen.push(got.data.seq);
      last = got.position;
    }
    onA.ws.terminate();

    const onB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    const answer = await resubscribe(onB, 'workflows:w1', last);
    assert.equal(answer.recovered, true, JSON.stringify(answer));
    let offset = last.offset;
    while (seen.at(-1) < TOTAL) {
      const got = await onB.next('step.progress');
      offset += 1;
      assert.equal(got.position.offset, offset, `in order, none twice: ${JSON.stringify(got)} after ${seen.at(-1)}`);
      assert.equal(got.position.epoch, last.epoch, 'one numbering on both nodes');
      seen.push(got.data.seq);
    }
    await publishing;
    assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1));
    await sleep(100);
    assert.deepEqual(onB.pending('step.progress'), [], 'nothing more');
  });

  it('numbers a channel the same on both nodes', async (t) => {
    const tenantId = `same-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    const onB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    await onA.subscribe('executions:e1');
    await onB.subscribe('executions:e1');
    await h.publishOk(cluster.a.url, [step(tenantId, 1), step(tenantId, 2)]);
    await h.publishOk(cluster.b.url, step(tenantId, 3));
    for (let seq = 1; seq <= 3; seq++) {
      const [a, b] = [await onA.next('step.progress'), await onB.next('step.progress')];
      assert.deepEqual([a.data.seq, b.data.seq], [seq, seq]);
      assert.deepEqual(a.position, b.position);
      assert.equal(a.position.offset, seq);
    }
  });

  it('answers recovered: false on the other node for a gap longer than the history, and sends no old events', async (t) => {
    const tenantId = `gap2-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    await onA.subscribe('approvals');
    await h.publishOk(cluster.a.url, h.event('approval.required', tenantId, { approval_id: 'a0' }));
    const position = (await onA.next('approval.required')).position;
    onA.ws.terminate();
    // The shipped hub spec keeps 300 events a channel.
    const batch = Array.from({ length: 301 }, (_, i) => h.event('approval.required', tenantId, { approval_id: `a${i + 1}` }));
    await h.publishOk(cluster.a.url, batch);
    // B has applied the batch once a probe on B got the event after it.
    const probe = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    await probe.subscribe('approvals');
    await h.publishOk(cluster.a.url, h.event('approval.required', tenantId, { approval_id: 'probe' }));
    // (B may still be applying the batch when the probe subscribes: its events can come first.)
    const probed = await probe.next('approval.required', { where: (e) => e.data.approval_id === 'probe' });
    assert.equal(probed.position.offset, 303);

    const onB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    assert.equal((await resubscribe(onB, 'approvals', position)).recovered, false);
    await h.publishOk(cluster.a.url, h.event('approval.required', tenantId, { approval_id: 'live' }));
    assert.equal((await onB.next('approval.required')).data.approval_id, 'live', 'live events only');
  });

  it('after a Redis restart (the numbering lost) answers recovered: false for positions of the old epoch once the channel has a new one', async (t) => {
    const tenantId = `restart-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    await onA.subscribe('executions:e9');
    const e9 = (seq) => h.event('step.progress', tenantId, { execution_id: 'e9', workflow_id: 'w9', status: 'running', seq });
    await h.publishOk(cluster.a.url, [e9(1), e9(2)]);
    await onA.next('step.progress');
    const before = (await onA.next('step.progress')).position;
    onA.ws.terminate();

    await cluster.redis.restart();
    await h.untilReady([cluster.a, cluster.b]);
    // Nothing was published since: each node still holds the channel as it was.
    const early = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    assert.equal((await resubscribe(early, 'executions:e9', { offset: 1, epoch: before.epoch })).recovered, true);
    assert.equal((await early.next('step.progress')).data.seq, 2);

    await h.publishOk(cluster.b.url, e9(3));
    const after = (await early.next('step.progress')).position;
    assert.notEqual(after.epoch, before.epoch, 'a new epoch');
    assert.equal(after.offset, 1, 'numbered from 1 again');
    for (const node of [cluster.a, cluster.b]) {
      const late = await openHub(t, node.url, h.mintToken({ tenantId }));
      // The other node may apply the event a little later: a probe on it first.
      await late.subscribe('executions:e9');
      await h.eventually(async () => {
        const again = await openHub(t, node.url, h.mintToken({ tenantId }));
        const answer = await resubscribe(again, 'executions:e9', { offset: 0, epoch: after.epoch });
        return answer.recovered;
      }, `node ${node.name} holds the new epoch`);
      const old = await openHub(t, node.url, h.mintToken({ tenantId }));
      assert.equal((await resubscribe(old, 'executions:e9', before)).recovered, false, `on node ${node.name}`);
      await sleep(50);
      assert.deepEqual(old.pending('step.progress'), [], 'no old events');
    }
  });
});

describe('history on /ws: a client ahead of the node it reconnects to', onOneRedisOnly('a TCP proxy delays one node\'s reads of one Redis'), () => {
  let cluster;
  before(async () => {
    cluster = await startProxiedPair('ahead');
  });
  after(async () => {
    await cluster?.stop();
  });

  it('recovers it with nothing yet, then skips what it had and sends what follows, once, in order', async (t) => {
    const tenantId = `ahead-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    await onA.subscribe('workflows:w1');
    await h.publishOk(cluster.a.url, step(tenantId, 1));
    const first = await onA.next('step.progress');
    // B is in the room's history from event 1 on: a probe on B got it.
    const probe = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    await probe.subscribe('workflows:w1');
    await h.publishOk(cluster.a.url, step(tenantId, 2));
    await probe.next('step.progress', { where: (e) => e.data.seq === 2 });

    // B's next bus read is held for 1.2 s (its read times out after 1.5 s: it is slow, not down).
    t.after(() => cluster.proxy.delay(null));
    const rule = cluster.proxy.delay('XREAD', 1200);
    await h.eventually(() => rule.hits > 0, "B's next read held");
    await h.publishOk(cluster.a.url, [step(tenantId, 3), step(tenantId, 4)]);
    let last;
    for (const seq of [2, 3, 4]) {
      const got = await onA.next('step.progress', { where: (e) => e.data.seq === seq });
      last = got.position;
    }
    assert.equal(last.offset, first.position.offset + 3);
    onA.ws.terminate();

    const onB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    const answer = await resubscribe(onB, 'workflows:w1', last);
    assert.equal(answer.recovered, true, JSON.stringify(answer));
    t.diagnostic(`B had applied ${probe.pending('step.progress').map((e) => e.data.seq).join(', ') || 'none'} of 3 and 4 when it answered`);
    // B applies 3 and 4 once its read is let through; then 5 and 6 are what the client gets.
    await probe.next('step.progress', { where: (e) => e.data.seq === 4 });
    await h.publishOk(cluster.a.url, [step(tenantId, 5), step(tenantId, 6)]);
    const next = [await onB.next('step.progress'), await onB.next('step.progress')];
    assert.deepEqual(next.map((e) => e.data.seq), [5, 6], 'none of what it had, nothing missed');
    assert.deepEqual(next.map((e) => e.position.offset), [last.offset + 1, last.offset + 2]);
    await sleep(100);
    assert.deepEqual(onB.pending('step.progress'), [], 'nothing more');
  });
});

describe('late joiners on /ws (a spec with replay)', () => {
  let gw;
  let specs;
  before(async () => {
    specs = h.tempDir();
    // The shipped hub spec, with subscribe sending the channel's last 3 events.
    const spec = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../namespaces/hub.yaml'), 'utf8')
      .replace('            status: "{payload.filters.statuses}"\n      - reply:', '            status: "{payload.filters.statuses}"\n          replay: 3\n      - reply:');
    assert.match(spec, /replay: 3/);
    h.writeFile(specs.dir, 'hub.yaml', spec);
    gw = await h.startGateway({ env: { NAMESPACES_DIR: specs.dir } });
  });
  after(async () => {
    await gw?.stop();
    specs?.remove();
  });

  it("sends a new subscriber the channel's last 3 events its filters let through, after the answer, then live ones", async (t) => {
    const tenantId = `late-${h.uid()}`;
    await publishSteps(gw.url, tenantId, 1, 5, 0);
    await h.publishOk(gw.url, step(tenantId, 6, { status: 'failed' }));
    const client = await openHub(t, gw.url, h.mintToken({ tenantId }));
    client.send('subscribe', { channel: 'executions:e1', filters: { statuses: ['running'] } });
    const answer = await client.next('subscribed');
    assert.equal(answer.data.recovered, undefined, 'no since, no recovered');
    // The last 3 of the channel are 4, 5 and 6; 6 is `failed`, which the filter keeps out.
    const replayed = [await client.next('step.progress'), await client.next('step.progress')];
    assert.deepEqual(replayed.map((e) => [e.data.seq, e.position.offset]), [[4, 4], [5, 5]]);
    await h.publishOk(gw.url, step(tenantId, 7));
    assert.equal((await client.next('step.progress')).position.offset, 7, 'then live');
    await sleep(100);
    assert.deepEqual(client.pending('step.progress'), [], 'each once');
  });
});

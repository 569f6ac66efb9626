// Room history on the plain WebSocket endpoint /ws (seed 001's hub protocol), through the `ws`
// package as seed 001's frontend uses it: events of channels with history carry their `channel`
// and `position`; a client whose socket is destroyed mid-stream subscribes again with `since`
// and gets exactly what it missed, once, in order, while publishing goes on; a gap longer than
// the history, or another epoch, answers `recovered: false`; channels without history are
// unchanged. Two nodes: each keeps its own history, so a client that moves to the other node is
// told `recovered: false`, never given wrong events. A spec whose subscribe joins with `replay`
// sends a late joiner the channel's last events.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as h from './helpers.js';
import { openHub } from './hub.js';
import { startRedis } from './redis.js';

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
    cluster.b = await h.startGateway({ env });
    for (const node of [cluster.a, cluster.b]) {
      await h.eventually(async () => (await h.api(node.url, '/readyz')).body?.status === 'ready', 'node ready', 10_000);
    }
  });
  after(async () => {
    await cluster.a?.stop();
    await cluster.b?.stop();
    await cluster.redis?.stop();
  });

  it('recovers on the node the client was on, and tells a client that moved to the other node recovered: false', async (t) => {
    const tenantId = `two-${h.uid()}`;
    const onA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    await onA.subscribe('executions:e1');
    await h.publishOk(cluster.b.url, step(tenantId, 1));
    const position = (await onA.next('step.progress')).position;
    onA.ws.terminate();
    await h.publishOk(cluster.b.url, [step(tenantId, 2), step(tenantId, 3)]);

    const backOnA = await openHub(t, cluster.a.url, h.mintToken({ tenantId }));
    const movedToB = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    // B reads the bus on its own: wait until it has applied both events.
    const probe = await openHub(t, cluster.b.url, h.mintToken({ tenantId }));
    await probe.subscribe('executions:e1');
    await h.publishOk(cluster.a.url, step(tenantId, 4));
    await probe.next('step.progress');
    const onB = await resubscribe(movedToB, 'executions:e1', position);
    assert.equal(onB.recovered, false, 'another node numbers its own history');
    const onAgain = await resubscribe(backOnA, 'executions:e1', position);
    assert.equal(onAgain.recovered, true);
    const missed = [await backOnA.next('step.progress'), await backOnA.next('step.progress'), await backOnA.next('step.progress')];
    assert.deepEqual(missed.map((e) => e.data.seq), [2, 3, 4]);
    await sleep(100);
    assert.deepEqual(movedToB.pending('step.progress'), [], 'nothing from a history that does not match');
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

// Bursts and slow consumers on Socket.IO namespaces: a client that reads gets every event of any
// burst the publish API accepts (several publishers at once included), over each transport; a
// client that stops reading is ended at its byte budget or at the write deadline, and the others
// lose nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as h from './helpers.js';

/** A batch of `count` /workflow updates for `tenantId`, numbered, tagged `batch`. */
const batch = (tenantId, tag, count, pad = 100) =>
  Array.from({ length: count }, (_, n) => h.event('execution.progress', tenantId, { executionId: `e-${tag}`, batch: tag, n, pad: 'x'.repeat(pad) }));

/** Resolves once `socket` has received `count` updates, with them; rejects after `timeoutMs`. */
function collectUpdates(socket, count, timeoutMs) {
  const got = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} updates within ${timeoutMs} ms (connected: ${socket.connected})`)), timeoutMs);
    socket.on('update', (update) => {
      got.push(update.payload);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('bursts the publish API accepts', () => {
  for (const transport of h.TRANSPORTS) {
    it(`reach a reading client whole, two full batches at once (${transport.name})`, async (t) => {
      const gw = await h.startGateway();
      t.after(() => gw.stop());
      const tenantId = `burst-${h.uid()}`;
      const socket = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }), transports: transport.transports });
      await h.subscribe(socket, { type: 'execution' });
      const received = collectUpdates(socket, 2000, 30_000);
      // Two publishers, each with the largest batch the API takes (API_MAX_BATCH), at once.
      await Promise.all(['a', 'b'].map((tag) => h.publishOk(gw.url, batch(tenantId, tag, 1000))));
      const updates = await received;
      for (const tag of ['a', 'b']) {
        assert.deepEqual(updates.filter((u) => u.batch === tag).map((u) => u.n), [...Array(1000).keys()], `batch ${tag} whole and in order`);
      }
      assert.ok(socket.connected, 'still connected');
      assert.equal(await h.metric(gw.url, 'connections_cut_total', { reason: 'slow_consumer' }), 0);
      assert.equal(await h.metric(gw.url, 'deliveries_dropped_total'), 0);
    });
  }
});

describe('clients that stop reading', () => {
  it('over WebSocket are ended at their byte budget, and the reader gets every event', async (t) => {
    // A long write deadline and heartbeat: here the byte budget alone must end it.
    const gw = await h.startGateway({
      env: { WS_MAX_BUFFER_BYTES: '1000000', WS_WRITE_TIMEOUT: '60000', WS_PING_INTERVAL: '30000', WS_PING_TIMEOUT: '30000' },
    });
    t.after(() => gw.stop());
    const tenantId = `stall-${h.uid()}`;
    const reader = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId }) });
    await h.subscribe(reader, { type: 'execution' });
    const stalled = await h.connectFor(t, gw.url, { token: h.mintToken({ tenantId, sub: 'stalled' }) });
    await h.subscribe(stalled, { type: 'execution' });
    stalled.io.engine.transport.ws._socket.pause();
    // One 100 kB event at a time, each read by the reader before the next: the reader is never
    // behind, while the stalled client's kernel buffers fill and then its budget.
    let sent = 0;
    while ((await h.metric(gw.url, 'connections_cut_total', { reason: 'slow_consumer' })) === 0) {
      assert.ok(sent < 400, 'the stalled client was never ended');
      await h.publishOk(gw.url, [h.event('execution.progress', tenantId, { executionId: 'e1', n: sent, blob: 'y'.repeat(100_000) })]);
      const update = await h.waitFor(reader, 'update', 10_000);
      assert.equal(update.payload.n, sent, 'in order, none missing');
      sent += 1;
    }
    assert.ok((await h.metric(gw.url, 'slow_consumer_abandoned_bytes_total')) > 1_000_000, 'what it left is counted');
    await h.eventually(async () => (await h.api(gw.url, '/api/v1/stats?namespace=/workflow')).body.connections === 1, 'the stalled socket gone', 10_000);
    assert.ok(reader.connected, 'the reader stays');
  });

  it('over long-polling are ended at the write deadline, not the heartbeat', async (t) => {
    const gw = await h.startGateway({ env: { WS_WRITE_TIMEOUT: '1000', WS_PING_INTERVAL: '30000', WS_PING_TIMEOUT: '30000' } });
    t.after(() => gw.stop());
    const tenantId = `poll-${h.uid()}`;
    const poller = await pollingSubscriber(gw.url, h.mintToken({ tenantId }));
    // It never polls again. Events keep coming for it: once what waits for it has seen no poll
    // for the write deadline, it is ended.
    const started = Date.now();
    let n = 0;
    while ((await h.metric(gw.url, 'connections_cut_total', { reason: 'slow_consumer' })) === 0) {
      assert.ok(Date.now() - started < 10_000, 'not ended within 10 s');
      await h.publishOk(gw.url, [h.event('execution.progress', tenantId, { executionId: 'e1', n: n++ })]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await h.eventually(async () => (await h.api(gw.url, '/api/v1/stats?namespace=/workflow')).body.connections === 0, 'the session ended', 5000);
    const poll = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling&sid=${poller.sid}`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(poll.status, 400, 'the session is gone');
  });
});

/** A long-polling Engine.IO session, by hand, subscribed to /workflow's executions; it polls no more. */
async function pollingSubscriber(url, token) {
  const base = `${url}/socket.io/?EIO=4&transport=polling`;
  const get = async (query = '') => (await fetch(`${base}${query}`, { signal: AbortSignal.timeout(h.TIMEOUT) })).text();
  const post = (sid, body) => fetch(`${base}&sid=${sid}`, { method: 'POST', body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, signal: AbortSignal.timeout(h.TIMEOUT) });
  const { sid } = JSON.parse((await get()).slice(1));
  await post(sid, `40/workflow,${JSON.stringify({ token })}`);
  await h.eventually(async () => (await get(`&sid=${sid}`)).includes('"connected"'), 'connected', h.TIMEOUT);
  await post(sid, `42/workflow,${JSON.stringify(['subscribe', { type: 'execution' }])}`);
  await h.eventually(async () => (await get(`&sid=${sid}`)).includes('"subscription_confirmed"'), 'subscribed', h.TIMEOUT);
  return { sid };
}

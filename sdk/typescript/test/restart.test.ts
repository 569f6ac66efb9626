// Publishing with the SDK while the gateway it talks to restarts (SIGTERM, then started again on
// the same port, as a deploy does): the calls made while it is down are retried until it is
// back, every call succeeds, and a frontend that stays connected (to a second node of the same
// cluster, on a private Redis) receives each event once, in call order.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { RealtimeGateway } from '@realtime-gateway/sdk';

import {
  API_KEY,
  freePort,
  frontend,
  mintToken,
  request,
  sleep,
  startGateway,
  startRedis,
  uid,
  type Frontend,
  type Gateway,
} from './support/gateway';

/** Resolves once `/readyz` says ready. */
async function ready(gateway: Gateway, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${gateway.url}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    const body = (await response?.json().catch(() => undefined)) as { status?: string } | undefined;
    if (body?.status === 'ready') return;
    if (Date.now() > deadline)
      throw new Error(`${gateway.url} not ready within ${timeoutMs} ms (${JSON.stringify(body)})`);
    await sleep(50);
  }
}

describe('publishing while the gateway restarts', { timeout: 60_000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('delivers every event once and in order', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `sdk${uid()}`, SHUTDOWN_TIMEOUT: '3000' };
    const port = await freePort();
    let restarted: Gateway = await startGateway({ env, port });
    cleanup.push(() => restarted.stop());
    const steady = await startGateway({ env });
    cleanup.push(() => steady.stop());
    await ready(restarted);
    await ready(steady);

    const tenant = `t-${uid()}`;
    const watcher: Frontend = await frontend(steady.url, '/realtime', {
      token: mintToken({ tenantId: tenant }),
      welcome: 'connection:success',
    });
    cleanup.push(() => watcher.close());
    await request(watcher, 'subscribe:queue');

    const realtimeGateway = new RealtimeGateway({
      url: restarted.url,
      apiKey: API_KEY,
      tenantId: tenant,
      timeoutMs: 3000,
      retries: 100,
      backoff: { baseMs: 20, maxMs: 200 },
    });
    // The cluster carries events between the nodes before the run starts.
    await realtimeGateway.emitJobProgress({ jobId: 'probe', type: 'probe', progress: 0 });
    await watcher.until((_, data) => (data as { jobId: string }).jobId === 'probe');

    // A job reporting its progress every few ms, without awaiting, as seed 004's services do.
    // The gateway it publishes to stops after the first third has been answered, and starts
    // again on the same port a moment later: what is published meanwhile meets refused
    // connections and is retried with backoff until it is back.
    // The stop waits for the first third to be answered because a gateway stopped with a publish
    // in flight can answer it 202 and still drop it (its bus stops before in-flight requests
    // finish: src/app.rs `run`), which no client can repair.
    const count = 150;
    const publish = (from: number, to: number) =>
      (async () => {
        const calls: Array<Promise<void>> = [];
        for (let progress = from; progress < to; progress++) {
          calls.push(realtimeGateway.emitJobProgress({ jobId: 'j1', type: 'import', progress }));
          await sleep(5);
        }
        return calls;
      })();
    await Promise.all(await publish(0, 50));
    await restarted.stop();
    const restart = sleep(150).then(async () => {
      restarted = await startGateway({ env, port });
    });
    await Promise.all(await publish(50, count));
    await restart;
    const received = await watcher.until((_, data) => (data as { progress: number }).progress === count - 1, 20000);
    assert.deepEqual(
      received.map(([, data]) => (data as { progress: number }).progress),
      Array.from({ length: count }, (_, i) => i),
    );
    assert.ok(realtimeGateway.client.metrics.retries > 0, 'some calls were retried');
    await sleep(100);
    assert.deepEqual(
      watcher.inbox.map((e) => e.event),
      [],
      'nothing arrived twice',
    );
  });
});

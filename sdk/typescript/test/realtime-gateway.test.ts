// Seed 004's RealtimeGateway, used as the seed's services use it (calls without `await`), against
// the gateway binary: socket.io-client frontends on `/realtime`, in the rooms the seed's gateway
// emitted to, receive each event under its name with the payload as given, in call order, and
// nothing of another tenant's; the counters answer what the gateway holds; a failure nobody
// awaits is reported and never stops the process.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { GatewayClient, GatewayError, GatewayUsageError, RealtimeGateway } from '@realtime-gateway/sdk';

import {
  API_KEY,
  frontend,
  mintToken,
  request,
  startGateway,
  uid,
  type Frontend,
  type Gateway,
} from './support/gateway';

/** A `/realtime` frontend of `tenant`, subscribed as the seed's React code does. */
async function dashboardClient(
  url: string,
  tenant: string,
  rooms: Array<'dashboard' | 'queue' | { contractId: string }>,
): Promise<Frontend> {
  const f = await frontend(url, '/realtime', {
    token: mintToken({ sub: `u-${uid()}`, tenantId: tenant }),
    welcome: 'connection:success',
  });
  for (const room of rooms) {
    const ack =
      typeof room === 'string' ? await request(f, `subscribe:${room}`) : await request(f, 'subscribe:contract', room);
    assert.equal((ack as { success?: boolean }).success, true, `subscribing to ${JSON.stringify(room)}`);
  }
  return f;
}

describe('RealtimeGateway (seed 004)', { timeout: 60_000 }, () => {
  let gateway: Gateway;
  const sockets: Frontend[] = [];
  const track = (f: Frontend) => {
    sockets.push(f);
    return f;
  };

  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    for (const f of sockets) f.close();
    await gateway?.stop();
  });

  it('each emit method reaches the rooms the seed emitted to, with its event name and payload, in call order', async () => {
    const tenant = `t-${uid()}`;
    const other = `t-${uid()}`;
    const dashboard = track(await dashboardClient(gateway.url, tenant, ['dashboard']));
    const queue = track(await dashboardClient(gateway.url, tenant, ['queue']));
    const contract = track(await dashboardClient(gateway.url, tenant, [{ contractId: 'c1' }]));
    const otherContract = track(await dashboardClient(gateway.url, tenant, [{ contractId: 'c2' }]));
    const otherTenant = track(await dashboardClient(gateway.url, other, ['dashboard', 'queue', { contractId: 'c1' }]));

    const realtimeGateway = new RealtimeGateway({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    const calculated = {
      id: 'k1',
      contractId: 'c1',
      commissionAmount: 1200,
      totalRevenue: 24000,
      period: '2024-01-01 - 2024-01-31',
    };
    const updated = { id: 'k1', contractId: 'c1', status: 'approved' };
    const progress = { jobId: 'j1', type: 'commission-calculation', progress: 40, message: 'Calculating' };
    const completed = { jobId: 'j1', result: { calculated: 12 } };
    const failed = { jobId: 'j2', error: 'Contract not found' };
    const stats = { waiting: 3, active: 1, completed: 10, failed: 1 };
    const metrics = {
      totalRevenue: 24000,
      totalCommissions: 1200,
      pendingPayments: 2,
      overduePayments: 0,
      activeContracts: 5,
      timestamp: '2024-01-31T12:00:00.000Z',
    };

    // As the seed's services call them: one after another, nothing awaited.
    realtimeGateway.emitCommissionCalculated(calculated);
    realtimeGateway.emitCommissionUpdated(updated);
    realtimeGateway.emitJobProgress(progress);
    realtimeGateway.emitJobCompleted(completed);
    realtimeGateway.emitJobFailed(failed);
    realtimeGateway.emitQueueStats(stats);
    realtimeGateway.emitDashboardMetrics(metrics);
    // Last, to every room: whatever a socket receives before it is all it will receive of the above.
    const end = { id: 'end', contractId: 'c1' };
    const endC2 = { id: 'end', contractId: 'c2' };
    const endQueue = { jobId: 'end', type: 'end', progress: 100 };
    realtimeGateway.emitCommissionUpdated(end);
    realtimeGateway.emitJobProgress(endQueue);
    realtimeGateway.emitCommissionUpdated(endC2);
    const endOther = new RealtimeGateway({ url: gateway.url, apiKey: API_KEY, tenantId: other });
    await endOther.emitCommissionUpdated(end);
    await endOther.emitJobProgress(endQueue);

    const isEnd = (_: string, data: unknown) =>
      (data as { id?: string; jobId?: string }).id === 'end' || (data as { jobId?: string }).jobId === 'end';
    assert.deepEqual(await dashboard.until(isEnd), [
      ['commission:calculated', calculated],
      ['commission:updated', updated],
      ['dashboard:metrics', metrics],
      ['commission:updated', end],
    ]);
    assert.deepEqual(await dashboard.until(isEnd), [['commission:updated', endC2]]);
    assert.deepEqual(await contract.until(isEnd), [
      ['commission:calculated', calculated],
      ['commission:updated', updated],
      ['commission:updated', end],
    ]);
    assert.deepEqual(await queue.until(isEnd), [
      ['queue:job-progress', progress],
      ['queue:job-completed', completed],
      ['queue:job-failed', failed],
      ['queue:stats', stats],
      ['queue:job-progress', endQueue],
    ]);
    // Another contract's room and another tenant's rooms got nothing but their own end markers.
    assert.deepEqual(await otherContract.until(isEnd), [['commission:updated', endC2]]);
    const otherEvents = await otherTenant.until(isEnd);
    assert.deepEqual(otherEvents, [['commission:updated', end]], 'the other tenant only sees its own events');
    assert.deepEqual(
      (await otherTenant.until(isEnd)).map(([event]) => event),
      ['queue:job-progress'],
    );
  });

  it('counts connected clients and room members over the gateway, as promises', async () => {
    const tenant = `t-${uid()}`;
    const mine = new RealtimeGateway({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    assert.equal(await mine.getConnectedClientsCount(), 0);
    track(await dashboardClient(gateway.url, tenant, ['dashboard']));
    track(await dashboardClient(gateway.url, tenant, ['dashboard', 'queue', { contractId: 'c9' }]));
    assert.equal(await mine.getConnectedClientsCount(), 2);
    assert.equal(await mine.getClientsInRoom('dashboard'), 2);
    assert.equal(await mine.getClientsInRoom('queue'), 1);
    assert.equal(await mine.getClientsInRoom('contract:c9'), 1);
    assert.equal(await mine.getClientsInRoom('contract:c10'), 0);

    // A client for every tenant counts them all, and names the tenant of a room.
    const all = new RealtimeGateway({ url: gateway.url, apiKey: API_KEY });
    const stats = await all.client.stats({ namespace: '/realtime' });
    assert.equal(await all.getConnectedClientsCount(), stats.namespaces['/realtime']!.connections);
    assert.ok((await all.getConnectedClientsCount()) >= 2);
    assert.equal(await all.getClientsInRoom('dashboard', tenant), 2);
    await assert.rejects(all.getClientsInRoom('dashboard'), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.status, 400);
      assert.match(String((error.body as { error: { message: string } }).error.message), /tenant room/);
      return true;
    });
  });

  it('keeps the order of many calls made without await, sending them in few requests', async () => {
    const tenant = `t-${uid()}`;
    const queue = track(await dashboardClient(gateway.url, tenant, ['queue']));
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    const realtimeGateway = new RealtimeGateway(client);
    const count = 300;
    for (let i = 0; i < count; i++) realtimeGateway.emitJobProgress({ jobId: 'j1', type: 'import', progress: i });
    const received = await queue.until((_, data) => (data as { progress: number }).progress === count - 1, 10000);
    assert.deepEqual(
      received.map(([, data]) => (data as { progress: number }).progress),
      Array.from({ length: count }, (_, i) => i),
    );
    assert.ok(client.metrics.requests < count, `${client.metrics.requests} requests for ${count} calls`);
  });

  it('reports a failure nobody awaits to onError, never as an unhandled rejection, and sends the calls around it', async () => {
    const tenant = `t-${uid()}`;
    const dashboard = track(await dashboardClient(gateway.url, tenant, ['dashboard']));
    const reported: unknown[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const realtimeGateway = new RealtimeGateway({
        url: gateway.url,
        apiKey: API_KEY,
        tenantId: tenant,
        onError: (e) => reported.push(e),
      });
      const good = { id: 'k1', contractId: 'c1', commissionAmount: 1, totalRevenue: 2, period: 'p' };
      realtimeGateway.emitCommissionCalculated(good);
      // No contractId: the gateway refuses it (400), as its route needs one.
      realtimeGateway.emitCommissionCalculated({ id: 'bad' } as never);
      realtimeGateway.emitCommissionCalculated({ ...good, id: 'k2' });
      const received = await dashboard.until((_, data) => (data as { id: string }).id === 'k2');
      assert.deepEqual(
        received.map(([, data]) => (data as { id: string }).id),
        ['k1', 'k2'],
      );
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(reported.length, 1);
      const error = reported[0];
      assert.ok(error instanceof GatewayError);
      assert.equal(error.status, 400);
      assert.equal(error.type, 'validation');
      assert.equal(error.retryable, false);
      assert.match(error.message, /contractId is required/);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('takes the tenant from the client, else from the payload, and refuses a payload of another tenant', async () => {
    const tenant = `t-${uid()}`;
    const dashboard = track(await dashboardClient(gateway.url, tenant, ['dashboard']));
    const metrics = {
      totalRevenue: 1,
      totalCommissions: 2,
      pendingPayments: 3,
      overduePayments: 4,
      activeContracts: 5,
      timestamp: 'now',
    };

    // A client for every tenant: the payload's own tenantId picks it, and is delivered as given.
    const shared = new RealtimeGateway({ url: gateway.url, apiKey: API_KEY, onError: () => {} });
    await shared.emitDashboardMetrics({ ...metrics, tenantId: tenant });
    assert.deepEqual(await dashboard.next('dashboard:metrics'), { ...metrics, tenantId: tenant });

    // Neither: the gateway answers that these rooms need a tenant.
    await assert.rejects(shared.emitDashboardMetrics(metrics), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.status, 400);
      assert.match(error.message, /tenantId is required/);
      return true;
    });

    // A client of one tenant: a payload of another is refused before anything is sent.
    const reported: unknown[] = [];
    const confined = new RealtimeGateway({
      url: gateway.url,
      apiKey: API_KEY,
      tenantId: tenant,
      onError: (e) => reported.push(e),
    });
    const before = confined.client.metrics.requests;
    await assert.rejects(confined.emitDashboardMetrics({ ...metrics, tenantId: 'someone-else' }), GatewayUsageError);
    assert.equal(confined.client.metrics.requests, before, 'nothing was sent');
    assert.equal(reported.length, 1);
    // Naming the client's own tenant is fine.
    await confined.emitDashboardMetrics({ ...metrics, tenantId: tenant });
    assert.deepEqual(await dashboard.next('dashboard:metrics'), { ...metrics, tenantId: tenant });
  });
});

// Seed 002's WebSocketHelper against the gateway binary: the seed's three sends reach the `/ws`
// frontends the seed's helper reached, under the event names the seed's frontend code listens
// for (`user.notification`, `platform.security.alert`, `tenant.data.update`), and no one else;
// `subscribeToEvents` returns its id at once and reads the gateway's event stream (more in
// stream-gateway.test.ts; a gateway without the stream in stream.test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { GatewayUsageError, WebSocketHelper } from '@realtime-gateway/sdk';

import { API_KEY, frontend, mintToken, startGateway, uid, type Frontend, type Gateway } from './support/gateway';

describe('WebSocketHelper (seed 002)', { timeout: 60_000 }, () => {
  let gateway: Gateway;
  const sockets: Frontend[] = [];
  const connect = async (claims: Record<string, unknown>) => {
    const f = await frontend(gateway.url, '/ws', { token: mintToken(claims), welcome: 'connection.confirmed' });
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

  it("sends the seed's three kinds of update to the sockets the seed reached, and no others", async () => {
    const tenant = `t-${uid()}`;
    const otherTenant = `t-${uid()}`;
    const user = await connect({ sub: 'u1', tenantId: tenant });
    const neighbour = await connect({ sub: 'u2', tenantId: tenant });
    const admin = await connect({ sub: 'root', tenantId: tenant, roles: ['platform_admin'] });
    const stranger = await connect({ sub: 'u1', tenantId: otherTenant });

    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    // The seed's calls, as written there.
    const notification = {
      type: 'info',
      title: 'Task Completed',
      message: 'Your data export is ready',
      timestamp: Date.now(),
    };
    await websocketHelper.sendUserNotification('u1', notification);
    const alert = { type: 'failed_login', attempts: 5, ipAddress: '192.168.1.100', timestamp: Date.now() };
    await websocketHelper.sendToPlatformAdmins('security.alert', alert);
    const update = { type: 'inventory_update', item: { sku: 'A1', quantity: 3 }, timestamp: Date.now() };
    await websocketHelper.sendTenantDataUpdate(tenant, update);
    // Last, to everyone of both tenants: what a socket got before it is all it got of the above.
    const end = { type: 'end' };
    await websocketHelper.sendTenantDataUpdate(tenant, end);
    await new WebSocketHelper({ url: gateway.url, apiKey: API_KEY }).sendTenantDataUpdate(otherTenant, end);
    const isEnd = (_: string, data: unknown) => (data as { type?: string }).type === 'end';

    assert.deepEqual(await user.until(isEnd), [
      ['user.notification', { ...notification, userId: 'u1' }],
      ['tenant.data.update', update],
      ['tenant.data.update', end],
    ]);
    assert.deepEqual(await neighbour.until(isEnd), [
      ['tenant.data.update', update],
      ['tenant.data.update', end],
    ]);
    assert.deepEqual(await admin.until(isEnd), [
      ['platform.security.alert', alert],
      ['tenant.data.update', update],
      ['tenant.data.update', end],
    ]);
    assert.deepEqual(await stranger.until(isEnd), [['tenant.data.update', end]]);
  });

  it('sends a platform event already named platform.* under its own name, and refuses no name', async () => {
    const admin = await connect({ sub: 'root', tenantId: `t-${uid()}`, roles: ['super_admin'] });
    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: API_KEY });
    await websocketHelper.sendToPlatformAdmins('platform.health.degraded', { service: 'db' });
    assert.deepEqual(await admin.next('platform.health.degraded'), { service: 'db' });
    await assert.rejects(websocketHelper.sendToPlatformAdmins('', {}), GatewayUsageError);
  });

  it("refuses a tenant update for another tenant than the client's", async () => {
    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: API_KEY, tenantId: 'a' });
    await assert.rejects(websocketHelper.sendTenantDataUpdate('b', { type: 'x' }), GatewayUsageError);
    assert.equal(websocketHelper.client.metrics.requests, 0);
  });

  it('subscribeToEvents returns an id at once and gets what the helper sends', async () => {
    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: API_KEY });
    const seen: unknown[] = [];
    let opened = false;
    const subscriptionId = websocketHelper.subscribeToEvents(
      'platform.*',
      async (event) => void seen.push(event.data),
      {
        module: 'user_service',
        onOpen: () => (opened = true),
      },
    );
    assert.equal(typeof subscriptionId, 'string');
    const deadline = Date.now() + 5000;
    while (!opened && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(opened, 'the stream opened');
    await websocketHelper.sendToPlatformAdmins('health.degraded', { service: 'db' });
    while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(seen, [{ service: 'db' }]);
    assert.equal(websocketHelper.unsubscribeFromEvents(subscriptionId), true);
    assert.equal(websocketHelper.unsubscribeFromEvents(subscriptionId), false, 'it has stopped');
    assert.throws(() => websocketHelper.subscribeToEvents('platform.*.x', () => {}), GatewayUsageError);
    await websocketHelper.close();
  });
});

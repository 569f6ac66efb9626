// A tenant-scoped API key (the gateway's TENANT_API_KEYS) against the gateway binary: a client
// with such a key and no `tenantId` option publishes for the key's tenant, as the seed's calls
// are written; a call naming another tenant, or for the platform's rooms, is a 403 GatewayError
// from the gateway and reaches no one; the counters count the key's tenant only.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { GatewayClient, GatewayError, WebSocketHelper } from '@realtime-gateway/sdk';

import { frontend, mintToken, startGateway, uid, type Frontend, type Gateway } from './support/gateway';

describe('a client with a tenant-scoped API key', { timeout: 60_000 }, () => {
  const tenant = `t-${uid()}`;
  const otherTenant = `t-${uid()}`;
  const tenantKey = `key-${uid()}`;
  const otherKey = `key-${uid()}`;
  let gateway: Gateway;
  const sockets: Frontend[] = [];
  const connect = async (claims: Record<string, unknown>) => {
    const f = await frontend(gateway.url, '/ws', { token: mintToken(claims), welcome: 'connection.confirmed' });
    sockets.push(f);
    return f;
  };
  const forbidden = (error: unknown) => {
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.status, 403);
    assert.equal(error.type, 'forbidden');
    assert.equal(error.retryable, false);
    assert.ok(!error.message.includes(tenantKey), 'the key is not in the message');
    return true;
  };

  before(async () => {
    gateway = await startGateway({ env: { TENANT_API_KEYS: `${tenant}:${tenantKey},${otherTenant}:${otherKey}` } });
  });
  after(async () => {
    for (const f of sockets) f.close();
    await gateway?.stop();
  });

  it("needs no tenantId option: the seed's calls reach the key's tenant, and another tenant is a 403", async () => {
    const user = await connect({ sub: 'u1', tenantId: tenant });
    const admin = await connect({ sub: 'root', tenantId: tenant, roles: ['platform_admin'] });
    const stranger = await connect({ sub: 'u1', tenantId: otherTenant });

    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: tenantKey });
    const notification = { type: 'info', title: 'Task Completed', message: 'Your data export is ready' };
    await websocketHelper.sendUserNotification('u1', notification);
    await assert.rejects(websocketHelper.sendTenantDataUpdate(otherTenant, { type: 'theirs' }), forbidden);
    await assert.rejects(websocketHelper.sendToPlatformAdmins('security.alert', { type: 'failed_login' }), forbidden);
    const end = { type: 'end' };
    await websocketHelper.sendTenantDataUpdate(tenant, end);
    await new WebSocketHelper({ url: gateway.url, apiKey: otherKey }).sendTenantDataUpdate(otherTenant, end);
    const isEnd = (_: string, data: unknown) => (data as { type?: string }).type === 'end';

    assert.deepEqual(await user.until(isEnd), [
      ['user.notification', { ...notification, userId: 'u1' }],
      ['tenant.data.update', end],
    ]);
    assert.deepEqual(await admin.until(isEnd), [['tenant.data.update', end]], 'no platform alert');
    assert.deepEqual(await stranger.until(isEnd), [['tenant.data.update', end]], "nothing of the other tenant's");
  });

  it('fails only the call for another tenant when the ordered queue batched it with others', async () => {
    const user = await connect({ sub: 'u3', tenantId: tenant });
    const websocketHelper = new WebSocketHelper({ url: gateway.url, apiKey: tenantKey });
    // Called without `await`, as seed services do: the queue batches what waits behind the first.
    const calls = [
      websocketHelper.sendTenantDataUpdate(tenant, { type: 'first' }),
      websocketHelper.sendTenantDataUpdate(tenant, { type: 'second' }),
      websocketHelper.sendTenantDataUpdate(otherTenant, { type: 'theirs' }),
      websocketHelper.sendTenantDataUpdate(tenant, { type: 'end' }),
    ];
    const outcomes = await Promise.allSettled(calls);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    forbidden((outcomes[2] as PromiseRejectedResult).reason);
    const isEnd = (_: string, data: unknown) => (data as { type?: string }).type === 'end';
    assert.deepEqual(await user.until(isEnd), [
      ['tenant.data.update', { type: 'first' }],
      ['tenant.data.update', { type: 'second' }],
      ['tenant.data.update', { type: 'end' }],
    ]);
  });

  it("reads its own tenant's statistics only", async () => {
    await connect({ sub: 'u2', tenantId: tenant });
    await connect({ sub: 'u2', tenantId: otherTenant });
    const client = new GatewayClient({ url: gateway.url, apiKey: otherKey });
    try {
      const stats = await client.stats({ namespace: '/ws' });
      assert.deepEqual(Object.keys(stats.namespaces['/ws']!.tenants), [otherTenant]);
      await assert.rejects(client.stats({ namespace: '/ws', room: 'global.general', tenantId: tenant }), forbidden);
    } finally {
      await client.close();
    }
  });
});

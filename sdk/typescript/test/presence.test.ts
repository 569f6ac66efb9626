// GatewayClient.presence against the gateway binary: the users of a room and their connection
// counts, and a tenant's, as socket.io-client frontends are connected.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { GatewayClient, GatewayError } from '@realtime-gateway/sdk';

import { API_KEY, frontend, mintToken, startGateway, uid, type Frontend, type Gateway } from './support/gateway';

describe('GatewayClient.presence', { timeout: 60_000 }, () => {
  let gateway: Gateway;
  const sockets: Frontend[] = [];

  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    for (const f of sockets) f.close();
    await gateway?.stop();
  });

  it('lists the users of a room and of a tenant with their connections', async () => {
    const tenant = `t-${uid()}`;
    // The notifications namespace (`/`) puts every socket in its tenant's `system` channel.
    for (const sub of ['ann', 'ann', 'ben']) {
      sockets.push(await frontend(gateway.url, '/', { token: mintToken({ sub, tenantId: tenant }) }));
    }
    const client = new GatewayClient({ url: gateway.url, apiKey: API_KEY });
    const room = await client.presence({ namespace: '/', room: 'system', tenantId: tenant });
    assert.deepEqual(room.users, [
      { userId: 'ann', connections: 2 },
      { userId: 'ben', connections: 1 },
    ]);
    assert.equal(room.connections, 3);
    assert.equal(room.complete, true);

    // A client bound to the tenant asks for its tenant without naming it.
    const bound = new GatewayClient({ url: gateway.url, apiKey: API_KEY, tenantId: tenant });
    const whole = await bound.presence({ namespace: '/' });
    assert.deepEqual(
      whole.users.map((u) => u.userId),
      ['ann', 'ben'],
    );
    assert.equal(whole.tenantId, tenant);

    // A tenant room without its tenant: the gateway's 400, typed.
    const error = await client.presence({ namespace: '/', room: 'system' }).catch((e: unknown) => e);
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.status, 400);
  });
});

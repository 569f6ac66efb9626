// Tenant-scoped API keys (TENANT_API_KEYS) with the clients users run: seed 001's backend
// client on the plain `/ws` endpoint (the `ws` package, only `X-API-Key`, no ?tenantId=), and
// socket.io-client frontends of two tenants while a tenant's key publishes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { HubSocket, hubUrl } from './hub.js';

const A = `tenant-a-${h.uid()}`;
const B = `tenant-b-${h.uid()}`;
const KEY_A = `key-a-${h.uid()}`;
const KEY_B = `key-b-${h.uid()}`;

let gw;

before(async () => {
  gw = await h.startGateway({ env: { TENANT_API_KEYS: `${A}:${KEY_A},${B}:${KEY_B}` } });
});
after(async () => {
  await gw?.stop();
});

const withKey = (key) => ({ headers: { 'X-API-Key': key } });
const execution = (type, tenantId, data) => ({ type, ...(tenantId ? { tenantId } : {}), data });

/** A seed 001 backend client: `/ws` with `X-API-Key` and nothing else, closed when `t` ends. */
async function backend(t, key) {
  const socket = new HubSocket(hubUrl(gw.url), withKey(key));
  t.after(() => socket.close());
  await socket.opened;
  return socket;
}

describe('a tenant key on the plain /ws endpoint', () => {
  it("connects without ?tenantId= as a backend of its tenant and receives that tenant's events only", async (t) => {
    const service = await backend(t, KEY_A);
    await service.subscribe('executions');
    await h.publishOk(gw.url, [
      execution('execution.failed', B, { execution_id: 'of-b' }),
      execution('execution.failed', A, { execution_id: 'of-a' }),
    ]);
    assert.equal((await service.next('execution.failed')).data.execution_id, 'of-a');
    // Its own key's publish, without a tenantId, reaches it too.
    const published = await h.publish(gw.url, execution('execution.started', undefined, { execution_id: 'by-key-a' }), withKey(KEY_A));
    assert.equal(published.status, 202, JSON.stringify(published.body));
    assert.equal((await service.next('execution.started')).data.execution_id, 'by-key-a');
    assert.deepEqual(service.pending('execution.failed'), [], "b's event never came");
  });

  it('is refused another tenant with 403, and a platform key still names its tenant', async () => {
    const other = new HubSocket(hubUrl(gw.url, `?tenantId=${B}`), withKey(KEY_A));
    const refusal = await other.opened.then(() => null, (error) => error);
    other.close();
    assert.equal(refusal?.status, 403);
    assert.equal(refusal.body.error.type, 'auth');
    assert.match(refusal.body.error.message, /not this API key's tenant/);
    assert.ok(!JSON.stringify(refusal.body).includes(KEY_A), 'the key is not echoed');

    const platform = new HubSocket(hubUrl(gw.url), withKey(h.API_KEY));
    const missing = await platform.opened.then(() => null, (error) => error);
    platform.close();
    assert.equal(missing?.status, 400);
  });

  it("counts its tenant's connections only on /ws/stats", async (t) => {
    await backend(t, KEY_B);
    await backend(t, KEY_B);
    const stats = async (key) => (await h.api(gw.url, '/ws/stats', undefined, withKey(key))).body.total_clients;
    await h.until(async () => (await stats(KEY_B)) === 2, h.TIMEOUT, "tenant b's two connections counted");
    assert.ok((await stats(h.API_KEY)) >= 2);
    await h.until(async () => (await stats(KEY_A)) === 0, h.TIMEOUT, "none of a's once the first test's socket is closed");
  });
});

describe('a tenant key publishing to socket.io-client frontends of two tenants', () => {
  /** A /workflow frontend of `tenant`, subscribed to every execution of its tenant. */
  async function frontend(t, tenant) {
    const socket = await h.connectFor(t, gw.url, { token: h.mintToken({ sub: 'u1', tenantId: tenant }) });
    await h.subscribe(socket, { type: 'execution' });
    return socket;
  }

  it('reaches its own tenant, and naming the other tenant is a 403 that delivers nothing of the batch', async (t) => {
    const a = await frontend(t, A);
    const b = await frontend(t, B);

    const mine = await h.publish(gw.url, execution('execution.started', undefined, { executionId: 'a1' }), withKey(KEY_A));
    assert.deepEqual(mine, { status: 202, body: { accepted: 1 } });
    assert.equal((await h.waitFor(a, 'update')).payload.executionId, 'a1');

    const theirs = await h.publish(
      gw.url,
      [execution('execution.started', A, { executionId: 'a2' }), execution('execution.started', B, { executionId: 'b-by-a' })],
      withKey(KEY_A),
    );
    assert.equal(theirs.status, 403, JSON.stringify(theirs.body));
    assert.equal(theirs.body.error.type, 'forbidden');
    assert.match(theirs.body.error.message, /events\[1\]\.tenantId/);

    // The next update each frontend gets is the marker sent after the refusal: nothing came before it.
    await h.publishOk(gw.url, [execution('execution.started', B, { executionId: 'b-marker' }), execution('execution.started', A, { executionId: 'a-marker' })]);
    assert.equal((await h.waitFor(b, 'update')).payload.executionId, 'b-marker');
    assert.equal((await h.waitFor(a, 'update')).payload.executionId, 'a-marker');

    const stats = await h.api(gw.url, '/api/v1/stats?namespace=/workflow', undefined, withKey(KEY_B));
    assert.equal(stats.status, 200);
    assert.deepEqual(stats.body.namespaces['/workflow'], { connections: 1, tenants: { [B]: 1 }, anonymous: 0 });
  });
});

// Client events forwarded fire-and-forget to a database or Kafka destination (BACKENDS_FILE
// `kind: database` / `kind: kafka`; docs/namespace-spec.md, "Forwarding client events to
// backends"): Socket.IO clients of two tenants send events, which become rows of `client_events`
// in a PostgreSQL database this file creates and drops (127.0.0.1:5432, or PG_ADMIN_URL), and
// records of a topic on the test Kafka broker (kafka.js) keyed by tenant, read back by kafkajs.
// A destination that cannot take more refuses at once (`backend_busy`); `check` refuses a
// forward that waits for an answer from one; the start is refused without DATABASE_URL.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';

import * as h from './helpers.js';
import { readTopic, startBroker } from './kafka.js';

const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOPIC = 'client.events';
const WAIT = 20000;

const SPEC = `
namespace: /audit
events:
  note:
    do:
      - forward: { to: audit-db, reply: false }
      - forward: { to: audit-kafka, reply: false }
  stuck:
    do:
      - forward: { to: stuck-kafka, reply: false }
`;

const BACKENDS = [
  'audit-db: { kind: database }',
  `audit-kafka: { kind: kafka, topic: ${TOPIC} }`,
  // A topic the cluster lacks: its writer never connects, so its queue (2) fills.
  'stuck-kafka: { kind: kafka, topic: no.such.topic, queue: 2 }',
  '',
].join('\n');

describe('client events forwarded to a database or Kafka destination', { timeout: 120_000 }, () => {
  let admin;
  let database;
  let databaseUrl;
  let broker;
  let gateway;
  let dirs;

  before(async () => {
    admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    database = `rtgw_fwd_${h.uid()}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${database}`;
    databaseUrl = url.toString();
    broker = await startBroker([TOPIC]);
    const specs = h.tempDir('rtgw-fwd-sinks-');
    h.writeFile(specs.dir, 'audit.yaml', SPEC);
    const config = h.tempDir('rtgw-fwd-sinks-config-');
    dirs = [specs, config];
    const file = h.writeFile(config.dir, 'backends.yaml', BACKENDS);
    gateway = await h.startGateway({
      env: { NAMESPACES_DIR: specs.dir, BACKENDS_FILE: file, DATABASE_URL: databaseUrl, KAFKA_BROKERS: broker.bootstrap },
    });
  });

  after(async () => {
    await gateway?.stop();
    await broker?.stop();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      await admin.end();
    }
    for (const d of dirs ?? []) d.remove();
  });

  const connect = (t, claims) => h.connectFor(t, gateway.url, { namespace: '/audit', token: h.mintToken(claims), welcome: null });

  /** The rows of `client_events` whose data's tag is `tag`, oldest first ([] while the table is missing). */
  async function rows(tag) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const result = await client.query(`SELECT * FROM client_events WHERE data->>'tag' = $1 ORDER BY id`, [tag]);
      return result.rows;
    } catch (e) {
      if (e.code === '42P01') return []; // not created yet
      throw e;
    } finally {
      await client.end();
    }
  }

  it('writes each event as a row and a record keyed by tenant, acked at once', async (t) => {
    const tag = h.uid();
    const writtenBefore = await h.metric(gateway.url, 'backend_calls_total', { outcome: 'written' });
    const alice = await connect(t, { sub: 'alice', tenantId: 'acme', roles: ['admin'] });
    const bob = await connect(t, { sub: 'bob', tenantId: 'beta' });
    for (let n = 1; n <= 3; n += 1) {
      assert.deepEqual(await h.request(alice, 'note', { tag, n }), { ok: true });
    }
    assert.deepEqual(await h.request(bob, 'note', { tag, n: 4 }), { ok: true });

    let written = [];
    await h.eventually(async () => (written = await rows(tag)).length === 4, 'four rows in client_events', WAIT);
    assert.deepEqual(written.map((r) => r.data.n), [1, 2, 3, 4], 'in the order sent');
    const [row] = written;
    assert.equal(row.destination, 'audit-db');
    assert.equal(row.tenant_id, 'acme');
    assert.equal(row.namespace, '/audit');
    assert.equal(row.event, 'note');
    assert.equal(row.user_id, 'alice');
    h.assertPublicId(row.socket_id, alice);
    assert.deepEqual(row.socket, {
      id: row.socket_id, transport: 'websocket', userId: 'alice', tenantId: 'acme', roles: ['admin'], authenticated: true,
    });
    assert.ok(row.timestamp instanceof Date && Math.abs(Date.now() - row.timestamp.getTime()) < 60_000, `${row.timestamp}`);
    assert.equal(written[3].tenant_id, 'beta');
    assert.equal(written[3].user_id, 'bob');

    const records = await readTopic(broker.bootstrap, TOPIC, tag, 4, WAIT);
    const acme = records.filter((r) => r.key === 'acme');
    assert.deepEqual(acme.map((r) => r.value.data.n), [1, 2, 3], "one tenant's records in order");
    assert.deepEqual(records.filter((r) => r.key === 'beta').map((r) => r.value.data.n), [4]);
    const { value } = acme[0];
    assert.deepEqual(Object.keys(value).sort(), ['data', 'event', 'namespace', 'socket', 'timestamp']);
    assert.equal(value.event, 'note');
    assert.equal(value.namespace, '/audit');
    assert.deepEqual(value.socket, row.socket);
    assert.match(value.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    await h.eventually(
      async () => (await h.metric(gateway.url, 'backend_calls_total', { outcome: 'written' })) >= writtenBefore + 8,
      'four rows and four records counted written',
    );
  });

  it('refuses at once as backend_busy when the destination cannot take more, and goes on', async (t) => {
    const socket = await connect(t, { sub: 'carol', tenantId: 'acme' });
    const busyBefore = await h.metric(gateway.url, 'backend_calls_total', { outcome: 'busy' });
    assert.deepEqual(await h.request(socket, 'stuck', { n: 1 }), { ok: true });
    assert.deepEqual(await h.request(socket, 'stuck', { n: 2 }), { ok: true });
    const started = Date.now();
    const third = await h.request(socket, 'stuck', { n: 3 });
    assert.equal(third.error.type, 'backend_busy');
    assert.ok(Date.now() - started < 1000, 'refused at once');
    assert.equal(await h.metric(gateway.url, 'backend_calls_total', { outcome: 'busy' }), busyBefore + 1);
    // The other destinations, and the same socket, are unaffected.
    const tag = h.uid();
    assert.deepEqual(await h.request(socket, 'note', { tag }), { ok: true });
    await h.eventually(async () => (await rows(tag)).length === 1, 'the row written meanwhile', WAIT);
    assert.ok(!gateway.logs.join('').includes(databaseUrl), 'DATABASE_URL is never logged');
  });

  it('refuses a forward that waits for an answer, and a start without the variable', () => {
    const specs = h.tempDir('rtgw-fwd-sinks-check-');
    const config = h.tempDir('rtgw-fwd-sinks-check-config-');
    try {
      const backends = h.writeFile(config.dir, 'backends.yaml', BACKENDS);
      const env = { JWT_SECRET: h.SECRET, BACKENDS_FILE: backends, DATABASE_URL: databaseUrl, KAFKA_BROKERS: broker.bootstrap };
      h.writeFile(specs.dir, 'app.yaml', 'namespace: /app\nevents:\n  note:\n    do:\n      - forward: { to: audit-db }\n');
      const refused = h.runGateway(['check', specs.dir], { env });
      assert.equal(refused.status, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /app\.yaml:5:24: backend `audit-db` is a database or Kafka destination, which does not answer: add `reply: false`/);
      h.writeFile(specs.dir, 'app.yaml', 'namespace: /app\nevents:\n  note:\n    do:\n      - forward: { to: audit-db, reply: false }\n');
      const ok = h.runGateway(['check', specs.dir], { env });
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      const { DATABASE_URL: _, ...without } = env;
      const stopped = h.runGateway(['check', specs.dir], { env: without });
      assert.notEqual(stopped.status, 0);
      assert.match(stopped.stderr, /destination `audit-db` is of kind database: set DATABASE_URL/);
    } finally {
      specs.remove();
      config.remove();
    }
  });
});

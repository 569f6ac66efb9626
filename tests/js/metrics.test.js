// /metrics as an operator's Prometheus sees it, on a two-node cluster after real traffic (a
// socket.io-client connects, subscribes, pings, sends an unknown and an invalid event, a token is
// refused, events are published through both nodes and delivered): Prometheus's own checker,
// `promtool check metrics`, accepts the page without a lint complaint; the histograms and
// counters moved by what was done; and every metric the Grafana dashboard in deploy/grafana
// graphs is exported, in PromQL that `promtool check rules` parses.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as h from './helpers.js';
import { startRedis } from './redis.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DASHBOARD = path.resolve(HERE, '../../deploy/grafana/realtime-gateway.json');
const PROMTOOL = process.env.PROMTOOL_BIN ?? 'promtool';
const MISSING_PROMTOOL = 'promtool not found: it comes with Prometheus (Debian/Ubuntu: apt-get install prometheus; or a Prometheus release archive)';

/** Runs `promtool args` with `input` on stdin: `{ status, output }` (stdout and stderr together). */
function promtool(args, input) {
  const run = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 30000 });
  if (run.error?.code === 'ENOENT') throw new Error(MISSING_PROMTOOL);
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** Every `expr` in the dashboard, with the panel it belongs to. */
function dashboardQueries(dashboard) {
  const found = [];
  const walk = (node, panel) => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, panel));
    if (node === null || typeof node !== 'object') return;
    const title = node.title ?? panel;
    if (typeof node.expr === 'string') found.push({ panel: title, expr: node.expr });
    for (const value of Object.values(node)) walk(value, title);
  };
  walk(dashboard.panels, 'dashboard');
  return found;
}

/** Grafana's variables, replaced by what they stand for, so promtool can parse the PromQL. */
function asPromql(expr) {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$namespace', '.*');
}

describe('/metrics', () => {
  const cluster = { nodes: [] };
  let samplesBefore;
  let samplesAfter;
  let pageAfter;

  before(async () => {
    assert.notEqual(promtool(['--version']).status, null, MISSING_PROMTOOL);
    cluster.redis = await startRedis();
    const env = { REDIS_URL: cluster.redis.url, REDIS_PREFIX: `m${h.uid()}` };
    for (let i = 0; i < 2; i++) cluster.nodes.push(await h.startGateway({ env }));
    for (const node of cluster.nodes) {
      await h.eventually(async () => (await h.api(node.url, '/readyz')).body?.status === 'ready', 'the node is ready', 10000);
    }
    const [a, b] = cluster.nodes;
    samplesBefore = h.parseMetrics(await h.scrape(a.url));

    const tenant = `t-${h.uid()}`;
    const socket = await h.connectClient(a.url, { token: h.mintToken({ tenantId: tenant }) });
    try {
      await h.subscribe(socket, { type: 'execution', resourceId: 'e1' });
      assert.ok(!(await h.request(socket, 'ping', {}))?.error);
      assert.equal((await h.request(socket, 'no_such_event', {})).error?.type, 'validation');
      assert.equal((await h.request(socket, 'subscribe', { type: 'nonsense' })).error?.type, 'validation');
      // Through the other node (the bus brings it to A: remote lag), then through A itself.
      await h.publishOk(b.url, h.event('execution.started', tenant, { executionId: 'e1', status: 'running' }));
      await h.waitFor(socket, 'update');
      await h.publishOk(a.url, h.event('execution.completed', tenant, { executionId: 'e1', status: 'done' }));
      await h.waitFor(socket, 'update');
    } finally {
      socket.disconnect();
    }
    const refused = h.openSocket(a.url, { token: 'not-a-token' });
    try {
      assert.equal((await h.waitFor(refused, 'error')).type, 'auth');
    } finally {
      refused.disconnect();
    }
    await h.eventually(
      async () => h.sumOf(h.parseMetrics(await h.scrape(a.url)), 'connections_closed_total', { namespace: '/workflow', reason: 'client' })
        > h.sumOf(samplesBefore, 'connections_closed_total', { namespace: '/workflow', reason: 'client' }),
      'the disconnect is counted',
    );
    pageAfter = await h.scrape(a.url);
    samplesAfter = h.parseMetrics(pageAfter);
  });

  after(async () => {
    for (const node of cluster.nodes) await node.stop();
    await cluster.redis?.stop();
  });

  /** How much `name` (with `labels`) moved during the traffic. */
  const moved = (name, labels) => h.sumOf(samplesAfter, name, labels) - h.sumOf(samplesBefore, name, labels);

  it('is accepted by promtool check metrics, without a lint complaint', () => {
    const { status, output } = promtool(['check', 'metrics'], pageAfter);
    assert.equal(output, '', 'promtool had something to say');
    assert.equal(status, 0);
  });

  it('counts and times what the traffic did', () => {
    const ws = { namespace: '/workflow', protocol: 'socketio' };
    const events = 'client_event_duration_seconds';
    assert.equal(moved(`${events}_count`, { ...ws, event: 'subscribe' }), 2, 'a subscribe, and an invalid one');
    assert.equal(moved(`${events}_count`, { ...ws, event: 'ping' }), 1);
    assert.equal(moved(`${events}_count`, { ...ws, event: '_other' }), 1, 'an unknown event folds into _other');
    assert.ok(!pageAfter.includes('no_such_event'), 'a client-chosen name never becomes a label value');
    assert.equal(moved(`${events}_bucket`, { ...ws, event: 'subscribe', le: '+Inf' }), 2);
    assert.equal(moved(`${events}_bucket`, { ...ws, event: 'subscribe', le: '0.25' }), 2, 'each took under 250 ms');
    assert.ok(moved(`${events}_sum`, { ...ws, event: 'subscribe' }) > 0);

    assert.equal(moved('rejections_total', { ...ws, reason: 'validation' }), 1);
    assert.equal(moved('rejections_total', { ...ws, reason: 'auth' }), 1, 'the refused token');
    assert.equal(moved('rejections_total', { ...ws, reason: 'permission' }), 0);
    assert.equal(moved('handshake_duration_seconds_count', ws), 2, 'both admissions were timed');
    assert.equal(moved('connections_opened_total', ws), 1, 'the refused socket was never admitted');
    assert.equal(moved('connections_closed_total', { ...ws, reason: 'client' }), 1);
    assert.equal(h.sumOf(samplesAfter, 'namespace_connections', ws), h.sumOf(samplesBefore, 'namespace_connections', ws));

    assert.equal(moved('publish_delivery_duration_seconds_count', ws), 2, 'both published events were delivered here');
    assert.equal(moved('bus_lag_seconds_count', { origin: 'remote' }), 1, 'the one published through the other node');
    assert.equal(moved('bus_lag_seconds_count', { origin: 'local' }), 1, 'the one published here, back from Redis');
    assert.equal(h.sumOf(samplesAfter, 'redis_connected'), 1);
    assert.equal(h.sumOf(samplesAfter, 'redis_reconnects_total'), 0);
    assert.equal(moved('published_events_total'), 1, 'the API call taken by this node');
    assert.equal(moved('publish_request_duration_seconds_count'), 1, 'the publish call taken by this node was timed');
    assert.ok(h.sumOf(samplesAfter, 'runtime_lag_seconds_count') >= 1, 'the runtime probe runs every 100 ms');
    assert.equal(moved('runtime_lag_seconds_bucket', { le: '+Inf' }), moved('runtime_lag_seconds_count'));
  });

  it('exports every metric the Grafana dashboard graphs, in PromQL that promtool parses', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const exported = new Set(samplesAfter.map((s) => s.name));
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 20, `only ${queries.length} queries`);
    const named = new Set(JSON.stringify(dashboard).match(/realtime_gateway_\w+/g));
    const missing = [...named].filter((name) => !exported.has(name));
    assert.deepEqual(missing, [], 'the dashboard names metrics /metrics does not export');

    // Each query as a recording rule: `promtool check rules` parses the PromQL (JSON is YAML).
    const { dir, remove } = h.tempDir();
    try {
      const rules = { groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: asPromql(q.expr) })) }] };
      const file = path.join(dir, 'rules.yml');
      writeFileSync(file, JSON.stringify(rules));
      const { status, output } = promtool(['check', 'rules', file]);
      assert.equal(status, 0, output);
      assert.match(output, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      remove();
    }
  });
});

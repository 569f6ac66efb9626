// The benchmark suite: every scenario against the gateway and its Node.js reference, on the same
// machine, alternating which goes first, and a table of figures and ratios (gateway / Node).
//
//   bench/run [--quick] [--only memory,fanout,...] [--rounds 2] [--write]
//
// --write puts the table into docs/benchmarks.md and the charts into docs/bench/ (with --only, the
// measured scenarios' rows replace theirs in the table and the rest stays). CPU figures are
// the server's own CPU time (from /proc) divided by the work done, so they hold on a busy machine;
// rates and latencies depend on the load generator sharing the machine and are reported as measured.

import { fork } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { cpus, tmpdir, totalmem } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { lineChart } from './lib/chart.mjs';
import { openClients, percentile, token } from './lib/clients.mjs';
import { ROOT, HERE, redisInfo, sleep, startGateway, startNode, startRedis, startRedisCluster } from './lib/proc.mjs';
import { burst as publishBurst, flood, publish } from './lib/publish.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const QUICK = flag('quick');
const ROUNDS = Number(option('rounds', QUICK ? 1 : 2));
const ONLY = option('only', '').split(',').filter(Boolean);
const TENANT = 'bench-tenant';

const SERVERS = {
  gateway: { workflow: () => startGateway(), hub: () => startGateway() },
  node: { workflow: () => startNode('node-workflow.mjs'), hub: () => startNode('node-hub.mjs') },
};

const log = (...parts) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...parts);
const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const execution = (i, rooms = 1) => ({
  type: 'execution.progress',
  tenantId: TENANT,
  data: { executionId: `e${i % rooms}`, workflowId: 'w1', status: 'running', seq: i },
});
const hubEvent = (i, rooms = 1) => ({
  type: 'execution.progress',
  tenantId: TENANT,
  data: { execution_id: rooms > 1 ? `e${i % rooms}` : 'e0', workflow_id: 'w1', status: 'running', seq: i },
});

/** Waits until the clients have received `expected` deliveries, or `timeoutMs` passed. */
async function drain(clients, expected, timeoutMs) {
  const until = Date.now() + timeoutMs;
  let stats = await clients.stats();
  while (stats.received < expected && Date.now() < until) {
    await sleep(200);
    stats = await clients.stats();
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Scenarios. Each runs against one kind of server and returns its figures; `rows` turns the
// figures of both kinds into table rows.

/** Idle subscribed connections: memory per connection early (2 s) and settled (>= 20 s). */
async function memory(kind, { connections, mode = 'eio', browserHeaders = false }) {
  const server = await SERVERS[kind][mode === 'hub' ? 'hub' : 'workflow']();
  try {
    await sleep(500);
    const [rss0, cpu0] = [server.rssKb(), server.cpuMs()];
    const subscribe = mode === 'hub' ? '{"channel":"executions:e{room}"}' : '{"type":"execution","resourceId":"e{room}"}';
    const namespace = mode === 'hub' ? undefined : '/workflow';
    const clients = await openClients({ url: server.url, mode, namespace, connections, subscribe, rooms: Math.ceil(connections / 10), browserHeaders });
    const connectCpu = server.cpuMs() - cpu0;
    const readyAt = Date.now();
    await sleep(2000);
    const early = server.rssKb();
    let settled = early;
    if (!QUICK) {
      await sleep(Math.max(0, 20_000 - (Date.now() - readyAt)));
      if (kind === 'node') {
        server.gc();
        await sleep(1500);
      }
      settled = server.rssKb();
    }
    await clients.stop();
    const per = (kb) => ((kb - rss0) * 1024) / connections / 1000;
    return { earlyKB: per(early), settledKB: per(settled), connectUs: (connectCpu * 1000) / connections };
  } finally {
    await server.stop();
  }
}

/** CPU per authenticated connect (JWT, tenant room, `connected`), without a subscription. */
async function connect(kind, { connections }) {
  const server = await SERVERS[kind].workflow();
  try {
    await sleep(500);
    const cpu0 = server.cpuMs();
    const clients = await openClients({ url: server.url, connections });
    const cpu = server.cpuMs() - cpu0;
    await clients.stop();
    return { connectUs: (cpu * 1000) / connections };
  } finally {
    await server.stop();
  }
}

/**
 * Many sockets, a few events each per second: `subscribers` clients in rooms of `roomSize`, each
 * room receiving `perSocket` events a second, for `seconds`. CPU per delivery, loss, latency, and
 * the ack round trip of `ackClients` clients pinging with an ack every 2.5 s meanwhile.
 */
async function fanout(kind, { subscribers, roomSize, perSocket, seconds, ackClients = 0, mode = 'eio' }) {
  const server = await SERVERS[kind][mode === 'hub' ? 'hub' : 'workflow']();
  const rooms = Math.max(1, subscribers / roomSize);
  try {
    const subscribe = mode === 'hub' ? (rooms > 1 ? '{"channel":"executions:e{room}"}' : '{"channel":"executions"}') : '{"type":"execution","resourceId":"e{room}"}';
    const clients = await openClients({ url: server.url, mode, connections: subscribers, subscribe, rooms, ackClients });
    await sleep(1000);
    await clients.reset();
    const cpu0 = server.cpuMs();
    const loadgenCpu0 = clients.cpuMs();
    const eventsPerSecond = rooms * perSocket;
    const make = mode === 'hub' ? (i) => hubEvent(i, rooms) : (i) => execution(i, rooms);
    const sent = await publish({ url: server.url, eventsPerSecond, seconds, event: make });
    const expected = sent.accepted * roomSize;
    const stats = await drain(clients, expected, 10_000);
    const cpu = server.cpuMs() - cpu0;
    const loadgenCpu = clients.cpuMs() - loadgenCpu0;
    await clients.stop();
    return {
      cpuPerDeliveryUs: (cpu * 1000) / stats.received,
      serverCpuPercent: (cpu / 10) / sent.seconds,
      loadgenCpuPercent: (loadgenCpu / 10) / sent.seconds,
      lost: expected - stats.received,
      p50: percentile(stats.latency, 0.5),
      p99: percentile(stats.latency, 0.99),
      ackP50: percentile(stats.acks, 0.5),
      ackP99: percentile(stats.acks, 0.99),
      acks: stats.acks.reduce((n, [, c]) => n + c, 0),
    };
  } finally {
    await server.stop();
  }
}

/**
 * The lossless maximum: `subscribers` clients in rooms of `roomSize`, offered deliveries per
 * second stepping up through `offered`; each step publishes for `seconds`, then waits for the
 * deliveries to arrive. Stepping stops after a step that lost deliveries (a slow consumer cut) or
 * delivered less than 90% of the offered rate. The figure is the highest rate delivered without
 * loss, with its latency (which says whether the server kept up).
 */
async function maximum(kind, { subscribers, roomSize, offered, seconds, mode = 'eio', nodes = 1 }) {
  const cluster = nodes > 1 ? await startRedis() : null;
  const env = cluster ? { REDIS_URL: cluster.url, REDIS_PREFIX: `bench${Date.now()}` } : {};
  const servers = [];
  for (let n = 0; n < nodes; n++) servers.push(kind === 'gateway' ? await startGateway(env) : await SERVERS[kind][mode === 'hub' ? 'hub' : 'workflow']());
  const rooms = Math.max(1, subscribers / roomSize);
  const steps = [];
  try {
    if (cluster) await sleep(1500);
    const subscribe = mode === 'hub' ? (rooms > 1 ? '{"channel":"executions:e{room}"}' : '{"channel":"executions"}') : '{"type":"execution","resourceId":"e{room}"}';
    const groups = [];
    for (const server of servers) {
      groups.push(await openClients({ url: server.url, mode, connections: subscribers / nodes, subscribe, rooms }));
    }
    const all = {
      reset: () => Promise.all(groups.map((g) => g.reset())),
      stats: async () => {
        const each = await Promise.all(groups.map((g) => g.stats()));
        return { received: each.reduce((n, s) => n + s.received, 0), closed: each.reduce((n, s) => n + s.closed, 0), latency: each.flatMap((s) => s.latency) };
      },
    };
    const make = mode === 'hub' ? (i) => hubEvent(i, rooms) : (i) => execution(i, rooms);
    for (const rate of offered) {
      await sleep(1000);
      await all.reset();
      const cpu0 = servers.reduce((ms, s) => ms + s.cpuMs(), 0);
      const started = performance.now();
      const sent = await publish({ url: servers[0].url, eventsPerSecond: rate / roomSize, seconds, event: make });
      const expected = sent.accepted * roomSize;
      const stats = await drain(all, expected, 15_000);
      const elapsed = (performance.now() - started) / 1000;
      const cpu = servers.reduce((ms, s) => ms + s.cpuMs(), 0) - cpu0;
      const step = {
        offered: rate,
        delivered: stats.received / elapsed,
        lost: expected - stats.received,
        closed: stats.closed,
        cpuPerDeliveryUs: (cpu * 1000) / Math.max(1, stats.received),
        p50: percentile(stats.latency.sort((a, b) => a[0] - b[0]), 0.5),
        p99: percentile(stats.latency, 0.99),
        p999: percentile(stats.latency, 0.999),
      };
      step.keptUp = step.lost === 0 && step.closed === 0 && step.delivered >= 0.9 * rate;
      steps.push(step);
      log(`  ${kind} offered ${rate}/s: delivered ${Math.round(step.delivered)}/s, lost ${step.lost}, p99 ${step.p99.toFixed(1)} ms`);
      if (!step.keptUp || step.closed > 0) break;
    }
    await Promise.all(groups.map((g) => g.stop()));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    cluster?.stop();
  }
  // The highest rate delivered without loss; its latency says whether it was sustainable.
  const best = steps.filter((s) => s.lost === 0 && s.closed === 0).sort((a, b) => b.delivered - a.delivered)[0];
  return { steps, max: best?.delivered ?? 0, p50: best?.p50, p99: best?.p99, p999: best?.p999, cpuPerDeliveryUs: best?.cpuPerDeliveryUs };
}

/**
 * The cost of a published event itself, with no one subscribed: the publish API, the checks,
 * last-known state and routing, without deliveries. Events cycle through `executions` ids.
 */
async function publishing(kind, { eventsPerSecond, seconds, executions = 400 }) {
  const server = await SERVERS[kind].workflow();
  try {
    const make = (i) => execution(i, executions);
    await publish({ url: server.url, eventsPerSecond, seconds: 2, event: make });
    const cpu0 = server.cpuMs();
    const sent = await publish({ url: server.url, eventsPerSecond, seconds, event: make });
    return { cpuPerEventUs: ((server.cpuMs() - cpu0) * 1000) / sent.accepted };
  } finally {
    await server.stop();
  }
}

/**
 * The shipped specs without room history: a copy of namespaces/ with every family's `history`
 * and every join's `since` removed (what a spec that does not ask for history is). Its folder;
 * `remove()` deletes it.
 */
function specsWithoutHistory() {
  const dir = mkdtempSync(path.join(tmpdir(), 'rtgw-bench-nohistory-'));
  const source = path.join(ROOT, 'namespaces');
  for (const name of readdirSync(source).filter((f) => f.endsWith('.yaml'))) {
    const text = readFileSync(path.join(source, name), 'utf8')
      .split('\n')
      .filter((line) => !/^\s+history:/.test(line) && !/^\s+since: "\{payload\.since\}"/.test(line))
      .join('\n');
    writeFileSync(path.join(dir, name), text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * What room history costs the gateway per published event (no one subscribed: every event is
 * still routed, positioned and kept in its rooms), with the shipped specs (history on) and
 * without history, alone and as a one-node cluster (with history, each bus append is the
 * numbering script).
 */
async function historyCost({ eventsPerSecond, seconds, executions = 400, redis = false }) {
  const plain = specsWithoutHistory();
  const cluster = redis ? await startRedis() : null;
  const result = {};
  try {
    for (const [name, env] of [['on', {}], ['off', { NAMESPACES_DIR: plain.dir }]]) {
      const clusterEnv = cluster ? { REDIS_URL: cluster.url, REDIS_PREFIX: `bench${Date.now()}${name}` } : {};
      const server = await startGateway({ ...env, ...clusterEnv });
      try {
        const make = (i) => execution(i, executions);
        await publish({ url: server.url, eventsPerSecond, seconds: 2, event: make });
        const cpu0 = server.cpuMs();
        const sent = await publish({ url: server.url, eventsPerSecond, seconds, event: make });
        result[name] = ((server.cpuMs() - cpu0) * 1000) / sent.accepted;
      } finally {
        await server.stop();
      }
    }
  } finally {
    cluster?.stop();
    plain.remove();
  }
  return result;
}

/** Sums the samples of a `/metrics` series (all its labels, or those matching `labels`). */
function metric(text, name, labels = '') {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (labels && !line.includes(labels)) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

/** What Redis's instances have done so far: CPU seconds and calls per command, summed, and CPU per instance. */
function redisTotals(redis) {
  const cpu = [];
  const calls = {};
  const usec = {};
  for (const port of redis.ports) {
    const c = redisInfo(port, 'cpu');
    cpu.push(c.used_cpu_sys + c.used_cpu_user);
    for (const [key, value] of Object.entries(redisInfo(port, 'commandstats'))) {
      const name = key.replace(/^cmdstat_/, '');
      calls[name] = (calls[name] ?? 0) + Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
      usec[name] = (usec[name] ?? 0) + Number(/usec=(\d+)/.exec(value)?.[1] ?? 0);
    }
  }
  return { cpu, calls, usec };
}

const redisDelta = (a, b) => {
  const minus = (x, y) => Object.fromEntries(Object.keys(x).map((k) => [k, x[k] - (y[k] ?? 0)]).filter(([, v]) => v > 0));
  return { cpu: b.cpu.map((v, i) => v - a.cpu[i]), calls: minus(b.calls, a.calls), usec: minus(b.usec, a.usec) };
};

/**
 * The bus's throughput: two gateways on `redis` (one redis-server, or a Redis Cluster) with
 * `REDIS_BUS_SHARDS=shards`, events published through node A as fast as it takes them, one call
 * of `perCall` events at a time per tenant, from `tenants` tenants; no one subscribed, so each
 * node's work is the bus and applying events (state rules, and history when the specs keep it).
 * Over a window of `seconds` (after 2 s of warm-up): the events each node applied (A its own read
 * back, B everything: the cost every node pays for every event in the cluster), each node's CPU
 * per event, and each Redis instance's CPU and commands (less what the same time idle cost them).
 */
async function busThroughput({ redis, shards, history, seconds, tenants = 16, perCall = 100 }) {
  const plain = history ? null : specsWithoutHistory();
  const env = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: `bench${Date.now()}`,
    REDIS_BUS_SHARDS: String(shards),
    ...(plain ? { NAMESPACES_DIR: plain.dir } : {}),
  };
  const nodes = [await startGateway(env), await startGateway(env)];
  const [a, b] = nodes;
  const scrape = async (node) => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    return { messages: metric(text, 'realtime_gateway_bus_lag_seconds_count'), gaps: metric(text, 'realtime_gateway_bus_gaps_total'), cpu: node.cpuMs() };
  };
  let load;
  try {
    await sleep(1500);
    const idle0 = redisTotals(redis);
    await sleep(3000);
    const idle = redisDelta(idle0, redisTotals(redis));
    const make = (tenant, i) => ({
      type: 'execution.progress',
      tenantId: tenant,
      data: { executionId: `e${i % 400}`, workflowId: `w${i % 20}`, status: 'running', seq: i },
    });
    const names = Array.from({ length: tenants }, (_, t) => `bench-t${t}`);
    load = flood({ url: a.url, tenants: names, perCall, event: make });
    await sleep(2000);
    const [a0, b0] = await Promise.all(nodes.map(scrape));
    const r0 = redisTotals(redis);
    const accepted0 = load.accepted();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const [a1, b1] = await Promise.all(nodes.map(scrape));
    const r1 = redisTotals(redis);
    const elapsed = (performance.now() - t0) / 1000;
    const published = load.accepted() - accepted0;
    await load.stop();
    // How long B takes, after publishing stops, to apply what A accepted: how far behind it ran.
    const drainStart = performance.now();
    const total = load.accepted() / perCall;
    let behind = total - (await scrape(b)).messages;
    while (behind > 0 && performance.now() - drainStart < 30_000) {
      await sleep(100);
      behind = total - (await scrape(b)).messages;
    }
    const drainMs = performance.now() - drainStart;
    const work = redisDelta(r0, r1);
    const scale = elapsed / 3;
    const calls = Object.fromEntries(Object.entries(work.calls).map(([k, v]) => [k, Math.max(0, v - (idle.calls[k] ?? 0) * scale)]));
    const redisCpu = work.cpu.map((c, i) => Math.max(0, c - idle.cpu[i] * scale));
    // Time inside commands: appending (the numbering script, which includes its own commands, or
    // XADD) and reading (XREAD, which every node does: it grows with the number of nodes).
    const usec = (name) => Math.max(0, (work.usec[name] ?? 0) - (idle.usec[name] ?? 0) * scale);
    const appendUs = (work.usec.evalsha ? usec('evalsha') : usec('xadd')) / published;
    const readUs = usec('xread') / published;
    const appliedA = (a1.messages - a0.messages) * perCall;
    const appliedB = (b1.messages - b0.messages) * perCall;
    const result = {
      published: published / elapsed,
      appliedA: appliedA / elapsed,
      appliedB: appliedB / elapsed,
      everyNode: Math.min(appliedA, appliedB) / elapsed,
      cpuA: ((a1.cpu - a0.cpu) * 1000) / published,
      cpuB: ((b1.cpu - b0.cpu) * 1000) / appliedB,
      redisUsPerEvent: (redisCpu.reduce((x, y) => x + y, 0) * 1e6) / published,
      appendUs,
      readUs,
      busiestPercent: (Math.max(...redisCpu) * 100) / elapsed,
      redisPercent: redisCpu.map((c) => (c * 100) / elapsed),
      commandsPerCall: Object.values(calls).reduce((x, y) => x + y, 0) / (published / perCall),
      commands: Object.fromEntries(Object.entries(calls).filter(([, v]) => v >= published / perCall / 20).map(([k, v]) => [k, v / (published / perCall)])),
      drainMs,
      gaps: b1.gaps,
    };
    const f = (v) => fmt(v);
    log(`  bus ${redis.ports.length > 1 ? `cluster of ${redis.ports.length}` : 'one redis-server'}, ${shards} stream(s), history ${history ? 'on' : 'off'}: ` +
      `published ${f(result.published)}/s, applied A ${f(result.appliedA)}/s B ${f(result.appliedB)}/s; CPU/event A ${f(result.cpuA)} µs B ${f(result.cpuB)} µs; ` +
      `Redis ${f(result.redisUsPerEvent)} µs/event (in commands: append ${f(appendUs)}, XREAD by 2 nodes ${f(readUs)}), per instance ${result.redisPercent.map((p) => `${p.toFixed(0)}%`).join(' ')}; ` +
      `commands per call ${f(result.commandsPerCall)} ${JSON.stringify(Object.fromEntries(Object.entries(result.commands).map(([k, v]) => [k, Number(v.toFixed(2))])))}; ` +
      `B drained in ${Math.round(drainMs)} ms; gaps ${result.gaps}`);
    return result;
  } finally {
    await load?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    plain?.remove();
  }
}

/**
 * Long-polling clients (socket.io-client, no upgrade) in one room at a low rate; first, the
 * memory each subscribed session holds (Node's after a full GC).
 */
async function polling(kind, { clients: count, perSocket, seconds }) {
  const server = await SERVERS[kind].workflow();
  const children = [];
  try {
    await sleep(500);
    const rss0 = server.rssKb();
    const perChild = 100;
    for (let left = count; left > 0; left -= perChild) {
      const child = fork(path.join(HERE, 'polling-clients.mjs'), [server.url, String(Math.min(perChild, left)), token()]);
      children.push(child);
      await new Promise((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`polling clients exited with ${code}`)));
      });
    }
    const ask = (command) => Promise.all(children.map((c) => new Promise((resolve) => {
      c.once('message', resolve);
      c.send(command);
    })));
    await sleep(2000);
    if (kind === 'node') {
      server.gc();
      await sleep(1500);
    }
    const sessionKB = ((server.rssKb() - rss0) * 1024) / count / 1000;
    await ask('reset');
    const cpu0 = server.cpuMs();
    const sent = await publish({ url: server.url, eventsPerSecond: perSocket, seconds, event: (i) => execution(i) });
    const expected = sent.accepted * count;
    let stats;
    for (const until = Date.now() + 10_000; Date.now() < until; await sleep(200)) {
      const all = await ask('stats');
      stats = { received: all.reduce((n, s) => n + s.received, 0), latency: all.flatMap((s) => s.latency).sort((a, b) => a[0] - b[0]) };
      if (stats.received >= expected) break;
    }
    const cpu = server.cpuMs() - cpu0;
    return { sessionKB, cpuPerDeliveryUs: (cpu * 1000) / stats.received, lost: expected - stats.received, p50: percentile(stats.latency, 0.5), p99: percentile(stats.latency, 0.99) };
  } finally {
    children.forEach((c) => c.kill());
    await server.stop();
  }
}

/**
 * A burst the publish API accepts: `readers` clients subscribed to one channel (the plain `/ws`)
 * or one execution (`/workflow`), then `calls` publish calls sent at once, each of `perCall`
 * events of about `bytes` bytes (1,000 events of ~970 bytes: API_MAX_BATCH, and just under
 * API_MAX_BODY_SIZE). Every client reads as fast as it can. Figures: deliveries received of those
 * expected, clients the server cut, and the server's peak resident memory above what it held
 * before the burst (sampled every 10 ms).
 */
async function burstScenario(kind, { readers, calls, perCall = 1000, bytes = 800, mode }) {
  const server = await SERVERS[kind][mode === 'hub' ? 'hub' : 'workflow']();
  try {
    const subscribe = mode === 'hub' ? '{"channel":"executions"}' : '{"type":"execution","resourceId":"e0"}';
    const clients = await openClients({ url: server.url, mode, connections: readers, subscribe, rooms: 1 });
    await sleep(1000);
    await clients.reset();
    const rss0 = server.rssKb();
    let peak = rss0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, server.rssKb());
      } catch {}
    }, 10);
    const pad = 'x'.repeat(bytes);
    const make = mode === 'hub'
      ? (i) => ({ type: 'execution.progress', tenantId: TENANT, data: { execution_id: 'e0', workflow_id: 'w1', status: 'running', seq: i, pad } })
      : (i) => ({ type: 'execution.progress', tenantId: TENANT, data: { executionId: 'e0', workflowId: 'w1', status: 'running', seq: i, pad } });
    const sent = await publishBurst({ url: server.url, calls, perCall, event: make });
    if (sent.failed > 0) throw new Error(`${kind}: ${sent.failed} events refused (largest body ${sent.largestBody} bytes)`);
    const expected = sent.accepted * readers;
    // Done when everything arrived, or when nothing more arrives for 3 s (cut clients get no more).
    let stats = await clients.stats();
    for (let last = -1, still = 0; stats.received < expected && still < 15; await sleep(200)) {
      stats = await clients.stats();
      still = stats.received === last ? still + 1 : 0;
      last = stats.received;
    }
    clearInterval(sampler);
    await clients.stop();
    log(`  ${kind} ${mode}: ${stats.received} of ${expected} delivered, ${stats.closed} cut, peak +${((peak - rss0) / 1024).toFixed(1)} MB, largest body ${sent.largestBody} B`);
    return { delivered: stats.received, expected, cut: stats.closed, peakMB: (peak - rss0) / 1024, refused: sent.failed };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const SIZES = QUICK ? [1000] : [1000, 5000, 10000];
const BURST = QUICK ? { readers: 50, calls: 2 } : { readers: 200, calls: 4 };
const OFFERED = QUICK ? [50_000, 200_000] : [100_000, 200_000, 400_000, 600_000, 800_000, 1_000_000, 1_200_000];
const SCENARIOS = [
  {
    id: 'memory',
    title: 'idle subscribed connections on /workflow',
    kinds: ['gateway', 'node'],
    run: async (kind) => {
      const out = {};
      for (const n of SIZES) out[n] = await memory(kind, { connections: n });
      out.browser = await memory(kind, { connections: QUICK ? 1000 : 5000, browserHeaders: true });
      return out;
    },
    rows: (g, n) => SIZES.flatMap((size) => [
      [`memory per idle subscribed connection, ${size / 1000}k, early (2 s), KB`, g[size].earlyKB, n[size].earlyKB],
      ...(QUICK ? [] : [[`memory per idle subscribed connection, ${size / 1000}k, settled (20 s; Node after GC), KB`, g[size].settledKB, n[size].settledKB]]),
    ]).concat([[`memory per idle subscribed connection, ${QUICK ? '1k, early' : '5k, settled'}, browser-like headers and cookies, KB`, QUICK ? g.browser.earlyKB : g.browser.settledKB, QUICK ? n.browser.earlyKB : n.browser.settledKB]]),
    charts: (g, n) => ({
      'memory.svg': lineChart({
        title: 'Memory per idle subscribed connection (settled)',
        xLabel: 'connections',
        yLabel: 'KB per connection',
        series: [
          { name: 'realtime-gateway', points: SIZES.map((s) => [s, g[s].settledKB]) },
          { name: 'Node socket.io', points: SIZES.map((s) => [s, n[s].settledKB]) },
        ],
      }),
    }),
  },
  {
    id: 'connect',
    title: 'authenticated connects on /workflow',
    kinds: ['gateway', 'node'],
    run: (kind) => connect(kind, { connections: QUICK ? 1000 : 5000 }),
    rows: (g, n) => [['CPU per authenticated connect, µs', g.connectUs, n.connectUs]],
  },
  {
    id: 'fanout',
    title: 'low-rate fan-out on /workflow',
    kinds: ['gateway', 'node'],
    run: async (kind) => ({
      room: await fanout(kind, { subscribers: QUICK ? 1000 : 4000, roomSize: QUICK ? 1000 : 4000, perSocket: 5, seconds: QUICK ? 5 : 20, ackClients: 200 }),
      rooms: await fanout(kind, { subscribers: QUICK ? 1000 : 4000, roomSize: 10, perSocket: 5, seconds: QUICK ? 5 : 20 }),
    }),
    rows: (g, n) => [
      [`CPU per delivery, ${QUICK ? '1,000' : '4,000'} subscribers in one room x 5 events/s, µs`, g.room.cpuPerDeliveryUs, n.room.cpuPerDeliveryUs],
      [`CPU per delivery, ${QUICK ? '1,000' : '4,000'} subscribers in rooms of 10 x 5 events/s, µs`, g.rooms.cpuPerDeliveryUs, n.rooms.cpuPerDeliveryUs],
      ['deliveries lost at that load (both layouts)', g.room.lost + g.rooms.lost, n.room.lost + n.rooms.lost],
      ['publish-to-delivery p99 at that load (one room), ms', g.room.p99, n.room.p99],
      ['ack round trip p50 / p99 under that load, ms', `${fmt(g.room.ackP50)} / ${fmt(g.room.ackP99)}`, `${fmt(n.room.ackP50)} / ${fmt(n.room.ackP99)}`],
    ],
  },
  {
    id: 'publish',
    title: 'published events with no one subscribed',
    kinds: ['gateway', 'node'],
    run: (kind) => publishing(kind, { eventsPerSecond: 4000, seconds: QUICK ? 4 : 15 }),
    rows: (g, n) => [['CPU per published event, no subscribers (4,000 events/s), µs', g.cpuPerEventUs, n.cpuPerEventUs]],
  },
  {
    id: 'maximum',
    title: 'lossless maximum on /workflow',
    kinds: ['gateway', 'node'],
    run: async (kind) => ({
      room: await maximum(kind, { subscribers: 2000, roomSize: 2000, offered: OFFERED, seconds: QUICK ? 4 : 8 }),
      rooms: QUICK ? null : await maximum(kind, { subscribers: 2000, roomSize: 10, offered: [25_000, 50_000, 100_000, 200_000, 300_000, 400_000], seconds: 8 }),
    }),
    rows: (g, n) => [
      ['lossless deliveries/s, 2,000 subscribers in one room (higher is better)', g.room.max, n.room.max],
      ['latency p50 / p99 / p99.9 at that rate, ms', pct(g.room), pct(n.room)],
      ...(QUICK ? [] : [
        ['lossless deliveries/s, 2,000 subscribers in rooms of 10 (higher is better)', g.rooms.max, n.rooms.max],
        ['latency p50 / p99 / p99.9 at that rate, ms', pct(g.rooms), pct(n.rooms)],
      ]),
    ],
    charts: (g, n) => ({
      'throughput.svg': lineChart({
        title: 'Deliveries per second, 2,000 subscribers in one room',
        xLabel: 'offered deliveries/s',
        yLabel: 'delivered/s',
        series: [
          { name: 'realtime-gateway', points: g.room.steps.map((s) => [s.offered, s.delivered]) },
          { name: 'Node socket.io', points: n.room.steps.map((s) => [s.offered, s.delivered]) },
        ],
      }),
      'latency.svg': lineChart({
        title: 'Publish-to-delivery p99, 2,000 subscribers in one room',
        xLabel: 'offered deliveries/s',
        yLabel: 'p99 latency, ms',
        series: [
          { name: 'realtime-gateway p99', points: g.room.steps.map((s) => [s.offered, s.p99]) },
          { name: 'Node socket.io p99', points: n.room.steps.map((s) => [s.offered, s.p99]) },
          { name: 'realtime-gateway p50', points: g.room.steps.map((s) => [s.offered, s.p50]) },
          { name: 'Node socket.io p50', points: n.room.steps.map((s) => [s.offered, s.p50]) },
        ],
      }),
    }),
  },
  {
    id: 'polling',
    title: 'long-polling clients on /workflow',
    kinds: ['gateway', 'node'],
    run: (kind) => polling(kind, { clients: QUICK ? 100 : 400, perSocket: 10, seconds: QUICK ? 4 : 15 }),
    rows: (g, n) => [
      [`memory per subscribed long-polling session, ${QUICK ? 100 : 400} (2 s after; Node after GC), KB`, g.sessionKB, n.sessionKB],
      [`CPU per delivery, ${QUICK ? 100 : 400} long-polling clients x 10 events/s, µs`, g.cpuPerDeliveryUs, n.cpuPerDeliveryUs],
      ['deliveries lost, long-polling', g.lost, n.lost],
      ['latency p50 / p99, long-polling, ms', `${fmt(g.p50)} / ${fmt(g.p99)}`, `${fmt(n.p50)} / ${fmt(n.p99)}`],
    ],
  },
  {
    id: 'hub',
    title: 'plain WebSocket /ws against a Node `ws` hub',
    kinds: ['gateway', 'node'],
    run: async (kind) => ({
      memory: await memory(kind, { connections: QUICK ? 1000 : 5000, mode: 'hub' }),
      fanout: await fanout(kind, { subscribers: QUICK ? 1000 : 4000, roomSize: 10, perSocket: 5, seconds: QUICK ? 5 : 20, mode: 'hub' }),
      max: await maximum(kind, { subscribers: 2000, roomSize: 2000, offered: OFFERED, seconds: QUICK ? 4 : 8, mode: 'hub' }),
    }),
    rows: (g, n) => [
      [`plain WebSocket: memory per idle subscribed connection, ${QUICK ? '1k, early' : '5k, settled'}, KB`, QUICK ? g.memory.earlyKB : g.memory.settledKB, QUICK ? n.memory.earlyKB : n.memory.settledKB],
      ['plain WebSocket: CPU per delivery, channels of 10 x 5 events/s, µs', g.fanout.cpuPerDeliveryUs, n.fanout.cpuPerDeliveryUs],
      ['plain WebSocket: lossless deliveries/s, 2,000 subscribers (higher is better)', g.max.max, n.max.max],
      ['latency p50 / p99 / p99.9 at that rate, ms', pct(g.max), pct(n.max)],
    ],
  },
  {
    id: 'burst',
    title: 'a burst of publish calls to readers, plain /ws and /workflow',
    kinds: ['gateway', 'node'],
    run: async (kind) => ({
      hub: await burstScenario(kind, { readers: BURST.readers, calls: BURST.calls, mode: 'hub' }),
      sio: await burstScenario(kind, { readers: BURST.readers, calls: BURST.calls, mode: 'eio' }),
    }),
    rows: (g, n) => {
      const what = `${BURST.calls} x 1,000 events (~1 KB) at once to ${BURST.readers} readers`;
      return [
        [`burst, plain /ws: ${what}, delivered of ${fmt(BURST.calls * 1000 * BURST.readers)}`, g.hub.delivered, n.hub.delivered],
        ['burst, plain /ws: clients cut', g.hub.cut, n.hub.cut],
        ['burst, plain /ws: peak memory above idle, MB', g.hub.peakMB, n.hub.peakMB],
        [`burst, /workflow: ${what}, delivered of ${fmt(BURST.calls * 1000 * BURST.readers)}`, g.sio.delivered, n.sio.delivered],
        ['burst, /workflow: clients cut', g.sio.cut, n.sio.cut],
        ['burst, /workflow: peak memory above idle, MB', g.sio.peakMB, n.sio.peakMB],
      ];
    },
  },
  {
    id: 'history',
    title: 'room history on and off (gateway only)',
    kinds: ['gateway'],
    run: async () => ({
      alone: await historyCost({ eventsPerSecond: 2000, seconds: QUICK ? 4 : 15 }),
      cluster: await historyCost({ eventsPerSecond: 2000, seconds: QUICK ? 4 : 15, redis: true }),
    }),
    rows: (g) => [
      ['history on vs off: CPU per published event, no subscribers, one node (columns: on, off), µs', g.alone.on, g.alone.off],
      ['history on vs off: CPU per published event, no subscribers, one node on Redis (columns: on, off), µs', g.cluster.on, g.cluster.off],
    ],
  },
  {
    id: 'bus',
    title: 'the bus: two gateways on one redis-server and on a 3-master Redis Cluster, 8 streams and 1 (gateway only)',
    kinds: ['gateway'],
    run: async () => {
      const seconds = QUICK ? 4 : 10;
      const out = {};
      const single = await startRedis();
      try {
        for (const history of [true, false]) out[`single-${history}`] = await busThroughput({ redis: single, shards: 1, history, seconds });
      } finally {
        single.stop();
      }
      const cluster = await startRedisCluster(3);
      try {
        for (const history of [true, false]) {
          for (const shards of [8, 1]) out[`cluster${shards}-${history}`] = await busThroughput({ redis: cluster, shards, history, seconds });
        }
      } finally {
        cluster.stop();
      }
      return out;
    },
    rows: (g) => [true, false].flatMap((h) => {
      const on = `history ${h ? 'on' : 'off'}`;
      const c8 = g[`cluster8-${h}`];
      const c1 = g[`cluster1-${h}`];
      const one = g[`single-${h}`];
      const both = (r, a, b) => `${fmt(r[a])} / ${fmt(r[b])}`;
      const each = (r) => r.redisPercent.map((p) => p.toFixed(0)).join(' / ');
      return [
        [`bus, ${on}: events/s every node applied, 2 nodes, 3-master Redis Cluster (columns: 8 streams, 1 stream)`, c8.everyNode, c1.everyNode],
        [`bus, ${on}: gateway CPU per event, publishing node / the other (reading only), µs (columns: 8 streams, 1 stream)`, both(c8, 'cpuA', 'cpuB'), both(c1, 'cpuA', 'cpuB')],
        [`bus, ${on}: Redis CPU per event, all masters, µs (columns: 8 streams, 1 stream)`, c8.redisUsPerEvent, c1.redisUsPerEvent],
        [`bus, ${on}: Redis time in commands per event, append / XREAD by both nodes, µs (columns: 8 streams, 1 stream)`, both(c8, 'appendUs', 'readUs'), both(c1, 'appendUs', 'readUs')],
        [`bus, ${on}: each master's CPU, % of a core (columns: 8 streams, 1 stream)`, each(c8), each(c1)],
        [`bus, ${on}: Redis commands per publish call of 100 events (columns: 8 streams, 1 stream)`, c8.commandsPerCall, c1.commandsPerCall],
        [`bus, ${on}, one redis-server: events/s every node applied; CPU per event, publishing / reading node, µs`, one.everyNode, both(one, 'cpuA', 'cpuB')],
        [`bus, ${on}, one redis-server: Redis CPU per event, µs; in commands, append / XREAD by both nodes, µs`, one.redisUsPerEvent, both(one, 'appendUs', 'readUs')],
      ];
    }),
  },
  {
    id: 'cluster',
    title: 'two gateways over Redis against one',
    kinds: ['gateway'],
    run: async () => ({
      one: await maximum('gateway', { subscribers: 2000, roomSize: 2000, offered: OFFERED, seconds: QUICK ? 4 : 8 }),
      two: await maximum('gateway', { subscribers: 2000, roomSize: 2000, offered: OFFERED, seconds: QUICK ? 4 : 8, nodes: 2 }),
    }),
    rows: (g) => [
      ['two nodes over Redis vs one: lossless deliveries/s, 2,000 subscribers (columns: two, one)', g.two.max, g.one.max],
      ['two nodes vs one: CPU per delivery, both nodes together, µs', g.two.cpuPerDeliveryUs, g.one.cpuPerDeliveryUs],
      ['two nodes vs one: latency p50 / p99 / p99.9, ms', pct(g.two), pct(g.one)],
    ],
  },
];

function fmt(v) {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 10_000) return `${Math.round(v / 1000)}k`;
  if (Math.abs(v) >= 100) return String(Math.round(v));
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
const pct = (r) => `${fmt(r.p50)} / ${fmt(r.p99)} / ${fmt(r.p999)}`;

/** Medians of each numeric leaf over rounds; the first round's value for anything else. */
function combine(results) {
  const [first] = results;
  if (typeof first === 'number') return median(results);
  if (Array.isArray(first) || first === null || typeof first !== 'object') return first;
  return Object.fromEntries(Object.keys(first).map((k) => [k, combine(results.map((r) => r?.[k]))]));
}

const machine = () => {
  const rustc = (() => {
    try {
      return execFileSync('rustc', ['--version']).toString().trim();
    } catch {
      return 'rustc ?';
    }
  })();
  return `${cpus().length} x ${cpus()[0].model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux; Node ${process.version}; ${rustc}`;
};

const rows = [];
const charts = {};
for (const scenario of SCENARIOS.filter((s) => ONLY.length === 0 || ONLY.includes(s.id))) {
  const results = Object.fromEntries(scenario.kinds.map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...scenario.kinds].reverse() : scenario.kinds;
    for (const kind of order) {
      log(`${scenario.id}: ${kind}, round ${round + 1} of ${ROUNDS}`);
      results[kind].push(await scenario.run(kind));
    }
  }
  const g = combine(results.gateway);
  const n = results.node ? combine(results.node) : null;
  for (const [figure, gv, nv] of scenario.rows(g, n)) rows.push([figure, gv, nv]);
  Object.assign(charts, scenario.charts?.(g, n) ?? {});
  printTable(rows);
}

function table(rows) {
  const lines = ['| figure | gateway | Node | ratio |', '|---|---|---|---|'];
  for (const [figure, g, n] of rows) {
    const ratio = typeof g === 'number' && typeof n === 'number' && n !== 0 ? (g / n).toFixed(2) : '';
    lines.push(`| ${figure} | ${fmt(g)} | ${fmt(n)} | ${ratio} |`);
  }
  return lines.join('\n');
}

function printTable(rows) {
  console.log(`\n${table(rows)}\n`);
}

if (flag('write')) {
  const docs = path.join(ROOT, 'docs', 'benchmarks.md');
  const begin = '<!-- bench:results -->';
  const end = '<!-- /bench:results -->';
  const text = readFileSync(docs, 'utf8');
  const how = `\`bench/run${QUICK ? ' --quick' : ''}${ONLY.length ? ` --only ${ONLY.join(',')}` : ''}\`, ${ROUNDS} round(s), medians`;
  const block = ONLY.length === 0
    ? `${begin}\n_${new Date().toISOString().slice(0, 10)}, ${machine()}; ${how}._\n\n${table(rows)}\n${end}`
    : refreshed(text.slice(text.indexOf(begin) + begin.length, text.indexOf(end)), how);
  writeFileSync(docs, text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length));
  mkdirSync(path.join(ROOT, 'docs', 'bench'), { recursive: true });
  for (const [name, svg] of Object.entries(charts)) writeFileSync(path.join(ROOT, 'docs', 'bench', name), svg);
  log(`wrote docs/benchmarks.md and ${Object.keys(charts).length} chart(s) in docs/bench/`);

  // Some scenarios only (--only): their rows replace the table's rows they were measured for
  // (the run of rows with the same figures, in order: some figures, such as latencies, repeat
  // under several scenarios), or go at the table's end the first time; the rest stays as it was
  // measured, and a line under the table's date says which rows are newer and how they were
  // measured.
  function refreshed(old, how) {
    const out = old.trim().split('\n');
    const fresh = table(rows).split('\n').slice(2);
    const figureOf = (line) => line.split(' | ')[0];
    const at = out.findIndex((_, i) => fresh.every((line, k) => out[i + k] !== undefined && figureOf(out[i + k]) === figureOf(line)));
    if (at >= 0) out.splice(at, fresh.length, ...fresh);
    else out.splice(out.findLastIndex((line) => line.startsWith('|')) + 1, 0, ...fresh);
    const note = `_Rows of ${ONLY.map((id) => `\`${id}\``).join(', ')}: ${new Date().toISOString().slice(0, 10)}, ${machine()}; ${how}._`;
    const noted = out.findIndex((line) => line.startsWith('_Rows of ') && line.includes(ONLY.map((id) => `\`${id}\``).join(', ') + ':'));
    if (noted >= 0) out[noted] = note;
    else out.splice(out.findIndex((line) => line.startsWith('|')) - 1, 0, '', note);
    return `${begin}\n${out.join('\n')}\n${end}`;
  }
}
process.exit(0);

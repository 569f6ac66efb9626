// The one-hour soak (issue 15): the release build under a mixed, steady load for an hour, with
// reconnect storms, watched from /proc every 5 s. What it runs against one gateway:
//
// - populations of subscribed clients that stay, each client from its own 127.x address unless
//   told: 5,600 socket.io-client clients on /workflow over websocket only, 2,400 with the client's
//   default transports (long-polling, then upgraded to websocket), 2,000 plain /ws clients;
//   2,400 socket.io-client clients with the default transports sharing 3 addresses (users behind
//   NATs); 300 socket.io-client clients on long-polling only;
// - 200 clients of the Socket.IO namespace /ws relaying `send_message` to chat rooms of 10;
// - a churn of short-lived clients on every front (/workflow over websocket and polling, /realtime,
//   /ws, /, the plain /ws), opening and closing continuously, some cleanly, some by dropping;
// - publishing through the HTTP API, one event to every room of the populations every 2 s;
// - the admin view (the Admin UI's protocol on /admin) connected throughout, reloaded every minute;
// - reconnect storms: at 20 min the 10,000 distinct-address clients lose their TCP connections
//   at once, at 40 min the 2,400 behind 3 addresses, at 50 min the 2,400 distinct-address clients
//   with the same transports (to compare). Each storm is timed until every dropped client is connected
//   again, subscribed again, and has received a publish through its new subscription.
//
// Between storms, every delivery to the populations and every relay is counted against what was
// published and acked (publishing pauses for a moment at each boundary so nothing is in flight).
//
//   cargo build --release && cd bench && npm ci
//   ulimit -n 20000; node soak-hour.mjs --minutes 60 [--out /tmp/soak] [--scale 1]
//   node soak-hour.mjs --minutes 3          # a try: storms at 1, 2, 2.5 min, or once every client is up
//   node soak-chart.mjs /tmp/soak/samples.csv ../docs/bench/soak.svg
//
// Writes samples.csv (every 5 s: gateway RSS, open files, CPU, connections) and summary.json to
// the output folder, and prints progress to stderr. The client processes run at nice 5, so that
// the gateway under measurement is not starved by its own clients on a small machine.

import { fork, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { API_KEY, GATEWAY, HERE, SECRET, cpuMs, rssKb, sleep, startGateway } from './lib/proc.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const MINUTES = Number(option('minutes', 60));
const SCALE = Number(option('scale', 1));
const OUT = option('out', `/tmp/soak-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '')}`);
const TENANT = 'soak';
const SAMPLE_MS = 5000;
const PUBLISH_PERIOD_MS = 2000;
const ADMIN_RELOAD_MS = 60_000;
const STORM_TIMEOUT_MS = 180_000;
const USERNAME = 'operator';
const PASSWORD = 'soak-admin-password';
const CLIENT_NICE = 5;
const scaled = (n, per) => Math.max(per, Math.round((n * SCALE) / per) * per);

mkdirSync(OUT, { recursive: true });
const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;
const stamp = () => `${String(Math.floor(elapsedS() / 60)).padStart(2, '0')}:${String(Math.floor(elapsedS() % 60)).padStart(2, '0')}`;
const log = (...parts) => {
  const line = `[${stamp()}] ${parts.join(' ')}`;
  console.error(line);
  appendFileSync(path.join(OUT, 'log.txt'), `${line}\n`);
};

// 127.a.b.c addresses, one block per population, so that each client of a "distinct" population
// has an address of its own.
const addresses = (block, count) => Array.from({ length: count }, (_, i) => `127.${block}.${Math.floor(i / 250)}.${1 + (i % 250)}`);

// ---------------------------------------------------------------------------------------------
// The gateway.

const hash = spawnSync(GATEWAY, ['hash-password'], { input: `${PASSWORD}\n`, encoding: 'utf8' }).stdout.trim();
if (!hash.startsWith('$2')) throw new Error('could not hash the admin password');
const gw = await startGateway({ ADMIN_USERNAME: USERNAME, ADMIN_PASSWORD_HASH: hash });
log(`gateway ${GATEWAY} pid ${gw.pid} at ${gw.url}; output in ${OUT}`);

const api = async (route, init = {}) => {
  const res = await fetch(`${gw.url}${route}`, { ...init, headers: { 'x-api-key': API_KEY, 'content-type': 'application/json', ...init.headers }, signal: AbortSignal.timeout(20_000) });
  return res.headers.get('content-type')?.includes('json') ? res.json() : res.text();
};
async function metrics() {
  const text = await api('/metrics');
  const out = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('realtime_gateway_')) continue;
    const [name, value] = [line.slice(17, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))];
    if (/_total|cut|dropped|refused|throttled/.test(name) && !name.includes('_bucket')) out[name] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The client processes.

const workers = [];
let nextId = 0;
function worker(config) {
  const w = { config };
  w.start = () => {
    const child = fork(path.join(HERE, 'soak-clients.mjs'), [JSON.stringify({ url: gw.url, secret: SECRET, tenant: TENANT, ...config })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // The clients yield to the gateway: on a small machine, 18 processes of clients would
    // otherwise take most of its CPU from the server under measurement in a storm.
    try {
      os.setPriority(child.pid, CLIENT_NICE);
    } catch {}
    const pending = new Map();
    w.child = child;
    w.ready = new Promise((resolve) => child.once('message', resolve));
    child.on('message', (m) => {
      if (m.re !== undefined) pending.get(m.re)?.(m), pending.delete(m.re);
    });
    child.on('exit', (code) => code && log(`client process ${config.name} exited with ${code}`));
    w.ask = (cmd) => new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ cmd, id });
    });
    return w.ready;
  };
  workers.push(w);
  return w;
}

/** A population of `count` clients over processes of at most `perProcess`. */
function population({ name, front, transports, count, rooms, perProcess, addressesOf }) {
  const group = [];
  for (let first = 0; first < count; first += perProcess) {
    const n = Math.min(perProcess, count - first);
    group.push(worker({ name: `${name}#${group.length}`, population: name, kind: 'population', front, transports, count: n, first, rooms, prefix: name, addresses: addressesOf(first, n, group.length), openPauseMs: 500 }));
  }
  return { name, front, count, rooms, members: count / rooms, workers: group };
}

const distinct = (block) => (first, n) => addresses(block, first + n).slice(first);
const POPS = {
  // Distinct addresses: websocket only (as many deployments configure the client), and with the
  // client's default transports (long-polling, then upgraded), the same number as behind NATs.
  sio: population({ name: 'sio', front: 'sio', transports: ['websocket'], count: scaled(5600, 1400), rooms: scaled(280, 70), perProcess: 1400, addressesOf: distinct(1) }),
  upgraded: population({ name: 'upgraded', front: 'sio', transports: ['polling', 'websocket'], count: scaled(2400, 1200), rooms: scaled(120, 60), perProcess: 1200, addressesOf: distinct(7) }),
  hub: population({ name: 'hub', front: 'hub', count: scaled(2000, 1000), rooms: scaled(100, 50), perProcess: 2000, addressesOf: distinct(2) }),
  // Behind NATs: 3 addresses, default transports; two processes, as the 2,400 above.
  nat: population({ name: 'nat', front: 'sio', transports: ['polling', 'websocket'], count: scaled(2400, 240), rooms: scaled(120, 12), perProcess: scaled(1200, 120), addressesOf: () => ['127.3.0.1', '127.3.0.2', '127.3.0.3'] }),
  polling: population({ name: 'polling', front: 'sio', transports: ['polling'], count: 300, rooms: 30, perProcess: 300, addressesOf: distinct(4) }),
};
const RELAY = { count: 200, rooms: 20, everyMs: 5000 };
const relay = worker({ name: 'relay', kind: 'relay', count: RELAY.count, first: 0, rooms: RELAY.rooms, everyMs: RELAY.everyMs, addresses: addresses(5, RELAY.count) });
const CHURN = { perSecond: 10, minMs: 5000, maxMs: 30_000 };

const STORMS = [
  { at: MINUTES / 3, pops: ['sio', 'upgraded', 'hub'] },
  { at: (MINUTES * 2) / 3, pops: ['nat'] },
  { at: (MINUTES * 5) / 6, pops: ['upgraded'] },
];

const stormWorkers = (storm) => storm.pops.flatMap((p) => POPS[p].workers);

async function allStats() {
  const out = new Map();
  await Promise.all(workers.map(async (w) => out.set(w, await w.ask('stats'))));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sampling every 5 s.

const CSV = path.join(OUT, 'samples.csv');
writeFileSync(CSV, 't_s,rss_mb,open_files,cpu_pct,cpu_s,connections,phase\n');
const samples = [];
let phase = 'connecting';
let lastCpu = { at: performance.now(), ms: gw.cpuMs() };
async function sample() {
  const now = performance.now();
  const ms = gw.cpuMs();
  const cpuPct = ((ms - lastCpu.ms) / (now - lastCpu.at)) * 100;
  lastCpu = { at: now, ms };
  const s = {
    t: Math.round(elapsedS()),
    rssMb: +(gw.rssKb() / 1024).toFixed(1),
    files: readdirSync(`/proc/${gw.pid}/fd`).length,
    cpuPct: +cpuPct.toFixed(1),
    cpuS: +(ms / 1000).toFixed(1),
    connections: (await api('/api/v1/stats').catch(() => ({}))).connections ?? NaN,
    phase,
  };
  samples.push(s);
  appendFileSync(CSV, `${s.t},${s.rssMb},${s.files},${s.cpuPct},${s.cpuS},${s.connections},${s.phase}\n`);
}
const sampler = setInterval(() => sample().catch((e) => log(`sample failed: ${e.message}`)), SAMPLE_MS);
await sample();

// ---------------------------------------------------------------------------------------------
// Publishing: one event to every room of every population each PUBLISH_PERIOD_MS, in a call every
// 500 ms; the churn's rooms once a second.

const published = Object.fromEntries(Object.keys(POPS).map((p) => [p, 0]));
const publishing = { paused: true, inFlight: 0, failed: 0, calls: 0, cursor: Object.fromEntries(Object.keys(POPS).map((p) => [p, 0])) };
let seq = 0;
const event = (room) => ({ type: 'execution.progress', tenantId: TENANT, data: { executionId: room, workflowId: 'w-soak', status: 'running', soak: 1, seq: seq++ } });
const publisher = setInterval(() => {
  if (publishing.paused) return;
  const batch = [event('churn')];
  const counts = {};
  for (const [name, pop] of Object.entries(POPS)) {
    const n = Math.round((pop.rooms * 500) / PUBLISH_PERIOD_MS);
    for (let k = 0; k < n; k++) batch.push(event(`${name}${publishing.cursor[name]++ % pop.rooms}`));
    counts[name] = n;
  }
  publishing.inFlight++;
  publishing.calls++;
  api('/api/v1/events', { method: 'POST', body: JSON.stringify(batch) })
    .then((answer) => {
      if (answer?.accepted !== batch.length) throw new Error(JSON.stringify(answer).slice(0, 200));
      for (const [name, n] of Object.entries(counts)) published[name] += n;
    })
    .catch((e) => {
      publishing.failed++;
      log(`publish failed: ${e.message}`);
    })
    .finally(() => publishing.inFlight--);
}, 500);

// ---------------------------------------------------------------------------------------------
// The admin view, reloaded every minute as an operator's browser tab would be.

const admin = { reloads: [], events: 0, current: null };
function openAdmin() {
  const began = performance.now();
  const socket = io(`${gw.url}/admin`, { auth: { username: USERNAME, password: PASSWORD }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: 30_000 });
  socket.onAny(() => admin.events++);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ socket, ok: false, error: 'no all_sockets within 30 s' }), 30_000);
    socket.on('connect_error', (e) => {
      clearTimeout(timer);
      resolve({ socket, ok: false, error: e.message });
    });
    socket.once('all_sockets', (list) => {
      clearTimeout(timer);
      resolve({ socket, ok: true, ms: Math.round(performance.now() - began), sockets: list.length });
    });
  });
}
async function reloadAdmin() {
  admin.current?.disconnect();
  const result = await openAdmin();
  admin.current = result.socket;
  admin.reloads.push({ t: Math.round(elapsedS()), ok: result.ok, ms: result.ms, sockets: result.sockets, error: result.error });
  if (!result.ok) log(`admin view: ${result.error}`);
}

// ---------------------------------------------------------------------------------------------
// Start: the populations connect and subscribe, then the rest begins.

// One process after the other, so that the populations build up rather than arrive as a storm.
for (const w of workers) await w.start();
log(`${workers.length} client processes started; waiting for every client to subscribe`);
let errorsSeen = '';
/** Logs the clients' errors so far, when they changed. */
function logErrors(stats) {
  const errors = {};
  for (const s of stats.values()) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + v;
  const text = JSON.stringify(errors);
  if (text !== errorsSeen && text !== '{}') log(`  client errors so far: ${text}`);
  errorsSeen = text;
}
const connectUntil = performance.now() + 600_000;
for (;;) {
  const stats = await allStats();
  const pops = Object.values(POPS).map((p) => [p.name, p.workers.reduce((n, w) => n + stats.get(w).subscribed, 0), p.count]);
  const relayJoined = stats.get(relay).joined;
  logErrors(stats);
  if (pops.every(([, n, of]) => n === of) && relayJoined === RELAY.count) break;
  if (performance.now() > connectUntil) throw new Error(`not every client subscribed within 10 min: ${JSON.stringify(pops)}`);
  log(`subscribed: ${pops.map(([name, n, of]) => `${name} ${n}/${of}`).join(', ')}, relay ${relayJoined}/${RELAY.count}`);
  await sleep(5000);
}
const upAt = elapsedS();
log(`every client subscribed after ${upAt.toFixed(0)} s`);
const churn = worker({ name: 'churn', kind: 'churn', ...CHURN, addresses: addresses(6, 2000) });
await churn.start();
await reloadAdmin();
const adminTimer = setInterval(() => reloadAdmin().catch((e) => log(`admin reload failed: ${e.message}`)), ADMIN_RELOAD_MS);
publishing.paused = false;
phase = 'steady';

/** Stops publishing, relays and churn, lets what is in flight arrive, and takes every count. */
async function checkpoint(label) {
  publishing.paused = true;
  await Promise.all([relay.ask('pause'), churn.ask('pause')]);
  while (publishing.inFlight > 0) await sleep(50);
  await sleep(2000);
  const stats = await allStats();
  const point = { label, t: Math.round(elapsedS()), published: { ...published }, pops: {}, relay: stats.get(relay), churn: stats.get(churn).churn, metrics: await metrics() };
  for (const [name, pop] of Object.entries(POPS)) {
    point.pops[name] = pop.workers.reduce((n, w) => n + stats.get(w).received, 0);
  }
  publishing.paused = false;
  await Promise.all([relay.ask('resume'), churn.ask('resume')]);
  return point;
}

const checkpoints = [await checkpoint('start')];
const storms = [];
for (const storm of STORMS) {
  while (elapsedS() < storm.at * 60) await sleep(1000);
  checkpoints.push(await checkpoint(`before storm ${storms.length + 1}`));
  const dropped = stormWorkers(storm);
  const clients = dropped.reduce((n, w) => n + w.config.count, 0);
  const upgrading = storm.pops.every((p) => POPS[p].workers[0].config.transports?.includes('polling'));
  storm.label = `${clients.toLocaleString('en')} from ${storm.pops.includes('nat') ? '3' : 'distinct'} addresses${upgrading ? ' (polling, then websocket)' : ''}`;
  const before = await metrics();
  phase = `storm ${storms.length + 1}`;
  log(`storm ${storms.length + 1}: ${storm.label}: dropping ${clients} clients at once`);
  const dropAt = performance.now();
  await Promise.all(dropped.map((w) => w.ask('drop')));
  let stats;
  for (;;) {
    await sleep(500);
    stats = await Promise.all(dropped.map((w) => w.ask('stats')));
    const done = stats.every((s) => s.drop?.heardMs !== undefined);
    if (done || performance.now() - dropAt > STORM_TIMEOUT_MS) break;
    if (Math.round(performance.now() - dropAt) % 5000 < 500) {
      logErrors(new Map(stats.map((s, i) => [i, s])));
      log(`  connected ${stats.reduce((n, s) => n + s.connected, 0)}, subscribed ${stats.reduce((n, s) => n + s.subscribed, 0)}, heard ${stats.reduce((n, s) => n + s.heard, 0)} of ${clients}`);
    }
  }
  const after = await metrics();
  const times = (stage) => {
    const all = stats.flatMap((s) => s.drop?.times?.[stage] ?? []).sort((a, b) => a - b);
    const q = (f) => all[Math.min(all.length - 1, Math.floor(f * all.length))];
    return { n: all.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: all.at(-1) };
  };
  const worst = (key) => (stats.every((s) => s.drop?.[key] !== undefined) ? Math.max(...stats.map((s) => s.drop[key])) : null);
  const errors = {};
  for (const s of stats) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + v;
  const delta = (name) => Object.entries(after).filter(([k]) => k.startsWith(name)).reduce((n, [k, v]) => n + v - (before[k] ?? 0), 0);
  const result = {
    storm: storms.length + 1,
    label: storm.label,
    t: Math.round((dropAt - started) / 1000),
    clients,
    addresses: storm.pops.includes('nat') ? 3 : clients,
    fronts: storm.pops.map((p) => `${p}: ${POPS[p].front === 'hub' ? 'plain /ws' : 'socket.io-client'}`),
    back: { connectedMs: worst('connectedMs'), subscribedMs: worst('subscribedMs'), heardMs: worst('heardMs') },
    perClientMs: { connected: times('connected'), subscribed: times('subscribed'), heard: times('heard') },
    finally: { connected: stats.reduce((n, s) => n + s.connected, 0), subscribed: stats.reduce((n, s) => n + s.subscribed, 0), heard: stats.reduce((n, s) => n + s.heard, 0) },
    reconnectAttempts: stats.reduce((n, s) => n + s.reconnects - s.drop.reconnectsBefore, 0),
    clientErrorsSoFar: errors,
    handshakesThrottled: delta('handshakes_throttled_total'),
    refusedPerIp: delta('connections_refused_per_ip_total'),
  };
  storms.push(result);
  log(`storm ${result.storm}: every client connected in ${result.back.connectedMs} ms, subscribed in ${result.back.subscribedMs} ms, receiving in ${result.back.heardMs} ms; ${result.finally.heard}/${clients} back; 429s ${result.handshakesThrottled}`);
  phase = 'steady';
  checkpoints.push(await checkpoint(`after storm ${result.storm}`));
}
while (elapsedS() < MINUTES * 60) await sleep(1000);
checkpoints.push(await checkpoint('end'));
clearInterval(sampler);
clearInterval(publisher);
clearInterval(adminTimer);
await sample();

// ---------------------------------------------------------------------------------------------
// Judging the deliveries: between two checkpoints that no storm of a population falls in, it
// received one delivery per published event per member of the event's room.

const deliveries = [];
for (let k = 1; k < checkpoints.length; k++) {
  const [a, b] = [checkpoints[k - 1], checkpoints[k]];
  const stormBetween = a.label.startsWith('before storm');
  const storm = stormBetween ? STORMS[Number(a.label.split(' ').pop()) - 1] : null;
  for (const [name, pop] of Object.entries(POPS)) {
    if (storm?.pops.includes(name)) continue;
    const expected = (b.published[name] - a.published[name]) * pop.members;
    deliveries.push({ from: a.label, to: b.label, population: name, expected, received: b.pops[name] - a.pops[name] });
  }
  const relays = { from: a.label, to: b.label, population: 'relay', expected: (b.relay.acked - a.relay.acked) * (RELAY.count / RELAY.rooms - 1), received: b.relay.received - a.relay.received };
  deliveries.push(relays);
}
const lost = deliveries.filter((d) => d.received !== d.expected);

const at = (t) => samples.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), samples[0]);
const warmupS = upAt + Math.min(600, (MINUTES * 60) / 6);
const window = (from, to) => samples.filter((s) => s.t >= from && s.t <= to);
const avg = (list, key) => +(list.reduce((n, s) => n + s[key], 0) / list.length).toFixed(1);
const last = checkpoints.at(-1);
const final = await allStats();
const summary = {
  when: new Date().toISOString(),
  minutes: MINUTES,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGb: +(os.totalmem() / 2 ** 30).toFixed(1), load: os.loadavg() },
  gateway: { binary: GATEWAY, nodes: 1 },
  load: {
    populations: Object.fromEntries(Object.entries(POPS).map(([n, p]) => [n, { clients: p.count, rooms: p.rooms, front: p.front, transports: p.workers[0].config.transports ?? 'plain /ws', addresses: n === 'nat' ? 3 : n === 'polling' ? p.count : p.count }])),
    relay: RELAY,
    churn: { ...CHURN, ...last.churn },
    publishEveryRoomMs: PUBLISH_PERIOD_MS,
    publishCalls: publishing.calls,
    publishFailed: publishing.failed,
    eventsPublished: seq,
  },
  resources: {
    upAtS: Math.round(upAt),
    warmupAtS: Math.round(warmupS),
    start: at(upAt),
    afterWarmup: at(warmupS),
    end: samples.at(-1),
    steadyAverages: {
      afterWarmup: { rssMb: avg(window(warmupS, warmupS + 120), 'rssMb'), files: avg(window(warmupS, warmupS + 120), 'files') },
      lastTwoMinutes: { rssMb: avg(window(samples.at(-1).t - 120, Infinity), 'rssMb'), files: avg(window(samples.at(-1).t - 120, Infinity), 'files') },
      cpuPctSteady: avg(samples.filter((s) => s.phase === 'steady' && s.t > warmupS), 'cpuPct'),
    },
    peak: { rssMb: Math.max(...samples.map((s) => s.rssMb)), files: Math.max(...samples.map((s) => s.files)), cpuPct: Math.max(...samples.map((s) => s.cpuPct)) },
  },
  storms,
  deliveries: { checked: deliveries.length, allExact: lost.length === 0, mismatches: lost, totals: deliveries.reduce((t, d) => ({ expected: t.expected + d.expected, received: t.received + d.received }), { expected: 0, received: 0 }) },
  relay: last.relay,
  admin: { reloads: admin.reloads.length, failed: admin.reloads.filter((r) => !r.ok).length, msMax: Math.max(...admin.reloads.filter((r) => r.ok).map((r) => r.ms)), msMedian: admin.reloads.map((r) => r.ms).sort((a, b) => a - b)[admin.reloads.length >> 1], socketsListed: admin.reloads.at(-1)?.sockets, events: admin.events },
  clientErrors: Object.fromEntries([...final.entries()].map(([w, s]) => [w.config.name, s.errors]).filter(([, e]) => Object.keys(e).length)),
  metricsEnd: last.metrics,
  checkpoints,
};
writeFileSync(path.join(OUT, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
writeFileSync(path.join(OUT, 'storms.json'), `${JSON.stringify(storms.map((s) => ({ t: s.t, label: s.label })))}\n`);
log(`deliveries: ${summary.deliveries.totals.received} of ${summary.deliveries.totals.expected} expected${lost.length ? `; MISMATCHES ${JSON.stringify(lost)}` : ', every one'}`);
log(`RSS ${summary.resources.start.rssMb} MB at start, ${summary.resources.afterWarmup.rssMb} after warm-up, ${summary.resources.end.rssMb} at the end; open files ${summary.resources.start.files} / ${summary.resources.afterWarmup.files} / ${summary.resources.end.files}`);
log(`summary in ${path.join(OUT, 'summary.json')}`);

admin.current?.disconnect();
await Promise.all(workers.map((w) => w.ask('stop')));
await gw.stop();
process.exit(lost.length || storms.some((s) => s.back.heardMs === null) ? 1 : 0);

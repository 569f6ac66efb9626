// The attacks of issue 8 at full size, against the release build, with the figures an operator
// cares about: memory, time to recover, and whether the node kept serving. The test command runs
// small versions of each (tests/js/hardening.test.js); this is the large one, run by hand.
//
//   cargo build --release && cd bench && npm ci && node soak.mjs [slow-consumer|slowloris|handshakes|big-headers]

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GATEWAY = process.env.GATEWAY_BIN ?? path.resolve(HERE, '../target/release/realtime-gateway');
const SECRET = 'soak-secret';
const API_KEY = 'soak-key';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const token = (claims) => jwt.sign({ sub: 'soak', tenantId: 'soak', ...claims }, SECRET, { expiresIn: '1h' });

/** Starts the gateway with `env`; resolves to `{ url, port, child, stop() }` once it listens. */
function startGateway(env = {}) {
  const child = spawn(GATEWAY, [], {
    env: { PATH: process.env.PATH, JWT_SECRET: SECRET, API_KEYS: API_KEY, HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'warn,realtime_gateway=info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.message === 'listening') {
          const port = Number(entry.addr.split(':').pop());
          resolve({ url: `http://127.0.0.1:${port}`, port, child, stop: () => child.kill('SIGKILL') });
        }
      } catch {}
    });
  });
}

async function metric(url, series) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`realtime_gateway_${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Milliseconds `/healthz` takes to answer. */
async function healthLatency(url) {
  const started = performance.now();
  const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  await response.text();
  return performance.now() - started;
}

const scenarios = {
  // One raw client subscribes and stops reading; 400 events of 900 kB are published to it.
  // Before the fix: 436 MB RSS two minutes later, the client still connected.
  async 'slow-consumer'() {
    const gw = await startGateway({ API_MAX_BODY_SIZE: '10000000' });
    const base = rssMb(gw.child.pid);
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/socket.io/?EIO=4&transport=websocket`);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(`40/workflow,${JSON.stringify({ token: token() })}`);
    await sleep(200);
    ws.send(`42/workflow,${JSON.stringify(['subscribe', { type: 'execution' }])}`);
    await sleep(200);
    ws._socket.pause();
    const started = Date.now();
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(gw.child.pid))), 100);
    const blob = 'x'.repeat(900_000);
    for (let i = 0; i < 400; i += 5) {
      const events = Array.from({ length: 5 }, (_, j) => ({ type: 'execution.progress', tenantId: 'soak', data: { executionId: 'e1', n: i + j, blob } }));
      await fetch(`${gw.url}/api/v1/events`, { method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' }, body: JSON.stringify(events) });
    }
    let gone = null;
    while (Date.now() - started < 60_000) {
      const stats = await (await fetch(`${gw.url}/api/v1/stats?namespace=/workflow`, { headers: { 'X-API-Key': API_KEY } })).json();
      if (stats.connections === 0) {
        gone = Date.now() - started;
        break;
      }
      await sleep(100);
    }
    await sleep(5000);
    clearInterval(sampler);
    const after = rssMb(gw.child.pid);
    const cuts = (await (await fetch(`${gw.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('realtime_gateway_connections_cut_total{')).map((l) => l.replace('realtime_gateway_connections_cut_total', '')).join(' ');
    gw.stop();
    ws.terminate();
    return [
      `RSS before ${base.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, 5 s after the cut ${after.toFixed(0)} MB`,
      `the stalled client was disconnected ${gone === null ? 'NOT within 60 s' : `${(gone / 1000).toFixed(1)} s`} after the publishing began (WS_WRITE_TIMEOUT 10 s)`,
      `cuts ${cuts}`,
    ];
  },

  // 2,000 connections that send half a request line, from one address and from many.
  async slowloris() {
    const gw = await startGateway();
    let connected = 0;
    const open = (localAddress) => {
      const socket = net.connect({ host: '127.0.0.1', port: gw.port, localAddress });
      socket.on('error', () => {});
      socket.once('connect', () => {
        connected++;
        socket.write('GET / HT');
      });
      return new Promise((resolve) => socket.once('close', () => resolve(Date.now())));
    };
    const started = Date.now();
    const closes = [];
    for (let i = 0; i < 2000; i++) closes.push(open(`127.0.${2 + (i % 4)}.${1 + Math.floor(i / 4) % 250}`));
    const oneAddress = Array.from({ length: 1200 }, () => open('127.0.9.9'));
    while (connected < 3200 && Date.now() - started < 5000) await sleep(50);
    await sleep(500);
    const latency = await healthLatency(gw.url);
    const refused = await metric(gw.url, 'connections_refused_per_ip_total');
    const held = await metric(gw.url, 'tcp_connections');
    const all = await Promise.all([...closes, ...oneAddress]);
    const last = (Math.max(...all) - started) / 1000;
    gw.stop();
    return [
      `/healthz answered in ${latency.toFixed(1)} ms with ${held - 1} half-open requests held`,
      `one address opening 1,200: ${refused} refused at once (MAX_CONNECTIONS_PER_IP 1000)`,
      `every half-open connection was closed within ${last.toFixed(1)} s (HTTP_HEADER_TIMEOUT 10 s)`,
    ];
  },

  // 20,000 polling handshakes in a burst from one address.
  // Before the fix: RSS from 43 to 204 MB until reaped 45-60 s later.
  async handshakes() {
    const gw = await startGateway();
    const base = rssMb(gw.child.pid);
    const started = Date.now();
    const statuses = {};
    const agent = { keepalive: true };
    for (let i = 0; i < 20_000; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: 200 }, () => fetch(`${gw.url}/socket.io/?EIO=4&transport=polling`, agent).then(async (r) => (await r.text(), r.status)).catch(() => 'error')),
      );
      for (const s of batch) statuses[s] = (statuses[s] ?? 0) + 1;
    }
    const took = (Date.now() - started) / 1000;
    const peak = rssMb(gw.child.pid);
    await sleep(12_000);
    const after = rssMb(gw.child.pid);
    gw.stop();
    return [
      `20,000 handshakes in ${took.toFixed(1)} s: ${JSON.stringify(statuses)}`,
      `RSS before ${base.toFixed(0)} MB, after the burst ${peak.toFixed(0)} MB, 12 s later ${after.toFixed(0)} MB (sessions without a namespace close after WS_CONNECT_TIMEOUT 10 s)`,
    ];
  },

  // 300 handshakes carrying a 300 kB header each.
  // Before the fix: accepted, +265 kB each for as long as the client answered pings.
  async 'big-headers'() {
    const gw = await startGateway();
    const base = rssMb(gw.child.pid);
    const answers = {};
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => new Promise((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port: gw.port, localAddress: `127.0.10.${1 + (i % 200)}` });
        let head = '';
        socket.on('data', (d) => (head += d));
        socket.on('error', () => {});
        socket.once('close', () => {
          const status = head.split(' ')[1] ?? 'closed';
          answers[status] = (answers[status] ?? 0) + 1;
          resolve();
        });
        socket.once('connect', () => socket.write(`GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(300_000)}\r\n\r\n`));
      })),
    );
    const after = rssMb(gw.child.pid);
    gw.stop();
    return [`answers ${JSON.stringify(answers)}; RSS before ${base.toFixed(0)} MB, after ${after.toFixed(0)} MB`];
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(scenarios)) {
  if (!scenarios[name]) throw new Error(`no scenario ${name} (known: ${Object.keys(scenarios).join(', ')})`);
  console.log(`\n${name}`);
  for (const line of await scenarios[name]()) console.log(`  ${line}`);
}
process.exit(0);

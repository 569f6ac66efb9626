// The clients of a scenario: processes of bench/loadgen (lean Rust WebSocket clients), each
// holding at most `perProcess` connections from its own 127.N.x.y addresses, and the merging of
// their counts and latency histograms.

import { spawn } from 'node:child_process';
import readline from 'node:readline';
import jwt from 'jsonwebtoken';
import { LOADGEN, SECRET, cpuMs } from './proc.mjs';

export const token = (claims = {}) => jwt.sign({ sub: 'bench-user', tenantId: 'bench-tenant', ...claims }, SECRET, { expiresIn: '2h' });

let nextSource = 10;

/** One loadgen process; `ask(command)` resolves to its next line of output, parsed. */
function loadgen(args) {
  const child = spawn(LOADGEN, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  return {
    child,
    ready: next(),
    ask(command) {
      const answer = next();
      child.stdin.write(`${command}\n`);
      return answer;
    },
  };
}

/**
 * Opens `connections` clients to `url` and resolves once all have connected and subscribed.
 * `subscribe` is the subscribe payload as JSON text, `{room}` standing for the client's room index
 * (client i is in room i % rooms).
 */
export async function openClients({ url, mode = 'eio', namespace = '/workflow', connections, subscribe = '', rooms = 1, perProcess = 10_000, ackClients = 0, claims, browserHeaders = false }) {
  const processes = [];
  for (let offset = 0; offset < connections; offset += perProcess) {
    const count = Math.min(perProcess, connections - offset);
    processes.push(
      loadgen([
        '--url', url, '--mode', mode, '--namespace', namespace, '--token', token(claims),
        '--connections', String(count), '--subscribe', subscribe, '--rooms', String(rooms),
        '--source', `${nextSource++}.0`, '--per-ip', '100',
        '--ack-clients', String(offset === 0 ? ackClients : 0),
        ...(browserHeaders ? ['--browser-headers'] : []),
      ]),
    );
  }
  const ready = await Promise.all(processes.map((p) => p.ready));
  const failed = ready.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) {
    await Promise.all(processes.map((p) => p.child.kill()));
    throw new Error(`${failed} of ${connections} clients failed: ${ready.find((r) => r.error)?.error}`);
  }
  return {
    connections,
    async stats() {
      const all = await Promise.all(processes.map((p) => p.ask('stats')));
      return {
        received: all.reduce((n, s) => n + s.received, 0),
        closed: all.reduce((n, s) => n + s.closed, 0),
        latency: merge(all.map((s) => s.latency)),
        acks: merge(all.map((s) => s.acks)),
      };
    },
    reset: () => Promise.all(processes.map((p) => p.ask('reset'))),
    cpuMs: () => processes.reduce((ms, p) => ms + cpuMs(p.child.pid), 0),
    stop: () => Promise.all(processes.map((p) => new Promise((resolve) => {
      p.child.once('exit', resolve);
      p.child.kill();
    }))),
  };
}

function merge(histograms) {
  const counts = new Map();
  for (const h of histograms) for (const [i, c] of h) counts.set(i, (counts.get(i) ?? 0) + c);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

/** The value (in ms) below which fraction `q` of a merged histogram's samples lie. */
export function percentile(histogram, q) {
  const total = histogram.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return NaN;
  let seen = 0;
  for (const [i, c] of histogram) {
    seen += c;
    if (seen >= q * total) return (2 ** ((i + 0.5) / 64) - 1) / 1000;
  }
  return NaN;
}

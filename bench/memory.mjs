// Memory per idle connection: the gateway against the Node.js socket.io reference server, both
// holding N authenticated websocket clients on /workflow. Reports the RSS each server gained
// per connection, and the ratio.
//
//   cargo build --release && cd bench && npm ci && node memory.mjs [--connections 10000]

import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'bench-secret';
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CONNECTIONS = arg('connections', 5000);
// Client processes stay well under the per-process file limit.
const PER_PROCESS = arg('per-process', 2500);
const GATEWAY = process.env.GATEWAY_BIN ?? path.resolve(HERE, '../target/release/realtime-gateway');

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a server and resolves to {child, port} once it says where it listens. */
function start(command, args, env, portOf) {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const port = portOf(JSON.parse(line));
        if (port) resolve({ child, port });
      } catch {}
    });
  });
}

const servers = {
  'realtime-gateway': () =>
    start(GATEWAY, [], { JWT_SECRET: SECRET, API_KEYS: 'bench', HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json' },
      (line) => line.message === 'listening' && Number(line.addr.split(':').pop())),
  'node socket.io': () =>
    start(process.execPath, ['--expose-gc', path.join(HERE, 'node-workflow-server.mjs')], { JWT_SECRET: SECRET },
      (line) => line.listening),
};

async function measure(name) {
  const { child, port } = await servers[name]();
  await sleep(500);
  const before = rssKb(child.pid);
  const clients = [];
  for (let left = CONNECTIONS; left > 0; left -= PER_PROCESS) {
    const count = Math.min(left, PER_PROCESS);
    const client = fork(path.join(HERE, 'clients.mjs'), [`http://127.0.0.1:${port}`, String(count), SECRET]);
    clients.push(client);
    await new Promise((resolve, reject) => {
      client.once('message', resolve);
      client.once('exit', (code) => reject(new Error(`a client process exited with ${code}`)));
    });
  }
  // Node's heap holds garbage from the connects; collect it so only live memory is counted.
  if (name === 'node socket.io') child.kill('SIGUSR2');
  await sleep(2000);
  const after = rssKb(child.pid);
  clients.forEach((c) => c.kill());
  child.kill();
  return { name, before, after, perConnection: ((after - before) * 1024) / CONNECTIONS / 1000 };
}

const results = [];
for (const name of Object.keys(servers)) results.push(await measure(name));
console.log(`idle authenticated websocket connections on /workflow: ${CONNECTIONS}`);
for (const r of results) {
  console.log(`${r.name.padEnd(18)} RSS ${String(r.before).padStart(7)} kB -> ${String(r.after).padStart(8)} kB   ${r.perConnection.toFixed(1)} KB per connection`);
}
console.log(`ratio (gateway / node): ${(results[0].perConnection / results[1].perConnection).toFixed(2)}`);
process.exit(0);

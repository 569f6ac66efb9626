// Processes under measurement: starting the gateway and the Node references, and reading a
// process's CPU time and resident memory from /proc, so figures do not depend on how busy the
// rest of the machine is.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(HERE, '..');
export const SECRET = 'bench-secret';
export const API_KEY = 'bench-key';
export const GATEWAY = process.env.GATEWAY_BIN ?? path.join(ROOT, 'target/release/realtime-gateway');
export const LOADGEN = path.join(HERE, 'loadgen/target/release/loadgen');

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** CPU time (user + system, all threads) a process has used, in milliseconds. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
}

/** Resident memory of a process, in kB. */
export function rssKb(pid) {
  return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Starts a process and resolves once `portOf` finds its port in a line of its stdout. */
function start(command, args, env, portOf) {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const failed = (code) => reject(new Error(`${path.basename(command)} exited with ${code}`));
    child.once('exit', failed);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let port;
      try {
        port = portOf(JSON.parse(line));
      } catch {}
      if (port) {
        child.off('exit', failed);
        resolve(server(child, port));
      }
    });
  });
}

function server(child, port) {
  return {
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    cpuMs: () => cpuMs(child.pid),
    rssKb: () => rssKb(child.pid),
    gc: () => child.kill('SIGUSR2'),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGKILL');
      }),
  };
}

/** The gateway (release build), quiet, with the benchmarks' secret and API key. */
export function startGateway(env = {}) {
  return start(
    GATEWAY,
    [],
    { JWT_SECRET: SECRET, API_KEYS: API_KEY, HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'warn,realtime_gateway::app=info', ...env },
    (line) => line.message === 'listening' && Number(line.addr.split(':').pop()),
  );
}

/** A Node reference server from bench/servers/. */
export function startNode(script, env = {}) {
  return start(process.execPath, ['--expose-gc', path.join(HERE, 'servers', script)], { JWT_SECRET: SECRET, API_KEYS: API_KEY, ...env }, (line) => line.listening);
}

/** Waits until something listens on `port` of 127.0.0.1 (up to 5 s). */
async function listening(port) {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(() => resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** A private redis-server on a free port, for the cluster scenario. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  await listening(port);
  return { url: `redis://127.0.0.1:${port}`, port, ports: [port], stop: () => child.kill('SIGKILL') };
}

/** `redis-cli` against one instance; its output. */
export const redisCli = (port, ...args) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]).toString();

/** An `INFO` section of one instance as `{field: value}` (numbers where they are). */
export function redisInfo(port, section) {
  const out = {};
  for (const line of redisCli(port, 'INFO', section).split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) out[line.slice(0, at)] = Number.isNaN(Number(line.slice(at + 1))) ? line.slice(at + 1) : Number(line.slice(at + 1));
  }
  return out;
}

/**
 * A private Redis Cluster of `masters` masters (no replicas) on free ports, its configuration
 * and data in a temporary folder: `url` is the gateway's `redis-cluster://` form, `ports` the
 * masters'; `stop()` kills them and removes the folder.
 */
export async function startRedisCluster(masters = 3) {
  const dir = mkdtempSync(path.join(tmpdir(), 'rtgw-bench-cluster-'));
  const ports = [];
  const children = [];
  const stop = () => {
    children.forEach((c) => c.kill('SIGKILL'));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      children.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir], { stdio: 'ignore' }));
    }
    for (const port of ports) await listening(port);
    execFileSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      if (ports.every((p) => /cluster_state:ok/.test(redisCli(p, 'CLUSTER', 'INFO')))) break;
      if (i === 100) throw new Error('the Redis Cluster did not become ready');
      await sleep(100);
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, pids: children.map((c) => c.pid), stop };
}

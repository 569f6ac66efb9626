// Processes under measurement: starting the gateway and the Node references, and reading a
// process's CPU time and resident memory from /proc, so figures do not depend on how busy the
// rest of the machine is.

import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** A private redis-server on a free port, for the cluster scenario. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(() => resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    await sleep(50);
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

// What the SDK's tests drive: the real gateway binary (built by `cargo build`; GATEWAY_BIN may
// point elsewhere), a private redis-server for the cluster test, signed tokens, and
// socket.io-client frontends that record what they receive, with waits that always time out.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { io, type Socket } from 'socket.io-client';

export const GATEWAY_BIN = path.resolve(
  __dirname,
  '../../..',
  process.env.GATEWAY_BIN ?? '../../target/debug/realtime-gateway',
);
export const SECRET = 'sdk-suite-secret-0123456789abcdef0123456789abcdef';
export const API_KEY = 'sdk-suite-api-key';

/** The wait for anything the gateway should do promptly. */
export const TIMEOUT = 5000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A short unique suffix, so tests never share tenants or ids. */
export const uid = () => randomUUID().slice(0, 8);

const running = new Set<ChildProcess>();
// Last resort when a run dies before its `after` hooks: never leave a process behind.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Gateway {
  url: string;
  port: number;
  logs: string[];
  /**
   * SIGSTOP: the process hangs with its connections open, answering nothing. Resolves once every
   * thread is stopped: the signal is delivered asynchronously, and a request sent before that
   * could still be answered.
   */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): void;
  stop(): Promise<void>;
}

/**
 * Starts a gateway on a loopback port (`port`, default a free one) and resolves once it logs
 * `listening`. `env` entries override the defaults.
 */
export async function startGateway({
  env = {},
  port = 0,
  timeoutMs = 15000,
}: { env?: Record<string, string>; port?: number; timeoutMs?: number } = {}): Promise<Gateway> {
  const child = spawn(GATEWAY_BIN, [], {
    env: {
      PATH: process.env.PATH,
      JWT_SECRET: SECRET,
      API_KEYS: API_KEY,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT: '2000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const logs: string[] = [];
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
  const bound = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`the gateway did not log "listening" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let settled = false;
    function fail(error: Error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${logs.join('\n')}`));
    }
    child.once('error', fail);
    void exited.then(() => fail(new Error('the gateway exited before listening')));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { message?: string; addr?: string };
        if (!settled && entry.message === 'listening' && typeof entry.addr === 'string') {
          settled = true;
          clearTimeout(timer);
          resolve(Number(entry.addr.split(':').pop()));
        }
      } catch {
        // not a log line of ours
      }
    });
  });
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    logs,
    async pause() {
      child.kill('SIGSTOP');
      await stopped(child.pid!);
    },
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A private redis-server on a free loopback port, persistence off; resolves once it is ready. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'rtgw-sdk-redis-'));
  const child = spawn(
    process.env.REDIS_SERVER_BIN ?? 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within 10 s\n${output.join('')}`)), 10000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.join('').includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An HS256 token signed with the suite's secret: user `u1` of tenant `t1` unless `claims` say otherwise. */
export function mintToken(claims: Record<string, unknown> = {}): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = { sub: 'u1', tenantId: 't1', roles: ['user'], exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** A socket that records every event it receives, so none slips by between two awaits. */
export interface Frontend {
  socket: Socket;
  /** Events received and not handed out by `next` yet. */
  inbox: Array<{ event: string; args: unknown[] }>;
  /** The first unclaimed `event` (its first argument), waiting up to `timeoutMs`. */
  next(event: string, timeoutMs?: number): Promise<unknown>;
  /** Unclaimed events of this name (first arguments). */
  pending(event: string): unknown[];
  /**
   * Every event received (name and first argument), up to and including the first one for which
   * `last` holds, waiting up to `timeoutMs` for that one; they are taken out of the inbox.
   */
  until(last: (event: string, data: unknown) => boolean, timeoutMs?: number): Promise<Array<[string, unknown]>>;
  close(): void;
}

/**
 * A socket.io-client socket on `namespace`, connected and past its welcome event (`welcome`, or
 * none with `null`), as the seed's frontends open it.
 */
export async function frontend(
  url: string,
  namespace: string,
  { token, welcome = null }: { token?: string; welcome?: string | null } = {},
): Promise<Frontend> {
  const socket = io(url + (namespace === '/' ? '' : namespace), {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: TIMEOUT,
    ...(token === undefined ? {} : { auth: { token } }),
  });
  const inbox: Frontend['inbox'] = [];
  const waiters: Array<{ event: string; resolve: (value: unknown) => void }> = [];
  const record = (event: string, args: unknown[]) => {
    const waiter = waiters.find((w) => w.event === event);
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(args[0]);
    } else {
      inbox.push({ event, args });
    }
  };
  socket.onAny((event: string, ...args: unknown[]) => record(event, args));
  socket.on('connect', () => record('connect', []));
  socket.on('connect_error', (error) => record('connect_error', [error]));
  const next = (event: string, timeoutMs = TIMEOUT): Promise<unknown> => {
    const index = inbox.findIndex((e) => e.event === event);
    if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]!.args[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        event,
        resolve: (value: unknown) => {
          clearTimeout(timer);
          resolve(value);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no \`${event}\` on ${namespace} within ${timeoutMs} ms (unclaimed: ${inbox.map((e) => e.event).join(', ') || 'nothing'})`,
          ),
        );
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  const client: Frontend = {
    socket,
    inbox,
    next,
    pending: (event) => inbox.filter((e) => e.event === event).map((e) => e.args[0]),
    async until(last, timeoutMs = TIMEOUT) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = inbox.findIndex((e) => last(e.event, e.args[0]));
        if (index >= 0) return inbox.splice(0, index + 1).map((e) => [e.event, e.args[0]] as [string, unknown]);
        if (Date.now() > deadline) {
          throw new Error(
            `the awaited event did not reach ${namespace} within ${timeoutMs} ms (received: ${inbox.map((e) => e.event).join(', ') || 'nothing'})`,
          );
        }
        await sleep(10);
      }
    },
    close: () => socket.disconnect(),
  };
  try {
    await next('connect');
    if (welcome !== null) await next(welcome);
  } catch (error) {
    socket.disconnect();
    throw error;
  }
  return client;
}

/** Sends a client event and resolves to its ack. */
export function request(f: Frontend, event: string, payload?: unknown): Promise<unknown> {
  const socket = f.socket.timeout(TIMEOUT);
  return payload === undefined ? socket.emitWithAck(event) : socket.emitWithAck(event, payload);
}

/**
 * Waits long enough for a stray event to have arrived if it was going to: a round trip to the
 * gateway on the same socket after the events that did arrive (a ping the namespace answers, or
 * a fixed pause where there is none).
 */
export async function settle(f: Frontend, probe?: { event: string; payload?: unknown }): Promise<void> {
  if (probe) await request(f, probe.event, probe.payload);
  else await sleep(200);
}

/** Resolves once every thread of process `pid` is stopped (state `T` in /proc); rejects after 5 s. */
async function stopped(pid: number): Promise<void> {
  const state = (tid: string) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  };
  const until = Date.now() + 5000;
  while (!readdirSync(`/proc/${pid}/task`).every((tid) => state(tid) === 'T')) {
    if (Date.now() > until) throw new Error(`process ${pid} did not stop within 5 s of SIGSTOP`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

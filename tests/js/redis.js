// A private Redis for a test file: `redis-server` on a free loopback port, with persistence off,
// that a test can kill (SIGKILL, as a crash) and start again on the same port. Never the shared
// Redis on 6379: every cluster test runs against a server of its own. `redisProxy` puts a TCP
// proxy between one node and it, to hold or slow that node's connections.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { startGateway, uid, untilReady } from './helpers.js';

/** The binary; `REDIS_SERVER_BIN` may point at another one. */
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';

export const MISSING_REDIS =
  'redis-server not found: install Redis 7 or newer (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)';

const running = new Set();
// Last resort when a test run dies before its `after` hooks: never leave a redis-server behind.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Throws the plain "install Redis" error when the binary is not there. */
export function requireRedisServer() {
  const probe = spawnSync(REDIS_SERVER_BIN, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (probe.error?.code === 'ENOENT' || (probe.error === undefined && probe.status === 127)) throw new Error(MISSING_REDIS);
  if (probe.error) throw new Error(`${MISSING_REDIS} (running \`${REDIS_SERVER_BIN} --version\` failed: ${probe.error.message})`);
  return probe.stdout.trim();
}

/** A loopback port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** One PING with a short-lived client; resolves true on PONG, false on any failure. */
export async function ping(url, timeoutMs = 500) {
  const client = createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    try {
      await client.disconnect();
    } catch {
      // already closed
    }
  }
}

/**
 * Starts a private `redis-server` on a free port (or `port`) and resolves once it answers PING.
 * Resolves to `{ port, url, logs, kill(), restart(), stop() }`:
 * - `kill()` SIGKILLs it (a crash) and resolves once the process is gone;
 * - `pause()` / `resume()` SIGSTOP and SIGCONT it (a hang);
 * - `restart()` starts it again on the same port, empty, and resolves once it answers PING;
 * - `stop()` kills it for good and removes its folder (safe to call twice).
 */
export async function startRedis({ port, timeoutMs = 10000 } = {}) {
  requireRedisServer();
  const dir = mkdtempSync(path.join(tmpdir(), 'rtgw-redis-'));
  const logs = [];
  let child;
  let exited;

  async function launch(onPort) {
    const args = [
      '--port', String(onPort),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--daemonize', 'no',
      '--protected-mode', 'yes',
      '--loglevel', 'notice',
    ];
    const proc = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    const gone = new Promise((resolve) => proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }));
    proc.stdout.on('data', (chunk) => logs.push(chunk.toString()));
    proc.stderr.on('data', (chunk) => logs.push(chunk.toString()));
    const spawnError = new Promise((resolve) => proc.once('error', resolve));

    const url = `redis://127.0.0.1:${onPort}`;
    const deadline = Date.now() + timeoutMs;
    let state = 'starting';
    gone.then(() => { state = 'exited'; });
    spawnError.then((error) => { state = error; });
    while (Date.now() < deadline) {
      if (state instanceof Error) {
        if (state.code === 'ENOENT') throw new Error(MISSING_REDIS);
        throw state;
      }
      if (state === 'exited') {
        const { code, signal } = await gone;
        const error = new Error(`redis-server on port ${onPort} exited (code ${code}, signal ${signal}) before answering PING\n${logs.join('')}`);
        error.exited = true;
        throw error;
      }
      if (await ping(url, 300)) return { proc, gone };
      await sleep(50);
    }
    proc.kill('SIGKILL');
    await gone;
    throw new Error(`redis-server on port ${onPort} did not answer PING within ${timeoutMs} ms\n${logs.join('')}`);
  }

  // A free port can be taken between the check and the listen: try a few.
  let chosen = port;
  for (let attempt = 0; ; attempt++) {
    chosen = port ?? (await freePort());
    try {
      ({ proc: child, gone: exited } = await launch(chosen));
      break;
    } catch (error) {
      if (port !== undefined || !error.exited || attempt >= 4) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const url = `redis://127.0.0.1:${chosen}`;
  const alive = () => child && child.exitCode === null && child.signalCode === null;
  const handle = {
    port: chosen,
    url,
    logs,
    get pid() {
      return child?.pid;
    },
    /** SIGKILL, as a crash; resolves once the process is gone. */
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    /** SIGSTOP: Redis hangs (connections stay open, nothing is answered), as a stalled host. */
    pause() {
      if (alive()) child.kill('SIGSTOP');
    },
    /** SIGCONT: Redis carries on with what it had received. */
    resume() {
      if (alive()) child.kill('SIGCONT');
    },
    /** Starts it again on the same port (empty); resolves once it answers PING. */
    async restart() {
      await handle.kill();
      // The port was just released by a killed process: retry briefly if the bind races.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          ({ proc: child, gone: exited } = await launch(chosen));
          return;
        } catch (error) {
          if (!error.exited || Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
    },
    /** Kills it for good and removes its folder. */
    async stop() {
      await handle.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * A TCP proxy in front of Redis for one node, so that node can be kept away from Redis for a
 * while after Redis is back (nodes reconnect with backoff, so in real outages they come back at
 * different times; here the order is made certain). `hold()` cuts the node's connections and
 * refuses new ones; `release()` lets it connect again. `delay(command, ms)` holds, for `ms`, what
 * a connection sends from the moment it sends `command` (e.g. `SSUBSCRIBE`), as if that one
 * connection were slow to come back; `delay(null)` stops.
 */
export async function redisProxy(target) {
  const pairs = new Set();
  let holding = false;
  let delayed = null;
  const server = net.createServer((client) => {
    if (holding) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const end of [client, upstream]) {
      end.on('error', close);
      end.on('close', close);
    }
    let held = null;
    client.on('data', (chunk) => {
      if (held) {
        held.push(chunk);
      } else if (delayed && chunk.toString('latin1').toUpperCase().includes(delayed.command)) {
        held = [chunk];
        delayed.hits += 1;
        setTimeout(() => {
          for (const c of held) upstream.write(c);
          held = null;
        }, delayed.ms);
      } else {
        upstream.write(chunk);
      }
    });
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const proxy = {
    url: `redis://127.0.0.1:${server.address().port}`,
    hold() {
      holding = true;
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    release() {
      holding = false;
    },
    delay(command, ms) {
      delayed = command ? { command: command.toUpperCase(), ms, hits: 0 } : null;
      return delayed;
    },
    close() {
      proxy.hold();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

/**
 * Two gateway nodes on a private Redis, the second reading it through `redisProxy` (so a test
 * can hold its bus reads back with `proxy.delay(ms)`): `{redis, proxy, a, b, stop()}`, ready.
 */
export async function startProxiedPair(name) {
  const pair = { redis: await startRedis() };
  pair.proxy = await redisProxy(pair.redis.port);
  const prefix = `${name}${uid()}`;
  pair.a = await startGateway({ env: { REDIS_URL: pair.redis.url, REDIS_PREFIX: prefix } });
  pair.a.name = 'A';
  pair.b = await startGateway({ env: { REDIS_URL: pair.proxy.url, REDIS_PREFIX: prefix } });
  pair.b.name = 'B (through a proxy)';
  await untilReady([pair.a, pair.b]);
  pair.stop = async () => {
    pair.proxy.delay(null);
    await pair.a.stop();
    await pair.b.stop();
    await pair.proxy.close();
    await pair.redis.stop();
  };
  return pair;
}

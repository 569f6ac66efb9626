// Private Redis for a test file, never the shared Redis on 6379: one `redis-server` (`startRedis`),
// a Redis Cluster of masters and replicas (`startRedisCluster`) or a master, a replica and three
// Sentinels (`startSentinel`), each process on free loopback ports with persistence off, that a
// test can kill (SIGKILL, as a crash), hang (SIGSTOP), fail over and start again. `TEST_REDIS`
// (`cluster` or `sentinel`) makes `startRedis()` hand out a whole Cluster or Sentinel set behind
// the same handle, so the cluster suite runs unchanged on each (scripts/test does).
// `redisProxy` puts a TCP proxy between one node and a single Redis, to hold or slow its
// connections.

import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, createCluster } from 'redis';
import { startGateway, uid, untilReady } from './helpers.js';

/** The binaries; `REDIS_SERVER_BIN` and `REDIS_CLI_BIN` may point at other ones. */
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN ?? 'redis-cli';

export const MISSING_REDIS =
  'redis-server not found: install Redis 7 or newer (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)';

/**
 * What `startRedis()` starts: `single` (one redis-server, the default), `cluster` (three masters
 * and three replicas) or `sentinel` (a master, a replica, three Sentinels), from `TEST_REDIS`.
 */
export const TEST_REDIS = process.env.TEST_REDIS || 'single';
if (!['single', 'cluster', 'sentinel'].includes(TEST_REDIS)) {
  throw new Error(`TEST_REDIS=${TEST_REDIS}: expected single, cluster or sentinel`);
}

/**
 * Options for a test or describe that only makes sense on one plain Redis (a TCP proxy in front
 * of it, one server's port): skipped, with the reason, when `TEST_REDIS` is a Cluster or Sentinel.
 */
export function onOneRedisOnly(reason) {
  return TEST_REDIS === 'single' ? {} : { skip: `TEST_REDIS=${TEST_REDIS}: ${reason}` };
}

const running = new Set();
// Last resort when a test run dies before its `after` hooks: never leave a redis-server behind.
process.on('exit', () => {
  for (const child of running) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
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
  try {
    return (await commandOn(url, ['PING'], timeoutMs)) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * One command on one server (`url`, or a loopback port) with a short-lived client; rejects on
 * any failure, and after `timeoutMs` when the server hangs.
 */
export async function commandOn(url, args, timeoutMs = 2000) {
  const target = typeof url === 'number' ? `redis://127.0.0.1:${url}` : url;
  const client = createClient({ url: target, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  client.on('error', () => {});
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${args[0]} on ${target}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([client.connect().then(() => client.sendCommand(args.map(String))), timeout]);
  } finally {
    clearTimeout(timer);
    client.disconnect().catch(() => {});
  }
}

/** `INFO`-style and `CLUSTER INFO` text as an object. */
function fields(text) {
  return Object.fromEntries(String(text).split(/\r?\n/).filter((l) => l.includes(':')).map((l) => {
    const at = l.indexOf(':');
    return [l.slice(0, at), l.slice(at + 1).trim()];
  }));
}

/** Polls `probe` (truthy when done) every `every` ms; throws `what` and its last answer at the deadline. */
async function until(probe, timeoutMs, what, every = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last === true) return;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(every);
  }
}

/**
 * One redis-server process (plain, cluster node or Sentinel) on one port, with its own folder and
 * a configuration file written afresh at each start (`conf(port)`: Sentinel, and a data node
 * Sentinel reconfigures, rewrite theirs). `label` prefixes its lines in the shared `logs`.
 */
function serverProcess({ label, port, dir, conf, sentinel = false, logs, timeoutMs }) {
  const server = { label, port, dir, proc: null, gone: Promise.resolve() };
  server.alive = () => server.proc !== null && server.proc.exitCode === null && server.proc.signalCode === null;

  /** Starts it on `server.port` and resolves once it answers PING; `error.exited` if it died first. */
  server.launch = async () => {
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, sentinel ? 'sentinel.conf' : 'redis.conf');
    writeFileSync(file, conf(server.port));
    const proc = spawn(REDIS_SERVER_BIN, sentinel ? [file, '--sentinel'] : [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    const gone = new Promise((resolve) => proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }));
    const keep = (chunk) => logs.push(label ? chunk.toString().replace(/^(?=.)/gm, `[${label}] `) : chunk.toString());
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let state = 'starting';
    gone.then(() => { state = 'exited'; });
    proc.once('error', (error) => { state = error; });
    const url = `redis://127.0.0.1:${server.port}`;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (state instanceof Error) {
        if (state.code === 'ENOENT') throw new Error(MISSING_REDIS);
        throw state;
      }
      if (state === 'exited') {
        const { code, signal } = await gone;
        const error = new Error(`redis-server ${label} on port ${server.port} exited (code ${code}, signal ${signal}) before answering PING\n${logs.join('')}`);
        error.exited = true;
        throw error;
      }
      if (await ping(url, 300)) {
        server.proc = proc;
        server.gone = gone;
        return;
      }
      await sleep(50);
    }
    proc.kill('SIGKILL');
    await gone;
    throw new Error(`redis-server ${label} on port ${server.port} did not answer PING within ${timeoutMs} ms\n${logs.join('')}`);
  };

  /** Starts it again on its port, retrying briefly while a just-killed process's port is released. */
  server.relaunch = async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await server.launch();
      } catch (error) {
        if (!error.exited || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  };

  /** SIGKILL, as a crash; resolves once the process is gone. */
  server.kill = async () => {
    if (server.alive()) {
      server.proc.kill('SIGKILL');
      server.proc.kill('SIGCONT');
    }
    await server.gone;
  };
  server.pause = () => {
    if (server.alive()) server.proc.kill('SIGSTOP');
  };
  server.resume = () => {
    if (server.alive()) server.proc.kill('SIGCONT');
  };
  return server;
}

/**
 * Launches `server` on a free port (fresh ones from `ports()`, which sets `server.port` and any
 * other port it needs) and tries a few others when a port was taken between the check and the
 * listen.
 */
async function launchOnFreePorts(server, ports) {
  for (let attempt = 0; ; attempt++) {
    await ports();
    try {
      return await server.launch();
    } catch (error) {
      if (!error.exited || attempt >= 4) throw error;
    }
  }
}

/**
 * The handle every kind of set shares: `kill()` SIGKILLs every process (a crash of the whole
 * set), `pause()` / `resume()` SIGSTOP and SIGCONT them all (a hang), `restart()` starts the
 * whole set again, empty, on the same ports and resolves once it serves again, `stop()` kills it
 * for good and removes its folders (safe to call twice). `client()` resolves to a connected
 * node-redis client of the right kind (a cluster client on a Cluster, the master's on Sentinel);
 * `subscribers(channel)` counts the channel's subscribers on every node (a Cluster's `PUBLISH`
 * answers those of the node it ran on only).
 */
function setHandle({ mode, servers, root, logs, form }) {
  return {
    mode,
    logs,
    servers,
    get pids() {
      return servers.filter((s) => s.alive()).map((s) => s.proc.pid);
    },
    async kill() {
      await Promise.all(servers.map((s) => s.kill()));
    },
    pause() {
      for (const s of servers) s.pause();
    },
    resume() {
      for (const s of servers) s.resume();
    },
    async restart() {
      await this.kill();
      for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
      for (const s of servers) await s.relaunch();
      await form();
    },
    async stop() {
      await this.kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Starts the Redis `TEST_REDIS` names (one server unless told otherwise) and resolves once it
 * serves. Resolves to `{ mode, port, url, logs, kill(), pause(), resume(), restart(), stop(),
 * client() }`: `url` is what REDIS_URL takes; on a Cluster or Sentinel each action applies to the
 * whole set (and the set's own handle has more: `startRedisCluster`, `startSentinel`). A Cluster
 * or Sentinel set started here fails over only after 5 s, so a test's short hang is not taken for
 * a failure.
 */
export async function startRedis(options = {}) {
  if (TEST_REDIS === 'cluster') return startRedisCluster({ nodeTimeoutMs: 5000, ...options });
  if (TEST_REDIS === 'sentinel') return startSentinel({ downAfterMs: 5000, ...options });
  return startOneRedis(options);
}

/**
 * Starts one private `redis-server` on a free port (or `port`) and resolves once it answers PING.
 * Resolves to `{ port, url, logs, kill(), pause(), resume(), restart(), stop(), client() }`:
 * - `kill()` SIGKILLs it (a crash) and resolves once the process is gone;
 * - `pause()` / `resume()` SIGSTOP and SIGCONT it (a hang);
 * - `restart()` starts it again on the same port, empty, and resolves once it answers PING;
 * - `stop()` kills it for good and removes its folder (safe to call twice).
 */
export async function startOneRedis({ port, timeoutMs = 10000 } = {}) {
  requireRedisServer();
  const root = mkdtempSync(path.join(tmpdir(), 'rtgw-redis-'));
  const logs = [];
  const server = serverProcess({ label: '', port, dir: root, logs, timeoutMs, conf: (p) => dataConf(p, root) });
  try {
    if (port === undefined) {
      await launchOnFreePorts(server, async () => { server.port = await freePort(); });
    } else {
      await server.launch();
    }
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const handle = setHandle({ mode: 'single', servers: [server], root, logs, form: async () => {} });
  handle.port = server.port;
  handle.url = `redis://127.0.0.1:${server.port}`;
  Object.defineProperty(handle, 'pid', { get: () => server.proc?.pid });
  handle.subscribers = async (channel) => Number((await commandOn(server.port, ['PUBSUB', 'NUMSUB', channel]))[1]);
  handle.client = async () => {
    const client = createClient({ url: handle.url, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  return handle;
}

/** The configuration every data node shares: loopback only, no persistence. */
function dataConf(port, dir, more = []) {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    `dir ${dir}`,
    'save ""',
    'appendonly no',
    'daemonize no',
    'loglevel notice',
    ...more,
  ].join('\n') + '\n';
}

/**
 * Starts a Redis Cluster of `masters` masters with `replicas` replicas each, every node a
 * `redis-server --cluster-enabled yes` in its own folder on free ports (its client port and its
 * cluster bus port, `cluster-port`), created with `redis-cli --cluster create`; resolves once
 * every node says `cluster_state:ok`, knows every other, every slot is served and every replica
 * is in sync. `nodeTimeoutMs` is `cluster-node-timeout`: a master is failed over about two of them
 * after it stops answering. Resolves to the set's handle (`startRedis`) with:
 * - `url` (`redis-cluster://127.0.0.1:P1,...`, every node a seed), `port` (the first node's),
 *   `nodes` (the processes, each with its `port`);
 * - `topology()`: every node as one node sees them, `{ id, port, master, failed, masterId, slots }`;
 * - `masters()`: the live masters that serve slots, ordered by their first slot;
 * - `masterOf(key)`: the master serving `key`'s slot;
 * - `killMaster(i or key)`: SIGKILLs a master (the i-th of `masters()`, or the one serving `key`)
 *   and resolves to what it was;
 * - `waitFailover(killed)`: resolves, with the milliseconds it took, once a replica serves the
 *   killed master's slots and every live node says `cluster_state:ok`.
 */
export async function startRedisCluster({ masters = 3, replicas = 1, nodeTimeoutMs = 1000, timeoutMs = 30000 } = {}) {
  requireRedisServer();
  const root = mkdtempSync(path.join(tmpdir(), 'rtgw-rcluster-'));
  const logs = [];
  const nodes = [];
  const count = masters * (1 + replicas);
  const conf = (node) => (port) => dataConf(port, node.dir, [
    'cluster-enabled yes',
    `cluster-port ${node.busPort}`,
    `cluster-config-file ${path.join(node.dir, 'nodes.conf')}`,
    `cluster-node-timeout ${nodeTimeoutMs}`,
    // A replica whose master died takes over however long it was cut off: the tests kill masters.
    'cluster-replica-validity-factor 0',
  ]);
  try {
    for (let i = 0; i < count; i++) {
      const node = serverProcess({ label: `node${i}`, dir: path.join(root, `node${i}`), logs, timeoutMs, conf: (p) => conf(node)(p) });
      await launchOnFreePorts(node, async () => {
        node.port = await freePort();
        do node.busPort = await freePort(); while (node.busPort === node.port);
      });
      nodes.push(node);
    }
  } catch (error) {
    for (const node of nodes) await node.kill();
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  const alive = () => nodes.filter((n) => n.alive());

  /** `redis-cli --cluster create` on the fresh nodes, then waits until all is served. */
  async function form() {
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await new Promise((resolve, reject) => {
      execFile(REDIS_CLI_BIN, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
        { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
          if (error?.code === 'ENOENT') reject(new Error(`${REDIS_CLI_BIN} not found: it comes with redis-server (Debian/Ubuntu: apt-get install redis-server)`));
          else if (error) reject(new Error(`redis-cli --cluster create failed: ${error.message}\n${stdout}\n${stderr}`));
          else resolve();
        });
    });
    await until(async () => {
      for (const node of nodes) {
        const info = fields(await commandOn(node.port, ['CLUSTER', 'INFO'], 1000));
        if (info.cluster_state !== 'ok' || info.cluster_slots_ok !== '16384' || info.cluster_known_nodes !== String(count)) {
          return `node ${node.port}: ${JSON.stringify(info)}`;
        }
        const replication = fields(await commandOn(node.port, ['INFO', 'replication'], 1000));
        if (replication.role === 'slave' && replication.master_link_status !== 'up') return `replica ${node.port} not in sync`;
      }
      const seen = await handle.topology();
      if (seen.some((n) => n.failed || n.handshake)) return 'a node is not yet known by all';
      return true;
    }, timeoutMs, 'the Redis Cluster serving every slot');
  }

  const handle = setHandle({ mode: 'cluster', servers: nodes, root, logs, form });
  Object.assign(handle, {
    nodes,
    port: nodes[0].port,
    url: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async topology(from = alive()[0]) {
      const text = await commandOn(from.port, ['CLUSTER', 'NODES'], 1000);
      return text.trim().split('\n').map((line) => {
        const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
        const flagList = flags.split(',');
        return {
          id,
          port: Number(address.split('@')[0].split(':').pop()),
          master: flagList.includes('master'),
          failed: flagList.includes('fail') || flagList.includes('fail?'),
          handshake: flagList.includes('handshake') || flagList.includes('noaddr'),
          masterId: masterId === '-' ? null : masterId,
          slots: slots.filter((s) => !s.startsWith('[')).map((s) => s.split('-').map(Number)).map(([a, b = a]) => [a, b]),
        };
      });
    },
    async masters() {
      const seen = await handle.topology();
      return seen.filter((n) => n.master && !n.failed && n.slots.length > 0).sort((a, b) => a.slots[0][0] - b.slots[0][0]);
    },
    async masterOf(key) {
      const slot = await commandOn(alive()[0].port, ['CLUSTER', 'KEYSLOT', key], 1000);
      const found = (await handle.masters()).find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!found) throw new Error(`no live master serves slot ${slot} (key ${key})`);
      return found;
    },
    async killMaster(which = 0) {
      const master = typeof which === 'string' ? await handle.masterOf(which) : (await handle.masters())[which];
      if (!master) throw new Error(`no master ${which}`);
      await nodes.find((n) => n.port === master.port).kill();
      return master;
    },
    async waitFailover(killed, waitMs = 20000) {
      const started = Date.now();
      const slot = killed.slots[0][0];
      await until(async () => {
        for (const node of alive()) {
          const info = fields(await commandOn(node.port, ['CLUSTER', 'INFO'], 1000));
          if (info.cluster_state !== 'ok') return `node ${node.port}: cluster_state ${info.cluster_state}`;
          const owner = (await handle.topology(node)).find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
          if (!owner || owner.id === killed.id) return `node ${node.port}: slot ${slot} still on ${owner?.port}`;
        }
        return true;
      }, waitMs, `a replica taking over the slots of the master on port ${killed.port}`);
      return Date.now() - started;
    },
    async subscribers(channel) {
      let total = 0;
      for (const node of alive()) total += Number((await commandOn(node.port, ['PUBSUB', 'NUMSUB', channel]))[1]);
      return total;
    },
    async client() {
      const client = createCluster({
        rootNodes: alive().map((n) => ({ url: `redis://127.0.0.1:${n.port}` })),
        defaults: { socket: { reconnectStrategy: false } },
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
  });
  try {
    await form();
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

/**
 * Starts a master, one replica and three Sentinels (`redis-server --sentinel`, quorum 2) watching
 * it as `name`, on free ports; resolves once every Sentinel knows the replica and the two other
 * Sentinels and the replica is in sync. A master that stops answering is failed over
 * `downAfterMs` later (plus the Sentinels' vote). Resolves to the set's handle (`startRedis`) with:
 * - `url` (`redis-sentinel://127.0.0.1:S1,...?sentinelServiceName=name`), `port` (the first
 *   master's), `name`, `data` (master and replica processes), `sentinels`;
 * - `master()`: the port the Sentinels name as master;
 * - `killMaster()`: SIGKILLs the current master and resolves to its port;
 * - `failover()`: `SENTINEL FAILOVER` (a planned switch) and resolves to the old master's port;
 * - `waitNewMaster(old)`: resolves to `{ port, ms }` once every Sentinel names another master
 *   than `old` and it says it is one;
 * - `waitSynced()`: resolves once every live data node but the master is its replica, in sync.
 */
export async function startSentinel({ name = 'rtgw', downAfterMs = 1000, failoverTimeoutMs = 5000, timeoutMs = 30000 } = {}) {
  requireRedisServer();
  const root = mkdtempSync(path.join(tmpdir(), 'rtgw-sentinel-'));
  const logs = [];
  const data = [];
  const sentinels = [];
  const dataConfOf = (node, replicaOf) => (port) => dataConf(port, node.dir, replicaOf ? [`replicaof 127.0.0.1 ${replicaOf.port}`] : []);
  const sentinelConf = (node) => (port) => [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${node.dir}`,
    'daemonize no',
    'loglevel notice',
    `sentinel monitor ${name} 127.0.0.1 ${data[0].port} 2`,
    `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
    `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
    `sentinel parallel-syncs ${name} 1`,
  ].join('\n') + '\n';
  const fresh = async (server) => launchOnFreePorts(server, async () => { server.port = await freePort(); });
  try {
    const master = serverProcess({ label: 'master', dir: path.join(root, 'master'), logs, timeoutMs, conf: (p) => dataConfOf(master)(p) });
    await fresh(master);
    data.push(master);
    const replica = serverProcess({ label: 'replica', dir: path.join(root, 'replica'), logs, timeoutMs, conf: (p) => dataConfOf(replica, master)(p) });
    await fresh(replica);
    data.push(replica);
    for (let i = 0; i < 3; i++) {
      const sentinel = serverProcess({ label: `sentinel${i}`, dir: path.join(root, `sentinel${i}`), logs, timeoutMs, sentinel: true, conf: (p) => sentinelConf(sentinel)(p) });
      await fresh(sentinel);
      sentinels.push(sentinel);
    }
  } catch (error) {
    for (const server of [...data, ...sentinels]) await server.kill();
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  const askSentinels = async (args) => {
    for (const sentinel of sentinels.filter((s) => s.alive())) {
      try {
        return await commandOn(sentinel.port, args, 1000);
      } catch {
        // the next one
      }
    }
    throw new Error(`no Sentinel answered ${args.join(' ')}`);
  };
  const masterPortFrom = async (sentinel) => Number((await commandOn(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name], 1000))?.[1]);

  async function waitSynced(waitMs = timeoutMs) {
    await until(async () => {
      const ports = new Set();
      for (const sentinel of sentinels.filter((s) => s.alive())) {
        const flat = await commandOn(sentinel.port, ['SENTINEL', 'MASTER', name], 1000);
        const master = Object.fromEntries(flat.map((v, i) => (i % 2 ? null : [v, flat[i + 1]])).filter(Boolean));
        const liveReplicas = data.filter((d) => d.alive()).length - 1;
        if (master.flags !== 'master' || Number(master['num-other-sentinels']) < sentinels.filter((s) => s.alive()).length - 1) {
          return `sentinel ${sentinel.port}: ${JSON.stringify(master)}`;
        }
        const known = (await commandOn(sentinel.port, ['SENTINEL', 'REPLICAS', name], 1000))
          .map((flatReplica) => Object.fromEntries(flatReplica.map((v, i) => (i % 2 ? null : [v, flatReplica[i + 1]])).filter(Boolean)))
          .filter((r) => r.flags === 'slave' && r['master-link-status'] === 'ok');
        if (known.length < liveReplicas) return `sentinel ${sentinel.port} sees ${known.length} healthy replicas of ${liveReplicas}`;
        ports.add(Number(master.port));
      }
      if (ports.size !== 1) return `the Sentinels disagree on the master: ${[...ports]}`;
      const [port] = ports;
      for (const node of data.filter((d) => d.alive())) {
        const replication = fields(await commandOn(node.port, ['INFO', 'replication'], 1000));
        if (node.port === port && replication.role !== 'master') return `master ${port} says ${replication.role}`;
        if (node.port !== port && (replication.role !== 'slave' || Number(replication.master_port) !== port || replication.master_link_status !== 'up')) {
          return `replica ${node.port}: ${replication.role} of ${replication.master_port}, link ${replication.master_link_status}`;
        }
      }
      return true;
    }, waitMs, 'the Sentinel set in sync');
  }

  const handle = setHandle({ mode: 'sentinel', servers: [...data, ...sentinels], root, logs, form: () => waitSynced() });
  // A restart begins again from the first master: its replica and the Sentinels are told so by
  // their configuration files, written afresh.
  Object.assign(handle, {
    name,
    data,
    sentinels,
    port: data[0].port,
    url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}?sentinelServiceName=${name}`,
    master: async () => Number((await askSentinels(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name]))[1]),
    async killMaster() {
      const port = await handle.master();
      await data.find((d) => d.port === port).kill();
      return port;
    },
    async failover() {
      const port = await handle.master();
      const answer = await askSentinels(['SENTINEL', 'FAILOVER', name]);
      if (answer !== 'OK') throw new Error(`SENTINEL FAILOVER answered ${answer}`);
      return port;
    },
    async waitNewMaster(old, waitMs = 20000) {
      const started = Date.now();
      let port;
      await until(async () => {
        const named = new Set();
        for (const sentinel of sentinels.filter((s) => s.alive())) named.add(await masterPortFrom(sentinel));
        if (named.size !== 1 || named.has(old)) return `the Sentinels name ${[...named]}`;
        [port] = named;
        const replication = fields(await commandOn(port, ['INFO', 'replication'], 1000));
        return replication.role === 'master' || `${port} says ${replication.role}`;
      }, waitMs, `a new master instead of port ${old}`);
      return { port, ms: Date.now() - started };
    },
    waitSynced,
    subscribers: async (channel) => Number((await commandOn(await handle.master(), ['PUBSUB', 'NUMSUB', channel]))[1]),
    async client() {
      const client = createClient({ url: `redis://127.0.0.1:${await handle.master()}`, socket: { reconnectStrategy: false } });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
  });
  try {
    await waitSynced();
  } catch (error) {
    await handle.stop();
    throw error;
  }
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

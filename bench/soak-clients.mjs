// One process of the one-hour soak's clients (bench/soak-hour.mjs forks several, so that no
// process holds more than a few thousand sockets). Its first argument is a JSON description of
// what it holds; it answers its parent's messages ({cmd}) with one message each ({re, ...}).
//
// kinds:
//   population  `count` subscribed clients that stay, reconnect when dropped and subscribe again:
//               `front: 'sio'` socket.io-client on /workflow (`transports` as given; the
//               official client reconnects by itself), or `front: 'hub'` the plain WebSocket /ws
//               (reconnecting as seed 001's frontend does: after 1 s ± 50 %). Client i subscribes
//               to room `${prefix}${i % rooms}` and sends from `addresses[i % addresses.length]`.
//   relay       `count` socket.io-client clients on the Socket.IO namespace /ws, in `rooms` chat
//               rooms, each sending a `send_message` every `everyMs`.
//   churn       opens `perSecond` short-lived clients a second on every front (/workflow over
//               websocket and over polling, /realtime, /ws, /, the plain /ws), each closing after
//               `minMs`..`maxMs`, some cleanly and some by dropping the connection.
//
// Commands: `stats` (counters), `drop` (every socket of a population loses its TCP connection at
// once; the answer comes at once, and `stats` then tells how many are back), `stop`.

import http from 'node:http';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const config = JSON.parse(process.argv[2]);
const { url, secret, tenant } = config;
const wsUrl = url.replace(/^http/, 'ws');
const token = (sub) => jwt.sign({ sub, tenantId: tenant }, secret, { expiresIn: '3h' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (ms) => ms * (0.5 + Math.random());

/**
 * One agent per source address, for socket.io-client's polling requests. Clients that upgrade to
 * WebSocket close each polling connection after its request (`keepAlive: false`): kept alive, the
 * idle connection of each of 10,000 upgraded clients would hold one of the gateway's files until
 * its idle timeout, and a storm would double the files the gateway needs.
 */
const agents = new Map();
const agentFor = (localAddress, keepAlive = false) => {
  const key = `${localAddress}/${keepAlive}`;
  if (!agents.has(key)) agents.set(key, new http.Agent({ keepAlive, localAddress, maxSockets: Infinity, maxFreeSockets: 64 }));
  return agents.get(key);
};

const counters = { received: 0, errors: {} };
const countError = (what) => (counters.errors[what] = (counters.errors[what] ?? 0) + 1);
/** A connect_error as text, with its cause (a transport's status or socket error) when it has one. */
const describe = (e) => {
  const cause = e.description?.message ?? e.description?.code ?? e.description;
  const body = typeof e.context?.responseText === 'string' ? ` ${e.context.responseText.slice(0, 80)}` : '';
  return `${e.message}${cause !== undefined && typeof cause !== 'object' ? ` (${String(cause).slice(0, 60)})` : ''}${body}`;
};

// ---------------------------------------------------------------------------------------------
// population

/**
 * A client's state: `gen` counts its connections; it is `subscribed` once its subscription of the
 * current connection is confirmed, and `heard` once an update came through that subscription.
 */
function populationClient(i) {
  const room = `${config.prefix}${i % config.rooms}`;
  const localAddress = config.addresses[i % config.addresses.length];
  const state = { gen: 0, connected: false, subscribed: false, heard: false, received: 0, reconnects: 0 };
  const heard = () => {
    counters.received++;
    state.received++;
    if (state.subscribed && !state.heard) {
      state.heard = true;
      mark(state, 'heard');
    }
  };
  if (config.front === 'sio') {
    const socket = io(`${url}/workflow`, {
      auth: { token: token(`${config.prefix}-u${i}`) },
      transports: config.transports,
      upgrade: config.transports.includes('websocket'),
      forceNew: true,
      localAddress,
      agent: agentFor(localAddress, !config.transports.includes('websocket')),
      timeout: 20_000,
    });
    socket.on('connect', () => {
      state.gen++;
      state.connected = true;
      mark(state, 'connected');
    });
    socket.on('disconnect', () => lost(state));
    socket.on('connect_error', (e) => countError(`connect_error: ${describe(e)}`));
    socket.io.on('reconnect_attempt', () => state.reconnects++);
    socket.on('connected', () => {
      const gen = state.gen;
      socket.timeout(30_000).emit('subscribe', { type: 'execution', resourceId: room }, (err, answer) => {
        if (err || answer?.error) return countError(`subscribe: ${err?.message ?? answer.error.message}`);
        if (gen !== state.gen || !state.connected) return;
        state.subscribed = true;
        mark(state, 'subscribed');
      });
    });
    socket.on('update', (u) => u?.payload?.soak && heard());
    state.drop = () => {
      const transport = socket.io.engine?.transport;
      if (transport?.ws?._socket) transport.ws._socket.destroy();
      else socket.io.engine?.close();
    };
  } else {
    let ws;
    const open = () => {
      ws = new WebSocket(`${wsUrl}/ws?token=${token(`${config.prefix}-u${i}`)}`, { localAddress });
      ws.on('open', () => {
        state.gen++;
        state.connected = true;
        mark(state, 'connected');
        ws.send(JSON.stringify({ type: 'subscribe', data: { channel: `executions:${room}` } }));
      });
      ws.on('message', (raw) => {
        const message = JSON.parse(raw);
        if (message.type === 'subscribed' && !state.subscribed) {
          state.subscribed = true;
          mark(state, 'subscribed');
        } else if (message.data?.soak) heard();
        else if (message.type === 'error') countError(`hub error: ${message.data?.message}`);
      });
      ws.on('error', (e) => countError(`hub: ${e.message.slice(0, 60)}`));
      ws.on('close', () => {
        lost(state);
        if (!stopping) setTimeout(() => {
          state.reconnects++;
          open();
        }, jitter(1000));
      });
    };
    open();
    state.drop = () => ws._socket?.destroy();
  }
  return state;
}

/** How many clients are in each stage now. */
const live = { connected: 0, subscribed: 0, heard: 0 };
/** The current drop: when every client was back in each stage, in ms after it. */
let drop = null;
function mark(state, stage) {
  live[stage]++;
  if (!drop) return;
  const ms = Math.round(performance.now() - drop.at);
  if (state.since && state.since[stage] === undefined) {
    state.since[stage] = ms;
    drop.times[stage].push(ms);
  }
  if (live[stage] === clients.length && drop[`${stage}Ms`] === undefined) drop[`${stage}Ms`] = ms;
}
/** A client lost its connection: it is in no stage until it is back. */
function lost(state) {
  for (const stage of ['connected', 'subscribed', 'heard']) {
    if (state[stage]) live[stage]--;
    state[stage] = false;
  }
}

// ---------------------------------------------------------------------------------------------
// relay

function relayClient(i) {
  const room = `chat.r${i % config.rooms}`;
  const localAddress = config.addresses[i % config.addresses.length];
  const state = { sent: 0, acked: 0, refused: 0, received: 0, joined: false };
  const socket = io(`${url}/ws`, { auth: { token: token(`relay-u${i}`) }, transports: ['websocket'], forceNew: true, localAddress });
  socket.on('connection.confirmed', () => {
    socket.timeout(30_000).emit('join_room', { room }, (err, answer) => {
      if (err || answer?.error) return countError(`join_room: ${err?.message ?? answer.error.message}`);
      state.joined = true;
    });
  });
  socket.on('connect_error', (e) => countError(`connect_error: ${describe(e)}`));
  socket.on('disconnect', (reason) => countError(`relay disconnect: ${reason}`));
  socket.on('soak.chat', () => {
    counters.received++;
    state.received++;
  });
  state.send = () => {
    if (!state.joined || !socket.connected || paused) return;
    state.sent++;
    socket.timeout(30_000).emit('send_message', { event: 'soak.chat', payload: { n: state.sent }, rooms: [room] }, (err, answer) => {
      if (err || answer?.error) {
        state.refused++;
        return countError(`send_message: ${err?.message ?? answer.error.type}`);
      }
      state.acked++;
    });
  };
  return state;
}

// ---------------------------------------------------------------------------------------------
// churn

const churn = { opened: 0, welcomed: 0, failed: 0, closed: 0, live: 0, byKind: {} };
const CHURN_KINDS = ['workflow-ws', 'workflow-polling', 'realtime', 'ws-namespace', 'notifications', 'hub', 'hub', 'workflow-ws'];
let churnIndex = 0;

function churnClient() {
  const n = churnIndex++;
  const kind = CHURN_KINDS[n % CHURN_KINDS.length];
  const localAddress = config.addresses[n % config.addresses.length];
  const lifetime = config.minMs + Math.random() * (config.maxMs - config.minMs);
  const abrupt = Math.random() < 0.3;
  churn.opened++;
  churn.live++;
  churn.byKind[kind] = (churn.byKind[kind] ?? 0) + 1;
  let done = false;
  const finished = (ok) => {
    if (done) return;
    done = true;
    churn.live--;
    if (ok) churn.closed++;
    else churn.failed++;
  };
  if (kind === 'hub') {
    const ws = new WebSocket(`${wsUrl}/ws?token=${token(`churn-u${n}`)}`, { localAddress });
    ws.on('open', () => {
      churn.welcomed++;
      ws.send(JSON.stringify({ type: 'subscribe', data: { channel: 'executions:churn' } }));
      setTimeout(() => (abrupt ? ws._socket?.destroy() : ws.close()), lifetime);
    });
    ws.on('message', (raw) => JSON.parse(raw).data?.soak && counters.received++);
    ws.on('error', (e) => countError(`churn hub: ${e.message.slice(0, 60)}`));
    ws.on('close', () => finished(true));
    ws.on('unexpected-response', (_req, res) => {
      countError(`churn hub: HTTP ${res.statusCode}`);
      finished(false);
    });
    return;
  }
  const [namespace, welcome, transports] = {
    'workflow-ws': ['/workflow', 'connected', ['websocket']],
    'workflow-polling': ['/workflow', 'connected', ['polling']],
    realtime: ['/realtime', 'connection:success', ['polling', 'websocket']],
    'ws-namespace': ['/ws', 'connection.confirmed', ['polling', 'websocket']],
    notifications: ['/', 'connect', ['websocket']],
  }[kind];
  const socket = io(`${url}${namespace}`, {
    auth: { token: token(`churn-u${n}`) },
    transports,
    upgrade: transports.length > 1,
    forceNew: true,
    reconnection: false,
    localAddress,
    agent: agentFor(localAddress),
    timeout: 20_000,
  });
  socket.once(welcome, () => {
    churn.welcomed++;
    if (namespace === '/workflow') socket.emit('subscribe', { type: 'execution', resourceId: 'churn' });
    if (namespace === '/realtime') socket.emit('subscribe:dashboard');
    if (namespace === '/ws') socket.emit('join_room', { room: 'global.general' });
    setTimeout(() => {
      if (abrupt && socket.io.engine?.transport?.ws?._socket) socket.io.engine.transport.ws._socket.destroy();
      else socket.disconnect();
    }, lifetime);
  });
  socket.on('update', () => counters.received++);
  socket.on('connect_error', (e) => {
    countError(`churn ${kind}: ${describe(e)}`);
    finished(false);
  });
  socket.on('disconnect', () => finished(true));
}

// ---------------------------------------------------------------------------------------------

let clients = [];
let stopping = false;
let paused = false;

if (config.kind === 'population') {
  for (let i = 0; i < config.count; i++) {
    clients.push(populationClient(config.first + i));
    if (i % 100 === 99) await sleep(config.openPauseMs ?? 100);
  }
} else if (config.kind === 'relay') {
  for (let i = 0; i < config.count; i++) {
    clients.push(relayClient(config.first + i));
    if (i % 50 === 49) await sleep(100);
  }
  setInterval(() => {
    // Each client sends once per `everyMs`, spread over the period.
    const slice = Math.max(1, Math.round(clients.length / (config.everyMs / 100)));
    for (let k = 0; k < slice; k++) clients[(config.cursor = ((config.cursor ?? 0) + 1) % clients.length)].send();
  }, 100);
} else if (config.kind === 'churn') {
  setInterval(() => {
    if (paused) return;
    for (let k = 0; k < config.perSecond / 10; k++) churnClient();
  }, 100);
}

const count = (key) => clients.reduce((n, c) => n + (c[key] ? 1 : 0), 0);
const sum = (key) => clients.reduce((n, c) => n + (c[key] ?? 0), 0);

process.on('message', ({ cmd, id }) => {
  const answer = (body) => process.send({ re: id, ...body });
  if (cmd === 'stats') {
    const out = { received: counters.received, errors: counters.errors, clients: clients.length };
    if (config.kind === 'population') Object.assign(out, { ...live, reconnects: sum('reconnects'), drop });
    if (config.kind === 'relay') Object.assign(out, { joined: count('joined'), sent: sum('sent'), acked: sum('acked'), refused: sum('refused') });
    if (config.kind === 'churn') Object.assign(out, { churn });
    answer(out);
  } else if (cmd === 'drop') {
    drop = { at: performance.now(), times: { connected: [], subscribed: [], heard: [] }, reconnectsBefore: clients.reduce((n, c) => n + c.reconnects, 0) };
    for (const c of clients) {
      c.since = {};
      c.drop();
    }
    answer({ dropped: clients.length });
  } else if (cmd === 'pause' || cmd === 'resume') {
    paused = cmd === 'pause';
    answer({ paused });
  } else if (cmd === 'stop') {
    stopping = true;
    answer({ stopping });
    setTimeout(() => process.exit(0), 100);
  }
});
process.send({ ready: true, kind: config.kind });

// The reference for the plain WebSocket endpoint: the Go hub of seed 001 on Node's `ws` package,
// doing the work the gateway's hub.yaml does for the benchmarks' traffic:
// - upgrade: a JWT from ?token= or Authorization: Bearer, verified (HS256) before the upgrade;
// - messages {type, data}: ping -> pong, subscribe {channel, filters} -> subscribed (channel
//   families checked, users:{id} only for oneself), unsubscribe; answers in {type, timestamp, data};
// - POST /api/v1/events: the API key, a bounded JSON body, validation, then each event to its
//   channels' clients of that tenant whose filters it passes, as one envelope serialized once;
// - heartbeat: a ping every 54 s, a client silent for 60 s is terminated; a client whose send
//   buffer passes 4 MiB is closed (the hub's full send channel).
// Prints {"listening": port} on stdout; SIGUSR2 runs a full GC (node --expose-gc).

import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';
import { publishHandler } from './publish-api.mjs';
import { WebSocketServer } from 'ws';

const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEYS;
const MAX_BUFFERED = 4 * 1024 * 1024;
const CHANNEL = /^(executions|approvals|executions:[^:]{1,200}|workflows:[^:]{1,200}|users:[^:]{1,200})$/;

/** tenant:channel -> Set of clients. */
const channels = new Map();
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });

const http = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/v1/events') return publish(req, res);
  res.writeHead(404).end();
});

http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const token = url.searchParams.get('token') || req.headers.authorization?.replace(/^Bearer /i, '');
  let user;
  try {
    user = jwt.verify(token, secret, { algorithms: ['HS256'] });
  } catch {
    socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":{"type":"auth","message":"Invalid authentication token"}}');
    return;
  }
  if (url.pathname !== '/ws') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => serve(ws, user));
});

function envelope(type, data) {
  return JSON.stringify({ type, timestamp: new Date().toISOString(), data });
}

function serve(ws, user) {
  const client = { ws, tenantId: user.tenantId, userId: user.sub, subscriptions: new Map(), alive: true };
  ws.on('pong', () => (client.alive = true));
  ws.on('message', (raw, binary) => {
    client.alive = true;
    if (binary) return ws.send(envelope('error', { type: 'validation', message: 'binary frames are not supported' }));
    let message;
    try {
      message = JSON.parse(raw.toString('utf8'));
    } catch {
      return ws.send(envelope('error', { type: 'validation', message: 'the message is not valid JSON' }));
    }
    const data = message?.data ?? {};
    switch (message?.type) {
      case 'ping':
        return ws.send(envelope('pong', { timestamp: new Date().toISOString() }));
      case 'subscribe': {
        const { channel, filters = {} } = data;
        if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
          return ws.send(envelope('error', { type: 'validation', message: 'unknown channel', event: 'subscribe' }));
        }
        if (channel.startsWith('users:') && channel !== `users:${client.userId}`) {
          return ws.send(envelope('error', { type: 'permission', message: 'not your channel', event: 'subscribe' }));
        }
        for (const key of ['workflow_ids', 'execution_ids', 'statuses']) {
          if (filters[key] !== undefined && !Array.isArray(filters[key])) {
            return ws.send(envelope('error', { type: 'validation', message: `filters.${key} must be an array`, event: 'subscribe' }));
          }
        }
        const key = `${client.tenantId}:${channel}`;
        if (!channels.has(key)) channels.set(key, new Set());
        channels.get(key).add(client);
        client.subscriptions.set(channel, filters);
        return ws.send(envelope('subscribed', { channel, filters }));
      }
      case 'unsubscribe': {
        channels.get(`${client.tenantId}:${data.channel}`)?.delete(client);
        client.subscriptions.delete(data.channel);
        return ws.send(envelope('unsubscribed', { channel: data.channel }));
      }
      default:
        return ws.send(envelope('error', { type: 'validation', message: `unknown event \`${message?.type}\`` }));
    }
  });
  ws.on('close', () => {
    for (const channel of client.subscriptions.keys()) channels.get(`${client.tenantId}:${channel}`)?.delete(client);
  });
}

setInterval(() => {
  for (const ws of wss.clients) ws.ping();
}, 54_000).unref();

function passes(filters, data) {
  const test = (list, value) => !Array.isArray(list) || list.length === 0 || list.includes(value);
  return test(filters.workflow_ids, data.workflow_id ?? data.workflowId)
    && test(filters.execution_ids, data.execution_id ?? data.executionId)
    && test(filters.statuses, data.status);
}

function deliver({ type, tenantId, data, timestamp = new Date().toISOString() }) {
  const executionId = data.execution_id ?? data.executionId;
  const workflowId = data.workflow_id ?? data.workflowId;
  const userId = data.user_id ?? data.userId;
  const names = type.startsWith('approval.') ? ['approvals'] : ['executions'];
  if (executionId) names.push(`executions:${executionId}`);
  if (workflowId && !type.startsWith('approval.')) names.push(`workflows:${workflowId}`);
  if (userId) names.push(`users:${userId}`);
  let text;
  const sent = new Set();
  for (const name of names) {
    const members = channels.get(`${tenantId}:${name}`);
    if (!members) continue;
    for (const client of members) {
      if (sent.has(client) || !passes(client.subscriptions.get(name) ?? {}, data)) continue;
      sent.add(client);
      if (client.ws.bufferedAmount > MAX_BUFFERED) {
        client.ws.close(1008, 'send buffer full');
        continue;
      }
      text ??= JSON.stringify({ type, timestamp, data });
      client.ws.send(text);
    }
  }
}

const publish = publishHandler({ apiKey, deliver });

process.on('SIGUSR2', () => globalThis.gc?.());
http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ listening: http.address().port })));

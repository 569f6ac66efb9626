// The reference: the seed's NestJS /workflow gateway (seed 000) on plain socket.io 4, without
// NestJS's own overhead, doing the work the gateway's workflow.yaml does for the benchmarks'
// traffic:
// - connect: verify the JWT (HS256) from the handshake, require tenantId, join the tenant's room,
//   emit `connected`;
// - `subscribe` / `ping`: validate the payload, a per-socket rate limit, join the room, answer the
//   ack and emit `subscription_confirmed` + `initial_data` (or `pong`);
// - POST /api/v1/events: the API key, a bounded JSON body, validation of each event, last-known
//   state (executions, workflows, activity), then `update` to the union of the event's rooms.
// Prints {"listening": port} on stdout. SIGUSR2 runs a full GC (start node with --expose-gc), so
// memory can be read without garbage.

import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';
import { publishHandler } from './publish-api.mjs';
import { Server } from 'socket.io';

const secret = process.env.JWT_SECRET;
const apiKey = process.env.API_KEYS;

const http = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/v1/events') return publish(req, res);
  res.writeHead(404).end();
});
const io = new Server(http, { pingInterval: 25000, pingTimeout: 60000, maxHttpBufferSize: 1e6 });
const workflow = io.of('/workflow');

workflow.use((socket, next) => {
  const { auth, query, headers } = socket.handshake;
  const token = auth?.token || query?.token || headers.authorization?.replace(/^Bearer /i, '');
  try {
    const user = jwt.verify(token, secret, { algorithms: ['HS256'] });
    if (!user.tenantId) return next(new Error('Authentication token has no tenantId'));
    socket.data.user = user;
    next();
  } catch {
    next(new Error('Invalid authentication token'));
  }
});

/** A per-socket token bucket of `max` per minute, as the gateway's per-event limits. */
function limiter(max) {
  let tokens = max;
  let at = Date.now();
  return () => {
    const now = Date.now();
    tokens = Math.min(max, tokens + ((now - at) * max) / 60000);
    at = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

const TYPES = new Set(['workflow', 'execution', 'logs', 'metrics', 'tenant_activity']);
const state = new Map(); // tenant -> {executions: Map, workflows: Map, activity: []}
const tenantState = (t) => {
  let s = state.get(t);
  if (!s) state.set(t, (s = { executions: new Map(), workflows: new Map(), activity: [] }));
  return s;
};

workflow.on('connection', (socket) => {
  const { sub: userId, tenantId } = socket.data.user;
  const limits = { subscribe: limiter(10), ping: limiter(30) };
  socket.data.subscriptions = new Set();
  socket.join(`${tenantId}:tenant`);
  socket.emit('connected', { clientId: socket.id, userId, tenantId, timestamp: new Date().toISOString() });

  const refuse = (event, type, message, ack) => {
    const error = { message, type, timestamp: new Date().toISOString(), event };
    socket.emit('error', error);
    ack?.({ error });
  };
  socket.on('subscribe', (payload, ack) => {
    if (!limits.subscribe()) return refuse('subscribe', 'rate_limit', 'Too many requests', ack);
    if (typeof payload !== 'object' || payload === null || !TYPES.has(payload.type)) {
      return refuse('subscribe', 'validation', 'type must be one of workflow, execution, logs, metrics, tenant_activity', ack);
    }
    const { type, resourceId } = payload;
    if (resourceId !== undefined && (typeof resourceId !== 'string' || !resourceId || resourceId.length > 200)) {
      return refuse('subscribe', 'validation', 'resourceId must be a string of 1 to 200 characters', ack);
    }
    const key = type === 'workflow' || type === 'execution' ? `${type}:${resourceId ?? '*'}` : type;
    socket.join(`${tenantId}:${key}`);
    socket.data.subscriptions.add(key);
    const now = new Date().toISOString();
    const reply = { type, resourceId, subscriptionKey: key, timestamp: now };
    socket.emit('subscription_confirmed', reply);
    ack?.(reply);
    const store = tenantState(tenantId)[type === 'workflow' ? 'workflows' : 'executions'];
    socket.emit('initial_data', { type, data: resourceId ? (store.get(resourceId) ?? null) : [...store.values()], timestamp: now });
  });
  socket.on('ping', (payload, ack) => {
    if (!limits.ping()) return refuse('ping', 'rate_limit', 'Too many requests', ack);
    const reply = { timestamp: new Date().toISOString() };
    socket.emit('pong', reply);
    ack?.(reply);
  });
});

function deliver({ type, tenantId, data, timestamp = new Date().toISOString() }) {
  const s = tenantState(tenantId);
  const { executionId, workflowId } = data;
  s.executions.set(executionId, { ...s.executions.get(executionId), ...data, lastEvent: type, updatedAt: timestamp });
  if (workflowId) {
    s.workflows.set(workflowId, { ...s.workflows.get(workflowId), workflowId, lastExecution: { executionId, status: data.status, lastEvent: type, updatedAt: timestamp } });
  }
  s.activity.push({ type, data, timestamp });
  if (s.activity.length > 50) s.activity.shift();
  const rooms = [`${tenantId}:execution:${executionId}`, `${tenantId}:execution:*`, `${tenantId}:tenant_activity`];
  if (workflowId) rooms.push(`${tenantId}:workflow:${workflowId}`);
  workflow.to(rooms).emit('update', { type, payload: data, timestamp });
}

const publish = publishHandler({ apiKey, deliver, check: (e) => (/^(execution|step)\./.test(e.type) && typeof e.data.executionId !== 'string' ? '.data.executionId is required' : null) });

process.on('SIGUSR2', () => globalThis.gc?.());
http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ listening: http.address().port })));

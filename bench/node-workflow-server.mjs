// The reference: what the seed's NestJS /workflow gateway did on connect, on plain socket.io
// (no NestJS, which would only add to its cost): verify the JWT from the handshake, refuse
// without one, join the tenant's room, keep a per-socket subscription set, emit `connected`.
// Prints {"listening": port} on stdout. SIGUSR2 runs a full GC, so memory is measured without
// garbage (start node with --expose-gc).

import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';
import { Server } from 'socket.io';

const secret = process.env.JWT_SECRET;
const http = createServer();
const io = new Server(http, { pingInterval: 25000, pingTimeout: 60000, maxHttpBufferSize: 1e6 });
const workflow = io.of('/workflow');

workflow.use((socket, next) => {
  const { auth, query, headers } = socket.handshake;
  const token = auth?.token || query?.token || headers.authorization?.replace(/^Bearer /i, '');
  try {
    socket.data.user = jwt.verify(token, secret, { algorithms: ['HS256'] });
    next();
  } catch {
    next(new Error('Invalid authentication token'));
  }
});

workflow.on('connection', (socket) => {
  const { sub: userId, tenantId } = socket.data.user;
  socket.data.subscriptions = new Set();
  socket.join(`tenant:${tenantId}`);
  socket.emit('connected', { clientId: socket.id, userId, tenantId, timestamp: new Date().toISOString() });
});

process.on('SIGUSR2', () => globalThis.gc?.());
http.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ listening: http.address().port })));

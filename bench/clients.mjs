// A child process holding `count` idle socket.io-client websockets to `url`/workflow. Tells its
// parent "ready" once every one has received `connected`, then waits to be killed.

import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';

const [url, count, secret] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const token = jwt.sign({ sub: 'bench-user', tenantId: 'bench-tenant' }, secret, { expiresIn: '2h' });
let connected = 0;
for (let i = 0; i < count; i++) {
  const socket = io(`${url}/workflow`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
  socket.once('connected', () => {
    if (++connected === count) process.send('ready');
  });
  socket.on('connect_error', (e) => {
    console.error(`connect_error: ${e.message}`);
    process.exit(1);
  });
  // Open connections in steps, as real clients arrive, rather than all in one tick.
  if (i % 250 === 249) await new Promise((r) => setTimeout(r, 25));
}

// A child process holding `count` socket.io-client clients on long-polling only (no upgrade),
// subscribed to execution `e0` on /workflow. Tells its parent {ready} once all are subscribed,
// then answers "stats" / "reset" messages with what they received: deliveries are events whose
// payload carries `sentAt` (µs since the epoch), timed into the same histogram as bench/loadgen.

import { io } from 'socket.io-client';

const [url, count, token] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const PER_OCTAVE = 64;
let received = 0;
let latency = new Map();
let subscribed = 0;

for (let i = 0; i < count; i++) {
  const socket = io(`${url}/workflow`, { auth: { token }, transports: ['polling'], upgrade: false, forceNew: true, reconnection: false });
  socket.on('connect_error', (e) => {
    console.error(`connect_error: ${e.message}`);
    process.exit(1);
  });
  socket.once('connected', () => {
    socket.emit('subscribe', { type: 'execution', resourceId: 'e0' }, () => {
      if (++subscribed === count) process.send({ ready: true });
    });
  });
  socket.on('update', (update) => {
    const sentAt = update?.payload?.sentAt;
    if (!sentAt) return;
    received++;
    const micros = Math.max(0, Math.round((performance.timeOrigin + performance.now()) * 1000) - sentAt);
    const bucket = Math.floor(Math.log2(micros + 1) * PER_OCTAVE);
    latency.set(bucket, (latency.get(bucket) ?? 0) + 1);
  });
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
}

process.on('message', (command) => {
  if (command === 'stats') process.send({ received, latency: [...latency.entries()], acks: [] });
  if (command === 'reset') {
    received = 0;
    latency = new Map();
    process.send({ reset: true });
  }
});

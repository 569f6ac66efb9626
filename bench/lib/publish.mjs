// The publisher of a scenario: POST /api/v1/events at a steady rate, in batches every 10 ms, each
// event carrying `sentAt` (µs since the epoch) for the clients to time its delivery.

import { API_KEY } from './proc.mjs';

const TICK_MS = 10;
const MAX_BATCH = 1000;
const MAX_IN_FLIGHT = 8;

export const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/**
 * Publishes `eventsPerSecond` events for `seconds` to `url`; `event(i)` makes the i-th (its data
 * gets `sentAt`). Resolves to how many were accepted, how many the server refused or failed, and
 * the rate it kept up with. A server that falls behind gets bigger batches, up to 1,000 events.
 */
export async function publish({ url, eventsPerSecond, seconds, event }) {
  const started = performance.now();
  const total = Math.round(eventsPerSecond * seconds);
  let made = 0;
  let accepted = 0;
  let failed = 0;
  let inFlight = 0;
  const requests = new Set();
  while (made < total) {
    const due = Math.min(total, Math.round(((performance.now() - started) / 1000) * eventsPerSecond));
    while (made < due && inFlight < MAX_IN_FLIGHT) {
      const count = Math.min(MAX_BATCH, due - made);
      const sentAt = nowMicros();
      const batch = [];
      for (let k = 0; k < count; k++) {
        const e = event(made + k);
        e.data.sentAt = sentAt;
        batch.push(e);
      }
      made += count;
      inFlight++;
      const request = fetch(`${url}/api/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
        body: JSON.stringify(batch),
      })
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.status === 202) accepted += count;
          else failed += count;
        })
        .catch(() => (failed += count))
        .finally(() => {
          inFlight--;
          requests.delete(request);
        });
      requests.add(request);
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  await Promise.all(requests);
  const elapsed = (performance.now() - started) / 1000;
  return { accepted, failed, seconds: elapsed, rate: accepted / elapsed };
}

/**
 * A burst: `calls` publish calls sent at once, call c carrying `perCall` events `event(i)` (its
 * data gets `sentAt`). Resolves to how many events were accepted and refused.
 */
export async function burst({ url, calls, perCall, event }) {
  const sentAt = nowMicros();
  const bodies = Array.from({ length: calls }, (_, c) =>
    JSON.stringify(Array.from({ length: perCall }, (_, k) => {
      const e = event(c * perCall + k);
      e.data.sentAt = sentAt;
      return e;
    })),
  );
  let accepted = 0;
  let failed = 0;
  await Promise.all(bodies.map((body) => fetch(`${url}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body,
  })
    .then(async (res) => {
      await res.arrayBuffer();
      if (res.status === 202) accepted += perCall;
      else failed += perCall;
    })
    .catch(() => (failed += perCall))));
  return { accepted, failed, largestBody: Math.max(...bodies.map((b) => Buffer.byteLength(b))) };
}

/**
 * Publishing as fast as the server takes it: one loop per tenant in `tenants`, each with
 * `inFlight` calls of `perCall` events outstanding (`event(tenant, i)` makes one), until `stop()`.
 * `accepted()` and `failed()` count events so far; `stop()` resolves once every call has answered.
 */
export function flood({ url, tenants, perCall, inFlight = 1, event }) {
  let accepted = 0;
  let failed = 0;
  let stopping = false;
  const loop = async (tenant) => {
    for (let i = 0; !stopping; i += perCall) {
      const batch = Array.from({ length: perCall }, (_, k) => event(tenant, i + k));
      try {
        const res = await fetch(`${url}/api/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
          body: JSON.stringify(batch),
        });
        await res.arrayBuffer();
        if (res.status === 202) accepted += perCall;
        else failed += perCall;
      } catch {
        failed += perCall;
      }
    }
  };
  const loops = tenants.flatMap((t) => Array.from({ length: inFlight }, () => loop(t)));
  return {
    accepted: () => accepted,
    failed: () => failed,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

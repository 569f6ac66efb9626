// Clients of the plain WebSocket endpoint (seed 001's Go hub protocol): a recording client over
// the `ws` package, and one written the way the seed's frontend (`web/src/lib/websocket.ts`) works:
// reconnect with a growing delay, and resubscribe to every channel after a reconnect.

import WebSocket from 'ws';
import * as h from './helpers.js';

/** The endpoint's URL with a query (`?token=...`). */
export const hubUrl = (gatewayUrl, query = '') => `${gatewayUrl.replace(/^http/, 'ws')}/ws${query}`;

/**
 * A WebSocket to `/ws` that records every envelope it receives (`inbox`), so `next` can wait for
 * one without missing any. `opened` resolves on open and rejects with `{status, body}` when the
 * gateway answers the handshake with an HTTP error; `closed` resolves to `{code, reason}`.
 */
export class HubSocket {
  constructor(url, options = {}) {
    this.inbox = [];
    this.waiters = [];
    this.ws = new WebSocket(url, options);
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (_, res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body: JSON.parse(body || 'null') })));
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data, isBinary) => {
      const envelope = isBinary ? { type: '(binary)' } : JSON.parse(data.toString());
      const waiter = this.waiters.find((w) => w.match(envelope));
      if (waiter) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(envelope);
      } else {
        this.inbox.push(envelope);
      }
    });
  }

  /** Sends `{type, timestamp, data}`. */
  send(type, data) {
    this.ws.send(JSON.stringify({ type, timestamp: new Date().toISOString(), ...(data === undefined ? {} : { data }) }));
  }

  /** The first envelope of `type` (received or to come) for which `where(envelope)` holds. */
  next(type, { timeoutMs = h.TIMEOUT, where = () => true } = {}) {
    const match = (e) => e.type === type && where(e);
    const index = this.inbox.findIndex(match);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no \`${type}\` envelope within ${timeoutMs} ms (unclaimed: ${this.inbox.map((e) => e.type).join(', ') || 'nothing'})`));
      }, timeoutMs);
    });
  }

  /** Envelopes of `type` received and not handed out yet. */
  pending(type) {
    return this.inbox.filter((e) => e.type === type);
  }

  /** Subscribes and resolves to the `subscribed` envelope's data. */
  async subscribe(channel, filters) {
    this.send('subscribe', filters ? { channel, filters } : { channel });
    return (await this.next('subscribed', { where: (e) => e.data.channel === channel })).data;
  }

  close() {
    this.ws.terminate();
  }
}

/** Opens a recording socket for `token` (as `?token=`) and waits for it to open; closed when `t` ends. */
export async function openHub(t, gatewayUrl, token, options) {
  const socket = new HubSocket(hubUrl(gatewayUrl, `?token=${encodeURIComponent(token)}`), options);
  t.after(() => socket.close());
  await socket.opened;
  return socket;
}

/**
 * The seed frontend's client: `getToken()` is called on every (re)connect, the socket is opened
 * with `?token=`, channels subscribed are remembered and subscribed again after each reconnect,
 * and a lost connection is retried after `interval × attempt` ms (capped at 5×), at most
 * `maxAttempts` times in a row.
 */
export class SeedStyleClient {
  constructor(gatewayUrl, { getToken, interval = 3000, maxAttempts = 10 }) {
    Object.assign(this, { gatewayUrl, getToken, interval, maxAttempts });
    this.subscriptions = new Map();
    this.handlers = new Map();
    /** Everything received (and every `open`), until `next` hands it out. */
    this.inbox = [];
    this.attempts = 0;
    this.opens = 0;
    this.stopped = false;
  }

  connect() {
    const ws = new WebSocket(hubUrl(this.gatewayUrl, `?token=${encodeURIComponent(this.getToken())}`));
    this.ws = ws;
    ws.on('error', () => {});
    ws.on('open', () => {
      this.attempts = 0;
      this.opens += 1;
      for (const [channel, filters] of this.subscriptions) this.raw('subscribe', { channel, ...(filters ? { filters } : {}) });
      this.emit('open', this.opens);
    });
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      this.emit(message.type, message);
    });
    ws.on('close', () => {
      if (this.stopped || this.attempts >= this.maxAttempts) return;
      this.attempts += 1;
      setTimeout(() => !this.stopped && this.connect(), this.interval * Math.min(this.attempts, 5));
    });
  }

  raw(type, data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, timestamp: new Date().toISOString(), data }));
  }

  subscribe(channel, filters) {
    this.subscriptions.set(channel, filters);
    this.raw('subscribe', { channel, ...(filters ? { filters } : {}) });
  }

  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  emit(type, message) {
    this.inbox.push({ type, message });
    for (const handler of this.handlers.get(type) ?? []) handler(message);
  }

  /** The first message of `type` not handed out yet (received already, or to come within `timeoutMs`). */
  next(type, timeoutMs = h.TIMEOUT) {
    const index = this.inbox.findIndex((e) => e.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0].message);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no \`${type}\` within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (message) => {
        clearTimeout(timer);
        off();
        this.inbox.splice(this.inbox.findIndex((e) => e.message === message), 1);
        resolve(message);
      });
    });
  }

  stop() {
    this.stopped = true;
    this.ws?.terminate();
  }
}

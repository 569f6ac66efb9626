// A stand-in for the gateway's coming event stream (issue 17, section 6), written from its
// contract (docs/backends.md, "The event stream"), for the SDK's client side until the gateway
// serves it: `GET /api/v1/events/stream?types=a.*,b[&tenantId=t]` with `X-API-Key`; events as
// `id: <id>` + `data: {"type","tenantId","data","timestamp"}`; `Last-Event-ID` resumes after that
// id while the log still holds it, else a `gap` event `{lastEventId, resumedFrom, missed}` first;
// `: keep-alive` comments. Its type matching is its own, not the SDK's.

import http from 'node:http';
import type net from 'node:net';

import { API_KEY } from './gateway';

export interface LoggedEvent {
  id: string;
  type: string;
  tenantId: string | null;
  data: Record<string, unknown>;
  timestamp: string;
}

export interface StreamServer {
  url: string;
  /** Every request, with its headers. */
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders; at: number }>;
  /** Open stream connections. */
  readonly open: number;
  /** Appends an event to the log and sends it to every matching open stream. */
  publish(type: string, data?: Record<string, unknown>, tenantId?: string | null): LoggedEvent;
  /** Destroys every open stream connection (a cut, or a node going away). */
  cut(): void;
  /** Resolves once `n` streams are open. */
  opened(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StreamServerOptions {
  /** Events the log holds; older ones are forgotten (default: all). */
  keep?: number;
  /** Answer the first connects with this instead of a stream. */
  refuse?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
  /** Send no events at all after the headers (a stalled stream). */
  silent?: boolean;
  /** Ignore `types` and send everything. */
  ignoreTypes?: boolean;
}

function matches(patterns: string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

export async function streamServer(options: StreamServerOptions = {}): Promise<StreamServer> {
  const log: LoggedEvent[] = [];
  let sequence = 0;
  const streams = new Set<{ res: http.ServerResponse; types: string[]; tenant: string | null }>();
  const sockets = new Set<net.Socket>();
  const requests: StreamServer['requests'] = [];
  const refusals = [...(options.refuse ?? [])];
  let openWaiters: Array<() => void> = [];

  const frame = (event: LoggedEvent) =>
    `id: ${event.id}\ndata: ${JSON.stringify({ type: event.type, tenantId: event.tenantId, data: event.data, timestamp: event.timestamp })}\n\n`;
  const wanted = (s: { types: string[]; tenant: string | null }, e: LoggedEvent) =>
    (options.ignoreTypes || matches(s.types, e.type)) && (s.tenant === null || s.tenant === e.tenantId);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ url: req.url ?? '', headers: req.headers, at: Date.now() });
    if (url.pathname !== '/api/v1/events/stream') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers['x-api-key'] !== API_KEY) {
      res
        .writeHead(401, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ error: { type: 'auth', message: 'missing or invalid API key' } }));
      return;
    }
    const refusal = refusals.shift();
    if (refusal) {
      res
        .writeHead(refusal.status, { 'Content-Type': 'application/json', ...refusal.headers })
        .end(JSON.stringify(refusal.body ?? {}));
      return;
    }
    const types = (url.searchParams.get('types') ?? '').split(',').filter((t) => t !== '');
    if (types.length === 0) {
      res
        .writeHead(400, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ error: { type: 'validation', message: 'types is required' } }));
      return;
    }
    const stream = { res, types, tenant: url.searchParams.get('tenantId') };
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(': connected\n\n');
    if (!options.silent) {
      const last = req.headers['last-event-id'];
      let from = 0;
      if (typeof last === 'string') {
        const index = log.findIndex((e) => e.id === last);
        if (index >= 0) {
          from = index + 1;
        } else {
          const asked = Number(last.split('-')[1]);
          const oldest = log[0];
          res.write(
            `event: gap\ndata: ${JSON.stringify({ lastEventId: last, resumedFrom: oldest?.id ?? null, missed: oldest ? Number(oldest.id.split('-')[1]) - asked - 1 : null })}\n\n`,
          );
        }
      }
      for (const event of log.slice(from)) if (wanted(stream, event)) res.write(frame(event));
      streams.add(stream);
    }
    res.on('close', () => streams.delete(stream));
    for (const resolve of openWaiters.splice(0)) resolve();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  let connections = 0;
  server.on('request', () => {
    connections += 1;
  });

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get open() {
      return streams.size;
    },
    publish(type, data = {}, tenantId = null) {
      sequence += 1;
      const event = { id: `1-${sequence}`, type, tenantId, data, timestamp: new Date().toISOString() };
      log.push(event);
      if (options.keep !== undefined && log.length > options.keep) log.shift();
      for (const stream of streams) if (wanted(stream, event)) stream.res.write(frame(event));
      return event;
    },
    cut() {
      for (const stream of streams) stream.res.socket?.destroy();
      streams.clear();
    },
    async opened(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (streams.size < n) {
        if (Date.now() > deadline)
          throw new Error(
            `${n} streams not open within ${timeoutMs} ms (${streams.size} open, ${connections} requests)`,
          );
        await new Promise<void>((resolve) => {
          openWaiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      openWaiters = [];
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// `GatewayClient`: the gateway's HTTP API for a Node backend. Every call has a timeout, retries
// what a later try can fix, and sends an `Idempotency-Key` when it changes something.
//
// Retry policy (one place, `send` below): a call is tried up to `1 + retries` times. It is tried
// again after a network failure, a timeout, and the answers `isRetryableStatus` lists (429 and
// 5xx among them); never after another 4xx. Between tries it waits what the answer's
// `Retry-After` asks (a wait longer than `maxRetryAfterMs` is not waited for: the call fails at
// once, `retryable`), else a random time between 0 and `min(backoff.maxMs, backoff.baseMs * 2^n)`.
// A caller's `signal` aborts the call at any point, including a wait.
//
// Idempotency: every POST carries `Idempotency-Key`, one key per logical call (the caller's
// `idempotencyKey`, else a random UUID), the same on each of its tries, so that a gateway that
// honours the key never delivers a retried call twice. Gateways older than the SDK's
// own release ignore the header; there a call whose answer was lost (a timeout, a reset connection) and that
// is retried may be delivered twice.

import { randomUUID } from 'node:crypto';

import { GatewayError, GatewayNetworkError, GatewayTimeoutError, GatewayUsageError, errorMessage } from './errors';
import { DEFAULT_QUEUE_LIMITS, OrderedQueue, type OrderedQueueLimits } from './ordered';
import { typeMatcher } from './patterns';
import { backoffDelay, isRetryableStatus, parseRetryAfter, sleep, type BackoffPolicy } from './retry';
import { EventSubscription, networkReason, type StreamHandler, type SubscribeOptions } from './stream';
import { checkTenantOption, resolveTenant, type TenantId } from './tenant';
import type {
  EmitRequest,
  EmitResult,
  GatewayStats,
  HubStats,
  JsonObject,
  NotificationRequest,
  NotificationResult,
  Presence,
  PresenceQuery,
  PublishEvent,
  PublishResult,
  StatsQuery,
  TypedPublishEvent,
} from './types';

/** The SDK's version, sent in `User-Agent` (a test holds it to package.json's). */
export const SDK_VERSION = '0.1.0';

/** How a client reaches the gateway, and how hard it tries. */
export interface GatewayClientOptions {
  /** The gateway's base URL, such as `http://localhost:3000` (a path prefix is kept). */
  url: string;
  /** One of the gateway's `API_KEYS`, sent as `X-API-Key`. */
  apiKey: string;
  /**
   * The one tenant this backend publishes for. Calls that name no tenant go to it, and calls
   * that name another are refused (`GatewayUsageError`). Leave it out to publish for any tenant.
   */
  tenantId?: TenantId;
  /** How long one try waits for its answer (ms, default 10000). */
  timeoutMs?: number;
  /** Tries after the first (default 3). */
  retries?: number;
  /** Waits between tries without `Retry-After` (default: base 200 ms, at most 5000 ms). */
  backoff?: Partial<BackoffPolicy>;
  /** Longest `Retry-After` waited for (ms, default 30000); a longer one fails the call at once. */
  maxRetryAfterMs?: number;
  /** Bounds of the queue that keeps the seed classes' calls in order. */
  queue?: Partial<OrderedQueueLimits>;
  /** Headers added to every request (a tracing header, say). */
  headers?: Record<string, string>;
  /**
   * Where failures nobody awaits go: the seed 004 `emit*` methods, which were `void`, and event
   * stream subscriptions without an `onError`. Default: one line on `console.error`.
   */
  onError?: (error: unknown) => void;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (its request and its waits); it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The call's idempotency key (1 to 255 visible ASCII characters); default a random UUID. */
  idempotencyKey?: string;
  /** This call's `timeoutMs`. */
  timeoutMs?: number;
  /** This call's `retries`. */
  retries?: number;
}

/** What the client has done, for a backend's own metrics. */
export interface GatewayClientMetrics {
  /** HTTP requests sent (each try counts). */
  requests: number;
  /** Tries after a first one. */
  retries: number;
  /** Calls that failed for good. */
  failures: number;
  /** Ordered calls refused because the queue was full. */
  dropped: number;
}

type Method = 'GET' | 'POST';

const VISIBLE_ASCII = /^[\x21-\x7e]{1,255}$/;

export class GatewayClient {
  /** The tenant this client publishes for, if it is confined to one. */
  readonly tenantId: TenantId | undefined;
  /** Counters of what it has done. */
  readonly metrics: GatewayClientMetrics = { requests: 0, retries: 0, failures: 0, dropped: 0 };
  private readonly base: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoff: BackoffPolicy;
  private readonly maxRetryAfterMs: number;
  private readonly headers: Record<string, string>;
  private readonly onError: ((error: unknown) => void) | undefined;
  private readonly subscriptions = new Set<EventSubscription<never>>();
  private readonly queue: OrderedQueue;
  private isClosed = false;

  constructor(options: GatewayClientOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new GatewayUsageError('options {url, apiKey} are required');
    }
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new GatewayUsageError(
        `url must be an absolute http(s) URL such as http://localhost:3000 (got ${JSON.stringify(options.url)})`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GatewayUsageError(`url must be http(s) (got ${url.protocol})`);
    }
    if (typeof options.apiKey !== 'string' || options.apiKey.trim() === '') {
      throw new GatewayUsageError("apiKey is required: one of the gateway's API_KEYS");
    }
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.apiKey = options.apiKey.trim();
    this.tenantId = checkTenantOption(options.tenantId);
    this.timeoutMs = positive(options.timeoutMs, 10_000, 'timeoutMs');
    this.retries = Math.floor(nonNegative(options.retries, 3, 'retries'));
    this.backoff = {
      baseMs: nonNegative(options.backoff?.baseMs, 200, 'backoff.baseMs'),
      maxMs: nonNegative(options.backoff?.maxMs, 5_000, 'backoff.maxMs'),
    };
    this.maxRetryAfterMs = nonNegative(options.maxRetryAfterMs, 30_000, 'maxRetryAfterMs');
    this.headers = { ...options.headers };
    this.onError = options.onError;
    this.queue = new OrderedQueue(
      {
        publishSerialized: (events) => this.send<PublishResult>('POST', '/api/v1/events', `[${events.join(',')}]`, {}),
        countDropped: () => {
          this.metrics.dropped += 1;
        },
      },
      { ...DEFAULT_QUEUE_LIMITS, ...options.queue },
    );
  }

  /**
   * Publishes one event or a batch (`POST /api/v1/events`); the gateway routes each by its type.
   * The client's tenant fills in events that name none. Resolves to `{accepted}`. A single event's
   * data is typed by its type (`TypedPublishEvent`): what the specs require of it.
   */
  async publish<T extends string>(
    events: TypedPublishEvent<T> | PublishEvent[],
    options: CallOptions = {},
  ): Promise<PublishResult> {
    this.checkOpen();
    const list = Array.isArray(events) ? events : [events];
    const body = list.map((event, i) => this.eventWithTenant(event, `events[${i}]`));
    return this.send<PublishResult>(
      'POST',
      '/api/v1/events',
      JSON.stringify(Array.isArray(events) ? body : body[0]),
      options,
    );
  }

  /** A raw emit (`POST /api/v1/emit`): `event` with `data` to rooms of a namespace, as named. */
  async emit(request: EmitRequest, options: CallOptions = {}): Promise<EmitResult> {
    this.checkOpen();
    const tenantId = resolveTenant(this.tenantId, request.tenantId, 'the emit');
    const body = { ...request, ...(tenantId === undefined ? {} : { tenantId }) };
    return this.send<EmitResult>('POST', '/api/v1/emit', JSON.stringify(body), options);
  }

  /**
   * Notifies a user or a channel (`POST /api/v1/notifications`). With `enableAcknowledgments` the
   * call waits for the sockets' acks, so its timeout is `timeoutMs` plus `ackTimeoutMs`.
   */
  async notify(request: NotificationRequest, options: CallOptions = {}): Promise<NotificationResult> {
    this.checkOpen();
    return this.sendNotification(request, options);
  }

  private async sendNotification(request: NotificationRequest, options: CallOptions = {}): Promise<NotificationResult> {
    const tenantId = resolveTenant(this.tenantId, request.tenantId, 'the notification');
    const body: JsonObject = { recipient: request.recipient, content: request.content };
    if (tenantId !== undefined) body['tenantId'] = tenantId;
    if (request.enableAcknowledgments !== undefined) body['enableAcknowledgments'] = request.enableAcknowledgments;
    if (request.ackTimeoutMs !== undefined) body['ackTimeoutMs'] = request.ackTimeoutMs;
    const ackWait = request.enableAcknowledgments ? (request.ackTimeoutMs ?? 5_000) : 0;
    const timeoutMs = (options.timeoutMs ?? this.timeoutMs) + ackWait;
    return this.send<NotificationResult>('POST', '/api/v1/notifications', JSON.stringify(body), {
      ...options,
      timeoutMs,
    });
  }

  /**
   * Connected sockets over the whole cluster (`GET /api/v1/stats`), per namespace and tenant;
   * with `room`, that room's size (a tenant room needs the tenant: the query's, else the client's).
   */
  async stats(query: StatsQuery = {}, options: CallOptions = {}): Promise<GatewayStats> {
    this.checkOpen();
    const params = new URLSearchParams();
    if (query.namespace !== undefined) params.set('namespace', query.namespace);
    if (query.room !== undefined) params.set('room', query.room);
    const tenantId = resolveTenant(this.tenantId, query.tenantId, 'the stats query');
    if (query.room !== undefined && tenantId !== undefined) params.set('tenantId', String(tenantId));
    const search = params.toString();
    return this.send<GatewayStats>('GET', `/api/v1/stats${search ? `?${search}` : ''}`, undefined, options);
  }

  /**
   * Who is connected (`GET /api/v1/presence`), over every live node: the users of `room` and
   * their connection counts, or without `room` the tenant's (the query's, else the client's).
   */
  async presence(query: PresenceQuery = {}, options: CallOptions = {}): Promise<Presence> {
    this.checkOpen();
    const params = new URLSearchParams();
    if (query.namespace !== undefined) params.set('namespace', query.namespace);
    if (query.transport !== undefined) params.set('transport', query.transport);
    if (query.room !== undefined) params.set('room', query.room);
    const tenantId = resolveTenant(this.tenantId, query.tenantId, 'the presence query');
    if (tenantId !== undefined) params.set('tenantId', String(tenantId));
    const search = params.toString();
    return this.send<Presence>('GET', `/api/v1/presence${search ? `?${search}` : ''}`, undefined, options);
  }

  /** A plain WebSocket endpoint's hub statistics (`GET /ws/stats`, seed 001's shape). */
  async hubStats(endpoint = '/ws', options: CallOptions = {}): Promise<HubStats> {
    this.checkOpen();
    return this.send<HubStats>('GET', `${endpoint.replace(/\/+$/, '')}/stats`, undefined, options);
  }

  /**
   * Subscribes to the gateway's event stream (`GET /api/v1/events/stream?types=...`): `handler`
   * gets every published event whose type matches one of `types` (`platform.*`,
   * `user.notification`, `*`), one at a time. Needs a gateway that serves the stream.
   */
  subscribe<Data = JsonObject>(
    types: string | readonly string[],
    handler: StreamHandler<Data>,
    options: SubscribeOptions = {},
  ): EventSubscription<Data> {
    this.checkOpen();
    const patterns = typeof types === 'string' ? [types] : [...types];
    const matches = typeMatcher(patterns);
    const tenantId = resolveTenant(this.tenantId, options.tenantId, 'the subscription');
    const params = new URLSearchParams({ types: patterns.join(',') });
    if (tenantId !== undefined) params.set('tenantId', String(tenantId));
    const subscription = new EventSubscription<Data>(
      patterns,
      matches,
      handler,
      {
        url: `${this.base}/api/v1/events/stream?${params.toString()}`,
        headers: this.requestHeaders(),
        connectTimeoutMs: this.timeoutMs,
        report: (error) => this.reportBackground(error),
      },
      options,
    );
    const tracked = subscription as unknown as EventSubscription<never>;
    this.subscriptions.add(tracked);
    void subscription.done.then(() => this.subscriptions.delete(tracked));
    return subscription;
  }

  /**
   * Stops every subscription, lets the ordered calls still queued finish for up to `timeoutMs`
   * (default 5000), then fails the rest. Calls after `close` are refused.
   */
  async close({ timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const subscription of this.subscriptions) subscription.close();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.queue.drained(), expired]);
    clearTimeout(timer);
    this.queue.abandon(new GatewayUsageError('the client was closed before this call was sent'));
    await Promise.all([...this.subscriptions].map((subscription) => subscription.done));
  }

  /** Ordered calls (the seed classes') waiting or in flight. */
  get queued(): number {
    return this.queue.pending;
  }

  /** Whether `close` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  // -------------------------------------------------------------------------------------------
  // For the seed classes: calls that keep their order, and failures nobody awaits.
  // -------------------------------------------------------------------------------------------

  /** @internal Publishes after every ordered call before it (see ordered.ts). */
  publishOrdered(events: PublishEvent[]): Promise<PublishResult> {
    this.checkOpen();
    return this.queue.publish(events.map((event, i) => this.eventWithTenant(event, `events[${i}]`)));
  }

  /** @internal Notifies after every ordered call before it. */
  notifyOrdered(request: NotificationRequest): Promise<NotificationResult> {
    this.checkOpen();
    const bytes = Buffer.byteLength(JSON.stringify(request));
    return this.queue.call(() => this.sendNotification(request), bytes);
  }

  /** @internal Reports a failure that no caller awaits. */
  reportBackground(error: unknown): void {
    try {
      if (this.onError) {
        this.onError(error);
        return;
      }
    } catch {
      // fall through to the default
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`[realtime-gateway sdk] ${message}`);
  }

  // -------------------------------------------------------------------------------------------
  // Requests
  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.isClosed) throw new GatewayUsageError('the client is closed');
  }

  private eventWithTenant(event: PublishEvent, at: string): PublishEvent {
    if (typeof event !== 'object' || event === null) throw new GatewayUsageError(`${at} must be an event object`);
    const tenantId = resolveTenant(this.tenantId, event.tenantId, `${at} (${event.type})`);
    return tenantId === undefined ? event : { ...event, tenantId };
  }

  private requestHeaders(): Record<string, string> {
    return {
      ...this.headers,
      'X-API-Key': this.apiKey,
      'User-Agent': `realtime-gateway-sdk/${SDK_VERSION} node/${process.versions.node}`,
    };
  }

  /** One logical call: tries, waits and errors as the policy at the top of this file says. */
  private async send<T>(method: Method, path: string, body: string | undefined, options: CallOptions): Promise<T> {
    const request = `${method} ${path.split('?')[0]}`;
    const timeoutMs = positive(options.timeoutMs, this.timeoutMs, 'timeoutMs');
    const retries = Math.floor(nonNegative(options.retries, this.retries, 'retries'));
    const headers: Record<string, string> = { ...this.requestHeaders(), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method === 'POST') {
      const key = options.idempotencyKey ?? randomUUID();
      if (!VISIBLE_ASCII.test(key)) {
        throw new GatewayUsageError('idempotencyKey must be 1 to 255 visible ASCII characters');
      }
      headers['Idempotency-Key'] = key;
    }
    const caller = options.signal;
    for (let attempt = 1; ; attempt++) {
      caller?.throwIfAborted();
      this.metrics.requests += 1;
      const outcome = await this.attempt<T>({ method, path, headers, body, request, timeoutMs, attempt, caller });
      if ('value' in outcome) return outcome.value;
      const { failure } = outcome;
      const tooLong = failure.retryAfterMs !== undefined && failure.retryAfterMs > this.maxRetryAfterMs;
      if (!failure.retryable || attempt > retries || tooLong) {
        this.metrics.failures += 1;
        throw failure;
      }
      this.metrics.retries += 1;
      await sleep(failure.retryAfterMs ?? backoffDelay(attempt - 1, this.backoff), caller);
    }
  }

  /** One try: its parsed answer, or why it failed. Throws only the caller's abort. */
  private async attempt<T>(t: {
    method: Method;
    path: string;
    headers: Record<string, string>;
    body: string | undefined;
    request: string;
    timeoutMs: number;
    attempt: number;
    caller: AbortSignal | undefined;
  }): Promise<{ value: T } | { failure: GatewayError }> {
    const tries = triesNote(t.attempt);
    const limit = abortAfter(t.timeoutMs, t.caller);
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.base}${t.path}`, {
        method: t.method,
        headers: t.headers,
        body: t.body ?? null,
        signal: limit.signal,
      });
      text = await response.text();
    } catch (error) {
      if (t.caller?.aborted) throw t.caller.reason;
      const details = { retryable: true, attempts: t.attempt, request: t.request, cause: error };
      return {
        failure: limit.timedOut()
          ? new GatewayTimeoutError(`${t.request}: no answer within ${t.timeoutMs} ms${tries}`, {
              type: 'timeout',
              ...details,
            })
          : new GatewayNetworkError(`${t.request}: ${networkReason(error)} (${this.base})${tries}`, {
              type: 'network',
              ...details,
            }),
      };
    } finally {
      limit.dispose();
    }
    const details = { status: response.status, attempts: t.attempt, request: t.request };
    if (response.ok) {
      if (text === '') return { value: {} as T };
      try {
        return { value: JSON.parse(text) as T };
      } catch {
        return {
          failure: new GatewayError(`${t.request} answered ${response.status} with a body that is not JSON`, {
            ...details,
            body: text,
          }),
        };
      }
    }
    const body = parseBody(text);
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return {
      failure: new GatewayError(`${t.request} answered ${response.status}${describeAnswer(body)}${tries}`, {
        ...details,
        body,
        retryable: isRetryableStatus(response.status),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      }),
    };
  }
}

/**
 * A signal for one try: aborted after `timeoutMs` or when `caller` aborts (`AbortSignal.any`
 * would do, from Node 20.3 on). `dispose` stops the timer and the listener once the try is over.
 */
function abortAfter(timeoutMs: number, caller: AbortSignal | undefined) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onAbort = () => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    },
  };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function describeAnswer(body: unknown): string {
  const message = errorMessage(body);
  return message === undefined ? '' : `: ${message}`;
}

function triesNote(attempt: number): string {
  return attempt > 1 ? ` (after ${attempt} tries)` : '';
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new GatewayUsageError(`${name} must be a number of at least 0`);
  }
  return value;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new GatewayUsageError(`${name} must be a positive number`);
  }
  return value;
}

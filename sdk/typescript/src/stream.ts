// The client side of the gateway's event stream for backends:
// `GET /api/v1/events/stream?types=...`, Server-Sent Events of every event published to the
// gateway whose type matches. It needs a gateway that serves that endpoint; an older one answers
// 404, which stops the subscription with a `GatewayError` saying so.
//
// One subscription is one connection. Events reach the handler one at a time, in stream order;
// the next is read once the handler's promise settles, so a slow handler slows the reading (the
// gateway cuts a consumer that falls too far behind, and the subscription then resumes from
// where it was). A subscription reconnects by itself after any failure that a later try can fix
// (the network, a restart, 429, 5xx), with exponential backoff and full jitter (or the server's
// `Retry-After` or `retry:`), sending `Last-Event-ID`: the id of the last event its handler
// finished, so nothing read but not handled is lost. When the gateway no longer holds events
// from there, it says so with a `gap` event, which goes to `onGap`. 400, 401, 403 and 404 stop
// the subscription: trying again would not help.

import { GatewayError } from './errors';
import { backoffDelay, isRetryableStatus, parseRetryAfter, sleep, type BackoffPolicy } from './retry';
import { SseParser, type SseMessage } from './sse';
import type { TenantId } from './tenant';
import type { JsonObject } from './types';

/** One event of the stream: a published event and its position in the stream. */
export interface StreamEvent<Data = JsonObject> {
  /** Its position in the stream (the SSE `id:`): what a subscription resumes after. */
  id: string;
  /** Its type, such as `platform.security.alert`. */
  type: string;
  /** Its tenant (`null` for none). */
  tenantId: string | null;
  /** Its data, as published. */
  data: Data;
  /** When it was published (ISO 8601). */
  timestamp: string;
  /** The publisher's own id for it, when the publisher gave one. */
  eventId?: string;
}

/**
 * The gateway could not resume where the subscription asked: events between `lastEventId` and
 * `resumedFrom` are no longer held, and were not delivered. Other fields are passed as sent.
 */
export interface StreamGap {
  /** The `Last-Event-ID` the subscription sent. */
  lastEventId: string | null;
  /** The id of the first event the stream continues with, when the gateway says. */
  resumedFrom?: string | null;
  /** How many events were missed, when the gateway knows. */
  missed?: number | null;
  [field: string]: unknown;
}

/** What a handler of stream events is. Its promise is awaited before the next event. */
export type StreamHandler<Data = JsonObject> = (event: StreamEvent<Data>) => void | Promise<void>;

/** Options of one subscription. */
export interface SubscribeOptions {
  /** Only this tenant's events (a client's `tenantId` option applies too, by the tenant rule). */
  tenantId?: TenantId;
  /** Resume after this event id, as if the subscription had been connected until then. */
  lastEventId?: string;
  /** Failures: connection failures (then `retryable`, and it reconnects), handler errors, a stop. */
  onError?: (error: unknown) => void;
  /** The gateway could not resume without a gap. Without it, gaps go to `onError`. */
  onGap?: (gap: StreamGap) => void;
  /** Each time the stream is connected (and again after each reconnection). */
  onOpen?: () => void;
  /** Reconnection waits (default: base 1000 ms, at most 30000 ms); a server's `retry:` sets the base. */
  reconnect?: Partial<BackoffPolicy>;
  /** With nothing received for this long (the gateway sends a comment every 15 s), reconnect. Default 45000 ms. */
  idleTimeoutMs?: number;
  /** A name for the subscriber (seed 002's `{ module: 'user_service' }`), used in error messages. */
  module?: string;
}

/** How to reach the stream: built by the client. */
export interface StreamTarget {
  /** The stream's URL with its query. */
  url: string;
  /** Authentication and other headers. */
  headers: Record<string, string>;
  /** How long to wait for the response's headers. */
  connectTimeoutMs: number;
  /** Where failures go when `onError` is not given. */
  report: (error: unknown) => void;
}

/** Longest `Retry-After` a reconnection honours; beyond it the subscription tries again sooner. */
const MAX_RECONNECT_WAIT_MS = 300_000;

let sequence = 0;

/** A running subscription to the event stream. */
export class EventSubscription<Data = JsonObject> {
  /** Its id (seed 002's `subscriptionId`). */
  readonly id: string;
  /** The patterns it asked for. */
  readonly types: readonly string[];
  /** Resolves once the subscription has stopped: closed, or stopped by a failure that retrying cannot fix. */
  readonly done: Promise<void>;
  private lastId: string | undefined;
  private isConnected = false;
  private readonly stopping = new AbortController();
  private current: AbortController | undefined;
  private readonly policy: BackoffPolicy;

  constructor(
    types: readonly string[],
    private readonly matches: (type: string) => boolean,
    private readonly handler: StreamHandler<Data>,
    private readonly target: StreamTarget,
    private readonly options: SubscribeOptions = {},
  ) {
    sequence += 1;
    this.id = `sub_${Date.now().toString(36)}_${sequence}`;
    this.types = types;
    this.lastId = options.lastEventId;
    this.policy = { baseMs: 1000, maxMs: 30_000, ...options.reconnect };
    this.done = this.run();
  }

  /** The id of the last event the handler finished; where a reconnection resumes. */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  /** Whether the stream is connected now. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Whether it has stopped. */
  get closed(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Stops it: the connection is closed and no more events are handled. */
  close(): void {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.current?.abort();
  }

  private report(error: unknown): void {
    try {
      (this.options.onError ?? this.target.report)(error);
    } catch {
      // A failing error callback must not stop the subscription.
    }
  }

  private describe(): string {
    const who = this.options.module ? ` (${this.options.module})` : '';
    return `the event stream subscription ${this.id}${who} to ${this.types.join(',')}`;
  }

  private async run(): Promise<void> {
    let failures = 0;
    let serverRetryMs: number | undefined;
    while (!this.closed) {
      let wait: number | undefined;
      try {
        const outcome = await this.connectOnce();
        serverRetryMs = outcome.retryMs ?? serverRetryMs;
        if (outcome.delivered) failures = 0;
      } catch (error) {
        if (this.closed) break;
        if (error instanceof GatewayError && !error.retryable) {
          this.report(error);
          this.close();
          break;
        }
        this.report(error);
        if (error instanceof GatewayError) wait = error.retryAfterMs;
      }
      if (this.closed) break;
      const policy = serverRetryMs === undefined ? this.policy : { ...this.policy, baseMs: serverRetryMs };
      const delay = wait === undefined ? backoffDelay(failures, policy) : Math.min(wait, MAX_RECONNECT_WAIT_MS);
      failures += 1;
      try {
        await sleep(delay, this.stopping.signal);
      } catch {
        break;
      }
    }
  }

  /**
   * One connection, until it ends. Resolves when the server ended the stream; rejects with a
   * `GatewayError` (retryable or not) when it failed.
   */
  private async connectOnce(): Promise<{ delivered: boolean; retryMs: number | undefined }> {
    const controller = new AbortController();
    this.current = controller;
    if (this.closed) controller.abort();
    const headers: Record<string, string> = {
      ...this.target.headers,
      Accept: 'text/event-stream',
      'Cache-Control': 'no-cache',
    };
    if (this.lastId !== undefined) headers['Last-Event-ID'] = this.lastId;
    const request = `GET ${new URL(this.target.url).pathname}`;
    let timedOut = false;
    const connectTimer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.target.connectTimeoutMs);
    let response: Response;
    try {
      response = await fetch(this.target.url, { headers, signal: controller.signal });
    } catch (error) {
      clearTimeout(connectTimer);
      throw new GatewayError(
        timedOut
          ? `${this.describe()}: no answer within ${this.target.connectTimeoutMs} ms; reconnecting`
          : `${this.describe()}: cannot connect (${networkReason(error)}); reconnecting`,
        { type: timedOut ? 'timeout' : 'network', retryable: true, request, cause: error },
      );
    }

    const contentType = response.headers.get('content-type') ?? '';
    if (!response.ok || !contentType.toLowerCase().startsWith('text/event-stream')) {
      // Still under the connect timeout: an answer that is not a stream is read whole.
      const text = await response.text().catch(() => '');
      clearTimeout(connectTimer);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // kept as text
      }
      const retryable = isRetryableStatus(response.status);
      const hint =
        response.status === 404
          ? ': this gateway does not serve the event stream (it needs a gateway with GET /api/v1/events/stream)'
          : retryable
            ? '; reconnecting'
            : response.ok
              ? `: the answer is ${contentType || 'untyped'}, not text/event-stream`
              : '; stopped';
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      throw new GatewayError(`${this.describe()} answered ${response.status}${hint}`, {
        status: response.status,
        body,
        retryable,
        attempts: 1,
        request,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }

    clearTimeout(connectTimer);
    const parser = new SseParser(this.lastId);
    let delivered = false;
    this.isConnected = true;
    try {
      this.options.onOpen?.();
    } catch (error) {
      this.report(error);
    }
    const idleMs = this.options.idleTimeoutMs ?? 45_000;
    let idle = false;
    let idleTimer = setTimeout(onIdle, idleMs);
    function onIdle() {
      idle = true;
      controller.abort();
    }
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        clearTimeout(idleTimer);
        if (done) break;
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (this.closed) break;
          delivered = (await this.dispatch(message)) || delivered;
        }
        if (this.closed) break;
        idleTimer = setTimeout(onIdle, idleMs);
      }
    } catch (error) {
      if (this.closed) return { delivered, retryMs: parser.retryMs };
      throw new GatewayError(
        idle
          ? `${this.describe()}: nothing received for ${idleMs} ms; reconnecting`
          : `${this.describe()}: the connection broke (${networkReason(error)}); reconnecting`,
        { type: idle ? 'timeout' : 'network', retryable: true, request, cause: error },
      );
    } finally {
      clearTimeout(idleTimer);
      this.isConnected = false;
      controller.abort();
    }
    return { delivered, retryMs: parser.retryMs };
  }

  /** Handles one message; returns whether it was an event. */
  private async dispatch(message: SseMessage): Promise<boolean> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.data);
    } catch {
      this.report(
        new GatewayError(`${this.describe()}: a \`${message.event}\` message whose data is not JSON was skipped`, {
          type: 'stream',
        }),
      );
      this.advance(message);
      return false;
    }
    switch (message.event) {
      case 'message':
        await this.deliver(message, parsed);
        this.advance(message);
        return true;
      case 'gap':
        this.gap(parsed);
        this.advance(message);
        return false;
      case 'error':
        this.report(
          new GatewayError(`${this.describe()}: the gateway reported an error on the stream`, {
            body: parsed,
            retryable: true,
          }),
        );
        this.advance(message);
        return false;
      default:
        // Kinds of message this SDK does not know yet are skipped, so a newer gateway can add some.
        this.advance(message);
        return false;
    }
  }

  private advance(message: SseMessage): void {
    if (message.id !== undefined) this.lastId = message.id;
  }

  private async deliver(message: SseMessage, parsed: unknown): Promise<void> {
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { type?: unknown }).type !== 'string') {
      this.report(new GatewayError(`${this.describe()}: an event without a \`type\` was skipped`, { type: 'stream' }));
      return;
    }
    const published = parsed as {
      type: string;
      tenantId?: unknown;
      data?: unknown;
      timestamp?: unknown;
      eventId?: unknown;
    };
    // The gateway filters by `types` already; checking again keeps a handler to what it asked for.
    if (!this.matches(published.type)) return;
    const event: StreamEvent<Data> = {
      id: message.id ?? '',
      type: published.type,
      tenantId: published.tenantId === undefined || published.tenantId === null ? null : String(published.tenantId),
      data: (published.data ?? {}) as Data,
      timestamp: typeof published.timestamp === 'string' ? published.timestamp : '',
    };
    if (typeof published.eventId === 'string') event.eventId = published.eventId;
    try {
      await this.handler(event);
    } catch (error) {
      this.report(error);
    }
  }

  private gap(parsed: unknown): void {
    const gap: StreamGap = {
      lastEventId: this.lastId ?? null,
      ...(typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {}),
    };
    if (this.options.onGap) {
      try {
        this.options.onGap(gap);
      } catch (error) {
        this.report(error);
      }
      return;
    }
    this.report(
      new GatewayError(
        `${this.describe()}: the gateway could not resume after ${String(gap.lastEventId)}; events in between were missed`,
        { type: 'gap', body: gap },
      ),
    );
  }
}

/** The reason behind a failed fetch, such as `ECONNREFUSED`. */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

// Calls that keep their order: what the seed classes send goes through one queue per client, one
// request at a time, so that `emitJobProgress(50)` then `emitJobProgress(60)`, called without
// `await` as seed 004's services do, reach sockets as 50 then 60, as the in-process gateway
// delivered them. Concurrent requests could overtake each other on different connections.
//
// Consecutive event publishes waiting in the queue go as one batch (the gateway delivers a batch
// in order), so a backend that emits faster than one request's round trip is not held to one
// event per round trip. A batch is checked whole by the gateway: when it answers 400 (a bad event)
// or 403 (an event for another tenant than a tenant-scoped key's), nothing was published, and
// each call of the batch is sent again alone, so that only the bad one fails.
//
// The queue is bounded in calls and in bytes; past either bound a call is refused at once with a
// `GatewayOverloadError` and counted in `metrics.dropped`.

import { GatewayError, GatewayOverloadError } from './errors';
import type { PublishEvent, PublishResult } from './types';

/** Bounds of the ordered queue. */
export interface OrderedQueueLimits {
  /** Calls waiting (default 10000). */
  maxCalls: number;
  /** Bytes of their bodies (default 16 MiB). */
  maxBytes: number;
  /** Events in one batch (default 100; the gateway takes up to `API_MAX_BATCH`, 1000 by default). */
  maxBatchEvents: number;
  /** Bytes in one batch (default 256 KiB; the gateway takes up to `API_MAX_BODY_SIZE`, 1 MB by default). */
  maxBatchBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: OrderedQueueLimits = {
  maxCalls: 10_000,
  maxBytes: 16 * 1024 * 1024,
  maxBatchEvents: 100,
  maxBatchBytes: 256 * 1024,
};

/** What the queue needs from the client. */
export interface OrderedTransport {
  /** Publishes events already serialized one by one (`[a,b]` is built from them). */
  publishSerialized(events: string[]): Promise<PublishResult>;
  /** Counts a call refused because the queue is full. */
  countDropped(): void;
}

type Waiter<T> = { resolve: (value: T) => void; reject: (error: unknown) => void };

type Item =
  | ({ kind: 'events'; serialized: string[]; bytes: number } & Waiter<PublishResult>)
  | ({ kind: 'call'; send: () => Promise<unknown>; bytes: number } & Waiter<unknown>);

export class OrderedQueue {
  private readonly items: Item[] = [];
  private bytes = 0;
  private running = false;
  /** Items at the head of the queue whose request is in flight. */
  private inFlight = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly transport: OrderedTransport,
    private readonly limits: OrderedQueueLimits,
  ) {}

  /** Calls waiting or in flight. */
  get pending(): number {
    return this.items.length;
  }

  /** Publishes `events` after every call queued before, possibly in one batch with neighbours. */
  publish(events: PublishEvent[]): Promise<PublishResult> {
    const serialized = events.map((event) => JSON.stringify(event));
    const bytes = serialized.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
    return new Promise<PublishResult>((resolve, reject) => {
      this.push({ kind: 'events', serialized, bytes, resolve, reject });
    });
  }

  /** Runs `send` after every call queued before; `bytes` is what it holds while it waits. */
  call<T>(send: () => Promise<T>, bytes: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.push({ kind: 'call', send, bytes, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** Resolves once nothing is waiting or in flight. */
  drained(): Promise<void> {
    if (this.items.length === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Fails every call still waiting (not the one in flight) with `error`. */
  abandon(error: GatewayError): void {
    const waiting = this.items.splice(this.inFlight);
    for (const item of waiting) {
      this.bytes -= item.bytes;
      item.reject(error);
    }
  }

  private push(item: Item): void {
    if (this.items.length >= this.limits.maxCalls || this.bytes + item.bytes > this.limits.maxBytes) {
      this.transport.countDropped();
      item.reject(
        new GatewayOverloadError(
          `the SDK's queue of ordered calls is full (${this.items.length} calls, ${this.bytes} bytes waiting ` +
            `for the gateway; limits ${this.limits.maxCalls} calls, ${this.limits.maxBytes} bytes): call refused`,
        ),
      );
      return;
    }
    this.items.push(item);
    this.bytes += item.bytes;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.items.length > 0) {
        const head = this.items[0]!;
        if (head.kind === 'call') {
          this.inFlight = 1;
          await settle(head.send(), head);
        } else {
          const batch = this.takeBatch();
          this.inFlight = batch.length;
          await this.sendBatch(batch);
        }
        this.finish(this.inFlight);
        this.inFlight = 0;
      }
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Removes the first `count` items, which are settled. */
  private finish(count: number): void {
    for (const item of this.items.splice(0, count)) this.bytes -= item.bytes;
  }

  /** The consecutive event items at the head of the queue that fit in one batch (at least one). */
  private takeBatch(): Array<Extract<Item, { kind: 'events' }>> {
    const batch: Array<Extract<Item, { kind: 'events' }>> = [];
    let events = 0;
    let bytes = 0;
    for (const item of this.items) {
      if (item.kind !== 'events') break;
      const fits =
        events + item.serialized.length <= this.limits.maxBatchEvents &&
        bytes + item.bytes <= this.limits.maxBatchBytes;
      if (batch.length > 0 && !fits) break;
      batch.push(item);
      events += item.serialized.length;
      bytes += item.bytes;
    }
    return batch;
  }

  /** Sends a batch and settles its items. */
  private async sendBatch(batch: Array<Extract<Item, { kind: 'events' }>>): Promise<void> {
    if (batch.length === 1) {
      await settle(this.transport.publishSerialized(batch[0]!.serialized), batch[0]!);
      return;
    }
    try {
      await this.transport.publishSerialized(batch.flatMap((item) => item.serialized));
      for (const item of batch) item.resolve({ accepted: item.serialized.length });
    } catch (error) {
      if (error instanceof GatewayError && (error.status === 400 || error.status === 403)) {
        // Nothing of the batch was published: find the bad call by sending each alone, in order.
        for (const item of batch) await settle(this.transport.publishSerialized(item.serialized), item);
      } else {
        for (const item of batch) item.reject(error);
      }
    }
  }
}

/** Settles `waiter` with the outcome of `promise`; never rejects. */
async function settle<T>(promise: Promise<T>, waiter: Waiter<T>): Promise<void> {
  try {
    waiter.resolve(await promise);
  } catch (error) {
    waiter.reject(error);
  }
}

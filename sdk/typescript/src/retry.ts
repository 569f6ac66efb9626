// The retry policy, in one place: which answers are worth another try, how long to wait before
// it (exponential backoff with full jitter, or the server's `Retry-After`), and an abortable sleep.

/**
 * Answers that a later try can turn into a success: 408 and 429 (the gateway or a proxy asks to
 * come back), 409 (under the idempotency contract, the first request with the same key is still
 * being processed), 425, and the 5xx a restart, a proxy or an overload give. 501 and other 5xx
 * that say the request itself is wrong are not retried.
 */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

/** Whether an HTTP answer with this status is worth another try. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** How the SDK waits between tries. */
export interface BackoffPolicy {
  /** The first retry waits up to this long (ms); each next one up to twice as long. */
  baseMs: number;
  /** No single wait is longer (ms). */
  maxMs: number;
}

/**
 * The wait before retry number `retry` (0 for the first retry): "full jitter", a uniformly random
 * time between 0 and `min(maxMs, baseMs * 2^retry)`. Spreading the retries of many clients over
 * the whole window is what keeps a gateway that comes back from being hit by all of them at once.
 */
export function backoffDelay(retry: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(retry, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds (`"2"`, `"0.5"`) or an HTTP date
 * (a date in the past is 0). `undefined` when there is no usable header.
 */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

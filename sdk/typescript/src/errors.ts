// What a call to the gateway can fail with. Every failure is a `GatewayError`, so one `catch`
// and one `instanceof` cover them all; the subclasses say what kind it was.

/** The body the gateway's HTTP API answers on failure: `{"error": {"type", "message"}}`. */
export interface ApiErrorBody {
  error: { type: string; message: string; [field: string]: unknown };
  [field: string]: unknown;
}

/** Where a failure happened, for the message and for whoever logs it. */
export interface GatewayErrorDetails {
  /** The HTTP status, or `null` when there was no answer (timeout, network, refused locally). */
  status?: number | null;
  /** The answer's body: parsed JSON (usually an {@link ApiErrorBody}) or text. */
  body?: unknown;
  /** `error.type` of the body when there is one, else the SDK's own kind. */
  type?: string;
  /** Whether trying again could succeed (a network failure, a timeout, 429, 5xx). */
  retryable?: boolean;
  /** How many requests were sent for this call before it gave up (0: none was sent). */
  attempts?: number;
  /** `POST /api/v1/events`, for messages. */
  request?: string;
  /** How long the answer's `Retry-After` asked to wait, in ms. */
  retryAfterMs?: number;
  /** What caused it (the network error, the abort reason). */
  cause?: unknown;
}

/**
 * A call to the gateway failed. `status` and `body` are the gateway's answer when there was one:
 * a 400's body names the field that is wrong. `retryable` says whether the failure is of a kind
 * that a later try could fix; the SDK has already retried it `attempts - 1` times.
 */
export class GatewayError extends Error {
  readonly status: number | null;
  readonly body: unknown;
  readonly type: string;
  readonly retryable: boolean;
  readonly attempts: number;
  readonly request: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: GatewayErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.status = details.status ?? null;
    this.body = details.body;
    this.type = details.type ?? errorType(details.body) ?? 'http';
    this.retryable = details.retryable ?? false;
    this.attempts = details.attempts ?? 0;
    this.request = details.request;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** No answer within `timeoutMs` (on the last attempt; earlier ones were retried). */
export class GatewayTimeoutError extends GatewayError {}

/** The request never got an answer: refused, reset, DNS. `cause` holds the network error. */
export class GatewayNetworkError extends GatewayError {}

/**
 * Refused by the SDK before anything was sent: a call that names another tenant than the client
 * is configured for, a notification channel the gateway does not deliver, an invalid pattern.
 */
export class GatewayUsageError extends GatewayError {
  constructor(message: string, details: GatewayErrorDetails = {}) {
    super(message, { type: 'usage', ...details });
  }
}

/**
 * The SDK's own queue of calls that keep their order (the seed classes' methods) is full: the
 * gateway has not taken calls as fast as they came, for longer than the queue holds. Retryable:
 * the queue drains once the gateway answers again.
 */
export class GatewayOverloadError extends GatewayError {
  constructor(message: string, details: GatewayErrorDetails = {}) {
    super(message, { type: 'overload', retryable: true, ...details });
  }
}

/** `body.error.type` when the body is the API's error shape. */
function errorType(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const type = (error as { type?: unknown }).type;
  return typeof type === 'string' ? type : undefined;
}

/** The API's message for a failed answer, or a short text of the body. */
export function errorMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.trim().slice(0, 300) || undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  }
  return undefined;
}

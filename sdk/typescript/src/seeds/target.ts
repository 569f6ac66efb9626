// How a seed class gets its client: a `GatewayClient` to share (the NestJS module shares one), or
// the client's options, for a class used on its own (`new RealtimeGateway({ url, apiKey })`).
// And what the seed classes share: ordered publishing, and failures nobody awaits.

import { GatewayClient, type GatewayClientOptions } from '../client';
import { GatewayUsageError } from '../errors';
import { resolveTenant, type TenantId } from '../tenant';
import type { JsonObject, PublishEvent } from '../types';

/** A client to share, or the options of one. */
export type GatewayTarget = GatewayClient | GatewayClientOptions;

/** The client of `target`, and whether the caller made it (and so closes it). */
export function clientOf(target: GatewayTarget): { client: GatewayClient; owned: boolean } {
  return target instanceof GatewayClient
    ? { client: target, owned: false }
    : { client: new GatewayClient(target), owned: true };
}

/**
 * Publishes one event of `type` through the client's ordered queue, with the tenant the rule
 * gives (`what` names the call in a refusal). Rejects rather than throws, as an async method.
 */
export function publishOrdered(
  client: GatewayClient,
  type: string,
  data: JsonObject,
  named: TenantId | null | undefined,
  what: string,
): Promise<void> {
  try {
    const tenantId = resolveTenant(client.tenantId, named, what);
    const event: PublishEvent = { type, data, ...(tenantId === undefined ? {} : { tenantId }) };
    return client.publishOrdered([event]).then(() => undefined);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * `promise`, which the caller may await, and whose failure also goes to the client's `onError`:
 * for methods that were `void` in the seed, whose callers do not await them. Such a failure never
 * becomes an unhandled rejection (which would stop a Node process).
 */
export function detached<T>(client: GatewayClient, promise: Promise<T>): Promise<T> {
  promise.catch((error: unknown) => client.reportBackground(error));
  return promise;
}

/** Checks that a payload is an object (the gateway routes on its fields and sends it as one). */
export function objectPayload(value: unknown, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GatewayUsageError(`${what} takes an object payload`);
  }
  return value as JsonObject;
}

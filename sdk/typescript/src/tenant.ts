// The tenant rule, in one place: which tenant a call goes to.
//
// A client configured with a `tenantId` (a backend that serves one tenant) publishes to that
// tenant only: a call that names another one, as an argument or as its payload's own `tenantId`
// field, is refused before anything is sent. A client without one uses the tenant the call
// names: the method's `tenantId` argument where it has one, else the payload's `tenantId`. With
// neither, the request carries no tenant, and the gateway decides: with a platform key, events for
// platform rooms need none and events for a tenant's rooms are a 400; a tenant-scoped API key
// (TENANT_API_KEYS) implies its own tenant, and answers another tenant with a 403.

import { GatewayUsageError } from './errors';

/** A tenant id, as the seeds give them (seed 003 uses numbers). Sent as given. */
export type TenantId = string | number;

/** The tenant a call goes to, or `undefined` for none; throws when the two disagree. */
export function resolveTenant(
  configured: TenantId | undefined,
  named: TenantId | null | undefined,
  what: string,
): TenantId | undefined {
  const given = named === null || named === '' ? undefined : named;
  if (configured === undefined) return given;
  if (given !== undefined && String(given) !== String(configured)) {
    throw new GatewayUsageError(
      `${what} names tenant "${String(given)}", but this client publishes for tenant "${String(configured)}" only ` +
        '(its tenantId option); use a client without a tenantId to publish for several tenants',
    );
  }
  return configured;
}

/** A payload's own `tenantId` field, when it has a usable one. */
export function payloadTenant(payload: unknown): TenantId | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const tenant = (payload as { tenantId?: unknown }).tenantId;
  if (typeof tenant === 'string' && tenant !== '') return tenant;
  if (typeof tenant === 'number' && Number.isFinite(tenant)) return tenant;
  return undefined;
}

/** Checks an id the SDK itself validates (configuration), so a typo fails at start-up. */
export function checkTenantOption(tenant: unknown): TenantId | undefined {
  if (tenant === undefined || tenant === null) return undefined;
  if ((typeof tenant === 'string' && tenant.trim() !== '') || (typeof tenant === 'number' && Number.isFinite(tenant))) {
    return tenant;
  }
  throw new GatewayUsageError('tenantId must be a non-empty string or a number');
}

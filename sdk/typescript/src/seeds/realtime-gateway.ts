// Seed 004's `RealtimeGateway` (the NestJS gateway of namespace `/realtime`), as a backend calls
// it: the same nine methods with the same arguments. Each `emit*` publishes the event type that
// namespaces/realtime.yaml routes to the rooms the seed's gateway emitted to, with the payload as
// the data, which `/realtime` delivers as it is: a frontend receives the event name and payload
// the in-process gateway sent.
//
// | method                    | event (type and name)   | rooms                         |
// |---------------------------|-------------------------|-------------------------------|
// | emitCommissionCalculated  | `commission:calculated` | `dashboard`, `contract:{id}`  |
// | emitCommissionUpdated     | `commission:updated`    | `dashboard`, `contract:{id}`  |
// | emitJobProgress           | `queue:job-progress`    | `queue`                       |
// | emitJobCompleted          | `queue:job-completed`   | `queue`                       |
// | emitJobFailed             | `queue:job-failed`      | `queue`                       |
// | emitQueueStats            | `queue:stats`           | `queue`                       |
// | emitDashboardMetrics      | `dashboard:metrics`     | `dashboard`                   |
//
// The seed's `emit*` methods were `void` and its services call them without `await`; here they
// return a promise that may be awaited, whose failure also goes to the client's `onError` and
// never becomes an unhandled rejection. They go through the client's ordered queue, so calls
// made one after another without `await` arrive in that order. The seed's methods name no
// tenant: it is the client's `tenantId`, else the payload's own `tenantId` (src/tenant.ts).
//
// Each payload type extends the data that namespaces/realtime.yaml requires of its event type
// (src/generated/published.ts, written from the specs by `realtime-gateway codegen typescript`),
// so a spec that comes to require a field makes the method require it too.
//
// The two counters were read from the process's own sockets; here they ask the gateway, so they
// return promises. `getConnectedClientsCount()` was synchronous in the seed (`number`): `await`
// it now.

import type { GatewayClient } from '../client';
import type {
  CommissionCalculatedData,
  CommissionUpdatedData,
  DashboardMetricsData,
  QueueJobCompletedData,
  QueueJobFailedData,
  QueueJobProgressData,
  QueueStatsData,
} from '../generated';
import { payloadTenant, type TenantId } from '../tenant';
import type { JsonObject } from '../types';
import { clientOf, detached, objectPayload, publishOrdered, type GatewayTarget } from './target';

/** The namespace these events go to. */
export const REALTIME_NAMESPACE = '/realtime';

/** A payload's own tenant, which the tenant rule reads when the client has none. */
interface TenantField {
  tenantId?: TenantId;
}

/** Seed 004's `CommissionCalculatedPayload`. */
export interface CommissionCalculatedPayload extends TenantField, CommissionCalculatedData {
  id: string;
  contractId: string;
  commissionAmount: number;
  totalRevenue: number;
  period: string;
}

/** A commission's change of status; `contractId` picks the contract's room. */
export interface CommissionUpdatedPayload extends TenantField, CommissionUpdatedData {
  id: string;
  contractId: string;
  [field: string]: unknown;
}

/** Seed 004's `JobProgressPayload`. */
export interface JobProgressPayload extends TenantField, QueueJobProgressData {
  jobId: string;
  type: string;
  /** 0 to 100. */
  progress: number;
  message?: string;
}

/** A finished job. */
export interface JobCompletedPayload extends TenantField, QueueJobCompletedData {
  jobId: string;
  [field: string]: unknown;
}

/** A failed job. */
export interface JobFailedPayload extends TenantField, QueueJobFailedData {
  jobId: string;
  [field: string]: unknown;
}

/** Queue statistics. */
export interface QueueStatsPayload extends TenantField, QueueStatsData {
  [field: string]: unknown;
}

/** Seed 004's `DashboardMetricsPayload`. */
export interface DashboardMetricsPayload extends TenantField, DashboardMetricsData {
  totalRevenue: number;
  totalCommissions: number;
  pendingPayments: number;
  overduePayments: number;
  activeContracts: number;
  timestamp: string;
}

export class RealtimeGateway {
  /** The client it publishes with. */
  readonly client: GatewayClient;

  constructor(target: GatewayTarget) {
    this.client = clientOf(target).client;
  }

  /** `commission:calculated` to `dashboard` and `contract:{contractId}`. */
  emitCommissionCalculated(data: CommissionCalculatedPayload): Promise<void> {
    return this.emit('emitCommissionCalculated', 'commission:calculated', data);
  }

  /** `commission:updated` to `dashboard` and `contract:{contractId}`. */
  emitCommissionUpdated(data: CommissionUpdatedPayload): Promise<void> {
    return this.emit('emitCommissionUpdated', 'commission:updated', data);
  }

  /** `queue:job-progress` to `queue`. */
  emitJobProgress(data: JobProgressPayload): Promise<void> {
    return this.emit('emitJobProgress', 'queue:job-progress', data);
  }

  /** `queue:job-completed` to `queue`. */
  emitJobCompleted(data: JobCompletedPayload): Promise<void> {
    return this.emit('emitJobCompleted', 'queue:job-completed', data);
  }

  /** `queue:job-failed` to `queue`. */
  emitJobFailed(data: JobFailedPayload): Promise<void> {
    return this.emit('emitJobFailed', 'queue:job-failed', data);
  }

  /** `queue:stats` to `queue`. */
  emitQueueStats(data: QueueStatsPayload): Promise<void> {
    return this.emit('emitQueueStats', 'queue:stats', data);
  }

  /** `dashboard:metrics` to `dashboard`. */
  emitDashboardMetrics(data: DashboardMetricsPayload): Promise<void> {
    return this.emit('emitDashboardMetrics', 'dashboard:metrics', data);
  }

  /**
   * Sockets connected to `/realtime` over the whole cluster: the client's tenant's when it has a
   * `tenantId`, else all of them (anonymous ones included, as the seed counted them). A promise:
   * the seed's method returned a `number` and now needs an `await`.
   */
  async getConnectedClientsCount(): Promise<number> {
    const stats = await this.client.stats({ namespace: REALTIME_NAMESPACE });
    const namespace = stats.namespaces[REALTIME_NAMESPACE];
    if (namespace === undefined) return 0;
    const tenant = this.client.tenantId;
    return tenant === undefined ? namespace.connections : (namespace.tenants[String(tenant)] ?? 0);
  }

  /**
   * Sockets in `room` (`dashboard`, `queue`, `contract:c1`) over the whole cluster. Every
   * `/realtime` room belongs to a tenant: the client's `tenantId`, or `tenantId` here.
   */
  async getClientsInRoom(room: string, tenantId?: TenantId): Promise<number> {
    const stats = await this.client.stats({
      namespace: REALTIME_NAMESPACE,
      room,
      ...(tenantId === undefined ? {} : { tenantId }),
    });
    return stats.room?.sockets ?? 0;
  }

  private emit(method: string, type: string, data: object): Promise<void> {
    let sent: Promise<void>;
    try {
      const payload = objectPayload(data, method);
      sent = publishOrdered(this.client, type, payload as JsonObject, payloadTenant(payload), `${method}'s payload`);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return detached(this.client, sent);
  }
}

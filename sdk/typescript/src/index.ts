// @realtime-gateway/sdk: publish to realtime-gateway from a Node backend.
//
// - `GatewayClient`: the HTTP API (publish, emit, notify, stats) with timeouts, retries and
//   idempotency keys, and the event stream for backends.
// - The seed gateways' classes, with their method names and arguments: `RealtimeGateway`
//   (seed 004), `WebSocketHelper` (seed 002), `NotificationsService` and `WebSocketProvider`
//   (seed 003). A service changes its import and nothing else (docs/backends.md).
// - The NestJS module is a separate entry point, `@realtime-gateway/sdk/nestjs`, so that a backend
//   without NestJS never loads it.

export { GatewayClient, SDK_VERSION } from './client';
export type { CallOptions, GatewayClientMetrics, GatewayClientOptions } from './client';
export {
  GatewayError,
  GatewayNetworkError,
  GatewayOverloadError,
  GatewayTimeoutError,
  GatewayUsageError,
} from './errors';
export type { ApiErrorBody, GatewayErrorDetails } from './errors';
export type { OrderedQueueLimits } from './ordered';
export { backoffDelay, isRetryableStatus, parseRetryAfter } from './retry';
export type { BackoffPolicy } from './retry';
export { typeMatcher } from './patterns';
export { EventSubscription } from './stream';
export type { StreamEvent, StreamGap, StreamHandler, SubscribeOptions } from './stream';
export type { TenantId } from './tenant';
// The types written from the namespace specs (`realtime-gateway codegen typescript`): published
// events' data for backends, each namespace's events for frontends (also `@realtime-gateway/sdk/types`).
export type { PublishedData, PublishedEvents } from './generated';
export type * as specs from './generated';
export type {
  EmitRequest,
  EmitResult,
  GatewayStats,
  HubStats,
  JsonObject,
  NamespaceStats,
  NotificationRequest,
  NotificationResult,
  Presence,
  PresenceQuery,
  PresentUser,
  PublishEvent,
  PublishResult,
  StatsQuery,
  TypedPublishEvent,
} from './types';
export { REALTIME_NAMESPACE, RealtimeGateway } from './seeds/realtime-gateway';
export type {
  CommissionCalculatedPayload,
  CommissionUpdatedPayload,
  DashboardMetricsPayload,
  JobCompletedPayload,
  JobFailedPayload,
  JobProgressPayload,
  QueueStatsPayload,
} from './seeds/realtime-gateway';
export { TENANT_DATA_UPDATE, WS_NAMESPACE, WebSocketHelper } from './seeds/websocket-helper';
export { NotificationsService, WebSocketProvider } from './seeds/notifications';
export type { ChannelMessage, SendNotificationRequest } from './seeds/notifications';
export type { GatewayTarget } from './seeds/target';

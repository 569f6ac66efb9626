// @realtime-gateway/sdk/nestjs: `RealtimeGatewayModule.forRoot({ url, apiKey, tenantId? })` and
// `forRootAsync({ useFactory, inject, imports })`, built with NestJS's `ConfigurableModuleBuilder`.
// It provides one `GatewayClient` and, sharing it, the seed classes `RealtimeGateway`,
// `WebSocketHelper`, `NotificationsService` and `WebSocketProvider`, injected by class as the
// seeds' services inject them. Global by default (`isGlobal: false` to import it per module), as
// a backend's gateway was reachable from every module. On shutdown (`app.close()`, or a signal
// with `enableShutdownHooks()`) the client stops its subscriptions and lets queued calls finish.
//
// No decorators here, so the package compiles without them: `Module(...)` is applied by call.

import { ConfigurableModuleBuilder, Module, type Provider } from '@nestjs/common';

import { GatewayClient, type GatewayClientOptions } from '../client';
import { NotificationsService, WebSocketProvider } from '../seeds/notifications';
import { RealtimeGateway } from '../seeds/realtime-gateway';
import { WebSocketHelper } from '../seeds/websocket-helper';

/** `forRoot`'s options: the client's. */
export type RealtimeGatewayModuleOptions = GatewayClientOptions;

const built = new ConfigurableModuleBuilder<RealtimeGatewayModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** The injection token of the options given to `forRoot` / made by `forRootAsync`. */
export const REALTIME_GATEWAY_OPTIONS = built.MODULE_OPTIONS_TOKEN;

/** What `forRoot` takes (the client's options and `isGlobal`). */
export type RealtimeGatewayModuleForRoot = typeof built.OPTIONS_TYPE;

/** What `forRootAsync` takes (`useFactory` + `inject` + `imports`, `useClass`, `useExisting`). */
export type RealtimeGatewayModuleForRootAsync = typeof built.ASYNC_OPTIONS_TYPE;

/** Closes the shared client when the application stops. */
const SHUTDOWN = Symbol('realtime-gateway sdk shutdown');

const providers: Provider[] = [
  {
    provide: GatewayClient,
    useFactory: (options: RealtimeGatewayModuleOptions) => new GatewayClient(options),
    inject: [REALTIME_GATEWAY_OPTIONS],
  },
  {
    provide: RealtimeGateway,
    useFactory: (client: GatewayClient) => new RealtimeGateway(client),
    inject: [GatewayClient],
  },
  {
    provide: WebSocketHelper,
    useFactory: (client: GatewayClient) => new WebSocketHelper(client),
    inject: [GatewayClient],
  },
  {
    provide: NotificationsService,
    useFactory: (client: GatewayClient) => new NotificationsService(client),
    inject: [GatewayClient],
  },
  {
    provide: WebSocketProvider,
    useFactory: (client: GatewayClient) => new WebSocketProvider(client),
    inject: [GatewayClient],
  },
  {
    provide: SHUTDOWN,
    useFactory: (client: GatewayClient) => ({ onApplicationShutdown: () => client.close() }),
    inject: [GatewayClient],
  },
];

/** The module. `RealtimeGatewayModule.forRoot({ url, apiKey })` in the application's imports. */
export class RealtimeGatewayModule extends built.ConfigurableModuleClass {}

Module({
  providers,
  exports: [GatewayClient, RealtimeGateway, WebSocketHelper, NotificationsService, WebSocketProvider],
})(RealtimeGatewayModule);

// A real NestJS application whose services are written as the seeds show them, with only their
// import changed to the SDK, run against the gateway binary: socket.io-client frontends on
// `/realtime`, `/ws` and `/` receive what they received from the seeds' gateways. The module is
// built once with `forRoot` (bootstrapped by NestFactory, as `main.ts` does) and once with
// `forRootAsync` (through @nestjs/testing). Stopping the application sends what was still queued.

import 'reflect-metadata';

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';

// The seeds' services imported these from their own gateway modules; now from the SDK.
import {
  GatewayClient,
  NotificationsService,
  RealtimeGateway,
  WebSocketHelper,
  WebSocketProvider,
} from '@realtime-gateway/sdk';
import { RealtimeGatewayModule } from '@realtime-gateway/sdk/nestjs';

import { API_KEY, frontend, mintToken, request, startGateway, type Gateway } from './support/gateway';

// ---------------------------------------------------------------------------------------------
// The application's services, as the seeds write them.
// ---------------------------------------------------------------------------------------------

/** Seed 004, "Server-Side Emission / From Services", as written there. */
// prettier-ignore
@Injectable()
export class CommissionService {
  constructor(
    private readonly realtimeGateway: RealtimeGateway,
  ) {}

  async calculateCommission(contractId: string): Promise<void> {
    const calculation = await this.performCalculation(contractId);

    // Emit real-time update
    this.realtimeGateway.emitCommissionCalculated({
      id: calculation.id,
      contractId: contractId,
      commissionAmount: calculation.commission_amount,
      totalRevenue: calculation.total_revenue,
      period: `${calculation.period_start} - ${calculation.period_end}`,
    });
  }

  // The application's own calculation (not part of the seed's snippet).
  private async performCalculation(contractId: string) {
    return {
      id: `calc-${contractId}`,
      commission_amount: 1200,
      total_revenue: 24000,
      period_start: '2024-01-01',
      period_end: '2024-01-31',
    };
  }
}

/** Seed 004, "Monitoring": the one change beyond the import is the `await` (docs/backends.md). */
@Injectable()
export class MonitoringService {
  constructor(private readonly realtimeGateway: RealtimeGateway) {}

  async connections() {
    // Get total connected clients
    const count = await this.realtimeGateway.getConnectedClientsCount();

    // Get clients in specific room
    const dashboardClients = await this.realtimeGateway.getClientsInRoom('dashboard');
    return { count, dashboardClients };
  }
}

/** Seed 002, "Basic Usage in Any Module", as written there. */
// prettier-ignore
@Injectable()
export class ExportService {
  // In any service constructor
  constructor(private readonly websocketHelper: WebSocketHelper) {}

  async exportFinished(userId: string, tenantId: string, updatedItem: unknown) {
    // Send notification to specific user
    await this.websocketHelper.sendUserNotification(userId, {
      type: 'info',
      title: 'Task Completed',
      message: 'Your data export is ready',
      timestamp: Date.now(),
    });

    // Send alert to platform admins
    await this.websocketHelper.sendToPlatformAdmins(
      'security.alert',
      {
        type: 'failed_login',
        attempts: 5,
        ipAddress: '192.168.1.100',
        timestamp: Date.now(),
      }
    );

    // Send real-time update to tenant
    await this.websocketHelper.sendTenantDataUpdate(tenantId, {
      type: 'inventory_update',
      item: updatedItem,
      timestamp: Date.now(),
    });
  }
}

/** Seed 003, "Send to Channel (API)" and "(Provider Direct)", as written there. */
// prettier-ignore
@Injectable()
export class AlertsService {
  constructor(
    private readonly notificationsService: NotificationsService,
    private readonly websocketProvider: WebSocketProvider,
  ) {}

  async backupDone() {
    // Using NotificationsService
    await this.notificationsService.send({
      recipient: {
        channel: "alerts" // Specify channel instead of userId
      },
      content: {
        subject: "System Alert",
        body: "Database backup completed successfully",
        data: {
          type: "system",
          severity: "info"
        }
      },
      tenantId: 1,
      channel: "websocket"
    });

    // Using WebSocketProvider directly
    await this.websocketProvider.sendToChannel("alerts", {
      subject: "Security Alert",
      body: "New login detected from unknown location",
      data: {
        ip: "192.168.1.100",
        location: "San Francisco, CA"
      }
    });
  }
}

const SERVICES = [CommissionService, MonitoringService, ExportService, AlertsService];

// ---------------------------------------------------------------------------------------------

/** What every frontend of tenant `1` (seed 003's numeric tenant) receives from the services above. */
async function checkFrontends(url: string, run: () => Promise<void>) {
  const tenant = '1';
  const dashboard = await frontend(url, '/realtime', {
    token: mintToken({ sub: 'u1', tenantId: tenant }),
    welcome: 'connection:success',
  });
  const ws = await frontend(url, '/ws', {
    token: mintToken({ sub: 'u1', tenantId: tenant }),
    welcome: 'connection.confirmed',
  });
  const admin = await frontend(url, '/ws', {
    token: mintToken({ sub: 'root', tenantId: tenant, roles: ['platform_admin'] }),
    welcome: 'connection.confirmed',
  });
  const notifications = await frontend(url, '/', { token: mintToken({ sub: 'u1', tenantId: tenant }) });
  try {
    await request(dashboard, 'subscribe:dashboard');
    await run();
    assert.deepEqual(await dashboard.next('commission:calculated'), {
      id: 'calc-c1',
      contractId: 'c1',
      commissionAmount: 1200,
      totalRevenue: 24000,
      period: '2024-01-01 - 2024-01-31',
    });
    const note = (await ws.next('user.notification')) as Record<string, unknown>;
    assert.deepEqual(
      { ...note, timestamp: typeof note['timestamp'] },
      {
        type: 'info',
        title: 'Task Completed',
        message: 'Your data export is ready',
        timestamp: 'number',
        userId: 'u1',
      },
    );
    const alert = (await admin.next('platform.security.alert')) as Record<string, unknown>;
    assert.deepEqual(
      { ...alert, timestamp: typeof alert['timestamp'] },
      { type: 'failed_login', attempts: 5, ipAddress: '192.168.1.100', timestamp: 'number' },
    );
    const update = (await ws.next('tenant.data.update')) as Record<string, unknown>;
    assert.deepEqual(
      { ...update, timestamp: typeof update['timestamp'] },
      { type: 'inventory_update', item: { sku: 'A1' }, timestamp: 'number' },
    );
    const first = (await notifications.next('notification:new')) as Record<string, unknown>;
    const second = (await notifications.next('notification:new')) as Record<string, unknown>;
    assert.deepEqual(
      [first['subject'], first['body'], first['data']],
      ['System Alert', 'Database backup completed successfully', { type: 'system', severity: 'info' }],
    );
    assert.deepEqual(
      [second['subject'], second['data']],
      ['Security Alert', { ip: '192.168.1.100', location: 'San Francisco, CA' }],
    );
  } finally {
    for (const f of [dashboard, ws, admin, notifications]) f.close();
  }
}

async function runServices(services: { get<T>(type: new (...args: never[]) => T): T }) {
  await services.get(CommissionService).calculateCommission('c1');
  await services.get(ExportService).exportFinished('u1', '1', { sku: 'A1' });
  await services.get(AlertsService).backupDone();
}

describe("a NestJS application with the seeds' services", { timeout: 60_000 }, () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    await gateway?.stop();
  });

  it('runs with RealtimeGatewayModule.forRoot, bootstrapped by NestFactory', async () => {
    @Module({
      imports: [RealtimeGatewayModule.forRoot({ url: gateway.url, apiKey: API_KEY, tenantId: '1' })],
      providers: SERVICES,
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      await checkFrontends(gateway.url, () => runServices(app));
      const dashboard = await frontend(gateway.url, '/realtime', {
        token: mintToken({ sub: 'u9', tenantId: '1' }),
        welcome: 'connection:success',
      });
      try {
        await request(dashboard, 'subscribe:dashboard');
        assert.deepEqual(await app.get(MonitoringService).connections(), { count: 1, dashboardClients: 1 });
      } finally {
        dashboard.close();
      }
      // One client shared by every class.
      const client = app.get(GatewayClient);
      assert.equal(app.get(RealtimeGateway).client, client);
      assert.equal(app.get(WebSocketHelper).client, client);
      assert.equal(app.get(NotificationsService).client, client);
    } finally {
      await app.close();
    }
  });

  it('runs with forRootAsync and a configuration service, and sends what is queued when it stops', async () => {
    @Injectable()
    class AppConfig {
      readonly gatewayUrl = gateway.url;
      readonly gatewayKey = API_KEY;
    }
    @Module({ providers: [AppConfig], exports: [AppConfig] })
    class ConfigModule {}

    @Module({
      imports: [
        RealtimeGatewayModule.forRootAsync({
          imports: [ConfigModule],
          inject: [AppConfig],
          useFactory: (config: AppConfig) => ({ url: config.gatewayUrl, apiKey: config.gatewayKey, tenantId: '1' }),
        }),
      ],
      providers: SERVICES,
    })
    class AppModule {}

    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = await moduleRef.init();
    await checkFrontends(gateway.url, () => runServices(app));

    // Calls made without await right before the application stops still reach the frontends.
    const queue = await frontend(gateway.url, '/realtime', {
      token: mintToken({ sub: 'u1', tenantId: '1' }),
      welcome: 'connection:success',
    });
    try {
      await request(queue, 'subscribe:queue');
      const realtimeGateway = app.get(RealtimeGateway);
      for (let progress = 0; progress < 20; progress++)
        realtimeGateway.emitJobProgress({ jobId: 'j1', type: 'import', progress });
      await app.close();
      const received = await queue.until((_, data) => (data as { progress: number }).progress === 19);
      assert.equal(received.length, 20);
      assert.equal(app.get(GatewayClient).closed, true);
    } finally {
      queue.close();
    }
  });

  it("is global unless asked otherwise, and injects by the seeds' class names", async () => {
    @Injectable()
    class Consumer {
      constructor(@Inject(RealtimeGateway) readonly realtimeGateway: RealtimeGateway) {}
    }
    @Module({ providers: [Consumer] })
    class FeatureModule {}
    @Module({ imports: [RealtimeGatewayModule.forRoot({ url: gateway.url, apiKey: API_KEY }), FeatureModule] })
    class GlobalApp {}
    const moduleRef = await Test.createTestingModule({ imports: [GlobalApp] }).compile();
    assert.ok(moduleRef.get(Consumer).realtimeGateway instanceof RealtimeGateway);
    await moduleRef.close();

    @Module({ providers: [Consumer] })
    class IsolatedFeature {}
    @Module({
      imports: [RealtimeGatewayModule.forRoot({ url: gateway.url, apiKey: API_KEY, isGlobal: false }), IsolatedFeature],
    })
    class LocalApp {}
    await assert.rejects(Test.createTestingModule({ imports: [LocalApp] }).compile(), /RealtimeGateway/);
  });
});

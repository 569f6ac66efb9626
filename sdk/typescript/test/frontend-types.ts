// Compiled by `npm test` (tsc), never run: a frontend's use of the types written from the specs
// (src/generated, `realtime-gateway codegen typescript`) with socket.io-client's typed `Socket`,
// for every shipped namespace. Each `@ts-expect-error` line must fail to compile, or tsc fails:
// a wrong payload, a wrong ack reply, a misspelt event.

import type { Socket } from 'socket.io-client';
import type { PublishedData, specs } from '@realtime-gateway/sdk';
import type { hub, notifications, realtime, workflow, ws } from '@realtime-gateway/sdk/types';
import { GatewayClient } from '@realtime-gateway/sdk';

declare const workflowSocket: Socket<workflow.ServerToClientEvents, workflow.ClientToServerEvents>;
workflowSocket.emit('subscribe', { type: 'execution', resourceId: 'e1' }, (response) => {
  if ('error' in response) return void response.error.type;
  const key: string = response.subscriptionKey;
  void key;
});
// @ts-expect-error `type` must be one of the subscription types the spec's enum lists
workflowSocket.emit('subscribe', { type: 'executions' });
// @ts-expect-error get_status needs an executionId or a workflowId
workflowSocket.emit('get_status', {});
workflowSocket.emit('ping');
workflowSocket.on('update', (update) => {
  if (update.type === 'log.created') {
    const execution: string | number = update.payload.executionId;
    void execution;
  }
  // Recovery: the last position of each subscription, sent back as `since` after a reconnect.
  if (update.position) {
    const { room, offset, epoch } = update.position;
    workflowSocket.emit('subscribe', { type: 'execution', resourceId: room, since: { offset, epoch } }, (response) => {
      if ('error' in response) return;
      const recovered: boolean | undefined = response.recovered;
      void recovered;
    });
  }
});
// @ts-expect-error since is a position: {offset, epoch}
workflowSocket.emit('subscribe', { type: 'execution', since: { offset: '3' } });
// @ts-expect-error no such server event
workflowSocket.on('updates', () => {});

declare const realtimeSocket: Socket<realtime.ServerToClientEvents, realtime.ClientToServerEvents>;
realtimeSocket.emit('subscribe:contract', { contractId: 'c1' });
// @ts-expect-error subscribe:contract needs its contractId
realtimeSocket.emit('subscribe:contract', { contract: 'c1' });
realtimeSocket.on('queue:job-progress', (data) => void data.jobId);
realtimeSocket.on('connection:success', (data) => {
  const anonymous: boolean = !data.authenticated;
  void anonymous;
});

declare const wsSocket: Socket<ws.ServerToClientEvents, ws.ClientToServerEvents>;
wsSocket.emit('join_room', { room: 'chat.c1' });
// @ts-expect-error send_message's rooms is a list
wsSocket.emit('send_message', { event: 'typing', payload: {}, rooms: 'chat.c1' });
wsSocket.on('platform.security.alert', (alert) => void alert);
wsSocket.on('user.notification', (n) => void n.userId);

declare const notificationSocket: Socket<notifications.ServerToClientEvents, notifications.ClientToServerEvents>;
notificationSocket.emit('channel:join', { channelName: 'news' }, (reply) => void reply);
// @ts-expect-error channel:join needs a channelName
notificationSocket.emit('channel:join', { channel: 'news' });

// The plain WebSocket endpoint's messages.
const subscribe: hub.ClientMessage = {
  type: 'subscribe',
  data: { channel: 'executions', filters: { statuses: ['running'] } },
};
// @ts-expect-error statuses is a list of strings
const wrong: hub.ClientMessage = {
  type: 'subscribe',
  data: { channel: 'executions', filters: { statuses: 'running' } },
};
void subscribe;
void wrong;
declare const message: hub.ServerMessage;
if (message.type === 'subscribed') void message.data.channel;

// Backends: published events' data.
const progress: PublishedData<'queue:job-progress'> = { jobId: 'j1', progress: 50 };
// @ts-expect-error queue:job-progress events need their jobId
const noJob: specs.PublishedEvents['queue:job-progress'] = { progress: 50 };
void progress;
void noJob;
export async function publishes(client: GatewayClient): Promise<void> {
  await client.publish({ type: 'execution.started', tenantId: 't1', data: { executionId: 'e1' } });
  await client.publish({ type: 'anything.else', data: { free: { form: true } } });
  // @ts-expect-error execution.* events need their executionId
  await client.publish({ type: 'execution.started', tenantId: 't1', data: { workflowId: 'w1' } });
}

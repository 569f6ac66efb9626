//! A bridge's task: connect within `timeout`, join `defaultChannels`, then send what it is given
//! and hand subscribed events to its sinks until the connection is lost; reconnect with
//! exponential backoff (`reconnectionDelay` doubled per attempt, at most [`MAX_BACKOFF`]) up to
//! `reconnectionAttempts`, then stay failed with the seed's message.
//!
//! While not connected, every send is answered at once with an error: a notification is never
//! held for a peer that may not come back.

use std::{collections::HashMap, sync::Arc, sync::atomic::Ordering, time::Duration};

use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Command, SendError,
    connect::{self, Opened},
    socketio::{self, Frame, Packet},
    status::State,
    transport::{Heard, Transport},
};
use crate::sink::Incoming;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Plain WebSocket: a ping this often; a peer silent for three of them is taken as lost.
const PLAIN_PING: Duration = Duration::from_secs(20);
/// Most acknowledgments waited for at once; beyond, a send is refused.
const MAX_PENDING_ACKS: usize = 1024;
/// The event that joins a channel on the peer, as the seed's clients join one.
const JOIN_EVENT: &str = "channel:join";

/// Runs bridge `bridge` until aborted (its caller stops it by dropping this future).
pub(super) async fn run(bridge: Arc<super::Bridge>, commands: &mut mpsc::Receiver<Command>) {
    let config = &bridge.config.provider;
    let name = &bridge.config.name;
    let mut reconnects: u32 = 0;
    let open = || connect::open(config, &bridge.allowed, &bridge.tls);
    loop {
        bridge.status.connecting(reconnects);
        let error = match tokio::time::timeout(config.timeout, open()).await {
            Err(_) => "WebSocket validation failed: Connection timeout".to_string(),
            Ok(Err(e)) => e,
            Ok(Ok(opened)) => {
                reconnects = 0;
                bridge.status.connected();
                bridge.metrics.connects.inc();
                tracing::info!(bridge = %name, "bridge connected");
                let lost = Connection::new(&bridge, opened).serve(commands).await;
                tracing::warn!(bridge = %name, error = %lost, "bridge connection lost");
                lost
            }
        };
        bridge.metrics.connect_failures.inc();
        if !config.reconnection || reconnects >= config.reconnection_attempts {
            bridge.status.lost(error, State::Failed);
            if config.reconnection {
                let message = format!("Max reconnection attempts ({}) reached", config.reconnection_attempts);
                tracing::error!(bridge = %name, "{message}");
                bridge.status.failed(message);
            }
            refuse_all(commands).await;
            return;
        }
        reconnects += 1;
        tracing::warn!(bridge = %name, error = %error, attempt = reconnects, "bridge not connected: backing off");
        bridge.status.lost(error, State::BackingOff);
        let exponent = (reconnects - 1).min(16);
        let wait =
            config.reconnection_delay.saturating_mul(1 << exponent).min(MAX_BACKOFF.max(config.reconnection_delay));
        let until = Instant::now() + wait;
        // Sends during the wait are refused at once, not held.
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                command = commands.recv() => match command {
                    Some(c) => c.answer(Err(SendError::NotConnected)),
                    None => return,
                },
            }
        }
    }
}

/// Answers every send as not connected, for good (a failed bridge is retried on restart).
async fn refuse_all(commands: &mut mpsc::Receiver<Command>) {
    while let Some(command) = commands.recv().await {
        command.answer(Err(SendError::NotConnected));
    }
}

/// One established connection.
struct Connection<'a> {
    bridge: &'a super::Bridge,
    /// The transport (WebSocket or Socket.IO long-polling).
    ws: Transport,
    /// Socket.IO: the namespace and the longest silence allowed between pings.
    socketio: Option<(String, Duration)>,
    next_ack: u64,
    pending: HashMap<u64, tokio::sync::oneshot::Sender<Result<Value, SendError>>>,
}

impl<'a> Connection<'a> {
    fn new(bridge: &'a super::Bridge, opened: Opened) -> Self {
        Self { bridge, ws: opened.ws, socketio: opened.socketio, next_ack: 1, pending: HashMap::new() }
    }

    /// Writes event `event` with `data`, with an ack id when one is wanted.
    async fn write(&mut self, event: &str, data: &Value, ack: Option<u64>) -> Result<(), String> {
        let text = match &self.socketio {
            Some((namespace, _)) => socketio::event(namespace, event, data, ack),
            None => {
                let mut message = json!({ "event": event, "data": data });
                if let Some(id) = ack {
                    message["id"] = json!(id);
                }
                message.to_string()
            }
        };
        self.ws.send(text).await?;
        self.bridge.status.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bridge.metrics.messages_out.inc();
        Ok(())
    }

    /// Serves the connection until it is lost; says why.
    async fn serve(mut self, commands: &mut mpsc::Receiver<Command>) -> String {
        let lost = self.serve_inner(commands).await;
        for (_, waiter) in self.pending.drain() {
            let _ = waiter.send(Err(SendError::Lost));
        }
        self.ws.close().await;
        lost
    }

    async fn serve_inner(&mut self, commands: &mut mpsc::Receiver<Command>) -> String {
        for channel in self.bridge.config.provider.default_channels.clone() {
            if let Err(e) = self.write(JOIN_EVENT, &json!({ "channelName": channel }), None).await {
                return e;
            }
        }
        let silence = self.socketio.as_ref().map_or(PLAIN_PING * 3, |(_, heartbeat)| *heartbeat);
        let mut heard = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + PLAIN_PING, PLAIN_PING);
        loop {
            tokio::select! {
                frame = self.ws.next() => {
                    heard = Instant::now();
                    match frame {
                        Ok(Heard::Text(text)) => {
                            if let Some(lost) = self.read(&text).await {
                                return lost;
                            }
                        }
                        Ok(Heard::Other) => {}
                        Err(lost) => return lost,
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return "the bridge stopped".into() };
                    if let Some(lost) = self.send(command).await {
                        return lost;
                    }
                }
                _ = ping.tick(), if self.socketio.is_none() => {
                    if let Err(lost) = self.ws.ping().await {
                        return lost;
                    }
                }
                () = tokio::time::sleep_until(heard + silence) => {
                    return format!("the peer was silent for {} ms", silence.as_millis());
                }
            }
        }
    }

    /// Sends one command; a write that fails loses the connection.
    async fn send(&mut self, command: Command) -> Option<String> {
        let ack = if command.want_ack {
            self.pending.retain(|_, waiter| !waiter.is_closed());
            if self.pending.len() >= MAX_PENDING_ACKS {
                command.answer(Err(SendError::Busy));
                return None;
            }
            let id = self.next_ack;
            self.next_ack += 1;
            Some(id)
        } else {
            None
        };
        match self.write(&command.event, &command.data, ack).await {
            Ok(()) => {
                match ack {
                    Some(id) => {
                        self.pending.insert(id, command.reply);
                    }
                    None => command.answer(Ok(Value::Null)),
                }
                None
            }
            Err(e) => {
                command.answer(Err(SendError::Lost));
                Some(e)
            }
        }
    }

    /// Reads one text message; `Some` when it ends the connection.
    async fn read(&mut self, text: &str) -> Option<String> {
        let (event, data) = match &self.socketio {
            Some((namespace, _)) => match socketio::read(text, namespace) {
                Frame::Ping => {
                    return self.ws.send("3".into()).await.err();
                }
                Frame::Close => return Some("the peer closed the session".into()),
                Frame::Packet(Packet::Disconnect) => return Some("the peer disconnected the bridge's socket".into()),
                Frame::Packet(Packet::Ack { id, data }) => {
                    if let Some(waiter) = self.pending.remove(&id) {
                        let _ = waiter.send(Ok(data));
                    }
                    return None;
                }
                Frame::Packet(Packet::Event { event, data }) => (event, data),
                _ => return None,
            },
            None => {
                let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else { return None };
                let event = match message.get("event").or_else(|| message.get("type")) {
                    Some(Value::String(e)) => e.clone(),
                    _ => return None,
                };
                let data = message.remove("data").unwrap_or(Value::Null);
                // An answer to a send that asked for one: `{"event": "ack", "id": n, "data": ...}`.
                if event == "ack" {
                    if let Some(waiter) =
                        message.get("id").and_then(Value::as_u64).and_then(|id| self.pending.remove(&id))
                    {
                        let _ = waiter.send(Ok(data));
                    }
                    return None;
                }
                (event, data)
            }
        };
        let provider = &self.bridge.config.provider;
        if provider.enable_receiving && provider.subscribe_to_events.contains(&event) {
            self.bridge.status.messages_in.fetch_add(1, Ordering::Relaxed);
            self.bridge.metrics.messages_in.inc();
            if let Some(sinks) = &self.bridge.sinks {
                sinks.hand(&Incoming {
                    event,
                    data,
                    metadata: json!({ "tenantId": self.bridge.config.tenant_id, "bridge": self.bridge.config.name }),
                    source: json!({
                        "provider": "websocket",
                        "url": self.bridge.public_url,
                        "protocol": provider.protocol.as_str(),
                    }),
                });
            }
        }
        None
    }
}

//! A bridge's open transport, as its task uses it: send one text packet, hear the next, ping,
//! close. A WebSocket (plain or TLS; `ws` peers and Socket.IO's `websocket` transport) or
//! Engine.IO long-polling (`polling`). The task (`run`) never knows which.

use std::pin::Pin;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

use super::polling::Polling;

/// A byte stream to the peer: TCP, or TLS over TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// What the peer's side of a link said.
pub(super) enum Heard {
    /// A text message (WebSocket) or one Engine.IO packet (polling).
    Text(String),
    /// Something that is not text (a pong, binary): proof of life only.
    Other,
}

/// An open transport.
pub(super) enum Transport {
    /// A WebSocket: each text frame one message.
    WebSocket(Box<WebSocketStream<Pin<Box<dyn Io>>>>),
    /// Engine.IO long-polling: packets from poll answers, sends as POSTs.
    Polling(Box<Polling>),
}

impl Transport {
    /// Writes one text message; an error loses the connection.
    pub(super) async fn send(&mut self, text: String) -> Result<(), String> {
        match self {
            Transport::WebSocket(ws) => ws.send(Message::text(text)).await.map_err(|e| format!("WebSocket error: {e}")),
            Transport::Polling(polling) => polling.send(text).await,
        }
    }

    /// The next thing heard; an error when the connection is closed or broken (the message says
    /// which). Cancel-safe: a `select!` may drop it without losing anything.
    pub(super) async fn next(&mut self) -> Result<Heard, String> {
        match self {
            Transport::WebSocket(ws) => match ws.next().await {
                Some(Ok(Message::Text(text))) => Ok(Heard::Text(text.as_str().to_string())),
                Some(Ok(Message::Close(_))) | None => Err("the peer closed the connection".into()),
                Some(Ok(_)) => Ok(Heard::Other),
                Some(Err(e)) => Err(format!("WebSocket error: {e}")),
            },
            Transport::Polling(polling) => polling.next().await.map(Heard::Text),
        }
    }

    /// A WebSocket ping frame (a `ws` peer's heartbeat); nothing for polling, whose heartbeat is
    /// Engine.IO's own.
    pub(super) async fn ping(&mut self) -> Result<(), String> {
        match self {
            Transport::WebSocket(ws) => {
                ws.send(Message::Ping(Default::default())).await.map_err(|e| format!("WebSocket error: {e}"))
            }
            Transport::Polling(_) => Ok(()),
        }
    }

    /// Closes politely (a close frame, or Engine.IO's close packet); errors are moot by now.
    pub(super) async fn close(&mut self) {
        match self {
            Transport::WebSocket(ws) => {
                let _ = ws.as_mut().close(None).await;
            }
            Transport::Polling(polling) => polling.close().await,
        }
    }
}

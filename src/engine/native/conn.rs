//! One plain WebSocket connection: its send buffer, the task that serves it, and the [`Member`]
//! the actions see.
//!
//! The send buffer is bounded in messages (`WS_NATIVE_SEND_BUFFER`) and in bytes
//! (`WS_NATIVE_SEND_BUFFER_BYTES`). A connection whose buffer is full is a client that does not
//! read: its queued frames are dropped at once (memory freed, drops counted) and it is closed with
//! 1008 and a reason saying so, as the Go hub closed such clients. Frames are shared: a published
//! event is serialized once and every connection queues the same bytes.
//!
//! One task per connection reads, writes and closes; pings are queued by the endpoint's heartbeat
//! (one task for all connections), and a write that does not complete is cut by the connection's
//! write deadline (`crate::connection`), so nothing here waits on a client for ever.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Notify,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message, Utf8Bytes,
        error::{CapacityError, Error as WsError},
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

use super::{Endpoint, envelope};
use crate::{
    engine::{
        clock::now_millis,
        errors::ClientError,
        member::{Member, MemberKey},
        session::Session,
    },
    metrics::CloseReason,
};

/// A frame waiting to be written.
#[derive(Debug, Clone)]
pub(super) enum Frame {
    /// An envelope, serialized (shared by every connection a delivery reaches).
    Text(Utf8Bytes),
    /// A heartbeat ping.
    Ping,
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Ping => 0,
        }
    }
}

/// Why a connection is being closed, as its close frame says, and as it is counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Closing {
    pub code: CloseCode,
    pub reason: &'static str,
    pub counted_as: CloseReason,
}

/// The send buffer: frames in order, their bytes, and a close to send after them.
#[derive(Debug, Default)]
struct Outbox {
    frames: VecDeque<Frame>,
    bytes: usize,
    closing: Option<Closing>,
}

/// The send-buffer limits.
#[derive(Debug, Clone, Copy)]
pub(super) struct BufferLimits {
    pub frames: usize,
    pub bytes: usize,
}

/// One connection's shared state (the endpoint's index holds it too).
pub(super) struct Conn {
    pub id: u64,
    pub session: Arc<Session>,
    /// The client's address (through `TRUSTED_PROXIES`), for the admin view.
    pub address: Option<std::net::IpAddr>,
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// When the client last sent anything (a pong included), in ms since the epoch.
    last_seen_ms: AtomicU64,
    /// The rooms it is in (internal names, shared with the endpoint's index).
    pub rooms: Mutex<Vec<Arc<str>>>,
}

/// What queueing a frame came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Queued {
    /// It will be written.
    Yes,
    /// The buffer was full: this frame and those queued were dropped, and the connection is
    /// closing. Returns how many were dropped.
    Overflowed(usize),
    /// The connection is closing already: dropped.
    Closing,
}

impl Conn {
    pub(super) fn new(id: u64, session: Arc<Session>, address: Option<std::net::IpAddr>) -> Self {
        Self {
            id,
            session,
            address,
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            last_seen_ms: AtomicU64::new(now_millis()),
            rooms: Mutex::new(Vec::new()),
        }
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` within `limits`.
    pub(super) fn queue(&self, frame: Frame, limits: BufferLimits) -> Queued {
        let mut out = self.outbox();
        if out.closing.is_some() {
            return Queued::Closing;
        }
        if out.frames.len() >= limits.frames || out.bytes + frame.len() > limits.bytes {
            let dropped = out.frames.len() + 1;
            // Free the memory now, not when the client gets round to reading.
            out.frames = VecDeque::new();
            out.bytes = 0;
            out.closing = Some(Closing {
                code: CloseCode::Policy,
                reason: "send buffer full: the client did not read fast enough",
                counted_as: CloseReason::SlowConsumer,
            });
            drop(out);
            self.wake.notify_one();
            return Queued::Overflowed(dropped);
        }
        out.bytes += frame.len();
        out.frames.push_back(frame);
        drop(out);
        self.wake.notify_one();
        Queued::Yes
    }

    /// Asks the task to send what is queued, then close with `closing` (the first close asked
    /// for wins). Returns false when it was closing already.
    pub(super) fn close(&self, closing: Closing) -> bool {
        let mut out = self.outbox();
        if out.closing.is_some() {
            return false;
        }
        out.closing = Some(closing);
        drop(out);
        self.wake.notify_one();
        true
    }

    /// Frames queued now.
    pub(super) fn queued(&self) -> usize {
        self.outbox().frames.len()
    }

    /// Whether it is closing.
    pub(super) fn is_closing(&self) -> bool {
        self.outbox().closing.is_some()
    }

    /// Why the gateway is closing it, if it is.
    pub(super) fn closing_reason(&self) -> Option<&'static str> {
        self.outbox().closing.map(|c| c.reason)
    }

    /// Milliseconds since the client last sent anything.
    pub(super) fn silent_for_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_seen_ms.load(Ordering::Relaxed))
    }

    /// Takes what is queued, leaving the buffer empty (and its memory freed).
    fn take(&self) -> (VecDeque<Frame>, Option<Closing>) {
        let mut out = self.outbox();
        out.bytes = 0;
        (std::mem::take(&mut out.frames), out.closing)
    }
}

/// Serves `conn` over `ws` until either side closes; then the endpoint forgets it.
pub(super) async fn serve<S>(ep: Arc<Endpoint>, conn: Arc<Conn>, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    // `Ok`: the gateway closes, with this close frame; `Err`: the connection is gone, for this.
    let ending: Result<Closing, CloseReason> = loop {
        tokio::select! {
            biased;
            () = conn.wake.notified() => {
                let (frames, closing) = conn.take();
                let mut written = true;
                for frame in frames {
                    let message = match frame {
                        Frame::Text(text) => Message::Text(text),
                        Frame::Ping => Message::Ping(Default::default()),
                    };
                    if sink.feed(message).await.is_err() {
                        written = false;
                        break;
                    }
                }
                if !written || sink.flush().await.is_err() {
                    break Err(CloseReason::TransportError);
                }
                if let Some(closing) = closing {
                    break Ok(closing);
                }
            }
            message = stream.next() => match message {
                Some(Ok(message)) => {
                    conn.last_seen_ms.store(now_millis(), Ordering::Relaxed);
                    match message {
                        Message::Text(text) => ep.on_message(&conn, text.as_str()),
                        Message::Binary(_) => ep.on_binary(&conn),
                        Message::Close(_) => break Err(CloseReason::Client),
                        // The WebSocket layer queues the pong; send it now.
                        Message::Ping(_) => {
                            if sink.flush().await.is_err() {
                                break Err(CloseReason::TransportError);
                            }
                        }
                        Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    let reason = "message too big";
                    break Ok(Closing { code: CloseCode::Size, reason, counted_as: CloseReason::ProtocolError });
                }
                // The TCP connection ended without a close frame.
                None => break Err(CloseReason::Client),
                Some(Err(_)) => break Err(CloseReason::TransportError),
            },
        }
    };
    let counted_as = match ending {
        Ok(Closing { code, reason, counted_as }) => {
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = sink.send(Message::Close(Some(frame))).await;
            counted_as
        }
        Err(reason) => reason,
    };
    ep.forget(&conn, counted_as);
}

/// A connection as the actions see it.
pub(super) struct NativeMember<'a> {
    pub ep: &'a Endpoint,
    pub conn: &'a Arc<Conn>,
}

impl Member for NativeMember<'_> {
    fn key(&self) -> MemberKey {
        MemberKey::Conn(self.conn.id)
    }

    fn rooms(&self) -> Vec<String> {
        self.conn.rooms.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|r| r.to_string()).collect()
    }

    fn join(&self, room: String) {
        self.ep.join(self.conn, room);
    }

    fn leave(&self, room: &str) {
        self.ep.leave(self.conn, room);
    }

    fn send(&self, event: &str, data: Option<&Value>) {
        let text = envelope::render(event, &crate::engine::clock::iso_now(), data.unwrap_or(&Value::Null));
        self.ep.queue(self.conn, Frame::Text(text));
    }

    fn transport(&self) -> &'static str {
        "websocket"
    }

    fn relay(&self, _: &Session, _: Vec<String>, _: String, _: Value) -> Result<(), ClientError> {
        // The spec checker refuses relays on plain WebSocket endpoints; this is the backstop.
        Err(ClientError::validation("relays are not available on plain WebSocket endpoints"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn conn() -> Conn {
        Conn::new(1, Session::new(Identity::anonymous()), None)
    }

    fn text(n: usize) -> Frame {
        Frame::Text(Utf8Bytes::from("x".repeat(n)))
    }

    #[test]
    fn the_buffer_is_bounded_in_frames_and_bytes_and_overflow_frees_it() {
        let limits = BufferLimits { frames: 3, bytes: 100 };
        let c = conn();
        assert_eq!(c.queue(text(10), limits), Queued::Yes);
        assert_eq!(c.queue(text(10), limits), Queued::Yes);
        assert_eq!(c.queue(text(10), limits), Queued::Yes);
        assert_eq!(c.queue(text(10), limits), Queued::Overflowed(4), "the fourth frame");
        assert_eq!(c.queued(), 0, "freed at once");
        assert!(c.is_closing());
        assert_eq!(c.queue(text(1), limits), Queued::Closing);

        let c = conn();
        assert_eq!(c.queue(text(60), limits), Queued::Yes);
        assert_eq!(c.queue(text(60), limits), Queued::Overflowed(2), "bytes, before frames");
    }

    #[test]
    fn the_first_close_wins_and_takes_keep_it() {
        let c = conn();
        let expired =
            Closing { code: CloseCode::Policy, reason: "token expired", counted_as: CloseReason::ServerDisconnect };
        assert!(c.close(expired));
        assert!(!c.close(Closing {
            code: CloseCode::Away,
            reason: "shutting down",
            counted_as: CloseReason::Shutdown
        }));
        let (frames, closing) = c.take();
        assert!(frames.is_empty());
        assert_eq!(closing.map(|c| c.reason), Some("token expired"));
    }
}

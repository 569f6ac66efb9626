//! One plain WebSocket connection: its send buffer, the task that serves it, and the [`Member`]
//! the actions see.
//!
//! The send policy:
//! - **A client that keeps reading gets every event of any burst the API accepts.** The send
//!   buffer holds `WS_NATIVE_SEND_BUFFER` frames and `WS_NATIVE_SEND_BUFFER_BYTES` bytes, by
//!   default four publish calls of the largest size the API accepts (`API_MAX_BATCH` events,
//!   `API_MAX_BODY_SIZE` bytes; less than one is refused at start-up): four publishers bursting
//!   at once fit before the writer has sent anything, and more as far as the writer drains
//!   meanwhile.
//! - **A client that stops reading is cut within `WS_WRITE_TIMEOUT`, and its memory freed.** The
//!   writer takes at most 16 KiB at a time and flushes it; a flush that does not complete within
//!   the write deadline cuts the connection (`crate::connection`). Slowness is judged by the
//!   writer making no progress, not by how full the buffer is at one moment.
//! - **Memory stays bounded in bytes.** Frames count toward the limits until they are written
//!   (not when the writer takes them), so a connection never holds more than its limits. A
//!   connection that would exceed them is a client that does not read: what it had queued is
//!   dropped at once (counted), and it is closed with 1008 "send buffer full".
//!
//! Frames are shared: a published event is serialized once, as a WebSocket frame (`wire`), and
//! every connection queues and writes the same bytes. Whoever queues a frame to an idle connection writes it at once, without waiting and
//! without putting it in the buffer (the socket takes it, or what it cannot take is left to the
//! connection's task, counted as buffered until written), as Node's `ws` does:
//! a delivery then costs one write, not a task woken on another thread, scheduled and polled. One
//! task per connection reads, writes what could not be written at once, and closes, turn about;
//! pings are queued by the endpoint's heartbeat (one task for all connections). Control frames
//! from the client count toward its flood limit with its messages; past it, the connection is
//! closed (1008), since a control frame has no error to answer it with and each ping costs a
//! flushed pong.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
};

use futures_util::{Sink, SinkExt, StreamExt};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Notify,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        error::{CapacityError, Error as WsError},
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

pub(crate) use crate::front::websocket::wire::Frame;
use crate::front::websocket::{
    Endpoint, envelope,
    wire::{FrameSink, WireIo},
};
use crate::{
    clock::now_millis,
    engine::{
        errors::ClientError,
        member::{Member, MemberKey},
        member_state::MemberState,
    },
    metrics::CloseReason,
};

/// Who writes a queued frame to an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writing {
    /// The caller, at once (one write, as Node's `ws` does).
    Now,
    /// The connection's task, woken for it (a large fan-out is shared with the tasks, which run
    /// on every worker).
    ByTask,
}

/// Why a connection is being closed, as its close frame says, and as it is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closing {
    pub code: CloseCode,
    pub reason: &'static str,
    pub counted_as: CloseReason,
}

/// Bytes the writer takes from the send buffer at a time, writes and flushes before it takes
/// more (also the WebSocket layer's write buffer, which keeps its size for the connection's
/// life). The write deadline then judges the progress of one chunk, not of a whole burst (a
/// client that reads 16 KiB within `WS_WRITE_TIMEOUT` is never cut for the size of what it was
/// sent), and the connection's reader gets a turn between chunks.
pub(crate) const WRITE_CHUNK_BYTES: usize = 16 * 1024;

/// How long a connection the gateway closes waits for the client's close frame, and how many
/// frames it reads meanwhile (a flooder is not read for long).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const CLOSE_WAIT_FRAMES: usize = 10_000;

/// The send buffer: frames in order, what it holds (frames waiting, and those the writer took and
/// has not written yet), and a close to send after them.
#[derive(Debug, Default)]
struct Outbox {
    frames: VecDeque<Frame>,
    /// Frames waiting or being written.
    count: usize,
    /// Their bytes. Frames are counted until they are written, not until the writer takes them:
    /// what a connection holds is bounded by the limits, writes in progress included.
    bytes: usize,
    closing: Option<Closing>,
}

/// The send-buffer limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BufferLimits {
    pub frames: usize,
    pub bytes: usize,
}

/// What the writer takes from the send buffer.
#[derive(Debug)]
enum Taken {
    /// Frames to write, in order; once written, they are given back with [`Outbox::written`].
    Frames {
        frames: Vec<Frame>,
        bytes: usize,
        /// More are waiting.
        more: bool,
    },
    /// Nothing is waiting and the connection is to be closed so.
    Close(Closing),
    /// Nothing to do.
    Idle,
}

impl Outbox {
    fn queue(&mut self, frame: Frame, limits: BufferLimits) -> Queued {
        if self.closing.is_some() {
            return Queued::Closing;
        }
        if !self.fits(frame.len(), limits) {
            let dropped = self.frames.len() + 1;
            // Free the memory now, not when the client gets round to reading. What the writer
            // holds stays counted until its write ends.
            self.count -= self.frames.len();
            self.bytes -= self.frames.iter().map(Frame::len).sum::<usize>();
            self.frames = VecDeque::new();
            self.closing = Some(Closing {
                code: CloseCode::Policy,
                reason: "send buffer full: the client did not read fast enough",
                counted_as: CloseReason::SlowConsumer,
            });
            return Queued::Overflowed(dropped);
        }
        self.count += 1;
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Queued::Yes
    }

    /// Whether one more frame of `len` bytes stays within `limits`.
    fn fits(&self, len: usize, limits: BufferLimits) -> bool {
        self.count < limits.frames && self.bytes + len <= limits.bytes
    }

    /// Counts a frame of `len` bytes that is written at once, without being buffered, when
    /// nothing is buffered before it, the connection is not closing and it fits; false otherwise
    /// (it is then queued as usual).
    fn count_unbuffered(&mut self, len: usize, limits: BufferLimits) -> bool {
        let admitted = self.frames.is_empty() && self.closing.is_none() && self.fits(len, limits);
        if admitted {
            self.count += 1;
            self.bytes += len;
        }
        admitted
    }

    fn take(&mut self, chunk_bytes: usize) -> Taken {
        let mut frames = Vec::new();
        let mut bytes = 0;
        while bytes < chunk_bytes
            && let Some(frame) = self.frames.pop_front()
        {
            bytes += frame.len();
            frames.push(frame);
        }
        if self.frames.is_empty() {
            // An idle connection holds no buffer: even a few slots kept between writes cost
            // about 1 KB of resident memory a connection (measured), through fragmentation.
            self.frames = VecDeque::new();
        }
        match (frames.is_empty(), self.closing) {
            (false, _) => Taken::Frames { frames, bytes, more: !self.frames.is_empty() },
            (true, Some(closing)) => Taken::Close(closing),
            (true, None) => Taken::Idle,
        }
    }

    fn written(&mut self, count: usize, bytes: usize) {
        self.count -= count;
        self.bytes -= bytes;
    }

    /// Gives back frames taken and not handed to the socket, to go first (still counted).
    fn put_back(&mut self, frames: impl DoubleEndedIterator<Item = Frame>) {
        for frame in frames.rev() {
            self.frames.push_front(frame);
        }
    }
}

/// The connection's write side, shared by its task and whoever queues a frame.
struct Writer {
    /// The socket, for the connection's frames (`wire`).
    wire: Arc<dyn FrameSink>,
    /// The WebSocket layer's side, for the frames it writes itself: the close handshake, and the
    /// pongs it owes (it writes them through `wire`, whole frames, after what `wire` has begun).
    control: Pin<Box<dyn Sink<Message, Error = WsError> + Send>>,
    /// Frames handed to the socket whose flush did not complete at once (count, bytes): the
    /// task completes it (under the write deadline) and only then are they written.
    unflushed: Option<(usize, usize)>,
    /// A write failed: the connection is gone, and the task ends it.
    failed: bool,
}

impl Writer {
    /// Hands `frames` to the socket and flushes, without waiting: what it cannot take now is put
    /// back in `outbox`, and a flush it cannot complete is left in `unflushed`. True when all of
    /// `frames` was written (false: the task has work left).
    fn write_now(&mut self, conn: &Conn, frames: &[Frame]) -> bool {
        // Outside tokio's budget: a socket's write counts against the writing task's turn, so a
        // publish call writing to its events' subscribers would find the socket refusing after
        // about 128 writes and leave the rest to the connections' tasks (a wake-up, a task
        // scheduled on another thread, and a lock each), at once and for every batch. How much
        // of a fan-out the publisher writes itself is the endpoint's choice (`Writing`).
        let mut once = true;
        let write = std::future::poll_fn(move |_| {
            Poll::Ready(std::mem::take(&mut once).then(|| self.write_polling(conn, frames)))
        });
        futures_util::FutureExt::now_or_never(tokio::task::coop::unconstrained(write)).flatten().unwrap_or(false)
    }

    fn write_polling(&mut self, conn: &Conn, frames: &[Frame]) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.wire.poll_frames(&mut cx, frames) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                self.failed = true;
                return false;
            }
            // The socket takes nothing now: the task writes them when it does.
            Poll::Pending => {
                conn.outbox().put_back(frames.iter().cloned());
                return false;
            }
        }
        let (count, bytes) = (frames.len(), frames.iter().map(Frame::len).sum());
        match self.wire.poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {
                conn.outbox().written(count, bytes);
                true
            }
            Poll::Ready(Err(_)) => {
                self.failed = true;
                false
            }
            Poll::Pending => {
                self.unflushed = Some((count, bytes));
                false
            }
        }
    }

    /// Writes `frames` and flushes, waiting (under the write deadline).
    async fn write(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.wire.poll_frames(cx, frames)).await?;
        std::future::poll_fn(|cx| self.wire.poll_flush(cx)).await
    }

    /// Flushes the socket and what the WebSocket layer holds (a pong it owes), waiting (under the
    /// write deadline); frames whose flush was pending are then written.
    async fn flush(&mut self, conn: &Conn) -> Result<(), WsError> {
        std::future::poll_fn(|cx| self.wire.poll_flush(cx)).await?;
        self.control.flush().await?;
        if let Some((count, bytes)) = self.unflushed.take() {
            conn.outbox().written(count, bytes);
        }
        Ok(())
    }
}

/// One connection's shared state (the endpoint's index holds it too).
pub(crate) struct Conn {
    pub id: u64,
    pub session: Arc<MemberState>,
    /// The client's address (through `TRUSTED_PROXIES`), for the admin view.
    pub address: Option<std::net::IpAddr>,
    outbox: Mutex<Outbox>,
    /// The socket's write side, once the connection is served. Held by the task while it waits
    /// on a write; taken without waiting by whoever queues a frame ([`Conn::queue`]).
    writer: tokio::sync::Mutex<Option<Writer>>,
    wake: Notify,
    /// When the client last sent anything (a pong included), in ms since the epoch.
    last_seen_ms: AtomicU64,
    /// The rooms it is in (internal names, shared with the endpoint's index).
    pub rooms: Mutex<Vec<Arc<str>>>,
    /// While a message with `since` is handled: what it joined and replied (`mod.rs`).
    pub recovering: Mutex<Option<Recovering>>,
    /// Rooms whose next events up to an offset it got from another node before it came here
    /// (a recovery from a position this node had not reached), so they are not sent twice.
    skips: Mutex<Vec<Skip>>,
    /// Whether `skips` holds any: delivery looks at them only then.
    skipping: AtomicBool,
}

/// A room's events this connection has already: those of `epoch` up to `through`.
#[derive(Debug)]
struct Skip {
    room: Box<str>,
    epoch: Arc<str>,
    through: u64,
}

/// A message with `since` being handled: the rooms with history it joined (internal names,
/// without filter values), and the replies its actions sent, held until what was missed is known.
#[derive(Debug, Default)]
pub(crate) struct Recovering {
    pub rooms: Vec<String>,
    pub replies: Vec<(String, Value)>,
}

/// What queueing a frame came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    /// It will be written.
    Yes,
    /// The buffer was full: this frame and those waiting were dropped, and the connection is
    /// closing. Returns how many were dropped.
    Overflowed(usize),
    /// The connection is closing already: dropped.
    Closing,
}

impl Conn {
    pub(crate) fn new(id: u64, session: Arc<MemberState>, address: Option<std::net::IpAddr>) -> Self {
        Self {
            id,
            session,
            address,
            outbox: Mutex::new(Outbox::default()),
            writer: tokio::sync::Mutex::new(None),
            wake: Notify::new(),
            last_seen_ms: AtomicU64::new(now_millis()),
            rooms: Mutex::new(Vec::new()),
            recovering: Mutex::new(None),
            skips: Mutex::new(Vec::new()),
            skipping: AtomicBool::new(false),
        }
    }

    /// Notes that it has `room`'s events of `epoch` up to `through` (replacing what was noted
    /// for the room). Called under the history's lock, as [`Self::has_already`] is.
    pub(crate) fn skip_through(&self, room: &str, epoch: Arc<str>, through: u64) {
        let mut skips = self.skips.lock().unwrap_or_else(|e| e.into_inner());
        skips.retain(|s| &*s.room != room);
        skips.push(Skip { room: room.into(), epoch, through });
        self.skipping.store(true, Ordering::Relaxed);
    }

    /// Whether it has this event of `room` already (see [`Self::skip_through`]); what is noted
    /// for the room is forgotten once the room goes past it or changes epoch.
    pub(crate) fn has_already(&self, room: &str, position: &crate::engine::history::Position) -> bool {
        if !self.skipping.load(Ordering::Relaxed) {
            return false;
        }
        let mut skips = self.skips.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = skips.iter().position(|s| &*s.room == room) else { return false };
        let skip = &skips[i];
        let has = skip.epoch == position.epoch && position.offset <= skip.through;
        if !has || position.offset == skip.through {
            skips.swap_remove(i);
            self.skipping.store(!skips.is_empty(), Ordering::Relaxed);
        }
        has
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` within `limits`: written by the caller now when `writing` says so and the
    /// connection is idle, otherwise by the connection's task, woken for it.
    pub(crate) fn queue(&self, frame: Frame, limits: BufferLimits, writing: Writing) -> Queued {
        // The common case, an idle connection: the frame is counted and written at once, without
        // going through the buffer (one lock of it fewer, and no buffer made for one frame).
        let frame = match writing {
            Writing::Now => match self.write_idle(frame, limits) {
                Ok(()) => return Queued::Yes,
                Err(frame) => frame,
            },
            Writing::ByTask => frame,
        };
        let queued = self.outbox().queue(frame, limits);
        match (&queued, writing) {
            (Queued::Yes, Writing::Now) => self.write_now(),
            (Queued::Yes, Writing::ByTask) | (Queued::Overflowed(_), _) => self.wake.notify_one(),
            (Queued::Closing, _) => {}
        }
        queued
    }

    /// The writer, when the caller's thread may write now: no one else is writing, nothing is
    /// left unflushed, the connection has not failed, and the caller's task has budget left
    /// (tokio's cooperative scheduling: a task that has used its turn yields; the writes
    /// themselves do not count against it, see [`Writer::write_now`]).
    fn free_writer(&self) -> Option<tokio::sync::MappedMutexGuard<'_, Writer>> {
        if !tokio::task::coop::has_budget_remaining() {
            return None;
        }
        let writer = self.writer.try_lock().ok()?;
        tokio::sync::MutexGuard::try_map(writer, |w| w.as_mut().filter(|w| w.unflushed.is_none() && !w.failed)).ok()
    }

    /// Writes `frame` from the caller's thread when nothing is queued before it and no one else is
    /// writing (the writer is held throughout, so whatever is queued meanwhile goes after it);
    /// counted within `limits` as a queued frame until written. `Err` gives it back to be queued.
    fn write_idle(&self, frame: Frame, limits: BufferLimits) -> Result<(), Frame> {
        let Some(mut writer) = self.free_writer() else { return Err(frame) };
        if !self.outbox().count_unbuffered(frame.len(), limits) {
            return Err(frame);
        }
        if !writer.write_now(self, std::slice::from_ref(&frame)) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes a chunk of what is queued from the caller's thread, without waiting, when no one
    /// else is writing; leaves to the task (waking it) what the socket cannot take now, what is
    /// left past the chunk, a close, or a connection whose writer is busy.
    fn write_now(&self) {
        let Some(mut writer) = self.free_writer() else { return self.wake.notify_one() };
        let (frames, more) = match self.outbox().take(WRITE_CHUNK_BYTES) {
            Taken::Frames { frames, more, .. } => (frames, more),
            Taken::Close(_) => return self.wake.notify_one(),
            Taken::Idle => return,
        };
        if !writer.write_now(self, &frames) || more {
            self.wake.notify_one();
        }
    }

    /// Asks the task to send what is queued, then close with `closing` (the first close asked
    /// for wins). Returns false when it was closing already.
    pub(crate) fn close(&self, closing: Closing) -> bool {
        let mut out = self.outbox();
        if out.closing.is_some() {
            return false;
        }
        out.closing = Some(closing);
        drop(out);
        self.wake.notify_one();
        true
    }

    /// Frames queued or being written now.
    pub(crate) fn queued(&self) -> usize {
        self.outbox().count
    }

    /// Whether it is closing.
    pub(crate) fn is_closing(&self) -> bool {
        self.outbox().closing.is_some()
    }

    /// Why the gateway is closing it, if it is.
    pub(crate) fn closing_reason(&self) -> Option<&'static str> {
        self.outbox().closing.map(|c| c.reason)
    }

    /// Milliseconds since the client last sent anything.
    pub(crate) fn silent_for_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_seen_ms.load(Ordering::Relaxed))
    }
}

/// Serves `conn` over `ws` (whose socket is `wire`'s) until either side closes; then the endpoint
/// forgets it.
pub(crate) async fn serve<S>(
    ep: Arc<Endpoint>,
    conn: Arc<Conn>,
    ws: WebSocketStream<WireIo<S>>,
    wire: Arc<dyn FrameSink>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (control, mut stream) = ws.split();
    *conn.writer.lock().await = Some(Writer { wire, control: Box::pin(control), unflushed: None, failed: false });
    // `Ok`: the gateway closes, with this close frame; `Err`: the connection is gone, for this.
    // Neither side is preferred: the writer gives the reader a turn after each chunk.
    let ending: Result<Closing, CloseReason> = loop {
        tokio::select! {
            () = conn.wake.notified() => {
                let mut writer = conn.writer.lock().await;
                let Some(writer) = writer.as_mut().filter(|w| !w.failed) else {
                    break Err(CloseReason::TransportError);
                };
                // What a queuer handed the socket and could not flush first.
                if writer.unflushed.is_some() && writer.flush(&conn).await.is_err() {
                    break Err(CloseReason::TransportError);
                }
                let taken = conn.outbox().take(WRITE_CHUNK_BYTES);
                match taken {
                    Taken::Frames { frames, bytes, more } => {
                        let count = frames.len();
                        if writer.write(&frames).await.is_err() {
                            break Err(CloseReason::TransportError);
                        }
                        conn.outbox().written(count, bytes);
                        if more {
                            conn.wake.notify_one();
                        }
                    }
                    Taken::Close(closing) => break Ok(closing),
                    Taken::Idle => {}
                }
            }
            message = stream.next() => match message {
                Some(Ok(message)) => {
                    conn.last_seen_ms.store(now_millis(), Ordering::Relaxed);
                    match message {
                        Message::Text(text) => ep.on_message(&conn, text.as_str()),
                        Message::Binary(_) => ep.on_binary(&conn),
                        Message::Close(_) => break Err(CloseReason::Client),
                        // Control frames count toward the flood limit like messages: each ping
                        // costs a flushed pong, and has no error to answer it with.
                        Message::Ping(_) | Message::Pong(_) if ep.control_frame_over_limit(&conn) => {
                            break Ok(Closing {
                                code: CloseCode::Policy,
                                reason: "too many frames: slow down",
                                counted_as: CloseReason::Flood,
                            });
                        }
                        // The WebSocket layer queues the pong; send it now.
                        Message::Ping(_) => {
                            let mut writer = conn.writer.lock().await;
                            let flushed = match writer.as_mut() {
                                Some(writer) => writer.flush(&conn).await,
                                None => Err(WsError::AlreadyClosed),
                            };
                            if flushed.is_err() {
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
            let mut writer = conn.writer.lock().await;
            let sent = match writer.as_mut() {
                Some(writer) => writer.control.send(Message::Close(Some(frame))).await.is_ok(),
                None => false,
            };
            drop(writer);
            if sent {
                // Closing a socket with unread data resets it, and the client would lose the close
                // frame saying why: read until its own close, briefly and only so much.
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    let mut left = CLOSE_WAIT_FRAMES;
                    while left > 0
                        && let Some(Ok(message)) = stream.next().await
                        && !message.is_close()
                    {
                        left -= 1;
                    }
                })
                .await;
            }
            counted_as
        }
        Err(reason) => reason,
    };
    // The socket closes once both halves are gone: the write half with the connection's state,
    // which a delivery in progress may still hold.
    *conn.writer.lock().await = None;
    ep.forget(&conn, counted_as);
}

/// A connection as the actions see it.
pub(crate) struct NativeMember<'a> {
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

    fn joined(&self, room: &str) {
        self.ep.note_recovering(self.conn, room);
    }

    fn send(&self, event: &str, data: Option<&Value>) {
        if let Some(recovering) = self.conn.recovering.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            recovering.replies.push((event.to_string(), data.cloned().unwrap_or(Value::Null)));
            return;
        }
        self.ep.queue(self.conn, envelope::render(event, &crate::clock::iso_now(), data.unwrap_or(&Value::Null)));
    }

    fn transport(&self) -> &'static str {
        "websocket"
    }

    fn relay(&self, _: &MemberState, _: Vec<String>, _: String, _: Value) -> Result<(), ClientError> {
        // The spec checker refuses relays on plain WebSocket endpoints; this is the backstop.
        Err(ClientError::validation("relays are not available on plain WebSocket endpoints"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn conn() -> Conn {
        Conn::new(1, MemberState::new(Identity::anonymous()), None)
    }

    fn text(n: usize) -> Frame {
        Frame::text("x".repeat(n).as_bytes())
    }

    fn taken(c: &Conn, chunk: usize) -> (usize, usize, bool) {
        match c.outbox().take(chunk) {
            Taken::Frames { frames, bytes, more } => (frames.len(), bytes, more),
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[test]
    fn the_buffer_is_bounded_in_frames_and_bytes_and_overflow_frees_it() {
        let limits = BufferLimits { frames: 3, bytes: 100 };
        let c = conn();
        assert_eq!(c.queue(text(10), limits, Writing::Now), Queued::Yes);
        assert_eq!(c.queue(text(10), limits, Writing::Now), Queued::Yes);
        assert_eq!(c.queue(text(10), limits, Writing::Now), Queued::Yes);
        assert_eq!(c.queue(text(10), limits, Writing::Now), Queued::Overflowed(4), "the fourth frame");
        assert_eq!(c.queued(), 0, "freed at once");
        assert!(c.is_closing());
        assert_eq!(c.queue(text(1), limits, Writing::Now), Queued::Closing);

        let c = conn();
        assert_eq!(c.queue(text(60), limits, Writing::Now), Queued::Yes);
        assert_eq!(c.queue(text(60), limits, Writing::Now), Queued::Overflowed(2), "bytes, before frames");
    }

    #[test]
    fn frames_count_until_they_are_written_not_until_they_are_taken() {
        let limits = BufferLimits { frames: 10, bytes: 100 };
        let c = conn();
        for _ in 0..4 {
            assert_eq!(c.queue(text(20), limits, Writing::Now), Queued::Yes);
        }
        assert_eq!(taken(&c, 30), (2, 40, true), "a chunk of at least 30 bytes, whole frames");
        assert_eq!(c.queued(), 4, "the two being written still count");
        assert_eq!(c.queue(text(20), limits, Writing::Now), Queued::Yes);
        assert_eq!(
            c.queue(text(20), limits, Writing::Now),
            Queued::Overflowed(4),
            "100 bytes held: 40 in the writer, 60 waiting"
        );
        assert_eq!(c.queued(), 2, "what the writer holds stays counted until written");
        c.outbox().written(2, 40);
        assert_eq!(c.queued(), 0);
        assert!(
            matches!(c.outbox().take(30), Taken::Close(closing) if closing.counted_as == CloseReason::SlowConsumer)
        );
    }

    #[test]
    fn a_reader_keeping_up_never_fills_the_buffer_and_an_emptied_buffer_holds_no_memory() {
        let limits = BufferLimits { frames: 100, bytes: 10_000 };
        let c = conn();
        // Twice the limits in all, taken and written as they come.
        for _ in 0..200 {
            assert_eq!(c.queue(text(100), limits, Writing::Now), Queued::Yes);
            let (n, bytes, _) = taken(&c, 1000);
            c.outbox().written(n, bytes);
        }
        for _ in 0..50 {
            c.queue(text(1), limits, Writing::Now);
        }
        assert!(c.outbox().frames.capacity() >= 50);
        let (n, bytes, more) = taken(&c, usize::MAX);
        assert_eq!((n, bytes, more), (50, 50, false));
        assert_eq!(c.outbox().frames.capacity(), 0, "a burst's slots are not kept");
        c.outbox().written(n, bytes);
        assert!(matches!(c.outbox().take(1), Taken::Idle));
    }

    #[test]
    fn the_first_close_wins_and_is_sent_after_what_is_queued() {
        let limits = BufferLimits { frames: 10, bytes: 100 };
        let c = conn();
        c.queue(text(5), limits, Writing::Now);
        let expired =
            Closing { code: CloseCode::Policy, reason: "token expired", counted_as: CloseReason::ServerDisconnect };
        assert!(c.close(expired));
        assert!(!c.close(Closing {
            code: CloseCode::Away,
            reason: "shutting down",
            counted_as: CloseReason::Shutdown
        }));
        assert_eq!(taken(&c, 100), (1, 5, false), "the queued frame first");
        assert!(matches!(c.outbox().take(100), Taken::Close(closing) if closing.reason == "token expired"));
    }

    #[test]
    fn a_room_noted_as_had_skips_its_events_up_to_the_offset_then_is_forgotten() {
        use crate::engine::history::Position;
        let c = conn();
        let at = |offset, epoch: &str| Position { offset, epoch: epoch.into() };
        assert!(!c.has_already("r", &at(1, "e")), "nothing noted");
        c.skip_through("r", "e".into(), 3);
        assert!(!c.has_already("other", &at(2, "e")), "another room");
        assert!(c.has_already("r", &at(2, "e")));
        assert!(c.has_already("r", &at(3, "e")), "up to the offset noted");
        assert!(!c.has_already("r", &at(4, "e")), "forgotten once reached");
        c.skip_through("r", "e".into(), 9);
        assert!(!c.has_already("r", &at(1, "f")), "another epoch is not what it had");
        assert!(!c.has_already("r", &at(5, "e")), "and the note went with it");
        assert!(!c.skipping.load(Ordering::Relaxed));
    }
}

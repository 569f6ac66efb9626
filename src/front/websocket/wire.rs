//! A connection's socket, shared by the WebSocket layer and the connection's writers.
//!
//! The layer (tungstenite) reads the client's frames and writes its own: the pongs it owes and
//! the close handshake. The connection's events do not go through it: each is encoded as a
//! WebSocket frame once ([`Frame`], a server's frames are not masked, so every connection gets
//! the same bytes) and written to the socket as it is, one write per delivery, where the layer
//! would take a lock of its split halves, copy the event into its buffer with a header, and write
//! that through four adapters (measured: about an eighth of the CPU a delivery costs in user
//! space, docs/benchmarks.md).
//!
//! Both write through [`Wire`]'s lock, whole frames only: what the socket does not take of a
//! frame is kept ([`Wire::poll_flush`] sends it) and written before anything else, so frames never
//! interleave. What is kept is one frame at most (nothing is written while it is there), and once
//! the layer has written a close frame nothing else is.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An event or a heartbeat ping, encoded as an unmasked WebSocket frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The frame's header and payload.
    wire: Bytes,
    /// The payload's length.
    payload: usize,
}

/// The opcode of a text frame, with FIN (an event is one frame).
const TEXT: u8 = 0x81;
/// A ping without a payload, with FIN.
const PING: &[u8] = &[0x89, 0x00];
/// The opcode of a close frame.
const CLOSE_OPCODE: u8 = 0x8;

impl Frame {
    /// A text frame carrying `text`.
    #[cfg(test)]
    pub(crate) fn text(text: &[u8]) -> Self {
        Self::writing(|out| out.extend_from_slice(text))
    }

    /// A text frame whose payload `write` writes (UTF-8): written where the frame is sent from,
    /// after room left for the header, so the payload is not copied again.
    pub(crate) fn writing(write: impl FnOnce(&mut Vec<u8>)) -> Self {
        const ROOM: usize = 10;
        let mut wire = Vec::with_capacity(ROOM + 128);
        wire.resize(ROOM, 0);
        write(&mut wire);
        let len = wire.len() - ROOM;
        let start = match len {
            0..=125 => {
                wire[ROOM - 1] = len as u8;
                ROOM - 2
            }
            126..=0xFFFF => {
                wire[ROOM - 3] = 126;
                wire[ROOM - 2..ROOM].copy_from_slice(&(len as u16).to_be_bytes());
                ROOM - 4
            }
            _ => {
                wire[ROOM - 9] = 127;
                wire[ROOM - 8..ROOM].copy_from_slice(&(len as u64).to_be_bytes());
                0
            }
        };
        wire[start] = TEXT;
        Self { wire: Bytes::from(wire).slice(start..), payload: len }
    }

    /// A heartbeat ping.
    pub(crate) fn ping() -> Self {
        Self { wire: Bytes::from_static(PING), payload: 0 }
    }

    /// Its payload's length: what the send buffer's byte limit counts.
    pub(crate) fn len(&self) -> usize {
        self.payload
    }

    /// Its payload.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.wire[self.wire.len() - self.payload..]
    }

    /// The frame as the socket gets it.
    #[cfg(test)]
    pub(crate) fn as_wire(&self) -> &[u8] {
        &self.wire
    }
}

/// The socket and what is left of a frame it did not take whole.
pub(crate) struct Wire<S> {
    state: Mutex<State<S>>,
}

struct State<S> {
    io: S,
    /// The rest of a frame the socket took part of: written before anything else.
    rest: Bytes,
    /// The layer wrote a close frame: nothing follows it.
    closed: bool,
}

/// The write side the connection's writers see (the socket's type erased).
pub(crate) trait FrameSink: Send + Sync {
    /// Writes `frames` whole, in one write, or keeps what the socket did not take to flush;
    /// `Pending` when the socket takes nothing now (none of them is written).
    fn poll_frames(&self, cx: &mut Context<'_>, frames: &[Frame]) -> Poll<io::Result<()>>;

    /// Writes what is left of a frame and flushes the socket.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// The socket shared: `Wire` for the connection's writers, the stream for the WebSocket layer.
pub(crate) fn shared<S>(io: S) -> (Arc<Wire<S>>, WireIo<S>) {
    let wire = Arc::new(Wire { state: Mutex::new(State { io, rest: Bytes::new(), closed: false }) });
    (wire.clone(), WireIo(wire))
}

impl<S> Wire<S> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: AsyncWrite + Unpin> State<S> {
    /// Writes what is left of a frame; `Ready(Ok)` once nothing is.
    fn poll_rest(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.rest.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.rest.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is left of a frame, then flushes the socket.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rest(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes `bytes`, whole frames, after what is left of an earlier one, keeping what the
    /// socket does not take now (`keep` makes it from how much was written).
    fn poll_whole(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        keep: impl FnOnce(usize) -> Bytes,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_rest(cx))?;
        if self.closed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")));
        }
        let n = ready!(Pin::new(&mut self.io).poll_write(cx, bytes))?;
        if n == 0 && !bytes.is_empty() {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        if n < bytes.len() {
            self.rest = keep(n);
        }
        Poll::Ready(Ok(bytes.len()))
    }
}

impl<S: AsyncWrite + Unpin + Send> FrameSink for Wire<S> {
    fn poll_frames(&self, cx: &mut Context<'_>, frames: &[Frame]) -> Poll<io::Result<()>> {
        let mut state = self.state();
        match frames {
            [] => Poll::Ready(Ok(())),
            // One frame (a delivery): written as it is, shared by every member.
            [frame] => state.poll_whole(cx, &frame.wire, |n| frame.wire.slice(n..)).map_ok(|_| ()),
            // Several (what a connection had queued, up to a chunk): one write, as the
            // WebSocket layer's buffer did, not one per frame.
            _ => {
                let mut all = Vec::with_capacity(frames.iter().map(|f| f.wire.len()).sum());
                frames.iter().for_each(|f| all.extend_from_slice(&f.wire));
                let all = Bytes::from(all);
                state.poll_whole(cx, &all, |n| all.slice(n..)).map_ok(|_| ())
            }
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.state().poll_flush(cx)
    }
}

/// The socket as the WebSocket layer reads and writes it.
pub(crate) struct WireIo<S>(Arc<Wire<S>>);

impl<S: AsyncRead + Unpin> AsyncRead for WireIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0.state().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WireIo<S> {
    /// Takes the layer's buffer whole (it holds whole frames): what the socket does not take now
    /// is kept, so that no event is written into the middle of a pong or a close.
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.0.state();
        let written = ready!(state.poll_whole(cx, buf, |n| Bytes::copy_from_slice(&buf[n..])))?;
        if has_close(buf) {
            state.closed = true;
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.state().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.state();
        ready!(state.poll_rest(cx))?;
        Pin::new(&mut state.io).poll_shutdown(cx)
    }
}

/// Whether `frames` (whole server frames, unmasked, as the layer writes them) hold a close frame.
fn has_close(mut frames: &[u8]) -> bool {
    while frames.len() >= 2 {
        if frames[0] & 0x0F == CLOSE_OPCODE {
            return true;
        }
        let (header, len): (usize, usize) = match frames[1] & 0x7F {
            126 if frames.len() >= 4 => (4, u16::from_be_bytes([frames[2], frames[3]]) as usize),
            127 if frames.len() >= 10 => {
                let mut len = [0; 8];
                len.copy_from_slice(&frames[2..10]);
                (10, usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX))
            }
            126 | 127 => return false,
            len => (2, len as usize),
        };
        let masked = if frames[1] & 0x80 != 0 { 4 } else { 0 };
        frames = frames.get(header.saturating_add(masked).saturating_add(len)..).unwrap_or_default();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::frame::{
        FrameHeader,
        coding::{Control, Data, OpCode},
    };

    use super::*;

    #[test]
    fn frames_carry_their_length_in_each_of_the_three_forms() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
            let text = "x".repeat(len);
            let frame = Frame::text(text.as_bytes());
            let mut cursor = Cursor::new(frame.as_wire());
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert!(header.mask.is_none(), "a server's frames are not masked");
            assert_eq!(length, len as u64);
            assert_eq!(&frame.as_wire()[cursor.position() as usize..], text.as_bytes());
            assert_eq!(frame.payload(), text.as_bytes());
            assert_eq!(frame.len(), len);
        }
        let ping = Frame::ping();
        let (header, length) = FrameHeader::parse(&mut Cursor::new(ping.as_wire())).unwrap().unwrap();
        assert_eq!((header.opcode, length), (OpCode::Control(Control::Ping), 0));
    }

    #[test]
    fn a_close_is_found_behind_other_frames() {
        let pong = [0x8A, 0x02, b'h', b'i'];
        let close = [0x88, 0x02, 0x03, 0xE8];
        assert!(!has_close(&pong));
        assert!(has_close(&close));
        assert!(has_close(&[&pong[..], &close[..]].concat()));
        assert!(!has_close(&[Frame::text(&[b'a'; 300]).as_wire(), &pong[..]].concat()));
        assert!(has_close(&[Frame::text(&[b'a'; 300]).as_wire(), &close[..]].concat()));
    }

    /// A socket that takes 64 bytes until its reader reads them.
    #[tokio::test]
    async fn what_the_socket_does_not_take_goes_first_and_frames_never_interleave() {
        let (client, server) = tokio::io::duplex(64);
        let (wire, mut io) = shared(server);
        let big = Frame::text(&[b'a'; 200]);
        let small = Frame::text(b"b");
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // The socket takes 64 bytes of the first frame; the rest is kept.
        assert!(matches!(wire.poll_frames(&mut cx, std::slice::from_ref(&big)), Poll::Ready(Ok(()))));
        assert!(wire.poll_flush(&mut cx).is_pending());
        assert!(
            wire.poll_frames(&mut cx, std::slice::from_ref(&small)).is_pending(),
            "nothing is written while a rest is kept"
        );
        // The layer's frame waits for the rest too.
        assert!(Pin::new(&mut io).poll_write(&mut cx, &[0x8A, 0x00]).is_pending());
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        std::future::poll_fn(|cx| wire.poll_flush(cx)).await.unwrap();
        // Several at once: one write, in order.
        std::future::poll_fn(|cx| wire.poll_frames(cx, &[small.clone(), big.clone()])).await.unwrap();
        io.write_all(&[0x8A, 0x00]).await.unwrap();
        io.flush().await.unwrap();
        io.write_all(&[0x88, 0x00]).await.unwrap();
        let after_close = std::future::poll_fn(|cx| wire.poll_frames(cx, std::slice::from_ref(&small))).await;
        assert_eq!(after_close.unwrap_err().kind(), io::ErrorKind::BrokenPipe, "nothing follows a close");
        io.shutdown().await.unwrap();
        drop((io, wire));
        let all = reader.await.unwrap();
        let expected = [big.as_wire(), small.as_wire(), big.as_wire(), &[0x8A, 0x00], &[0x88, 0x00]].concat();
        assert_eq!(all, expected);
    }
}

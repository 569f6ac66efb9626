//! One TCP connection, as the gateway guards it: a write deadline, a way to cut it from outside,
//! and a cap on how many connections one address may hold.
//!
//! - [`GuardedIo`] wraps the socket hyper (and, after an upgrade, the WebSocket) reads and writes.
//!   A write that cannot complete within the write timeout (the peer stopped reading and the
//!   kernel's buffers are full) cuts the connection: the pending write and every later read and
//!   write fail, so both halves of an upgraded WebSocket end, and whatever their tasks held
//!   (queued messages included) is freed. Without this, a writer blocked on a peer that never
//!   reads holds its socket's queue forever: the engine's own close waits behind that write.
//! - [`ConnectionGuard`] is the connection's handle, put into every request's extensions so that
//!   a Socket.IO session can be cut by the engine (a slow consumer, a refused handshake). A
//!   connection that carries a session's WebSocket also counts what it writes against that
//!   session's [`Backlog`].
//! - [`ConnectionLimiter`] counts open connections per peer address.
//!
//! "Complete" means flushed: partial progress does not reset the deadline, so a peer reading a
//! trickle cannot hold a large message (and the queue behind it) for ever. This is the Go hub's
//! `writeWait` (gorilla/websocket) applied to every connection.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_util::task::AtomicWaker;

pub(crate) use crate::metrics::CutReason;
use crate::{
    metrics::Metrics,
    net::{backlog::Backlog, v3_connect::ConnectFilter},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

/// The handle of one TCP connection: whether it was cut, the tasks to wake when it is, and the
/// backlog of the Socket.IO session it carries (a WebSocket), which its writes drain.
#[derive(Debug, Default)]
pub(crate) struct ConnectionGuard {
    cut: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
    backlog: OnceLock<Arc<Backlog>>,
    /// It carries socket.io-client 2.x's WebSocket: what is read from now on passes through
    /// `v3_connect`.
    v3_frames: AtomicBool,
}

impl ConnectionGuard {
    /// Cuts the connection: its pending and future reads and writes fail. Returns false when it
    /// was already cut.
    pub(crate) fn cut(&self) -> bool {
        let first = !self.cut.swap(true, Ordering::AcqRel);
        if first {
            self.reader.wake();
            self.writer.wake();
        }
        first
    }

    /// Whether the connection was cut.
    pub(crate) fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    /// From now on, what is written on this connection drains `backlog` (the connection carries
    /// that session's WebSocket). A connection carries one session: the first one set stays.
    pub(crate) fn carry(&self, backlog: Arc<Backlog>) {
        let _ = self.backlog.set(backlog);
    }

    /// What is read on this connection from now on is socket.io-client 2.x's WebSocket frames,
    /// whose CONNECT queries `v3_connect` drops.
    pub(crate) fn carries_v3_websocket(&self) {
        self.v3_frames.store(true, Ordering::Release);
    }

    fn wrote(&self, n: usize) {
        if let Some(backlog) = self.backlog.get() {
            backlog.wrote(n);
        }
    }
}

/// Called once per connection cut by its own write deadline, so the caller can count it.
pub(crate) type OnCut = Arc<dyn Fn(CutReason) + Send + Sync>;

/// A connection's socket with a write deadline and an outside cut.
pub(crate) struct GuardedIo<T> {
    inner: T,
    guard: Arc<ConnectionGuard>,
    write_timeout: Duration,
    /// Running while a write or flush is blocked; cleared by a completed flush. Boxed and made
    /// only when needed: an idle connection pays one pointer for it.
    deadline: Option<Pin<Box<Sleep>>>,
    on_cut: OnCut,
    /// socket.io-client 2.x's WebSocket frames, filtered as they are read (see `v3_connect`),
    /// with what was filtered and not yet handed on.
    v3: Option<Box<(ConnectFilter, Vec<u8>)>>,
    /// Held for the connection's life: releases its place in the counts on drop.
    _slot: IpSlot,
}

impl<T> GuardedIo<T> {
    /// Wraps `inner`, which `guard` can cut; writes must complete within `write_timeout`.
    pub(crate) fn new(
        inner: T,
        guard: Arc<ConnectionGuard>,
        write_timeout: Duration,
        on_cut: OnCut,
        slot: IpSlot,
    ) -> Self {
        Self { inner, guard, write_timeout, deadline: None, on_cut, v3: None, _slot: slot }
    }

    fn cut_error() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, "the connection was cut by the gateway")
    }

    /// A write or flush is blocked: run the deadline, and cut the connection when it passes.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.guard.writer.register(cx.waker());
        let timeout = self.write_timeout;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            self.deadline = None;
            if self.guard.cut() {
                (self.on_cut)(CutReason::WriteTimeout);
            }
            return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the peer did not read for the write timeout"));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> GuardedIo<T> {
    fn poll_read_inner(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.guard.is_cut() {
            return Poll::Ready(Err(Self::cut_error()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => {
                self.guard.reader.register(cx.waker());
                // A cut between the check above and the registration must not be missed.
                if self.guard.is_cut() { Poll::Ready(Err(Self::cut_error())) } else { Poll::Pending }
            }
            ready => ready,
        }
    }

    /// Reads through the 2.x CONNECT filter: hands on what it let through, reading more while it
    /// holds everything read so far.
    fn poll_read_v3(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some((_, out)) = self.v3.as_deref_mut()
                && !out.is_empty()
            {
                let n = out.len().min(buf.remaining());
                buf.put_slice(&out[..n]);
                out.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 4096];
            let mut read = ReadBuf::new(&mut scratch);
            std::task::ready!(self.poll_read_inner(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Some((filter, out)) = self.v3.as_deref_mut() {
                filter.feed(read.filled(), out);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.v3.is_none() && this.guard.v3_frames.load(Ordering::Acquire) {
            this.v3 = Some(Box::default());
        }
        match this.v3 {
            Some(_) => this.poll_read_v3(cx, buf),
            None => this.poll_read_inner(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.guard.is_cut() {
            return Poll::Ready(Err(Self::cut_error()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.blocked(cx).map(Err),
            Poll::Ready(Ok(n)) => {
                this.guard.wrote(n);
                Poll::Ready(Ok(n))
            }
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.guard.is_cut() {
            return Poll::Ready(Err(Self::cut_error()));
        }
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.blocked(cx).map(Err),
            Poll::Ready(Ok(n)) => {
                this.guard.wrote(n);
                Poll::Ready(Ok(n))
            }
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.guard.is_cut() {
            return Poll::Ready(Err(Self::cut_error()));
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.blocked(cx).map(Err),
            Poll::Ready(Ok(())) => {
                // Everything handed to us has reached the kernel: the next block starts afresh.
                this.deadline = None;
                Poll::Ready(Ok(()))
            }
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Open connections, counted per peer address and in all (the `tcp_connections` gauge), and
/// capped per address. Trusted proxies are counted but not capped: they carry everyone's
/// connections.
#[derive(Debug)]
pub(crate) struct ConnectionLimiter {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    metrics: Arc<Metrics>,
}

/// A connection's place in the counts, released when the connection's socket is dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    limiter: Arc<ConnectionLimiter>,
    /// `None` for an exempt (trusted proxy) connection, counted only in all.
    ip: Option<IpAddr>,
}

impl ConnectionLimiter {
    /// At most `max` open connections per address (0: no cap).
    pub(crate) fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::new(HashMap::new()), metrics })
    }

    /// Takes a place for a connection from `ip` (`exempt`: not capped); `None` when the address
    /// is at its cap.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Option<IpSlot> {
        if !exempt {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(ip).or_default();
            if self.max > 0 && *count >= self.max {
                return None;
            }
            *count += 1;
        }
        self.metrics.tcp_connections.inc();
        Some(IpSlot { limiter: self.clone(), ip: (!exempt).then_some(ip) })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.limiter.metrics.tcp_connections.dec();
        let Some(ip) = self.ip else { return };
        let mut open = self.limiter.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn slot() -> IpSlot {
        ConnectionLimiter::new(0, Arc::default()).acquire("127.0.0.1".parse().unwrap(), false).unwrap()
    }

    fn counting() -> (OnCut, Arc<AtomicUsize>) {
        let cuts = Arc::new(AtomicUsize::new(0));
        let c = cuts.clone();
        (
            Arc::new(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            }),
            cuts,
        )
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_is_cut_at_the_deadline() {
        // A 1 KiB pipe whose far end never reads: the second write blocks.
        let (near, _far) = tokio::io::duplex(1024);
        let guard = Arc::new(ConnectionGuard::default());
        let (on_cut, cuts) = counting();
        let mut io = GuardedIo::new(near, guard.clone(), Duration::from_millis(100), on_cut, slot());
        let started = std::time::Instant::now();
        let err = io.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100), "not before the deadline");
        assert!(guard.is_cut());
        assert_eq!(cuts.load(Ordering::SeqCst), 1);
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn a_reading_peer_is_never_cut() {
        // Each write is read within ~80 ms, far inside the 1 s deadline, while all of them take
        // longer than it: only completed flushes resetting the deadline keep the connection.
        let (near, mut far) = tokio::io::duplex(1024);
        let guard = Arc::new(ConnectionGuard::default());
        let (on_cut, cuts) = counting();
        let mut io = GuardedIo::new(near, guard.clone(), Duration::from_secs(1), on_cut, slot());
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 512];
            while total < 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                total += far.read(&mut buf).await.unwrap();
            }
        });
        let started = std::time::Instant::now();
        for _ in 0..16 {
            io.write_all(&[1u8; 1024]).await.unwrap();
            io.flush().await.unwrap();
        }
        reader.await.unwrap();
        assert!(started.elapsed() > Duration::from_secs(1), "the writes outlast one deadline");
        assert!(!guard.is_cut());
        assert_eq!(cuts.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_cut_from_outside_wakes_a_blocked_reader() {
        let (near, _far) = tokio::io::duplex(1024);
        let guard = Arc::new(ConnectionGuard::default());
        let (on_cut, _) = counting();
        let mut io = GuardedIo::new(near, guard.clone(), Duration::from_secs(60), on_cut, slot());
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            io.read(&mut buf).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(guard.cut());
        let result = tokio::time::timeout(Duration::from_secs(1), reading).await.expect("woken").unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        assert!(!guard.cut(), "a second cut reports it was cut already");
    }

    #[test]
    fn addresses_are_capped_and_places_come_back() {
        let metrics = Arc::new(Metrics::default());
        let limiter = ConnectionLimiter::new(2, metrics.clone());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = limiter.acquire(ip, false).unwrap();
        let _b = limiter.acquire(ip, false).unwrap();
        assert!(limiter.acquire(ip, false).is_none());
        assert!(limiter.acquire("10.0.0.2".parse().unwrap(), false).is_some(), "per address");
        let _proxy = limiter.acquire(ip, true).expect("trusted proxies are not capped");
        assert_eq!(metrics.tcp_connections.get(), 3, "the dropped one is gone; the proxy counts");
        drop(a);
        assert!(limiter.acquire(ip, false).is_some());
        assert_eq!(ConnectionLimiter::new(0, metrics).acquire(ip, false).map(|_| ()), Some(()), "0 means no cap");
    }
}

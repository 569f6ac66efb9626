//! The accept loop: every TCP connection is served by hyper's HTTP/1 connection builder, with
//! upgrades, until told to stop; then in-flight requests are drained.
//!
//! This replaces `axum::serve` for two reasons:
//! - per-connection memory decides how many sockets a node holds. A Socket.IO session keeps its
//!   handshake request's parts (headers, URI) for its whole life, and those point into hyper's
//!   per-connection read buffer, which `axum::serve`'s HTTP/1-or-2 detection grows: one pinned
//!   buffer per socket. Here the parts are copied into fresh, exact-size allocations before the
//!   request reaches the router, so the read buffer is freed once a WebSocket has upgraded;
//! - every connection is guarded before anything is read from it: a cap per peer address, a
//!   deadline for request headers (which also closes idle keep-alive connections), a size limit
//!   on them, and a write deadline (see [`crate::net::connection`]). A client that opens connections
//!   and sends nothing, half a request line, or stops reading what it asked for cannot hold them.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

use crate::{
    metrics::Metrics,
    net::{
        client_ip::TrustedProxies,
        connection::{ConnectionGuard, ConnectionLimiter, GuardedIo, OnCut},
    },
};

/// Protection of the listener and its connections, whatever they carry.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `HTTP_HEADER_TIMEOUT`: time a client has to send a request's headers; an idle keep-alive
    /// connection is closed after it too.
    pub header_timeout: Duration,
    /// `HTTP_MAX_HEADER_SIZE`: the largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// `MAX_CONNECTIONS_PER_IP` (0: no cap): open connections one peer address may hold;
    /// trusted proxies are not capped.
    pub max_connections_per_ip: usize,
    /// `WS_WRITE_TIMEOUT`: a write to a client must complete within it, or the connection is cut.
    pub write_timeout: Duration,
}

/// The smallest head limit hyper accepts (its read buffer cannot be smaller).
pub const MIN_HEADER_BYTES: usize = 8192;

/// Longest pause after failed accepts (out of file descriptors, usually), doubling from 10 ms.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What the accept loop enforces on every connection.
pub(crate) struct ServeOptions {
    /// Timeouts and caps.
    pub http: HttpConfig,
    /// Peers whose connections are not capped per address (they carry many clients).
    pub trusted_proxies: TrustedProxies,
    /// Counts refused and cut connections.
    pub metrics: Arc<Metrics>,
}

/// Connections the kernel may hold for us before we accept them (it clamps this to
/// `net.core.somaxconn`). Binding through the standard library gives 128, which a burst of new
/// connections overflows: long-polling clients open one per request, and after a published event
/// hundreds of them come back at once; the kernel then drops their SYNs and they retry a second
/// later (docs/benchmarks.md). Node listens with 511.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with `LISTEN_BACKLOG`.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As the standard library does: a restarted gateway can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `stop` completes, then waits for in-flight HTTP requests
/// (not for upgraded WebSockets, which belong to Socket.IO and are closed by it).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    stop: impl Future<Output = ()>,
) {
    // Each connection task holds a receiver: sending asks them to finish gracefully, and the
    // sender's `closed()` resolves once every one of them is done.
    let (drain, draining) = watch::channel(false);
    let limiter = ConnectionLimiter::new(options.http.max_connections_per_ip, options.metrics.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.http.header_timeout)
        .max_buf_size(options.http.max_header_bytes);
    let metrics = options.metrics.clone();
    let on_cut: OnCut = Arc::new(move |reason| metrics.connections_cut(reason));
    let mut backoff = Duration::ZERO;
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning, and say so
                    // once per episode rather than on every attempt.
                    if backoff.is_zero() {
                        tracing::warn!(error = %e, "accept failed; backing off until connections close");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
        };
        let Some(slot) = limiter.acquire(remote.ip(), options.trusted_proxies.contains(remote.ip())) else {
            options.metrics.connections_refused_per_ip.inc();
            tracing::debug!(%remote, "connection refused: too many open from this address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let guard = Arc::new(ConnectionGuard::default());
        let io = GuardedIo::new(stream, guard.clone(), options.http.write_timeout, on_cut.clone(), slot);
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(move |request: Request<Incoming>| {
            let request = detach_from_read_buffer(request, remote, &guard).map(axum::body::Body::new);
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|never| match never {})) }
        }));
        let mut draining = draining.clone();
        let connection = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = draining.wait_for(|&drain| drain).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(draining);
    let _ = drain.send(true);
    drain.closed().await;
}

/// Rebuilds the request's URI and headers in allocations of their own (hyper's point into the
/// connection's read buffer), and records the peer address as axum's `ConnectInfo` and the
/// connection's guard, so a session opened by this request can be cut.
fn detach_from_read_buffer(
    request: Request<Incoming>,
    remote: SocketAddr,
    guard: &Arc<ConnectionGuard>,
) -> Request<Incoming> {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        // `from_bytes` copies; standard header names are static and cost nothing.
        let (Ok(name), Ok(mut fresh)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        else {
            continue;
        };
        fresh.set_sensitive(value.is_sensitive());
        headers.append(name, fresh);
    }
    parts.headers = headers;
    parts.extensions.insert(ConnectInfo(remote));
    parts.extensions.insert(guard.clone());
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of connections larger than the standard library's backlog of 128 completes its
    /// TCP handshakes while the accept loop is busy (here: not accepting at all), instead of
    /// having SYNs dropped and retried a second later.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog() {
        // The kernel clamps the backlog to somaxconn (4096 by default since Linux 5.4).
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 600.min(somaxconn.saturating_sub(8));
        if burst <= 200 {
            eprintln!("skipped: net.core.somaxconn is {somaxconn}, too low to tell 128 from more");
            return;
        }
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects =
            (0..burst).map(|_| tokio::time::timeout(Duration::from_millis(800), tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, burst, "connections left waiting for the kernel to retry their SYN");
        drop(listener);
    }
}

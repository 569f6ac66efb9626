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
//!   on them, and a write deadline (see [`crate::connection`]). A client that opens connections
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
    client_ip::TrustedProxies,
    config::HttpConfig,
    connection::{ConnectionGuard, ConnectionLimiter, GuardedIo, OnCut},
    metrics::Metrics,
};

/// Longest pause after failed accepts (out of file descriptors, usually), doubling from 10 ms.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What the accept loop enforces on every connection.
pub struct ServeOptions {
    /// Timeouts and caps.
    pub http: HttpConfig,
    /// Peers whose connections are not capped per address (they carry many clients).
    pub trusted_proxies: TrustedProxies,
    /// Counts refused and cut connections.
    pub metrics: Arc<Metrics>,
}

/// Serves `router` on `listener` until `stop` completes, then waits for in-flight HTTP requests
/// (not for upgraded WebSockets, which belong to Socket.IO and are closed by it).
pub async fn serve(listener: TcpListener, router: Router, options: ServeOptions, stop: impl Future<Output = ()>) {
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

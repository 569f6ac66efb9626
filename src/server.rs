//! The accept loop: every TCP connection is served by hyper's HTTP/1 connection builder, with
//! upgrades, until told to stop; then in-flight requests are drained.
//!
//! This replaces `axum::serve` because per-connection memory decides how many sockets a node
//! holds. A Socket.IO session keeps its handshake request's parts (headers, URI) for its whole
//! life, and those point into hyper's per-connection read buffer, which `axum::serve`'s
//! HTTP/1-or-2 detection grows: one pinned buffer per socket. Here the parts are copied into
//! fresh, exact-size allocations before the request reaches the router, so the read buffer is
//! freed once a WebSocket has upgraded.

use std::{convert::Infallible, future::Future, net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

/// Serves `router` on `listener` until `stop` completes, then waits for in-flight HTTP requests
/// (not for upgraded WebSockets, which belong to Socket.IO and are closed by it).
pub async fn serve(listener: TcpListener, router: Router, stop: impl Future<Output = ()>) {
    // Each connection task holds a receiver: sending asks them to finish gracefully, and the
    // sender's `closed()` resolves once every one of them is done.
    let (drain, draining) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(move |request: Request<Incoming>| {
            let request = detach_from_read_buffer(request, remote).map(axum::body::Body::new);
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|never| match never {})) }
        }));
        let mut draining = draining.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
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
/// connection's read buffer), and records the peer address as axum's `ConnectInfo`.
fn detach_from_read_buffer(request: Request<Incoming>, remote: SocketAddr) -> Request<Incoming> {
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
    Request::from_parts(parts, body)
}

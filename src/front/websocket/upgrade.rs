//! Who may open a plain WebSocket, decided before the upgrade, as the Go hub's handler did: a
//! refused client gets an HTTP status and a JSON body (`{"error": {"type", "message"}}`), never a
//! WebSocket.
//!
//! - not a WebSocket handshake: 426;
//! - an `Origin` that is not one of `CORS_ORIGINS`: 403 (a page of another site would otherwise
//!   open a socket with the user's cookie or stored token: cross-site WebSocket hijacking);
//! - over the spec's per-address connection limit: 429;
//! - credentials, in order: `X-API-Key` (when the spec allows API keys: a service, with role
//!   `service`, of the key's own tenant for a key of `TENANT_API_KEYS`, where `?tenantId=` may be
//!   left out and another tenant's is 403; of the tenant the client names in `?tenantId=` for a
//!   key of `API_KEYS`), then a token from `?token=`, `Authorization: Bearer` or the spec's
//!   cookie. Missing (when required), invalid or expired: 401; a cookie from an origin that is
//!   not one of `CORS_ORIGINS` (the gateway's own pages included): 403.

use std::sync::Arc;

use axum::{body::Body, extract::ConnectInfo};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

use crate::front::websocket::{Endpoint, conn, wire};
use crate::{
    auth::{ApiKeys, Identity, TokenError, TokenSource, handshake_token, query_param},
    engine::member_state::MemberState,
    metrics::Rejection,
};

/// Bytes reserved for reading each connection (it grows for larger messages).
const READ_BUFFER: usize = 256;

/// Answers a handshake to `ep`: the 101 and the connection's task, or a refusal.
pub(crate) async fn upgrade(ep: Arc<Endpoint>, api_keys: &ApiKeys, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let Some(key) = websocket_key(&parts.headers) else {
        let mut response = refusal(
            StatusCode::UPGRADE_REQUIRED,
            "validation",
            &format!("{} is a WebSocket endpoint: connect with ws:// (or wss://)", ep.spec.path),
        );
        response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    };
    let started = std::time::Instant::now();
    let admitted = admit(&ep, api_keys, &parts);
    ep.metrics.handshake.observe(started.elapsed());
    let identity = match admitted {
        Ok(identity) => identity,
        Err((status, kind, message)) => return refusal(status, kind, &message),
    };

    let address = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(peer)| ep.trusted_proxies.client_ip(peer.ip(), &parts.headers));
    let on_upgrade = hyper::upgrade::on(Request::from_parts(parts, body));
    let settings = &ep.settings;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(conn::WRITE_CHUNK_BYTES)
        .max_message_size(Some(settings.max_message_bytes))
        .max_frame_size(Some(settings.max_message_bytes));
    let tenant = identity.tenant_id.clone();
    ep.registering_changed(&tenant, true);
    let session = MemberState::new(identity);
    tokio::spawn(async move {
        let upgraded = on_upgrade.await;
        let registered = upgraded.map(|io| {
            let conn = ep.register(session, address);
            (io, conn)
        });
        ep.registering_changed(&tenant, false);
        match registered {
            Ok((io, conn)) => {
                let (wire, io) = wire::shared(TokioIo::new(io));
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                conn::serve(ep, conn, ws, wire).await;
            }
            Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade did not complete"),
        }
    });

    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// Who the client is, or the status, error type and message to refuse it with (counted): its
/// origin, the per-address limit, then its credentials. Its time is the endpoint's handshake time.
fn admit(
    ep: &Endpoint,
    api_keys: &ApiKeys,
    parts: &http::request::Parts,
) -> Result<Identity, (StatusCode, &'static str, String)> {
    // Browsers send their page's origin; other clients send none. Refusing foreign pages here
    // also keeps a cookie token from being used by another site's page. A page of the gateway
    // itself (its example page, at whatever address it was reached) is not foreign.
    if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !ep.shared.allowed_origins.iter().any(|allowed| allowed == origin)
        && !same_origin(origin, &parts.headers)
    {
        ep.metrics.rejected(Rejection::Auth);
        return Err((StatusCode::FORBIDDEN, "auth", "this origin may not connect (see CORS_ORIGINS)".into()));
    }
    if let Some(limiter) = &ep.connect_limiter
        && let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        && limiter.check(ep.trusted_proxies.client_ip(peer.ip(), &parts.headers)).is_err()
    {
        ep.shared.metrics.connections_throttled.inc();
        ep.metrics.rejected(Rejection::Throttle);
        return Err((StatusCode::TOO_MANY_REQUESTS, "rate_limit", "Too many connections".into()));
    }
    identify(ep, api_keys, parts).map_err(|(status, message)| {
        ep.shared.metrics.auth_refused.inc();
        // 400: an API key without the tenant it serves, a request to fix rather than a bad key.
        ep.metrics.rejected(if status == StatusCode::BAD_REQUEST { Rejection::Validation } else { Rejection::Auth });
        tracing::info!(endpoint = %ep.spec.path, reason = %message, "connection refused");
        (status, "auth", message)
    })
}

/// Whether `origin` is the gateway's own: its host and port are the `Host` the request was sent
/// to (the check gorilla/websocket makes by default). A foreign page cannot make a browser send
/// another origin than its own, and a site that rebinds its name to the gateway sends its own
/// name in both, with its own cookies, never the gateway's.
fn same_origin(origin: &str, headers: &http::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let with_port = |a: &str| {
        let has_port = a.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
        if has_port { a.to_ascii_lowercase() } else { format!("{}{default_port}", a.to_ascii_lowercase()) }
    };
    with_port(authority) == with_port(host)
}

/// The client's `Sec-WebSocket-Key`, when the request is a WebSocket handshake.
fn websocket_key(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|part| part.trim().eq_ignore_ascii_case(token))
    };
    (has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13"))
    .then(|| headers.get(header::SEC_WEBSOCKET_KEY).cloned())
    .flatten()
}

/// Who the client is, or the status and message of the refusal.
fn identify(ep: &Endpoint, api_keys: &ApiKeys, parts: &http::request::Parts) -> Result<Identity, (StatusCode, String)> {
    let policy = &ep.spec.auth;
    let query = parts.uri.query().unwrap_or_default();
    if policy.api_keys && parts.headers.get("x-api-key").is_some_and(|k| !k.is_empty()) {
        let Some(caller) = api_keys.caller(&parts.headers) else {
            return Err((StatusCode::UNAUTHORIZED, "Invalid API key".into()));
        };
        let named = query_param(query, "tenantId").filter(|t| !t.is_empty());
        return match caller.acting_for(named) {
            Ok(Some(tenant)) => Ok(Identity::service(&tenant)),
            Ok(None) => Err((
                StatusCode::BAD_REQUEST,
                "a connection with a platform API key names its tenant: add ?tenantId=".into(),
            )),
            Err(other) => Err((
                StatusCode::FORBIDDEN,
                format!(
                    "?tenantId={other} is not this API key's tenant: a tenant's key connects to its own tenant only (leave ?tenantId= out)"
                ),
            )),
        };
    }
    let cookie = policy.cookie.then_some(ep.shared.auth_cookie_name.as_str());
    let token = match handshake_token(None, parts, cookie) {
        None if !policy.required => return Ok(Identity::anonymous()),
        None => return Err((StatusCode::UNAUTHORIZED, TokenError::Missing.to_string())),
        // A browser attaches cookies whatever page opens the socket: a cookie counts only from
        // `CORS_ORIGINS` (or from a client that sends no Origin, which is no browser), not from
        // every page the origin check lets through (the gateway's own).
        Some((_, TokenSource::Cookie))
            if parts
                .headers
                .get(header::ORIGIN)
                .is_some_and(|o| !ep.shared.allowed_origins.iter().any(|allowed| o == allowed.as_str())) =>
        {
            return Err((StatusCode::FORBIDDEN, TokenError::ForeignOrigin.to_string()));
        }
        Some((token, _)) => token,
    };
    let identity = ep.shared.verifier.verify(&token).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?;
    if policy.require_tenant && identity.tenant_id.is_none() {
        return Err((StatusCode::UNAUTHORIZED, TokenError::MissingTenant.to_string()));
    }
    Ok(identity)
}

fn refusal(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = json!({ "error": { "type": kind, "message": message } }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_page_of_the_gateway_itself_is_same_origin() {
        assert!(same_origin("http://127.0.0.1:3000", &host("127.0.0.1:3000")));
        assert!(same_origin("http://Gateway.example", &host("gateway.example:80")));
        assert!(same_origin("https://gateway.example", &host("gateway.example:443")));
        assert!(same_origin("http://[::1]:3000", &host("[::1]:3000")));
        assert!(!same_origin("http://evil.example:3000", &host("127.0.0.1:3000")));
        assert!(!same_origin("http://127.0.0.1:3001", &host("127.0.0.1:3000")));
        assert!(!same_origin("https://gateway.example", &host("gateway.example:80")));
        assert!(!same_origin("null", &host("127.0.0.1:3000")));
        assert!(!same_origin("http://127.0.0.1:3000", &http::HeaderMap::new()));
    }
}

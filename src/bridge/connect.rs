//! Opening a bridge's connection: the URL its protocol and transport dial (Socket.IO's `path`,
//! `EIO=4&transport=websocket|polling`, the namespace from the URL's path), the credentials as the
//! seed sends them (`bearer` and `basic` as `Authorization`, `query` in the URL, `custom` as
//! headers), the destination checked against `BRIDGE_ALLOWED_HOSTS` and dialled at the address
//! checked, TLS for `wss://`/`https://` (verified for the URL's host), and the WebSocket or
//! polling handshake. For Socket.IO, the Engine.IO open and the namespace's CONNECT, the same
//! over either transport.
//!
//! Socket.IO's `transports` are tried in their order, the next one only when the one before
//! could not be opened at all (socket.io-client's `tryAllTransports`); once a transport is open,
//! a refusal (CONNECT_ERROR) is final. A session stays on the transport it opened with (no
//! upgrade from polling to WebSocket).

use std::{net::SocketAddr, pin::Pin, time::Duration};

use base64::Engine as _;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig};

use super::{
    polling,
    socketio::{self, Frame, Packet},
    transport::{Heard, Io, Transport},
};
use crate::{
    config::{BridgeAuth, BridgeProtocol, ProviderConfig},
    net::{outbound::AllowedHosts, percent_encode, tls::OutboundTls},
};

/// The largest message a peer may send a bridge; beyond, the connection fails.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// An open connection to the peer.
pub(super) struct Opened {
    pub ws: Transport,
    /// Socket.IO: the namespace and how long the server may go without pinging.
    pub socketio: Option<(String, Duration)>,
}

/// Where and how to reach the peer, from the provider's configuration.
struct Peer<'a> {
    config: &'a ProviderConfig,
    /// `wss://` or `https://`.
    secure: bool,
    host: String,
    port: u16,
    /// `host:port` as the URL writes it.
    authority: String,
    /// The URL's path (`ws`: the WebSocket's path; Socket.IO: the namespace).
    path: String,
    /// The query: the URL's own, then `authQuery`'s entries (Socket.IO adds its own before them).
    query: Vec<String>,
    /// The credentials' headers (`bearer`, `basic`, `custom`).
    headers: http::HeaderMap,
}

impl<'a> Peer<'a> {
    fn new(config: &'a ProviderConfig) -> Result<Self, String> {
        let url = config.url.as_deref().unwrap_or_default();
        let uri: http::Uri = url.parse().map_err(|_| "the url is not a URL".to_string())?;
        let secure = matches!(uri.scheme_str(), Some("wss" | "https"));
        let mut query: Vec<String> =
            uri.query().filter(|q| !q.is_empty()).map(|q| vec![q.to_string()]).unwrap_or_default();
        if let BridgeAuth::Query(entries) = &config.auth {
            query.extend(
                entries.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v.expose_secret()))),
            );
        }
        let mut headers = http::HeaderMap::new();
        let header = |v: String| {
            http::HeaderValue::from_str(&v).map_err(|_| "a credential is not a valid header value".to_string())
        };
        match &config.auth {
            BridgeAuth::Bearer(token) => {
                headers.insert(http::header::AUTHORIZATION, header(format!("Bearer {}", token.expose_secret()))?);
            }
            BridgeAuth::Basic { username, password } => {
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose_secret()));
                headers.insert(http::header::AUTHORIZATION, header(format!("Basic {pair}"))?);
            }
            BridgeAuth::Custom(entries) => {
                for (name, value) in entries {
                    let name = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| "a header name is invalid".to_string())?;
                    headers.insert(name, header(value.expose_secret().to_string())?);
                }
            }
            BridgeAuth::None | BridgeAuth::Query(_) => {}
        }
        for header in headers.values_mut() {
            header.set_sensitive(true);
        }
        Ok(Self {
            config,
            secure,
            host: uri.host().unwrap_or_default().to_string(),
            port: uri.port_u16().unwrap_or(if secure { 443 } else { 80 }),
            authority: uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default(),
            path: uri.path().to_string(),
            query,
            headers,
        })
    }

    /// `scheme://authority{path}` with the query `engine` (Socket.IO's) and the peer's own.
    fn url(&self, scheme: &str, path: &str, engine: Option<&str>) -> String {
        let query: Vec<&str> = engine.into_iter().chain(self.query.iter().map(String::as_str)).collect();
        let target = format!("{scheme}://{}{path}", self.authority);
        if query.is_empty() { target } else { format!("{target}?{}", query.join("&")) }
    }

    /// The checked address to dial.
    async fn address(&self, allowed: &AllowedHosts) -> Result<SocketAddr, String> {
        allowed.resolve(&self.host, self.port).await
    }

    /// A WebSocket to `target`: TCP to the checked address, TLS when secure, the handshake.
    async fn websocket(&self, target: String, allowed: &AllowedHosts, tls: &OutboundTls) -> Result<Transport, String> {
        let mut request =
            target.into_client_request().map_err(|_| "the url cannot be dialled as a WebSocket".to_string())?;
        request.headers_mut().extend(self.headers.clone());
        let address = self.address(allowed).await?;
        let (host, port) = (&self.host, self.port);
        let stream = TcpStream::connect(address).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let stream: Pin<Box<dyn Io>> =
            if self.secure { Box::pin(tls.connect(host, stream).await?) } else { Box::pin(stream) };
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await.map_err(
            |e| match e {
                tokio_tungstenite::tungstenite::Error::Http(answer) => format!("WebSocket error: {}", answer.status()),
                other => format!("WebSocket error: {other}"),
            },
        )?;
        Ok(Transport::WebSocket(Box::new(ws)))
    }

    /// An Engine.IO long-polling session at `target`, over an HTTP client that dials only the
    /// checked address.
    async fn polling(&self, target: String, allowed: &AllowedHosts, tls: &OutboundTls) -> Result<Transport, String> {
        let url: reqwest::Url = target.parse().map_err(|_| "the url cannot be polled".to_string())?;
        let address = self.address(allowed).await?;
        // `enableCompression` asks for gzip/deflate answers (Node's engine.io compresses those
        // of 1 KiB or more); requests are sent as they are.
        let compress = self.config.enable_compression;
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, address)
            .use_preconfigured_tls(tls.client_config())
            .http1_only()
            .gzip(compress)
            .deflate(compress)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Transport::Polling(Box::new(polling::open(http, url, self.headers.clone()).await?)))
    }
}

/// Connects to the peer `config` names (no timeout here: the caller bounds the whole of it).
pub(super) async fn open(config: &ProviderConfig, allowed: &AllowedHosts, tls: &OutboundTls) -> Result<Opened, String> {
    let peer = Peer::new(config)?;
    let (ws, http) = if peer.secure { ("wss", "https") } else { ("ws", "http") };
    if config.protocol == BridgeProtocol::Ws {
        let link = peer.websocket(peer.url(ws, &peer.path, None), allowed, tls).await?;
        return Ok(Opened { ws: link, socketio: None });
    }
    let namespace = match peer.path.as_str() {
        "" | "/" => "/".to_string(),
        path => path.trim_end_matches('/').to_string(),
    };
    let engine_path = format!("{}/", config.path.trim_end_matches('/'));
    let mut failures = Vec::new();
    let transports: &[String] =
        if config.transports.is_empty() { &["websocket".to_string()] } else { &config.transports };
    for transport in transports {
        let opened = if transport == "polling" {
            peer.polling(peer.url(http, &engine_path, Some("EIO=4&transport=polling")), allowed, tls).await
        } else {
            peer.websocket(peer.url(ws, &engine_path, Some("EIO=4&transport=websocket")), allowed, tls).await
        };
        match opened {
            Ok(link) => return handshake(link, namespace).await,
            Err(e) => failures.push((transport, e)),
        }
    }
    Err(match failures.as_slice() {
        [(_, only)] => only.clone(),
        all => all.iter().map(|(t, e)| format!("{t}: {e}")).collect::<Vec<_>>().join("; "),
    })
}

/// Engine.IO open, then the namespace's CONNECT and its answer (pings answered meanwhile).
async fn handshake(mut link: Transport, namespace: String) -> Result<Opened, String> {
    let mut heartbeat = None;
    loop {
        let text = match link.next().await {
            Ok(Heard::Text(text)) => text,
            Ok(Heard::Other) => continue,
            Err(e) => return Err(format!("{e} during the handshake")),
        };
        match socketio::read(&text, &namespace) {
            Frame::Open { ping_interval, ping_timeout } => {
                heartbeat = Some(ping_interval + ping_timeout);
                link.send(socketio::connect(&namespace)).await?;
            }
            Frame::Ping => link.send("3".into()).await?,
            Frame::Packet(Packet::Connected) if heartbeat.is_some() => {
                return Ok(Opened { ws: link, socketio: Some((namespace, heartbeat.unwrap_or_default())) });
            }
            Frame::Packet(Packet::ConnectError(message)) => {
                return Err(format!("Socket.IO connection to {namespace} refused: {message}"));
            }
            Frame::Close => return Err("the peer closed the session during the handshake".into()),
            _ => {}
        }
    }
}

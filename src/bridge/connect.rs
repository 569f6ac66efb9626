//! Opening a bridge's connection: the URL its protocol dials (Socket.IO's `path` and
//! `EIO=4&transport=websocket`, the namespace from the URL's path), the credentials as the seed
//! sends them (`bearer` and `basic` as `Authorization`, `query` in the URL, `custom` as headers),
//! the destination checked against `BRIDGE_ALLOWED_HOSTS` and dialled at the address checked,
//! and the WebSocket handshake. For Socket.IO, the Engine.IO open and the namespace's CONNECT.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, protocol::WebSocketConfig},
};

use super::socketio::{self, Frame, Packet};
use crate::{
    config::{BridgeAuth, BridgeProtocol, ProviderConfig},
    net::{outbound::AllowedHosts, percent_encode},
};

/// The largest message a peer may send a bridge; beyond, the connection fails.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// An open connection to the peer.
pub(super) struct Opened {
    pub ws: WebSocketStream<TcpStream>,
    /// Socket.IO: the namespace and how long the server may go without pinging.
    pub socketio: Option<(String, Duration)>,
}

/// Connects to the peer `config` names (no timeout here: the caller bounds the whole of it).
pub(super) async fn open(config: &ProviderConfig, allowed: &AllowedHosts) -> Result<Opened, String> {
    let url = config.url.as_deref().unwrap_or_default();
    let uri: http::Uri = url.parse().map_err(|_| "the url is not a URL".to_string())?;
    let secure = matches!(uri.scheme_str(), Some("wss" | "https"));
    if secure {
        return Err("wss:// and https:// peers need TLS, which this release does not have yet".into());
    }
    let host = uri.host().unwrap_or_default().to_string();
    let port = uri.port_u16().unwrap_or(80);
    let address = allowed.resolve(&host, port).await?;
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let mut query: Vec<String> = uri.query().filter(|q| !q.is_empty()).map(|q| vec![q.to_string()]).unwrap_or_default();
    let (target, namespace) = match config.protocol {
        BridgeProtocol::Ws => (format!("ws://{authority}{}", uri.path()), None),
        BridgeProtocol::SocketIo => {
            query.push("EIO=4&transport=websocket".into());
            let namespace = match uri.path() {
                "" | "/" => "/".to_string(),
                path => path.trim_end_matches('/').to_string(),
            };
            (format!("ws://{authority}{}/", config.path.trim_end_matches('/')), Some(namespace))
        }
    };
    if let BridgeAuth::Query(entries) = &config.auth {
        query.extend(
            entries.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v.expose_secret()))),
        );
    }
    let target = if query.is_empty() { target } else { format!("{target}?{}", query.join("&")) };
    let mut request =
        target.into_client_request().map_err(|_| "the url cannot be dialled as a WebSocket".to_string())?;
    let headers = request.headers_mut();
    let header =
        |v: String| http::HeaderValue::from_str(&v).map_err(|_| "a credential is not a valid header value".to_string());
    match &config.auth {
        BridgeAuth::Bearer(token) => {
            headers.insert(http::header::AUTHORIZATION, header(format!("Bearer {}", token.expose_secret()))?);
        }
        BridgeAuth::Basic { username, password } => {
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose_secret()));
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
    let stream = TcpStream::connect(address).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let ws_config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config)).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(answer) => format!("WebSocket error: {}", answer.status()),
            other => format!("WebSocket error: {other}"),
        })?;
    let Some(namespace) = namespace else {
        return Ok(Opened { ws, socketio: None });
    };
    // Engine.IO open, then the namespace's CONNECT and its answer (pings answered meanwhile).
    let mut heartbeat = None;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err("the peer closed the connection during the handshake".into());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("WebSocket error: {e}")),
        };
        match socketio::read(&text, &namespace) {
            Frame::Open { ping_interval, ping_timeout } => {
                heartbeat = Some(ping_interval + ping_timeout);
                ws.send(Message::text(socketio::connect(&namespace)))
                    .await
                    .map_err(|e| format!("WebSocket error: {e}"))?;
            }
            Frame::Ping => ws.send(Message::text("3")).await.map_err(|e| format!("WebSocket error: {e}"))?,
            Frame::Packet(Packet::Connected) if heartbeat.is_some() => {
                return Ok(Opened { ws, socketio: Some((namespace, heartbeat.unwrap_or_default())) });
            }
            Frame::Packet(Packet::ConnectError(message)) => {
                return Err(format!("Socket.IO connection to {namespace} refused: {message}"));
            }
            Frame::Close => return Err("the peer closed the session during the handshake".into()),
            _ => {}
        }
    }
}

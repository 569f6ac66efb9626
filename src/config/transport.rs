//! Engine.IO's settings (the seed's `@WebSocketGateway` options): heartbeat, upgrade and connect
//! timeouts, message and queue sizes, where Socket.IO is served, which protocol versions and how
//! many new sessions per address are let in.

use std::time::Duration;

use anyhow::bail;

use super::{PUBLISH_CALLS_BUFFERED, env::Env, file::FileConfig, limits::LimitsConfig};
use crate::spec::{RateLimit, durations::parse_rate};

/// Engine.IO settings, named after the seed's `@WebSocketGateway` options.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `WS_PING_INTERVAL`.
    pub ping_interval: Duration,
    /// `WS_PING_TIMEOUT`.
    pub ping_timeout: Duration,
    /// `WS_UPGRADE_TIMEOUT`.
    pub upgrade_timeout: Duration,
    /// `WS_MAX_HTTP_BUFFER_SIZE`: the largest message or polling body, in bytes. Beyond it the
    /// transport closes the connection, as socket.io does.
    pub max_http_buffer_size: u64,
    /// `WS_MAX_BUFFER_SIZE`: packets queued per session beyond which emits to it are dropped and
    /// it is ended (by default eight full publish batches).
    pub max_buffer_size: usize,
    /// `WS_MAX_BUFFER_BYTES`: bytes queued per session and not yet written beyond which it is
    /// ended as a slow consumer (by default four full publish bodies).
    pub max_buffer_bytes: u64,
    /// `SOCKETIO_PATH`: where Socket.IO is served (socket.io-client's `path` option).
    pub path: String,
    /// `ALLOW_EIO3`: whether socket.io-client 2.x (Engine.IO protocol 3) may connect.
    pub allow_eio3: bool,
    /// `WS_CONNECT_TIMEOUT`: how long an Engine.IO session may stay without a namespace.
    pub connect_timeout: Duration,
    /// `WS_HANDSHAKE_RATE_LIMIT` (`max/per`, `0` turns it off): new Engine.IO sessions per client
    /// address.
    pub handshake_limit: Option<RateLimit>,
    /// `WS_BIND_SESSION_TO_IP`: requests naming a session (`sid`) must come from the address
    /// that opened it.
    pub bind_sessions_to_ip: bool,
}

impl TransportConfig {
    /// Everything but the session queues, which [`Self::size_queues`] sizes once the API's
    /// limits are known.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        Ok(TransportConfig {
            ping_interval: env.duration("WS_PING_INTERVAL", file.ws_ping_interval, 25_000)?,
            ping_timeout: env.duration("WS_PING_TIMEOUT", file.ws_ping_timeout, 60_000)?,
            upgrade_timeout: env.duration("WS_UPGRADE_TIMEOUT", file.ws_upgrade_timeout, 10_000)?,
            max_http_buffer_size: env.number("WS_MAX_HTTP_BUFFER_SIZE", file.ws_max_http_buffer_size, 1_000_000u64)?,
            // Sized from the API's limits by `size_queues`.
            max_buffer_size: 0,
            max_buffer_bytes: 0,
            path: socketio_path(env.get("SOCKETIO_PATH").or_else(|| file.socketio_path.clone()))?,
            allow_eio3: env.boolean("ALLOW_EIO3", file.allow_eio3, true)?,
            connect_timeout: env.duration("WS_CONNECT_TIMEOUT", file.ws_connect_timeout, 10_000)?,
            handshake_limit: match env.get("WS_HANDSHAKE_RATE_LIMIT").or_else(|| file.ws_handshake_rate_limit.clone()) {
                Some(v) => parse_rate(&v).map_err(|e| anyhow::anyhow!("WS_HANDSHAKE_RATE_LIMIT: {e}"))?,
                None => Some(RateLimit { max: 600, per: Duration::from_secs(60) }),
            },
            bind_sessions_to_ip: env.boolean("WS_BIND_SESSION_TO_IP", file.ws_bind_session_to_ip, true)?,
        })
    }

    /// `WS_MAX_BUFFER_SIZE` and `WS_MAX_BUFFER_BYTES`, by default sized from the API's limits.
    pub(super) fn size_queues(&mut self, env: &Env, file: &FileConfig, limits: &LimitsConfig) -> anyhow::Result<()> {
        // A Socket.IO session's queue holds the bursts the API accepts, several publishers at
        // once included: a client that reads is never cut for a burst (README, slow consumers).
        // In packets twice that, for the replies and pings that share the queue.
        self.max_buffer_size = env.number(
            "WS_MAX_BUFFER_SIZE",
            file.ws_max_buffer_size,
            (2 * PUBLISH_CALLS_BUFFERED).saturating_mul(limits.api_max_batch),
        )?;
        self.max_buffer_bytes = env.number(
            "WS_MAX_BUFFER_BYTES",
            file.ws_max_buffer_bytes,
            PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_body_bytes) as u64,
        )?;
        if self.max_buffer_size == 0 || self.max_buffer_bytes == 0 {
            bail!("WS_MAX_BUFFER_SIZE and WS_MAX_BUFFER_BYTES must be at least 1");
        }
        Ok(())
    }
}

/// `SOCKETIO_PATH`: a path starting with `/`, without a trailing one (`/socket.io`).
fn socketio_path(value: Option<String>) -> anyhow::Result<String> {
    let path = value.unwrap_or_else(|| "/socket.io".to_string());
    let trimmed = path.trim().trim_end_matches('/');
    if !trimmed.starts_with('/') || trimmed.len() < 2 || trimmed.contains(['?', '#', ' ']) {
        bail!("SOCKETIO_PATH: `{path}` must be a path such as /socket.io");
    }
    Ok(trimmed.to_string())
}

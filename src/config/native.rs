//! The plain WebSocket front's settings (seed 001's hub protocol, specs with `transport:
//! websocket`), named after the Go hub's: heartbeat, send queue, largest message. The queue holds
//! at least one publish call of the largest size the API accepts.

use std::time::Duration;

use anyhow::bail;

use super::{PUBLISH_CALLS_BUFFERED, env::Env, file::FileConfig, limits::LimitsConfig};

/// Settings of plain WebSocket endpoints (specs with `transport: websocket`), named after the Go
/// hub's.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// `WS_NATIVE_PING_INTERVAL`: how often a ping frame is sent.
    pub ping_interval: Duration,
    /// `WS_NATIVE_PONG_WAIT`: how long a connection may stay silent (no pong, no message).
    pub pong_wait: Duration,
    /// `WS_NATIVE_SEND_BUFFER`: messages queued or being written per connection; beyond, it is
    /// closed. At least `API_MAX_BATCH`.
    pub send_buffer: usize,
    /// `WS_NATIVE_SEND_BUFFER_BYTES`: the same in bytes. At least `API_MAX_BODY_SIZE`.
    pub send_buffer_bytes: usize,
    /// `WS_NATIVE_MAX_MESSAGE_SIZE`: the largest client message; beyond, close 1009.
    pub max_message_bytes: usize,
}

impl NativeConfig {
    /// `WS_NATIVE_*`, the send queue by default sized from the API's `limits`.
    pub(super) fn from_sources(env: &Env, file: &FileConfig, limits: &LimitsConfig) -> anyhow::Result<Self> {
        let native = NativeConfig {
            ping_interval: env.duration("WS_NATIVE_PING_INTERVAL", file.ws_native_ping_interval, 54_000)?,
            pong_wait: env.duration("WS_NATIVE_PONG_WAIT", file.ws_native_pong_wait, 60_000)?,
            send_buffer: env.number(
                "WS_NATIVE_SEND_BUFFER",
                file.ws_native_send_buffer,
                PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_batch),
            )?,
            send_buffer_bytes: env.number(
                "WS_NATIVE_SEND_BUFFER_BYTES",
                file.ws_native_send_buffer_bytes,
                PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_body_bytes),
            )?,
            max_message_bytes: env.number(
                "WS_NATIVE_MAX_MESSAGE_SIZE",
                file.ws_native_max_message_size,
                64 * 1024usize,
            )?,
        };
        if native.send_buffer == 0 || native.send_buffer_bytes == 0 || native.max_message_bytes == 0 {
            bail!(
                "WS_NATIVE_SEND_BUFFER, WS_NATIVE_SEND_BUFFER_BYTES and WS_NATIVE_MAX_MESSAGE_SIZE must be at least 1"
            );
        }
        if native.send_buffer < limits.api_max_batch || native.send_buffer_bytes < limits.api_max_body_bytes {
            bail!(
                "WS_NATIVE_SEND_BUFFER ({}) and WS_NATIVE_SEND_BUFFER_BYTES ({}) must hold at least one publish call \
                 (API_MAX_BATCH, {}; API_MAX_BODY_SIZE, {}): one batch would otherwise cut a client that reads as fast as it can",
                native.send_buffer,
                native.send_buffer_bytes,
                limits.api_max_batch,
                limits.api_max_body_bytes
            );
        }
        if native.ping_interval.is_zero() || native.pong_wait <= native.ping_interval {
            bail!("WS_NATIVE_PONG_WAIT must be longer than WS_NATIVE_PING_INTERVAL, which must be above zero");
        }
        Ok(native)
    }
}

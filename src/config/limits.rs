//! Limits the engine applies to every socket and every API call, whatever the namespace: rooms,
//! event sizes and rates, publish bodies and batches, last-known state, and how long and how much
//! the API remembers of its writes (idempotency keys and event ids). The send queues of both
//! fronts are sized from the API's limits ([`PUBLISH_CALLS_BUFFERED`]).

use std::time::Duration;

use anyhow::bail;

use super::{env::Env, file::FileConfig};

/// Publish calls of the largest size the API accepts that a connection's queue holds by default
/// (`WS_MAX_BUFFER_SIZE` and `WS_MAX_BUFFER_BYTES` on Socket.IO, `WS_NATIVE_SEND_BUFFER` and
/// `WS_NATIVE_SEND_BUFFER_BYTES` on the plain endpoint): several publishers may burst at once,
/// and a client that keeps reading must get every event.
pub const PUBLISH_CALLS_BUFFERED: usize = 4;

/// Most idempotency keys and event ids one node keeps in memory (a single node's store, and a
/// cluster node's fallback while Redis is away); past it the oldest go first, counted in
/// `realtime_gateway_idempotency_evicted_total`.
pub const IDEMPOTENCY_MAX_ENTRIES: usize = 100_000;
/// The bytes those entries may take together (each about 200 bytes plus its answer's body).
pub const IDEMPOTENCY_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Limits the engine applies to every socket, whatever its namespace.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Rooms one socket may be in (`WS_MAX_ROOMS_PER_SOCKET`).
    pub max_rooms_per_socket: usize,
    /// Default largest client event payload in bytes (`WS_MAX_EVENT_SIZE`); a spec may lower or
    /// raise it per event. Larger events get a validation error; the connection stays.
    pub max_event_bytes: usize,
    /// Client events per second per socket, all events together (`WS_MAX_EVENTS_PER_SECOND`).
    pub events_per_second: u32,
    /// Largest HTTP API body in bytes (`API_MAX_BODY_SIZE`).
    pub api_max_body_bytes: usize,
    /// Most events in one publish call (`API_MAX_BATCH`).
    pub api_max_batch: usize,
    /// Last-known state one tenant may hold in one store, in bytes (`STATE_MAX_BYTES_PER_TENANT`).
    pub state_bytes_per_tenant: usize,
    /// Last-known state of all stores together, in bytes (`STATE_MAX_BYTES`).
    pub state_bytes: usize,
    /// Room history of all plain WebSocket endpoints together, in bytes (`HISTORY_MAX_BYTES`).
    pub history_bytes: usize,
    /// How long a write's answer (for its `Idempotency-Key`) and a published event's `id` are
    /// remembered (`IDEMPOTENCY_WINDOW`).
    pub idempotency_window: Duration,
}

impl LimitsConfig {
    /// `WS_MAX_ROOMS_PER_SOCKET`, `WS_MAX_EVENT_SIZE`, `WS_MAX_EVENTS_PER_SECOND`,
    /// `API_MAX_BODY_SIZE`, `API_MAX_BATCH`, `STATE_MAX_BYTES_PER_TENANT`, `STATE_MAX_BYTES`,
    /// `HISTORY_MAX_BYTES`, `IDEMPOTENCY_WINDOW`.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        let limits = LimitsConfig {
            max_rooms_per_socket: env.number("WS_MAX_ROOMS_PER_SOCKET", file.ws_max_rooms_per_socket, 100usize)?,
            max_event_bytes: env.number("WS_MAX_EVENT_SIZE", file.ws_max_event_size, 64 * 1024usize)?,
            events_per_second: env.number("WS_MAX_EVENTS_PER_SECOND", file.ws_max_events_per_second, 50u32)?,
            api_max_body_bytes: env.number("API_MAX_BODY_SIZE", file.api_max_body_size, 1_000_000usize)?,
            api_max_batch: env.number("API_MAX_BATCH", file.api_max_batch, 1000usize)?,
            state_bytes_per_tenant: env.number(
                "STATE_MAX_BYTES_PER_TENANT",
                file.state_max_bytes_per_tenant,
                4 * 1024 * 1024usize,
            )?,
            state_bytes: env.number("STATE_MAX_BYTES", file.state_max_bytes, 256 * 1024 * 1024usize)?,
            history_bytes: env.number("HISTORY_MAX_BYTES", file.history_max_bytes, 64 * 1024 * 1024usize)?,
            idempotency_window: env.duration("IDEMPOTENCY_WINDOW", file.idempotency_window, 300_000)?,
        };
        if limits.events_per_second == 0 {
            bail!("WS_MAX_EVENTS_PER_SECOND must be at least 1");
        }
        if limits.idempotency_window < Duration::from_secs(1) {
            bail!("IDEMPOTENCY_WINDOW must be at least 1s: a retry comes after the call it repeats");
        }
        Ok(limits)
    }
}

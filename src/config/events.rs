//! The backend event stream's bounds (`GET /api/v1/events/stream`): how much history a node
//! keeps for consumers that resume, how far behind a consumer may fall, and how often an idle
//! stream says it is alive.
//!
//! Fixed values, not environment variables (yet): they are generous for backends, and the README
//! lists them. Tests shrink them in code.

use std::time::Duration;

/// The event stream's bounds; [`Default`] is what the gateway runs with.
#[derive(Debug, Clone)]
pub struct EventStreamConfig {
    /// Events a node keeps for resuming consumers (`Last-Event-ID`), newest first kept.
    pub history_events: usize,
    /// Bytes (as sent) of those events: beyond either bound the oldest go.
    pub history_bytes: usize,
    /// Events a consumer may be behind the newest before it is cut.
    pub max_lag_events: usize,
    /// Bytes a consumer may be behind the newest before it is cut.
    pub max_lag_bytes: usize,
    /// How long a consumer with events waiting may take none before it is cut.
    pub stall: Duration,
    /// How often an idle stream sends `: keep-alive` (the SDK gives up after 45 s of silence).
    pub keep_alive: Duration,
}

impl Default for EventStreamConfig {
    fn default() -> Self {
        Self {
            history_events: 10_000,
            history_bytes: 32 * 1024 * 1024,
            max_lag_events: 10_000,
            max_lag_bytes: 16 * 1024 * 1024,
            stall: Duration::from_secs(5),
            keep_alive: Duration::from_secs(15),
        }
    }
}

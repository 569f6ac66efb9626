//! The Socket.IO front: specs served as namespaces on socketioxide.
//!
//! - `engineio`: the Engine.IO session front, which every request to the Socket.IO path passes
//!   before socketioxide sees it (handshake budgets, the session bound to its address, backlogs);
//! - `namespace`: admission (tokens) and the socketioxide handlers of one spec;
//! - `events`: a client event from packet to answer, over the engine's dispatch core;
//! - `deliver`: a published event emitted to this node's sockets, with or without acks;
//! - `history`: events of rooms with history kept and sent with their positions, and what a
//!   join read from a history (`since`, `replay`) sent to its socket;
//! - `skips`: the sockets that recovered ahead of this node, and the events they have already;
//! - `outbound`: an event encoded once and counted against each socket's backlog;
//! - `slow`: slow consumers, whose backlog ends their session;
//! - `timers`: the spec's periodic emits;
//! - `roster`: the sockets as the admin view sees them; `stats`: the API's counts.

pub(crate) mod engineio;
pub(crate) mod namespace;

mod deliver;
mod events;
mod history;
pub(crate) mod outbound;
pub(crate) mod roster;
mod skips;
mod slow;
mod stats;
mod timers;

use std::sync::atomic::AtomicU64;

use engineio::Sessions;
use std::sync::Arc;

use crate::net::{backlog::BacklogLimits, client_ip::TrustedProxies};

/// What every namespace of the Socket.IO front shares, beside the engine's `Shared`.
pub(crate) struct SocketIoShared {
    /// The Engine.IO front, which ends sessions' transports.
    pub sessions: Arc<Sessions>,
    /// When each namespace last looked for slow consumers (ms since the epoch), by index.
    pub slow_sweeps: Vec<AtomicU64>,
    /// How far behind a session may fall before it is ended as a slow consumer.
    pub backlog_limits: BacklogLimits,
    /// Where connections come from, for per-IP limits and the admin view's addresses.
    pub trusted_proxies: TrustedProxies,
}

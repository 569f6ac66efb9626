#![warn(missing_docs, unreachable_pub)]
//! realtime-gateway: a self-hosted, Socket.IO-compatible realtime gateway.
//!
//! Layout (ARCHITECTURE.md has the full map and which part may import which):
//! - `engine`: the engine core: specs served, dispatch, actions, publish and routing, state,
//!   limits, expiry; it knows no front, transport, HTTP route or Redis.
//! - `front`: the fronts over it: `front::socketio` (socketioxide, the Engine.IO session
//!   front) and `front::websocket` (the plain WebSocket endpoint).
//! - `node`: the engine and both fronts assembled as one node serves them.
//! - `http`: the publish API, health, readiness, metrics; [`page`]: what browsers get from the
//!   gateway itself; `admin`: the admin view on `/admin`; `cluster`: membership over Redis.
//! - `bridge`: outbound bridges to other servers (seed 003's external mode); `sink`: where the
//!   messages they receive go (the webhook).
//! - `net`: the accept loop, guarded connections, client addresses, transport backlogs.
//! - [`config`]: typed configuration, the only reader of the environment; [`spec`]: the
//!   namespace spec format; `rooms`: room names; [`auth`]: tokens and API keys;
//!   `metrics`: the Prometheus registry; `idempotency`: what the API remembers of its writes
//!   (the store's trait, this node's memory); `parse_errors`: values that do not parse, told in
//!   their writer's terms; `lifecycle`: serving or draining.
//! - [`codegen`]: TypeScript types written from the specs (`realtime-gateway codegen typescript`).
//! - [`app`]: assembles everything on one port and runs it; [`cli`], [`telemetry`]: the binary's
//!   helpers; `memory`: the allocator (mimalloc); `clock`: now, as the seeds wrote times.
//! - `fuzzing`: the parsers' entry points for the fuzz targets (`fuzz/`, docs/fuzzing.md).

pub(crate) mod admin;
pub mod app;
pub mod auth;
pub(crate) mod bridge;
pub mod cli;
pub(crate) mod clock;
pub(crate) mod cluster;
pub mod codegen;
pub mod config;
pub(crate) mod engine;
pub(crate) mod front;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod http;
pub(crate) mod idempotency;
pub(crate) mod lifecycle;
// Fuzz builds (cargo-fuzz sets `fuzzing`) keep the system allocator, which the sanitizers watch.
#[cfg(not(fuzzing))]
mod memory;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod node;
pub mod page;
pub(crate) mod parse_errors;
pub(crate) mod rooms;
pub(crate) mod sink;
pub mod spec;
pub mod telemetry;

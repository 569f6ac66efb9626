#![warn(missing_docs)]
//! realtime-gateway: a self-hosted, Socket.IO-compatible realtime gateway.
//!
//! Layout (ARCHITECTURE.md has the full map):
//! - [`config`]: typed configuration; the only reader of the environment.
//! - [`spec`]: the namespace spec format, its loader and checker. Knows nothing of sockets.
//! - [`rooms`]: room names; the only place that builds them.
//! - [`auth`]: tokens and API keys; [`client_ip`]: who a connection comes from.
//! - [`engine`]: serves specs on socketioxide and delivers published events.
//! - [`cluster`]: membership over Redis: the bus, the Redis inputs, outages.
//! - [`http`]: the publish API, health, readiness, metrics.
//! - [`page`]: what browsers get from the gateway itself: the example page, socket.io-client's
//!   bundle, the namespaces' description, dev mode's demo credentials.
//! - [`admin`]: the admin view, the official Socket.IO Admin UI's protocol on `/admin`.
//! - [`app`]: assembles everything on one port and runs it; [`server`]: the accept loop;
//!   [`connection`]: what guards each TCP connection; [`sessions`]: the Engine.IO front;
//!   [`backlog`]: how far behind a Socket.IO client's transport is; [`v3_connect`]:
//!   socket.io-client 2.x's CONNECT queries dropped from its WebSocket frames.
//! - [`parse_errors`]: what a value that does not parse is told as, in its writer's terms.
//! - [`cli`], [`telemetry`], [`memory`]: the binary's helpers.
//! - `fuzzing`: the parsers' entry points for the fuzz targets (`fuzz/`, docs/fuzzing.md).

pub mod admin;
pub mod app;
pub mod auth;
pub mod backlog;
pub mod cli;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod page;
pub mod parse_errors;
pub mod rooms;
pub mod server;
pub mod sessions;
pub mod spec;
pub mod telemetry;
pub mod v3_connect;

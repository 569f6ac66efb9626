//! The fronts: the protocols clients speak to the engine core. Each serves specs of one
//! transport, turns its frames into the engine's members and events, and the engine's answers and
//! deliveries back into frames. A front depends on the engine; the engine never names a front.
//!
//! - [`socketio`]: Socket.IO namespaces on socketioxide, with the Engine.IO session front before them;
//! - [`websocket`]: the plain WebSocket endpoint (seed 001's hub protocol).

pub(crate) mod socketio;
pub(crate) mod websocket;

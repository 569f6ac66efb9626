//! Code generated from the served specs: `realtime-gateway codegen typescript` writes TypeScript
//! for what they define (published events and their data, each Socket.IO namespace's events both
//! ways, each plain WebSocket endpoint's messages), for backends (the SDK) and frontends
//! (socket.io-client's `Socket<ServerToClientEvents, ClientToServerEvents>`).
//!
//! It reads only the checked specs (`crate::spec`), never the engine: what a type says is what a
//! spec states (a payload schema, a route's `require`, a template's variables), and where a spec
//! says nothing the type is open (`unknown`). `ts` holds the type model and its printing,
//! `schema` and `template` turn payload schemas and templates into types, `published` works out
//! the published events' data over every namespace, and `typescript` writes the files.

mod published;
mod schema;
mod template;
mod ts;
pub mod typescript;

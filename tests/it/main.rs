//! Integration tests: the gateway on port 0, driven through real WebSockets and HTTP. One
//! binary, so the crate links once.

mod api;
mod architecture;
mod auth;
mod bad_input;
mod cli;
mod codegen;
mod event_stream;
mod expiry;
mod fuzz_corpus;
mod helpers;
mod history;
mod idempotency;
mod openapi;
mod presence;
mod tenant_keys;
mod workflow;

//! Integration tests: the gateway on port 0, driven through real WebSockets and HTTP. One
//! binary, so the crate links once.

mod api;
mod architecture;
mod auth;
mod bad_input;
mod cli;
mod expiry;
mod fuzz_corpus;
mod helpers;
mod openapi;
mod workflow;

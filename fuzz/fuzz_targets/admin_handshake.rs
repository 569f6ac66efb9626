//! Fuzz target `admin_handshake`: what it feeds and checks is `harness::admin_handshake` (docs/fuzzing.md).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::admin_handshake(data));

//! Fuzz target `ws_envelope`: what it feeds and checks is `harness::ws_envelope` (docs/fuzzing.md).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::ws_envelope(data));

//! Fuzz target `v3_connect`: what it feeds and checks is `harness::v3_connect` (docs/fuzzing.md).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::v3_connect(data));

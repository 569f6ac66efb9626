//! Fuzz target `publish_body`: what it feeds and checks is `harness::publish_body` (docs/fuzzing.md).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::publish_body(data));

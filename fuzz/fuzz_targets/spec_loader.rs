//! Fuzz target `spec_loader`: what it feeds and checks is `harness::spec_loader` (docs/fuzzing.md).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::spec_loader(data));

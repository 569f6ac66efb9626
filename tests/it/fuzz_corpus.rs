//! The fuzz targets' committed corpora (`fuzz/corpus/<target>/`), replayed through the same
//! checks the targets run (`fuzz/harness.rs`), on stable and without libFuzzer: every input a
//! fuzzing run kept, and every crash fixed since, stays a test, and a target that no longer
//! builds against the gateway fails here first.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

/// Every file of `target`'s corpus, through `run`; how many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a corpus entry").path();
        let input = std::fs::read(&path).expect("a corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| run(&input)) {
            eprintln!(
                "fuzz/corpus/{target}/{} fails (docs/fuzzing.md: reproducing)",
                path.file_name().unwrap_or_default().display()
            );
            std::panic::resume_unwind(panic);
        }
        count += 1;
    }
    count
}

/// One target's corpus, replayed; it must not be empty.
fn replays(target: &str) {
    let (_, run) = harness::TARGETS.iter().find(|(name, _)| *name == target).expect("a target");
    assert!(replay(target, *run) > 0, "fuzz/corpus/{target} is empty");
}

#[test]
fn the_spec_loader_corpus_passes() {
    replays("spec_loader");
}

#[test]
fn the_template_corpus_passes() {
    replays("template");
}

#[test]
fn the_websocket_envelope_corpus_passes() {
    replays("ws_envelope");
}

#[test]
fn the_publish_body_corpus_passes() {
    replays("publish_body");
}

#[test]
fn the_v3_connect_corpus_passes() {
    replays("v3_connect");
}

#[test]
fn the_admin_handshake_corpus_passes() {
    replays("admin_handshake");
}

#[test]
fn every_target_has_a_corpus_test() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["spec_loader", "template", "ws_envelope", "publish_body", "v3_connect", "admin_handshake"]);
}

//! Where the node is in its life: serving, or draining before it stops. The shutdown sequence
//! marks it; `/readyz` and the fronts' handshakes read it.

use std::sync::atomic::{AtomicBool, Ordering};
/// Whether the node should receive new traffic. Shared with the shutdown sequence.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// Marks the node as draining: `/readyz` answers 503 from now on.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the node is draining.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

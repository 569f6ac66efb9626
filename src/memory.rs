//! How the process gives memory back to the operating system.
//!
//! glibc's allocator serves large blocks with `mmap` only until one is freed: it then raises its
//! threshold to that block's size, so later blocks of that size come from the heap and stay in the
//! process once freed. A burst of large published events (or a stalled consumer's queue, freed
//! when its connection is cut) would leave resident memory at its peak for good, which looks like a
//! leak to anyone watching RSS. Pinning the threshold keeps large blocks in `mmap`, returned on
//! free; small allocations (the per-connection ones) are unaffected. Measured in `bench/soak.mjs`.

/// Blocks from this size on are always mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Applies the allocator settings above. Call once, before the runtime starts threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, as glibc recommends.
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 {
            tracing::warn!("could not set the allocator's mmap threshold");
        }
    }
}

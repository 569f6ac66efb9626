//! The process's memory allocator: mimalloc, and the two options that make it give memory back.
//!
//! A published event allocates and frees many small blocks (its JSON tree, room names, rendered
//! frames, history entries) on whichever worker thread handles it. glibc's allocator spent about
//! a third of the gateway's user CPU on them in the plain WebSocket fan-out benchmark, a quarter
//! of that in `malloc_consolidate` (each large allocation, such as a request's header map,
//! sweeping every small block freed before it); mimalloc takes about a sixth off the CPU per
//! delivery there (docs/benchmarks.md, "Direct writes and the allocator").
//!
//! Its defaults keep freed memory for a while and commit arenas eagerly: after a stalled
//! consumer's queue of large events was freed, the process stayed at twice glibc's resident
//! size. Purging at once and committing on demand give memory back as glibc did. The options
//! must be in force before the first allocation (the first arena is reserved then), which
//! happens before `main`: they are set from the loader's constructors (`.init_array`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (its `mi_option_e`, mimalloc v3 as libmimalloc-sys 0.1 builds it),
/// which the crate leaves unnamed on purpose; the test below checks what they read back.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Called by the loader before anything of the program runs, so before any allocation.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_BEFORE_MAIN: extern "C" fn() = tune;

extern "C" fn tune() {
    // SAFETY: mi_option_set only stores an option's value; constructors run on one thread, before
    // any other exists, as mimalloc asks (its options are not thread safe).
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_options_are_in_force() {
        // SAFETY: reads only.
        let read = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(read(PURGE_DELAY), 0, "purge_delay (default 10) is option {PURGE_DELAY}");
        assert_eq!(read(ARENA_EAGER_COMMIT), 0, "arena_eager_commit (default 2) is option {ARENA_EAGER_COMMIT}");
        // A neighbour keeps its default: the numbers name the options meant.
        assert_eq!(read(PURGE_DELAY + 1), 0, "use_numa_nodes");
    }
}

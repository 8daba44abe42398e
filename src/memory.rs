//! The process's heap: the global allocator (mimalloc) and returning freed memory to the operating
//! system after the allocation bursts of loading a bundle (compiling policies, running the bundle's Rego
//! tests).
//!
//! Policy evaluation allocates and frees many small values per review (about a tenth of its instructions
//! were glibc `malloc`/`free`); mimalloc's thread-local free lists cut the server's CPU per review by
//! 12-17 % (docs/benchmarks.md, "Allocator"). Like any caching allocator it keeps freed pages unless told
//! otherwise, so arenas are committed on demand and [`release_freed_heap`] purges them after a load:
//! without both, an idle `regate serve --dev` sat at 75 MiB instead of ~20.

/// The allocator of every regate binary (server, CLI, tests and benchmarks alike, so that measured
/// figures are the shipped ones).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Option numbers of mimalloc v3 (`mi_option_e` in its `mimalloc.h`, as vendored by libmimalloc-sys 0.1.49;
// the crate's own constants follow v2's numbering, which differs from v3's).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;

/// Sets mimalloc's memory options; call first thing in `main`, before threads start.
pub fn configure_allocator() {
    // SAFETY: mi_option_set only writes mimalloc's option table (called before other threads exist, as
    // its documentation asks); both options are read when arenas are created and pages purged.
    unsafe {
        // Commit arena memory as it is used instead of whole arenas up front.
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        // A purge gives pages back to the OS (decommit) instead of only marking them reusable.
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 1);
    }
    // No transparent huge pages for this process: mimalloc asks for them (`madvise`), and with them a
    // purge frees 2 MiB at a time or not at all, so an idle server kept ~50 MiB resident instead of ~27.
    // mimalloc reads its own THP option before `main`, so the kernel switch is the one that works here.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map; no pointers are passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Gives free heap pages back to the OS: mimalloc's forced collection of this thread's heap and of
/// abandoned pages of threads that ended (the compile and test threads of a bundle load).
pub fn release_freed_heap() {
    // SAFETY: mi_collect has no preconditions; it only frees pages mimalloc itself owns and no longer
    // hands out.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

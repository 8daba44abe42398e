//! The process's heap: the global allocator (mimalloc) and returning freed memory to the operating
//! system after the allocation bursts of loading a bundle (compiling policies, running the bundle's Rego
//! tests).
//!
//! Policy evaluation allocates and frees many small values per review (about a tenth of its instructions
//! were glibc `malloc`/`free`); mimalloc's thread-local free lists cut the server's CPU per review by
//! 12-17 % (docs/benchmarks.md, "Fifth pass"). mimalloc keeps freed pages until a later allocation
//! purges them, and by default it asks for transparent huge pages, which a purge can only give back
//! whole. So huge pages are off (the crate's `no_thp` feature, and [`configure_allocator`] for kernels
//! that use them unasked), and [`release_freed_heap`] purges once after each bundle load, accepted or
//! rejected. An idle `regate serve --dev` holds 26.6 MiB so (75 MiB with mimalloc's defaults; 19.1 MiB
//! with glibc).

/// The allocator of every regate binary (server, CLI, tests and benchmarks alike, so that measured
/// figures are the shipped ones).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, for kernels in THP `always` mode (in `madvise`
/// mode mimalloc's `no_thp` build already never asks for them). Call first thing in `main`.
pub fn configure_allocator() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map; no pointers are passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Gives free heap pages back to the OS: mimalloc's forced collection of this thread's heap and of
/// the abandoned pages of threads that ended (the compile and test threads of a bundle load).
pub fn release_freed_heap() {
    // SAFETY: mi_collect has no preconditions; it only frees pages mimalloc itself owns and no longer
    // hands out.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

//! Running work on a rayon pool of a chosen size (`--jobs`, the server's test threads at a bundle
//! reload), or on rayon's global pool when no size is chosen.

/// Runs `work` on a pool of `threads` worker threads (at least one), or on the global pool for `None`.
pub fn run_on<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> T + Send,
) -> Result<T, rayon::ThreadPoolBuildError> {
    match threads {
        Some(n) => Ok(rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()?
            .install(work)),
        None => Ok(work()),
    }
}

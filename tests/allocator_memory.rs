//! The global allocator gives memory back once it is freed (src/memory.rs): what a bundle load
//! allocates on threads that then end must not stay resident in an idle server. Runs in its own process
//! (one test in this file) so that no other test allocates meanwhile.

/// Resident anonymous memory of this process in KiB (Linux `/proc/self/status`).
fn resident_anonymous_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn memory_freed_on_ended_threads_is_returned_after_a_collection() {
    regate::memory::configure_allocator();
    let Some(before) = resident_anonymous_kib() else {
        eprintln!("skipping: /proc/self/status has no RssAnon on this system");
        return;
    };
    // Like a bundle load: two threads allocate 2 x 64 MiB in small blocks (policy ASTs, compiled
    // programs, test values) and end; most of it is freed, a few blocks stay live.
    let kept: Vec<Vec<Box<[u8]>>> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let blocks: Vec<Box<[u8]>> = (0..262_144)
                    .map(|i| vec![(i % 251) as u8; 256].into_boxed_slice())
                    .collect();
                blocks.into_iter().step_by(4096).collect::<Vec<_>>()
            })
            .join()
            .expect("allocating thread")
        })
        .collect();
    let peak = resident_anonymous_kib().unwrap_or(0);
    regate::memory::release_freed_heap();
    let after = resident_anonymous_kib().unwrap_or(u64::MAX);
    eprintln!(
        "RssAnon: {before} KiB before, {peak} KiB at the peak, {after} KiB after the collection"
    );
    assert_eq!(
        kept.iter().map(Vec::len).sum::<usize>(),
        128,
        "the live blocks survive"
    );
    assert!(
        peak >= before + 64 * 1024,
        "the allocation burst should have been resident: {before} -> {peak} KiB"
    );
    assert!(
        after <= before + 16 * 1024,
        "freed memory stayed resident: {before} KiB before, {peak} KiB at the peak, {after} KiB after"
    );
}

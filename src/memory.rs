//! The process's heap: the global allocator (mimalloc) and returning freed memory to the operating
//! system after the allocation bursts of loading a bundle (compiling policies, running the bundle's Rego
//! tests).
//!
//! Policy evaluation allocates and frees many small values per review (about a tenth of its instructions
//! were glibc `malloc`/`free`); mimalloc's thread-local free lists cut the server's CPU per review by
//! 12-17 % (measured with scripts/loadtest.sh; the runs are in the history of docs/benchmarks.md). mimalloc keeps freed pages until a
//! later allocation purges them, and by default it asks for transparent huge pages, which a purge can only
//! give back whole. So huge pages are off (`libmimalloc-sys`'s `no_thp` feature, and [`configure_allocator`] for
//! kernels that use them unasked), and [`release_freed_heap`] purges once after each bundle load, accepted or
//! rejected. An idle `regate serve --dev` holds 26.6 MiB so (75 MiB with mimalloc's defaults; 19.1 MiB
//! with glibc).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The allocator of every regate binary (server, CLI, tests and benchmarks alike, so that measured
/// figures are the shipped ones).
#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

/// Every mimalloc block is aligned to the word size: its blocks are multiples of a word and the first
/// block of a page is 16-byte aligned.
const WORD_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc, asked for alignment only when a layout needs more than a word.
///
/// The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`. Its fast path is the
/// plain one, but when the size class's free list is empty (the usual way a page is refilled) it falls
/// back to a generic path that serves any size that is not a power of two from the next size class up
/// with `alignment - 1` bytes added: a 24-byte value took a 32-byte block, and a 40-byte one a 48-byte
/// block. Nearly every Rust allocation needs a word's alignment or less, which `mi_malloc` always gives,
/// so those go to the plain functions, as std's `System` allocator sends them to `malloc`.
pub struct Mimalloc;

// SAFETY: each call forwards to the mimalloc function for the same job; `mi_malloc`, `mi_zalloc` and
// `mi_realloc` are used only for alignments mimalloc guarantees for every block (WORD_ALIGN), and
// `mi_free` frees blocks from either family.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { by_alignment(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { by_alignment(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract).
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (GlobalAlloc's contract).
        unsafe {
            if layout.align() <= WORD_ALIGN {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// `plain(size)` when `layout` needs no more than word alignment, else `aligned(size, align)`.
///
/// # Safety
/// `plain` and `aligned` must be a mimalloc allocation function pair (`mi_malloc`/`mi_malloc_aligned`,
/// `mi_zalloc`/`mi_zalloc_aligned`).
#[inline(always)]
unsafe fn by_alignment(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: the caller passes a mimalloc pair; `plain` is only used where every block is aligned.
    unsafe {
        if layout.align() <= WORD_ALIGN {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Every alignment, on both sides of the word, comes back honoured by alloc, alloc_zeroed and a
    /// growing realloc, which keeps the contents.
    #[rstest]
    fn allocations_honour_their_alignment(
        #[values(1, 2, 4, 8, 16, 32, 64, 4096)] align: usize,
        #[values(1, 7, 8, 24, 40, 100, 5000)] size: usize,
    ) {
        let layout = Layout::from_size_align(size, align).expect("layout");
        let a = Mimalloc;
        // SAFETY: non-zero sizes; every pointer is checked, written within its size and freed once
        // with the layout it was allocated with.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "alloc({size}, {align})");
            std::ptr::write_bytes(p, 0xA5, size);
            let grown = a.realloc(p, layout, size * 3);
            assert!(!grown.is_null());
            assert_eq!(grown as usize % align, 0, "realloc({size}, {align})");
            assert!(
                (0..size).all(|i| *grown.add(i) == 0xA5),
                "realloc keeps the contents"
            );
            a.dealloc(
                grown,
                Layout::from_size_align(size * 3, align).expect("layout"),
            );
            let z = a.alloc_zeroed(layout);
            assert!(!z.is_null());
            assert_eq!(z as usize % align, 0, "alloc_zeroed({size}, {align})");
            assert!((0..size).all(|i| *z.add(i) == 0), "alloc_zeroed zeroes");
            a.dealloc(z, layout);
        }
    }
}

//! Giving freed file data back to the system.
//!
//! File pages are 4 KiB heap blocks, below glibc's mmap threshold, so freeing them only
//! returns them to malloc's free lists: glibc gives memory back on its own only from
//! the top of the heap, and only past a trim threshold that grows to twice the largest
//! buffer ever freed from an mmap (the 1 MiB request buffers: 2 MiB). Pages freed below
//! anything still live (a later file's pages, inodes, directory entries) stay resident:
//! 635 MB of deleted data kept the process at 690 MB. `malloc_trim(0)` hands back
//! every free page of every arena (MADV_DONTNEED) wherever it lies. It walks malloc's
//! free lists, so it runs only after a batch of frees that is large next to what is
//! still in use (amortized, a few percent of the cost of the frees), and when the last
//! page goes. Other allocators (FreeBSD's jemalloc, musl's) return memory themselves.
//!
//! malloc_trim shrinks only the main arena's top, though: a thread's arena keeps up to
//! the trim threshold at its top. The framework's reader thread copies each write's
//! data (up to 1 MiB) into a buffer of its own, so its arena held 2 MiB of them after
//! the files were gone (4.7 MB resident against 2.4 MB empty). One arena for the two
//! threads puts those buffers where malloc_trim reaches them (3.9 MB); the reader and
//! the mainloop rarely allocate at the same moment, and the benchmark showed no cost.

use std::cell::Cell;

/// Pages freed before a trim is worth its walk over the free lists (1 MiB).
const MIN_BATCH: u64 = 256;

/// A trim runs once pages freed since the last one reach this fraction of the pages
/// still in use, so trims cost in proportion to what is freed.
const BATCH_DIVISOR: u64 = 8;

#[derive(Debug, Default)]
pub struct Heap {
    freed_since_trim: Cell<u64>,
}

impl Heap {
    /// `pages` file pages were freed (already dropped); `in_use` are left.
    pub fn freed(&self, pages: u64, in_use: u64) {
        if pages == 0 {
            return;
        }
        let batch = self.freed_since_trim.get() + pages;
        if in_use == 0 || batch >= MIN_BATCH.max(in_use / BATCH_DIVISOR) {
            self.freed_since_trim.set(0);
            trim();
        } else {
            self.freed_since_trim.set(batch);
        }
    }
}

/// Sets the allocator up for `Heap` (before any thread starts): one arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure() {
    // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only rearranges glibc's own free memory; it takes no
    // pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

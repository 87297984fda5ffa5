//! [`prefetch`]: asking the CPU to bring a value into its caches before it
//! is read.
//!
//! A large run's per-step state does not fit the CPU's caches, and the
//! steps of a random DAG run in no order the hardware prefetchers can
//! follow, so each step's first reads of its own state miss. The DAG
//! engine knows which steps come next (the dependents of the step it is
//! running): asking for their state as a step starts overlaps those misses
//! with the step's own work.
#![allow(unsafe_code)]

/// Asks the CPU to bring the cache lines holding `value` into its caches.
/// A hint: it reads nothing, cannot fault, and does nothing where the
/// target has no prefetch instruction Rust can name.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    let start = std::ptr::from_ref(value).cast::<u8>();
    let lines = (start as usize % LINE + size_of::<T>()).div_ceil(LINE);
    for line in 0..lines.max(1) {
        prefetch_line(start.wrapping_add(line * LINE));
    }
}

/// The size of a cache line on the CPUs flowyml runs on (x86_64 and
/// aarch64 servers): a guess elsewhere costs only a wasted hint.
const LINE: usize = 64;

#[inline(always)]
fn prefetch_line(address: *const u8) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: a prefetch has no effect on memory or on the program's state
    // (an address that is not mapped is ignored), and SSE, which it
    // needs, is enabled (the `cfg`; it is part of every x86_64 target).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = address;
}

//! [`WriteOnce`]: a cell written at most once and never waited on, for the
//! per-run state the DAG engine publishes beside its artifact slots
//! (fingerprints, cache keys; the slots themselves are
//! [`Slot`](crate::slot)s, whose one writer needs no compare-and-swap).
//!
//! `std::sync::OnceLock` is built for callers that block until another
//! thread's initialiser finishes: a write is a compare-and-swap that takes
//! the cell, the value, and a swap that releases it and wakes waiters, two
//! atomic read-modify-writes. A run never waits on a cell: a step reads
//! an input only after its producer's countdown reached zero (see
//! [`dag`](crate::dag)), and the result reads after the run joined. So a
//! write here is one compare-and-swap and one plain release store; a read
//! is one acquire load.
//!
//! # Why it is sound
//! The state goes `EMPTY → WRITING → FULL`, each step taken once:
//! - Only the thread whose compare-and-swap moved `EMPTY → WRITING` writes
//!   the value, so no two writes race, and no reader reads while it does:
//!   a reader dereferences the value only after loading `FULL`.
//! - The writer's `Release` store of `FULL` comes after its write of the
//!   value; a reader's `Acquire` load that sees `FULL` synchronises with
//!   it, so the value's bytes are visible to the reader.
//! - Once `FULL`, the value is never written or moved again while shared:
//!   only `&mut self` (drop) takes it out, and then no reference to it
//!   can exist.
//! - The cell is `Sync` only for `T: Send + Sync` (a value written on one
//!   thread and read on many), and `Send` for `T: Send`, as `OnceLock`.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const FULL: u8 = 2;

/// A value written at most once, read by reference from any thread once
/// written.
pub(crate) struct WriteOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: see the module docs: a value is written by one thread, then only
// read through shared references, as with `OnceLock`.
unsafe impl<T: Send + Sync> Sync for WriteOnce<T> {}
// SAFETY: the cell owns its value.
unsafe impl<T: Send> Send for WriteOnce<T> {}

impl<T> WriteOnce<T> {
    /// An empty cell.
    #[inline]
    pub(crate) const fn new() -> Self {
        WriteOnce {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Writes `value` if the cell is empty; gives it back otherwise.
    #[inline]
    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the compare-and-swap above made this thread the only
        // writer, and no reader dereferences the value before `FULL`.
        unsafe { (*self.value.get()).write(value) };
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }

    /// The value, if it was written.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == FULL {
            // SAFETY: `FULL` was stored (with release) after the value was
            // written, and the value is never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    fn take(&mut self) -> Option<T> {
        if *self.state.get_mut() != FULL {
            return None;
        }
        *self.state.get_mut() = EMPTY;
        // SAFETY: the state was `FULL`, so the value was written; it is
        // now `EMPTY`, so it is not read or dropped again.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }
}

impl<T> From<T> for WriteOnce<T> {
    fn from(value: T) -> Self {
        WriteOnce {
            state: AtomicU8::new(FULL),
            value: UnsafeCell::new(MaybeUninit::new(value)),
        }
    }
}

impl<T> Default for WriteOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for WriteOnce<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T: Clone> Clone for WriteOnce<T> {
    fn clone(&self) -> Self {
        let cell = WriteOnce::new();
        if let Some(value) = self.get() {
            let _ = cell.set(value.clone());
        }
        cell
    }
}

impl<T: fmt::Debug> fmt::Debug for WriteOnce<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(value) => f.debug_tuple("WriteOnce").field(value).finish(),
            None => f.write_str("WriteOnce(<empty>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn written_once_read_back_and_the_second_write_refused() {
        let cell = WriteOnce::new();
        assert_eq!(cell.get(), None);
        assert_eq!(cell.set(String::from("first")), Ok(()));
        assert_eq!(
            cell.set(String::from("second")),
            Err(String::from("second"))
        );
        assert_eq!(cell.get().map(String::as_str), Some("first"));
        assert_eq!(cell.clone().get().map(String::as_str), Some("first"));
        assert_eq!(WriteOnce::<String>::new().clone().get(), None);
    }

    /// Many threads race to write one cell while others read it: exactly
    /// one write wins, every reader sees either nothing or the winner's
    /// whole value, and the value is dropped once.
    #[test]
    fn racing_writers_have_one_winner_and_readers_see_it_whole() {
        let drops = Arc::new(AtomicUsize::new(0));
        struct Counted(Vec<usize>, Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        for _ in 0..200 {
            let cell = WriteOnce::new();
            let wins = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for t in 0..4usize {
                    let (cell, wins, drops) = (&cell, &wins, Arc::clone(&drops));
                    s.spawn(move || {
                        if cell.set(Counted(vec![t; 64], drops)).is_ok() {
                            wins.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                    s.spawn(move || {
                        if let Some(Counted(v, _)) = cell.get() {
                            assert!(v.len() == 64 && v.iter().all(|&x| x == v[0]));
                        }
                    });
                }
            });
            assert_eq!(wins.load(Ordering::SeqCst), 1);
            assert!(cell.get().is_some());
        }
        // 4 values made per round: 3 refused (dropped at once), 1 kept
        // (dropped with its cell).
        assert_eq!(drops.load(Ordering::SeqCst), 800);
    }
}

//! Locks that outlive a panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, even if a thread panicked holding it: every value guarded so
/// in flowyml is left consistent by its writer between any two
/// statements (a pushed record, a swapped entry), so a panic elsewhere
/// (in a user's step, contained by the run) must not take the run down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

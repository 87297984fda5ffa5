//! Lazy evaluation: defer expensive computations until their results are
//! needed, compute them once, share them between threads.
//!
//! * [`LazyValue`] holds a closure that runs on the first
//!   [`value`](LazyValue::value) and never again. Threads that
//!   race on the first access wait for the one that computes.
//! * [`TryLazyValue`] is the fallible form: an `Err` is returned to the
//!   caller and **not** cached, so the next access tries again.
//! * [`lazy_property`](crate::lazy_property) turns a `&self` method into a
//!   per-instance cached property, stored in the instance's [`LazyCells`].
//!
//! # Design
//! Both values sit in a [`std::sync::OnceLock`]; after initialisation an
//! access is the same acquire load as `OnceLock::get` (see the
//! `lazy` benchmark). No `unsafe` is involved: the initialiser is kept in a
//! `Mutex<Option<F>>` that only the initialising thread ever locks.

use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

/// A value computed on first access, exactly once, even under races.
///
/// ```
/// use flowyml::LazyValue;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static LOADS: AtomicUsize = AtomicUsize::new(0);
/// let expensive_data = LazyValue::new(|| {
///     LOADS.fetch_add(1, Ordering::SeqCst);
///     vec![1.0_f64; 1_000]
/// });
/// assert!(!expensive_data.is_computed()); // not loaded yet
/// let data = expensive_data.value(); // triggers loading
/// let data2 = expensive_data.value(); // cached
/// assert_eq!(data.len(), data2.len());
/// assert_eq!(LOADS.load(Ordering::SeqCst), 1);
/// ```
pub struct LazyValue<T, F = fn() -> T> {
    cell: OnceLock<T>,
    init: Mutex<Option<F>>,
}

impl<T, F: FnOnce() -> T> LazyValue<T, F> {
    /// A lazy value that `init` computes on first access.
    pub const fn new(init: F) -> Self {
        LazyValue {
            cell: OnceLock::new(),
            init: Mutex::new(Some(init)),
        }
    }

    /// The value, computed by this call if no call computed it before.
    ///
    /// # Panics
    /// If the initialiser panics, the panic propagates and the value stays
    /// uncomputed; as the initialiser was consumed, later calls panic too.
    /// Use [`TryLazyValue`] for initialisers that can fail.
    #[inline]
    pub fn value(&self) -> &T {
        if let Some(v) = self.cell.get() {
            return v;
        }
        self.cell.get_or_init(|| {
            let init = self
                .init
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match init {
                Some(f) => f(),
                None => panic!("LazyValue: the initialiser panicked on an earlier access"),
            }
        })
    }
}

impl<T, F> LazyValue<T, F> {
    /// Whether the value has been computed; never computes it.
    #[inline]
    pub fn is_computed(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The value if it has been computed; never computes it.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }

    /// The computed value, if any, consuming the lazy value.
    pub fn into_inner(self) -> Option<T> {
        self.cell.into_inner()
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyValue<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_cell(f, "LazyValue", &self.cell)
    }
}

fn debug_cell<T: fmt::Debug>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    cell: &OnceLock<T>,
) -> fmt::Result {
    match cell.get() {
        Some(v) => f.debug_tuple(name).field(v).finish(),
        None => f.write_str(&format!("{name}(<not computed>)")),
    }
}

/// A lazy value whose initialiser can fail; failures are not cached.
///
/// ```
/// use flowyml::TryLazyValue;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let attempts = AtomicUsize::new(0);
/// let config = TryLazyValue::new(|| {
///     if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
///         Err("network down")
///     } else {
///         Ok(42)
///     }
/// });
/// assert_eq!(config.try_value(), Err("network down")); // not cached...
/// assert_eq!(config.try_value(), Ok(&42)); // ...so this access retries
/// assert_eq!(config.try_value(), Ok(&42)); // and this one is a load
/// assert_eq!(attempts.load(Ordering::SeqCst), 2);
/// ```
pub struct TryLazyValue<T, E, F = fn() -> Result<T, E>> {
    cell: OnceLock<T>,
    // Serialises attempts so that racing threads wait for one attempt
    // instead of all running the initialiser.
    attempt: Mutex<()>,
    init: F,
    _error: std::marker::PhantomData<fn() -> E>,
}

impl<T, E, F: Fn() -> Result<T, E>> TryLazyValue<T, E, F> {
    /// A lazy value that `init` tries to compute on each access until it
    /// succeeds once.
    pub const fn new(init: F) -> Self {
        TryLazyValue {
            cell: OnceLock::new(),
            attempt: Mutex::new(()),
            init,
            _error: std::marker::PhantomData,
        }
    }

    /// The value, or the error of this access's attempt to compute it.
    #[inline]
    pub fn try_value(&self) -> Result<&T, E> {
        if let Some(v) = self.cell.get() {
            return Ok(v);
        }
        self.try_init()
    }

    #[cold]
    fn try_init(&self) -> Result<&T, E> {
        let _guard = self.attempt.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have succeeded while this one waited.
        if let Some(v) = self.cell.get() {
            return Ok(v);
        }
        let value = (self.init)()?;
        Ok(self.cell.get_or_init(|| value))
    }
}

impl<T, E, F> TryLazyValue<T, E, F> {
    /// Whether the value has been computed; never computes it.
    #[inline]
    pub fn is_computed(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The value if it has been computed; never computes it.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }
}

impl<T: fmt::Debug, E, F> fmt::Debug for TryLazyValue<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_cell(f, "TryLazyValue", &self.cell)
    }
}

/// Implemented by [`lazy_properties`](crate::lazy_properties) for a type
/// whose `impl` block has lazy properties; `Cells` holds one
/// [`OnceLock`] per property.
pub trait LazyHost {
    /// The generated struct of per-property cells.
    type Cells: Default + Send + Sync;
}

/// The per-instance storage of a type's lazy properties: the one field a
/// struct adds to use [`lazy_property`](crate::lazy_property).
///
/// ```
/// use flowyml::{LazyCells, lazy_properties};
///
/// struct DataProcessor {
///     path: String,
///     lazy: LazyCells<Self>,
/// }
///
/// #[lazy_properties]
/// impl DataProcessor {
///     fn new(path: &str) -> Self {
///         DataProcessor { path: path.to_owned(), lazy: LazyCells::new() }
///     }
///
///     /// Loaded only when first accessed.
///     #[lazy_property]
///     fn data(&self) -> Vec<f64> {
///         self.path.bytes().map(f64::from).collect()
///     }
///
///     /// Computed only when needed, from another lazy property.
///     #[lazy_property]
///     fn statistics(&self) -> (f64, usize) {
///         (self.data().iter().sum(), self.data().len())
///     }
/// }
///
/// let processor = DataProcessor::new("data.csv");
/// let stats = processor.statistics(); // loads data, then computes
/// assert_eq!(stats.1, 8);
/// assert!(std::ptr::eq(stats, processor.statistics())); // cached
/// ```
pub struct LazyCells<T: LazyHost + ?Sized>(T::Cells);

impl<T: LazyHost + ?Sized> LazyCells<T> {
    /// Empty cells: no property computed yet.
    pub fn new() -> Self {
        LazyCells(T::Cells::default())
    }

    #[doc(hidden)]
    #[inline(always)]
    pub fn __cells(&self) -> &T::Cells {
        &self.0
    }
}

impl<T: LazyHost + ?Sized> Default for LazyCells<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: LazyHost + ?Sized> fmt::Debug for LazyCells<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LazyCells")
    }
}

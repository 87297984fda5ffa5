//! `SmartCache`: a thread-safe key-value cache with a time to live and an
//! optional bound, built on [moka](https://docs.rs/moka).
//!
//! A stored empty or zero value is a hit: [`SmartCache::get`] returns
//! `Option<V>`, and `Some(0)` is `Some` (a truthiness test on the value
//! would miss it).
//! Eviction (TinyLFU admission, LRU eviction) and expiry are moka's; moka
//! applies them lazily, so [`SmartCache::len`] first runs its pending
//! maintenance to report an exact count.

use std::hash::Hash;
use std::time::Duration;

/// A concurrent cache whose entries expire `ttl` after they were set.
///
/// ```
/// use flowyml::SmartCache;
/// use std::time::Duration;
///
/// let cache = SmartCache::new(Duration::from_secs(3600));
/// let cached_compute = |key: &str| {
///     if let Some(hit) = cache.get(key) {
///         return hit;
///     }
///     let result = key.len() * 0; // an empty or zero result is still cached
///     cache.set(key.to_owned(), result);
///     result
/// };
/// assert_eq!(cached_compute("step1"), 0);
/// assert_eq!(cache.get("step1"), Some(0)); // a hit, not a miss
/// # let _ = cached_compute;
/// ```
pub struct SmartCache<K, V> {
    inner: moka::sync::Cache<K, V>,
}

impl<K, V> SmartCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An unbounded cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self::builder(ttl).build()
    }

    /// A builder to bound the cache by entries or by weight.
    ///
    /// ```
    /// use flowyml::SmartCache;
    /// use std::time::Duration;
    ///
    /// let by_count: SmartCache<u32, String> = SmartCache::builder(Duration::from_secs(60)).max_entries(1_000).build();
    /// let by_bytes: SmartCache<u32, String> = SmartCache::builder(Duration::from_secs(60))
    ///     .max_weight(1 << 20, |_k: &u32, v: &String| v.len() as u32)
    ///     .build();
    /// # let _ = (by_count, by_bytes);
    /// ```
    pub fn builder(ttl: Duration) -> SmartCacheBuilder<K, V> {
        SmartCacheBuilder {
            inner: moka::sync::Cache::builder().time_to_live(ttl),
        }
    }

    /// The value stored for `key`, unless it expired or was evicted.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.get(key)
    }

    /// Stores `value` for `key`, replacing any previous value.
    pub fn set(&self, key: K, value: V) {
        self.inner.insert(key, value);
    }

    /// The value for `key`, computed by `f` and stored if absent. Racing
    /// callers for the same key wait for one computation.
    pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> V {
        self.inner.get_with(key, f)
    }

    /// Removes `key`.
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.invalidate(key);
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.inner.invalidate_all();
        self.inner.run_pending_tasks();
    }

    /// The number of live entries (after applying pending evictions).
    pub fn len(&self) -> usize {
        self.inner.run_pending_tasks();
        usize::try_from(self.inner.entry_count()).unwrap_or(usize::MAX)
    }

    /// Whether the cache holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V> std::fmt::Debug for SmartCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartCache")
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

/// Configures a [`SmartCache`]; made by [`SmartCache::builder`].
pub struct SmartCacheBuilder<K, V> {
    inner: moka::sync::CacheBuilder<K, V, moka::sync::Cache<K, V>>,
}

impl<K, V> SmartCacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Keep at most `n` entries, evicting the least valuable.
    pub fn max_entries(self, n: u64) -> Self {
        SmartCacheBuilder {
            inner: self.inner.max_capacity(n),
        }
    }

    /// Keep entries whose weights add up to at most `max`; `weigher` gives
    /// an entry's weight (e.g. its size in bytes).
    pub fn max_weight(
        self,
        max: u64,
        weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        SmartCacheBuilder {
            inner: self.inner.max_capacity(max).weigher(weigher),
        }
    }

    /// The cache.
    pub fn build(self) -> SmartCache<K, V> {
        SmartCache {
            inner: self.inner.build(),
        }
    }
}

impl<K, V> std::fmt::Debug for SmartCacheBuilder<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmartCacheBuilder")
    }
}

//! SmartCache: hits for falsy values, expiry, bounds.

use flowyml::SmartCache;
use std::thread;
use std::time::Duration;

#[test]
fn empty_and_zero_values_are_hits() {
    let cache = SmartCache::new(Duration::from_secs(60));
    cache.set("zero", 0_i64);
    cache.set("negative", -1);
    assert_eq!(cache.get("zero"), Some(0));
    assert_eq!(cache.get("negative"), Some(-1));
    assert_eq!(cache.get("missing"), None);
    let strings = SmartCache::new(Duration::from_secs(60));
    strings.set(1, String::new());
    assert_eq!(strings.get(&1), Some(String::new()));
}

#[test]
fn entries_expire_after_the_ttl() {
    let cache = SmartCache::new(Duration::from_millis(100));
    cache.set("k", vec![1]);
    assert_eq!(cache.get("k"), Some(vec![1]));
    thread::sleep(Duration::from_millis(200));
    assert_eq!(cache.get("k"), None);
    assert!(cache.is_empty());
}

#[test]
fn invalidate_and_clear() {
    let cache = SmartCache::new(Duration::from_secs(60));
    for i in 0..10 {
        cache.set(i, i * i);
    }
    cache.invalidate(&3);
    assert_eq!(cache.get(&3), None);
    assert_eq!(cache.len(), 9);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn eviction_under_an_entry_bound() {
    let cache = SmartCache::builder(Duration::from_secs(60))
        .max_entries(50)
        .build();
    for i in 0..1_000 {
        cache.set(i, i);
    }
    assert!(cache.len() <= 50, "{} entries", cache.len());
}

#[test]
fn eviction_under_a_weight_bound() {
    let cache = SmartCache::builder(Duration::from_secs(60))
        .max_weight(1_000, |_: &u32, v: &Vec<u8>| v.len() as u32)
        .build();
    for i in 0..100 {
        cache.set(i, vec![0; 100]);
    }
    assert!(
        cache.len() <= 10,
        "{} entries of 100 bytes under a 1000 bound",
        cache.len()
    );
}

#[test]
fn get_or_insert_with_computes_once_under_races() {
    let cache = SmartCache::new(Duration::from_secs(60));
    let calls = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                cache.get_or_insert_with("model", || {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    42
                })
            });
        }
    });
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

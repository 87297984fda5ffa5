//! Lazy values and lazy properties: computed on first access, exactly once.

use flowyml::{LazyCells, LazyValue, TryLazyValue, lazy_properties};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

#[test]
fn not_computed_until_accessed() {
    let calls = AtomicUsize::new(0);
    let lazy = LazyValue::new(|| {
        calls.fetch_add(1, Ordering::SeqCst);
        "loaded".to_owned()
    });
    assert!(!lazy.is_computed());
    assert_eq!(lazy.get(), None);
    assert_eq!(format!("{lazy:?}"), "LazyValue(<not computed>)");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(lazy.value(), "loaded");
    assert!(lazy.is_computed());
    assert_eq!(format!("{lazy:?}"), "LazyValue(\"loaded\")");
    assert_eq!(lazy.into_inner().as_deref(), Some("loaded"));
}

#[test]
fn computed_once_under_eight_racing_threads() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let lazy = Arc::new(LazyValue::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        // Long enough that every thread arrives while the first computes.
        thread::sleep(Duration::from_millis(50));
        vec![7u8; 1024]
    }));
    let barrier = Arc::new(Barrier::new(8));
    let addresses: Vec<usize> = (0..8)
        .map(|_| {
            let (lazy, barrier) = (Arc::clone(&lazy), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                lazy.value().as_ptr() as usize
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        addresses.windows(2).all(|w| w[0] == w[1]),
        "every thread sees the one value"
    );
}

#[test]
fn try_lazy_retries_errors_and_caches_success() {
    let calls = AtomicUsize::new(0);
    let lazy = TryLazyValue::new(|| match calls.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Err(format!("attempt {}", calls.load(Ordering::SeqCst))),
        _ => Ok(5_u32),
    });
    assert_eq!(lazy.try_value(), Err("attempt 1".to_owned()));
    assert!(!lazy.is_computed());
    assert_eq!(lazy.try_value(), Err("attempt 2".to_owned()));
    assert_eq!(lazy.try_value(), Ok(&5));
    assert_eq!(lazy.try_value(), Ok(&5));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn try_lazy_racing_threads_run_one_successful_attempt() {
    let calls = AtomicUsize::new(0);
    let lazy = TryLazyValue::new(|| -> Result<u64, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(20));
        Ok(9)
    });
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(lazy.try_value(), Ok(&9)));
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

static DATA_LOADS: AtomicUsize = AtomicUsize::new(0);
static STATS_RUNS: AtomicUsize = AtomicUsize::new(0);

struct DataProcessor {
    path: String,
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl DataProcessor {
    fn new(path: &str) -> Self {
        DataProcessor {
            path: path.to_owned(),
            lazy: LazyCells::new(),
        }
    }

    #[lazy_property]
    fn data(&self) -> Vec<f64> {
        DATA_LOADS.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(10));
        self.path.bytes().map(f64::from).collect()
    }

    #[lazy_property]
    fn statistics(&self) -> (f64, f64) {
        STATS_RUNS.fetch_add(1, Ordering::SeqCst);
        let data = self.data();
        let mean = data.iter().sum::<f64>() / data.len() as f64;
        (mean, data.iter().copied().fold(f64::MIN, f64::max))
    }
}

#[test]
fn lazy_properties_once_per_instance_and_separately_per_instance() {
    let a = DataProcessor::new("ab");
    let b = DataProcessor::new("abc");
    assert_eq!(DATA_LOADS.load(Ordering::SeqCst), 0, "nothing loaded yet");
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| a.statistics());
            s.spawn(|| b.statistics());
        }
    });
    assert_eq!(*a.statistics(), (97.5, 98.0));
    assert_eq!(*b.statistics(), (98.0, 99.0));
    assert_eq!(
        DATA_LOADS.load(Ordering::SeqCst),
        2,
        "data once for each of the two instances"
    );
    assert_eq!(STATS_RUNS.load(Ordering::SeqCst), 2);
    assert!(std::ptr::eq(a.data(), a.data()));
}

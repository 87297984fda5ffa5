//! The memory figure of optimized frames against the heap they really
//! retain, counted by a global allocator: a binary of its own, so that no
//! other test's allocations run on other threads while one is counted.
// The counting allocator is the one unsafe item: a GlobalAlloc impl that
// forwards to the system allocator.
#![allow(unsafe_code)]
#![cfg(feature = "dataframe")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use flowyml::dataframe::polars::prelude::*;
use flowyml::dataframe::{OptimizeOptions, memory_usage, optimize_dataframe_with};

struct Counting;

static CURRENT: AtomicIsize = AtomicIsize::new(0);
/// One measurement at a time: the tests of this binary run on threads.
static MEASURING: Mutex<()> = Mutex::new(());

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The heap `make` leaves allocated, with what it made (kept alive).
fn retained<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = CURRENT.load(Ordering::SeqCst);
    let out = make();
    let after = CURRENT.load(Ordering::SeqCst);
    (out, (after - before).max(0) as usize)
}

/// `columns` string columns of `rows` rows, column `c` cycling through
/// `categories[c]` values `width` characters long.
fn frame(rows: usize, categories: &[usize], width: usize, seed: usize) -> DataFrame {
    let columns = categories
        .iter()
        .enumerate()
        .map(|(c, &n)| {
            let values: Vec<String> = (0..rows)
                .map(|i| format!("{seed}-{c}-{:0>width$}", (i * 7 + c) % n))
                .collect();
            Column::new(format!("s{c}").into(), values)
        })
        .collect();
    DataFrame::new(rows, columns).expect("a frame")
}

#[test]
fn the_report_counts_what_enum_columns_retain() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let options = OptimizeOptions::default();
    // Warm up rayon and polars' registries, so that their one-off
    // allocations are not charged to the first frame.
    let warm = frame(2000, &[5, 50], 4, 0);
    drop(optimize_dataframe_with(&warm, &options).expect("optimizes"));

    let cases: &[(usize, &[usize], usize)] = &[
        (10_000, &[3, 5, 12, 40, 60, 300], 6),
        (20_000, &[2, 3, 4, 8, 20, 50, 100, 200, 900], 12),
        (8_000, &[3, 30, 200], 3),
        (100_000, &[4000], 6),
        (300_000, &[20_000], 4),
    ];
    let mut worst = 0.0f64;
    for (seed, &(rows, categories, width)) in cases.iter().enumerate() {
        let df = frame(rows, categories, width, seed + 1);
        let ((small, report), heap) =
            retained(|| optimize_dataframe_with(&df, &options).expect("optimizes"));
        let enums = small
            .columns()
            .iter()
            .filter(|c| matches!(c.dtype(), DataType::Enum(..)))
            .count();
        assert_eq!(enums, categories.len(), "{report}");
        let error = (report.bytes_after as f64 - heap as f64) / heap as f64;
        eprintln!(
            "{rows} rows, categories {categories:?}: report {} bytes, heap retained {heap} bytes ({:+.1}%)",
            report.bytes_after,
            100.0 * error
        );
        assert_eq!(report.bytes_after, memory_usage(&small));
        worst = worst.max(error.abs());
        drop((small, report));
    }
    assert!(
        worst < 0.05,
        "the report is off by up to {:.1}%",
        100.0 * worst
    );
}

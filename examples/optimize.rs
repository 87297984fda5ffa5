//! Loads a CSV file, optimizes it and prints the report table, the time the
//! optimization takes and the peak heap of reading the file whole against
//! reading it in chunks.
//!
//! ```text
//! cargo run --release --example optimize --features dataframe -- ../shared/data/flights.csv
//! cargo run --release --example optimize --features dataframe -- FILE.csv --chunk-rows 10000 --na NA
//! cargo run --release --example optimize --features dataframe          # a generated frame
//! ```
//!
//! The heap figures come from a counting global allocator, so they measure
//! what polars allocates, not the pages of the file the OS maps in.
// The counting allocator below is the one unsafe item: a GlobalAlloc impl
// that forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flowyml::dataframe::polars::prelude::*;
use flowyml::dataframe::{
    CsvOptions, OptimizeOptions, optimize_dataframe_with, read_csv_chunks_with, read_csv_with,
};
use flowyml_workspace::SplitMix64;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = CURRENT.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak heap above the current one while `f` runs.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn generated(rows: usize) -> DataFrame {
    let mut rng = SplitMix64::new(42);
    let cities = ["Oslo", "Lima", "Pune", "Accra", "Quito", "Perth"];
    df!(
        "id" => (0..rows as i64).collect::<Vec<_>>(),
        "delay" => (0..rows).map(|_| (rng.below(10) != 0).then(|| rng.below(400) as i64 - 60)).collect::<Vec<_>>(),
        "temp" => (0..rows).map(|_| (rng.below(10_000) as f64 - 2000.0) / 100.0).collect::<Vec<_>>(),
        "city" => (0..rows).map(|_| cities[rng.below(cities.len())]).collect::<Vec<_>>(),
    )
    .expect("a valid frame")
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let chunk_rows: usize = flag("--chunk-rows").map_or(Ok(10_000), |s| s.parse())?;
    let mut csv = CsvOptions::default();
    if let Some(na) = flag("--na") {
        csv = csv.with_null_values([na.as_str()]);
    }
    let path = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a.clone());

    let df = match &path {
        Some(path) => {
            let start = Instant::now();
            let df = read_csv_with(path, &csv)?;
            println!(
                "{path}: {} rows x {} columns, read in {:.0?}",
                df.height(),
                df.width(),
                start.elapsed()
            );
            df
        }
        None => {
            println!("no file given: a generated frame of 1,000,000 rows");
            generated(1_000_000)
        }
    };

    let options = OptimizeOptions::default();
    let (small, report) = optimize_dataframe_with(&df, &options)?;
    println!("\n{report}\n");
    let times: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let out = optimize_dataframe_with(&df, &options).map(|(d, _)| d.height());
            let elapsed = start.elapsed();
            out.map(|_| elapsed)
        })
        .collect::<Result<_, _>>()?;
    println!(
        "memory: {:.2} MiB -> {:.2} MiB ({:.1}% saved, dictionaries included)",
        mib(report.bytes_before),
        mib(report.bytes_after),
        100.0 * (1.0 - report.ratio())
    );
    println!(
        "optimize: median {:.1} ms of {} runs",
        median(times.clone()).as_secs_f64() * 1e3,
        times.len()
    );
    drop(small);

    if let Some(path) = &path {
        drop(df);
        let (whole, whole_peak) = peak_heap(|| read_csv_with(path, &csv).map(|d| d.height()));
        let (chunked, chunked_peak) = peak_heap(|| -> flowyml::Result<usize> {
            let mut rows = 0;
            for chunk in read_csv_chunks_with(path, chunk_rows, &csv)? {
                rows += chunk?.height();
            }
            Ok(rows)
        });
        assert_eq!(whole?, chunked?);
        println!(
            "peak heap: reading whole {:.1} MiB, in chunks of {chunk_rows} rows {:.1} MiB ({:.1}x less)",
            mib(whole_peak),
            mib(chunked_peak),
            whole_peak as f64 / chunked_peak.max(1) as f64
        );
    }
    Ok(())
}

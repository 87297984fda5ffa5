//! DataFrame optimization and CSV reading, timed with criterion.
//!
//! `cargo bench --bench dataframe --features dataframe`
//!
//! On flights.csv (when `../shared/data` exists) and on a generated frame of
//! the same shape of types: the optimization (compare with
//! `python3 ../shared/bench/pandas_reference.py ../shared/data/flights.csv`),
//! and reading the file whole against reading it in chunks.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flowyml::dataframe::polars::prelude::*;
use flowyml::dataframe::{OptimizeOptions, optimize_dataframe_with, read_csv, read_csv_chunks};
use flowyml_workspace::SplitMix64;

fn flights_path() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flights.csv");
    path.is_file().then_some(path)
}

fn generated(rows: usize) -> DataFrame {
    let mut rng = SplitMix64::new(1);
    let carriers = ["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN", "VX", "FL"];
    df!(
        "id" => (0..rows as i64).collect::<Vec<_>>(),
        "delay" => (0..rows).map(|_| (rng.below(10) != 0).then(|| rng.below(400) as i64 - 60)).collect::<Vec<_>>(),
        "temp" => (0..rows).map(|_| (rng.below(10_000) as f64 - 2000.0) / 100.0).collect::<Vec<_>>(),
        "carrier" => (0..rows).map(|_| carriers[rng.below(carriers.len())]).collect::<Vec<_>>(),
        "tail" => (0..rows).map(|_| format!("N{:05}", rng.below(4000))).collect::<Vec<_>>(),
    )
    .expect("a valid frame")
}

fn optimize(c: &mut Criterion) {
    let options = OptimizeOptions::default();
    let mut group = c.benchmark_group("optimize");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    if let Some(path) = flights_path() {
        let flights = read_csv(&path).expect("flights.csv reads");
        group.bench_function("flights", |b| {
            b.iter(|| optimize_dataframe_with(&flights, &options).unwrap())
        });
    } else {
        eprintln!("flights.csv not found: benchmarking the generated frame only");
    }
    let frame = generated(336_776);
    group.bench_function("generated_336776", |b| {
        b.iter(|| optimize_dataframe_with(&frame, &options).unwrap())
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let Some(path) = flights_path() else { return };
    let mut group = c.benchmark_group("read_flights");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("whole", |b| b.iter(|| read_csv(&path).unwrap().height()));
    group.bench_function("chunks_of_10000", |b| {
        b.iter(|| {
            read_csv_chunks(&path, 10_000)
                .unwrap()
                .map(|c| c.unwrap().height())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, optimize, read);
criterion_main!(benches);

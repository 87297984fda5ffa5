//! ParallelExecutor::map vs rayon's par_iter on the same pool; submit+join.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flowyml::ParallelExecutor;
use rayon::prelude::*;

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn executor(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    let items: Vec<u64> = (0..10_000).collect();
    let mut group = c.benchmark_group("map_10k_tiny_tasks");
    group.bench_function("ParallelExecutor::map", |b| {
        b.iter(|| black_box(executor.map(tiny, items.iter().copied())))
    });
    group.bench_function("rayon_par_iter_same_pool", |b| {
        b.iter(|| {
            black_box(
                executor
                    .pool()
                    .install(|| items.par_iter().copied().map(tiny).collect::<Vec<_>>()),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("submit_join");
    group.bench_function("submit+join", |b| {
        b.iter(|| black_box(executor.submit(|| tiny(7)).join()))
    });
    group.bench_function("rayon_spawn+channel", |b| {
        b.iter(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            executor.pool().spawn(move || {
                let _ = tx.send(tiny(7));
            });
            black_box(rx.recv().expect("sent"))
        })
    });
    group.finish();
}

criterion_group!(benches, executor);
criterion_main!(benches);

//! Incremental pipelines: a no-change rerun against the first run, in
//! memory and on disk, and the cache check's cost per step.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flowyml::incremental::StoreOptions;
use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use flowyml_workspace::SplitMix64;

fn pipeline_of(steps: usize) -> Pipeline {
    let mut rng = SplitMix64::new(11);
    let mut p = Pipeline::new("incremental-bench");
    for i in 0..steps {
        let mut step = FnStep::builder(format!("s{i}")).version("1");
        let deps: Vec<usize> = if i == 0 {
            vec![]
        } else {
            (0..1 + rng.below(2)).map(|_| rng.below(i)).collect()
        };
        let mut deps = deps;
        deps.sort_unstable();
        deps.dedup();
        for d in &deps {
            step = step.input::<u64>(format!("a{d}"));
        }
        let n = deps.len();
        p.add_step(step.output::<u64>(format!("a{i}")).build(move |ctx| {
            let sum = (0..n)
                .map(|j| ctx.input::<u64>(j).copied())
                .sum::<Result<u64, _>>()?;
            ctx.set_output(0, sum.wrapping_add(1));
            Ok(())
        }));
    }
    p
}

fn in_memory(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    let mut group = c.benchmark_group("incremental_10k_steps_in_memory");
    group.sample_size(10);
    group.bench_function("first_run", |b| {
        b.iter_batched(
            || {
                let mut p = pipeline_of(10_000);
                p.incremental();
                p
            },
            |p| black_box(p.run_with(&executor).expect("runs").steps.len()),
            BatchSize::PerIteration,
        )
    });
    let mut warm = pipeline_of(10_000);
    warm.incremental();
    warm.run_with(&executor).expect("runs");
    group.bench_function("no_change_rerun", |b| {
        b.iter(|| black_box(warm.run_with(&executor).expect("runs").steps.len()))
    });
    let plain = pipeline_of(10_000);
    group.bench_function("no_cache", |b| {
        b.iter(|| black_box(plain.run_with(&executor).expect("runs").steps.len()))
    });
    group.finish();
}

fn on_disk(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions {
        durable: false,
        ..StoreOptions::default()
    };
    let mut group = c.benchmark_group("incremental_1k_steps_on_disk");
    group.sample_size(10);
    group.bench_function("first_run", |b| {
        b.iter_batched(
            || {
                let fresh = dir.path().join("cold");
                let _ = std::fs::remove_dir_all(&fresh);
                let mut p = pipeline_of(1_000);
                p.cache_dir_with(&fresh, options.clone()).expect("store");
                p
            },
            |p| black_box(p.run_with(&executor).expect("runs").steps.len()),
            BatchSize::PerIteration,
        )
    });
    // A new pipeline value per iteration: nothing in memory, all from disk,
    // as in a new process.
    let warm_dir = dir.path().join("warm");
    let mut warm = pipeline_of(1_000);
    warm.cache_dir_with(&warm_dir, options.clone())
        .expect("store");
    warm.run_with(&executor).expect("runs");
    group.bench_function("no_change_rerun_new_process", |b| {
        b.iter_batched(
            || {
                let mut p = pipeline_of(1_000);
                p.cache_dir_with(&warm_dir, options.clone()).expect("store");
                p
            },
            |p| black_box(p.run_with(&executor).expect("runs").steps.len()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, in_memory, on_disk);
criterion_main!(benches);

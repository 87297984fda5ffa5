//! Incremental pipelines: a no-change rerun against the first run, in
//! memory and on disk, and the cache check's cost per step. (A no-change
//! rerun against a run without a cache is measured interleaved, in the
//! `scheduler` bench's `cached_rerun_random_10000`.)

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flowyml::incremental::StoreOptions;
use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use flowyml_workspace::{SplitMix64, busy_work};

/// `steps` steps in a random DAG, each summing its inputs after `work_us`
/// microseconds of CPU work.
fn pipeline_of(steps: usize, work_us: u64) -> Pipeline {
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
        p.add_step(
            step.output::<u64>(format!("a{i}"))
                .build_copied(move |ctx| {
                    let sum = (0..ctx.input_count())
                        .map(|j| ctx.input::<u64>(j).copied())
                        .sum::<Result<u64, _>>()?;
                    // Nothing depends on the work's value: the output stays the
                    // same for every amount of work.
                    black_box(busy_work(work_us));
                    ctx.set_output(0, sum.wrapping_add(1));
                    Ok(())
                }),
        );
    }
    p
}

/// In memory, with no-op steps (the rerun is then mostly scheduling, so
/// the ratio is at its worst) and with steps of 50 µs of work.
fn in_memory(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    for work_us in [0, 50] {
        let mut group = c.benchmark_group(format!("incremental_10k_steps_{work_us}us_in_memory"));
        group.sample_size(10);
        group.bench_function("first_run", |b| {
            b.iter_batched(
                || {
                    let mut p = pipeline_of(10_000, work_us);
                    p.incremental().validate().expect("valid");
                    p
                },
                // The pipeline is returned so that its drop is not timed;
                // validated above, so that both runs use a cached plan.
                |p| {
                    black_box(p.run_with(&executor).expect("runs").steps().len());
                    p
                },
                BatchSize::PerIteration,
            )
        });
        let mut warm = pipeline_of(10_000, work_us);
        warm.incremental();
        warm.run_with(&executor).expect("runs");
        group.bench_function("no_change_rerun", |b| {
            b.iter(|| black_box(warm.run_with(&executor).expect("runs").steps().len()))
        });
        group.finish();
    }
}

/// On disk with the default options (durable: the run's end syncs once),
/// against the same pipeline with its cache in memory: a first run, and a
/// no-change rerun by a new pipeline value (nothing in memory, every
/// output read from disk, as in a new process).
fn on_disk(c: &mut Criterion) {
    const STEPS: usize = 2_000;
    let executor = ParallelExecutor::new(2).expect("pool");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions::default();
    let mut group = c.benchmark_group("incremental_2k_steps_on_disk");
    group.sample_size(10);
    group.bench_function("first_run_in_memory", |b| {
        b.iter_batched(
            || {
                let mut p = pipeline_of(STEPS, 0);
                p.incremental().validate().expect("valid");
                p
            },
            |p| {
                black_box(p.run_with(&executor).expect("runs").steps().len());
                p
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("first_run", |b| {
        b.iter_batched(
            || {
                let fresh = dir.path().join("cold");
                let _ = std::fs::remove_dir_all(&fresh);
                let mut p = pipeline_of(STEPS, 0);
                p.cache_dir_with(&fresh, options.clone()).expect("store");
                p.validate().expect("valid");
                p
            },
            |p| {
                black_box(p.run_with(&executor).expect("runs").steps().len());
                p
            },
            BatchSize::PerIteration,
        )
    });
    let warm_dir = dir.path().join("warm");
    let mut warm = pipeline_of(STEPS, 0);
    warm.cache_dir_with(&warm_dir, options.clone())
        .expect("store");
    warm.run_with(&executor).expect("runs");
    drop(warm);
    group.bench_function("no_change_rerun_new_process", |b| {
        b.iter_batched(
            || {
                let mut p = pipeline_of(STEPS, 0);
                p.cache_dir_with(&warm_dir, options.clone()).expect("store");
                p.validate().expect("valid");
                p
            },
            |p| {
                black_box(p.run_with(&executor).expect("runs").steps().len());
                p
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, in_memory, on_disk);
criterion_main!(benches);

//! Scheduling overhead: 10,000 no-op steps as a chain, a fan-out and a
//! random DAG, against a hand-written rayon scope with atomic dependency
//! counters running the same DAG on the same pool; and 8 CPU-bound
//! independent steps against running them sequentially.

use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use flowyml_workspace::{SplitMix64, busy_work};
use rayon::prelude::*;

const STEPS: usize = 10_000;

/// `deps[i]`: the earlier steps step `i` reads.
fn shapes() -> Vec<(&'static str, Vec<Vec<usize>>)> {
    let chain = (0..STEPS)
        .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
        .collect();
    let fan_out = (0..STEPS)
        .map(|i| if i == 0 { vec![] } else { vec![0] })
        .collect();
    let mut rng = SplitMix64::new(7);
    let random = (0..STEPS)
        .map(|i| {
            if i == 0 {
                vec![]
            } else {
                (0..1 + rng.below(3))
                    .map(|_| rng.below(i))
                    .collect::<Vec<_>>()
            }
        })
        .map(|mut d| {
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    vec![("chain", chain), ("fan_out", fan_out), ("random", random)]
}

fn pipeline_of(deps: &[Vec<usize>]) -> Pipeline {
    let mut p = Pipeline::new("bench");
    for (i, inputs) in deps.iter().enumerate() {
        let mut step = FnStep::builder(format!("s{i}"));
        for d in inputs {
            step = step.input::<u64>(format!("a{d}"));
        }
        p.add_step(step.output::<u64>(format!("a{i}")).build(|ctx| {
            ctx.set_output(0, 1u64);
            Ok(())
        }));
    }
    p
}

/// The floor: the same DAG on the same pool with no bookkeeping beyond
/// atomic counters and one shared output per step.
struct Baseline {
    dependents: Vec<Vec<usize>>,
    waits: Vec<usize>,
}

impl Baseline {
    fn new(deps: &[Vec<usize>]) -> Self {
        let mut dependents = vec![Vec::new(); deps.len()];
        for (i, d) in deps.iter().enumerate() {
            for &p in d {
                dependents[p].push(i);
            }
        }
        Baseline {
            dependents,
            waits: deps.iter().map(Vec::len).collect(),
        }
    }

    fn run(&self, pool: &rayon::ThreadPool) -> usize {
        let waiting: Vec<AtomicUsize> = self.waits.iter().map(|&w| AtomicUsize::new(w)).collect();
        let outputs: Vec<OnceLock<std::sync::Arc<u64>>> =
            (0..self.waits.len()).map(|_| OnceLock::new()).collect();
        fn go<'s>(
            s: &rayon::Scope<'s>,
            b: &'s Baseline,
            w: &'s [AtomicUsize],
            o: &'s [OnceLock<std::sync::Arc<u64>>],
            i: usize,
        ) {
            let _ = o[i].set(std::sync::Arc::new(1));
            for &d in &b.dependents[i] {
                if w[d].fetch_sub(1, Ordering::AcqRel) == 1 {
                    s.spawn(move |s| go(s, b, w, o, d));
                }
            }
        }
        pool.scope(|s| {
            for i in (0..self.waits.len()).filter(|&i| self.waits[i] == 0) {
                let (w, o) = (&waiting[..], &outputs[..]);
                s.spawn(move |s| go(s, self, w, o, i));
            }
        });
        outputs.iter().filter(|o| o.get().is_some()).count()
    }
}

fn overhead(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    for (shape, deps) in shapes() {
        let mut group = c.benchmark_group(format!("schedule_10k_noop_{shape}"));
        group.sample_size(20);
        let pipeline = pipeline_of(&deps);
        group.bench_function("flowyml", |b| {
            b.iter(|| black_box(pipeline.run_with(&executor).expect("runs").steps.len()))
        });
        let baseline = Baseline::new(&deps);
        group.bench_function("hand_written_rayon", |b| {
            b.iter(|| black_box(baseline.run(executor.pool())))
        });
        group.finish();
    }
}

fn speedup(c: &mut Criterion) {
    let executor = ParallelExecutor::new(2).expect("pool");
    let mut pipeline = Pipeline::new("eight");
    for i in 0..8 {
        pipeline.add_step(
            FnStep::builder(format!("work{i}"))
                .output::<u64>(format!("r{i}"))
                .build(|ctx| {
                    ctx.set_output(0, busy_work(20_000));
                    Ok(())
                }),
        );
    }
    let mut group = c.benchmark_group("eight_cpu_bound_steps");
    group.sample_size(10);
    group.bench_function("flowyml_2_workers", |b| {
        b.iter(|| black_box(pipeline.run_with(&executor).expect("runs").steps.len()))
    });
    // What the machine allows: the same work as a rayon parallel iterator.
    group.bench_function("rayon_par_iter_2_workers", |b| {
        b.iter(|| {
            black_box(executor.pool().install(|| {
                (0..8)
                    .into_par_iter()
                    .map(|_| busy_work(20_000))
                    .sum::<u64>()
            }))
        })
    });
    group.bench_function("sequential", |b| {
        b.iter_batched(
            || (),
            |()| black_box((0..8).map(|_| busy_work(20_000)).sum::<u64>()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, overhead, speedup);
criterion_main!(benches);

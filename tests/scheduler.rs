//! The scheduler on random DAGs: every step runs exactly once, after all of
//! its inputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use proptest::prelude::*;

/// `deps[i]` lists the earlier steps that step `i` reads.
fn dags() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..1000).prop_flat_map(|n| {
        (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), if i == 0 { 0..1 } else { 0..4 }))
            .collect::<Vec<_>>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_step_runs_once_after_its_inputs(deps in dags(), workers in 1usize..5) {
        let n = deps.len();
        let clock = Arc::new(AtomicUsize::new(0));
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let mut pipeline = Pipeline::new("random");
        for (i, inputs) in deps.iter().enumerate() {
            let mut inputs = inputs.clone();
            inputs.sort_unstable();
            inputs.dedup();
            let mut step = FnStep::builder(format!("s{i}"));
            for &d in &inputs {
                step = step.input::<usize>(format!("a{d}"));
            }
            let (clock, runs) = (Arc::clone(&clock), Arc::clone(&runs));
            let k = inputs.len();
            pipeline.add_step(step.output::<usize>(format!("a{i}")).build(move |ctx| {
                // Each input's value is the tick at which its producer
                // finished; this step must start after all of them.
                let latest = (0..k).map(|j| ctx.input::<usize>(j).copied()).try_fold(0, |m, t| t.map(|t| m.max(t)))?;
                let now = clock.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now > latest, "started before an input existed");
                runs[i].fetch_add(1, Ordering::SeqCst);
                ctx.set_output(0, clock.fetch_add(1, Ordering::SeqCst) + 1);
                Ok(())
            }));
        }
        let result = pipeline.run_with(&ParallelExecutor::new(workers).expect("pool")).expect("runs");
        prop_assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
        prop_assert!(result.succeeded());
        prop_assert_eq!(result.steps().len(), n);
    }
}

/// The benchmarks' floor computes what the steps compute, on every shape
/// (each step's output is 1 + the sum of its inputs' outputs), so its
/// ratios compare equal work.
#[test]
fn the_benchmark_floor_computes_every_step_once_in_order() {
    use flowyml_workspace::bench::{Floor, shapes};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    for (shape, deps) in shapes(2_000) {
        let mut outputs = vec![0u64; deps.len()];
        for (i, d) in deps.iter().enumerate() {
            let sum = d.iter().map(|&p| outputs[p]).fold(0, u64::wrapping_add);
            outputs[i] = sum.wrapping_add(1);
        }
        let expected = outputs.iter().copied().fold(0, u64::wrapping_add);
        assert_eq!(Floor::new(&deps).run(&pool), expected, "{shape}");
    }
}

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

/// A step that is not a closure: the run calls its own `run` (it has no
/// body to call instead).
struct OwnRun(FnStep);

impl flowyml::step::Step for OwnRun {
    fn spec(&self) -> &flowyml::step::StepSpec {
        self.0.spec()
    }
    fn run(&self, ctx: &mut flowyml::step::StepContext<'_>) -> Result<(), flowyml::BoxError> {
        self.0.run(ctx)
    }
}

/// Every way a run calls a step's code, side by side in one pipeline of
/// 200 steps in a chain: a shared closure, a copied one, a step's own
/// `run`; and the steps with a time limit (past the first 64 steps too)
/// run on a thread of their own while the others run on the workers. The
/// chain's sum says each step ran once, reading its own input; a second,
/// incremental run serves them all.
#[test]
fn every_kind_of_step_code_is_called_with_its_own_inputs() {
    use std::time::Duration;
    let limited = |i: usize| i % 50 == 7;
    let mut p = Pipeline::new("kinds");
    p.input("x0", 0_u64);
    for i in 0..200 {
        let mut builder = FnStep::builder(format!("s{i}"))
            .input::<u64>(format!("x{i}"))
            .output::<u64>(format!("x{}", i + 1));
        if limited(i) {
            builder = builder.timeout(Duration::from_secs(60));
        }
        let own_thread = limited(i);
        let body = move |ctx: &mut flowyml::step::StepContext<'_>| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            let prefix = if own_thread {
                "flowyml-step-"
            } else {
                "flowyml-worker-"
            };
            if !name.starts_with(prefix) {
                return Err(format!("step {i} ran on thread `{name}`").into());
            }
            let x = *ctx.input::<u64>(0)?;
            ctx.set_output(0, x + i as u64);
            Ok(())
        };
        match i % 3 {
            0 => p.add_step(builder.build(body)),
            1 => p.add_step(builder.build_copied(body)),
            _ => p.add_step(OwnRun(builder.build(body))),
        };
    }
    let expected: u64 = (0..200).sum();
    let result = p.run().expect("runs");
    assert_eq!(
        *result.get::<u64>("x200").expect("the last output"),
        expected
    );
    p.incremental();
    p.run().expect("first incremental run");
    let rerun = p.run().expect("rerun");
    assert_eq!(*rerun.get::<u64>("x200").expect("served"), expected);
    assert_eq!(rerun.steps_with(flowyml::StepStatus::Cached).len(), 200);
}

/// A value that counts its drops, to see when a run's artifacts go.
struct Counted(u64, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// A plan reuses a dropped result's memory for its next run: nothing of
/// the earlier run may show through (no artifact, no record, no status),
/// and none of its artifacts may outlive the result.
#[test]
fn a_rerun_reuses_a_dropped_results_memory_but_nothing_it_held() {
    use flowyml::StepStatus;
    use std::sync::atomic::AtomicBool;
    let drops = Arc::new(AtomicUsize::new(0));
    let fail_at_10 = Arc::new(AtomicBool::new(false));
    let mut p = Pipeline::new("recycled");
    p.input("x0", 1_u64);
    for i in 0..50_u64 {
        let (drops, fail) = (Arc::clone(&drops), Arc::clone(&fail_at_10));
        let first = i == 0;
        p.add_step(
            FnStep::builder(format!("s{i}"))
                .input::<u64>(format!("x{i}"))
                .output::<Counted>(format!("c{i}"))
                .output::<u64>(format!("x{}", i + 1))
                .build(move |ctx| {
                    if i == 10 && fail.load(Ordering::Relaxed) {
                        return Err("asked to fail".into());
                    }
                    let x = *ctx.input::<u64>(0)? + if first { 0 } else { 1 };
                    ctx.set_output(0, Counted(x, Arc::clone(&drops)));
                    ctx.set_output(1, x);
                    Ok(())
                }),
        );
    }
    let first = p.run().expect("runs");
    assert_eq!(*first.get::<u64>("x50").expect("the last output"), 50);
    // A run while the first result is alive has memory of its own.
    let second = p.run().expect("runs again");
    assert_eq!(first.get::<Counted>("c49").expect("kept").0, 50);
    drop(second);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        50,
        "the second run's artifacts"
    );
    drop(first);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        100,
        "the first run's artifacts"
    );

    // A failing run in the memory of a run that succeeded: downstream of the
    // failure, no artifact and no record of the earlier run.
    fail_at_10.store(true, Ordering::Relaxed);
    let failed = p.run().expect_err("step s10 fails");
    let flowyml::Error::StepFailed { step, result, .. } = &failed else {
        panic!("not a step failure: {failed}");
    };
    assert_eq!(step, "s10");
    assert!(result.get::<u64>("x50").is_err(), "a stale last output");
    assert!(result.artifact("c11").is_none(), "a stale artifact");
    assert_eq!(result.step("s10").expect("s10").status, StepStatus::Failed);
    assert_eq!(result.steps_with(StepStatus::Ran).len(), 10);
    assert_eq!(result.steps_with(StepStatus::Skipped).len(), 39);
    assert_eq!(result.step("s49").expect("s49").attempts, 0);
    drop(failed);
    assert_eq!(drops.load(Ordering::Relaxed), 110);

    // And a run that succeeds in the memory of one that failed.
    fail_at_10.store(false, Ordering::Relaxed);
    let again = p.run().expect("runs once more");
    assert!(again.succeeded());
    assert_eq!(again.steps_with(StepStatus::Ran).len(), 50);
    assert_eq!(again.step("s10").expect("s10").error, None);
    assert_eq!(*again.get::<u64>("x50").expect("the last output"), 50);
}

//! Controlling runs: retries with backoff, time limits, cancellation, and
//! the step context a `#[step]` can take.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flowyml::step::{FnStep, StepContext};
use flowyml::{Error, ParallelExecutor, Pipeline, StepStatus, step};

/// A step that fails its first `failures` attempts.
fn flaky(name: &'static str, failures: u32, calls: Arc<AtomicU32>) -> FnStep {
    FnStep::builder(name)
        .output::<u32>(format!("{name}_out"))
        .build(move |ctx| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                return Err(format!("attempt {} broke", n + 1).into());
            }
            ctx.set_output(0, n);
            Ok(())
        })
}

#[test]
fn a_step_is_retried_with_growing_waits_and_every_attempt_is_recorded() -> flowyml::Result<()> {
    let calls = Arc::new(AtomicU32::new(0));
    let mut p = Pipeline::new("retries");
    p.add_step(flaky("flaky", 2, Arc::clone(&calls)))
        .retries(3, Duration::from_millis(1));
    let result = p.run()?;
    let record = result.step("flaky").expect("ran");
    assert_eq!((record.status, record.attempts), (StepStatus::Ran, 3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(record.notes.len(), 2, "{:?}", record.notes);
    assert!(record.notes[0].starts_with("attempt 1 failed: attempt 1 broke; retried after"));
    assert!(record.notes[1].starts_with("attempt 2 failed: attempt 2 broke; retried after"));
    // The waits never shrink (doubling with jitter): read them back.
    let waits: Vec<Duration> = record
        .notes
        .iter()
        .map(|n| {
            humantime::parse_duration(
                n.rsplit("after ")
                    .next()
                    .unwrap()
                    .replace("µs", "us")
                    .as_str(),
            )
            .unwrap_or_default()
        })
        .collect();
    assert!(waits[0] <= waits[1], "{waits:?}");
    Ok(())
}

#[test]
fn a_step_failing_every_attempt_fails_with_each_error_noted() {
    let calls = Arc::new(AtomicU32::new(0));
    let mut p = Pipeline::new("always");
    p.add_step(
        FnStep::builder("broken")
            .output::<u32>("x")
            .retries(2)
            .backoff(Duration::from_millis(1))
            .build(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("no".into())
            }),
    );
    let Err(Error::StepFailed {
        message, result, ..
    }) = p.run()
    else {
        panic!("expected a failure")
    };
    assert_eq!(message, "no");
    let record = result.step("broken").expect("recorded");
    assert_eq!((record.status, record.attempts), (StepStatus::Failed, 3));
    assert_eq!(record.notes.len(), 2);
}

#[test]
fn a_step_over_its_time_limit_is_timed_out_and_its_dependents_skipped() {
    let mut p = Pipeline::new("slow");
    p.add_step(
        FnStep::builder("sleeper")
            .output::<u8>("late")
            .timeout(Duration::from_millis(100))
            .build(|ctx| {
                // A step that does not look at its context: abandoned.
                std::thread::sleep(Duration::from_secs(3));
                ctx.set_output(0, 1u8);
                Ok(())
            }),
    )
    .add_step(
        FnStep::builder("after")
            .input::<u8>("late")
            .output::<u8>("never")
            .build(|_| Ok(())),
    );
    let started = Instant::now();
    let err = p.run().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the run did not wait for it"
    );
    assert_eq!(
        err.to_string(),
        "pipeline `slow`: step `sleeper` timed out after 100ms"
    );
    let Error::TimedOut {
        step,
        limit,
        result,
        ..
    } = err
    else {
        panic!("expected a time-out")
    };
    assert_eq!(
        (step.as_deref(), limit),
        (Some("sleeper"), Duration::from_millis(100))
    );
    assert_eq!(
        result.step("sleeper").map(|s| s.status),
        Some(StepStatus::TimedOut)
    );
    assert_eq!(
        result.step("after").map(|s| s.status),
        Some(StepStatus::Skipped)
    );
}

#[step(outputs = ["counted"])]
fn count_until_cancelled(limit: &u64, ctx: &StepContext<'_>) -> Result<u64, flowyml::BoxError> {
    let mut n = 0;
    while n < *limit {
        ctx.check_cancelled()?;
        n += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(n)
}

#[test]
fn a_cancelled_run_starts_nothing_more_and_long_steps_see_it() {
    let mut p = Pipeline::new("cancelled");
    p.add_step(count_until_cancelled).input("limit", 100_000u64);
    let canceller = p.canceller();
    let started = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let err = p
        .run_with(&ParallelExecutor::new(1).expect("pool"))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let Error::Interrupted { result, .. } = err else {
        panic!("expected an interruption, got {err}")
    };
    let record = result.step("count_until_cancelled").expect("recorded");
    assert_eq!(record.status, StepStatus::Failed);
    assert_eq!(
        record.error,
        Some("step `count_until_cancelled` was cancelled")
    );
}

#[test]
fn a_run_over_its_time_limit_stops_and_says_so() {
    let mut p = Pipeline::new("bounded");
    p.add_step(count_until_cancelled)
        .input("limit", 100_000u64)
        .timeout(Duration::from_millis(50));
    let err = p.run().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `bounded`: the run timed out after 50ms"
    );
    let Error::TimedOut {
        step: None, result, ..
    } = err
    else {
        panic!("expected the run's time-out")
    };
    assert_eq!(
        result.step("count_until_cancelled").map(|s| s.status),
        Some(StepStatus::Failed)
    );
}

#[step(outputs = ["steady"], retries = 2, backoff = "1ms", timeout = "5s")]
fn steady(seed: &u32) -> u32 {
    seed + 1
}

#[test]
fn step_attributes_set_retries_backoff_and_time_limits() {
    let spec = flowyml::step::registered()
        .into_iter()
        .find(|s| s.name == "steady")
        .expect("registered");
    assert_eq!(spec.retries, Some(2));
    assert_eq!(spec.backoff, Some(Duration::from_millis(1)));
    assert_eq!(spec.timeout, Some(Duration::from_secs(5)));
    let mut p = Pipeline::new("steady");
    p.add_step(steady).input("seed", 1u32);
    assert_eq!(
        *p.run().expect("runs").get::<u32>("steady").expect("out"),
        2
    );
}

/// A step that writes its output and then fails, retried: the retry's
/// output is the one kept (the failed attempt's is discarded, not taken for
/// a second write), in the plain path and with a time limit, where each
/// attempt runs on a thread of its own.
#[test]
fn a_retry_writes_its_own_output_over_a_failed_attempts() -> flowyml::Result<()> {
    for limited in [false, true] {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&calls);
        let mut step = FnStep::builder("half")
            .output::<String>("value")
            .retries(2)
            .backoff(Duration::from_millis(1));
        if limited {
            step = step.timeout(Duration::from_secs(30));
        }
        let mut p = Pipeline::new("retry_outputs");
        p.add_step(step.build(move |ctx| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            ctx.set_output(0, format!("attempt {}", n + 1));
            if n == 0 {
                return Err("broke after writing".into());
            }
            Ok(())
        }));
        let result = p.run()?;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "limited: {limited}");
        assert_eq!(
            result.get::<String>("value")?,
            "attempt 2",
            "limited: {limited}"
        );
        assert_eq!(result.step("half").expect("ran").attempts, 2);
    }
    Ok(())
}

/// A step that writes an output and then fails has produced nothing: its
/// run's result shows no such artifact, rather than the failed step's.
#[test]
fn a_failed_steps_outputs_are_not_in_its_result() {
    let mut p = Pipeline::new("failed_outputs");
    p.add_step(
        FnStep::builder("writes_then_fails")
            .output::<u64>("partial")
            .build(|ctx| {
                ctx.set_output(0, 41u64);
                Err("broke after writing".into())
            }),
    );
    let Err(Error::StepFailed { result, .. }) = p.run() else {
        panic!("expected a failure")
    };
    assert!(
        result.artifact("partial").is_none(),
        "a failed step's output was kept"
    );
    assert!(result.get::<u64>("partial").is_err());
}

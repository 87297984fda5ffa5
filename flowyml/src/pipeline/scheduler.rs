//! The ready-queue scheduler.
//!
//! # Algorithm
//! Each step has an atomic count of the producer steps it still waits for
//! ([`PlannedStep::waits_for`]). The steps with nothing to wait for are
//! spawned on the executor's rayon pool inside one `rayon::scope`. When a
//! step finishes, it decrements the count of each dependent; the dependent
//! whose count reaches zero is ready. Of the steps a finishing step makes
//! ready, all but one are spawned and the last runs on the same worker
//! right away, so a chain runs without any spawn and a fan-out is spread
//! by rayon's work stealing. There are no level-by-level barriers: a step
//! starts the moment its last input exists, as in bevy's multi-threaded
//! executor and Dask.
//!
//! The scope returns when every spawned step has finished, so a run never
//! leaves work behind. A step that fails or panics is recorded as failed;
//! its dependents never become ready (they are reported as skipped), and
//! unless the run keeps going, steps not started yet are skipped too while
//! steps already running finish.
//!
//! # Cost
//! Per step: two clock reads, one `catch_unwind` frame, the counter updates
//! and one record write. Artifacts live in `OnceLock` slots written once and
//! shared by `Arc`; nothing is copied.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::result::{RerunReason, StepStatus};
use crate::error::panic_message;

/// What executing one step (or serving it from a cache) gave.
pub(crate) enum Outcome {
    /// The step ran: why it was not served from the cache (where there is
    /// one), and notes for its record.
    Ran {
        reason: Option<RerunReason>,
        notes: Vec<String>,
    },
    /// The outputs came from the cache.
    Cached,
    /// The step returned an error.
    Failed(String),
}

/// What the scheduler records of a step.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub status: StepStatus,
    pub error: Option<String>,
    pub reason: Option<RerunReason>,
    pub notes: Vec<String>,
    pub start: Duration,
    pub duration: Duration,
    pub worker: Option<usize>,
}

struct Shared<'a, F> {
    plan: &'a Plan,
    exec: &'a F,
    waiting: Vec<AtomicUsize>,
    records: Vec<OnceLock<Timing>>,
    abort: AtomicBool,
    keep_going: bool,
    origin: Instant,
}

/// Runs every step of `plan` on `pool`, calling `exec(step)` for each once
/// its inputs exist. Returns one record per step; `None` for skipped steps.
pub(crate) fn run<F>(
    pool: &rayon::ThreadPool,
    plan: &Plan,
    keep_going: bool,
    exec: &F,
) -> Vec<Option<Timing>>
where
    F: Fn(usize) -> Outcome + Sync,
{
    let shared = Shared {
        plan,
        exec,
        waiting: plan
            .steps
            .iter()
            .map(|s| AtomicUsize::new(s.waits_for))
            .collect(),
        records: plan.steps.iter().map(|_| OnceLock::new()).collect(),
        abort: AtomicBool::new(false),
        keep_going,
        origin: Instant::now(),
    };
    pool.scope(|scope| {
        for &root in &plan.roots {
            let shared = &shared;
            scope.spawn(move |scope| run_from(scope, shared, root));
        }
    });
    shared
        .records
        .into_iter()
        .map(OnceLock::into_inner)
        .collect()
}

/// Runs `step`, then keeps running one newly ready dependent on this
/// worker while spawning the others.
fn run_from<'s, F>(scope: &rayon::Scope<'s>, shared: &'s Shared<'s, F>, mut step: usize)
where
    F: Fn(usize) -> Outcome + Sync,
{
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            return;
        }
        if !execute(shared, step) {
            if !shared.keep_going {
                shared.abort.store(true, Ordering::Relaxed);
            }
            return;
        }
        let mut next = None;
        for &d in &shared.plan.steps[step].dependents {
            // AcqRel: the producer's slot writes happen-before the consumer
            // that observes the count reach zero.
            if shared.waiting[d].fetch_sub(1, Ordering::AcqRel) == 1
                && let Some(ready) = next.replace(d)
            {
                scope.spawn(move |scope| run_from(scope, shared, ready));
            }
        }
        match next {
            Some(d) => step = d,
            None => return,
        }
    }
}

/// Executes one step and records it; whether it succeeded.
fn execute<F>(shared: &Shared<'_, F>, step: usize) -> bool
where
    F: Fn(usize) -> Outcome + Sync,
{
    let started = Instant::now();
    let outcome =
        catch_unwind(AssertUnwindSafe(|| (shared.exec)(step))).unwrap_or_else(|payload| {
            Outcome::Failed(format!("panicked: {}", panic_message(&*payload)))
        });
    let finished = Instant::now();
    let (status, error, reason, notes) = match outcome {
        Outcome::Ran { reason, notes } => (StepStatus::Ran, None, reason, notes),
        Outcome::Cached => (StepStatus::Cached, None, None, Vec::new()),
        Outcome::Failed(message) => (StepStatus::Failed, Some(message), None, Vec::new()),
    };
    let ok = status != StepStatus::Failed;
    let _ = shared.records[step].set(Timing {
        status,
        error,
        reason,
        notes,
        start: started - shared.origin,
        duration: finished - started,
        worker: rayon::current_thread_index(),
    });
    ok
}

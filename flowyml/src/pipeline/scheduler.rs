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
//! Per step: one clock read (a step continued inline starts when its
//! predecessor's end was read), one `catch_unwind` frame, the counter
//! updates and one record write. Artifacts live in `OnceLock` slots written
//! once and shared by `Arc`; nothing is copied. After the scope, the calling
//! thread turns the records into [`StepRecord`]s while no worker has work,
//! so that pass allocates nothing per step (names are the plan's shared
//! `Arc<str>`s).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::result::{RerunReason, StepRecord, StepStatus};
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

/// A step's record while the run is going: plain atomics written once by
/// the step's worker (cheaper than a `OnceLock` per step, which costs a
/// `Once` initialisation), and the rare parts (an error, a reason, notes)
/// beside them.
#[derive(Default)]
struct Record {
    /// 0 until the step ran; then its status code, with the worker index
    /// plus one above the low byte.
    state: AtomicU64,
    start_ns: AtomicU64,
    duration_ns: AtomicU64,
}

struct Extra {
    error: Option<String>,
    reason: Option<RerunReason>,
    notes: Vec<String>,
}

struct Shared<'a, F> {
    plan: &'a Plan,
    exec: &'a F,
    waiting: Vec<AtomicUsize>,
    records: Vec<Record>,
    extras: Mutex<Vec<(usize, Extra)>>,
    abort: AtomicBool,
    keep_going: bool,
    origin: Instant,
}

const STATUSES: [StepStatus; 3] = [StepStatus::Ran, StepStatus::Cached, StepStatus::Failed];

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs every step of `plan` on `pool`, calling `exec(step)` for each once
/// its inputs exist. Returns one record per step, in the plan's order.
pub(crate) fn run<F>(
    pool: &rayon::ThreadPool,
    plan: &Plan,
    keep_going: bool,
    exec: &F,
) -> Vec<StepRecord>
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
        records: plan.steps.iter().map(|_| Record::default()).collect(),
        extras: Mutex::new(Vec::new()),
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
    // The scope has joined every worker: their writes are visible here.
    let mut records: Vec<StepRecord> = shared
        .records
        .iter()
        .zip(&plan.names)
        .map(|(r, name)| {
            let state = r.state.load(Ordering::Relaxed);
            StepRecord {
                name: Arc::clone(name),
                status: match state & 0xff {
                    0 => StepStatus::Skipped,
                    code => STATUSES[code as usize - 1],
                },
                error: None,
                reason: None,
                notes: Vec::new(),
                start: Duration::from_nanos(r.start_ns.load(Ordering::Relaxed)),
                duration: Duration::from_nanos(r.duration_ns.load(Ordering::Relaxed)),
                worker: match state >> 8 {
                    0 => None,
                    w => usize::try_from(w - 1).ok(),
                },
            }
        })
        .collect();
    let extras = shared
        .extras
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    for (step, extra) in extras {
        let r = &mut records[step];
        (r.error, r.reason, r.notes) = (extra.error, extra.reason, extra.notes);
    }
    records
}

/// Runs `step`, then keeps running one newly ready dependent on this
/// worker while spawning the others.
fn run_from<'s, F>(scope: &rayon::Scope<'s>, shared: &'s Shared<'s, F>, mut step: usize)
where
    F: Fn(usize) -> Outcome + Sync,
{
    let mut started = Instant::now();
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            return;
        }
        let Some(finished) = execute(shared, step, started) else {
            if !shared.keep_going {
                shared.abort.store(true, Ordering::Relaxed);
            }
            return;
        };
        started = finished;
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

/// Executes one step, which the caller saw ready at `started`, and records
/// it; when it finished if it succeeded.
fn execute<F>(shared: &Shared<'_, F>, step: usize, started: Instant) -> Option<Instant>
where
    F: Fn(usize) -> Outcome + Sync,
{
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
    if error.is_some() || reason.is_some() || !notes.is_empty() {
        shared
            .extras
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                step,
                Extra {
                    error,
                    reason,
                    notes,
                },
            ));
    }
    let record = &shared.records[step];
    record
        .start_ns
        .store(nanos(started - shared.origin), Ordering::Relaxed);
    record
        .duration_ns
        .store(nanos(finished - started), Ordering::Relaxed);
    let code = STATUSES
        .iter()
        .position(|s| *s == status)
        .map_or(0, |i| i as u64 + 1);
    let worker = rayon::current_thread_index().map_or(0, |w| w as u64 + 1);
    record.state.store(code | (worker << 8), Ordering::Relaxed);
    ok.then_some(finished)
}

//! One attempt of a step with a time limit, on a thread of its own.
//!
//! A thread cannot be stopped safely from outside, so a step that runs
//! past its limit is not stopped: its thread is abandoned. It is given its
//! own copies of its inputs (shared values are reference counts, scalars
//! are copies) and its own output slots, so the run goes on without it
//! (the step is recorded as timed out and its dependents are skipped),
//! and what the abandoned thread writes later reaches nothing. The step
//! can notice with [`StepContext::is_cancelled`](crate::step::StepContext::is_cancelled),
//! which turns true at its limit, and end early.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::error::{BoxError, panic_message};
use crate::resource::Resources;
use crate::slot::{Slot, Value};
use crate::step::{Gathered, Step, StepContext};

/// How a limited attempt ended.
pub(crate) enum Attempt {
    /// The step returned (or panicked, as an error) within its limit.
    Returned {
        result: Result<(), BoxError>,
        /// Its outputs, in output order, where it wrote them.
        outputs: Vec<Option<Value>>,
        gathered: Gathered,
    },
    /// The limit passed first.
    TimedOut,
}

/// What the step's thread sends back.
type Returned = (Result<(), BoxError>, Vec<Option<Value>>, Gathered);

/// Runs `step` on its own thread with `inputs`, waiting at most `limit`;
/// `cancel` and `stop` are the pipeline's canceller and the run's stop,
/// which the step sees through its context.
pub(crate) fn call(
    step: Arc<dyn Step>,
    inputs: Vec<Value>,
    resources: Arc<Resources>,
    cancel: Arc<AtomicBool>,
    stop: &AtomicBool,
    limit: Duration,
) -> Attempt {
    // The step's own stop: set at its limit or when the run stops.
    let own_stop = Arc::new(AtomicBool::new(false));
    let (send, receive) = mpsc::channel::<Returned>();
    let thread_stop = Arc::clone(&own_stop);
    let spawned = std::thread::Builder::new()
        .name(format!("flowyml-step-{}", step.spec().name))
        .spawn(move || {
            let k = inputs.len();
            let m = step.spec().outputs.len();
            let slots: Vec<Slot> = inputs
                .into_iter()
                .map(Slot::from)
                .chain((0..m).map(|_| Slot::new()))
                .collect();
            let positions: Vec<u32> = (0..k as u32).collect();
            let mut ctx = StepContext {
                specs: &std::slice::from_ref(&step),
                index: 0,
                slots: &slots,
                inputs: &positions,
                outputs: k..k + m,
                resources: &resources,
                gathered: Gathered::default(),
                cancel: &cancel,
                stop: &thread_stop,
                written: 0,
            };
            let result = catch_unwind(AssertUnwindSafe(|| step.run(&mut ctx)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p)).into()));
            let gathered = ctx.gathered;
            let outputs = slots.into_iter().skip(k).map(Slot::into_inner).collect();
            let _ = send.send((result, outputs, gathered));
        });
    if let Err(e) = spawned {
        return Attempt::Returned {
            result: Err(format!("could not start a thread for its time limit: {e}").into()),
            outputs: Vec::new(),
            gathered: Gathered::default(),
        };
    }
    let deadline = Instant::now() + limit;
    loop {
        let now = Instant::now();
        if now >= deadline {
            own_stop.store(true, Ordering::Relaxed);
            return Attempt::TimedOut;
        }
        // Short waits, so that a stop of the run reaches the step soon.
        match receive.recv_timeout((deadline - now).min(Duration::from_millis(20))) {
            Ok((result, outputs, gathered)) => {
                return Attempt::Returned {
                    result,
                    outputs,
                    gathered,
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    own_stop.store(true, Ordering::Relaxed);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Attempt::Returned {
                    result: Err("its thread ended without an answer".into()),
                    outputs: Vec::new(),
                    gathered: Gathered::default(),
                };
            }
        }
    }
}

//! Controlling a run from outside it: cancelling it, bounding its time,
//! watching it, and how long a failed step waits before it is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::record::StepStatus;

/// Stops a pipeline's runs from another thread (a signal handler, a UI):
/// from [`Pipeline::canceller`](super::Pipeline::canceller). A cancelled
/// run starts no more steps, lets the running ones finish (they can poll
/// [`StepContext::is_cancelled`](crate::step::StepContext::is_cancelled)),
/// keeps every finished step's cache entry and fails with
/// [`Error::Interrupted`](crate::Error::Interrupted). A canceller stays
/// cancelled until [`reset`](Self::reset).
#[derive(Debug, Clone, Default)]
pub struct Canceller(pub(crate) Arc<AtomicBool>);

impl Canceller {
    /// Cancels the runs going on and any run started before a reset.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Lets runs go again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// What a run reports as it goes, to the function given to
/// [`Pipeline::on_progress`](super::Pipeline::on_progress). It is called
/// on the worker running the step, so it should be quick.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A step started (or, with a cache, its check started).
    Started {
        /// Its name.
        step: &'a str,
        /// Its index among the pipeline's steps.
        index: usize,
    },
    /// A step ended.
    Finished {
        /// Its name.
        step: &'a str,
        /// Its index among the pipeline's steps.
        index: usize,
        /// How it ended.
        status: StepStatus,
        /// How long it took, every attempt included.
        duration: Duration,
    },
}

/// A function watching a pipeline's runs.
pub(crate) type ProgressFn = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// How long to wait before attempt `attempt + 1` of a step whose first
/// retry waits `first`: doubling each time, with half of it random
/// ("equal jitter"), so that steps failing together do not retry in step
/// and every wait is at least as long as the one before. `seed` varies
/// the jitter between steps.
pub(crate) fn backoff(first: Duration, attempt: u32, seed: u64) -> Duration {
    let full = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let mut x = seed ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    full / 2 + full.mul_f64(unit / 2.0)
}

/// Sets `stop` when `limit` has passed, unless dropped before: the deadline
/// of a whole run.
pub(crate) struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// A watchdog over `stop`, or none without a limit.
    pub(crate) fn start(
        limit: Option<Duration>,
        stop: Arc<AtomicBool>,
        fired: Arc<AtomicBool>,
    ) -> Self {
        let Some(limit) = limit else {
            return Watchdog { done: None };
        };
        let (done, wait) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("flowyml-deadline".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                    fired.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
            });
        Watchdog {
            done: spawned.ok().map(|_| done),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// Waits until `wait` has passed, lending the worker to rayon's other jobs
/// meanwhile rather than blocking it, and returning early once `stop` is
/// set.
pub(crate) fn pause(wait: Duration, stop: &AtomicBool) {
    let deadline = std::time::Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now >= deadline {
            return;
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_never_shrinks() {
        let first = Duration::from_millis(200);
        for seed in 0..50 {
            let waits: Vec<Duration> = (1..=6).map(|a| backoff(first, a, seed)).collect();
            assert!(waits[0] >= first / 2 && waits[0] <= first, "{waits:?}");
            for pair in waits.windows(2) {
                assert!(pair[0] <= pair[1], "{waits:?}");
            }
            assert!(
                waits[5] >= first * 16 && waits[5] <= first * 32,
                "{waits:?}"
            );
        }
        assert_ne!(backoff(first, 1, 1), backoff(first, 1, 2));
    }
}

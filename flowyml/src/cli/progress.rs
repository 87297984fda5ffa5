//! Live progress of a run on a terminal: steps done of total, how many
//! came from the cache, the steps running with how long they have run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::pipeline::Progress;
use crate::record::StepStatus;
use crate::sync::lock;

/// A progress bar over a run's steps, fed by
/// [`Pipeline::on_progress`](crate::Pipeline::on_progress).
///
/// ```
/// use flowyml::cli::{ProgressBar, ProgressDrawTarget};
///
/// let bar = ProgressBar::with_target(3, ProgressDrawTarget::hidden());
/// assert_eq!(bar.message(), "");
/// ```
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: usize,
    failed: usize,
    /// The steps running, with when each started.
    running: Vec<(String, Instant)>,
}

impl ProgressBar {
    /// A bar on stderr over `total` steps.
    pub fn stderr(total: usize) -> Self {
        Self::with_target(total, indicatif::ProgressDrawTarget::stderr())
    }

    /// A bar drawn to `target` (a terminal, or an in-memory one in tests).
    pub fn with_target(total: usize, target: indicatif::ProgressDrawTarget) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(total as u64), target);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps {elapsed:>4} {msg}",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        ProgressBar {
            bar,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes one event of the run.
    pub fn observe(&self, progress: Progress<'_>) {
        let mut state = lock(&self.state);
        match progress {
            Progress::Started { step, .. } => state.running.push((step.to_owned(), Instant::now())),
            Progress::Finished { step, status, .. } => {
                if let Some(k) = state.running.iter().position(|(s, _)| s == step) {
                    state.running.swap_remove(k);
                }
                match status {
                    StepStatus::Cached => state.cached += 1,
                    StepStatus::Failed | StepStatus::TimedOut => state.failed += 1,
                    _ => {}
                }
                self.bar.inc(1);
            }
        }
        self.bar.set_message(describe(&state));
    }

    /// The bar's message now: cached and failed counts, running steps.
    pub fn message(&self) -> String {
        self.bar.message()
    }

    /// Clears the bar (the summary follows it).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn describe(state: &State) -> String {
    let mut parts = Vec::new();
    if state.cached > 0 {
        parts.push(format!("{} cached", state.cached));
    }
    if state.failed > 0 {
        parts.push(format!("{} failed", state.failed));
    }
    if !state.running.is_empty() {
        let running: Vec<String> = state
            .running
            .iter()
            .take(4)
            .map(|(s, t)| format!("{s} {:.1}s", t.elapsed().as_secs_f64()))
            .collect();
        let more = state.running.len().saturating_sub(4);
        parts.push(format!(
            "running: {}{}",
            running.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    parts.join(" · ")
}

impl std::fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressBar")
            .field("position", &self.bar.position())
            .finish_non_exhaustive()
    }
}

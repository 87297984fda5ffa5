//! What a run produced: every artifact, and for each step its status,
//! timing and worker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::plan::Plan;
use crate::artifact::Artifact;
use crate::error::{Error, Result};

/// What happened to a step in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step ran and succeeded.
    Ran,
    /// Its outputs came from the cache; it did not run.
    Cached,
    /// It returned an error or panicked.
    Failed,
    /// It did not run: an input's producer failed, or the run stopped.
    Skipped,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepStatus::Ran => "ran",
            StepStatus::Cached => "cached",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        })
    }
}

/// Why a step ran although the pipeline has a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RerunReason {
    /// The cache had no entry for the step.
    NoEntry,
    /// The step's code changed since its cached run.
    CodeChanged,
    /// An input (artifact, run-time input or watched file) changed.
    InputChanged,
    /// The step was invalidated with `Pipeline::invalidate`.
    Invalidated,
    /// The cached entry was unreadable or corrupt, so it was recomputed.
    CorruptEntry,
}

impl fmt::Display for RerunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RerunReason::NoEntry => "no cache entry",
            RerunReason::CodeChanged => "code changed",
            RerunReason::InputChanged => "input changed",
            RerunReason::Invalidated => "invalidated",
            RerunReason::CorruptEntry => "cache entry corrupt",
        })
    }
}

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// The step's name.
    pub name: Arc<str>,
    /// What happened to it.
    pub status: StepStatus,
    /// Its error message, if it failed.
    pub error: Option<String>,
    /// Why it ran, where a cache could have served it.
    pub reason: Option<RerunReason>,
    /// When it started, from the start of the run.
    #[serde(serialize_with = "micros")]
    pub start: Duration,
    /// How long it took.
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    /// The worker (thread index in the executor's pool) that ran it.
    pub worker: Option<usize>,
    /// Notes from the run (e.g. an output kept in memory only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The outcome of [`Pipeline::run`](crate::Pipeline::run): every artifact,
/// typed, and a record per step.
#[derive(Clone, Serialize)]
pub struct PipelineResult {
    /// The pipeline's name.
    pub pipeline: String,
    /// The executor's worker count.
    pub workers: usize,
    /// Wall time of the run.
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    /// One record per step, in the order the steps were added.
    pub steps: Vec<StepRecord>,
    /// Each slot's artifact, where it was produced.
    #[serde(skip)]
    pub(crate) artifacts: Vec<Option<Artifact>>,
    /// Names and types of the slots (shared with the pipeline).
    #[serde(skip)]
    pub(crate) plan: Arc<Plan>,
}

impl PipelineResult {
    /// The artifact `name` as a `T`.
    ///
    /// # Errors
    /// [`Error::UnknownArtifact`] (with a suggestion) if no artifact has
    /// that name, [`Error::ArtifactType`] if it has another type.
    pub fn get<T: 'static>(&self, name: &str) -> Result<&T> {
        let slot = self.slot(name).ok_or_else(|| Error::UnknownArtifact {
            name: name.to_owned(),
            hint: flowyml_suggest::did_you_mean(name, self.names()),
        })?;
        let artifact = self.artifacts[slot]
            .as_ref()
            .ok_or_else(|| Error::UnknownArtifact {
                name: name.to_owned(),
                hint: "; it was not produced: its step failed or was skipped".to_owned(),
            })?;
        artifact
            .downcast_ref::<T>()
            .ok_or_else(|| Error::ArtifactType {
                name: name.to_owned(),
                expected: std::any::type_name::<T>().to_owned(),
                found: self.plan.slots[slot].type_name.clone(),
            })
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.plan.slot_by_name.get(name).copied()
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.plan.slots.iter().map(|s| s.name.as_str())
    }

    /// The artifact `name`, shared.
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.slot(name)
            .and_then(|slot| self.artifacts[slot].as_ref())
    }

    /// The record of step `name`.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| &*s.name == name)
    }

    /// Names of the steps with `status`.
    pub fn steps_with(&self, status: StepStatus) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.status == status)
            .map(|s| &*s.name)
            .collect()
    }

    /// Whether every step ran or was cached.
    pub fn succeeded(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Ran | StepStatus::Cached))
    }

    /// A table of the steps: status, start, duration, worker (the guide's
    /// "profile before optimizing").
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// The run as JSON (what `run --json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a result serialises")
    }

    /// The run as Chrome trace JSON: open it in `chrome://tracing` or
    /// ui.perfetto.dev to see one lane per worker.
    pub fn chrome_trace(&self) -> String {
        #[derive(Serialize)]
        struct Event<'a> {
            name: &'a str,
            cat: &'a str,
            ph: &'a str,
            ts: u128,
            dur: u128,
            pid: u32,
            tid: usize,
            args: serde_json::Value,
        }
        let events: Vec<Event<'_>> = self
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Skipped)
            .map(|s| Event {
                name: &s.name,
                cat: "step",
                ph: "X",
                ts: s.start.as_micros(),
                dur: s.duration.as_micros().max(1),
                pid: 1,
                tid: s.worker.unwrap_or(usize::MAX),
                args: serde_json::json!({ "status": s.status, "error": s.error, "reason": s.reason }),
            })
            .collect();
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms", "otherData": { "pipeline": self.pipeline } })
            .to_string()
    }
}

impl fmt::Debug for PipelineResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineResult")
            .field("pipeline", &self.pipeline)
            .field("duration", &self.duration)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PipelineResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "pipeline `{}`: {} steps in {:.3?} on {} workers",
            self.pipeline,
            self.steps.len(),
            self.duration,
            self.workers
        )?;
        writeln!(
            f,
            "{:<width$}  {:<8}  {:>10}  {:>10}  {:>6}  note",
            "step", "status", "start", "duration", "worker"
        )?;
        for s in &self.steps {
            let worker = s.worker.map_or_else(|| "-".to_owned(), |w| w.to_string());
            let note = match (&s.error, &s.reason) {
                (Some(e), _) => e.clone(),
                (None, Some(r)) => r.to_string(),
                (None, None) => s.notes.join("; "),
            };
            writeln!(
                f,
                "{:<width$}  {:<8}  {:>10.2?}  {:>10.2?}  {:>6}  {note}",
                s.name,
                s.status.to_string(),
                s.start,
                s.duration,
                worker
            )?;
        }
        Ok(())
    }
}

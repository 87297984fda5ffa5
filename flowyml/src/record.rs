//! What a run produced: every artifact, and for each step its status,
//! timing and worker.
//!
//! These are plain data, below [`error`](crate::error) (a failed run's
//! error carries its [`PipelineResult`]); the typed accessor
//! [`PipelineResult::get`], which fails with an [`Error`](crate::Error),
//! is implemented in `pipeline/result.rs`.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// A value exchanged between steps, shared by reference count: never
/// copied between the steps that read it.
pub type Artifact = Arc<dyn std::any::Any + Send + Sync>;

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
    /// The step's own error, for [`Error::StepFailed`](crate::Error::StepFailed)'s source.
    #[serde(skip)]
    pub(crate) cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The names and types of a pipeline's artifacts, shared by its validated
/// plan and by the results of its runs. Each artifact is a slot index;
/// names are kept once, in one buffer, with a hash table of slot indices
/// (no name is stored twice).
pub(crate) struct ArtifactIndex {
    text: String,
    ends: Vec<u32>,
    types: Vec<Cow<'static, str>>,
    by_name: hashbrown::HashTable<u32>,
    hasher: rustc_hash::FxBuildHasher,
}

impl ArtifactIndex {
    /// An empty index with room for `n` artifacts.
    pub(crate) fn with_capacity(n: usize) -> Self {
        ArtifactIndex {
            text: String::with_capacity(n * 8),
            ends: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            by_name: hashbrown::HashTable::with_capacity(n),
            hasher: rustc_hash::FxBuildHasher,
        }
    }

    /// The number of artifacts.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Artifact `slot`'s name.
    pub(crate) fn name(&self, slot: usize) -> &str {
        let start = if slot == 0 {
            0
        } else {
            self.ends[slot - 1] as usize
        };
        &self.text[start..self.ends[slot] as usize]
    }

    /// Artifact `slot`'s type, as its producer wrote it.
    pub(crate) fn type_name(&self, slot: usize) -> &str {
        &self.types[slot]
    }

    /// Every name, in slot order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|s| self.name(s))
    }

    /// The slot of artifact `name`.
    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        self.by_name
            .find(hash, |&s| self.name(s as usize) == name)
            .map(|&s| s as usize)
    }

    /// Adds artifact `name`, unless it is there already; returns its slot
    /// and whether it is new.
    ///
    /// # Panics
    /// Beyond `u32::MAX` bytes of names or artifacts.
    pub(crate) fn insert(&mut self, name: &str, type_name: Cow<'static, str>) -> (usize, bool) {
        let hash = self.hasher.hash_one(name);
        if let Some(&s) = self.by_name.find(hash, |&s| self.name(s as usize) == name) {
            return (s as usize, false);
        }
        let slot = self.len();
        self.text.push_str(name);
        self.ends
            .push(u32::try_from(self.text.len()).expect("artifact names fit in 4 GiB"));
        self.types.push(type_name);
        let slot32 = u32::try_from(slot).expect("at most u32::MAX artifacts");
        let Self {
            by_name,
            hasher,
            text,
            ends,
            ..
        } = self;
        by_name.insert_unique(hash, slot32, |&s| {
            let s = s as usize;
            let start = if s == 0 { 0 } else { ends[s - 1] as usize };
            hasher.hash_one(&text[start..ends[s] as usize])
        });
        (slot, true)
    }
}

impl fmt::Debug for ArtifactIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
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
    /// Names and types of the slots (shared with the pipeline's plan).
    #[serde(skip)]
    pub(crate) index: Arc<ArtifactIndex>,
    /// The producing step of each slot (`None` for a run-time input).
    #[serde(skip)]
    pub(crate) producers: Arc<[Option<u32>]>,
}

impl PipelineResult {
    /// The artifact `name`, shared; `None` if the pipeline has no such
    /// artifact or the run did not produce it.
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.index
            .slot(name)
            .and_then(|slot| self.artifacts[slot].as_ref())
    }

    /// The names of the pipeline's artifacts (run-time inputs first, then
    /// each step's outputs, in the order the steps were added).
    pub fn artifact_names(&self) -> impl Iterator<Item = &str> {
        self.index.names()
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

    /// A table of the steps: status, start, duration, worker, and why each
    /// ran or what it noted; the first thing to read before optimizing.
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

#[cfg(test)]
mod tests {
    use super::ArtifactIndex;
    use std::borrow::Cow;

    #[test]
    fn names_are_kept_once_and_found_by_name() {
        let mut index = ArtifactIndex::with_capacity(2);
        assert_eq!(index.insert("raw", Cow::Borrowed("Vec<f64>")), (0, true));
        assert_eq!(index.insert("clean", Cow::Borrowed("Vec<f64>")), (1, true));
        assert_eq!(index.insert("raw", Cow::Borrowed("u8")), (0, false));
        assert_eq!(index.slot("clean"), Some(1));
        assert_eq!(index.slot("cleaned"), None);
        assert_eq!((index.name(0), index.type_name(0)), ("raw", "Vec<f64>"));
        assert_eq!(index.names().collect::<Vec<_>>(), ["raw", "clean"]);
        for i in 0..1000 {
            index.insert(&format!("a{i}"), Cow::Borrowed("u64"));
        }
        assert_eq!(index.slot("a999"), Some(1001));
    }
}

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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

pub use crate::slot::Artifact;
use crate::slot::Value;

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

/// One step of a run: a view into its [`PipelineResult`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepRecord<'r> {
    /// The step's name.
    pub name: &'r str,
    /// What happened to it.
    pub status: StepStatus,
    /// Its error message, if it failed.
    pub error: Option<&'r str>,
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
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub notes: &'r [String],
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What a run records of every step, in 24 bytes: plain atomics written
/// once by the step's worker while the run goes (cheaper than a `OnceLock`
/// per step, which costs a `Once` initialisation), and read by the result
/// afterwards. Times are raw ticks of the run's clock, converted to
/// nanoseconds only when a record is read.
#[derive(Debug, Default)]
pub(crate) struct RawRecord {
    /// 0 until the step ran; then the code of its status in the low byte,
    /// and the worker index plus one above it.
    pub state: AtomicU64,
    pub start: AtomicU64,
    pub end: AtomicU64,
}

impl Clone for RawRecord {
    fn clone(&self) -> Self {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        RawRecord {
            state: copy(&self.state),
            start: copy(&self.start),
            end: copy(&self.end),
        }
    }
}

impl RawRecord {
    /// The state of a step that ended with `status` on `worker`.
    #[inline]
    pub fn state(status: StepStatus, worker: Option<usize>) -> u64 {
        let code = match status {
            StepStatus::Skipped => 0,
            StepStatus::Ran => 1,
            StepStatus::Cached => 2,
            StepStatus::Failed => 3,
        };
        code | (worker.map_or(0, |w| w as u64 + 1) << 8)
    }

    /// The step's status. (The run's workers have joined before any
    /// record is read, so relaxed loads see their stores.)
    pub(crate) fn status(&self) -> StepStatus {
        match self.state.load(Ordering::Relaxed) & 0xff {
            1 => StepStatus::Ran,
            2 => StepStatus::Cached,
            3 => StepStatus::Failed,
            _ => StepStatus::Skipped,
        }
    }

    fn worker(&self) -> Option<usize> {
        match self.state.load(Ordering::Relaxed) >> 8 {
            0 => None,
            w => usize::try_from(w - 1).ok(),
        }
    }
}

/// The clock a run times its steps with: quanta's, which reads the TSC
/// where it is reliable (a few nanoseconds, where `Instant::now` costs
/// about 24) and the OS clock elsewhere. Calibrated once per process.
pub(crate) fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// The rare parts of a step's record: its error, why it ran, its notes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Details {
    pub error: Option<(String, Arc<dyn std::error::Error + Send + Sync>)>,
    pub reason: Option<RerunReason>,
    pub notes: Vec<String>,
}

/// Names kept once, in one buffer, with a hash table of their indices (no
/// name is stored twice): a pipeline's step names and its artifact names.
pub(crate) struct Names {
    text: String,
    ends: Vec<u32>,
    by_name: hashbrown::HashTable<u32>,
    hasher: rustc_hash::FxBuildHasher,
}

impl Names {
    /// No names, with room for `n`.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Names {
            text: String::with_capacity(n * 8),
            ends: Vec::with_capacity(n),
            by_name: hashbrown::HashTable::with_capacity(n),
            hasher: rustc_hash::FxBuildHasher,
        }
    }

    /// The number of names.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Name `i`.
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Every name, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The index of `name`.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        self.by_name
            .find(hash, |&i| self.get(i as usize) == name)
            .map(|&i| i as usize)
    }

    /// Appends `name`, even if it is there already (a lookup then finds
    /// the first); returns its index and whether it is new. One probe of
    /// the table either way.
    ///
    /// # Panics
    /// Beyond `u32::MAX` bytes of names or names.
    pub(crate) fn push(&mut self, name: &str) -> (usize, bool) {
        let Self {
            text,
            ends,
            by_name,
            hasher,
        } = self;
        let get = |k: u32| -> &str {
            let k = k as usize;
            let start = if k == 0 { 0 } else { ends[k - 1] as usize };
            &text[start..ends[k] as usize]
        };
        let i = ends.len();
        let new = match by_name.entry(
            hasher.hash_one(name),
            |&k| get(k) == name,
            |&k| hasher.hash_one(get(k)),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(u32::try_from(i).expect("at most u32::MAX names"));
                true
            }
        };
        text.push_str(name);
        ends.push(u32::try_from(text.len()).expect("names fit in 4 GiB"));
        (i, new)
    }
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The names and types of a pipeline's artifacts, shared by its validated
/// plan and by the results of its runs. Each artifact is a slot index;
/// its type is an index into the few distinct type names.
pub(crate) struct ArtifactIndex {
    names: Names,
    types: Vec<u32>,
    type_names: Vec<Cow<'static, str>>,
}

impl ArtifactIndex {
    /// An empty index with room for `n` artifacts.
    pub(crate) fn with_capacity(n: usize) -> Self {
        ArtifactIndex {
            names: Names::with_capacity(n),
            types: Vec::with_capacity(n),
            type_names: Vec::new(),
        }
    }

    /// Artifact `slot`'s type, as its producer wrote it.
    pub(crate) fn type_name(&self, slot: usize) -> &str {
        &self.type_names[self.types[slot] as usize]
    }

    /// Every name, in slot order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter()
    }

    /// The slot of artifact `name` (its first, if a plan refused it for
    /// having two).
    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        self.names.find(name)
    }

    /// Adds a slot for artifact `name` of type `type_name`; returns it and
    /// whether the name is new.
    pub(crate) fn push(&mut self, name: &str, type_name: Cow<'static, str>) -> (usize, bool) {
        // Types are few, and most are the same `&'static str`: compared by
        // address first.
        let same = |t: &Cow<'static, str>| {
            std::ptr::eq(t.as_ptr(), type_name.as_ptr()) && t.len() == type_name.len()
                || *t == type_name
        };
        let t = match self.type_names.iter().rposition(same) {
            Some(t) => t,
            None => {
                self.type_names.push(type_name);
                self.type_names.len() - 1
            }
        };
        self.types
            .push(u32::try_from(t).expect("at most u32::MAX types"));
        self.names.push(name)
    }
}

impl fmt::Debug for ArtifactIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// The outcome of [`Pipeline::run`](crate::Pipeline::run): every artifact,
/// typed, and a record per step.
#[derive(Clone)]
pub struct PipelineResult {
    /// The pipeline's name.
    pub pipeline: String,
    /// The executor's worker count.
    pub workers: usize,
    /// Wall time of the run.
    pub duration: Duration,
    /// Each step's record, in the order the steps were added.
    pub(crate) records: Vec<RawRecord>,
    /// When the run started, in [`clock`] ticks.
    pub(crate) origin: u64,
    /// The steps that have details, by step, sorted.
    pub(crate) details: Vec<(u32, Details)>,
    /// The steps' names (shared with the pipeline's plan).
    pub(crate) step_names: Arc<Names>,
    /// Each slot's artifact, where it was produced: the run's own slots,
    /// kept as they are.
    pub(crate) artifacts: Vec<OnceLock<Value>>,
    /// Names and types of the slots (shared with the pipeline's plan).
    pub(crate) index: Arc<ArtifactIndex>,
    /// The producing step of each slot (`u32::MAX` for a run-time input).
    pub(crate) producers: Arc<[u32]>,
}

impl PipelineResult {
    /// The artifact `name`, shared; `None` if the pipeline has no such
    /// artifact or the run did not produce it. (See [`get`](Self::get) for
    /// a typed reference.)
    pub fn artifact(&self, name: &str) -> Option<Artifact> {
        self.index
            .slot(name)
            .and_then(|slot| self.artifacts[slot].get())
            .map(Value::to_artifact)
    }

    /// The names of the pipeline's artifacts (run-time inputs first, then
    /// each step's outputs, in the order the steps were added).
    pub fn artifact_names(&self) -> impl Iterator<Item = &str> {
        self.index.names()
    }

    /// Step `i`'s record (in the order the steps were added).
    pub(crate) fn record(&self, i: usize) -> StepRecord<'_> {
        let raw = &self.records[i];
        let details = self
            .details
            .binary_search_by_key(&(i as u32), |(s, _)| *s)
            .ok()
            .map(|k| &self.details[k].1);
        StepRecord {
            name: self.step_names.get(i),
            status: raw.status(),
            error: details.and_then(|d| d.error.as_ref().map(|(text, _)| text.as_str())),
            reason: details.and_then(|d| d.reason),
            start: {
                let start = raw.start.load(Ordering::Relaxed);
                Duration::from_nanos(clock().delta_as_nanos(self.origin, start))
            },
            duration: Duration::from_nanos(clock().delta_as_nanos(
                raw.start.load(Ordering::Relaxed),
                raw.end.load(Ordering::Relaxed),
            )),
            worker: raw.worker(),
            notes: details.map_or(&[], |d| &d.notes),
        }
    }

    /// The step's own error, if it failed: what it returned (or a panic's
    /// message), for `downcast_ref`.
    pub(crate) fn cause(&self, i: usize) -> Option<&Arc<dyn std::error::Error + Send + Sync>> {
        let k = self
            .details
            .binary_search_by_key(&(i as u32), |(s, _)| *s)
            .ok()?;
        self.details[k].1.error.as_ref().map(|(_, e)| e)
    }

    /// Every step's record, in the order the steps were added.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = StepRecord<'_>> + DoubleEndedIterator {
        (0..self.records.len()).map(|i| self.record(i))
    }

    /// The record of step `name`.
    pub fn step(&self, name: &str) -> Option<StepRecord<'_>> {
        self.step_names.find(name).map(|i| self.record(i))
    }

    /// Names of the steps with `status`.
    pub fn steps_with(&self, status: StepStatus) -> Vec<&str> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status() == status)
            .map(|(i, _)| self.step_names.get(i))
            .collect()
    }

    /// Whether every step ran or was cached.
    pub fn succeeded(&self) -> bool {
        self.records
            .iter()
            .all(|r| matches!(r.status(), StepStatus::Ran | StepStatus::Cached))
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
            .steps()
            .filter(|s| s.status != StepStatus::Skipped)
            .map(|s| Event {
                name: s.name,
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

impl Serialize for PipelineResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Steps<'a>(&'a PipelineResult);
        impl Serialize for Steps<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.steps())
            }
        }
        let mut out = s.serialize_struct("PipelineResult", 4)?;
        out.serialize_field("pipeline", &self.pipeline)?;
        out.serialize_field("workers", &self.workers)?;
        out.serialize_field(
            "duration",
            &u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
        )?;
        out.serialize_field("steps", &Steps(self))?;
        out.end()
    }
}

impl fmt::Debug for PipelineResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineResult")
            .field("pipeline", &self.pipeline)
            .field("duration", &self.duration)
            .field("steps", &self.steps().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PipelineResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.steps().map(|s| s.name.len()).max().unwrap_or(4).max(4);
        writeln!(
            f,
            "pipeline `{}`: {} steps in {:.3?} on {} workers",
            self.pipeline,
            self.records.len(),
            self.duration,
            self.workers
        )?;
        writeln!(
            f,
            "{:<width$}  {:<8}  {:>10}  {:>10}  {:>6}  note",
            "step", "status", "start", "duration", "worker"
        )?;
        for s in self.steps() {
            let worker = s.worker.map_or_else(|| "-".to_owned(), |w| w.to_string());
            let note = match (s.error, &s.reason) {
                (Some(e), _) => e.to_owned(),
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
        assert_eq!(index.push("raw", Cow::Borrowed("Vec<f64>")), (0, true));
        assert_eq!(index.push("clean", Cow::Borrowed("Vec<f64>")), (1, true));
        assert_eq!(index.push("raw", Cow::Borrowed("u8")), (2, false));
        assert_eq!(index.slot("clean"), Some(1));
        assert_eq!(index.slot("raw"), Some(0), "the first of two");
        assert_eq!(index.slot("cleaned"), None);
        assert_eq!(index.type_name(0), "Vec<f64>");
        assert_eq!(index.type_name(2), "u8");
        assert_eq!(index.names().collect::<Vec<_>>(), ["raw", "clean", "raw"]);
        for i in 0..1000 {
            index.push(&format!("a{i}"), Cow::Borrowed("u64"));
        }
        assert_eq!(index.slot("a999"), Some(1002));
        assert_eq!(index.type_name(1002), "u64");
    }
}

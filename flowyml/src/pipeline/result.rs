//! [`PipelineResult`]: what a run produced, every artifact typed and a
//! record per step, and how to read it (typed, as JSON, as text, encoded).
//!
//! A failed run's error carries its result as a
//! [`FailedRun`](crate::error::FailedRun), which dereferences to it: the
//! error module sits below this one and cannot name the type.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, FailedRun, Result};
use crate::incremental::fingerprint::Fingerprint;
use crate::record::{Details, RerunReason, StepStatus};
use crate::slot::{Artifact, Value};
use crate::write_once::WriteOnce;

use super::buffers::RunBuffers;

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
    /// Notes from the run (e.g. an output kept in memory only, an attempt
    /// that failed before a retry).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub notes: &'r [String],
    /// How many times it was run: 1, more after retries, 0 if it did not
    /// run (cached or skipped).
    pub attempts: u32,
    /// Its cache key, where the pipeline has a cache.
    #[serde(skip)]
    pub key: Option<Fingerprint>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(micros_of(*d))
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
    /// The run's slots (each slot's artifact, where it was produced, kept
    /// as it is), fingerprints and cache keys (where the pipeline has a
    /// cache) and each step's record, in the order the steps were added;
    /// given back to the plan when the result is dropped.
    pub(crate) buffers: RunBuffers,
    /// When the run started, in [`clock`] ticks.
    pub(crate) origin: u64,
    /// The steps that have details, by step, sorted.
    pub(crate) details: Vec<(u32, Details)>,
    /// When the run started.
    pub(crate) started_at: SystemTime,
    /// The run's id in the store's history, where it has one.
    pub(crate) run_id: Option<i64>,
    /// The plan that ran: its steps' names, its slots' names, types,
    /// producers and codecs, and the DAG its report draws.
    pub(crate) plan: Arc<super::plan::Plan>,
}

impl PipelineResult {
    /// The artifact `name`, shared; `None` if the pipeline has no such
    /// artifact or the run did not produce it. (See [`get`](Self::get) for
    /// a typed reference.)
    pub fn artifact(&self, name: &str) -> Option<Artifact> {
        self.plan
            .artifacts
            .slot(name)
            .and_then(|slot| self.buffers.slots[slot].get())
            .map(Value::to_artifact)
    }

    /// The names of the pipeline's artifacts (run-time inputs first, then
    /// each step's outputs, in the order the steps were added).
    pub fn artifact_names(&self) -> impl Iterator<Item = &str> {
        self.plan.artifacts.names()
    }

    /// Step `i`'s record (in the order the steps were added).
    pub(crate) fn record(&self, i: usize) -> StepRecord<'_> {
        let raw = &self.buffers.records[i];
        let details = self
            .details
            .binary_search_by_key(&(i as u32), |(s, _)| *s)
            .ok()
            .map(|k| &self.details[k].1);
        let clock = Clock::get();
        let start = raw.start.load(Ordering::Relaxed);
        let end = raw.end.load(Ordering::Relaxed);
        StepRecord {
            name: self.plan.names.get(i),
            status: raw.status(),
            error: details.and_then(|d| d.error.as_ref().map(|(text, _)| text.as_str())),
            reason: details.and_then(|d| d.reason),
            start: Duration::from_nanos(clock.delta_as_nanos(self.origin, start)),
            duration: Duration::from_nanos(clock.delta_as_nanos(start, end)),
            worker: raw.worker(),
            notes: details.map_or(&[], |d| &d.notes),
            attempts: raw.attempts(),
            key: self.buffers.keys.get(i).and_then(|k| k.get().copied()),
        }
    }

    /// When the run started.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// The run's id in the store's history (a pipeline with
    /// [`cache_dir`](crate::Pipeline::cache_dir)), as `runs` lists it.
    pub fn run_id(&self) -> Option<i64> {
        self.run_id
    }

    /// The content fingerprint of artifact `name`: the one the cache keyed
    /// it by, or computed now; `None` for an artifact that was not produced
    /// or has no content hash (an opaque type).
    pub fn fingerprint(&self, name: &str) -> Option<Fingerprint> {
        let slot = self.plan.artifacts.slot(name)?;
        if let Some(fp) = self.buffers.fingerprints.get(slot).and_then(WriteOnce::get) {
            return Some(*fp);
        }
        let value = self.buffers.slots[slot].get()?;
        self.plan
            .codecs
            .get(slot)
            .fingerprint(value.as_any())
            .and_then(|f| f.ok())
            .map(|f| f.fingerprint)
    }

    /// Artifact `name` in the cache's own encoding (what another process of
    /// the program decodes), for types that can be stored.
    pub fn encoded(&self, name: &str) -> Option<crate::error::Result<Vec<u8>>> {
        let slot = self.plan.artifacts.slot(name)?;
        let value = self.buffers.slots[slot].get()?;
        self.plan.codecs.get(slot).encode(value.as_any())
    }

    /// The file extension of artifact `name`'s encoding outside the cache
    /// (`json` for serde types, `arrow` for frames).
    pub fn extension(&self, name: &str) -> Option<&'static str> {
        self.plan
            .artifacts
            .slot(name)
            .map(|slot| self.plan.codecs.get(slot).extension())
    }

    /// Artifact `name` as JSON, for types that serialise.
    pub fn json(&self, name: &str) -> Option<crate::error::Result<serde_json::Value>> {
        let slot = self.plan.artifacts.slot(name)?;
        let value = self.buffers.slots[slot].get()?;
        self.plan.codecs.get(slot).to_json(value.as_any())
    }

    /// Artifact `name` as text for a person, for types with a text form (a
    /// frame, as CSV).
    pub fn text(&self, name: &str) -> Option<String> {
        let slot = self.plan.artifacts.slot(name)?;
        let value = self.buffers.slots[slot].get()?;
        self.plan.codecs.get(slot).to_text(value.as_any())
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
        (0..self.buffers.records.len()).map(|i| self.record(i))
    }

    /// The record of step `name`.
    pub fn step(&self, name: &str) -> Option<StepRecord<'_>> {
        self.plan.names.find(name).map(|i| self.record(i))
    }

    /// Names of the steps with `status`.
    pub fn steps_with(&self, status: StepStatus) -> Vec<&str> {
        self.buffers
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status() == status)
            .map(|(i, _)| self.plan.names.get(i))
            .collect()
    }

    /// Whether every step ran or was cached.
    pub fn succeeded(&self) -> bool {
        self.buffers
            .records
            .iter()
            .all(|r| matches!(r.status(), StepStatus::Ran | StepStatus::Cached))
    }

    /// A table of the steps: status, start, duration, worker, and why each
    /// ran or what it noted; the first thing to read before optimizing.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// The run as JSON: what `run --json` prints, schema version
    /// [`JSON_SCHEMA_VERSION`]. Documented in the book's command line
    /// chapter; fields are only ever added within a version.
    ///
    /// ```json
    /// { "schema_version": 1, "run_id": 12, "pipeline": "stats",
    ///   "started_at": "2026-12-01T20:24:01.123456Z", "duration_us": 1520,
    ///   "workers": 2, "succeeded": true,
    ///   "steps": [ { "name": "load", "status": "ran", "start_us": 3,
    ///                "duration_us": 801, "worker": 0, "attempts": 1,
    ///                "notes": [], "error": null, "rerun_reason": "no_entry",
    ///                "cache_key": "9c1e…" } ],
    ///   "artifacts": [ { "name": "numbers", "type": "Vec<f64>",
    ///                    "producer": "load", "fingerprint": "44ad…" } ] }
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .steps()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "status": s.status,
                    "start_us": micros_of(s.start),
                    "duration_us": micros_of(s.duration),
                    "worker": s.worker,
                    "attempts": s.attempts,
                    "notes": s.notes,
                    "error": s.error,
                    "rerun_reason": s.reason,
                    "cache_key": s.key.map(|k| k.to_hex()),
                })
            })
            .collect();
        let artifacts: Vec<serde_json::Value> = self
            .artifact_names()
            .enumerate()
            .map(|(slot, name)| {
                let producer = self.plan.producers[slot];
                serde_json::json!({
                    "name": name,
                    "type": self.plan.artifacts.type_name(slot),
                    "producer": (producer != u32::MAX).then(|| self.plan.names.get(producer as usize)),
                    "fingerprint": self.fingerprint(name).map(|f| f.to_hex()),
                })
            })
            .collect();
        serde_json::json!({
            "schema_version": JSON_SCHEMA_VERSION,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "started_at": humantime::format_rfc3339_micros(self.started_at).to_string(),
            "duration_us": micros_of(self.duration),
            "workers": self.workers,
            "succeeded": self.succeeded(),
            "steps": steps,
            "artifacts": artifacts,
        })
    }

    /// The run as Chrome trace JSON: open it in `chrome://tracing` or
    /// ui.perfetto.dev to see one lane per worker, named "worker N" (steps
    /// that ran on no worker of the pool, such as cached ones checked on
    /// the calling thread, go to a lane of their own).
    pub fn chrome_trace(&self) -> String {
        let pid = std::process::id();
        let other = self.workers;
        let mut events: Vec<serde_json::Value> = vec![serde_json::json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": { "name": format!("flowyml pipeline `{}`", self.pipeline) },
        })];
        let mut lanes: Vec<usize> = self
            .steps()
            .filter(|s| s.status != StepStatus::Skipped)
            .map(|s| s.worker.unwrap_or(other))
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        for lane in lanes {
            let name = if lane == other {
                "outside the pool".to_owned()
            } else {
                format!("worker {lane}")
            };
            events.push(serde_json::json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": lane,
                "args": { "name": name },
            }));
        }
        for s in self.steps().filter(|s| s.status != StepStatus::Skipped) {
            events.push(serde_json::json!({
                "name": s.name, "cat": "step", "ph": "X", "pid": pid,
                "tid": s.worker.unwrap_or(other),
                "ts": micros_of(s.start), "dur": micros_of(s.duration).max(1),
                "args": { "status": s.status, "error": s.error, "reason": s.reason, "attempts": s.attempts },
            }));
        }
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms", "otherData": { "pipeline": self.pipeline } })
            .to_string()
    }
}

// Drops the artifacts and gives the buffers' memory to the plan, for its
// next run (see `buffers::Spare`).
impl Drop for PipelineResult {
    fn drop(&mut self) {
        self.plan.spare.give(std::mem::take(&mut self.buffers));
    }
}

/// The version of [`PipelineResult::to_json`]'s schema.
pub const JSON_SCHEMA_VERSION: u32 = 1;

fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl std::ops::Deref for FailedRun {
    type Target = PipelineResult;

    fn deref(&self) -> &PipelineResult {
        self.0
            .downcast_ref()
            .expect("a failed run carries its PipelineResult")
    }
}

impl fmt::Debug for FailedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<PipelineResult> for FailedRun {
    fn from(result: PipelineResult) -> Self {
        FailedRun(Box::new(result))
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
            self.buffers.records.len(),
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

impl PipelineResult {
    /// The artifact `name` as a `T`.
    ///
    /// # Errors
    /// [`Error::UnknownArtifact`] (with a suggestion) if no artifact has
    /// that name, [`Error::NotProduced`] if its step failed or was skipped,
    /// [`Error::ArtifactType`] if it has another type.
    pub fn get<T: 'static>(&self, name: &str) -> Result<&T> {
        let slot = self
            .plan
            .artifacts
            .slot(name)
            .ok_or_else(|| Error::UnknownArtifact {
                name: name.to_owned(),
                hint: flowyml_suggest::did_you_mean(name, self.plan.artifacts.names()),
            })?;
        let Some(artifact) = self.buffers.slots[slot].get() else {
            // Run-time inputs are always there: a step produces this one.
            let producer = self.record(self.plan.producers[slot] as usize);
            return Err(Error::NotProduced {
                name: name.to_owned(),
                producer: producer.name.to_owned(),
                status: producer.status,
            });
        };
        artifact.get::<T>().ok_or_else(|| Error::ArtifactType {
            name: name.to_owned(),
            expected: crate::type_name::of::<T>().into_owned(),
            found: self.plan.artifacts.type_name(slot).to_owned(),
        })
    }
}

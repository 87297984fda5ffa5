//! What a run records of its steps and artifacts, as plain data: the
//! status of a step and why it ran, its raw record, the names of steps and
//! artifacts kept once. [`PipelineResult`](crate::PipelineResult) is made
//! of these; they sit below [`error`](crate::error), which names a step's
//! status.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

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
    /// It ran past its time limit; its thread was abandoned.
    TimedOut,
    /// It did not run: an input's producer failed, or the run stopped.
    Skipped,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepStatus::Ran => "ran",
            StepStatus::Cached => "cached",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed out",
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
    /// A file the step read at run time ([`StepContext::read_file`](crate::step::StepContext::read_file),
    /// [`StepContext::watch`](crate::step::StepContext::watch)) changed
    /// since its cached run (a note names the file).
    FileChanged,
}

impl fmt::Display for RerunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RerunReason::NoEntry => "no cache entry",
            RerunReason::CodeChanged => "code changed",
            RerunReason::InputChanged => "input changed",
            RerunReason::Invalidated => "invalidated",
            RerunReason::CorruptEntry => "cache entry corrupt",
            RerunReason::FileChanged => "a file it read changed",
        })
    }
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
    /// The state of a step that ended with `status` on `worker` after
    /// `attempts` attempts: the status's code in the low byte, the worker
    /// index plus one in the next 32 bits, the attempts above.
    #[inline]
    pub fn state(status: StepStatus, worker: Option<usize>, attempts: u32) -> u64 {
        let code = match status {
            StepStatus::Skipped => 0,
            StepStatus::Ran => 1,
            StepStatus::Cached => 2,
            StepStatus::Failed => 3,
            StepStatus::TimedOut => 4,
        };
        let worker = worker.map_or(0, |w| (w as u64 + 1) & 0xffff_ffff);
        code | (worker << 8) | (u64::from(attempts.min(0xff_ffff)) << 40)
    }

    /// Writes the record of a step that ran from `start` to `end` (clock
    /// ticks) and ended with `status` on `worker` after `attempts`
    /// attempts. Relaxed: records are read after the run's workers joined.
    #[inline]
    pub fn write(
        &self,
        status: StepStatus,
        worker: Option<usize>,
        attempts: u32,
        (start, end): (u64, u64),
    ) {
        self.start.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        self.state
            .store(Self::state(status, worker, attempts), Ordering::Relaxed);
    }

    /// The step's status. (The run's workers have joined before any
    /// record is read, so relaxed loads see their stores.)
    pub(crate) fn status(&self) -> StepStatus {
        match self.state.load(Ordering::Relaxed) & 0xff {
            1 => StepStatus::Ran,
            2 => StepStatus::Cached,
            3 => StepStatus::Failed,
            4 => StepStatus::TimedOut,
            _ => StepStatus::Skipped,
        }
    }

    pub(crate) fn worker(&self) -> Option<usize> {
        match (self.state.load(Ordering::Relaxed) >> 8) & 0xffff_ffff {
            0 => None,
            w => usize::try_from(w - 1).ok(),
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) >> 40) as u32
    }
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
#[derive(Clone, Default)]
pub(crate) struct Names {
    text: String,
    ends: Vec<u32>,
    by_name: hashbrown::HashTable<u32>,
    hasher: rustc_hash::FxBuildHasher,
}

impl Names {
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

    /// The index of `name`, appended if it is new.
    pub(crate) fn intern(&mut self, name: &str) -> usize {
        match self.find(name) {
            Some(i) => i,
            None => self.push(name).0,
        }
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
/// plan and by the results of its runs. Each artifact is a slot index; its
/// name is an id into the pipeline's interned names, its type an index into
/// the few distinct type names.
pub(crate) struct ArtifactIndex {
    names: Arc<Names>,
    /// The name of each slot.
    slot_names: Vec<u32>,
    /// The first slot of each name id ([`NO_SLOT`] for a name without one).
    name_slots: Vec<u32>,
    /// The type of each slot.
    types: Vec<u32>,
    type_names: Arc<[Cow<'static, str>]>,
}

/// A name that no slot has.
const NO_SLOT: u32 = u32::MAX;

impl ArtifactIndex {
    /// The index of slots named `slot_names` (ids into `names`) of types
    /// `types` (indices into `type_names`).
    pub(crate) fn new(
        names: Arc<Names>,
        slot_names: Vec<u32>,
        types: Vec<u32>,
        type_names: Arc<[Cow<'static, str>]>,
    ) -> Self {
        let mut name_slots = vec![NO_SLOT; names.len()];
        for (slot, &id) in slot_names.iter().enumerate().rev() {
            name_slots[id as usize] = u32::try_from(slot).expect("at most u32::MAX slots");
        }
        ArtifactIndex {
            names,
            slot_names,
            name_slots,
            types,
            type_names,
        }
    }

    /// Artifact `slot`'s type, as its producer wrote it.
    pub(crate) fn type_name(&self, slot: usize) -> &str {
        &self.type_names[self.types[slot] as usize]
    }

    /// Every name, in slot order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.slot_names
            .iter()
            .map(|&id| self.names.get(id as usize))
    }

    /// The slot of artifact `name` (its first, if a plan refused it for
    /// having two).
    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        let id = self.names.find(name)?;
        match self.name_slots[id] {
            NO_SLOT => None,
            slot => Some(slot as usize),
        }
    }
}

impl fmt::Debug for ArtifactIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{ArtifactIndex, Names};
    use std::borrow::Cow;
    use std::sync::Arc;

    #[test]
    fn names_are_kept_once_and_found_by_name() {
        let mut names = Names::default();
        let (raw, clean) = (names.intern("raw"), names.intern("clean"));
        assert_eq!(names.intern("raw"), raw);
        names.intern("unused");
        let mut slots = vec![raw as u32, clean as u32, raw as u32];
        let mut types = vec![0, 0, 1];
        for i in 0..1000 {
            slots.push(names.intern(&format!("a{i}")) as u32);
            types.push(2);
        }
        let type_names: Arc<[Cow<'static, str>]> = vec![
            Cow::Borrowed("Vec<f64>"),
            Cow::Borrowed("u8"),
            Cow::Borrowed("u64"),
        ]
        .into();
        let index = ArtifactIndex::new(Arc::new(names), slots, types, type_names);
        assert_eq!(index.slot("clean"), Some(1));
        assert_eq!(index.slot("raw"), Some(0), "the first of two");
        assert_eq!(index.slot("cleaned"), None);
        assert_eq!(index.slot("unused"), None, "a name without a slot");
        assert_eq!(index.type_name(0), "Vec<f64>");
        assert_eq!(index.type_name(2), "u8");
        assert_eq!(
            index.names().take(3).collect::<Vec<_>>(),
            ["raw", "clean", "raw"]
        );
        assert_eq!(index.slot("a999"), Some(1002));
        assert_eq!(index.type_name(1002), "u64");
    }
}

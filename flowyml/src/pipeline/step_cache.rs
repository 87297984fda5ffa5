//! The step cache: a step reruns only when its cache key changed.
//!
//! # The cache key
//! `base = hash(format version ‖ step name ‖ code fingerprint ‖ options)`,
//! hashed once per step, and per run `key = keyed_hash(base; the fingerprint
//! of each input ‖ the fingerprint of each watched file)` (see
//! [`KeyBuilder::extend`]). The code fingerprint is the hash of the step function's tokens, computed
//! by `#[step]` at compile time, so editing a body invalidates the step. An
//! input's fingerprint is its content hash where the type has one (see
//! [`artifact`](crate::artifact)); an opaque artifact's fingerprint is its
//! producer's key, so a change upstream always reaches downstream: no key
//! ignores an input, so no hit is stale.
//!
//! # Files read at run time
//! A step that reads a file named by an input (`load(path: &String)`)
//! cannot put the file's content in its key: the key is built before the
//! step runs, and only the run finds out which files it reads. So, as build
//! systems record discovered dependencies, the files a step reads through
//! [`StepContext::read_file`](crate::step::StepContext::read_file) or
//! [`watch`](crate::step::StepContext::watch) are kept *with its entry*,
//! each with the content hash it had, and an entry is served only while
//! every one still has that hash (a stat per file, and a hash only when
//! the file's stamp moved). On disk the list is one more blob of the entry,
//! after the outputs.
//!
//! # Early cutoff
//! Because keys are built from *content* fingerprints, a step that reruns
//! and produces the same outputs leaves its dependents' keys unchanged, and
//! they hit.
//!
//! # Where entries live
//! In memory, the latest entry of each step (so a rerun in the same process
//! loads nothing). On disk, with [`Pipeline::cache_dir`](super::Pipeline::cache_dir),
//! the [`ArtifactStore`]: outputs of types that can be stored, by content,
//! verified when read (a corrupt entry is recomputed, never served), plus
//! the run history. A step with an output that cannot be stored stays in
//! memory only, and its record says so.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::catalog::Catalog;
use crate::artifact::Codec;
use crate::error::{BoxError, Result};
use crate::incremental::codec;
use crate::incremental::fingerprint::{FileFingerprints, Fingerprint, KeyBuilder};
use crate::incremental::store::{ArtifactStore, RunWriter, StepExecution};
use crate::prefetch::prefetch;
use crate::record::RerunReason;
use crate::slot::{Slot, Value};
use crate::step::{FileRead, Specs, StepSpec};
use crate::sync::lock;
use crate::write_once::WriteOnce;

/// What executing one step (or serving it from the cache) gave.
pub(crate) enum Outcome {
    /// The step ran: why it was not served from the cache (where there is
    /// one), notes for its record, and the files it read.
    Ran {
        reason: Option<RerunReason>,
        notes: Vec<String>,
        reads: Vec<FileRead>,
    },
    /// The outputs came from the cache.
    Cached,
    /// The step returned an error or panicked.
    Failed(BoxError),
    /// An attempt ran past this limit.
    TimedOut(std::time::Duration),
}

/// In C order, what a hit reads (the inputs, the outputs, the files
/// read, the key) first; see [`StepEntry`]. A step's first three inputs'
/// fingerprints and its first output are kept inline: a rerun's hit then
/// reads nothing but the entry itself, where each would be a cache miss
/// of its own on a heap block. (Three, not two: with two, a step of three
/// inputs read its fingerprints from the heap, and a cached rerun of the
/// benchmark's random DAG, about a third of whose steps have three, took
/// 1.39× and 1.51× a run without cache where three made it 1.33× and
/// 1.37×, in two sets of alternated runs.)
#[repr(C)]
struct MemoryEntry {
    /// The fingerprints of the inputs `key` was built from, in parameter
    /// order: the same fingerprints again mean the same key, so a rerun
    /// compares these and skips hashing.
    inputs: SmallVec<[Fingerprint; 3]>,
    outputs: SmallVec<[(Value, Fingerprint); 1]>,
    /// The files the run read, with their hashes then.
    reads: Vec<FileRead>,
    key: Fingerprint,
    code: Fingerprint,
}

/// The first bytes of an entry's list of files read, so that a blob of
/// anything else is never taken for one.
const READS_MAGIC: &str = "flowyml files read v1";

/// What the cache keeps of one step, at the step's index in the pipeline
/// (steps are only ever appended, so an index names one step for good). The
/// table grows with the pipeline while it is borrowed mutably, so a run
/// reads it without any lock around it.
///
/// In C order, what a rerun's hit reads first (the flag, the lock, the
/// entry's inputs and outputs) at the start, so that the lines
/// [`StepCache::prefetch`] asks for are the ones it needs.
#[derive(Default)]
#[repr(C)]
struct StepEntry {
    /// Set by [`Pipeline::invalidate`](super::Pipeline::invalidate); cleared
    /// only by a run of the step that succeeds, so a failed or skipped
    /// rerun leaves it set and the old entry is never served.
    invalidated: AtomicBool,
    /// The step's latest outputs in this process. A lock per step, so that
    /// workers checking different steps never wait on each other.
    latest: Mutex<Option<MemoryEntry>>,
    /// The key of the fields fixed when the step was built (name, code,
    /// options), hashed once; a run extends it with the inputs.
    base: OnceLock<Fingerprint>,
}

/// A pipeline's cache: memory, and optionally a store on disk.
pub(crate) struct StepCache {
    entries: Vec<StepEntry>,
    store: Option<ArtifactStore>,
    files: FileFingerprints,
}

/// One step's view of a cached run, made for one visit of the step.
pub(crate) struct CachedStep<'a> {
    pub index: usize,
    /// The run's steps' specs (this one's is read only where a hit is
    /// not certain, or for the store's history).
    pub specs: &'a dyn Specs,
    /// Whether the spec lists files to watch (known without reading it).
    pub watches_files: bool,
    /// The pipeline's catalog, for the step's output codecs (read only to
    /// load or save its outputs).
    pub catalog: &'a Catalog,
    /// The slots of its inputs, in parameter order.
    pub inputs: &'a [u32],
    /// The slots of its outputs, in output order.
    pub outputs: Range<usize>,
    pub slots: &'a [Slot],
    pub fingerprints: &'a [WriteOnce<Fingerprint>],
    /// Where the step's key goes, for its record.
    pub key: &'a WriteOnce<Fingerprint>,
}

impl CachedStep<'_> {
    fn spec(&self) -> &StepSpec {
        self.specs.spec(self.index)
    }

    fn codecs(&self) -> &[Codec] {
        self.catalog.output_codecs(self.index)
    }

    /// Serves output `slot` from the cache: its value and fingerprint.
    #[inline]
    #[allow(unsafe_code)]
    fn put(&self, slot: usize, value: Value, fingerprint: Fingerprint) {
        // SAFETY: a cached step is made for one visit of its step, the one
        // writer of its output slots (see `slot`).
        let written = unsafe { self.slots[slot].set(value) };
        // Empty: a failed attempt's outputs are discarded before the next.
        debug_assert!(written.is_ok(), "output slot {slot} served twice");
        let _ = self.fingerprints[slot].set(fingerprint);
    }
}

impl StepCache {
    /// An in-memory cache for a pipeline of `steps` steps so far.
    pub fn in_memory(steps: usize) -> Self {
        let mut cache = StepCache {
            entries: Vec::new(),
            store: None,
            files: FileFingerprints::new(),
        };
        cache.grow(steps);
        cache
    }

    /// A cache on disk for a pipeline of `steps` steps so far.
    pub fn on_disk(store: ArtifactStore, steps: usize) -> Self {
        StepCache {
            store: Some(store),
            ..Self::in_memory(steps)
        }
    }

    /// Makes room for the pipeline's steps, `steps` of them now.
    pub fn grow(&mut self, steps: usize) {
        let missing = steps.saturating_sub(self.entries.len());
        self.entries
            .extend(std::iter::repeat_with(StepEntry::default).take(missing));
    }

    /// Asks the CPU for what checking step `i`'s entry in memory reads
    /// first (see [`prefetch`]): its flag, lock, and where its inputs and
    /// outputs are.
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        if let Some(entry) = self.entries.get(i) {
            prefetch(&entry.latest);
        }
    }

    pub fn store(&self) -> Option<&ArtifactStore> {
        self.store.as_ref()
    }

    /// The files the latest run of the step at `index` in this process
    /// read, with their hashes then.
    #[cfg(feature = "cli")]
    pub fn files_read(&self, index: usize) -> Vec<FileRead> {
        self.entries.get(index).map_or_else(Vec::new, |entry| {
            lock(&entry.latest)
                .as_ref()
                .map_or_else(Vec::new, |e| e.reads.clone())
        })
    }

    /// Makes the step at `index` rerun on its next run.
    pub fn invalidate(&mut self, index: usize) {
        *self.entries[index].invalidated.get_mut() = true;
    }

    fn key(&self, step: &CachedStep<'_>) -> Result<Fingerprint, String> {
        let spec = step.spec();
        let base = &self.entries[step.index].base;
        let base = match base.get() {
            Some(base) => *base,
            None => {
                let key = base_key(spec)?;
                *base.get_or_init(|| key)
            }
        };
        let inputs = spec.inputs.iter().zip(step.inputs).map(|(input, &slot)| {
            step.fingerprints[slot as usize]
                .get()
                .copied()
                .ok_or_else(|| format!("input `{}` has no fingerprint", input.name))
        });
        extend_key(base, spec, inputs, |path| self.file_fingerprint(path))
    }

    fn file_fingerprint(&self, path: &Path) -> Result<Fingerprint> {
        match &self.store {
            Some(store) => store.file_fingerprint(path),
            None => self.files.fingerprint(path),
        }
    }

    /// The first of `reads` whose content is not what it was (or that is
    /// gone): the entry that recorded them is stale.
    fn changed<'r>(&self, reads: &'r [FileRead]) -> Option<&'r FileRead> {
        reads
            .iter()
            .find(|r| self.file_fingerprint(&r.path).ok() != Some(r.hash))
    }

    /// Serves `step` from the cache, or runs it with `run` and caches it.
    pub fn execute(
        &self,
        step: &CachedStep<'_>,
        writer: Option<&RunWriter<'_>>,
        run: impl FnOnce() -> Outcome,
    ) -> Outcome {
        // Only the store's history uses the check's time: no clock read per
        // step for a cache in memory.
        let started = self.store.is_some().then(Instant::now);
        let checked = || started.map_or(Duration::ZERO, |t| t.elapsed());
        let entry = &self.entries[step.index];
        // Runs never overlap an `invalidate`, which borrows the pipeline
        // mutably: relaxed loads and stores suffice.
        let invalidated = entry.invalidated.load(Ordering::Relaxed);
        if self.serve_unchanged(step) {
            self.record(
                writer,
                step,
                *step.key.get().expect("set by the hit"),
                Vec::new(),
                checked(),
                true,
            );
            return Outcome::Cached;
        }
        let key = match self.key(step) {
            Ok(key) => key,
            Err(message) => return Outcome::Failed(message.into()),
        };
        let _ = step.key.set(key);
        let code = Fingerprint::from_bytes(step.spec().code_fingerprint);
        let mut reason = if invalidated {
            RerunReason::Invalidated
        } else {
            RerunReason::NoEntry
        };
        let mut notes = Vec::new();
        let mut file_changed = |read: &FileRead, reason: &mut RerunReason| {
            *reason = RerunReason::FileChanged;
            notes.push(format!(
                "`{}` changed since the cached run",
                read.path.display()
            ));
        };
        if !invalidated {
            let latest = lock(&entry.latest);
            match &*latest {
                Some(entry)
                    if entry.key == key
                        && !entry.reads.is_empty()
                        && let Some(read) = self.changed(&entry.reads) =>
                {
                    file_changed(read, &mut reason);
                }
                Some(entry) if entry.key == key => {
                    for ((artifact, fp), slot) in entry.outputs.iter().zip(step.outputs.clone()) {
                        step.put(slot, artifact.clone(), *fp);
                    }
                    drop(latest);
                    self.record(writer, step, key, Vec::new(), checked(), true);
                    return Outcome::Cached;
                }
                Some(entry) if entry.code != code => reason = RerunReason::CodeChanged,
                Some(_) => reason = RerunReason::InputChanged,
                None => {}
            }
            let checked_in_memory = reason == RerunReason::FileChanged;
            drop(latest);
            if !checked_in_memory {
                match self.load(step, key) {
                    Ok(Loaded::Hit { hashes, reads }) => {
                        self.remember(step, key, code, reads);
                        self.record(writer, step, key, hashes, checked(), true);
                        return Outcome::Cached;
                    }
                    Ok(Loaded::Miss) => {}
                    Ok(Loaded::Stale(read)) => file_changed(&read, &mut reason),
                    Err(()) => reason = RerunReason::CorruptEntry,
                }
            }
        }

        let ran = Instant::now();
        let outcome = run();
        let duration = ran.elapsed();
        let Outcome::Ran {
            notes: step_notes,
            reads,
            ..
        } = outcome
        else {
            return outcome;
        };
        notes.extend(step_notes);
        let (hashes, saved) = self.save(step, key, &reads, duration, writer);
        notes.extend(saved);
        self.remember(step, key, code, reads);
        entry.invalidated.store(false, Ordering::Relaxed);
        self.record(writer, step, key, hashes, duration, false);
        Outcome::Ran {
            reason: Some(reason),
            notes,
            reads: Vec::new(),
        }
    }

    /// Serves `step` from its entry in memory if nothing its key depends
    /// on can have changed: it is not invalidated, watches no file, and
    /// [`same_inputs_in_memory`](Self::same_inputs_in_memory). What a
    /// rerun checks first; it cannot panic, so a lean run calls it without
    /// a `catch_unwind` frame and records the hit at once.
    #[inline]
    pub fn serve_unchanged(&self, step: &CachedStep<'_>) -> bool {
        !step.watches_files
            && !self.entries[step.index].invalidated.load(Ordering::Relaxed)
            && self.same_inputs_in_memory(step)
    }

    /// Serves `step` from its entry in memory if that entry was built from
    /// the inputs the step has now (then its key is this run's key, and the
    /// keyed hash need not be computed) and every file its run read is
    /// unchanged. The caller has checked that the step is not invalidated
    /// and watches no file, the other parts of a key.
    fn same_inputs_in_memory(&self, step: &CachedStep<'_>) -> bool {
        let latest = lock(&self.entries[step.index].latest);
        let Some(entry) = &*latest else {
            return false;
        };
        let same = entry.inputs.len() == step.inputs.len()
            && entry
                .inputs
                .iter()
                .zip(step.inputs)
                .all(|(old, &slot)| step.fingerprints[slot as usize].get() == Some(old));
        if !same || (!entry.reads.is_empty() && self.changed(&entry.reads).is_some()) {
            return false;
        }
        for ((artifact, fp), slot) in entry.outputs.iter().zip(step.outputs.clone()) {
            step.put(slot, artifact.clone(), *fp);
        }
        let _ = step.key.set(entry.key);
        true
    }

    /// The step's outputs from the store, `Err` when the entry exists but
    /// an output (or its list of files read) is gone, corrupt or
    /// undecodable. Slots are filled only once every output has loaded.
    fn load(&self, step: &CachedStep<'_>, key: Fingerprint) -> Result<Loaded, ()> {
        let Some(store) = &self.store else {
            return Ok(Loaded::Miss);
        };
        let mut entry = match store.lookup(&key) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(Loaded::Miss),
            Err(e) => {
                tracing::warn!(step = %step.spec().name, error = %e, "cache lookup failed; recomputing");
                return Ok(Loaded::Miss);
            }
        };
        let reads = match split_reads(store, &mut entry.outputs, step.outputs.len()) {
            Ok(Some(reads)) => reads,
            Ok(None) | Err(_) => return Err(()),
        };
        if let Some(read) = self.changed(&reads) {
            return Ok(Loaded::Stale(read.clone()));
        }
        let mut loaded = Vec::with_capacity(entry.outputs.len());
        for (hash, codec) in entry.outputs.iter().zip(step.codecs()) {
            match store.get_bytes(hash) {
                Ok(Some(bytes)) => match codec.decode(&bytes) {
                    Some(Ok(artifact)) => loaded.push(artifact),
                    _ => return Err(()),
                },
                Ok(None) | Err(_) => return Err(()),
            }
        }
        for ((artifact, hash), slot) in loaded
            .into_iter()
            .zip(&entry.outputs)
            .zip(step.outputs.clone())
        {
            step.put(slot, Value::from(artifact), *hash);
        }
        Ok(Loaded::Hit {
            hashes: entry.outputs,
            reads,
        })
    }

    /// Fingerprints the outputs that just ran and stores them if the store
    /// can hold every one; returns the stored hashes and notes for the
    /// record.
    fn save(
        &self,
        step: &CachedStep<'_>,
        key: Fingerprint,
        reads: &[FileRead],
        duration: Duration,
        writer: Option<&RunWriter<'_>>,
    ) -> (Vec<Fingerprint>, Vec<String>) {
        let mut notes = Vec::new();
        let mut encoded = Vec::with_capacity(step.outputs.len());
        for (j, (slot, codec)) in step.outputs.clone().zip(step.codecs()).enumerate() {
            let spec = &step.spec().outputs[j];
            let Some(artifact) = step.slots[slot].get() else {
                continue;
            };
            let (fp, bytes) = match codec.fingerprint(artifact.as_any()) {
                Some(Ok(f)) => (f.fingerprint, f.encoded),
                Some(Err(e)) => {
                    notes.push(format!("output `{}` could not be encoded: {e}", spec.name));
                    (opaque_fingerprint(key, j), None)
                }
                None => (opaque_fingerprint(key, j), None),
            };
            if bytes.is_none() && self.store.is_some() {
                notes.push(format!(
                    "output `{}` (`{}`) is not serialisable: kept in memory only, recomputed by a new process",
                    spec.name, spec.type_name
                ));
            }
            let _ = step.fingerprints[slot].set(fp);
            encoded.push(bytes);
        }
        let Some(writer) = writer else {
            if let Some(store) = &self.store {
                notes.push(format!(
                    "not stored: the cache {} is read-only",
                    store.dir().display()
                ));
            }
            return (Vec::new(), notes);
        };
        if encoded.iter().any(Option::is_none) || encoded.len() != step.outputs.len() {
            return (Vec::new(), notes);
        }
        if !reads.is_empty() {
            match codec::encode(&(READS_MAGIC, reads)) {
                Ok(list) => encoded.push(Some(list)),
                Err(e) => {
                    notes.push(format!("not stored on disk: its files read: {e}"));
                    return (Vec::new(), notes);
                }
            }
        }
        let staged: Result<Vec<_>> = encoded.iter().flatten().map(|b| writer.stage(b)).collect();
        match staged.map(|staged| writer.commit_entry(key, &step.spec().name, staged, duration)) {
            Ok(mut hashes) => {
                // The list of files read is the entry's, not an output.
                hashes.truncate(step.outputs.len());
                (hashes, notes)
            }
            Err(e) => {
                notes.push(format!("not stored on disk: {e}"));
                (Vec::new(), notes)
            }
        }
    }

    fn remember(
        &self,
        step: &CachedStep<'_>,
        key: Fingerprint,
        code: Fingerprint,
        reads: Vec<FileRead>,
    ) {
        let outputs = step
            .outputs
            .clone()
            .filter_map(|slot| {
                Some((
                    step.slots[slot].get()?.clone(),
                    *step.fingerprints[slot].get()?,
                ))
            })
            .collect();
        let inputs = step
            .inputs
            .iter()
            .filter_map(|&slot| step.fingerprints[slot as usize].get().copied())
            .collect();
        *lock(&self.entries[step.index].latest) = Some(MemoryEntry {
            key,
            inputs,
            code,
            outputs,
            reads,
        });
    }

    /// Notes the step in the run's history, which only a store keeps.
    #[inline]
    fn record(
        &self,
        writer: Option<&RunWriter<'_>>,
        step: &CachedStep<'_>,
        key: Fingerprint,
        outputs: Vec<Fingerprint>,
        duration: Duration,
        cached: bool,
    ) {
        let Some(writer) = writer else {
            return;
        };
        writer.record(StepExecution {
            step: step.spec().name.to_string(),
            key,
            outputs,
            duration,
            cached,
        });
    }
}

/// The part of a step's key fixed when the step was built: its name, code
/// and options.
pub(crate) fn base_key(spec: &StepSpec) -> Result<Fingerprint, String> {
    Ok(KeyBuilder::new(&spec.name)
        .code(Fingerprint::from_bytes(spec.code_fingerprint))
        .option("resources", &*spec.resources)
        .map_err(|e| e.to_string())?
        .finish())
}

/// A step's key: `base` extended with its inputs' fingerprints (in
/// parameter order) and its watched files' fingerprints, as `file` gives
/// them. A run computes keys so; so does `cache serve` for a runner that
/// runs the step in another process, which is why the two always agree.
pub(crate) fn extend_key(
    base: Fingerprint,
    spec: &StepSpec,
    inputs: impl IntoIterator<Item = Result<Fingerprint, String>>,
    file: impl Fn(&Path) -> Result<Fingerprint>,
) -> Result<Fingerprint, String> {
    let mut key = KeyBuilder::extend(base);
    for (input, fp) in spec.inputs.iter().zip(inputs) {
        key.add_input(&input.name, fp?);
    }
    for path in spec.watch.iter() {
        let fp = file(Path::new(path)).map_err(|e| format!("watched file `{path}`: {e}"))?;
        key.add_input(&format!("file:{path}"), fp);
    }
    Ok(key.finish())
}

/// The output hashes of the entry `store` keeps under `key` for a step of
/// `outputs` outputs, when it may be served as a run would serve it: whole
/// (every blob present), and every file its run read unchanged. `None`
/// otherwise: the step runs again. For runners outside the process
/// (`cache serve`), which load the bytes themselves.
#[cfg(feature = "cli")]
pub(crate) fn served_hashes(
    store: &ArtifactStore,
    key: &Fingerprint,
    outputs: usize,
) -> Result<Option<Vec<Fingerprint>>> {
    let Some(mut entry) = store.lookup(key)? else {
        return Ok(None);
    };
    let Some(reads) = split_reads(store, &mut entry.outputs, outputs)? else {
        return Ok(None);
    };
    if reads
        .iter()
        .any(|r| store.file_fingerprint(&r.path).ok() != Some(r.hash))
    {
        return Ok(None);
    }
    for hash in &entry.outputs {
        if !store.contains(hash)? {
            return Ok(None);
        }
    }
    Ok(Some(entry.outputs))
}

/// The blob an entry keeps after its outputs for the files its run read
/// (see [`served_hashes`]): for runners outside the process that commit
/// what a step read elsewhere (`cache serve`).
#[cfg(feature = "cli")]
pub(crate) fn reads_blob(reads: &[FileRead]) -> Result<Vec<u8>> {
    codec::encode(&(READS_MAGIC, reads))
}

/// Splits an entry's blobs, `blobs`, into the outputs of a step of
/// `outputs` outputs (left in `blobs`) and the files its run read: an extra
/// last blob when it read any. `None` when the entry is not of that shape,
/// or the extra blob is gone or is not such a list: the entry cannot be
/// served.
fn split_reads(
    store: &ArtifactStore,
    blobs: &mut Vec<Fingerprint>,
    outputs: usize,
) -> Result<Option<Vec<FileRead>>> {
    if blobs.len() == outputs {
        return Ok(Some(Vec::new()));
    }
    if blobs.len() != outputs + 1 {
        return Ok(None);
    }
    let list = blobs[outputs];
    blobs.truncate(outputs);
    let Some(bytes) = store.get_bytes(&list)? else {
        return Ok(None);
    };
    Ok(match codec::decode::<(String, Vec<FileRead>)>(&bytes) {
        Ok((magic, reads)) if magic == READS_MAGIC => Some(reads),
        _ => None,
    })
}

/// What the store has for a step's key.
enum Loaded {
    /// No entry.
    Miss,
    /// The entry, loaded into the step's slots: its output hashes and the
    /// files its run read.
    Hit {
        hashes: Vec<Fingerprint>,
        reads: Vec<FileRead>,
    },
    /// An entry whose run read a file that has changed since.
    Stale(FileRead),
}

/// An opaque output's fingerprint: its producer's key, so it changes
/// exactly when the producer's key does.
pub(crate) fn opaque_fingerprint(key: Fingerprint, output: usize) -> Fingerprint {
    KeyBuilder::new("opaque-output")
        .input("producer", key)
        .bytes("output", &output.to_le_bytes())
        .finish()
}

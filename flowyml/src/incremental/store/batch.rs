//! [`RunWriter`]: what one run writes to the store, group-committed and
//! made durable once, at the run's end.
//!
//! # Design note: what a crash can lose
//! A run's new cache entries and its step records are queued and written
//! together, one transaction per batch; a batch is written when it holds
//! [`MAX_BATCH`] items or its oldest item has waited [`MAX_WAIT`] (checked
//! as items are queued and by a thread beside the workers, so a long step
//! does not hold back the records of those that finished before it), and
//! at the run's end. Artifact files are written without an fsync each; when
//! the store is [`durable`](super::StoreOptions::durable), the run's end
//! (after its last transaction) flushes the filesystem once (`syncfs` on
//! Linux, each file written and the directory elsewhere).
//! - **A killed process** (SIGKILL, a panic that aborts) loses the items
//!   of the batch not yet written: at most [`MAX_WAIT`] of finished steps,
//!   which the next run recomputes. Everything in a written batch stays,
//!   since the kernel has the files and SQLite's WAL.
//! - **A power loss** before the run's end may lose any of the run's
//!   entries, and may leave an entry whose artifact file is empty or gone.
//!   It never yields a wrong value: every read checks the file against its
//!   hash and its recorded size, so such an entry is a miss, removed and
//!   recomputed. After the run's end returns, everything the run wrote is
//!   on the disk.
//! - **Other processes** see a step's entry once its batch is written, not
//!   when the step finishes: until then a lookup is a miss.
//!
//! Integrity never depended on fsync; the fsync bought only durability,
//! and paying it once per run instead of twice per output is what makes
//! the default store cheap.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::dir::{ArtifactStore, StoreOptions};
use super::entries::{Eviction, Outputs, evict_in, insert_entry_in, log_eviction};
use super::history::insert_steps_in;
use super::history::{RunId, RunStatus, StepExecution};
use super::pending::apply_pending;
use super::writer::StagedArtifact;
use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::now_ns;
use crate::sync::lock;

/// Items (entries and step records) queued before a batch is written.
pub(crate) const MAX_BATCH: usize = 1024;

/// The longest an item waits before its batch is written: what a killed
/// process can lose of its finished steps.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(50);

/// A cache entry waiting for its batch.
struct QueuedEntry<'s> {
    key: Fingerprint,
    step: String,
    staged: Vec<StagedArtifact<'s>>,
    duration: Duration,
}

/// What waits to be written.
#[derive(Default)]
struct Batch<'s> {
    entries: Vec<QueuedEntry<'s>>,
    steps: Vec<StepExecution>,
    /// When the oldest item was queued.
    since: Option<Instant>,
}

impl Batch<'_> {
    fn len(&self) -> usize {
        self.entries.len() + self.steps.len()
    }

    fn is_due(&self) -> bool {
        self.len() >= MAX_BATCH || self.since.is_some_and(|t| t.elapsed() >= MAX_WAIT)
    }
}

/// One run's writes to a store: its entry in the history, its steps' cache
/// entries and step records, queued and group-committed (see the module's
/// design note). Shared by the run's workers (`&self`).
pub(crate) struct RunWriter<'s> {
    store: &'s ArtifactStore,
    run: RunId,
    batch: Mutex<Batch<'s>>,
    /// Files renamed into place by this run, to sync at its end where the
    /// filesystem cannot be synced at once.
    written: Mutex<Vec<PathBuf>>,
    /// Whether the run queued a cache entry: a run served wholly from the
    /// cache has nothing to make durable but its history, and skips the
    /// flush. Relaxed: read after the run's workers joined.
    stored: AtomicBool,
}

impl<'s> RunWriter<'s> {
    /// Starts a run of `pipeline` in `store`'s history.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub(crate) fn begin(store: &'s ArtifactStore, pipeline: &str) -> Result<Self> {
        Ok(RunWriter {
            run: store.begin_run(pipeline)?,
            store,
            batch: Mutex::new(Batch::default()),
            written: Mutex::new(Vec::new()),
            stored: AtomicBool::new(false),
        })
    }

    /// The run's id in the history.
    pub(crate) fn run(&self) -> RunId {
        self.run
    }

    /// Stages `bytes`: kept for the database if small (see
    /// [`ArtifactStore::stage_small_or_file`]), else written to a temporary
    /// file, hashed, not synced (the run's end syncs).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn stage(&self, bytes: &[u8]) -> Result<StagedArtifact<'s>> {
        self.store.stage_small_or_file(bytes, false)
    }

    /// Queues a step's cache entry, its outputs `staged`; returns their
    /// addresses (known now, visible to other processes once the batch is
    /// written).
    pub(crate) fn commit_entry(
        &self,
        key: Fingerprint,
        step: &str,
        staged: Vec<StagedArtifact<'s>>,
        duration: Duration,
    ) -> Vec<Fingerprint> {
        let hashes = staged.iter().map(|s| s.hash).collect();
        self.stored.store(true, Ordering::Relaxed);
        let mut batch = lock(&self.batch);
        batch.since.get_or_insert_with(Instant::now);
        batch.entries.push(QueuedEntry {
            key,
            step: step.to_owned(),
            staged,
            duration,
        });
        self.write_if_due(batch);
        hashes
    }

    /// Queues a step's record in the history.
    pub(crate) fn record(&self, step: StepExecution) {
        let mut batch = lock(&self.batch);
        batch.since.get_or_insert_with(Instant::now);
        batch.steps.push(step);
        self.write_if_due(batch);
    }

    fn write_if_due(&self, mut batch: std::sync::MutexGuard<'_, Batch<'s>>) {
        if !batch.is_due() {
            return;
        }
        let taken = std::mem::take(&mut *batch);
        // Written outside the queue's lock: other workers keep queueing
        // while the transaction runs.
        drop(batch);
        self.write(taken);
    }

    /// Until `done`, writes the queue whenever its oldest item has waited
    /// [`MAX_WAIT`]: what bounds the loss of a killed run when no step
    /// finishes for a while (one long step after many short ones). Runs on
    /// a thread of its own beside the run's workers; `done` is set, and
    /// the thread unparked, when the run's steps are over.
    pub(crate) fn write_periodically(&self, done: &AtomicBool) {
        // Relaxed: the flag only ends the loop; what the run queued is
        // read under the queue's lock.
        while !done.load(Ordering::Relaxed) {
            std::thread::park_timeout(MAX_WAIT);
            let batch = lock(&self.batch);
            if batch.since.is_some_and(|t| t.elapsed() >= MAX_WAIT) {
                self.write_if_due(batch);
            }
        }
    }

    /// Writes a batch in one transaction. A failure (a full disk, say) is
    /// logged as a warning naming the store and the cause: the entries are
    /// lost and recomputed by a later run, and this run goes on, since the
    /// cache is an optimisation.
    fn write(&self, mut batch: Batch<'s>) {
        if batch.len() == 0 {
            return;
        }
        let store = self.store;
        let now = now_ns();
        let StoreOptions { max_bytes, .. } = store.options();
        let keep: Vec<Fingerprint> = batch
            .entries
            .iter()
            .flat_map(|e| e.staged.iter().map(|s| s.hash))
            .collect();
        // Only where the filesystem cannot be flushed at once does the
        // run's end need the files it renamed.
        let renamed: Vec<PathBuf> = if cfg!(target_os = "linux") {
            Vec::new()
        } else {
            batch
                .entries
                .iter()
                .flat_map(|e| e.staged.iter().filter(|s| !s.is_inline()))
                .map(|s| store.artifact_path(&s.hash))
                .collect()
        };
        let pending = std::mem::take(&mut *lock(&store.pending));
        let result = lock(&store.db).write(|tx| {
            apply_pending(tx, &pending)?;
            for entry in &mut batch.entries {
                store.install_in(tx, &mut entry.staged, now)?;
                let hashes: Vec<Fingerprint> = entry.staged.iter().map(|s| s.hash).collect();
                insert_entry_in(
                    tx,
                    &entry.key,
                    &entry.step,
                    &hashes,
                    entry.duration,
                    now,
                    Outputs::Installed,
                )?;
            }
            insert_steps_in(tx, self.run, &batch.steps)?;
            match max_bytes {
                Some(max) => evict_in(tx, &store.artifacts, max, &keep),
                None => Ok(Eviction::default()),
            }
        });
        match result {
            Ok(evicted) => {
                log_eviction(&evicted);
                lock(&self.written).extend(renamed);
            }
            Err(e) => {
                tracing::warn!(
                    run = self.run.0,
                    cache = %store.dir().display(),
                    error = %e,
                    "could not store {} cache entries and step records of this run; a later run recomputes them",
                    batch.len()
                );
            }
        }
    }

    /// Writes what is queued, ends the run with `status`, and (for a
    /// durable store) makes everything the run wrote durable.
    ///
    /// # Errors
    /// [`Error::Database`] if the history cannot be written, [`Error::Io`]
    /// if the flush fails.
    pub(crate) fn finish(self, status: RunStatus) -> Result<()> {
        let last = std::mem::take(&mut *lock(&self.batch));
        self.write(last);
        self.store.finish_run(self.run, status)?;
        if self.store.options().durable && self.stored.load(Ordering::Relaxed) {
            self.sync()?;
        }
        Ok(())
    }

    /// One flush of the filesystem that holds the store (see
    /// [`ArtifactStore::sync_written`]).
    fn sync(&self) -> Result<()> {
        self.store.sync_written(&lock(&self.written))
    }
}

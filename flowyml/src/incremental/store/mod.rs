//! [`ArtifactStore`]: the persistent cache, a directory of content-addressed
//! artifact files and an embedded SQLite metadata database.
//!
//! ```text
//! <dir>/artifacts/<64 hex digits>   encoded artifacts, named by their blake3 hash
//! <dir>/artifacts/.tmp-*            writes in progress (locked by their writer)
//! <dir>/meta.sqlite                 runs, step executions, cache entries, LRU data
//! ```
//!
//! # Design notes
//! - **Content addressing.** A file's name is the hash of its bytes, never
//!   an artifact's name, so equal outputs of different steps are stored
//!   once, names need no escaping, and every read can be verified.
//! - **Atomic writes.** An artifact is written to a temporary file in the
//!   same directory, fsynced, and renamed to its hash (then the directory is
//!   fsynced). A reader sees a whole file or none; a writer killed midway
//!   leaves only a temporary file, which the next [`open`](ArtifactStore::open)
//!   removes. A writer holds an exclusive lock on its temporary file, which
//!   the OS releases when the writer dies: that, not a timeout, tells a
//!   live write from an abandoned one.
//! - **Never trusted.** A read checks the file's size against
//!   [`StoreOptions::max_artifact_bytes`] before reading it, reads at most
//!   that much, and checks the blake3 hash of what it read against the
//!   name. A truncated, corrupted or crafted file is removed (with the
//!   cache entries that point at it) and reported as
//!   [`Error::CorruptArtifact`]; the next read is a plain miss. Decoding is
//!   bounded too (see [`codec`]).
//! - **Order of writes.** An artifact's row is inserted after its file is
//!   in place, and a cache entry only after its artifacts have rows, so
//!   every row points at a complete file, whatever the point of a crash.
//!   Renames and removals happen inside the database's write transaction,
//!   so two processes cannot interleave an eviction with a write of the same
//!   artifact.
//! - **Cheap lookups.** [`lookup`](ArtifactStore::lookup) and reads are
//!   database reads; the recency they imply (for the LRU bound) and the hit
//!   counters are buffered and written in one transaction with the next
//!   write, [`flush`](ArtifactStore::flush) or drop.
//! - **LRU bound.** With [`StoreOptions::max_bytes`], each write evicts the
//!   least recently used artifacts until the total fits (the artifacts
//!   being written are never evicted, so a step whose outputs exceed the
//!   bound is still stored). Evicting an artifact drops the cache entries
//!   that need it.

mod artifacts;
mod entries;
mod files;
mod history;
mod writer;

pub use entries::{CacheEntry, Eviction, StoreStats};
pub use history::{RunId, RunRecord, RunStatus, StepExecution};
pub use writer::{ArtifactWriter, StagedArtifact};

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::codec;
use super::fingerprint::Fingerprint;
use super::metadb::MetaDb;
use crate::error::{Error, Result};
use entries::Pending;

pub(super) const TMP_PREFIX: &str = ".tmp-";
pub(super) const MAX_PENDING_TOUCHES: usize = 4096;

/// How an [`ArtifactStore`] is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Evict least recently used artifacts while the total exceeds this
    /// many bytes; `None` for no bound.
    pub max_bytes: Option<u64>,
    /// The largest artifact read, written or decoded; a larger file is
    /// treated as corrupt, never read.
    pub max_artifact_bytes: u64,
    /// How long to wait for another process's write transaction.
    pub busy_timeout: Duration,
    /// fsync each artifact and its directory before recording it (default
    /// `true`). Integrity does not depend on it, since every read is
    /// verified; it decides whether an artifact recorded just before a
    /// power loss is still there after it, at a cost of milliseconds per
    /// write on a disk.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_bytes: None,
            max_artifact_bytes: codec::DEFAULT_MAX_DECODE_BYTES as u64,
            busy_timeout: Duration::from_secs(30),
            durable: true,
        }
    }
}

/// The persistent cache: content-addressed artifacts plus a SQLite database
/// of cache entries, runs and step executions. Shareable between threads
/// (`&self` everywhere) and between processes (one directory).
///
/// ```
/// use flowyml::incremental::{ArtifactStore, Fingerprint, KeyBuilder, RunStatus, StepExecution};
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("flowyml-doc-store-{}", std::process::id()));
/// let store = ArtifactStore::open(&dir)?;
///
/// // A step's output, stored by content.
/// let cleaned = vec![1.0_f64, 2.0, 3.0];
/// let out = store.put(&cleaned)?;
/// assert_eq!(out, Fingerprint::of(&cleaned)?);
///
/// // Its cache entry, keyed by code, options and inputs.
/// let key = KeyBuilder::new("clean_data").input("raw", Fingerprint::of_bytes(b"raw")).finish();
/// assert!(store.lookup(&key)?.is_none());
/// store.insert_entry(&key, "clean_data", &[out], Duration::from_millis(5))?;
///
/// // A later run (maybe another process) finds it and loads the output.
/// let entry = store.lookup(&key)?.expect("a hit");
/// let loaded: Vec<f64> = store.get(&entry.outputs[0])?.expect("stored");
/// assert_eq!(loaded, cleaned);
///
/// let run = store.begin_run("doc")?;
/// store.record(run, &[StepExecution { step: "clean_data".into(), key, outputs: entry.outputs, duration: Duration::from_micros(40), cached: true }])?;
/// store.finish_run(run, RunStatus::Succeeded)?;
/// assert_eq!(store.runs()?[0].cached, 1);
/// assert_eq!(store.stats()?.hits, 1);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct ArtifactStore {
    dir: PathBuf,
    artifacts: PathBuf,
    db: Mutex<MetaDb>,
    options: Mutex<StoreOptions>,
    pending: Mutex<Pending>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn hexes(list: &[Fingerprint]) -> String {
    list.iter()
        .map(Fingerprint::to_hex)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn parse_hexes(s: &str) -> std::result::Result<Vec<Fingerprint>, rusqlite::Error> {
    s.split_ascii_whitespace()
        .map(|h| {
            h.parse::<Fingerprint>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })
        })
        .collect()
}

pub(super) fn duration_of(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

impl ArtifactStore {
    /// Opens (creating if needed) the store in `dir`, unbounded.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory, [`Error::Database`] naming the
    /// database file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (creating if needed) the store in `dir` with `options`, and
    /// removes the temporary files of writers that died.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let artifacts = dir.join("artifacts");
        fs::create_dir_all(&artifacts).map_err(|e| Error::io(&artifacts, e))?;
        let db = MetaDb::open(&dir.join("meta.sqlite"), options.busy_timeout)?;
        let store = ArtifactStore {
            dir,
            artifacts,
            db: Mutex::new(db),
            options: Mutex::new(options),
            pending: Mutex::new(Pending::default()),
        };
        store.sweep_abandoned_temp_files()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metadata database file (inspectable with `sqlite3`).
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("meta.sqlite")
    }

    /// The file an artifact is (or would be) stored in.
    pub fn artifact_path(&self, hash: &Fingerprint) -> PathBuf {
        self.artifacts.join(hash.to_hex())
    }

    /// The options in force.
    pub fn options(&self) -> StoreOptions {
        lock(&self.options).clone()
    }

    /// Changes the size bound; a smaller bound takes effect at the next write
    /// (or call [`evict_to`](Self::evict_to)).
    pub fn set_max_bytes(&self, max_bytes: Option<u64>) {
        lock(&self.options).max_bytes = max_bytes;
    }

    /// Removes temporary files whose writer is gone (its lock is free).
    fn sweep_abandoned_temp_files(&self) -> Result<usize> {
        let mut removed = 0;
        let entries = fs::read_dir(&self.artifacts).map_err(|e| Error::io(&self.artifacts, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.artifacts, e))?;
            if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue; // renamed or removed meanwhile
            };
            if file.try_lock().is_ok() {
                // Removed while we hold the lock, so a writer that created it
                // but had not locked it yet sees it gone and starts afresh.
                if fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.artifacts.display(), "removed abandoned temporary files");
        }
        Ok(removed)
    }
}

impl Drop for ArtifactStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not flush the cache's recency data");
        }
    }
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("dir", &self.dir)
            .field("options", &self.options())
            .finish()
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    // Makes the rename durable; directories cannot be opened for syncing on
    // every platform, and the rename itself is what makes the write atomic.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        drop(ArtifactStore::open(dir.path()).unwrap());
        // Back to version 1's shape, with an unfinished run of that time.
        let old = rusqlite::Connection::open(dir.path().join("meta.sqlite")).unwrap();
        old.execute_batch(
            "ALTER TABLE runs DROP COLUMN origin;
             UPDATE meta SET value = 1 WHERE key = 'schema';
             INSERT INTO runs(pipeline, pid, started_ns, status) VALUES ('old', 1, 0, 'running');",
        )
        .unwrap();
        drop(old);

        let store = ArtifactStore::open(dir.path()).unwrap();
        let run = store.begin_run("new").unwrap();
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].id, runs[0].status), (run, RunStatus::Running));
        // Nothing recorded says who started it: never called interrupted.
        assert_eq!(
            (runs[1].pipeline.as_str(), runs[1].status),
            ("old", RunStatus::Running)
        );
    }

    #[test]
    fn a_live_writers_temp_file_survives_a_concurrent_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"in progress").unwrap();
        // Another opener sweeps abandoned temporary files; this one is
        // locked by its live writer.
        let other = ArtifactStore::open(dir.path()).unwrap();
        assert!(w.tmp.exists());
        let hash = w.commit().unwrap();
        assert_eq!(
            other.get_bytes(&hash).unwrap().as_deref(),
            Some(&b"in progress"[..])
        );
    }

    #[test]
    fn an_uncommitted_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"abandoned").unwrap();
        drop(w);
        assert_eq!(
            fs::read_dir(dir.path().join("artifacts")).unwrap().count(),
            0
        );
        assert_eq!(store.stats().unwrap().artifacts, 0);
    }

    #[test]
    fn a_row_without_its_file_reads_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let h = store.put_bytes(b"x").unwrap();
        let key = Fingerprint::of_bytes(b"k");
        store.insert_entry(&key, "s", &[h], Duration::ZERO).unwrap();
        fs::remove_file(store.artifact_path(&h)).unwrap();
        assert!(!store.contains(&h).unwrap());
        assert_eq!(store.get_bytes(&h).unwrap(), None);
        assert!(store.lookup(&key).unwrap().is_none());
        assert_eq!(store.stats().unwrap().bytes, 0);
    }
}

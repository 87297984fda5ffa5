//! The store itself: its directory, its options, opening it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::pending::{self, Pending};
use crate::error::{Error, Result};
use crate::incremental::codec;
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{MetaDb, Opened};
use crate::sync::lock;

pub(super) const TMP_PREFIX: &str = ".tmp-";

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
    /// power loss is still there after it. A run pays it once, at its end
    /// (see the store's design notes); a single [`put`](ArtifactStore::put)
    /// pays it per write.
    pub durable: bool,
    /// How many runs the history keeps: older runs (and their step records)
    /// are dropped as a run finishes. `None` keeps every run.
    pub keep_runs: Option<u64>,
}

/// The runs a history keeps by default: enough to look back over weeks of
/// runs, bounded so that the history does not grow forever.
pub const DEFAULT_KEEP_RUNS: u64 = 1_000;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_bytes: None,
            max_artifact_bytes: codec::DEFAULT_MAX_DECODE_BYTES as u64,
            busy_timeout: Duration::from_secs(30),
            durable: true,
            keep_runs: Some(DEFAULT_KEEP_RUNS),
        }
    }
}

/// The persistent cache: content-addressed artifacts plus a SQLite database
/// of cache entries, runs and step executions. Shareable between threads
/// (`&self` everywhere) and between processes (one directory).
///
/// ```
/// use flowyml::incremental::{ArtifactStore, Fingerprint, KeyBuilder};
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
/// assert_eq!(store.stats()?.hits, 1);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct ArtifactStore {
    pub(super) dir: PathBuf,
    pub(super) artifacts: PathBuf,
    pub(super) db: Mutex<MetaDb>,
    pub(super) options: Mutex<StoreOptions>,
    /// Recency and hit counts not written yet.
    pub(super) pending: Mutex<Pending>,
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
    /// A directory that cannot be written is opened read-only: lookups and
    /// reads work, writes fail with [`Error::ReadOnlyCache`], and a
    /// pipeline serves its hits and stores nothing (its records say so). A
    /// damaged database (not a database, or corrupt) is moved aside as
    /// `meta.sqlite.corrupt-<time>` with a warning and the store starts
    /// empty: the artifacts it indexed are removed, since nothing refers to
    /// them any more.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let artifacts = dir.join("artifacts");
        if !artifacts.is_dir() {
            fs::create_dir_all(&artifacts).map_err(|e| Error::io(&artifacts, e))?;
        }
        let (db, opened) = MetaDb::open(&dir.join("meta.sqlite"), options.busy_timeout)?;
        let read_only = db.read_only;
        let store = ArtifactStore {
            dir,
            artifacts,
            db: Mutex::new(db),
            options: Mutex::new(options),
            pending: Mutex::new(Pending::default()),
        };
        if !read_only {
            store.sweep_abandoned_temp_files()?;
        }
        if opened == Opened::Rebuilt {
            store.clear()?;
        }
        Ok(store)
    }

    /// Whether the store was opened read-only (its directory cannot be
    /// written).
    pub fn is_read_only(&self) -> bool {
        lock(&self.db).read_only
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
        if let Err(e) = pending::flush(&self.pending, &self.db) {
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

impl ArtifactStore {
    /// Makes everything written to the store durable: on Linux one
    /// `syncfs` of its filesystem (its files, the database and its WAL);
    /// elsewhere each of the `written` files, the artifacts' directory and
    /// the database's files.
    ///
    /// # Errors
    /// [`Error::Io`] naming what could not be synced.
    pub(crate) fn sync_written(&self, written: &[PathBuf]) -> Result<()> {
        let dir = &self.artifacts;
        #[cfg(target_os = "linux")]
        {
            let _ = written;
            let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
            rustix::fs::syncfs(&d).map_err(|e| Error::io(dir, e.into()))?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            for path in written {
                if let Ok(f) = File::open(path) {
                    f.sync_all().map_err(|e| Error::io(path, e))?;
                }
            }
            sync_dir(dir)?;
            let db = self.db_path();
            for file in [db.clone(), db.with_extension("sqlite-wal")] {
                if let Ok(f) = File::open(&file) {
                    f.sync_all().map_err(|e| Error::io(&file, e))?;
                }
            }
        }
        Ok(())
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

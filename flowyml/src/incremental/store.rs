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
//!   bounded too (see [`codec`](super::codec)).
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
//!   least recently used artifacts until the total fits (the artifact just
//!   written is never evicted, so one artifact larger than the bound is
//!   kept). Evicting an artifact drops the cache entries that need it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use super::fingerprint::{FileStamp, Fingerprint, hash_file_stamped};
use super::metadb::{MetaDb, TxError, duration_ns, now_ns, ns_to_time};
use crate::error::{Error, Result};

const TMP_PREFIX: &str = ".tmp-";
const MAX_PENDING_TOUCHES: usize = 4096;

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

/// A cache entry: a step key and the artifacts it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The step's cache key.
    pub key: Fingerprint,
    /// The step's name.
    pub step: String,
    /// The addresses of its outputs, in output order.
    pub outputs: Vec<Fingerprint>,
    /// How long the step took when it ran.
    pub duration: Duration,
    /// Lookups that found this entry (as of the last flush).
    pub hits: u64,
}

/// One step of a run, as recorded in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepExecution {
    /// The step's name.
    pub step: String,
    /// Its cache key.
    pub key: Fingerprint,
    /// The addresses of its outputs (empty for outputs not stored).
    pub outputs: Vec<Fingerprint>,
    /// Time spent on it (the run, or the cache check and load).
    pub duration: Duration,
    /// Whether it was served from the cache.
    pub cached: bool,
}

/// A run's id in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Not finished (or its process died).
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Running,
        }
    }
}

/// A run in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The process that ran it.
    pub pid: u32,
    /// When it started.
    pub started: SystemTime,
    /// How long it took, once finished.
    pub duration: Option<Duration>,
    /// How it ended.
    pub status: RunStatus,
    /// Steps recorded.
    pub steps: u64,
    /// Of those, steps served from the cache.
    pub cached: u64,
}

/// Sizes and counters of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Cache entries (step keys).
    pub entries: u64,
    /// Artifact files.
    pub artifacts: u64,
    /// Bytes of artifact files.
    pub bytes: u64,
    /// Lookups that found an entry, over the store's life.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Artifacts evicted by the size bound.
    pub evictions: u64,
    /// Runs in the history.
    pub runs: u64,
}

/// What an eviction removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eviction {
    /// The artifacts removed, least recently used first.
    pub artifacts: Vec<Fingerprint>,
    /// Their bytes.
    pub bytes: u64,
    /// Cache entries dropped because they needed one of them.
    pub entries: u64,
}

#[derive(Default)]
struct Pending {
    artifacts: HashMap<Fingerprint, i64>,
    entries: HashMap<Fingerprint, (i64, u64)>,
    hits: u64,
    misses: u64,
}

impl Pending {
    fn len(&self) -> usize {
        self.artifacts.len() + self.entries.len()
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

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn hexes(list: &[Fingerprint]) -> String {
    list.iter()
        .map(Fingerprint::to_hex)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_hexes(s: &str) -> std::result::Result<Vec<Fingerprint>, rusqlite::Error> {
    s.split_ascii_whitespace()
        .map(|h| {
            h.parse::<Fingerprint>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })
        })
        .collect()
}

fn duration_of(ns: i64) -> Duration {
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

    /// A writer for one artifact streamed in pieces; its address is known
    /// at [`commit`](ArtifactWriter::commit).
    ///
    /// ```
    /// use flowyml::incremental::{ArtifactStore, Fingerprint};
    /// use std::io::Write;
    ///
    /// let dir = std::env::temp_dir().join(format!("flowyml-doc-writer-{}", std::process::id()));
    /// let store = ArtifactStore::open(&dir)?;
    /// let mut w = store.writer()?;
    /// w.write_all(b"hello ").unwrap();
    /// w.write_all(b"world").unwrap();
    /// let hash = w.commit()?;
    /// assert_eq!(hash, Fingerprint::of_bytes(b"hello world"));
    /// assert_eq!(store.get_bytes(&hash)?.as_deref(), Some(&b"hello world"[..]));
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub fn writer(&self) -> Result<ArtifactWriter<'_>> {
        loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = self.artifacts.join(format!(
                "{TMP_PREFIX}{}-{n}-{}",
                std::process::id(),
                now_ns()
            ));
            let file = match File::create_new(&tmp) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&tmp, e)),
            };
            file.lock().map_err(|e| Error::io(&tmp, e))?;
            // A sweeper may have removed the file between its creation and
            // our lock; it removes only while holding the lock, so now the
            // file is either ours for good or gone.
            if !tmp.exists() {
                continue;
            }
            let StoreOptions {
                max_artifact_bytes: limit,
                durable,
                ..
            } = self.options();
            return Ok(ArtifactWriter {
                durable,
                store: self,
                file: Some(BufWriter::with_capacity(1 << 20, file)),
                tmp,
                hasher: blake3::Hasher::new(),
                len: 0,
                limit,
            });
        }
    }

    /// Stores `bytes` and returns their address, [`Fingerprint::of_bytes`].
    /// Storing bytes already present only marks them used.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Fingerprint> {
        let hash = Fingerprint::of_bytes(bytes);
        if self.mark_used_if_present(&hash)? {
            return Ok(hash);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|e| Error::io(&w.tmp, e))?;
        w.commit()
    }

    /// Stores the [`codec`](super::codec) encoding of `value`, streamed to
    /// disk; returns its address, which equals [`Fingerprint::of`]`(value)`.
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::Io`], [`Error::Database`].
    pub fn put<T: Serialize + ?Sized>(&self, value: &T) -> Result<Fingerprint> {
        let mut w = self.writer()?;
        codec::encode_into(value, &mut w)?;
        w.commit()
    }

    fn mark_used_if_present(&self, hash: &Fingerprint) -> Result<bool> {
        let db = lock(&self.db);
        let known = db
            .conn
            .prepare_cached("SELECT 1 FROM artifacts WHERE hash = ?1")
            .and_then(|mut s| s.exists([hash.to_hex()]))
            .map_err(|e| db.err(e))?;
        drop(db);
        if known && self.artifact_path(hash).exists() {
            self.touch_artifact(*hash)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes `value`'s encoding to a temporary file, hashed and (if
    /// durable) fsynced, without recording it yet; see
    /// [`commit_entry`](Self::commit_entry).
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::Io`].
    pub fn stage<T: Serialize + ?Sized>(&self, value: &T) -> Result<StagedArtifact<'_>> {
        let mut w = self.writer()?;
        codec::encode_into(value, &mut w)?;
        w.finish()
    }

    /// Like [`stage`](Self::stage) for bytes already encoded.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn stage_bytes(&self, bytes: &[u8]) -> Result<StagedArtifact<'_>> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|e| Error::io(&w.tmp, e))?;
        w.finish()
    }

    /// Records a step's staged outputs and its cache entry in one
    /// transaction (one directory fsync): the cheapest way to store a step.
    /// Returns the outputs' addresses, in order.
    ///
    /// ```
    /// use flowyml::incremental::{ArtifactStore, KeyBuilder};
    /// use std::time::Duration;
    ///
    /// let dir = std::env::temp_dir().join(format!("flowyml-doc-commit-{}", std::process::id()));
    /// let store = ArtifactStore::open(&dir)?;
    /// let key = KeyBuilder::new("split").finish();
    /// let outputs = vec![store.stage(&vec![1_u32, 2])?, store.stage(&vec![3_u32])?];
    /// let hashes = store.commit_entry(&key, "split", outputs, Duration::from_millis(2))?;
    /// assert_eq!(store.lookup(&key)?.unwrap().outputs, hashes);
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn commit_entry(
        &self,
        key: &Fingerprint,
        step: &str,
        outputs: Vec<StagedArtifact<'_>>,
        duration: Duration,
    ) -> Result<Vec<Fingerprint>> {
        self.install_all(outputs, Some((key, step, duration)))
    }

    /// Moves staged files to their addresses and records them (and an
    /// entry), in one write transaction.
    fn install_all(
        &self,
        mut staged: Vec<StagedArtifact<'_>>,
        entry: Option<(&Fingerprint, &str, Duration)>,
    ) -> Result<Vec<Fingerprint>> {
        let hashes: Vec<Fingerprint> = staged.iter().map(|s| s.hash).collect();
        let now = now_ns();
        let StoreOptions {
            max_bytes, durable, ..
        } = self.options();
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        let evicted = db.write(|tx| {
            apply_pending(tx, &pending)?;
            let mut renamed = false;
            for s in &mut staged {
                let path = self.artifact_path(&s.hash);
                let size = i64::try_from(s.len).unwrap_or(i64::MAX);
                let known = exec(
                    tx,
                    "UPDATE artifacts SET last_used_ns = ?2 WHERE hash = ?1 AND size = ?3",
                    params![s.hash.to_hex(), now, size],
                )? > 0;
                if known && path.exists() {
                    continue; // same content already there; the staged file is dropped
                }
                // The lock stays held (the file open) through the rename.
                fs::rename(&s.tmp, &path).map_err(|e| Error::io(&path, e))?;
                s.file = None;
                renamed = true;
                if !known {
                    exec(tx, "DELETE FROM artifacts WHERE hash = ?1", [s.hash.to_hex()])?;
                    exec(
                        tx,
                        "INSERT INTO artifacts(hash, size, created_ns, last_used_ns) VALUES (?1, ?2, ?3, ?3)",
                        params![s.hash.to_hex(), size, now],
                    )?;
                }
            }
            if durable && renamed {
                sync_dir(&self.artifacts)?;
            }
            if let Some((key, step, duration)) = entry {
                insert_entry_in(tx, key, step, &hashes, duration, now)?;
            }
            match max_bytes {
                Some(max) => evict_in(tx, &self.artifacts, max, &hashes),
                None => Ok(Eviction::default()),
            }
        })?;
        drop(db);
        log_eviction(&evicted);
        Ok(hashes)
    }

    /// Whether the store records an artifact at `hash` whose file exists (it
    /// is verified only when read).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn contains(&self, hash: &Fingerprint) -> Result<bool> {
        let db = lock(&self.db);
        let known = db
            .conn
            .prepare_cached("SELECT 1 FROM artifacts WHERE hash = ?1")
            .and_then(|mut s| s.exists([hash.to_hex()]))
            .map_err(|e| db.err(e))?;
        Ok(known && self.artifact_path(hash).exists())
    }

    /// The verified bytes of artifact `hash`; `None` if the store does not
    /// have it.
    ///
    /// # Errors
    /// [`Error::CorruptArtifact`] if the file is larger than
    /// [`StoreOptions::max_artifact_bytes`] or its content does not hash to
    /// its name (it is then removed, so the next read is `None`);
    /// [`Error::Io`], [`Error::Database`].
    pub fn get_bytes(&self, hash: &Fingerprint) -> Result<Option<Vec<u8>>> {
        let path = self.artifact_path(hash);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A row without its file (an interrupted eviction, a power
                // loss, a hand-deleted file): forget it.
                self.forget(hash, false)?;
                return Ok(None);
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let limit = self.options().max_artifact_bytes;
        let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if size > limit {
            return Err(self.corrupt(hash, format!("{size} bytes exceed the bound of {limit}")));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // `take`: a file growing after the size check is still bounded.
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > limit {
            return Err(self.corrupt(hash, format!("more than the bound of {limit} bytes")));
        }
        let actual = Fingerprint::of_bytes(&bytes);
        if actual != *hash {
            return Err(self.corrupt(hash, format!("its {} bytes hash to {actual}", bytes.len())));
        }
        self.touch_artifact(*hash)?;
        Ok(Some(bytes))
    }

    /// The verified, decoded artifact `hash`; `None` if the store does not
    /// have it.
    ///
    /// # Errors
    /// As [`get_bytes`](Self::get_bytes), and [`Error::Decode`].
    pub fn get<T: DeserializeOwned>(&self, hash: &Fingerprint) -> Result<Option<T>> {
        let limit = usize::try_from(self.options().max_artifact_bytes).unwrap_or(usize::MAX);
        match self.get_bytes(hash)? {
            Some(bytes) => codec::decode_with_limit(&bytes, limit).map(Some),
            None => Ok(None),
        }
    }

    fn corrupt(&self, hash: &Fingerprint, reason: String) -> Error {
        let path = self.artifact_path(hash);
        tracing::warn!(%hash, path = %path.display(), %reason, "corrupt artifact removed");
        if let Err(e) = self.forget(hash, true) {
            tracing::warn!(%hash, error = %e, "could not remove a corrupt artifact");
        }
        Error::CorruptArtifact {
            hash: hash.to_hex(),
            path,
            reason,
        }
    }

    /// Drops an artifact's row, the entries needing it and (if asked) its file.
    fn forget(&self, hash: &Fingerprint, remove_file: bool) -> Result<()> {
        let path = self.artifact_path(hash);
        lock(&self.pending).artifacts.remove(hash);
        let mut db = lock(&self.db);
        db.write(|tx| {
            // Under the write lock: a writer that installed the file since
            // our failed open has a valid row; keep it.
            if !remove_file && path.exists() {
                return Ok(());
            }
            drop_artifact(tx, hash)?;
            if remove_file {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e).into()),
                }
            }
            Ok(())
        })
    }

    /// Records that step `step` with cache key `key` produced `outputs`
    /// (already stored), replacing any entry for `key`.
    ///
    /// # Errors
    /// [`Error::MissingArtifact`] if an output is not in the store (e.g.
    /// another process evicted it meanwhile); [`Error::Database`].
    pub fn insert_entry(
        &self,
        key: &Fingerprint,
        step: &str,
        outputs: &[Fingerprint],
        duration: Duration,
    ) -> Result<()> {
        let now = now_ns();
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        db.write(|tx| {
            apply_pending(tx, &pending)?;
            insert_entry_in(tx, key, step, outputs, duration, now)
        })
    }

    /// The cache entry for `key`, if any; counts a hit or a miss. The
    /// outputs are verified when read, not here.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn lookup(&self, key: &Fingerprint) -> Result<Option<CacheEntry>> {
        let found = {
            let db = lock(&self.db);
            db.conn
                .prepare_cached(
                    "SELECT step, outputs, duration_ns, hits FROM entries WHERE key = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([key.to_hex()], |r| {
                        Ok(CacheEntry {
                            key: *key,
                            step: r.get(0)?,
                            outputs: parse_hexes(&r.get::<_, String>(1)?)?,
                            duration: duration_of(r.get(2)?),
                            hits: r.get::<_, i64>(3)? as u64,
                        })
                    })
                    .optional()
                })
                .map_err(|e| db.err(e))?
        };
        let now = now_ns();
        let full = {
            let mut p = lock(&self.pending);
            match &found {
                Some(entry) => {
                    p.hits += 1;
                    let e = p.entries.entry(*key).or_insert((now, 0));
                    *e = (now, e.1 + 1);
                    for out in &entry.outputs {
                        p.artifacts.insert(*out, now);
                    }
                }
                None => p.misses += 1,
            }
            p.len() >= MAX_PENDING_TOUCHES
        };
        if full {
            self.flush()?;
        }
        Ok(found)
    }

    /// Removes the entry for `key` (its artifacts stay until evicted).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn remove_entry(&self, key: &Fingerprint) -> Result<bool> {
        lock(&self.pending).entries.remove(key);
        let mut db = lock(&self.db);
        db.write(|tx| Ok(exec(tx, "DELETE FROM entries WHERE key = ?1", [key.to_hex()])? > 0))
    }

    fn touch_artifact(&self, hash: Fingerprint) -> Result<()> {
        let full = {
            let mut p = lock(&self.pending);
            p.artifacts.insert(hash, now_ns());
            p.len() >= MAX_PENDING_TOUCHES
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered recency and hit counts to the database.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn flush(&self) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.len() == 0 && pending.hits == 0 && pending.misses == 0 {
            return Ok(());
        }
        let mut db = lock(&self.db);
        db.write(|tx| apply_pending(tx, &pending))
    }

    /// Starts a run of `pipeline` in the history.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn begin_run(&self, pipeline: &str) -> Result<RunId> {
        let mut db = lock(&self.db);
        db.write(|tx| {
            exec(
                tx,
                "INSERT INTO runs(pipeline, pid, started_ns, status) VALUES (?1, ?2, ?3, 'running')",
                params![pipeline, std::process::id(), now_ns()],
            )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    /// Records step executions of `run`, in one transaction.
    ///
    /// # Errors
    /// [`Error::Database`] (also for an unknown run).
    pub fn record(&self, run: RunId, steps: &[StepExecution]) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        db.write(|tx| {
            apply_pending(tx, &pending)?;
            let mut ins = tx.prepare_cached(
                "INSERT INTO step_executions(run_id, step, key, outputs, duration_ns, cached) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for s in steps {
                ins.execute(params![
                    run.0,
                    s.step,
                    s.key.to_hex(),
                    hexes(&s.outputs),
                    duration_ns(s.duration),
                    s.cached
                ])?;
            }
            Ok(())
        })
    }

    /// Ends `run` with `status`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        db.write(|tx| {
            apply_pending(tx, &pending)?;
            exec(
                tx,
                "UPDATE runs SET finished_ns = ?2, status = ?3 WHERE id = ?1",
                params![run.0, now_ns(), status.as_str()],
            )?;
            Ok(())
        })
    }

    /// The history of runs, newest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let db = lock(&self.db);
        let mut stmt = db
            .conn
            .prepare_cached(
                "SELECT r.id, r.pipeline, r.pid, r.started_ns, r.finished_ns, r.status,
                        COUNT(s.id), COALESCE(SUM(s.cached), 0)
                 FROM runs r LEFT JOIN step_executions s ON s.run_id = r.id
                 GROUP BY r.id ORDER BY r.id DESC",
            )
            .map_err(|e| db.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let started: i64 = r.get(3)?;
                let finished: Option<i64> = r.get(4)?;
                Ok(RunRecord {
                    id: RunId(r.get(0)?),
                    pipeline: r.get(1)?,
                    pid: r.get(2)?,
                    started: ns_to_time(started),
                    duration: finished.map(|f| duration_of(f - started)),
                    status: RunStatus::parse(&r.get::<_, String>(5)?),
                    steps: r.get::<_, i64>(6)? as u64,
                    cached: r.get::<_, i64>(7)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| db.err(e))?;
        Ok(rows)
    }

    /// The steps recorded for `run`, in recording order.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn run_steps(&self, run: RunId) -> Result<Vec<StepExecution>> {
        let db = lock(&self.db);
        let mut stmt = db
            .conn
            .prepare_cached(
                "SELECT step, key, outputs, duration_ns, cached FROM step_executions WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(|e| db.err(e))?;
        stmt.query_map([run.0], |r| {
            Ok(StepExecution {
                step: r.get(0)?,
                key: parse_hexes(&r.get::<_, String>(1)?)?
                    .first()
                    .copied()
                    .unwrap_or_default(),
                outputs: parse_hexes(&r.get::<_, String>(2)?)?,
                duration: duration_of(r.get(3)?),
                cached: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| db.err(e))
    }

    /// The content fingerprint of an external file, remembering `(canonical
    /// path, size, mtime) → hash` in the database so that an unchanged file is
    /// not read again, in this process or the next.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, [`Error::Database`].
    pub fn file_fingerprint(&self, path: &Path) -> Result<Fingerprint> {
        let stamp = FileStamp::of(path)?;
        // Canonical, so that the memo does not depend on the working
        // directory a process runs in.
        let key = fs::canonicalize(path)
            .map_err(|e| Error::io(path, e))?
            .to_string_lossy()
            .into_owned();
        let mtime = i64::try_from(stamp.mtime_ns).unwrap_or(i64::MAX);
        let size = i64::try_from(stamp.size).unwrap_or(i64::MAX);
        {
            let db = lock(&self.db);
            let known: Option<String> = db
                .conn
                .prepare_cached(
                    "SELECT hash FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![key, size, mtime], |r| r.get(0))
                        .optional()
                })
                .map_err(|e| db.err(e))?;
            if let Some(h) = known
                && let Ok(fp) = h.parse()
            {
                return Ok(fp);
            }
        }
        let (fp, stamp, rememberable) = hash_file_stamped(path)?;
        if rememberable {
            let mut db = lock(&self.db);
            db.write(|tx| {
                exec(
                    tx,
                    "INSERT OR REPLACE INTO files(path, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        key,
                        i64::try_from(stamp.size).unwrap_or(i64::MAX),
                        i64::try_from(stamp.mtime_ns).unwrap_or(i64::MAX),
                        fp.to_hex()
                    ],
                )?;
                Ok(())
            })?;
        }
        Ok(fp)
    }

    /// Sizes and counters (after a [`flush`](Self::flush)).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn stats(&self) -> Result<StoreStats> {
        self.flush()?;
        let db = lock(&self.db);
        let q = |sql: &str| -> Result<u64> {
            db.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|v| v.max(0) as u64)
                .map_err(|e| db.err(e))
        };
        Ok(StoreStats {
            entries: q("SELECT COUNT(*) FROM entries")?,
            artifacts: q("SELECT COUNT(*) FROM artifacts")?,
            bytes: q("SELECT value FROM meta WHERE key = 'bytes'")?,
            hits: q("SELECT value FROM meta WHERE key = 'hits'")?,
            misses: q("SELECT value FROM meta WHERE key = 'misses'")?,
            evictions: q("SELECT value FROM meta WHERE key = 'evictions'")?,
            runs: q("SELECT COUNT(*) FROM runs")?,
        })
    }

    /// Evicts least recently used artifacts (and the entries needing them)
    /// until at most `max_bytes` remain.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn evict_to(&self, max_bytes: u64) -> Result<Eviction> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        let ev = db.write(|tx| {
            apply_pending(tx, &pending)?;
            evict_in(tx, &self.artifacts, max_bytes, &[])
        })?;
        drop(db);
        log_eviction(&ev);
        Ok(ev)
    }

    /// Removes every artifact and cache entry (the run history stays).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn clear(&self) -> Result<()> {
        *lock(&self.pending) = Pending::default();
        let mut db = lock(&self.db);
        db.write(|tx| {
            tx.execute_batch("DELETE FROM entries; DELETE FROM artifacts; DELETE FROM files;")?;
            let entries =
                fs::read_dir(&self.artifacts).map_err(|e| Error::io(&self.artifacts, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&self.artifacts, e))?;
                // Temporary files belong to live writers (or to the sweep).
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(entry.path(), e).into()),
                }
            }
            Ok(())
        })
    }

    /// Checks every recorded artifact against its file (size bound and
    /// hash), removing those that fail; returns the removed addresses.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn verify(&self) -> Result<Vec<Fingerprint>> {
        let hashes: Vec<String> = {
            let db = lock(&self.db);
            let mut stmt = db
                .conn
                .prepare("SELECT hash FROM artifacts ORDER BY hash")
                .map_err(|e| db.err(e))?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| db.err(e))?
        };
        let mut bad = Vec::new();
        for h in hashes {
            let Ok(hash) = h.parse::<Fingerprint>() else {
                continue;
            };
            match self.get_bytes(&hash) {
                Ok(Some(_)) => {}
                Ok(None) | Err(Error::CorruptArtifact { .. }) => bad.push(hash),
                Err(e) => return Err(e),
            }
        }
        Ok(bad)
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

fn apply_pending(tx: &Transaction<'_>, p: &Pending) -> std::result::Result<(), TxError> {
    if p.hits > 0 || p.misses > 0 {
        exec(
            tx,
            "UPDATE meta SET value = value + CASE key WHEN 'hits' THEN ?1 ELSE ?2 END WHERE key IN ('hits', 'misses')",
            params![p.hits as i64, p.misses as i64],
        )?;
    }
    let mut art = tx.prepare_cached(
        "UPDATE artifacts SET last_used_ns = max(last_used_ns, ?2) WHERE hash = ?1",
    )?;
    for (h, t) in &p.artifacts {
        art.execute(params![h.to_hex(), t])?;
    }
    let mut ent = tx.prepare_cached(
        "UPDATE entries SET last_used_ns = max(last_used_ns, ?2), hits = hits + ?3 WHERE key = ?1",
    )?;
    for (k, (t, hits)) in &p.entries {
        ent.execute(params![k.to_hex(), t, *hits as i64])?;
    }
    Ok(())
}

fn drop_artifact(tx: &Transaction<'_>, hash: &Fingerprint) -> std::result::Result<u64, TxError> {
    let h = hash.to_hex();
    let entries = exec(
        tx,
        "DELETE FROM entries WHERE key IN (SELECT key FROM entry_outputs WHERE hash = ?1)",
        [&h],
    )?;
    exec(tx, "DELETE FROM artifacts WHERE hash = ?1", [&h])?;
    Ok(entries as u64)
}

/// Executes a statement through the connection's statement cache: preparing
/// one (and the triggers it fires) costs more than running it.
fn exec(tx: &Transaction<'_>, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

fn insert_entry_in(
    tx: &Transaction<'_>,
    key: &Fingerprint,
    step: &str,
    outputs: &[Fingerprint],
    duration: Duration,
    now: i64,
) -> std::result::Result<(), TxError> {
    for out in outputs {
        let n = exec(
            tx,
            "UPDATE artifacts SET last_used_ns = ?2 WHERE hash = ?1",
            params![out.to_hex(), now],
        )?;
        if n == 0 {
            return Err(Error::MissingArtifact { hash: out.to_hex() }.into());
        }
    }
    let k = key.to_hex();
    exec(tx, "DELETE FROM entries WHERE key = ?1", [&k])?;
    exec(
        tx,
        "INSERT INTO entries(key, step, outputs, duration_ns, created_ns, last_used_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![k, step, hexes(outputs), duration_ns(duration), now],
    )?;
    let mut ins =
        tx.prepare_cached("INSERT OR IGNORE INTO entry_outputs(key, hash) VALUES (?1, ?2)")?;
    for out in outputs {
        ins.execute(params![k, out.to_hex()])?;
    }
    Ok(())
}

/// Evicts least recently used artifacts, never those in `keep`, until at
/// most `max_bytes` remain (or only kept ones do).
fn evict_in(
    tx: &Transaction<'_>,
    dir: &Path,
    max_bytes: u64,
    keep: &[Fingerprint],
) -> std::result::Result<Eviction, TxError> {
    let mut ev = Eviction::default();
    let total: i64 = tx.query_row("SELECT value FROM meta WHERE key = 'bytes'", [], |r| {
        r.get(0)
    })?;
    let total = total.max(0) as u64;
    if total <= max_bytes {
        return Ok(ev);
    }
    let keep: std::collections::HashSet<String> = keep.iter().map(Fingerprint::to_hex).collect();
    let mut victims = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT hash, size FROM artifacts ORDER BY last_used_ns, rowid")?;
        let mut rows = stmt.query([])?;
        let mut freed = 0_u64;
        while total - freed > max_bytes {
            let Some(row) = rows.next()? else { break };
            let h: String = row.get(0)?;
            if keep.contains(&h) {
                continue;
            }
            let size = row.get::<_, i64>(1)?.max(0) as u64;
            freed += size;
            victims.push((h, size));
        }
    }
    for (h, size) in victims {
        let hash: Fingerprint = h.parse()?;
        ev.entries += drop_artifact(tx, &hash)?;
        let path = dir.join(&h);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e).into()),
        }
        ev.bytes += size;
        ev.artifacts.push(hash);
    }
    if !ev.artifacts.is_empty() {
        exec(
            tx,
            "UPDATE meta SET value = value + ?1 WHERE key = 'evictions'",
            [ev.artifacts.len() as i64],
        )?;
    }
    Ok(ev)
}

fn log_eviction(ev: &Eviction) {
    if !ev.artifacts.is_empty() {
        tracing::debug!(
            artifacts = ev.artifacts.len(),
            bytes = ev.bytes,
            entries = ev.entries,
            "evicted"
        );
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Makes the rename durable; directories cannot be opened for syncing on
    // every platform, and the rename itself is what makes the write atomic.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes one artifact in pieces (implements [`Write`]); nothing is visible
/// in the store until [`commit`](Self::commit). Dropped without a commit,
/// it removes its temporary file.
pub struct ArtifactWriter<'s> {
    store: &'s ArtifactStore,
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    hasher: blake3::Hasher,
    len: u64,
    limit: u64,
    durable: bool,
}

impl<'s> ArtifactWriter<'s> {
    /// The bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the artifact durable and visible at its address, which it
    /// returns.
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file, [`Error::Database`].
    pub fn commit(self) -> Result<Fingerprint> {
        let store = self.store;
        let staged = self.finish()?;
        let hash = staged.hash;
        store.install_all(vec![staged], None)?;
        Ok(hash)
    }

    /// Finishes writing (hash, fsync if durable) without recording the
    /// artifact; see [`ArtifactStore::commit_entry`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub fn finish(mut self) -> Result<StagedArtifact<'s>> {
        let file = self.file.take().expect("present until commit or drop");
        let tmp = std::mem::take(&mut self.tmp);
        let file = match file.into_inner() {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(&tmp, e.into_error()));
            }
        };
        let staged = StagedArtifact {
            store: self.store,
            hash: Fingerprint::from_bytes(*self.hasher.finalize().as_bytes()),
            len: self.len,
            file: Some(file),
            tmp,
        };
        if self.durable {
            let file = staged.file.as_ref().expect("just set");
            file.sync_all().map_err(|e| Error::io(&staged.tmp, e))?;
        }
        Ok(staged)
    }
}

/// An artifact written to a temporary file and hashed, not yet in the
/// store: made by [`ArtifactStore::stage`] or [`ArtifactWriter::finish`],
/// recorded by [`ArtifactStore::commit_entry`]. Dropped uncommitted, it
/// removes its file.
pub struct StagedArtifact<'s> {
    store: &'s ArtifactStore,
    hash: Fingerprint,
    tmp: PathBuf,
    len: u64,
    /// Open (and locked) until the file is renamed into place.
    file: Option<File>,
}

impl StagedArtifact<'_> {
    /// The address it will have.
    pub fn hash(&self) -> Fingerprint {
        self.hash
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for StagedArtifact<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for StagedArtifact<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedArtifact")
            .field("hash", &self.hash)
            .field("len", &self.len)
            .field("store", &self.store.dir)
            .finish()
    }
}

impl Write for ArtifactWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other(format!(
                "artifact exceeds the bound of {} bytes",
                self.limit
            )));
        }
        let file = self.file.as_mut().expect("present until commit or drop");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("present until commit or drop")
            .flush()
    }
}

impl Drop for ArtifactWriter<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for ArtifactWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactWriter")
            .field("tmp", &self.tmp)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

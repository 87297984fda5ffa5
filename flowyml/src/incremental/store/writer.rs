//! [`ArtifactWriter`] and [`StagedArtifact`]: an artifact on its way into the store.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use rusqlite::{Transaction, params};

use super::dir::{ArtifactStore, StoreOptions, TMP_PREFIX, sync_dir};
use super::entries::{Eviction, Outputs, evict_in, insert_entry_in, log_eviction};
use super::pending::apply_pending;
use crate::error::{Error, Result};
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{TxError, exec, now_ns};
use crate::sync::lock;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ArtifactStore {
    /// Stores a step's encoded outputs and its entry at once, in one
    /// transaction, for a runner outside the process (`cache serve`),
    /// whose steps finish far apart: small outputs in their rows, larger
    /// ones in files (fsynced if the store is durable).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    #[cfg(feature = "cli")]
    pub(crate) fn commit_encoded(
        &self,
        key: &Fingerprint,
        step: &str,
        outputs: &[Vec<u8>],
        duration: Duration,
    ) -> Result<Vec<Fingerprint>> {
        let durable = self.options().durable;
        let staged = outputs
            .iter()
            .map(|b| self.stage_small_or_file(b, durable))
            .collect::<Result<Vec<_>>>()?;
        self.install_all(staged, Some((key, step, duration)))
    }

    /// Stages `bytes` for the database if they are small ([`INLINE_MAX`]),
    /// else in a temporary file, fsynced if `durable`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(super) fn stage_small_or_file(
        &self,
        bytes: &[u8],
        durable: bool,
    ) -> Result<StagedArtifact<'_>> {
        if bytes.len() <= INLINE_MAX {
            Ok(StagedArtifact::inline(self, bytes))
        } else {
            self.stage_bytes_with(bytes, durable)
        }
    }

    /// Writes already encoded bytes to a temporary file, hashed, and
    /// fsynced if `durable`, without recording them yet: a run's writes are
    /// made durable once, at its end (see [`RunWriter`](super::RunWriter)).
    pub(super) fn stage_bytes_with(
        &self,
        bytes: &[u8],
        durable: bool,
    ) -> Result<StagedArtifact<'_>> {
        let mut w = self.writer()?;
        w.durable = durable;
        w.write_all(bytes).map_err(|e| Error::io(&w.tmp, e))?;
        w.finish()
    }

    /// Moves staged files to their addresses and records them (and an
    /// entry), in one write transaction.
    pub(super) fn install_all(
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
            let renamed = self.install_in(tx, &mut staged, now)?;
            if durable && renamed {
                sync_dir(&self.artifacts)?;
            }
            if let Some((key, step, duration)) = entry {
                insert_entry_in(tx, key, step, &hashes, duration, now, Outputs::Installed)?;
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

    /// Inside a write transaction: moves staged files to their addresses
    /// and gives each a row; returns whether any file was renamed (the
    /// directory then changed).
    pub(super) fn install_in(
        &self,
        tx: &Transaction<'_>,
        staged: &mut [StagedArtifact<'_>],
        now: i64,
    ) -> std::result::Result<bool, TxError> {
        let mut renamed = false;
        for s in staged {
            let size = i64::try_from(s.len).unwrap_or(i64::MAX);
            if let Some(data) = s.inline.take() {
                // One statement: a new row, or the known one marked used
                // and given the bytes. A known row may stand for a file
                // that is gone (deleted, or lost with a power loss): the
                // row then keeps the bytes itself, or its entry would be a
                // miss forever.
                exec(
                    tx,
                    "INSERT INTO artifacts(hash, size, created_ns, last_used_ns, data) VALUES (?1, ?2, ?3, ?3, ?4)
                     ON CONFLICT(hash) DO UPDATE SET last_used_ns = excluded.last_used_ns, data = excluded.data",
                    params![s.hash.to_hex(), size, now, data],
                )?;
                continue;
            }
            let path = self.artifact_path(&s.hash);
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
                exec(
                    tx,
                    "DELETE FROM artifacts WHERE hash = ?1",
                    [s.hash.to_hex()],
                )?;
                exec(
                    tx,
                    "INSERT INTO artifacts(hash, size, created_ns, last_used_ns) VALUES (?1, ?2, ?3, ?3)",
                    params![s.hash.to_hex(), size, now],
                )?;
            }
        }
        Ok(renamed)
    }

    /// A writer for one artifact streamed in pieces; its address is known
    /// at [`commit`](ArtifactWriter::commit).
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub(crate) fn writer(&self) -> Result<ArtifactWriter<'_>> {
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
}

/// Writes one artifact in pieces (implements [`Write`]); nothing is visible
/// in the store until [`commit`](Self::commit). Dropped without a commit,
/// it removes its temporary file.
pub(crate) struct ArtifactWriter<'s> {
    pub(super) store: &'s ArtifactStore,
    pub(super) file: Option<BufWriter<File>>,
    pub(super) tmp: PathBuf,
    pub(super) hasher: blake3::Hasher,
    pub(super) len: u64,
    pub(super) limit: u64,
    pub(super) durable: bool,
}

impl<'s> ArtifactWriter<'s> {
    /// Makes the artifact durable and visible at its address, which it
    /// returns.
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file, [`Error::Database`].
    pub(crate) fn commit(self) -> Result<Fingerprint> {
        let store = self.store;
        let staged = self.finish()?;
        let hash = staged.hash;
        store.install_all(vec![staged], None)?;
        Ok(hash)
    }

    /// Finishes writing (hash, fsync if durable) without recording the
    /// artifact; see [`RunWriter::commit_entry`](super::RunWriter::commit_entry).
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub(crate) fn finish(mut self) -> Result<StagedArtifact<'s>> {
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
            inline: None,
        };
        if self.durable {
            let file = staged.file.as_ref().expect("just set");
            file.sync_all().map_err(|e| Error::io(&staged.tmp, e))?;
        }
        Ok(staged)
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

/// An artifact written to a temporary file and hashed, not yet in the
/// store: made by [`ArtifactStore::stage_bytes_with`] or [`ArtifactWriter::finish`],
/// recorded by [`RunWriter::commit_entry`](super::RunWriter::commit_entry). Dropped uncommitted, it
/// removes its file.
pub(crate) struct StagedArtifact<'s> {
    pub(super) store: &'s ArtifactStore,
    pub(super) hash: Fingerprint,
    pub(super) tmp: PathBuf,
    pub(super) len: u64,
    /// Open (and locked) until the file is renamed into place.
    pub(super) file: Option<File>,
    /// A small artifact's bytes, kept in the database instead of a file
    /// (then `file` is `None` and `tmp` empty).
    pub(super) inline: Option<Vec<u8>>,
}

/// The largest artifact a run keeps in the database rather than in a file
/// of its own. Creating a file is the dearest part of storing a small
/// output (370 µs a create under `strace -c`, in a directory of 3,000 on
/// this project's overlay filesystem), a row a few microseconds: the
/// outputs of most steps are this small.
const INLINE_MAX: usize = 16 << 10;

impl<'s> StagedArtifact<'s> {
    /// `bytes`, to be kept in the database.
    pub(super) fn inline(store: &'s ArtifactStore, bytes: &[u8]) -> Self {
        StagedArtifact {
            store,
            hash: Fingerprint::of_bytes(bytes),
            tmp: PathBuf::new(),
            len: bytes.len() as u64,
            file: None,
            inline: Some(bytes.to_vec()),
        }
    }

    /// Whether it is kept in the database.
    pub(super) fn is_inline(&self) -> bool {
        self.inline.is_some()
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

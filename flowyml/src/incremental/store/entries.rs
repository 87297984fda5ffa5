//! Cache entries, their lookups, the LRU bound and the store's counters.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, params};

use super::dir::{ArtifactStore, TMP_PREFIX};
use super::pending::{self, MAX_PENDING_TOUCHES, Pending, apply_pending};
use crate::error::{Error, Result};
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{
    TxError, duration_ns, duration_of, exec, hexes, now_ns, parse_hexes,
};
use crate::sync::lock;

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

impl ArtifactStore {
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
            insert_entry_in(tx, key, step, outputs, duration, now, Outputs::Stored)
        })
    }

    /// The cache entry for `key`, if any; counts a hit or a miss. The
    /// outputs are verified when read, not here: a read that finds an output
    /// gone (evicted by another process meanwhile) or corrupt is a miss, and
    /// the step reruns.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn lookup(&self, key: &Fingerprint) -> Result<Option<CacheEntry>> {
        let row = {
            let db = lock(&self.db);
            db.conn
                .prepare_cached(
                    "SELECT step, outputs, duration_ns, hits, seal FROM entries WHERE key = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([key.to_hex()], |r| {
                        Ok((
                            CacheEntry {
                                key: *key,
                                step: r.get(0)?,
                                outputs: parse_hexes(&r.get::<_, String>(1)?)?,
                                duration: duration_of(r.get(2)?),
                                hits: r.get::<_, i64>(3)? as u64,
                            },
                            r.get::<_, String>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(|e| db.err(e))?
        };
        let found = match row {
            Some((entry, seal)) if seal == entry_seal(key, &entry.step, &entry.outputs) => {
                Some(entry)
            }
            Some((entry, _)) => {
                // Edited or half-written: its outputs may be another
                // entry's. A miss, and gone, so that the step's rerun
                // writes a sound one.
                tracing::warn!(step = %entry.step, %key, "a cache entry does not match its seal; removed and recomputed");
                self.remove_entry(key)?;
                None
            }
            None => None,
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

    pub(super) fn touch_artifact(&self, hash: Fingerprint) -> Result<()> {
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
        pending::flush(&self.pending, &self.db)
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
}

pub(super) fn drop_artifact(
    tx: &Transaction<'_>,
    hash: &Fingerprint,
) -> std::result::Result<u64, TxError> {
    let h = hash.to_hex();
    let entries = exec(
        tx,
        "DELETE FROM entries WHERE key IN (SELECT key FROM entry_outputs WHERE hash = ?1)",
        [&h],
    )?;
    exec(tx, "DELETE FROM artifacts WHERE hash = ?1", [&h])?;
    Ok(entries as u64)
}

/// Where an entry's outputs come from, for [`insert_entry_in`].
pub(super) enum Outputs {
    /// Installed in the same transaction: known to have rows.
    Installed,
    /// Stored before, maybe by another process, maybe evicted since:
    /// checked (and marked used).
    Stored,
}

pub(super) fn insert_entry_in(
    tx: &Transaction<'_>,
    key: &Fingerprint,
    step: &str,
    outputs: &[Fingerprint],
    duration: Duration,
    now: i64,
    origin: Outputs,
) -> std::result::Result<(), TxError> {
    if let Outputs::Stored = origin {
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
    }
    let k = key.to_hex();
    exec(tx, "DELETE FROM entries WHERE key = ?1", [&k])?;
    exec(
        tx,
        "INSERT INTO entries(key, step, outputs, duration_ns, created_ns, last_used_ns, seal) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![
            k,
            step,
            hexes(outputs),
            duration_ns(duration),
            now,
            entry_seal(key, step, outputs)
        ],
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
pub(super) fn evict_in(
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

pub(super) fn log_eviction(ev: &Eviction) {
    if !ev.artifacts.is_empty() {
        tracing::debug!(
            artifacts = ev.artifacts.len(),
            bytes = ev.bytes,
            entries = ev.entries,
            "evicted"
        );
    }
}

/// What binds an entry's row to its contents: a hash of its key, its step
/// and its outputs in order, written with the row and checked on every
/// lookup. Each artifact is checked against its own hash when read, but
/// only this tells that a row points at the artifacts it was written with:
/// a row whose outputs were swapped with another entry's (by hand, or a
/// tool that rewrote the database) reads as a miss, never as the other
/// step's data.
fn entry_seal(key: &Fingerprint, step: &str, outputs: &[Fingerprint]) -> String {
    let mut h = blake3::Hasher::new_derive_key("flowyml cache entry seal v1");
    h.update(key.as_bytes());
    h.update(&(step.len() as u64).to_le_bytes());
    h.update(step.as_bytes());
    for out in outputs {
        h.update(out.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

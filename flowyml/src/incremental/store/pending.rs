//! Recency and hit counts, buffered: lookups and reads are database reads,
//! and what they imply for the LRU bound and the counters is written in one
//! transaction with the next write, a flush, or the store's drop.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{MetaDb, TxError, exec};
use crate::sync::lock;

/// Touches buffered before a write; beyond this many, they are flushed.
pub(super) const MAX_PENDING_TOUCHES: usize = 4096;

#[derive(Default)]
pub(super) struct Pending {
    pub(super) artifacts: HashMap<Fingerprint, i64>,
    pub(super) entries: HashMap<Fingerprint, (i64, u64)>,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.artifacts.len() + self.entries.len()
    }
}

pub(super) fn apply_pending(tx: &Transaction<'_>, p: &Pending) -> std::result::Result<(), TxError> {
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

/// Writes what `pending` buffered to `db`.
pub(super) fn flush(pending: &Mutex<Pending>, db: &Mutex<MetaDb>) -> Result<()> {
    let pending = std::mem::take(&mut *lock(pending));
    if pending.len() == 0 && pending.hits == 0 && pending.misses == 0 {
        return Ok(());
    }
    let mut db = lock(db);
    // A read-only cache keeps no recency: nothing it serves can be evicted
    // by it either.
    if db.read_only {
        return Ok(());
    }
    db.write(|tx| apply_pending(tx, &pending))
}

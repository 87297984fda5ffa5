//! The store's metadata database: SQLite (bundled), in WAL mode so that
//! readers never wait for a writer and several processes can share it.
//!
//! Every write happens in a `BEGIN IMMEDIATE` transaction, which takes the
//! database's write lock up front (waiting up to the busy timeout), so two
//! processes never interleave the check and the update of a write; the
//! store also renames and removes artifact files inside that transaction,
//! which orders file changes across processes the same way.
//!
//! `synchronous = NORMAL`: a killed process loses nothing committed; a power
//! loss may lose the last transactions but never corrupts the database (and
//! an artifact row whose file is gone reads as a miss).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::fingerprint::Fingerprint;
use crate::error::{Error, Result};

pub(crate) const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES
    ('schema', 3), ('bytes', 0), ('hits', 0), ('misses', 0), ('evictions', 0);
CREATE TABLE IF NOT EXISTS artifacts(
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL,
    data BLOB);
CREATE TRIGGER IF NOT EXISTS artifacts_bytes_ins AFTER INSERT ON artifacts
    BEGIN UPDATE meta SET value = value + NEW.size WHERE key = 'bytes'; END;
CREATE TRIGGER IF NOT EXISTS artifacts_bytes_del AFTER DELETE ON artifacts
    BEGIN UPDATE meta SET value = value - OLD.size WHERE key = 'bytes'; END;
CREATE TABLE IF NOT EXISTS entries(
    key TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    outputs TEXT NOT NULL,
    duration_ns INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    seal TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS entry_outputs(
    key TEXT NOT NULL REFERENCES entries(key) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    PRIMARY KEY(key, hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entry_outputs_hash ON entry_outputs(hash);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_ns INTEGER NOT NULL,
    finished_ns INTEGER,
    status TEXT NOT NULL,
    origin TEXT);
CREATE TABLE IF NOT EXISTS step_executions(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step TEXT NOT NULL,
    key TEXT NOT NULL,
    outputs TEXT NOT NULL,
    duration_ns INTEGER NOT NULL,
    cached INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS step_executions_run ON step_executions(run_id);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    ctime_ns INTEGER NOT NULL DEFAULT 0,
    inode INTEGER NOT NULL DEFAULT 0,
    device INTEGER NOT NULL DEFAULT 0);
";

pub(crate) struct MetaDb {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    /// Opened read-only (the cache's directory cannot be written): reads
    /// work, [`write`](Self::write) refuses.
    pub(crate) read_only: bool,
}

/// How [`MetaDb::open`] found the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opened {
    /// As it was (or created).
    Sound,
    /// Damaged: moved aside (a warning names where) and created anew.
    Rebuilt,
}

impl MetaDb {
    /// Opens (creating if needed) the database at `path`. A file that is
    /// not a database, or a damaged one, is moved aside and replaced: the
    /// index is itself a cache of what the artifacts' runs produced. Where
    /// the directory cannot be written, the database is opened read-only.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<(Self, Opened)> {
        if !writable(path) {
            return Ok((Self::open_read_only(path, busy_timeout)?, Opened::Sound));
        }
        match Self::open_writable(path, busy_timeout) {
            Err(Error::Database { source, .. }) if is_damaged(&source) => {
                move_aside(path, &source)?;
                Ok((Self::open_writable(path, busy_timeout)?, Opened::Rebuilt))
            }
            other => other.map(|db| (db, Opened::Sound)),
        }
    }

    /// Opens an existing database for reading only: with its WAL where
    /// SQLite can map it, else as an immutable file (a read-only
    /// directory whose last writer checkpointed and removed its WAL).
    fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Self> {
        let err = |source| Error::Database {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let probe = |conn: Connection| {
            conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| (conn, v))
        };
        let (conn, version) = Connection::open_with_flags(path, flags)
            .and_then(probe)
            .or_else(|_| {
                let uri = format!("file:{}?immutable=1", path.display());
                Connection::open_with_flags(uri, flags).and_then(probe)
            })
            .map_err(err)?;
        if version != SCHEMA_VERSION {
            return Err(err(rusqlite::Error::ToSqlConversionFailure(
                format!("schema version {version}, this flowyml reads {SCHEMA_VERSION} (and cannot upgrade a read-only cache)").into(),
            )));
        }
        conn.busy_timeout(busy_timeout).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        tracing::info!(path = %path.display(), "the cache is read-only: hits are served, new results are not stored");
        Ok(MetaDb {
            conn,
            path: path.to_owned(),
            read_only: true,
        })
    }

    fn open_writable(path: &Path, busy_timeout: Duration) -> Result<Self> {
        let err = |source| Error::Database {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(busy_timeout).map_err(err)?;
        // Room for every statement the store runs, so none is prepared twice.
        conn.set_prepared_statement_cache_capacity(64);
        // Switching to WAL needs a moment of exclusive access, and SQLite
        // does not always call the busy handler for it; retry until the
        // timeout when another process holds the database.
        let deadline = Instant::now() + busy_timeout;
        loop {
            match conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            {
                Ok(_) => break,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut db = MetaDb {
            conn,
            path: path.to_owned(),
            read_only: false,
        };
        db.write(|tx| {
            tx.execute_batch(SCHEMA)?;
            let mut v: i64 =
                tx.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                    r.get(0)
                })?;
            if v == 1 {
                // Version 2 records who started each run (see `RunStatus`).
                tx.execute_batch(
                    "ALTER TABLE runs ADD COLUMN origin TEXT;
                     UPDATE meta SET value = 2 WHERE key = 'schema';",
                )?;
                v = 2;
            }
            if v == 2 {
                // Version 3 keeps small artifacts in the database (`data`)
                // and seals each entry (see `entry_seal`): entries of
                // version 2 have no seal and read as misses. The recency
                // index goes: every write and every hit paid for it, and
                // only an eviction (rare, and over the bound) reads it. Files are
                // remembered by ctime, inode and device too; the old
                // memos, by size and mtime alone, are dropped.
                tx.execute_batch(
                    "ALTER TABLE artifacts ADD COLUMN data BLOB;
                     DROP INDEX IF EXISTS artifacts_lru;
                     ALTER TABLE entries ADD COLUMN seal TEXT NOT NULL DEFAULT '';
                     ALTER TABLE files ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;
                     ALTER TABLE files ADD COLUMN inode INTEGER NOT NULL DEFAULT 0;
                     ALTER TABLE files ADD COLUMN device INTEGER NOT NULL DEFAULT 0;
                     DELETE FROM files;
                     UPDATE meta SET value = 3 WHERE key = 'schema';",
                )?;
                v = 3;
            }
            if v != SCHEMA_VERSION {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("schema version {v}, this flowyml reads {SCHEMA_VERSION}").into(),
                )
                .into());
            }
            Ok(())
        })?;
        Ok(db)
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> Error {
        Error::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in an immediate (write-locked) transaction and commits.
    pub(crate) fn write<R>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> std::result::Result<R, TxError>,
    ) -> Result<R> {
        let path = self.path.clone();
        let err = |source| Error::Database {
            path: path.clone(),
            source,
        };
        if self.read_only {
            return Err(Error::ReadOnlyCache { path });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = f(&tx).map_err(|e| match e {
            TxError::Db(source) => err(source),
            TxError::Other(e) => e,
        })?;
        tx.commit().map_err(err)?;
        Ok(out)
    }
}

/// An error inside a transaction: SQLite's, or one of ours (an I/O error on
/// an artifact file) that must also roll the transaction back.
pub(crate) enum TxError {
    Db(rusqlite::Error),
    Other(Error),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Other(e)
    }
}

/// Whether the database's directory can be written (new files created):
/// what a writable SQLite database in WAL mode needs. A missing database
/// in a writable directory is writable: it is created.
fn writable(path: &Path) -> bool {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    #[cfg(unix)]
    {
        rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
            && (!path.exists() || rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok())
    }
    #[cfg(not(unix))]
    {
        !std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
    }
}

/// Whether `e` says the file is not a database, or a damaged one.
fn is_damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Moves a damaged database (and its WAL and shared-memory files) aside,
/// to `meta.sqlite.corrupt-<nanoseconds>`, saying so once.
fn move_aside(path: &Path, cause: &rusqlite::Error) -> Result<()> {
    let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_ns()));
    std::fs::rename(path, &aside).map_err(|e| Error::io(path, e))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(&side, &to).map_err(|e| Error::io(&side, e))?;
        }
    }
    tracing::warn!(
        moved_to = %aside.display(),
        cause = %cause,
        "the cache's index {} was damaged: moved aside and rebuilt empty; cached results are recomputed",
        path.display()
    );
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Nanoseconds since the Unix epoch, saturating (good until 2262).
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn ns_to_time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

pub(crate) fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A duration stored by [`duration_ns`].
pub(crate) fn duration_of(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Executes a statement through the connection's statement cache: preparing
/// one (and the triggers it fires) costs more than running it.
pub(crate) fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// Fingerprints as one column: hex, separated by spaces.
pub(crate) fn hexes(list: &[Fingerprint]) -> String {
    list.iter()
        .map(Fingerprint::to_hex)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A column written by [`hexes`].
pub(crate) fn parse_hexes(s: &str) -> std::result::Result<Vec<Fingerprint>, rusqlite::Error> {
    s.split_ascii_whitespace()
        .map(|h| {
            h.parse::<Fingerprint>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })
        })
        .collect()
}

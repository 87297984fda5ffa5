//! The history: runs and the step executions recorded for them.

use std::time::{Duration, SystemTime};

use rusqlite::params;

use super::entries::apply_pending;
use super::entries::exec;
use super::{ArtifactStore, duration_of, hexes, lock, parse_hexes};
use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{duration_ns, now_ns, ns_to_time};

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
    /// Not finished, and its process is alive (or, off Linux, not known to
    /// be dead).
    Running,
    /// Not finished, and its process is gone: killed or crashed mid-run.
    /// Whatever it committed before is in the store and verified on read.
    Interrupted,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Running,
        }
    }

    /// A run's status as recorded, corrected for a process that died before
    /// finishing the run.
    fn observed(recorded: RunStatus, pid: u32) -> Self {
        if recorded == RunStatus::Running && process_alive(pid) == Some(false) {
            RunStatus::Interrupted
        } else {
            recorded
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether process `pid` exists, where the system can tell (Linux's
/// `/proc`); `None` elsewhere. A reused pid reads as alive, so a run is
/// never called interrupted while its process runs.
fn process_alive(pid: u32) -> Option<bool> {
    let proc = std::path::Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
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

impl ArtifactStore {
    /// Starts a run of `pipeline` in the history.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database).
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
    /// [`Error::Database`](crate::Error::Database) (also for an unknown run).
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
    /// [`Error::Database`](crate::Error::Database).
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
    /// [`Error::Database`](crate::Error::Database).
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
                let pid = r.get(2)?;
                Ok(RunRecord {
                    id: RunId(r.get(0)?),
                    pipeline: r.get(1)?,
                    pid,
                    started: ns_to_time(started),
                    duration: finished.map(|f| duration_of(f - started)),
                    status: RunStatus::observed(RunStatus::parse(&r.get::<_, String>(5)?), pid),
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
    /// [`Error::Database`](crate::Error::Database).
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
}

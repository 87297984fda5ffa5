//! The history: runs and the step executions recorded for them.

use std::time::{Duration, SystemTime};

use rusqlite::params;

use super::dir::ArtifactStore;
use super::pending::apply_pending;
use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::{
    TxError, duration_ns, duration_of, exec, hexes, now_ns, ns_to_time, parse_hexes,
};
use crate::sync::lock;

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
#[non_exhaustive]
pub enum RunStatus {
    /// Not finished, and its process is alive or not known to be dead.
    Running,
    /// Not finished, and the process that started it is gone: killed or
    /// crashed mid-run. Whatever it committed is in the store and verified
    /// on read. Only said where the store can tell: the run was started on
    /// this machine since its last boot, in the same process namespace (so
    /// not from another container or host sharing the cache directory), on
    /// Linux; a reused pid is told apart by the process's start time.
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
    fn observed(recorded: RunStatus, pid: u32, origin: Option<&str>) -> Self {
        match (recorded, origin) {
            (RunStatus::Running, Some(origin))
                if Origin::parse(origin).is_some_and(|o| o.is_gone(pid)) =>
            {
                RunStatus::Interrupted
            }
            _ => recorded,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who started a run, recorded with it: the boot, the pid namespace and
/// the process's start time, read from Linux's `/proc` (absent elsewhere).
/// A pid means the same process only under the same boot and namespace,
/// and with the same start time.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    boot: String,
    namespace: String,
    started: u64,
}

impl Origin {
    /// The current process's origin, where `/proc` gives it.
    fn current() -> Option<Origin> {
        Some(Origin {
            boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()?
                .trim()
                .to_owned(),
            namespace: std::fs::read_link("/proc/self/ns/pid")
                .ok()?
                .display()
                .to_string(),
            started: process_start(std::process::id())?.1,
        })
    }

    fn parse(text: &str) -> Option<Origin> {
        let mut parts = text.splitn(3, '|');
        Some(Origin {
            boot: parts.next()?.to_owned(),
            namespace: parts.next()?.to_owned(),
            started: parts.next()?.parse().ok()?,
        })
    }

    fn to_text(&self) -> String {
        format!("{}|{}|{}", self.boot, self.namespace, self.started)
    }

    /// Whether process `pid`, which started a run with this origin, is
    /// known to be gone: same boot and namespace as ours, and no live
    /// process with that pid and start time (a zombie is gone).
    fn is_gone(&self, pid: u32) -> bool {
        let Some(here) = Origin::current() else {
            return false;
        };
        if (&self.boot, &self.namespace) != (&here.boot, &here.namespace) {
            return false;
        }
        match process_start(pid) {
            None => true,
            Some((state, started)) => state == 'Z' || started != self.started,
        }
    }
}

/// The state letter and start time (clock ticks since boot) of process
/// `pid`, from `/proc/<pid>/stat`; `None` if there is no such process.
fn process_start(pid: u32) -> Option<(char, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name may hold spaces and parentheses: fields are counted
    // from the last `)`, after which come the state (field 3) and, 19
    // fields on, the start time (field 22).
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
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
    pub(crate) fn begin_run(&self, pipeline: &str) -> Result<RunId> {
        let mut db = lock(&self.db);
        db.write(|tx| {
            exec(
                tx,
                "INSERT INTO runs(pipeline, pid, started_ns, status, origin) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![
                    pipeline,
                    std::process::id(),
                    now_ns(),
                    Origin::current().map(|o| o.to_text())
                ],
            )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    /// Records step executions of `run`, in one transaction (a runner
    /// outside the process; a pipeline's run records through its
    /// [`RunWriter`](super::RunWriter)).
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) (also for an unknown run).
    #[cfg(feature = "cli")]
    pub(crate) fn record(&self, run: RunId, steps: &[StepExecution]) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut db = lock(&self.db);
        db.write(|tx| {
            apply_pending(tx, &pending)?;
            insert_steps_in(tx, run, steps)
        })
    }

    /// Ends `run` with `status`, and drops the runs beyond
    /// [`StoreOptions::keep_runs`](super::StoreOptions::keep_runs).
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database).
    pub(crate) fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let keep = self.options().keep_runs;
        let mut db = lock(&self.db);
        db.write(|tx| {
            apply_pending(tx, &pending)?;
            exec(
                tx,
                "UPDATE runs SET finished_ns = ?2, status = ?3 WHERE id = ?1",
                params![run.0, now_ns(), status.as_str()],
            )?;
            if let Some(keep) = keep {
                prune_in(tx, keep)?;
            }
            Ok(())
        })
    }

    /// Drops all but the latest `keep` runs from the history, with their
    /// step records; returns how many were dropped. The cache's entries and
    /// artifacts are not touched.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database),
    /// [`Error::ReadOnlyCache`](crate::Error::ReadOnlyCache).
    pub fn prune_runs(&self, keep: u64) -> Result<u64> {
        lock(&self.db).write(|tx| prune_in(tx, keep))
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
                        COUNT(s.id), COALESCE(SUM(s.cached), 0), r.origin
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
                    status: RunStatus::observed(
                        RunStatus::parse(&r.get::<_, String>(5)?),
                        pid,
                        r.get::<_, Option<String>>(8)?.as_deref(),
                    ),
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

/// Inserts `steps` as step records of `run`, inside a write transaction.
pub(super) fn insert_steps_in(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    steps: &[StepExecution],
) -> std::result::Result<(), TxError> {
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
}

/// Deletes the runs older than the latest `keep` (their step records go
/// with them, by the foreign key's cascade).
fn prune_in(tx: &rusqlite::Transaction<'_>, keep: u64) -> std::result::Result<u64, TxError> {
    let n = exec(
        tx,
        "DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1)",
        [i64::try_from(keep).unwrap_or(i64::MAX)],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::{Origin, parse_stat};

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4321 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 99";
        assert_eq!(parse_stat(stat), Some(('S', 424_242)));
        assert_eq!(parse_stat("4321 (cut"), None);
    }

    #[test]
    fn only_a_process_known_to_be_gone_is_gone() {
        let Some(here) = Origin::current() else {
            println!("skipped: /proc does not say who this process is here");
            return;
        };
        assert_eq!(Origin::parse(&here.to_text()).as_ref(), Some(&here));
        let me = std::process::id();
        assert!(!here.is_gone(me), "this process is alive");
        let reused = Origin {
            started: here.started + 1,
            ..Origin::parse(&here.to_text()).expect("parses")
        };
        assert!(reused.is_gone(me), "same pid, another start time");
        // Above the kernel's largest pid (2^22), so no such process.
        assert!(here.is_gone(1 << 23));
        let elsewhere = Origin {
            boot: "another-machine".into(),
            ..Origin::parse(&here.to_text()).expect("parses")
        };
        assert!(!elsewhere.is_gone(1 << 23), "cannot tell for another boot");
    }
}

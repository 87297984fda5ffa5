//! The store's own tests: what a crash, a concurrent process or a bound
//! does to it, through the run-internal methods (staging, committing, the
//! history) that pipelines use and users do not.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::incremental::fingerprint::{Fingerprint, KeyBuilder};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A command that reruns this binary's test `name` (in this module) alone
/// in a child process, with `env` set.
fn child(name: &str, env: (&str, &std::path::Path)) -> Command {
    child_in(module_path!(), name, env)
}

/// A command that reruns this binary's test `name` in `module` (a
/// `module_path!()`) alone in a child process, with `env` set.
pub(super) fn child_in(module: &str, name: &str, env: (&str, &std::path::Path)) -> Command {
    // libtest names a test by its path without the crate's name.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        &format!("{module}::{name}"),
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(Stdio::piped())
    .env(env.0, env.1);
    cmd
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    drop(ArtifactStore::open(dir.path()).unwrap());
    // Back to version 1's shape, with an unfinished run of that time.
    let old = rusqlite::Connection::open(dir.path().join("meta.sqlite")).unwrap();
    old.execute_batch(
        "ALTER TABLE runs DROP COLUMN origin;
         ALTER TABLE entries DROP COLUMN seal;
         ALTER TABLE artifacts DROP COLUMN data;
         ALTER TABLE files DROP COLUMN ctime_ns;
         ALTER TABLE files DROP COLUMN inode;
         ALTER TABLE files DROP COLUMN device;
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

#[test]
fn a_run_stores_a_step_at_once_and_keeps_its_outputs_under_the_bound() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open_with(
        dir.path(),
        StoreOptions {
            max_bytes: Some(1500),
            ..StoreOptions::default()
        },
    )?;
    let old = store.put_bytes(&[9; 1000])?;
    let key = KeyBuilder::new("split").finish();
    let run = RunWriter::begin(&store, "split")?;
    let staged = vec![run.stage(&[1; 1000])?, run.stage(&[2; 1000])?];
    let expected: Vec<Fingerprint> = staged.iter().map(|s| s.hash).collect();
    let hashes = run.commit_entry(key, "split", staged, Duration::ZERO);
    assert_eq!(hashes, expected);
    // Queued, not written yet: other processes cannot see it.
    assert!(store.lookup(&key)?.is_none());
    run.finish(RunStatus::Succeeded)?;
    // Over the bound with the step's two outputs alone: the older artifact
    // goes, the step's own outputs stay.
    assert!(!store.contains(&old)?);
    assert_eq!(store.lookup(&key)?.unwrap().outputs, hashes);
    assert_eq!(store.get_bytes(&hashes[1])?, Some(vec![2; 1000]));
    // Same content again: deduplicated (the staged file is removed), and
    // the bound now evicts the least recently used artifact, the other output.
    let run = RunWriter::begin(&store, "again")?;
    let again = run.stage(&[1; 1000])?;
    let key2 = KeyBuilder::new("again").finish();
    run.commit_entry(key2, "again", vec![again], Duration::ZERO);
    run.finish(RunStatus::Succeeded)?;
    assert!(store.contains(&hashes[0])?);
    assert!(!store.contains(&hashes[1])?);
    assert_eq!(store.stats()?.artifacts, 1);
    assert!(store.lookup(&key)?.is_none());
    assert!(store.lookup(&key2)?.is_some());
    Ok(())
}

#[test]
fn clear_empties_the_cache_and_keeps_the_history() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let writer = RunWriter::begin(&store, "p")?;
    let run = writer.run();
    for i in 0..5_u32 {
        let h = store.put(&i)?;
        let key = KeyBuilder::new("s").option("i", &i)?.finish();
        store.insert_entry(&key, "s", &[h], Duration::ZERO)?;
        writer.record(StepExecution {
            step: format!("s{i}"),
            key,
            outputs: vec![h],
            duration: Duration::from_micros(10),
            cached: i % 2 == 0,
        });
    }
    // This process is alive: its unfinished run is running, not interrupted.
    assert_eq!(store.runs()?[0].status, RunStatus::Running);
    writer.finish(RunStatus::Succeeded)?;
    store.clear()?;
    let s = store.stats()?;
    assert_eq!((s.entries, s.artifacts, s.bytes, s.runs), (0, 0, 0, 1));
    assert_eq!(std::fs::read_dir(dir.path().join("artifacts"))?.count(), 0);
    let runs = store.runs()?;
    assert_eq!((runs[0].steps, runs[0].cached), (5, 3));
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert!(runs[0].duration.is_some());
    assert_eq!(store.run_steps(run)?.len(), 5);
    Ok(())
}

// ------------------------------------------------------- child processes

const KILL_CHILD: &str = "FLOWYML_TEST_KILL_CHILD_DIR";
const CONCURRENT_CHILD: &str = "FLOWYML_TEST_CONCURRENT_CHILD_DIR";

fn big(seed: u8) -> Vec<u8> {
    (0..4_000_000_u32)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect()
}

/// The child of `sigkill_in_the_middle_of_a_write_leaves_a_usable_store`:
/// a no-op unless that test started it.
#[test]
fn kill_child_helper() -> Result {
    let Some(dir) = std::env::var_os(KILL_CHILD) else {
        return Ok(());
    };
    let store = ArtifactStore::open(&dir)?;
    let done = store.put_bytes(&big(3))?;
    store.insert_entry(
        &KeyBuilder::new("done").finish(),
        "done",
        &[done],
        Duration::ZERO,
    )?;
    store.begin_run("killed")?;
    let mut w = store.writer()?;
    w.write_all(&big(5)[..2_000_000])?;
    w.flush()?;
    println!("MID-WRITE");
    std::io::stdout().flush()?;
    std::thread::sleep(Duration::from_secs(60)); // killed here
    w.write_all(&big(5)[2_000_000..])?;
    w.commit()?;
    Ok(())
}

#[cfg(unix)]
#[test]
fn sigkill_in_the_middle_of_a_write_leaves_a_usable_store() -> Result {
    let dir = tempfile::tempdir()?;
    let mut proc = child("kill_child_helper", (KILL_CHILD, dir.path())).spawn()?;
    let out = BufReader::new(proc.stdout.take().unwrap());
    let mut reached = false;
    for line in out.lines() {
        if line?.contains("MID-WRITE") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the child did not reach the middle of its write");
    proc.kill()?; // SIGKILL on Unix
    assert!(!proc.wait()?.success());
    let tmp_files = || {
        std::fs::read_dir(dir.path().join("artifacts"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .count()
    };
    assert_eq!(
        tmp_files(),
        1,
        "the half-written file is there before reopening"
    );

    let store = ArtifactStore::open(dir.path())?;
    assert_eq!(
        tmp_files(),
        0,
        "opening removed the abandoned temporary file"
    );
    let entry = store
        .lookup(&KeyBuilder::new("done").finish())?
        .expect("the committed entry survived");
    assert_eq!(store.get_bytes(&entry.outputs[0])?, Some(big(3)));
    assert!(!store.contains(&Fingerprint::of_bytes(&big(5)))?);
    assert!(store.verify()?.is_empty());
    let runs = store.runs()?;
    assert_eq!(runs[0].pipeline, "killed");
    // Where /proc tells who started a run (Linux with its pid namespace
    // readable), the dead child's run reads interrupted.
    let proc_tells = std::fs::read_link("/proc/self/ns/pid").is_ok()
        && std::path::Path::new("/proc/sys/kernel/random/boot_id").exists();
    if proc_tells {
        assert_eq!(
            runs[0].status,
            RunStatus::Interrupted,
            "the killed child's run"
        );
    }
    // And the interrupted artifact can be written now.
    let h = store.put_bytes(&big(5))?;
    assert_eq!(store.get_bytes(&h)?, Some(big(5)));
    assert_eq!(store.stats()?.artifacts, 2);
    Ok(())
}

/// Writes 40 artifacts and entries, half of them shared with the other
/// process, reading back everything it can see.
fn concurrent_worker(store: &ArtifactStore, who: &str) -> Result {
    for i in 0..40_u32 {
        let shared = i % 2 == 0;
        let value = if shared {
            format!("shared-{i}").repeat(2000)
        } else {
            format!("{who}-{i}").repeat(2000)
        };
        let h = store.put(&value)?;
        let key = KeyBuilder::new(if shared { "shared" } else { who })
            .option("i", &i)?
            .finish();
        store.insert_entry(&key, who, &[h], Duration::from_micros(i.into()))?;
        let entry = store.lookup(&key)?.expect("just inserted");
        assert_eq!(store.get::<String>(&entry.outputs[0])?, Some(value));
        let run = RunWriter::begin(store, who)?;
        run.record(StepExecution {
            step: format!("s{i}"),
            key,
            outputs: vec![h],
            duration: Duration::ZERO,
            cached: false,
        });
        run.finish(RunStatus::Succeeded)?;
    }
    Ok(())
}

/// The child of `two_processes_share_one_store`.
#[test]
fn concurrent_child_helper() -> Result {
    let Some(dir) = std::env::var_os(CONCURRENT_CHILD) else {
        return Ok(());
    };
    let store = ArtifactStore::open(&dir)?;
    concurrent_worker(&store, "child")
}

#[test]
fn two_processes_share_one_store() -> Result {
    let dir = tempfile::tempdir()?;
    let mut proc = child("concurrent_child_helper", (CONCURRENT_CHILD, dir.path())).spawn()?;
    // This process: two threads on one store, beside the child process.
    let store = ArtifactStore::open(dir.path())?;
    std::thread::scope(|s| {
        let a = s.spawn(|| concurrent_worker(&store, "parent").map_err(|e| e.to_string()));
        let b = s.spawn(|| {
            let other = ArtifactStore::open(dir.path()).map_err(|e| e.to_string())?;
            concurrent_worker(&other, "parent2").map_err(|e| e.to_string())
        });
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
    });
    let status = proc.wait()?;
    assert!(status.success(), "the child failed: {status}");

    let s = store.stats()?;
    // 20 shared keys + 20 private keys for each of three writers.
    assert_eq!(s.entries, 20 + 3 * 20);
    assert_eq!(s.artifacts, 20 + 3 * 20);
    assert_eq!(s.runs, 3 * 40);
    assert!(store.verify()?.is_empty());
    let pipelines: HashSet<String> = store.runs()?.into_iter().map(|r| r.pipeline).collect();
    assert_eq!(
        pipelines,
        HashSet::from(["child", "parent", "parent2"].map(String::from))
    );
    Ok(())
}

//! The store against a hostile directory: what sits at an artifact's path,
//! an edited or damaged database, a directory it cannot write, a run killed
//! midway, and a history that must not grow forever. Each case is built
//! for real (`mkfifo`, symlinks to `/dev/zero`, an edit of the database,
//! a read-only directory) and would hang, read gigabytes, serve another
//! step's data or fail every command without the store's checks.

use std::fs;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use super::tests::child_in;
use super::*;
use crate::error;
use crate::incremental::fingerprint::{Fingerprint, KeyBuilder};
use crate::pipeline::Pipeline;
use crate::record::StepStatus;
use crate::step::FnStep;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `get_bytes` on another thread, so that a read that would hang fails the
/// test instead of stalling it.
fn get_within(store: &ArtifactStore, hash: Fingerprint) -> error::Result<Option<Vec<u8>>> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(store.get_bytes(&hash));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the read returned within 10 s")
    })
}

fn corrupt_reason(result: error::Result<Option<Vec<u8>>>) -> String {
    match result {
        Err(error::Error::CorruptArtifact { reason, .. }) => reason,
        other => panic!("expected a corrupt artifact, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_at_an_artifacts_path_is_corrupt_not_a_hang() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    for link in [false, true] {
        let h = store.put_bytes(format!("value {link}").as_bytes())?;
        let path = store.artifact_path(&h);
        fs::remove_file(&path)?;
        let fifo = dir.path().join(format!("fifo-{link}"));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success(), "mkfifo");
        if link {
            std::os::unix::fs::symlink(&fifo, &path)?;
        } else {
            fs::rename(&fifo, &path)?;
        }
        let reason = corrupt_reason(get_within(&store, h));
        let expected = if link { "symbolic link" } else { "FIFO" };
        assert!(reason.contains(expected), "{reason}");
        // Removed: the next read is a plain miss.
        assert!(fs::symlink_metadata(&path).is_err());
        assert_eq!(store.get_bytes(&h)?, None);
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_link_to_a_device_or_out_of_the_cache_is_never_read() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let h = store.put_bytes(b"twelve bytes")?;
    let path = store.artifact_path(&h);
    // A link to /dev/zero, whose size reads as 0 and whose content never ends.
    fs::remove_file(&path)?;
    std::os::unix::fs::symlink("/dev/zero", &path)?;
    let reason = corrupt_reason(get_within(&store, h));
    assert!(reason.contains("symbolic link"), "{reason}");
    // A link to a file elsewhere with exactly the right content: the
    // content would verify, but the cache reads only its own files.
    let h = store.put_bytes(b"outside")?;
    let outside = tempfile::tempdir()?;
    fs::write(outside.path().join("copy"), b"outside")?;
    let path = store.artifact_path(&h);
    fs::remove_file(&path)?;
    std::os::unix::fs::symlink(outside.path().join("copy"), &path)?;
    let reason = corrupt_reason(get_within(&store, h));
    assert!(reason.contains("symbolic link"), "{reason}");
    // A regular file longer than the store recorded is not read to its end.
    let h = store.put_bytes(b"short")?;
    fs::write(store.artifact_path(&h), vec![0_u8; 1 << 20])?;
    let reason = corrupt_reason(get_within(&store, h));
    assert!(reason.contains("where 5 were stored"), "{reason}");
    Ok(())
}

#[test]
fn an_entry_whose_outputs_were_swapped_is_a_miss() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let (mean, lags) = (store.put(&1.5_f64)?, store.put(&2.5_f64)?);
    let k1 = KeyBuilder::new("rolling_mean").finish();
    let k2 = KeyBuilder::new("lag_features").finish();
    store.insert_entry(&k1, "rolling_mean", &[mean], Duration::ZERO)?;
    store.insert_entry(&k2, "lag_features", &[lags], Duration::ZERO)?;
    drop(store);
    // A real edit of the database: the two rows trade outputs.
    let db = rusqlite::Connection::open(dir.path().join("meta.sqlite"))?;
    db.execute_batch(&format!(
        "UPDATE entries SET outputs = CASE key WHEN '{a}' THEN '{lo}' ELSE '{mo}' END
         WHERE key IN ('{a}', '{b}');",
        a = k1.to_hex(),
        b = k2.to_hex(),
        lo = lags.to_hex(),
        mo = mean.to_hex(),
    ))?;
    drop(db);
    let store = ArtifactStore::open(dir.path())?;
    assert_eq!(store.lookup(&k1)?, None);
    assert_eq!(store.lookup(&k2)?, None);
    // Removed, so the steps' reruns write sound entries.
    assert_eq!(store.stats()?.entries, 0);
    Ok(())
}

#[test]
fn a_small_artifact_edited_in_the_database_is_corrupt() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let key = KeyBuilder::new("small").finish();
    let run = RunWriter::begin(&store, "small")?;
    let staged = vec![run.stage(b"a small output")?];
    let hashes = run.commit_entry(key, "small", staged, Duration::ZERO);
    run.finish(RunStatus::Succeeded)?;
    // Kept in the database: no file of its own.
    assert!(!store.artifact_path(&hashes[0]).exists());
    assert!(store.contains(&hashes[0])?);
    assert_eq!(
        store.get_bytes(&hashes[0])?.as_deref(),
        Some(&b"a small output"[..])
    );
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join("meta.sqlite"))?;
    db.execute(
        "UPDATE artifacts SET data = ?1 WHERE hash = ?2",
        rusqlite::params![b"a small 0utput".to_vec(), hashes[0].to_hex()],
    )?;
    drop(db);
    let store = ArtifactStore::open(dir.path())?;
    let reason = corrupt_reason(store.get_bytes(&hashes[0]));
    assert!(reason.contains("hash to"), "{reason}");
    assert_eq!(store.get_bytes(&hashes[0])?, None);
    assert_eq!(store.lookup(&key)?, None, "the entry needing it went too");
    Ok(())
}

#[test]
fn a_small_output_whose_old_file_is_gone_is_stored_again() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    // An artifact stored as a file (as before small ones were kept in
    // rows), whose file is then lost.
    let old = store.put_bytes(b"same content")?;
    fs::remove_file(store.artifact_path(&old))?;
    let key = KeyBuilder::new("again").finish();
    let run = RunWriter::begin(&store, "again")?;
    let staged = vec![run.stage(b"same content")?];
    let hashes = run.commit_entry(key, "again", staged, Duration::ZERO);
    run.finish(RunStatus::Succeeded)?;
    assert_eq!(hashes, [old]);
    assert_eq!(
        store.get_bytes(&old)?.as_deref(),
        Some(&b"same content"[..])
    );
    assert!(store.lookup(&key)?.is_some(), "the entry is a hit");
    Ok(())
}

#[test]
fn a_damaged_database_is_moved_aside_and_rebuilt() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let h = store.put_bytes(b"indexed by the damaged database")?;
    drop(store);
    fs::write(
        dir.path().join("meta.sqlite"),
        b"this is not a database, not at all",
    )?;
    let store = ArtifactStore::open(dir.path())?;
    let aside: Vec<String> = fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("meta.sqlite.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let s = store.stats()?;
    assert_eq!((s.entries, s.artifacts, s.runs), (0, 0, 0));
    assert!(!store.artifact_path(&h).exists(), "no file left unindexed");
    // And it works as a store again.
    let again = store.put_bytes(b"new")?;
    assert_eq!(store.get_bytes(&again)?.as_deref(), Some(&b"new"[..]));
    Ok(())
}

/// A pipeline of a source of `value` and a step depending on it (the
/// source's version is its value: a closure's captures are not in its key).
fn two_steps(value: u64) -> Pipeline {
    let mut p = Pipeline::new("two");
    p.add_step(
        FnStep::builder("source")
            .version(&value.to_string())
            .stored_output::<u64>("x")
            .build(move |ctx| {
                ctx.set_output(0, value);
                Ok(())
            }),
    )
    .add_step(
        FnStep::builder("double")
            .version("1")
            .stored_input::<u64>("x")
            .stored_output::<u64>("y")
            .build(|ctx| {
                let x = *ctx.input::<u64>(0)?;
                ctx.set_output(0, 2 * x);
                Ok(())
            }),
    );
    p
}

const READ_ONLY_CHILD: &str = "FLOWYML_TEST_READ_ONLY_CACHE";

/// The child of `a_read_only_cache_serves_its_hits_and_stores_nothing`:
/// reads the cache in the directory it is given, which it cannot write.
#[test]
fn read_only_child_helper() -> Result {
    let Some(dir) = std::env::var_os(READ_ONLY_CHILD) else {
        return Ok(());
    };
    let store = ArtifactStore::open(&dir)?;
    assert!(store.is_read_only());
    assert_eq!(store.runs()?.len(), 1);
    assert_eq!(store.stats()?.entries, 2);
    drop(store);
    let mut p = two_steps(21);
    p.cache_dir(&dir)?;
    let result = p.run()?;
    assert_eq!(*result.get::<u64>("y")?, 42);
    assert!(result.steps().all(|s| s.status == StepStatus::Cached));
    // A changed input: recomputed, and said not to be stored.
    let mut p = two_steps(5);
    p.cache_dir(&dir)?;
    let result = p.run()?;
    assert_eq!(*result.get::<u64>("y")?, 10);
    let source = result.step("source").expect("recorded");
    assert!(
        source.notes.iter().any(|n| n.contains("read-only")),
        "{:?}",
        source.notes
    );
    println!("READ-ONLY OK");
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_read_only_cache_serves_its_hits_and_stores_nothing() -> Result {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("cache");
    let mut p = two_steps(21);
    p.cache_dir(&cache)?;
    p.run()?;
    drop(p);
    let mode = |path: &std::path::Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
    };
    for entry in fs::read_dir(cache.join("artifacts"))? {
        mode(&entry?.path(), 0o444);
    }
    for path in [cache.join("artifacts"), cache.clone()] {
        mode(&path, 0o555);
    }
    mode(&cache.join("meta.sqlite"), 0o444);
    mode(dir.path(), 0o755);
    let mut cmd = child_in(
        module_path!(),
        "read_only_child_helper",
        (READ_ONLY_CHILD, &cache),
    );
    // Root writes to any directory whatever its mode: the child drops to
    // `nobody`, for whom the directory is really read-only.
    if rustix::process::geteuid().is_root() {
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
        let mut dropped = std::process::Command::new("setpriv");
        dropped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(args)
            .env(READ_ONLY_CHILD, &cache)
            .stdout(std::process::Stdio::piped());
        cmd = dropped;
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let restore = || {
        for path in [cache.clone(), cache.join("artifacts")] {
            mode(&path, 0o755);
        }
    };
    restore();
    assert!(
        out.status.success() && stdout.contains("READ-ONLY OK"),
        "the child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

const KILLED_RUN_CHILD: &str = "FLOWYML_TEST_KILLED_RUN";

/// The child of `a_killed_run_keeps_the_steps_it_finished`: five quick
/// steps, then one that waits to be killed.
#[test]
fn killed_run_child_helper() -> Result {
    let Some(dir) = std::env::var_os(KILLED_RUN_CHILD) else {
        return Ok(());
    };
    let mut p = Pipeline::new("killed");
    for i in 0..5_u64 {
        p.add_step(
            FnStep::builder(format!("quick{i}"))
                .stored_output::<u64>(format!("q{i}"))
                .build(move |ctx| {
                    ctx.set_output(0, i);
                    Ok(())
                }),
        );
    }
    let mut last = FnStep::builder("slow");
    for i in 0..5 {
        last = last.stored_input::<u64>(format!("q{i}"));
    }
    p.add_step(last.stored_output::<u64>("never").build(|_| {
        println!("SLOW STEP STARTED");
        std::thread::sleep(Duration::from_secs(60)); // killed here
        Ok(())
    }));
    p.cache_dir(&dir)?;
    p.run()?;
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_killed_run_keeps_the_steps_it_finished() -> Result {
    let dir = tempfile::tempdir()?;
    let mut proc = child_in(
        module_path!(),
        "killed_run_child_helper",
        (KILLED_RUN_CHILD, dir.path()),
    )
    .spawn()?;
    let out = BufReader::new(proc.stdout.take().unwrap());
    let mut reached = false;
    for line in out.lines() {
        if line?.contains("SLOW STEP STARTED") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the child did not reach its slow step");
    // Past the longest wait of a queued record.
    std::thread::sleep(MAX_WAIT * 4);
    proc.kill()?;
    assert!(!proc.wait()?.success());
    let store = ArtifactStore::open(dir.path())?;
    let runs = store.runs()?;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert_eq!(
        runs[0].steps, 5,
        "the five steps that finished are recorded"
    );
    // And their entries are stored.
    assert_eq!(store.stats()?.entries, 5);
    Ok(())
}

#[test]
fn the_history_keeps_the_latest_runs() -> Result {
    let dir = tempfile::tempdir()?;
    let options = StoreOptions {
        keep_runs: Some(3),
        ..StoreOptions::default()
    };
    let mut p = two_steps(1);
    p.cache_dir_with(dir.path(), options)?;
    for _ in 0..5 {
        p.run()?;
    }
    drop(p);
    let store = ArtifactStore::open(dir.path())?;
    let runs = store.runs()?;
    let ids: Vec<i64> = runs.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [5, 4, 3]);
    assert_eq!(store.prune_runs(1)?, 2);
    assert_eq!(store.runs()?.len(), 1);
    // The runs' step records went with them.
    let db = rusqlite::Connection::open(dir.path().join("meta.sqlite"))?;
    let steps: i64 = db.query_row("SELECT COUNT(*) FROM step_executions", [], |r| r.get(0))?;
    assert_eq!(steps, 2);
    Ok(())
}

/// Unmounts a test's filesystem when dropped, whatever the test did.
struct Unmount<'a>(&'a std::path::Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0)
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_says_so_and_where() -> Result {
    let dir = tempfile::tempdir()?;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        assert!(
            std::env::var_os("FLOWYML_REQUIRE_MOUNT").is_none(),
            "FLOWYML_REQUIRE_MOUNT is set but a tmpfs cannot be mounted here"
        );
        eprintln!(
            "skipped: mounting a small tmpfs needs root (set FLOWYML_REQUIRE_MOUNT=1 to fail instead)"
        );
        return Ok(());
    }
    let _unmount = Unmount(dir.path());
    let store = ArtifactStore::open(dir.path())?;
    let h = store.put_bytes(b"kept")?;
    // Fill what is left with a file of our own: the next database write
    // finds no room.
    let filler = dir.path().join("filler");
    let _ = fs::write(&filler, vec![0_u8; 1 << 20]);
    let mut err = None;
    for i in 0..1_000_u32 {
        let key = KeyBuilder::new("full").option("i", &i)?.finish();
        if let Err(e) = store.insert_entry(&key, "step", &[h], Duration::ZERO) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the disk filled up").to_string();
    assert!(err.contains("no space left on device"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    // And an artifact's write says the same, naming its file.
    let err = store.put_bytes(&[7; 100_000]).unwrap_err().to_string();
    assert!(
        err.to_lowercase().contains("no space left on device"),
        "{err}"
    );
    assert!(err.contains("artifacts"), "{err}");
    drop(store);
    Ok(())
}

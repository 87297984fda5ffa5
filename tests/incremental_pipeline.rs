//! Incremental pipelines: rerun only what changed, in memory and across
//! processes, never serve stale or corrupt data.

use std::sync::atomic::{AtomicUsize, Ordering};

use flowyml::pipeline::{RerunReason, StepStatus};
use flowyml::{Pipeline, step};

static LOADS: AtomicUsize = AtomicUsize::new(0);
static CLEANS: AtomicUsize = AtomicUsize::new(0);
static TRAINS: AtomicUsize = AtomicUsize::new(0);

#[step(outputs = ["data"])]
fn load_data(path: &String) -> Result<Vec<f64>, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .map(|l| l.trim().parse::<f64>().map_err(|e| format!("{l:?}: {e}")))
        .collect()
}

#[step(outputs = ["clean"])]
fn clean_data(data: &Vec<f64>) -> Vec<f64> {
    CLEANS.fetch_add(1, Ordering::SeqCst);
    // Rounding makes small changes of the data invisible downstream.
    data.iter()
        .map(|v| v.round())
        .filter(|v| *v >= 0.0)
        .collect()
}

#[step(outputs = ["model"])]
fn train_model(clean: &Vec<f64>) -> f64 {
    TRAINS.fetch_add(1, Ordering::SeqCst);
    clean.iter().sum::<f64>() / clean.len() as f64
}

fn counts() -> (usize, usize, usize) {
    (
        LOADS.load(Ordering::SeqCst),
        CLEANS.load(Ordering::SeqCst),
        TRAINS.load(Ordering::SeqCst),
    )
}

fn statuses(result: &flowyml::PipelineResult) -> Vec<StepStatus> {
    result.steps().map(|s| s.status).collect()
}

/// The spec's load_data → clean_data → train_model, in one test so the
/// counters are not shared with another test running at the same time.
#[test]
fn reruns_only_what_changed_with_early_cutoff() -> flowyml::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "1.0\n2.0\n3.0\n").expect("write");
    let mut p = Pipeline::new("train");
    p.add_step(load_data)
        .add_step(clean_data)
        .add_step(train_model);
    p.input("path", csv.display().to_string()).incremental();

    let first = p.run()?;
    assert_eq!(statuses(&first), vec![StepStatus::Ran; 3]);
    assert!(
        first
            .steps()
            .all(|s| s.reason == Some(RerunReason::NoEntry))
    );
    assert_eq!(counts(), (1, 1, 1));

    let second = p.run()?;
    assert_eq!(statuses(&second), vec![StepStatus::Cached; 3]);
    assert_eq!(counts(), (1, 1, 1));

    // The data changed: load_data + dependent steps recompute.
    std::fs::write(&csv, "1.0\n2.0\n5.0\n").expect("write");
    p.invalidate("load_data")?;
    let third = p.run()?;
    assert_eq!(statuses(&third), vec![StepStatus::Ran; 3]);
    assert_eq!(
        third.step("load_data").and_then(|s| s.reason),
        Some(RerunReason::Invalidated)
    );
    assert_eq!(
        third.step("clean_data").and_then(|s| s.reason),
        Some(RerunReason::InputChanged)
    );
    assert_eq!(
        *third.get::<f64>("model")?,
        8.0 / 3.0,
        "never the stale model"
    );
    assert_eq!(counts(), (2, 2, 2));

    // A change that cleaning rounds away: clean_data reruns, produces the
    // same output, and train_model is cut off.
    std::fs::write(&csv, "1.1\n2.0\n5.0\n").expect("write");
    p.invalidate("load_data")?;
    let fourth = p.run()?;
    assert_eq!(
        statuses(&fourth),
        vec![StepStatus::Ran, StepStatus::Ran, StepStatus::Cached]
    );
    assert_eq!(counts(), (3, 3, 2));

    // A new run-time input value is a new fingerprint.
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "10.0\n").expect("write");
    p.input("path", other.display().to_string());
    let fifth = p.run()?;
    assert_eq!(statuses(&fifth), vec![StepStatus::Ran; 3]);
    assert_eq!(*fifth.get::<f64>("model")?, 10.0);
    assert!(
        p.invalidate("lod_data")
            .unwrap_err()
            .to_string()
            .ends_with("did you mean `load_data`?")
    );
    Ok(())
}

#[step(outputs = ["a"])]
fn version_a(x: &u32) -> u32 {
    x + 1
}

#[step(outputs = ["b"])]
fn version_b(x: &u32) -> u32 {
    x + 2
}

#[test]
fn bodies_differing_by_one_token_have_different_code_fingerprints() {
    let specs = flowyml::step::registered();
    let fp = |name: &str| {
        specs
            .iter()
            .find(|s| &*s.name == name)
            .map(|s| s.code_fingerprint)
            .expect("registered")
    };
    assert_ne!(fp("version_a"), fp("version_b"));
    assert_ne!(fp("version_a"), [0; 32]);
}

static WATCHED_RUNS: AtomicUsize = AtomicUsize::new(0);
static BESIDE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[step(outputs = ["bytes"], watch = ["target/flowyml-watched-test.txt"])]
fn read_watched() -> Result<usize, String> {
    WATCHED_RUNS.fetch_add(1, Ordering::SeqCst);
    std::fs::read("target/flowyml-watched-test.txt")
        .map(|b| b.len())
        .map_err(|e| e.to_string())
}

#[step(outputs = ["doubled"])]
fn double_bytes(bytes: &usize) -> usize {
    bytes * 2
}

#[step(outputs = ["independent"])]
fn beside() -> u8 {
    BESIDE_RUNS.fetch_add(1, Ordering::SeqCst);
    7
}

#[test]
fn a_changed_watched_file_reruns_exactly_its_downstream() -> flowyml::Result<()> {
    let path = std::path::Path::new("target/flowyml-watched-test.txt");
    // The watched path is fixed at compile time, relative to the package root;
    // `target/` is not there when CARGO_TARGET_DIR points elsewhere.
    std::fs::create_dir_all("target").expect("create target/");
    std::fs::write(path, "abc").expect("write");
    let mut p = Pipeline::new("watch");
    p.add_step(read_watched)
        .add_step(double_bytes)
        .add_step(beside)
        .incremental();
    assert_eq!(*p.run()?.get::<usize>("doubled")?, 6);
    let again = p.run()?;
    assert_eq!(statuses(&again), vec![StepStatus::Cached; 3]);
    std::fs::write(path, "abcdef").expect("write");
    let changed = p.run()?;
    assert_eq!(
        statuses(&changed),
        vec![StepStatus::Ran, StepStatus::Ran, StepStatus::Cached]
    );
    assert_eq!(*changed.get::<usize>("doubled")?, 12);
    assert_eq!(
        (
            WATCHED_RUNS.load(Ordering::SeqCst),
            BESIDE_RUNS.load(Ordering::SeqCst)
        ),
        (2, 1)
    );
    Ok(())
}

struct Handle(std::sync::Arc<u8>);

#[step(outputs = ["handle"])]
fn open_handle() -> Handle {
    Handle(std::sync::Arc::new(1))
}

#[step(outputs = ["value"])]
fn use_handle(handle: &Handle) -> u8 {
    *handle.0
}

#[test]
fn outputs_that_cannot_be_stored_stay_in_memory_and_say_so() -> flowyml::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut p = Pipeline::new("opaque");
    p.add_step(open_handle)
        .add_step(use_handle)
        .cache_dir(dir.path())?;
    let first = p.run()?;
    let notes = &first.step("open_handle").expect("ran").notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("output `handle`") && n.contains("kept in memory only")),
        "{notes:?}"
    );
    assert_eq!(
        statuses(&p.run()?),
        vec![StepStatus::Cached; 2],
        "memory still serves it"
    );
    // A new pipeline value (as in a new process) recomputes the opaque
    // step. Its output's fingerprint is its (unchanged) key, so the
    // stored dependent is still valid and served from disk.
    let mut fresh = Pipeline::new("opaque");
    fresh
        .add_step(open_handle)
        .add_step(use_handle)
        .cache_dir(dir.path())?;
    assert_eq!(
        statuses(&fresh.run()?),
        vec![StepStatus::Ran, StepStatus::Cached]
    );
    Ok(())
}

// Cross-process tests: the test binary runs itself as the child process,
// with FLOWYML_CHILD naming the cache dir.

#[step(outputs = ["squares"])]
fn squares(n: &u64) -> Vec<u64> {
    (0..*n).map(|i| i * i).collect()
}

#[step(outputs = ["total"])]
fn total(squares: &Vec<u64>) -> u64 {
    squares.iter().sum()
}

fn child_pipeline(dir: &str) -> flowyml::Result<Pipeline> {
    let mut p = Pipeline::new("child");
    p.add_step(squares)
        .add_step(total)
        .input("n", 200_000_u64)
        .cache_dir(dir)?;
    Ok(p)
}

#[test]
fn child_process() -> flowyml::Result<()> {
    if let Ok(dir) = std::env::var("FLOWYML_CHILD") {
        let result = child_pipeline(&dir)?.run()?;
        assert_eq!(
            *result.get::<u64>("total")?,
            (0..200_000u64).map(|i| i * i).sum::<u64>()
        );
        println!("FLOWYML-RESULT {}", result.to_json());
    }
    Ok(())
}

fn spawn_child(dir: &std::path::Path) -> std::process::Child {
    crate::rerun_test(module_path!(), "child_process")
        .env("FLOWYML_CHILD", dir)
        .spawn()
        .expect("spawn child")
}

fn child_statuses(child: std::process::Child) -> Vec<String> {
    let out = child.wait_with_output().expect("child ran");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    // libtest prints the test's name on the same line as its output.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("FLOWYML-RESULT "))
        .map(|(_, json)| json)
        .expect("a result line");
    crate::json_statuses(line)
}

#[test]
fn a_second_process_recomputes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(child_statuses(spawn_child(dir.path())), vec!["ran", "ran"]);
    assert_a_new_process_recomputes_nothing(dir.path());
}

#[test]
fn two_processes_share_one_cache_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (spawn_child(dir.path()), spawn_child(dir.path()));
    for child in [a, b] {
        assert_ran_or_cached(child);
    }
    assert_a_new_process_recomputes_nothing(dir.path());
}

/// Every step of `child`'s run either ran or came from the cache.
fn assert_ran_or_cached(child: std::process::Child) {
    let statuses = child_statuses(child);
    assert!(
        statuses.iter().all(|s| s == "ran" || s == "cached"),
        "{statuses:?}"
    );
}

fn assert_a_new_process_recomputes_nothing(dir: &std::path::Path) {
    assert_eq!(child_statuses(spawn_child(dir)), vec!["cached", "cached"]);
}

#[test]
fn a_flipped_byte_is_detected_and_recomputed() -> flowyml::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = child_pipeline(dir.path().to_str().expect("utf-8"))?
        .run()?
        .get::<u64>("total")
        .copied()?;
    let artifacts = dir.path().join("artifacts");
    for entry in std::fs::read_dir(&artifacts).expect("artifacts dir") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, bytes).expect("write");
    }
    let result = child_pipeline(dir.path().to_str().expect("utf-8"))?.run()?;
    assert_eq!(
        result.step("squares").and_then(|s| s.reason),
        Some(RerunReason::CorruptEntry)
    );
    assert_eq!(
        *result.get::<u64>("total")?,
        expected,
        "recomputed, never served corrupt"
    );
    Ok(())
}

#[test]
fn a_writer_killed_mid_run_leaves_a_usable_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_child(dir.path());
    // Kill it at some point of its run (computing or writing); whatever it
    // left must not be served wrong.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let _ = child.kill();
    let _ = child.wait();
    assert_ran_or_cached(spawn_child(dir.path()));
    assert_a_new_process_recomputes_nothing(dir.path());
}

#[test]
fn an_invalidated_step_that_fails_stays_invalidated() -> flowyml::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let fail = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicUsize::new(0));
    let mut p = Pipeline::new("invalidated-then-failed");
    let (f, r) = (Arc::clone(&fail), Arc::clone(&runs));
    p.add_step(
        flowyml::step::FnStep::builder("fetch")
            .output::<u32>("rows")
            .build(move |ctx| {
                r.fetch_add(1, Ordering::SeqCst);
                if f.load(Ordering::SeqCst) {
                    return Err("source unreachable".into());
                }
                ctx.set_output(0, 7_u32);
                Ok(())
            }),
    );
    p.incremental();
    p.run()?;
    assert_eq!(p.run()?.steps().next().unwrap().status, StepStatus::Cached);

    p.invalidate("fetch")?;
    fail.store(true, Ordering::SeqCst);
    assert!(p.run().is_err());
    // The old entry is still stored under the same key; the invalidation
    // must survive the failure instead of letting the next run hit it.
    fail.store(false, Ordering::SeqCst);
    let after = p.run()?;
    assert_eq!(after.steps().next().unwrap().status, StepStatus::Ran);
    assert_eq!(
        after.steps().next().unwrap().reason,
        Some(RerunReason::Invalidated)
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(p.run()?.steps().next().unwrap().status, StepStatus::Cached);
    Ok(())
}

#[step(outputs = ["sum"])]
fn sum_file(path: &String, ctx: &mut flowyml::step::StepContext) -> Result<u64, flowyml::BoxError> {
    let text = ctx.read_to_string(path)?;
    text.split_whitespace()
        .map(|n| n.parse::<u64>().map_err(|e| format!("{n:?}: {e}").into()))
        .sum()
}

#[step(outputs = ["scaled"])]
fn scale_sum(sum: &u64) -> u64 {
    sum * 100
}

fn file_pipeline(
    path: &std::path::Path,
    cache: Option<&std::path::Path>,
) -> flowyml::Result<Pipeline> {
    let mut p = Pipeline::new("file");
    p.input("path", path.display().to_string())
        .add_step(sum_file)
        .add_step(scale_sum);
    match cache {
        Some(dir) => p.cache_dir(dir)?,
        None => p.incremental(),
    };
    Ok(p)
}

/// A step that reads a file named by an input, through its context, is
/// rerun when the file's content changes though the path does not: a step
/// reading the path itself once served 600 as 6, the input being the same.
/// In memory, and across processes through the store.
#[test]
fn a_file_read_at_run_time_is_never_served_stale() -> flowyml::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("numbers.txt");
    let cache = dir.path().join("cache");
    for cache in [None, Some(cache.as_path())] {
        std::fs::write(&file, "1 2 3").expect("write");
        let p = file_pipeline(&file, cache)?;
        assert_eq!(*p.run()?.get::<u64>("scaled")?, 600);
        assert_eq!(statuses(&p.run()?), vec![StepStatus::Cached; 2]);

        std::fs::write(&file, "100 200 300").expect("write");
        let changed = p.run()?;
        assert_eq!(*changed.get::<u64>("scaled")?, 60_000, "cache: {cache:?}");
        let load = changed.step("sum_file").expect("recorded");
        assert_eq!(load.reason, Some(RerunReason::FileChanged));
        assert!(
            load.notes
                .iter()
                .any(|n| n.contains("numbers.txt` changed")),
            "{:?}",
            load.notes
        );

        // A new pipeline (a new process, on disk) checks the file too.
        std::fs::write(&file, "4 5 6").expect("write");
        let fresh = file_pipeline(&file, cache)?;
        assert_eq!(
            *fresh.run()?.get::<u64>("scaled")?,
            1_500,
            "cache: {cache:?}"
        );
        std::fs::remove_file(&file).expect("remove");
        let gone = fresh.run().unwrap_err().to_string();
        assert!(gone.contains("numbers.txt"), "{gone}");
    }
    Ok(())
}

static RESTORED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[step(outputs = ["total"], watch = ["target/flowyml-restored-mtime-test.txt"])]
fn sum_watched() -> Result<u64, String> {
    RESTORED_RUNS.fetch_add(1, Ordering::SeqCst);
    let text = std::fs::read_to_string("target/flowyml-restored-mtime-test.txt")
        .map_err(|e| e.to_string())?;
    text.split_whitespace()
        .map(|n| n.parse::<u64>().map_err(|e| e.to_string()))
        .sum()
}

/// Writes `text` and sets the file's mtime back to `mtime`, as `cp -p`,
/// `rsync -t` and `tar x` leave files.
fn write_with_mtime(path: &std::path::Path, text: &str, mtime: std::time::SystemTime) {
    std::fs::write(path, text).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(mtime).expect("set mtime");
}

/// Same size, old mtime restored: size and mtime look unchanged, the
/// content is not (the stamp once was only those two, and served 6 where
/// 15 is right).
#[test]
fn a_watched_file_rewritten_with_its_old_mtime_is_not_served_stale() -> flowyml::Result<()> {
    let path = std::path::Path::new("target/flowyml-restored-mtime-test.txt");
    // The watched path is fixed at compile time, relative to the package root;
    // `target/` is not there when CARGO_TARGET_DIR points elsewhere.
    std::fs::create_dir_all("target").expect("create target/");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    write_with_mtime(path, "1 2 3", long_ago);
    let mut p = Pipeline::new("restored");
    p.add_step(sum_watched).incremental();
    assert_eq!(*p.run()?.get::<u64>("total")?, 6);
    assert_eq!(statuses(&p.run()?), vec![StepStatus::Cached]);

    write_with_mtime(path, "4 5 6", long_ago);
    assert_eq!(*p.run()?.get::<u64>("total")?, 15);
    assert_eq!(RESTORED_RUNS.load(Ordering::SeqCst), 2);
    Ok(())
}

#[step(outputs = ["total"], watch = ["target/flowyml-restored-mtime-disk-test.txt"])]
fn sum_watched_on_disk() -> Result<u64, String> {
    let text = std::fs::read_to_string("target/flowyml-restored-mtime-disk-test.txt")
        .map_err(|e| e.to_string())?;
    text.split_whitespace()
        .map(|n| n.parse::<u64>().map_err(|e| e.to_string()))
        .sum()
}

/// The same sequence through the on-disk cache, whose memo of file hashes
/// outlives the process: a new pipeline (as a new process) must not take
/// the old hash for the rewritten file (the memo once matched on size and
/// mtime alone, and served 6).
#[test]
fn a_rewrite_with_a_restored_mtime_is_seen_through_the_on_disk_memo() -> flowyml::Result<()> {
    let path = std::path::Path::new("target/flowyml-restored-mtime-disk-test.txt");
    std::fs::create_dir_all("target").expect("create target/");
    let cache = tempfile::tempdir().expect("temp dir");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    write_with_mtime(path, "1 2 3", long_ago);
    let run = || -> flowyml::Result<(u64, Vec<StepStatus>)> {
        let mut p = Pipeline::new("restored-on-disk");
        p.add_step(sum_watched_on_disk).cache_dir(cache.path())?;
        let result = p.run()?;
        Ok((*result.get::<u64>("total")?, statuses(&result)))
    };
    // Past the racy window, so that the memo keeps the file's hash.
    std::thread::sleep(flowyml::incremental::RACY_WINDOW);
    assert_eq!(run()?, (6, vec![StepStatus::Ran]));
    assert_eq!(run()?, (6, vec![StepStatus::Cached]));
    write_with_mtime(path, "4 5 6", long_ago);
    std::thread::sleep(flowyml::incremental::RACY_WINDOW);
    assert_eq!(run()?.0, 15);
    Ok(())
}

/// A run without a progress callback takes a short path for steps that
/// run cleanly or are served from the cache; a run with one goes the
/// general way. Both record the same statuses and attempts (a step served
/// from the cache made none), failures and retries included.
#[test]
fn short_and_general_paths_record_the_same() -> flowyml::Result<()> {
    use flowyml::step::FnStep;
    use std::sync::Arc;
    let build = |watched: bool| {
        let failures = Arc::new(AtomicUsize::new(0));
        let mut p = Pipeline::new("paths");
        p.input("x", 2_u64).incremental();
        p.retries(1, std::time::Duration::ZERO);
        p.add_step(
            FnStep::builder("double")
                .version("1")
                .stored_input::<u64>("x")
                .output::<u64>("y")
                .build(|ctx| {
                    let x = *ctx.input::<u64>(0)?;
                    ctx.set_output(0, x * 2);
                    Ok(())
                }),
        );
        p.add_step(
            FnStep::builder("flaky")
                .version("1")
                .stored_input::<u64>("y")
                .output::<u64>("z")
                .build(move |ctx| {
                    if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err("first attempt fails".into());
                    }
                    let y = *ctx.input::<u64>(0)?;
                    ctx.set_output(0, y + 1);
                    Ok(())
                }),
        );
        if watched {
            p.on_progress(|_| {});
        }
        p
    };
    let summary = |r: &flowyml::PipelineResult| -> Vec<(StepStatus, u32)> {
        r.steps().map(|s| (s.status, s.attempts)).collect()
    };
    let (lean, general) = (build(false), build(true));
    let (a, b) = (lean.run()?, general.run()?);
    assert_eq!(*a.get::<u64>("z")?, 5);
    assert_eq!(summary(&a), [(StepStatus::Ran, 1), (StepStatus::Ran, 2)]);
    assert_eq!(summary(&a), summary(&b));
    let (a, b) = (lean.run()?, general.run()?);
    assert_eq!(
        summary(&a),
        [(StepStatus::Cached, 0), (StepStatus::Cached, 0)]
    );
    assert_eq!(summary(&a), summary(&b));
    Ok(())
}

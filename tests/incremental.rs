//! Incremental recomputation: the spec's examples, early cutoff, errors, and
//! the on-disk store under corruption, SIGKILL and concurrent processes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use flowyml::incremental::{ArtifactStore, Fingerprint, KeyBuilder, StoreOptions, codec};
use flowyml::{Error, IncrementalComputation, ParallelExecutor};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The spec's dependency-tracking graph; A and B read outside data.
fn abcd(source_a: &Arc<AtomicU64>, source_b: &Arc<AtomicU64>) -> IncrementalComputation {
    let mut inc = IncrementalComputation::new();
    let a = Arc::clone(source_a);
    let b = Arc::clone(source_b);
    inc.register("A", &[], move |_| Ok(a.load(Ordering::SeqCst)))
        .unwrap();
    inc.register("B", &[], move |_| Ok(b.load(Ordering::SeqCst)))
        .unwrap();
    inc.register("C", &["A", "B"], |d| {
        Ok(d.get::<u64>("A")? % 2 + d.get::<u64>("B")?)
    })
    .unwrap();
    inc.register("D", &["C"], |d| Ok(d.get::<u64>("C")? * 10))
        .unwrap();
    inc
}

fn runs(inc: &IncrementalComputation) -> [u64; 4] {
    ["A", "B", "C", "D"].map(|n| inc.runs(n).unwrap())
}

#[test]
fn spec_dependency_tracking_if_a_changes_c_and_d_recompute_not_b() -> Result {
    let (sa, sb) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(5)));
    let mut inc = abcd(&sa, &sb);
    inc.compute_all()?;
    assert_eq!(runs(&inc), [1, 1, 1, 1]);
    assert_eq!(*inc.get::<u64>("D")?, 60);

    sa.store(2, Ordering::SeqCst);
    inc.invalidate("A")?;
    assert!(inc.is_dirty("C")? && inc.is_dirty("D")? && !inc.is_dirty("B")?);
    let report = inc.compute_all()?;
    assert_eq!(report.ran, ["A", "C", "D"]);
    assert_eq!(runs(&inc), [2, 1, 2, 2]);
    assert_eq!(*inc.get::<u64>("D")?, 50);

    // Nothing dirty: nothing runs.
    assert_eq!(inc.compute_all()?.ran, Vec::<String>::new());
    assert_eq!(runs(&inc), [2, 1, 2, 2]);
    Ok(())
}

#[test]
fn spec_load_clean_train_reruns_downstream_of_a_changed_csv() -> Result {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "x\n1.0\nnan\n3.0\n")?;
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut inc = IncrementalComputation::new();
    let (path, c) = (csv.clone(), Arc::clone(&counts));
    inc.register("load_data", &[], move |_| {
        c[0].fetch_add(1, Ordering::SeqCst);
        let text = std::fs::read_to_string(&path)?;
        Ok(text
            .lines()
            .skip(1)
            .map(str::parse::<f64>)
            .collect::<std::result::Result<Vec<f64>, _>>()?)
    })?;
    let c = Arc::clone(&counts);
    inc.register("clean_data", &["load_data"], move |d| {
        c[1].fetch_add(1, Ordering::SeqCst);
        let raw: &Vec<f64> = d.get("load_data")?;
        Ok(raw
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .collect::<Vec<f64>>())
    })?;
    let c = Arc::clone(&counts);
    inc.register("train_model", &["clean_data"], move |d| {
        c[2].fetch_add(1, Ordering::SeqCst);
        let xs: &Vec<f64> = d.get("clean_data")?;
        Ok(xs.iter().sum::<f64>() / xs.len() as f64) // the "model": a mean
    })?;
    let count = || counts.each_ref().map(|c| c.load(Ordering::SeqCst));

    inc.compute_all()?;
    assert_eq!(*inc.get::<f64>("train_model")?, 2.0);
    assert_eq!(count(), [1, 1, 1]);

    std::fs::write(&csv, "x\n1.0\nnan\n5.0\n")?; // update_csv
    inc.invalidate("load_data")?;
    inc.compute_all()?;
    assert_eq!(count(), [2, 2, 2]);
    assert_eq!(*inc.get::<f64>("train_model")?, 3.0);
    Ok(())
}

#[test]
fn early_cutoff_at_the_invalidated_node() -> Result {
    let (sa, sb) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(5)));
    let mut inc = abcd(&sa, &sb);
    inc.compute_all()?;
    inc.invalidate("A")?; // A's data did not actually change
    let report = inc.compute_all()?;
    assert_eq!(report.ran, ["A"]);
    assert_eq!(report.unchanged, ["A"]);
    assert_eq!(report.skipped, ["C", "D"]);
    assert_eq!(runs(&inc), [2, 1, 1, 1]);
    assert_eq!(inc.cutoffs("A")?, 1);
    assert_eq!(*inc.get::<u64>("D")?, 60); // clean again, old value
    Ok(())
}

#[test]
fn early_cutoff_in_the_middle_of_the_graph() -> Result {
    let (sa, sb) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(5)));
    let mut inc = abcd(&sa, &sb);
    inc.compute_all()?;
    sa.store(3, Ordering::SeqCst); // A changes, but C = A % 2 + B does not
    inc.invalidate("A")?;
    let report = inc.compute_all()?;
    assert_eq!(report.ran, ["A", "C"]);
    assert_eq!(report.unchanged, ["C"]);
    assert_eq!(runs(&inc), [2, 1, 2, 1]);
    assert_eq!(inc.stats().cutoffs, 1);
    Ok(())
}

#[test]
fn compute_one_node_then_the_rest_sees_the_earlier_change() -> Result {
    let (sa, sb) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(5)));
    let mut inc = abcd(&sa, &sb);
    inc.compute_all()?;
    sa.store(2, Ordering::SeqCst);
    inc.invalidate("A")?;
    assert_eq!(*inc.compute::<u64>("A")?, 2);
    assert!(matches!(inc.get::<u64>("D"), Err(Error::StaleNode { ref node }) if node == "D"));
    assert_eq!(inc.get_stale::<u64>("D")?.as_deref(), Some(&60));
    // A changed in the previous pass: C and D must still rerun.
    assert_eq!(inc.compute_all()?.ran, ["C", "D"]);
    assert_eq!(*inc.get::<u64>("D")?, 50);
    Ok(())
}

#[test]
fn graph_errors_name_the_nodes() {
    let mut inc = IncrementalComputation::new();
    inc.register("a", &[], |_| Ok(1)).unwrap();
    assert!(matches!(
        inc.register("a", &[], |_| Ok(2)),
        Err(Error::DuplicateNode { ref node }) if node == "a"
    ));
    inc.register("b", &["a", "nope"], |_| Ok(1)).unwrap();
    let err = inc.compute_all().unwrap_err();
    assert!(
        matches!(err, Error::UnknownDependency { ref node, ref dep } if node == "b" && dep == "nope"),
        "{err}"
    );
    assert!(matches!(
        inc.invalidate("zzz"),
        Err(Error::UnknownNode { .. })
    ));

    let mut cyc = IncrementalComputation::new();
    cyc.register("src", &[], |_| Ok(0)).unwrap();
    cyc.register("x", &["src", "z"], |_| Ok(0)).unwrap();
    cyc.register("y", &["x"], |_| Ok(0)).unwrap();
    cyc.register("z", &["y"], |_| Ok(0)).unwrap();
    let err = cyc.compute_all().unwrap_err();
    let Error::DependencyCycle { cycle } = &err else {
        panic!("{err}")
    };
    // In dependency order, whichever node it starts from.
    let start = cycle.iter().position(|n| n == "x").unwrap();
    let rotated: Vec<&str> = (0..3).map(|i| cycle[(start + i) % 3].as_str()).collect();
    assert_eq!(cycle.len(), 4);
    assert_eq!(cycle[0], cycle[3]);
    assert_eq!(rotated, ["x", "y", "z"]);
    assert!(err.to_string().contains(" -> "), "{err}");
}

#[test]
fn reads_are_checked_against_declarations_and_types() {
    let mut inc = IncrementalComputation::new();
    inc.register("a", &[], |_| Ok(1_u32)).unwrap();
    inc.register("sneaky", &[], |d| Ok(*d.get::<u32>("a")?))
        .unwrap();
    inc.register("typo", &["a"], |d| Ok(*d.get::<u64>("a")?))
        .unwrap();
    let err = inc.compute_all().unwrap_err();
    let Error::NodeFailed { node, source, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(node, "sneaky"); // first in topological order
    assert!(
        source.to_string().contains("not among its declared"),
        "{source}"
    );
    assert!(matches!(
        inc.compute::<u64>("typo"),
        Err(Error::NodeFailed { ref node, ref source, .. }) if node == "typo" && source.to_string().contains("u32")
    ));
    assert!(matches!(
        inc.get::<String>("a"),
        Err(Error::NodeType { .. })
    ));
}

#[test]
fn a_failing_node_keeps_the_others_and_recovers() -> Result {
    let broken = Arc::new(AtomicU64::new(0));
    let mut inc = IncrementalComputation::new();
    let source = Arc::new(AtomicU64::new(1));
    let s = Arc::clone(&source);
    inc.register("src", &[], move |_| Ok(s.load(Ordering::SeqCst)))?;
    let b = Arc::clone(&broken);
    inc.register("flaky", &["src"], move |d| match b.load(Ordering::SeqCst) {
        1 => Err(format!("bad input {}", d.get::<u64>("src")?).into()),
        2 => panic!("boom"),
        _ => Ok(*d.get::<u64>("src")? + 1),
    })?;
    inc.register("after", &["flaky"], |d| Ok(*d.get::<u64>("flaky")? * 2))?;
    inc.register("other", &["src"], |d| Ok(*d.get::<u64>("src")? + 100))?;
    inc.compute_all()?;

    for (mode, panicked) in [(1, false), (2, true)] {
        broken.store(mode, Ordering::SeqCst);
        source.fetch_add(1, Ordering::SeqCst);
        inc.invalidate("src")?;
        let err = inc.compute_all().unwrap_err();
        assert!(
            matches!(err, Error::NodeFailed { ref node, panicked: p, .. } if node == "flaky" && p == panicked),
            "{err}"
        );
        // The independent node is fresh; the failed one and its dependent are stale.
        assert_eq!(
            *inc.get::<u64>("other")?,
            source.load(Ordering::SeqCst) + 100
        );
        assert!(inc.is_dirty("flaky")? && inc.is_dirty("after")?);
        assert_eq!(inc.get_stale::<u64>("after")?.as_deref(), Some(&4));
    }
    assert_eq!(inc.runs("after")?, 1);

    broken.store(0, Ordering::SeqCst);
    let report = inc.compute_all()?;
    assert_eq!(report.ran, ["flaky", "after"]);
    assert_eq!(*inc.get::<u64>("after")?, 2 * (3 + 1));
    Ok(())
}

#[test]
fn independent_dirty_nodes_run_in_parallel() -> Result {
    // Each of two nodes waits (up to 10 s) until both are running: only a
    // parallel pass lets both see the other.
    let arrived = Arc::new((Mutex::new(0_usize), Condvar::new()));
    let saw_both = Arc::new(AtomicUsize::new(0));
    let mut inc = IncrementalComputation::with_executor(ParallelExecutor::new(2)?);
    for name in ["left", "right"] {
        let (arrived, saw_both) = (Arc::clone(&arrived), Arc::clone(&saw_both));
        inc.register(name, &[], move |_| {
            let (lock, cv) = &*arrived;
            let mut n = lock.lock().unwrap();
            *n += 1;
            cv.notify_all();
            let deadline = Instant::now() + Duration::from_secs(10);
            while *n < 2 && Instant::now() < deadline {
                n = cv.wait_timeout(n, Duration::from_millis(50)).unwrap().0;
            }
            if *n >= 2 {
                saw_both.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })?;
    }
    inc.compute_all()?;
    assert_eq!(saw_both.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn passes_with_many_roots_and_joins_evaluate_each_node_once() -> Result {
    // 16 roots, each heading a chain of 100, and a sink reading every chain
    // end: fast nodes, so roots finish while the pass is still looking for
    // roots among the other 1,600 nodes (a pass once spawned a node twice in
    // that window).
    let bump = Arc::new(AtomicU64::new(0));
    for executor in [None, Some(ParallelExecutor::new(2)?)] {
        let mut inc = match executor {
            Some(e) => IncrementalComputation::with_executor(e),
            None => IncrementalComputation::new(),
        };
        for i in 0..16 {
            let b = Arc::clone(&bump);
            inc.register(format!("c{i}_0"), &[], move |_| {
                Ok(b.load(Ordering::SeqCst) + i)
            })?;
            for j in 1..100 {
                let dep = format!("c{i}_{}", j - 1);
                let read = dep.clone();
                inc.register(format!("c{i}_{j}"), &[&dep], move |d| {
                    Ok(d.get::<u64>(&read)?.rotate_left(7) ^ j)
                })?;
            }
        }
        let ends: Vec<String> = (0..16).map(|i| format!("c{i}_99")).collect();
        let refs: Vec<&str> = ends.iter().map(String::as_str).collect();
        let names = ends.clone();
        inc.register("sink", &refs, move |d| {
            names
                .iter()
                .try_fold(0_u64, |acc, n| Ok(acc.wrapping_add(*d.get::<u64>(n)?)))
        })?;
        inc.compute_all()?;
        for round in 1..=30_u64 {
            bump.fetch_add(1, Ordering::SeqCst);
            for i in 0..16 {
                inc.invalidate(&format!("c{i}_0"))?;
            }
            assert_eq!(inc.compute_all()?.ran.len(), 1601);
            assert_eq!(inc.runs("sink")?, round + 1);
        }
    }
    Ok(())
}

/// 1,000 nodes: 10 chains of 100; node `c{i}_{j}` depends on `c{i}_{j-1}`
/// and on outside data (`bump`), so an invalidated node's value changes.
fn chains(bump: &Arc<AtomicU64>) -> IncrementalComputation {
    let mut inc = IncrementalComputation::new();
    for i in 0..10 {
        let b = Arc::clone(bump);
        inc.register(
            format!("c{i}_0"),
            &[],
            move |_| Ok(b.load(Ordering::SeqCst)),
        )
        .unwrap();
        for j in 1..100 {
            let dep = format!("c{i}_{}", j - 1);
            let dep2 = dep.clone();
            let b = Arc::clone(bump);
            inc.register(format!("c{i}_{j}"), &[&dep], move |d| {
                let x = d.get::<u64>(&dep2)?.wrapping_mul(31);
                Ok(x.wrapping_add(b.load(Ordering::SeqCst)))
            })
            .unwrap();
        }
    }
    inc
}

#[test]
fn invalidation_work_is_the_affected_nodes_only() -> Result {
    let bump = Arc::new(AtomicU64::new(0));
    let mut inc = chains(&bump);
    inc.compute_all()?;
    assert_eq!(inc.stats().runs, 1000);
    for affected in [1_u64, 10, 100] {
        let before = inc.stats().runs;
        bump.fetch_add(1, Ordering::SeqCst);
        inc.invalidate(&format!("c3_{}", 100 - affected))?;
        inc.compute_all()?;
        assert_eq!(inc.stats().runs - before, affected);
    }
    Ok(())
}

// ---------------------------------------------------------------- the store

#[test]
fn store_round_trips_dedups_and_persists_across_opens() -> Result {
    let dir = tempfile::tempdir()?;
    let value = (String::from("model"), vec![0.5_f64; 1000]);
    let key = KeyBuilder::new("train")
        .input("x", Fingerprint::of(&1_u8)?)
        .finish();
    let hash = {
        let store = ArtifactStore::open(dir.path())?;
        let hash = store.put(&value)?;
        assert_eq!(store.put(&value)?, hash);
        assert_eq!(store.put_bytes(&codec::encode(&value)?)?, hash);
        store.insert_entry(&key, "train", &[hash], Duration::from_millis(3))?;
        let s = store.stats()?;
        assert_eq!((s.artifacts, s.entries), (1, 1));
        assert_eq!(
            s.bytes,
            std::fs::metadata(store.artifact_path(&hash))?.len()
        );
        // File names are hashes, never artifact names.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("artifacts"))?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [hash.to_hex()]);
        hash
    };
    let store = ArtifactStore::open(dir.path())?;
    let entry = store.lookup(&key)?.expect("entry survives reopening");
    assert_eq!(entry.outputs, [hash]);
    assert_eq!(entry.step, "train");
    assert_eq!(store.get::<(String, Vec<f64>)>(&hash)?, Some(value));
    assert!(store.lookup(&Fingerprint::of_bytes(b"other"))?.is_none());
    let s = store.stats()?;
    assert_eq!((s.hits, s.misses), (1, 1));
    assert!(store.verify()?.is_empty());
    Ok(())
}

fn flip_byte(path: &std::path::Path, at: usize) -> Result {
    let mut bytes = std::fs::read(path)?;
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn a_flipped_byte_is_detected_never_served_and_recomputed() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let key = KeyBuilder::new("step").finish();
    let value = vec![7_u64; 100];
    let hash = store.put(&value)?;
    store.insert_entry(&key, "step", &[hash], Duration::ZERO)?;
    flip_byte(&store.artifact_path(&hash), 50)?;

    let entry = store.lookup(&key)?.expect("the entry itself is fine");
    let err = store.get::<Vec<u64>>(&entry.outputs[0]).unwrap_err();
    assert!(
        matches!(err, Error::CorruptArtifact { ref hash, .. } if *hash == entry.outputs[0].to_hex()),
        "{err}"
    );
    // Removed with the entry that needed it: the next run misses and recomputes.
    assert!(!store.artifact_path(&hash).exists());
    assert!(store.lookup(&key)?.is_none());
    assert_eq!(store.get::<Vec<u64>>(&hash)?, None);
    let again = store.put(&value)?;
    store.insert_entry(&key, "step", &[again], Duration::ZERO)?;
    assert_eq!(store.get::<Vec<u64>>(&again)?, Some(value));
    Ok(())
}

#[test]
fn truncated_oversized_and_crafted_files_are_rejected() -> Result {
    let dir = tempfile::tempdir()?;
    let options = StoreOptions {
        max_artifact_bytes: 4096,
        ..StoreOptions::default()
    };
    let store = ArtifactStore::open_with(dir.path(), options)?;

    let hash = store.put(&vec![1_u8; 1000])?;
    let path = store.artifact_path(&hash);
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..bytes.len() / 2])?;
    assert!(matches!(
        store.get_bytes(&hash),
        Err(Error::CorruptArtifact { .. })
    ));

    // A file beyond the bound, and beyond the size the store recorded, is
    // refused before it is read.
    let hash = store.put(&vec![2_u8; 1000])?;
    std::fs::write(store.artifact_path(&hash), vec![0_u8; 1 << 20])?;
    let err = store.get_bytes(&hash).unwrap_err();
    assert!(err.to_string().contains("1048576 bytes where"), "{err}");

    // A crafted file under its own (correct) hash: a length prefix claiming
    // 2^62 elements. It passes the hash check and fails decoding, without
    // allocating for the claim.
    let mut crafted = codec::HEADER.to_vec();
    crafted.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]);
    let hash = store.put_bytes(&crafted)?;
    assert!(matches!(
        store.get::<Vec<u64>>(&hash),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        store.get::<Vec<String>>(&hash),
        Err(Error::Decode { .. })
    ));
    Ok(())
}

#[test]
fn lru_eviction_under_a_byte_bound() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path())?;
    let blob = |b: u8| vec![b; 1000];
    let a = store.put_bytes(&blob(1))?;
    let b = store.put_bytes(&blob(2))?;
    let key_b = KeyBuilder::new("b").finish();
    store.insert_entry(&key_b, "b", &[b], Duration::ZERO)?;
    let c = store.put_bytes(&blob(3))?;
    assert!(store.get_bytes(&a)?.is_some()); // a is now more recent than b
    store.set_max_bytes(Some(3500));
    let d = store.put_bytes(&blob(4))?; // 4000 bytes: one must go, the LRU: b
    assert!(!store.contains(&b)?);
    assert!(
        store.lookup(&key_b)?.is_none(),
        "the entry needing b went with it"
    );
    for h in [a, c, d] {
        assert!(store.contains(&h)?);
    }
    let s = store.stats()?;
    assert_eq!((s.artifacts, s.bytes, s.evictions), (3, 3000, 1));

    let ev = store.evict_to(1000)?;
    assert_eq!(ev.artifacts, [c, a]); // least recently used first
    assert_eq!(store.stats()?.bytes, 1000);
    assert!(store.contains(&d)?);
    Ok(())
}

#[test]
fn external_files_are_fingerprinted_by_content() -> Result {
    let dir = tempfile::tempdir()?;
    let store = ArtifactStore::open(dir.path().join("cache"))?;
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "x\n1\n")?;
    let first = store.file_fingerprint(&csv)?;
    assert_eq!(first, Fingerprint::of_bytes(b"x\n1\n"));
    assert_eq!(store.file_fingerprint(&csv)?, first);
    std::fs::write(&csv, "x\n2\n")?;
    assert_ne!(store.file_fingerprint(&csv)?, first);
    Ok(())
}

#[test]
fn a_node_registered_later_runs_alone() -> Result {
    let (sa, sb) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(5)));
    let mut inc = abcd(&sa, &sb);
    inc.compute_all()?;
    inc.register("E", &["D", "B"], |d| {
        Ok(d.get::<u64>("D")? - d.get::<u64>("B")?)
    })?;
    assert_eq!(inc.compute_all()?.ran, ["E"]);
    assert_eq!(*inc.get::<u64>("E")?, 55);
    sb.store(6, Ordering::SeqCst);
    inc.invalidate("B")?;
    assert_eq!(inc.compute_all()?.ran, ["B", "C", "D", "E"]);
    assert_eq!(*inc.get::<u64>("E")?, 64);
    Ok(())
}

#[test]
fn a_dependency_declared_twice_counts_once() -> Result {
    let mut inc = IncrementalComputation::new();
    inc.register("a", &[], |_| Ok(2_u64))?;
    inc.register("b", &[], |_| Ok(3_u64))?;
    inc.register("ab", &["a", "a", "b"], |d| {
        Ok(d.get::<u64>("a")? * d.get::<u64>("b")?)
    })?;
    assert_eq!(*inc.compute::<u64>("ab")?, 6);
    Ok(())
}

mod never_stale {
    use super::*;
    use proptest::prelude::*;

    /// A random DAG (node `i` reads some of `0..i`), each node also reading
    /// its own outside value; values mod 3, so early cutoff is frequent.
    fn value_of(i: usize, deps: &[usize], outside: &[u64], values: &[u64]) -> u64 {
        (outside[i]
            + deps
                .iter()
                .map(|&d| values[d] * (d as u64 + 1))
                .sum::<u64>())
            % 3
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn after_any_invalidations_every_value_equals_a_full_recomputation(
            masks in prop::collection::vec(any::<u32>(), 2..24),
            changes in prop::collection::vec((any::<prop::sample::Index>(), 0..5_u64, any::<bool>()), 1..30),
        ) {
            let n = masks.len();
            let deps: Vec<Vec<usize>> = (0..n).map(|i| (0..i).filter(|&d| masks[i] >> (d % 32) & 1 == 1).collect()).collect();
            let outside: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
            let mut inc = IncrementalComputation::new();
            for (i, node_deps) in deps.iter().enumerate() {
                let names: Vec<String> = node_deps.iter().map(|d| format!("n{d}")).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let (my_deps, out) = (node_deps.clone(), Arc::clone(&outside));
                inc.register(format!("n{i}"), &refs, move |d| {
                    let mut values = vec![0; i];
                    for &dep in &my_deps {
                        values[dep] = *d.get::<u64>(&format!("n{dep}"))?;
                    }
                    let outside: Vec<u64> = out.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                    Ok(value_of(i, &my_deps, &outside, &values))
                }).unwrap();
            }
            inc.compute_all().unwrap();
            let mut invalidated = Vec::new();
            for (at, v, compute_now) in changes {
                let i = at.index(n);
                outside[i].store(v, Ordering::SeqCst);
                inc.invalidate(&format!("n{i}")).unwrap();
                invalidated.push(i);
                if compute_now {
                    let report = inc.compute_all().unwrap();
                    // Only what is downstream of an invalidated node may run.
                    let mut reach: HashSet<usize> = invalidated.drain(..).collect();
                    for (j, node_deps) in deps.iter().enumerate() {
                        if node_deps.iter().any(|d| reach.contains(d)) {
                            reach.insert(j);
                        }
                    }
                    for name in &report.ran {
                        let j: usize = name[1..].parse().unwrap();
                        prop_assert!(reach.contains(&j), "{name} ran outside the invalidated region");
                    }
                }
            }
            inc.compute_all().unwrap();
            let outside_now: Vec<u64> = outside.iter().map(|a| a.load(Ordering::SeqCst)).collect();
            let mut expected = vec![0; n];
            for i in 0..n {
                expected[i] = value_of(i, &deps[i], &outside_now, &expected);
                prop_assert_eq!(*inc.get::<u64>(&format!("n{i}")).unwrap(), expected[i], "node n{}", i);
            }
        }
    }
}

/// A node whose value comes from `source` (as bits), read by `1.0 / x`
/// and by `x`'s bits: the cutoff must see every bit.
fn reciprocal_of(source: &Arc<AtomicU64>) -> IncrementalComputation {
    let mut inc = IncrementalComputation::new();
    let s = Arc::clone(source);
    inc.register("x", &[], move |_| {
        Ok(f64::from_bits(s.load(Ordering::SeqCst)))
    })
    .unwrap();
    inc.register("inverse", &["x"], |d| Ok(1.0 / *d.get::<f64>("x")?))
        .unwrap();
    inc.register("bits", &["x"], |d| Ok(d.get::<f64>("x")?.to_bits()))
        .unwrap();
    inc
}

/// `0.0 == -0.0`, but `1.0 / x` tells them apart: the cutoff once trusted
/// `PartialEq` and left `inverse` at `+inf`.
#[test]
fn early_cutoff_tells_zero_from_negative_zero() -> Result {
    let source = Arc::new(AtomicU64::new(0.0_f64.to_bits()));
    let mut inc = reciprocal_of(&source);
    inc.compute_all()?;
    assert_eq!(*inc.get::<f64>("inverse")?, f64::INFINITY);

    source.store((-0.0_f64).to_bits(), Ordering::SeqCst);
    inc.invalidate("x")?;
    let report = inc.compute_all()?;
    assert!(report.unchanged.is_empty(), "{report:?}");
    assert_eq!(*inc.get::<f64>("inverse")?, f64::NEG_INFINITY);

    // The same bits again: a real cutoff.
    inc.invalidate("x")?;
    let report = inc.compute_all()?;
    assert_eq!(report.unchanged, ["x"]);
    assert_eq!(inc.runs("inverse")?, 2);
    Ok(())
}

/// NaNs with different payloads are different values (and `NaN != NaN`
/// must not make the same NaN a change either).
#[test]
fn early_cutoff_tells_nan_payloads_apart_and_keeps_the_same_nan() -> Result {
    let (quiet, other) = (0x7ff8_0000_0000_0001_u64, 0x7ff8_0000_0000_0002_u64);
    let source = Arc::new(AtomicU64::new(quiet));
    let mut inc = reciprocal_of(&source);
    inc.compute_all()?;
    assert_eq!(*inc.get::<u64>("bits")?, quiet);

    source.store(other, Ordering::SeqCst);
    inc.invalidate("x")?;
    inc.compute_all()?;
    assert_eq!(*inc.get::<u64>("bits")?, other);

    inc.invalidate("x")?;
    let report = inc.compute_all()?;
    assert_eq!(report.unchanged, ["x"], "the same NaN is the same value");
    assert_eq!(inc.runs("bits")?, 2);
    Ok(())
}

/// `register_with` takes the caller's own "same value" relation.
#[test]
fn register_with_cuts_off_by_the_callers_relation() -> Result {
    struct Reading {
        value: f64,
        taken_at: u64,
    }
    let clock = Arc::new(AtomicU64::new(0));
    let mut inc = IncrementalComputation::new();
    let c = Arc::clone(&clock);
    inc.register_with(
        "reading",
        &[],
        // Readings of the same value are the same, whenever taken.
        |old: &Reading, new: &Reading| old.value.to_bits() == new.value.to_bits(),
        move |_| {
            Ok(Reading {
                value: 2.5,
                taken_at: c.fetch_add(1, Ordering::SeqCst),
            })
        },
    )?;
    inc.register("doubled", &["reading"], |d| {
        Ok(d.get::<Reading>("reading")?.value * 2.0)
    })?;
    inc.compute_all()?;
    inc.invalidate("reading")?;
    let report = inc.compute_all()?;
    assert_eq!(report.unchanged, ["reading"]);
    assert_eq!(inc.runs("doubled")?, 1);
    // The cut-off node keeps its previous value.
    assert_eq!(inc.get::<Reading>("reading")?.taken_at, 0);
    Ok(())
}

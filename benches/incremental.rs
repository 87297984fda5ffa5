//! Incremental recomputation: invalidating one leaf of a 1,000-node graph
//! against recomputing it all; the on-disk store per entry; loading a cached
//! 100 MB artifact against recomputing it.
//!
//! `cargo bench --bench incremental`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use flowyml::IncrementalComputation;
use flowyml::incremental::{ArtifactStore, Fingerprint, KeyBuilder, StoreOptions, codec};

/// About a microsecond of work, so that a node is more than bookkeeping.
fn work(mut x: u64) -> u64 {
    for i in 0..256 {
        x = x.rotate_left(5) ^ i;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    x
}

/// 10 chains of 100 nodes; every node also reads `bump`, so an invalidated
/// node's value changes and its whole downstream reruns.
fn graph(bump: &Arc<AtomicU64>) -> IncrementalComputation {
    let mut inc = IncrementalComputation::new();
    for i in 0..10 {
        let b = Arc::clone(bump);
        inc.register(format!("c{i}_0"), &[], move |_| {
            Ok(work(b.load(Ordering::Relaxed)))
        })
        .unwrap();
        for j in 1..100 {
            let dep = format!("c{i}_{}", j - 1);
            let read = dep.clone();
            let b = Arc::clone(bump);
            inc.register(format!("c{i}_{j}"), &[&dep], move |d| {
                Ok(work(d.get::<u64>(&read)? ^ b.load(Ordering::Relaxed)))
            })
            .unwrap();
        }
    }
    inc.compute_all().unwrap();
    inc
}

fn invalidation(c: &mut Criterion) {
    let mut g = c.benchmark_group("incremental/1000_nodes");
    let bump = Arc::new(AtomicU64::new(0));
    let mut inc = graph(&bump);
    for affected in [1, 10, 100] {
        let leaf = format!("c3_{}", 100 - affected);
        g.bench_with_input(
            BenchmarkId::new("invalidate_affecting", affected),
            &leaf,
            |b, leaf| {
                b.iter(|| {
                    bump.fetch_add(1, Ordering::Relaxed);
                    inc.invalidate(leaf).unwrap();
                    black_box(inc.compute_all().unwrap());
                });
            },
        );
    }
    g.bench_function("recompute_all", |b| {
        b.iter(|| {
            bump.fetch_add(1, Ordering::Relaxed);
            for i in 0..10 {
                inc.invalidate(&format!("c{i}_0")).unwrap();
            }
            black_box(inc.compute_all().unwrap());
        });
    });
    g.bench_function("no_change", |b| {
        b.iter(|| black_box(inc.compute_all().unwrap()))
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let mut g = c.benchmark_group("incremental/store");
    let mut n = 0_u64;
    // Storing a 1 KiB artifact and an entry pointing at it.
    g.bench_function("store_step_1KiB/durable", |b| {
        b.iter(|| {
            n += 1;
            let mut blob = vec![0_u8; 1024];
            blob[..8].copy_from_slice(&n.to_le_bytes());
            let hash = store.put_bytes(&blob).unwrap();
            let key = KeyBuilder::new("bench").option("n", &n).unwrap().finish();
            store
                .insert_entry(&key, "bench", &[hash], Duration::ZERO)
                .unwrap();
        });
    });
    let fast_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fast = ArtifactStore::open_with(
        fast_dir.path(),
        StoreOptions {
            durable: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    g.bench_function("store_step_1KiB/not_durable", |b| {
        b.iter(|| {
            n += 1;
            let mut blob = vec![0_u8; 1024];
            blob[..8].copy_from_slice(&n.to_le_bytes());
            let hash = fast.put_bytes(&blob).unwrap();
            let key = KeyBuilder::new("bench").option("n", &n).unwrap().finish();
            fast.insert_entry(&key, "bench", &[hash], Duration::ZERO)
                .unwrap();
        });
    });
    let keys: Vec<Fingerprint> = (0..1000_u64)
        .map(|i| {
            let h = store.put(&vec![i; 128]).unwrap();
            let key = KeyBuilder::new("hit").option("i", &i).unwrap().finish();
            store
                .insert_entry(&key, "hit", &[h], Duration::ZERO)
                .unwrap();
            key
        })
        .collect();
    let mut i = 0;
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(store.lookup(&keys[i]).unwrap().unwrap());
        });
    });
    g.bench_function("lookup_and_load_1KiB", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            let e = store.lookup(&keys[i]).unwrap().unwrap();
            black_box(store.get::<Vec<u64>>(&e.outputs[0]).unwrap().unwrap());
        });
    });
    g.finish();
}

/// The "expensive" computation behind a 100 MB artifact: a feature
/// transform over 12.5 million values.
fn recompute_100mb() -> Vec<f64> {
    (0..12_500_000_u64)
        .map(|i| ((i as f64).sqrt() * 1e-3).sin() * (i as f64 * 1e-7).ln_1p())
        .collect()
}

fn big_artifact(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let value = recompute_100mb();
    let hash = store.put(&value).unwrap();
    drop(value);
    let mut g = c.benchmark_group("incremental/100MB");
    g.sample_size(10);
    g.bench_function("recompute", |b| b.iter(|| black_box(recompute_100mb())));
    g.bench_function("load_cached", |b| {
        b.iter(|| black_box(store.get::<Vec<f64>>(&hash).unwrap().unwrap()));
    });
    // Where loading spends its time.
    let path = store.artifact_path(&hash);
    g.bench_function("load_parts/read_file", |b| {
        b.iter(|| black_box(std::fs::read(&path).unwrap()))
    });
    let bytes = std::fs::read(&path).unwrap();
    g.bench_function("load_parts/hash", |b| {
        b.iter(|| black_box(Fingerprint::of_bytes(&bytes)))
    });
    g.bench_function("load_parts/decode", |b| {
        b.iter(|| black_box(codec::decode::<Vec<f64>>(&bytes).unwrap()))
    });
    drop(bytes);
    g.bench_function("store", |b| {
        b.iter_batched(
            recompute_100mb,
            |v| {
                // Encoding, hashing, writing and fsyncing 100 MB (the same content
                // each time, so the store does not grow).
                black_box(store.put(&v).unwrap());
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = invalidation, store, big_artifact
}
criterion_main!(benches);

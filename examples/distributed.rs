//! A pipeline made to run on a cluster (`python -m flowyml_ray run`, the
//! book's "Running on a Ray cluster" chapter): every kind of edge a
//! distributed run meets.
//!
//! - a fan-out and join of serde types: `samples` → `shard_0`..`shard_3`
//!   → `join` → `report`;
//! - a DataFrame artifact: `samples` → `to_table` → `group_means`;
//! - a GPU step with a CPU fallback, exact either way: `gram`;
//! - an opaque edge (a type with no encoding), which ties `build_index`
//!   and `probe_index` to one process.
//!
//! `lines` reads a file named by its input; `given_index` has an opaque
//! input, which no other process can fingerprint. Two more pipelines, `chain50`
//! and `fanout50` (50 steps of about 10 ms
//! of CPU each, in a chain and side by side), measure what a distributed
//! run costs per task.
//!
//! ```text
//! cargo run --example distributed -- run distributed --input rows=2000
//! cargo run --example distributed -- plan distributed --json
//! python -m flowyml_ray run --binary target/debug/examples/distributed --pipeline distributed --input rows=2000
//! ```
//!
//! `FLOWYML_DISTRIBUTED_FAIL=join` makes `join` fail, and
//! `FLOWYML_DISTRIBUTED_FAIL=join:once:FILE` makes it fail only while FILE
//! does not exist (creating it): how the tests inject a failure, and a
//! failure that a retry cures.

use std::collections::BTreeMap;
use std::process::ExitCode;

use flowyml::dataframe::polars::prelude::*;
use flowyml::step::{FnStep, StepContext};
use flowyml::{BoxError, Pipeline, register_pipeline, step};
use flowyml_workspace::SplitMix64;

/// One measurement: an id, the group it belongs to, a value.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    id: u64,
    group: u32,
    value: f64,
}

/// What one shard of the samples sums to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardStats {
    shard: usize,
    count: u64,
    sum: f64,
    max: f64,
}

/// The shards joined.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    count: u64,
    mean: f64,
    max: f64,
}

/// The samples' ids by group: an in-memory index with no encoding, so
/// the artifact is opaque and its edge cannot leave a process.
pub struct Index {
    by_group: BTreeMap<u32, Vec<u64>>,
}

/// How many shards the fan-out has.
const SHARDS: usize = 4;

/// The side of the matrix `gram` multiplies.
const GRAM: usize = 32;

/// Generates `rows` samples, deterministically.
#[step(outputs = ["samples"])]
pub fn samples(rows: &usize) -> Vec<Sample> {
    let mut rng = SplitMix64::new(7);
    (0..*rows as u64)
        .map(|id| Sample {
            id,
            group: rng.below(5) as u32,
            value: 100.0 * rng.next_f64(),
        })
        .collect()
}

/// One shard's statistics: the samples whose id is `shard` modulo the
/// number of shards.
fn shard_step(shard: usize) -> FnStep {
    FnStep::builder(format!("shard_{shard}"))
        .stored_input::<Vec<Sample>>("samples")
        .stored_output::<ShardStats>(format!("stats_{shard}"))
        .version("shard v1")
        .build(move |ctx| {
            let samples = ctx.input::<Vec<Sample>>(0)?;
            let mine = samples.iter().filter(|s| s.id as usize % SHARDS == shard);
            let (count, sum, max) = mine.fold((0, 0.0, f64::MIN), |(c, s, m), x| {
                (c + 1, s + x.value, m.max(x.value))
            });
            ctx.set_output(
                0,
                ShardStats {
                    shard,
                    count,
                    sum,
                    max,
                },
            );
            Ok(())
        })
}

/// Fails as `FLOWYML_DISTRIBUTED_FAIL` says, if it names `step`.
fn injected_failure(step: &str) -> Result<(), BoxError> {
    let Ok(spec) = std::env::var("FLOWYML_DISTRIBUTED_FAIL") else {
        return Ok(());
    };
    let (name, once) = match spec.split_once(":once:") {
        Some((name, marker)) => (name, Some(marker)),
        None => (spec.as_str(), None),
    };
    if name != step {
        return Ok(());
    }
    match once {
        None => Err(format!("failure injected into `{step}`").into()),
        Some(marker) if std::path::Path::new(marker).exists() => Ok(()),
        Some(marker) => {
            std::fs::write(marker, b"failed once")?;
            Err(format!("failure injected into `{step}` (once)").into())
        }
    }
}

/// Joins the shards' statistics.
fn join_step() -> FnStep {
    let mut builder = FnStep::builder("join");
    for shard in 0..SHARDS {
        builder = builder.stored_input::<ShardStats>(format!("stats_{shard}"));
    }
    builder
        .stored_output::<Summary>("summary")
        .version("join v1")
        .build(|ctx| {
            injected_failure("join")?;
            let (mut count, mut sum, mut max) = (0, 0.0, f64::MIN);
            for shard in 0..SHARDS {
                let stats = ctx.input::<ShardStats>(shard)?;
                count += stats.count;
                sum += stats.sum;
                max = max.max(stats.max);
            }
            let mean = if count == 0 { 0.0 } else { sum / count as f64 };
            ctx.set_output(0, Summary { count, mean, max });
            Ok(())
        })
}

/// A line about the summary.
#[step(outputs = ["report"])]
pub fn report(summary: &Summary) -> String {
    format!(
        "{} samples, mean {:.3}, max {:.3}",
        summary.count, summary.mean, summary.max
    )
}

/// The samples as a table.
#[step(outputs = ["table"])]
pub fn to_table(samples: &Vec<Sample>) -> PolarsResult<DataFrame> {
    df!(
        "id" => samples.iter().map(|s| s.id).collect::<Vec<_>>(),
        "group" => samples.iter().map(|s| s.group).collect::<Vec<_>>(),
        "value" => samples.iter().map(|s| s.value).collect::<Vec<_>>()
    )
}

/// The mean value of each group, read from the table.
#[step(outputs = ["group_means"])]
pub fn group_means(table: &DataFrame) -> PolarsResult<Vec<(u32, f64)>> {
    let groups = table.column("group")?.u32()?;
    let values = table.column("value")?.f64()?;
    let mut sums: BTreeMap<u32, (f64, u32)> = BTreeMap::new();
    for (g, v) in groups.iter().zip(values.iter()) {
        if let (Some(g), Some(v)) = (g, v) {
            let entry = sums.entry(g).or_default();
            *entry = (entry.0 + v, entry.1 + 1);
        }
    }
    Ok(sums
        .into_iter()
        .map(|(g, (s, n))| (g, s / f64::from(n)))
        .collect())
}

/// The product of two integer matrices made from the samples: on the GPU
/// where the run has one (feature `gpu`), else on the CPU. Integer
/// arithmetic is exact, so both give the same bytes and the same
/// fingerprint.
#[step(outputs = ["gram"], gpu)]
pub fn gram(samples: &Vec<Sample>, ctx: &mut StepContext) -> Result<Vec<u32>, BoxError> {
    let a: Vec<u32> = (0..GRAM * GRAM)
        .map(|i| samples.get(i).map_or(0, |s| s.value as u32 % 16))
        .collect();
    let b: Vec<u32> = (0..GRAM * GRAM).map(|i| (i % 7) as u32).collect();
    #[cfg(feature = "gpu")]
    if let Ok(gpu) = ctx.resource::<flowyml::gpu::Gpu>() {
        let kernel = flowyml_workspace::gpu_kernels::matmul_kernel(gpu)?;
        let c = flowyml_workspace::gpu_kernels::matmul_gpu(&kernel, &a, &b, GRAM)?;
        ctx.note(format!("on the GPU: {}", gpu.info().name));
        return Ok(c);
    }
    ctx.note("no GPU in this run: CPU fallback");
    let mut c = vec![0u32; GRAM * GRAM];
    for i in 0..GRAM {
        for k in 0..GRAM {
            let aik = a[i * GRAM + k];
            for j in 0..GRAM {
                c[i * GRAM + j] = c[i * GRAM + j].wrapping_add(aik.wrapping_mul(b[k * GRAM + j]));
            }
        }
    }
    Ok(c)
}

/// Indexes the samples by group (opaque: kept in memory only).
#[step(outputs = ["index"])]
pub fn build_index(samples: &Vec<Sample>) -> Index {
    let mut by_group: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for s in samples {
        by_group.entry(s.group).or_default().push(s.id);
    }
    Index { by_group }
}

/// How many samples each group has, read from the index.
#[step(outputs = ["group_sizes"])]
pub fn probe_index(index: &Index) -> Vec<u64> {
    index
        .by_group
        .values()
        .map(|ids| ids.len() as u64)
        .collect()
}

/// The example pipeline; its input is `rows`.
pub fn distributed() -> Pipeline {
    let mut p = Pipeline::new("distributed");
    p.add_step(samples);
    for shard in 0..SHARDS {
        p.add_step(shard_step(shard));
    }
    p.add_step(join_step())
        .add_step(report)
        .add_step(to_table)
        .add_step(group_means)
        .add_step(gram)
        .add_step(build_index)
        .add_step(probe_index);
    p
}

register_pipeline!("distributed", distributed);

/// The steps of the overhead pipelines.
const STEPS: usize = 50;

/// Rounds of mixing that take about 10 ms of CPU in the test profile's
/// build, on which the overhead is measured.
const WORK: u64 = 1_400_000;

/// A step of about 10 ms of CPU: mixes its input `WORK` times.
fn busy_step(name: String, input: String, output: String) -> FnStep {
    FnStep::builder(name)
        .stored_input::<u64>(input)
        .stored_output::<u64>(output)
        .version("busy v1")
        .build(|ctx| {
            let mut rng = SplitMix64::new(*ctx.input::<u64>(0)?);
            let mut x = 0u64;
            for _ in 0..WORK {
                x ^= rng.next_u64();
            }
            ctx.set_output(0, x);
            Ok(())
        })
}

/// `STEPS` busy steps in a chain, each reading the one before; the input
/// is `seed` (a `u64`).
pub fn chain50() -> Pipeline {
    let mut p = Pipeline::new("chain50");
    for i in 0..STEPS {
        let input = if i == 0 {
            "seed".to_owned()
        } else {
            format!("c{}", i - 1)
        };
        p.add_step(busy_step(format!("link_{i}"), input, format!("c{i}")));
    }
    p
}

/// `STEPS` busy steps side by side, each reading the input `seed`.
pub fn fanout50() -> Pipeline {
    let mut p = Pipeline::new("fanout50");
    for i in 0..STEPS {
        p.add_step(busy_step(
            format!("leaf_{i}"),
            "seed".to_owned(),
            format!("f{i}"),
        ));
    }
    p
}

/// The lines of the file at `path`, read through the step's context so
/// that a cache entry made on any node keeps the file's hash.
#[step(outputs = ["lines"])]
pub fn count_lines(path: &String, ctx: &mut StepContext) -> Result<usize, BoxError> {
    Ok(ctx.read_to_string(path)?.lines().count())
}

/// One step that reads a file named by its input `path`.
pub fn lines() -> Pipeline {
    let mut p = Pipeline::new("lines");
    p.add_step(count_lines);
    p
}

register_pipeline!("lines", lines);

/// The samples' index given in code as an opaque input: its fingerprint is
/// new in each process, so `probe_index` cannot run in another one.
pub fn given_index() -> Pipeline {
    let mut p = Pipeline::new("given_index");
    p.input_opaque(
        "index",
        Index {
            by_group: BTreeMap::from([(0, vec![1, 2])]),
        },
    )
    .add_step(probe_index);
    p
}

register_pipeline!("given_index", given_index);
register_pipeline!("chain50", chain50);
register_pipeline!("fanout50", fanout50);

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        return flowyml::cli::main();
    }
    let mut p = distributed();
    p.input("rows", 2000usize);
    match p.run() {
        Ok(result) => {
            print!("{}", result.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

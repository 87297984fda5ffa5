//! Scheduling overhead against the floor: chains, fan-outs and random DAGs
//! of no-op steps (each summing its inputs) at 1k, 10k and 100k steps, run
//! by flowyml and by a hand-written rayon DAG ([`Floor`]) on the same pool,
//! interleaved; and 8 CPU-bound steps against sequential code.
//!
//! ```text
//! cargo bench --bench scheduler                 # every ratio
//! cargo bench --bench scheduler -- random       # only names containing "random"
//! cargo bench --bench scheduler -- --memory     # peak memory per step, in child processes
//! ```
//!
//! `cached_rerun_random_10000` compares a no-change rerun of an
//! incremental pipeline (each step served from its cache in memory) with
//! a run of the same pipeline without a cache, instead of with the floor.
//!
//! Each line gives the median time of both and the ratio flowyml / floor:
//! the median of the repetitions' ratios, with the best and the worst.
//! Each line is measured in a process of its own: a pipeline's steps are
//! heap objects, so a heap left fragmented by the cases before (10k-step
//! pipelines built and dropped 61 times) would scatter the next case's
//! steps and measure the harness rather than the scheduler.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use flowyml_workspace::bench::{self, Deps, Floor, interleave};
use flowyml_workspace::{busy_work, calibration};
use rayon::prelude::*;

/// A pipeline running `deps` with steps that sum their inputs. Each
/// step's closure captures its input count, as a generated step captures
/// its parameters; `build_copied` keeps it inline in the pipeline's array
/// of step code (with `build`, each closure's captures are a heap object
/// of their own: see the benchmarks page).
fn pipeline_of(deps: &Deps) -> Pipeline {
    let mut p = Pipeline::new("bench");
    for (i, inputs) in deps.iter().enumerate() {
        let mut step = FnStep::builder(format!("s{i}")).version("1");
        for d in inputs {
            step = step.input::<u64>(format!("a{d}"));
        }
        let n = inputs.len();
        p.add_step(
            step.output::<u64>(format!("a{i}"))
                .build_copied(move |ctx| {
                    let mut sum = 0u64;
                    for k in 0..n {
                        sum = sum.wrapping_add(*ctx.input::<u64>(k)?);
                    }
                    ctx.set_output(0, sum.wrapping_add(1));
                    Ok(())
                }),
        );
    }
    p
}

fn reps_for(n: usize) -> usize {
    match n {
        0..=1_000 => 301,
        1_001..=10_000 => 61,
        _ => 11,
    }
}

fn line(what: &str, n: usize, r: bench::Ratio) {
    line_against(what, "floor", n, r);
}

fn line_against(what: &str, baseline: &str, n: usize, r: bench::Ratio) {
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{what:<34} flowyml {:>9.3?} ({:.3} µs/step)  {baseline} {:>9.3?} ({:.3} µs/step)  ratio {:.2} (best {:.2}, worst {:.2})",
        r.median,
        per(r.median),
        r.baseline_median,
        per(r.baseline_median),
        r.ratio,
        r.best,
        r.worst
    );
}

/// The names of the scheduler cases, in the order they run.
fn cases() -> Vec<String> {
    let mut names = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        for shape in ["chain", "fan_out", "random"] {
            names.push(format!("rerun_{shape}_{n}"));
            if n == 10_000 {
                names.push(format!("first_run_{shape}_{n}"));
            }
            if n == 10_000 && shape == "random" {
                names.push(format!("cached_rerun_{shape}_{n}"));
            }
        }
    }
    names
}

/// Runs each wanted case in a child process of its own (see the module
/// docs), its line printed as it comes.
fn overhead_in_children(wanted: &dyn Fn(&str) -> bool) {
    let exe = std::env::current_exe().expect("this benchmark");
    for case in cases().into_iter().filter(|c| wanted(c)) {
        let status = Command::new(&exe)
            .env("FLOWYML_BENCH_CASE", &case)
            .status()
            .expect("a child process");
        assert!(status.success(), "case {case} failed: {status}");
    }
}

fn overhead(executor: &ParallelExecutor, wanted: &dyn Fn(&str) -> bool) {
    for n in [1_000, 10_000, 100_000] {
        for (shape, deps) in bench::shapes(n) {
            let name = format!("rerun_{shape}_{n}");
            if wanted(&name) {
                let pipeline = pipeline_of(&deps);
                pipeline.validate().expect("valid");
                let floor = Floor::new(&deps);
                let r = interleave(
                    reps_for(n),
                    || timed_run(&pipeline, executor),
                    || bench::time(|| _ = black_box(floor.run(executor.pool()))),
                );
                line(&name, n, r);
            }
            let name = format!("first_run_{shape}_{n}");
            if n == 10_000 && wanted(&name) {
                let r = interleave(
                    reps_for(n),
                    || timed_run(&pipeline_of(&deps), executor),
                    || bench::time(|| _ = black_box(Floor::new(&deps).run(executor.pool()))),
                );
                line(&name, n, r);
            }
            let name = format!("cached_rerun_{shape}_{n}");
            if wanted(&name) {
                line_against(&name, "without cache", n, cached_rerun(executor, &deps));
            }
        }
    }
}

/// A no-change rerun of an incremental pipeline (every step served from
/// the cache in memory) against a run of the same pipeline without a
/// cache, interleaved: what checking the cache costs when steps do nothing.
fn cached_rerun(executor: &ParallelExecutor, deps: &Deps) -> bench::Ratio {
    let mut cached = pipeline_of(deps);
    cached.incremental();
    cached.run_with(executor).expect("runs");
    let plain = pipeline_of(deps);
    plain.validate().expect("valid");
    interleave(
        reps_for(deps.len()),
        || timed_run(&cached, executor),
        || timed_run(&plain, executor),
    )
}

/// The time of one run of `pipeline`: building it, and dropping its
/// result, are not timed.
fn timed_run(pipeline: &Pipeline, executor: &ParallelExecutor) -> Duration {
    let start = Instant::now();
    let result = pipeline.run_with(executor).expect("runs");
    let elapsed = start.elapsed();
    drop(black_box(result));
    elapsed
}

fn speedup(executor: &ParallelExecutor) {
    const WORK_US: u64 = 20_000;
    let mut pipeline = Pipeline::new("eight");
    for i in 0..8 {
        pipeline.add_step(
            FnStep::builder(format!("work{i}"))
                .output::<u64>(format!("r{i}"))
                .build(|ctx| {
                    ctx.set_output(0, busy_work(WORK_US));
                    Ok(())
                }),
        );
    }
    let run = || bench::time(|| drop(black_box(pipeline.run_with(executor).expect("runs"))));
    let sequential =
        || bench::time(|| _ = black_box((0..8).map(|_| busy_work(WORK_US)).sum::<u64>()));
    let par_iter = || {
        bench::time(|| {
            black_box(executor.pool().install(|| {
                (0..8)
                    .into_par_iter()
                    .map(|_| busy_work(WORK_US))
                    .sum::<u64>()
            }));
        })
    };
    let vs_seq = interleave(5, sequential, run);
    println!(
        "eight_cpu_bound_steps (20 ms each)  speedup over sequential {:.2} (best {:.2}, worst {:.2}): {:.1?} vs {:.1?}",
        vs_seq.ratio, vs_seq.worst, vs_seq.best, vs_seq.baseline_median, vs_seq.median
    );
    let vs_rayon = interleave(5, run, par_iter);
    println!(
        "eight_cpu_bound_steps vs rayon par_iter on the same pool: ratio {:.2} (best {:.2}, worst {:.2})",
        vs_rayon.ratio, vs_rayon.best, vs_rayon.worst
    );
}

/// Peak memory per step of one contender at `n` steps, in this process
/// (run as a child, so that nothing else shares its peak).
fn memory_child(spec: &str) {
    let mut parts = spec.split(':');
    let (who, shape, n) = (
        parts.next().expect("who"),
        parts.next().expect("shape"),
        parts
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .expect("n"),
    );
    let executor = ParallelExecutor::new(2).expect("pool");
    let (start, _) = bench::rss().expect("/proc/self/status");
    let deps = bench::shapes(n)
        .into_iter()
        .find(|(s, _)| *s == shape)
        .expect("a shape")
        .1;
    match who {
        "floor" => {
            black_box(Floor::new(&deps).run(executor.pool()));
            let (_, peak) = bench::rss().expect("rss");
            println!("{start} {start} {peak}");
        }
        _ => {
            let pipeline = pipeline_of(&deps);
            let (defined, _) = bench::rss().expect("rss");
            drop(black_box(pipeline.run_with(&executor).expect("runs")));
            let (_, peak) = bench::rss().expect("rss");
            println!("{start} {defined} {peak}");
        }
    }
}

fn memory() {
    let exe = std::env::current_exe().expect("this benchmark");
    for shape in ["chain", "fan_out", "random"] {
        let n = 100_000;
        let measure = |who: &str| -> (f64, f64) {
            let out = Command::new(&exe)
                .env("FLOWYML_BENCH_MEMORY", format!("{who}:{shape}:{n}"))
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .map(|x| x.parse().expect("a number"))
                .collect();
            // (peak − defined) / n, (peak − start) / n
            ((v[2] - v[1]) / n as f64, (v[2] - v[0]) / n as f64)
        };
        let (flowyml_state, flowyml_total) = measure("flowyml");
        let (_, floor_total) = measure("floor");
        println!(
            "memory_{shape}_{n}: flowyml plan + run state {flowyml_state:.0} B/step (with the step definitions {flowyml_total:.0} B/step), floor {floor_total:.0} B/step"
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var("FLOWYML_BENCH_MEMORY") {
        memory_child(&spec);
        return;
    }
    if let Ok(case) = std::env::var("FLOWYML_BENCH_CASE") {
        let executor = ParallelExecutor::new(2).expect("pool");
        overhead(&executor, &|name| name == case);
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--") || a == "--memory")
        .collect();
    if args.iter().any(|a| a == "--memory") {
        memory();
        return;
    }
    let filters: Vec<&String> = args.iter().collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    println!("busy_work calibration: {} iterations per µs", calibration());
    overhead_in_children(&wanted);
    let executor = ParallelExecutor::new(2).expect("pool");
    if wanted("eight_cpu_bound_steps") {
        speedup(&executor);
    }
}

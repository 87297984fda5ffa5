//! What the benchmarks share: DAG shapes, the hand-written rayon floor they
//! are measured against, interleaved ratio measurement, and peak-memory
//! readings of a child process.
//!
//! Absolute times on the shared 2-core machines move 1.5–2× between runs;
//! a ratio of two things timed alternately in the same process moves far
//! less. So every comparison here runs its contenders in turn, repetition
//! after repetition, and reports the ratio of each repetition's pair: the
//! best and the median over the repetitions.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::SplitMix64;

/// `deps[i]`: the earlier steps that step `i` reads.
pub type Deps = Vec<Vec<usize>>;

/// A chain: each step reads the one before.
pub fn chain(n: usize) -> Deps {
    (0..n)
        .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
        .collect()
}

/// A fan-out: one root, every other step reads it.
pub fn fan_out(n: usize) -> Deps {
    (0..n)
        .map(|i| if i == 0 { vec![] } else { vec![0] })
        .collect()
}

/// A random DAG: each step reads 1–3 distinct earlier steps.
pub fn random(n: usize, seed: u64) -> Deps {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            if i == 0 {
                return vec![];
            }
            let mut d: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.below(i)).collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect()
}

/// The three shapes at size `n`.
pub fn shapes(n: usize) -> Vec<(&'static str, Deps)> {
    vec![
        ("chain", chain(n)),
        ("fan_out", fan_out(n)),
        ("random", random(n, 7)),
    ]
}

/// The floor: the same DAG on the same pool, hand-written with rayon. Its
/// dependents are one flat array (CSR), each step has an atomic count of
/// the producers it waits for, sums its inputs' outputs and stores its own
/// in a write-once cell (`OnceLock<u64>`: a pipeline keeps a scalar
/// artifact inline in its slot too, with no allocation); a finishing step
/// continues with one newly ready dependent on its own worker and spawns
/// the others. Nothing is recorded, timed or caught per step.
#[derive(Debug)]
pub struct Floor {
    inputs_at: Vec<u32>,
    inputs: Vec<u32>,
    dependents_at: Vec<u32>,
    dependents: Vec<u32>,
    waits: Vec<u32>,
}

impl Floor {
    /// The floor's plan of `deps`: its first run includes this.
    pub fn new(deps: &Deps) -> Self {
        let n = deps.len();
        let mut count = vec![0u32; n + 1];
        for d in deps {
            for &p in d {
                count[p + 1] += 1;
            }
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let dependents_at = count.clone();
        let mut fill = count;
        let mut dependents = vec![0u32; dependents_at[n] as usize];
        let mut inputs_at = Vec::with_capacity(n + 1);
        let mut inputs = Vec::new();
        inputs_at.push(0);
        for (i, d) in deps.iter().enumerate() {
            for &p in d {
                dependents[fill[p] as usize] = i as u32;
                fill[p] += 1;
                inputs.push(p as u32);
            }
            inputs_at.push(inputs.len() as u32);
        }
        Floor {
            inputs_at,
            inputs,
            dependents_at,
            dependents,
            waits: deps.iter().map(|d| d.len() as u32).collect(),
        }
    }

    /// Runs the DAG on `pool`; returns the sum of every step's output
    /// (wrapping, as each step's own sum does).
    pub fn run(&self, pool: &rayon::ThreadPool) -> u64 {
        let n = self.waits.len();
        let waiting: Vec<AtomicUsize> = self
            .waits
            .iter()
            .map(|&w| AtomicUsize::new(w as usize))
            .collect();
        let outputs: Vec<OnceLock<u64>> = (0..n).map(|_| OnceLock::new()).collect();
        let run = FloorRun {
            floor: self,
            waiting,
            outputs,
        };
        pool.scope(|s| {
            let roots: Vec<usize> = (0..n).filter(|&i| self.waits[i] == 0).collect();
            let (last, rest) = roots.split_last().expect("a DAG has a root");
            let run = &run;
            for &r in rest {
                s.spawn(move |s| run.go(s, r));
            }
            run.go(s, *last);
        });
        run.outputs
            .iter()
            .filter_map(|o| o.get())
            .copied()
            .fold(0, u64::wrapping_add)
    }
}

struct FloorRun<'f> {
    floor: &'f Floor,
    waiting: Vec<AtomicUsize>,
    outputs: Vec<OnceLock<u64>>,
}

impl FloorRun<'_> {
    fn go<'s>(&'s self, s: &rayon::Scope<'s>, mut i: usize) {
        let f = self.floor;
        loop {
            let ins = &f.inputs[f.inputs_at[i] as usize..f.inputs_at[i + 1] as usize];
            let sum: u64 = ins
                .iter()
                .map(|&p| self.outputs[p as usize].get().copied().unwrap_or(0))
                .fold(0, u64::wrapping_add);
            let _ = self.outputs[i].set(sum.wrapping_add(1));
            let mut next = None;
            for &d in &f.dependents[f.dependents_at[i] as usize..f.dependents_at[i + 1] as usize] {
                let d = d as usize;
                // AcqRel: the output written above happens-before the
                // dependent that sees its count reach zero.
                if self.waiting[d].fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(other) = next.replace(d)
                {
                    s.spawn(move |s| self.go(s, other));
                }
            }
            match next {
                Some(d) => i = d,
                None => return,
            }
        }
    }
}

/// The ratios of one interleaved comparison.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// The contender's median time.
    pub median: Duration,
    /// The baseline's median time.
    pub baseline_median: Duration,
    /// The smallest ratio of a repetition's pair.
    pub best: f64,
    /// The median ratio over the repetitions.
    pub ratio: f64,
    /// The largest ratio of a repetition's pair.
    pub worst: f64,
}

/// Times `contender` and `baseline` alternately, `reps` times each after
/// one untimed round, and returns the ratio of the contender to the
/// baseline. Each closure returns what it timed (so that setup, such as
/// building a fresh pipeline, stays out of it).
pub fn interleave(
    reps: usize,
    mut contender: impl FnMut() -> Duration,
    mut baseline: impl FnMut() -> Duration,
) -> Ratio {
    contender();
    baseline();
    let mut pairs = Vec::with_capacity(reps);
    for r in 0..reps {
        // Alternate who goes first, so that neither always runs on a
        // cache the other warmed.
        let (c, b) = if r % 2 == 0 {
            let c = contender();
            (c, baseline())
        } else {
            let b = baseline();
            (contender(), b)
        };
        pairs.push((c, b));
    }
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(c, b)| c.as_secs_f64() / b.as_secs_f64().max(1e-12))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ratio {
        median: median(pairs.iter().map(|p| p.0).collect()),
        baseline_median: median(pairs.iter().map(|p| p.1).collect()),
        best: ratios[0],
        ratio: ratios[ratios.len() / 2],
        worst: ratios[ratios.len() - 1],
    }
}

/// Times `f` once.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// This process's resident set now and at its peak, in bytes, from
/// `/proc/self/status` (`None` where there is no such file).
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

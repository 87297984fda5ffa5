//! Scratch profile target (not committed).
use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline};
use flowyml_workspace::bench;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let shape = std::env::args().nth(2).unwrap_or_else(|| "chain".into());
    let deps = bench::shapes(n).into_iter().find(|(s, _)| *s == shape).unwrap().1;
    let mut p = Pipeline::new("bench");
    for (i, inputs) in deps.iter().enumerate() {
        let mut step = FnStep::builder(format!("s{i}"));
        for d in inputs {
            step = step.input::<u64>(format!("a{d}"));
        }
        let k = inputs.len();
        p.add_step(step.output::<u64>(format!("a{i}")).build(move |ctx| {
            let mut sum = 0u64;
            for j in 0..k {
                sum = sum.wrapping_add(*ctx.input::<u64>(j)?);
            }
            ctx.set_output(0, sum.wrapping_add(1));
            Ok(())
        }));
    }
    p.validate().unwrap();
    let ex = ParallelExecutor::new(1).unwrap();
    let floor = bench::Floor::new(&deps);
    let which = std::env::args().nth(3).unwrap_or_default();
    for _ in 0..20 {
        if which != "floor" {
            std::hint::black_box(p.run_with(&ex).unwrap());
        }
        if which != "flowyml" {
            std::hint::black_box(floor.run(ex.pool()));
        }
    }
}

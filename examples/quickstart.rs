//! The main job: a tour of flowyml's utilities (pipelines arrive next).
use flowyml::{LazyValue, ParallelExecutor, batch_iterator};
use std::time::Instant;

fn main() -> flowyml::Result<()> {
    let data = LazyValue::new(|| (0..2_000_000u64).collect::<Vec<_>>());
    let executor = ParallelExecutor::with_available_parallelism()?;
    let start = Instant::now();
    let batches: Vec<Vec<u64>> = batch_iterator(data.value().iter().copied(), 100_000)?.collect();
    let sums = executor.map(|b: Vec<u64>| b.iter().sum::<u64>(), batches);
    println!(
        "sum = {} in {:?} on {} workers",
        sums.iter().sum::<u64>(),
        start.elapsed(),
        executor.max_workers()
    );
    Ok(())
}

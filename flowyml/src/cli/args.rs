//! What the commands share: where the cache is, how many workers, how a
//! size or a failed write reads.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;

/// Where the persistent cache is.
#[derive(Args, Debug, Clone)]
pub(super) struct CacheArgs {
    /// The persistent cache's directory.
    #[arg(
        long,
        value_name = "DIR",
        env = "FLOWYML_CACHE_DIR",
        default_value = ".flowyml",
        global = true,
        value_parser = cache_dir
    )]
    pub(super) cache_dir: PathBuf,
}

/// The cache's directory: an empty `FLOWYML_CACHE_DIR` is a mistake to
/// name, not a missing value.
fn cache_dir(text: &str) -> std::result::Result<PathBuf, String> {
    if text.is_empty() {
        Err("the cache directory is empty: set `--cache-dir DIR` or FLOWYML_CACHE_DIR to a directory, or unset FLOWYML_CACHE_DIR for `.flowyml`".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

/// The most worker threads a run may ask for: 64 per core, which no
/// pipeline needs and which keeps a typo from spawning millions.
pub(super) fn max_workers() -> usize {
    64 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A worker count for `--workers`, named in its errors.
pub(super) fn workers(text: &str) -> std::result::Result<usize, String> {
    let max = max_workers();
    match text.parse::<i64>() {
        Ok(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Ok(n) => Err(format!(
            "{n} workers: `--workers` takes 1 to {max} (64 per core on this machine)"
        )),
        Err(_) => Err(format!(
            "`{text}` is not a number: `--workers` takes a whole number of worker threads, 1 to {max}"
        )),
    }
}

/// The executor of a run: `workers` threads, or one per core.
pub(super) fn executor(workers: Option<usize>) -> Result<ParallelExecutor> {
    match workers {
        Some(n) => ParallelExecutor::new(n),
        None => ParallelExecutor::with_available_parallelism(),
    }
}

/// An I/O error writing what a command prints.
pub(super) fn stdout_error(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Bytes for a person: `2.0 MiB`.
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2 * 1024 * 1024), "2.0 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn worker_counts_are_bounded_and_named() {
        assert_eq!(workers("4"), Ok(4));
        assert!(workers("0").unwrap_err().contains("`--workers` takes 1 to"));
        assert!(
            workers("-1")
                .unwrap_err()
                .contains("`--workers` takes 1 to")
        );
        assert!(
            workers("10000000")
                .unwrap_err()
                .contains("10000000 workers")
        );
        assert!(
            workers("many")
                .unwrap_err()
                .contains("`many` is not a number")
        );
    }
}

//! flowyml's integration tests: one module per concept, linked into one
//! binary. Every test binary links polars and wgpu; one binary per file cost
//! a link and most of a gigabyte of disk apiece, which filled CI's disk.

mod batch;
mod cache;
mod cli;
#[cfg(feature = "dataframe")]
mod dataframe;
mod executor;
#[cfg(feature = "gpu")]
mod gpu;
mod incremental;
mod incremental_pipeline;
mod lazy;
mod pipeline;
mod scheduler;

use std::process::{Command, Stdio};

/// A command that reruns this binary's test `name`, from the module whose
/// `module_path!()` is `module`, alone in a child process: the tests of a
/// second process (store crashes, cross-process cache hits) use it.
fn rerun_test(module: &str, name: &str) -> Command {
    // libtest names a test by its path without the crate's name.
    let path = match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    };
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", &path, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped());
    cmd
}

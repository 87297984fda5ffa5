//! flowyml's integration tests: one module per concept, linked into one
//! binary. Every test binary links polars and wgpu; one binary per file cost
//! a link and most of a gigabyte of disk apiece, which filled CI's disk.

mod batch;
mod bench_charts;
mod cache;
mod cli;
mod control;
#[cfg(feature = "dataframe")]
mod dataframe;
mod executor;
#[cfg(feature = "gpu")]
mod gpu;
mod incremental;
mod incremental_pipeline;
mod layers;
mod lazy;
mod pipeline;
mod plan;
mod quickstart;
#[cfg(feature = "dataframe")]
mod ray;
mod report;
mod resource;
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

/// The status of each step in a `PipelineResult`'s JSON (`run --json`).
fn json_statuses(json: &str) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(json.trim()).expect("valid JSON");
    json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The edges of a DOT graph made by `to_dot`, by label:
/// `(producer, consumer, artifact)`, a run-time input's producer being its
/// own name.
fn dot_edges(dot: &str) -> Vec<(String, String, String)> {
    let label = |line: &str| -> Option<String> {
        let start = line.find("label=\"")? + 7;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    let mut labels = std::collections::HashMap::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        let id = line.split_whitespace().next().unwrap_or_default();
        if line.contains(" -> ") {
            let to = line.split_whitespace().nth(2).unwrap_or_default();
            edges.push((
                id.to_owned(),
                to.to_owned(),
                label(line).unwrap_or_default(),
            ));
        } else if let Some(l) = label(line) {
            labels.insert(id.to_owned(), l);
        }
    }
    edges
        .into_iter()
        .map(|(from, to, artifact)| (labels[&from].clone(), labels[&to].clone(), artifact))
        .collect()
}

fn edge(from: &str, to: &str, artifact: &str) -> (String, String, String) {
    (from.to_owned(), to.to_owned(), artifact.to_owned())
}

/// `autotests = false` means cargo compiles only what this file names: a
/// test file left out of the list above would silently never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let listed = include_str!("main.rs");
    for entry in std::fs::read_dir(&here).expect("tests/") {
        let path = entry.expect("entry").path();
        let (Some(stem), Some("rs")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        assert!(
            stem == "main" || listed.contains(&format!("mod {stem};")),
            "tests/{stem}.rs is not declared in tests/main.rs: add `mod {stem};`"
        );
    }
}

//! `plan` and `run-step`, the contract of runners outside the program:
//! running every group of the quickstart in a process of its own, its
//! inputs fed from the other groups' outputs, gives the artifacts and the
//! cache keys of one run in one process.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The quickstart example, which `cargo test` builds beside this binary.
pub(crate) fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let examples = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("examples");
    let binary = examples.join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds the examples (run it from the workspace)",
        binary.display()
    );
    binary
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn every_group_run_alone_gives_the_in_process_fingerprints_and_keys() {
    let bin = quickstart();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = json_of(Command::new(&bin).args(["plan", "quickstart", "--json"]));
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["binary_sha256"].as_str().map(str::len), Some(64));

    // One process: every artifact's fingerprint and every step's key.
    let cache = dir.path().join("cache");
    let whole = json_of(Command::new(&bin).args([
        "run",
        "quickstart",
        "--input",
        "rows=3000",
        "--json",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
    ]));
    let fingerprints: BTreeMap<String, String> = whole["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let keys: BTreeMap<String, String> = whole["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["cache_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // A process per group, in an order where each group's inputs exist.
    let steps: HashMap<&str, &Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s))
        .collect();
    let groups: Vec<Vec<&str>> = plan["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            g.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect()
        })
        .collect();
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    let mut seen_fingerprints: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<usize> = (0..groups.len()).collect();
    let mut processes = 0;
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|&g| {
            let members = &groups[g];
            let produced: Vec<&str> = members
                .iter()
                .flat_map(|m| {
                    steps[m]["outputs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| o.as_str().unwrap())
                })
                .collect();
            let needed: Vec<&str> = members
                .iter()
                .flat_map(|m| {
                    steps[m]["inputs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i.as_str().unwrap())
                })
                .filter(|i| !produced.contains(i) && *i != "rows")
                .collect();
            if !needed.iter().all(|n| files.contains_key(*n)) {
                return true;
            }
            let out = dir.path().join(format!("group{g}"));
            let mut cmd = Command::new(&bin);
            cmd.arg("run-step").arg("quickstart").args(members.iter());
            for n in &needed {
                cmd.arg("--input")
                    .arg(format!("{n}={}", files[*n].display()));
            }
            if members.iter().any(|m| {
                steps[m]["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i == "rows")
            }) {
                cmd.args(["--input-json", "rows=3000"]);
            }
            cmd.arg("--output-dir").arg(&out);
            let status = cmd.status().expect("run-step");
            assert!(status.success(), "{cmd:?}");
            processes += 1;
            let manifest: Value = serde_json::from_slice(
                &std::fs::read(out.join("manifest.json")).expect("manifest"),
            )
            .expect("JSON");
            assert_eq!(manifest["binary_sha256"], plan["binary_sha256"]);
            for o in manifest["outputs"].as_array().unwrap() {
                let name = o["name"].as_str().unwrap().to_owned();
                files.insert(name.clone(), out.join(o["file"].as_str().unwrap()));
                seen_fingerprints.insert(name, o["fingerprint"].as_str().unwrap().to_owned());
            }
            for s in manifest["steps"].as_array().unwrap() {
                seen_keys.insert(
                    s["name"].as_str().unwrap().to_owned(),
                    s["cache_key"].as_str().unwrap().to_owned(),
                );
            }
            false
        });
        assert!(pending.len() < before, "no group could run: {pending:?}");
    }
    assert_eq!(processes, groups.len());
    let produced: BTreeMap<String, String> = fingerprints
        .into_iter()
        .filter(|(name, _)| name != "rows")
        .collect();
    assert_eq!(seen_fingerprints, produced, "artifacts");
    assert_eq!(seen_keys, keys, "cache keys");
    println!(
        "{} steps in {} groups, {} processes: {} fingerprints and {} keys equal",
        steps.len(),
        groups.len(),
        processes,
        seen_fingerprints.len(),
        seen_keys.len()
    );
}

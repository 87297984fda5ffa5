//! The CLI over registered pipelines.

use flowyml::pipeline;

#[pipeline(name = "cli_demo")]
mod cli_demo {
    #[step(outputs = ["numbers"])]
    pub fn make_numbers() -> Vec<u64> {
        (1..=100).collect()
    }

    #[step(outputs = ["total"])]
    pub fn sum(numbers: &Vec<u64>) -> u64 {
        numbers.iter().sum()
    }

    #[step(outputs = ["broken"])]
    pub fn fragile(total: &u64) -> Result<u64, String> {
        if *total > 0 {
            Err(format!("total {total} is not zero"))
        } else {
            Ok(0)
        }
    }
}

#[pipeline(name = "cli_ok")]
mod cli_ok {
    #[step(outputs = ["answer"])]
    pub fn answer() -> u32 {
        42
    }
}

fn cli(args: &[&str]) -> (flowyml::Result<()>, String) {
    let mut out = Vec::new();
    let result = flowyml::cli::run(
        std::iter::once("flowyml").chain(args.iter().copied()),
        &mut out,
    );
    (result, String::from_utf8(out).expect("utf-8"))
}

#[test]
fn list_shows_registered_pipelines_and_steps() {
    let (result, out) = cli(&["list"]);
    result.expect("list works");
    assert!(out.contains("cli_demo"), "{out}");
    assert!(out.contains("steps: make_numbers, sum, fragile"), "{out}");
}

#[test]
fn run_json_matches_the_run() {
    let (result, out) = cli(&["run", "cli_ok", "--json", "--workers", "2", "--no-cache"]);
    result.expect("runs");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("valid JSON");
    assert_eq!(json["pipeline"], "cli_ok");
    assert_eq!(json["workers"], 2);
    assert_eq!(json["steps"][0]["name"], "answer");
    assert_eq!(json["steps"][0]["status"], "ran");
}

#[test]
fn a_failed_run_prints_the_result_and_fails() {
    let (result, out) = cli(&["run", "cli_demo", "--json", "--no-cache"]);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `cli_demo`: step `fragile` failed: total 5050 is not zero"
    );
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("valid JSON");
    let status: Vec<_> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(status, vec!["ran", "ran", "failed"]);
}

#[test]
fn run_writes_a_trace_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("trace.json");
    let (result, out) = cli(&[
        "run",
        "cli_ok",
        "--trace",
        path.to_str().expect("utf-8 path"),
    ]);
    result.expect("runs");
    assert!(out.contains("answer"));
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("JSON");
    let events = trace["traceEvents"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "X" && e["name"] == "answer")
    );
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let (result, out) = cli(&["graph", "cli_demo", "--format", "dot"]);
    result.expect("graph");
    assert!(
        crate::dot_edges(&out).contains(&crate::edge("make_numbers", "sum", "numbers")),
        "{out}"
    );
    let (_, out) = cli(&["graph", "cli_demo"]);
    assert!(out.contains("sum -->|total| fragile"), "{out}");
}

#[test]
fn unknown_pipelines_and_bad_usage_are_clear_errors() {
    let (result, _) = cli(&["run", "cli_dem", "--no-cache"]);
    assert_eq!(
        result.unwrap_err().to_string(),
        "no pipeline named `cli_dem`; did you mean `cli_demo`?"
    );
    let (result, _) = cli(&["fly"]);
    assert!(matches!(result, Err(flowyml::Error::Usage(_))));
}

#[test]
fn runs_are_cached_across_invocations_and_inspectable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().to_str().expect("utf-8 path");
    let statuses = crate::json_statuses;
    let (result, out) = cli(&["run", "cli_ok", "--json", "--cache-dir", cache]);
    result.expect("runs");
    assert_eq!(statuses(&out), vec!["ran"]);
    let (result, out) = cli(&["run", "cli_ok", "--json", "--cache-dir", cache]);
    result.expect("runs");
    assert_eq!(statuses(&out), vec!["cached"]);
    let (result, out) = cli(&[
        "run",
        "cli_ok",
        "--json",
        "--cache-dir",
        cache,
        "--invalidate",
        "answer",
    ]);
    result.expect("runs");
    assert_eq!(statuses(&out), vec!["ran"]);

    let (result, out) = cli(&["cache", "stats", "--cache-dir", cache]);
    result.expect("stats");
    assert!(out.contains("1 entries, 1 artifacts"), "{out}");
    assert!(out.contains("3 runs"), "{out}");
    let (result, out) = cli(&["runs", "--cache-dir", cache]);
    result.expect("runs");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("cli_ok") && l.contains("succeeded"))
            .count(),
        3,
        "{out}"
    );
    let (result, _) = cli(&["cache", "clear", "--cache-dir", cache]);
    result.expect("clear");
    let (_, out) = cli(&["cache", "stats", "--cache-dir", cache]);
    assert!(out.contains("0 entries, 0 artifacts, 0 bytes"), "{out}");
}

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

pub(crate) fn cli(args: &[&str]) -> (flowyml::Result<()>, String) {
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
    assert!(out.contains("0 entries, 0 artifacts, 0 B,"), "{out}");
}

#[test]
fn commands_that_only_read_create_no_cache_and_prune_keeps_the_latest_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("never-used");
    let cache = missing.to_str().expect("utf-8 path");
    let (result, out) = cli(&["runs", "--cache-dir", cache]);
    result.expect("runs on a missing cache");
    assert!(out.contains("no runs: there is no cache in"), "{out}");
    let (result, out) = cli(&["cache", "stats", "--cache-dir", cache]);
    result.expect("stats on a missing cache");
    assert!(out.contains("0 entries, 0 artifacts"), "{out}");
    assert!(
        !missing.exists(),
        "`runs` and `cache stats` created {cache}"
    );

    for _ in 0..4 {
        cli(&["run", "cli_ok", "--cache-dir", cache])
            .0
            .expect("runs");
    }
    let (result, out) = cli(&["runs", "prune", "--keep", "2", "--cache-dir", cache]);
    result.expect("prune");
    assert_eq!(out.trim(), "dropped 2 runs, kept the latest 2");
    let (_, out) = cli(&["runs", "--cache-dir", cache]);
    assert_eq!(
        out.lines().filter(|l| l.contains("cli_ok")).count(),
        2,
        "{out}"
    );
}

// ------------------------------------------------ inputs and outputs

#[pipeline(name = "cli_inputs", inputs = ["values", "label"])]
mod cli_inputs {
    #[step(outputs = ["total"])]
    pub fn total(values: &Vec<u32>) -> u64 {
        values.iter().map(|&v| u64::from(v)).sum()
    }

    #[step(outputs = ["titled"])]
    pub fn titled(label: &String, total: &u64) -> String {
        format!("{label}: {total}")
    }
}

#[test]
fn inputs_come_as_json_files_strings_and_objects() {
    let (result, out) = cli(&[
        "run",
        "cli_inputs",
        "--no-cache",
        "--input",
        "values=[1, 2, 3]",
        "--input-str",
        "label=sum",
        "--output",
        "titled",
    ]);
    result.expect("runs");
    assert_eq!(out.trim(), "\"sum: 6\"");

    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("values.json");
    std::fs::write(&json, "[10, 20]").expect("written");
    let toml = dir.path().join("inputs.toml");
    std::fs::write(&toml, "values = [4, 5]\nlabel = \"from toml\"\n").expect("written");
    let arg = format!("values=@{}", json.display());
    let (result, out) = cli(&[
        "run",
        "cli_inputs",
        "--no-cache",
        "--inputs",
        toml.to_str().unwrap(),
        "--input",
        &arg,
        "--output",
        "titled",
        "--output",
        "total",
    ]);
    result.expect("runs");
    // The file's `values` gives way to `--input`'s.
    assert_eq!(out.lines().collect::<Vec<_>>(), ["\"from toml: 30\"", "30"]);
}

#[test]
fn bad_inputs_are_one_line_usage_errors_naming_the_input() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--input", "values=[1]"],
            "pipeline `cli_inputs` needs input `label` (String): give it with `--input NAME=JSON`",
        ),
        (
            &["--input", "valeus=[1]", "--input-str", "label=x"],
            "pipeline `cli_inputs` has no input `valeus`; did you mean `values`?",
        ),
        (
            &["--input", "values=[1, -2]", "--input-str", "label=x"],
            "input `values`: expected `Vec<u32>`: invalid value: integer `-2`, expected u32 at line 1 column 6",
        ),
        (
            &["--input", "values", "--input-str", "label=x"],
            "`--input values`: write `--input NAME=VALUE`",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["run", "cli_inputs", "--no-cache"];
        full.extend_from_slice(args);
        let (result, _) = cli(&full);
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(flowyml::cli::exit_code(&err), 2, "{err}");
        assert!(!err.to_string().contains('\n'));
    }
    let (result, _) = cli(&[
        "run",
        "cli_inputs",
        "--no-cache",
        "--input",
        "values=[1]",
        "--input-str",
        "label=x",
        "--output",
        "totl",
    ]);
    assert_eq!(
        result.unwrap_err().to_string(),
        "no artifact named `totl`; did you mean `total`?"
    );
}

#[test]
fn an_input_given_on_the_command_line_is_part_of_the_cache_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().to_str().expect("utf-8");
    let run = |values: &str| {
        let (result, out) = cli(&[
            "run",
            "cli_inputs",
            "--json",
            "--cache-dir",
            cache,
            "--input",
            values,
            "--input-str",
            "label=l",
        ]);
        result.expect("runs");
        crate::json_statuses(&out)
    };
    assert_eq!(run("values=[1, 2]"), ["ran", "ran"]);
    assert_eq!(run("values=[1, 2]"), ["cached", "cached"]);
    assert_eq!(
        run("values=[2, 1]"),
        ["ran", "cached"],
        "same total: early cutoff"
    );
    assert_eq!(run("values=[5]"), ["ran", "ran"]);
}

#[test]
fn json_output_is_versioned_and_carries_asked_values() {
    let (result, out) = cli(&[
        "run",
        "cli_inputs",
        "--no-cache",
        "--json",
        "--input",
        "values=[1, 2]",
        "--input-str",
        "label=l",
        "--output",
        "total",
    ]);
    result.expect("runs");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(json["schema_version"], 1);
    assert!(json["started_at"].as_str().is_some_and(|t| t.contains('T')));
    assert!(json["duration_us"].is_u64());
    let step = &json["steps"][0];
    for key in [
        "name",
        "status",
        "start_us",
        "duration_us",
        "worker",
        "attempts",
        "notes",
        "rerun_reason",
    ] {
        assert!(step.get(key).is_some(), "{key} in {step}");
    }
    let total = json["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["name"] == "total")
        .expect("total");
    assert_eq!(total["value"], 3);
    assert_eq!(total["type"], "u64");
    assert_eq!(total["fingerprint"].as_str().map(str::len), Some(64));
}

#[test]
fn output_dir_holds_every_stored_artifact_and_a_manifest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (result, _) = cli(&[
        "run",
        "cli_inputs",
        "--no-cache",
        "--input",
        "values=[7]",
        "--input-str",
        "label=l",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ]);
    result.expect("runs");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let files: Vec<&str> = manifest["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter_map(|a| a["file"].as_str())
        .collect();
    assert_eq!(
        files,
        ["values.json", "label.json", "total.json", "titled.json"]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("total.json")).unwrap(),
        "7"
    );
}

#[test]
fn runs_show_one_run_step_by_step_and_sizes_read_as_sizes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().to_str().expect("utf-8");
    cli(&["run", "cli_ok", "--cache-dir", cache])
        .0
        .expect("runs");
    let (result, out) = cli(&["runs", "--cache-dir", cache]);
    result.expect("runs");
    assert!(out.lines().next().unwrap().contains("started"), "{out}");
    let id = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("an id");
    let (result, out) = cli(&["runs", "show", id, "--json", "--cache-dir", cache]);
    result.expect("show");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(json["pipeline"], "cli_ok");
    assert_eq!(json["steps"][0]["name"], "answer");
    assert_eq!(
        json["steps"][0]["cache_key"].as_str().map(str::len),
        Some(64)
    );
    let (result, out) = cli(&["runs", "show", id, "--cache-dir", cache]);
    result.expect("show");
    assert!(out.contains("answer") && out.contains("ran"), "{out}");
    let (result, _) = cli(&["runs", "show", "999", "--cache-dir", cache]);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .starts_with("no run 999 in the history")
    );
    let (result, out) = cli(&["cache", "stats", "--json", "--cache-dir", cache]);
    result.expect("stats");
    let stats: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(
        (stats["entries"].as_u64(), stats["runs"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn flags_name_themselves_in_their_errors() {
    let (result, _) = cli(&["run", "cli_ok", "--no-cache", "--workers", "-1"]);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("--workers"), "{err}");
    let (result, _) = cli(&["run", "cli_ok", "--no-cache", "--workers", "10000000"]);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("10000000 workers: `--workers` takes 1 to"),
        "{err}"
    );
    let (result, _) = cli(&["run", "cli_ok", "--no-cache", "--timeout", "soon"]);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("`soon` is not a duration")
    );
    let (result, _) = cli(&["run", "cli_ok", "--cache-dir", ""]);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("FLOWYML_CACHE_DIR")
    );
    let (result, _) = cli(&["--version"]);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("cache format"), "{err}");
}

// ------------------------------------------------ progress, retries, time

#[test]
fn progress_draws_counts_cached_steps_and_running_ones() {
    use flowyml::StepStatus;
    use flowyml::cli::{ProgressBar, ProgressDrawTarget};
    use flowyml::pipeline::Progress;

    let bar = ProgressBar::with_target(3, ProgressDrawTarget::hidden());
    bar.observe(Progress::Started {
        step: "load",
        index: 0,
    });
    bar.observe(Progress::Started {
        step: "clean",
        index: 1,
    });
    assert!(
        bar.message().starts_with("running: load 0.0s, clean 0.0s"),
        "{}",
        bar.message()
    );
    bar.observe(Progress::Finished {
        step: "load",
        index: 0,
        status: StepStatus::Cached,
        duration: std::time::Duration::ZERO,
    });
    assert!(
        bar.message().starts_with("1 cached · running: clean"),
        "{}",
        bar.message()
    );
    bar.observe(Progress::Finished {
        step: "clean",
        index: 1,
        status: StepStatus::Failed,
        duration: std::time::Duration::ZERO,
    });
    assert_eq!(bar.message(), "1 cached · 1 failed");

    // And from a real run, in order for every step.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    let mut p = cli_demo::pipeline();
    p.on_progress(move |e| {
        let line = match e {
            Progress::Started { step, .. } => format!("start {step}"),
            Progress::Finished { step, status, .. } => format!("end {step} {status}"),
            _ => String::new(),
        };
        seen.lock().unwrap().push(line);
    });
    let _ = p.run();
    assert_eq!(
        *events.lock().unwrap(),
        [
            "start make_numbers",
            "end make_numbers ran",
            "start sum",
            "end sum ran",
            "start fragile",
            "end fragile failed"
        ]
    );
}

// ------------------------------------------------ the CLI as a process

#[pipeline(name = "cli_slow", inputs = ["marker"])]
mod cli_slow {
    use flowyml::step::StepContext;

    #[step(outputs = ["first"])]
    pub fn first() -> u32 {
        1
    }

    /// Says it started (in the file `marker`), then runs until cancelled.
    #[step(outputs = ["second"])]
    pub fn second(
        first: &u32,
        marker: &String,
        ctx: &StepContext<'_>,
    ) -> Result<u32, flowyml::BoxError> {
        std::fs::write(marker, "started")?;
        for _ in 0..20_000 {
            ctx.check_cancelled()?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(first + 1)
    }

    #[step(outputs = ["third"])]
    pub fn third(second: &u32) -> u32 {
        second + 1
    }
}

#[pipeline(name = "cli_panics")]
mod cli_panics {
    #[step(outputs = ["x"])]
    pub fn burns() -> u32 {
        panic!("disk on fire")
    }
}

const CLI_CHILD: &str = "FLOWYML_TEST_CLI_ARGS";

/// The child of the process tests: `flowyml::cli::main_from` over the
/// arguments in `FLOWYML_TEST_CLI_ARGS` (a JSON array), exiting with its
/// code. A no-op unless a test started it.
#[test]
fn cli_child_helper() {
    let Ok(args) = std::env::var(CLI_CHILD) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("a JSON array");
    std::process::exit(i32::from(flowyml::cli::main_from(args)));
}

fn cli_child(args: &[&str]) -> std::process::Command {
    let mut cmd = crate::rerun_test(module_path!(), "cli_child_helper");
    let mut all = vec!["flowyml"];
    all.extend_from_slice(args);
    cmd.env(CLI_CHILD, serde_json::to_string(&all).expect("JSON"))
        .stderr(std::process::Stdio::piped());
    cmd
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_keeps_what_finished_and_exits_130() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let marker = dir.path().join("started");
    let marker_arg = format!("marker={}", marker.display());
    let cache_arg = cache.to_str().expect("utf-8");
    let child = cli_child(&[
        "run",
        "cli_slow",
        "--cache-dir",
        cache_arg,
        "--input-str",
        &marker_arg,
    ])
    .spawn()
    .expect("child");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never started its second step"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The rerun serves the step that finished from the cache.
    let (result, json) = cli(&[
        "run",
        "cli_slow",
        "--json",
        "--cache-dir",
        cache_arg,
        "--input-str",
        &marker_arg,
        "--timeout",
        "100ms",
    ]);
    drop(result);
    assert_eq!(crate::json_statuses(&json)[0], "cached", "{json}");
    let (_, runs) = cli(&["runs", "--all", "--cache-dir", cache_arg]);
    assert!(
        runs.lines()
            .any(|l| l.contains("cli_slow") && l.contains("interrupted")),
        "{runs}"
    );
}

#[test]
fn a_panicking_step_says_so_once() {
    let out = cli_child(&["run", "cli_panics", "--no-cache"])
        .output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("disk on fire").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
}

#[test]
fn an_empty_cache_dir_variable_is_named() {
    let out = cli_child(&["runs"])
        .env("FLOWYML_CACHE_DIR", "")
        .output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FLOWYML_CACHE_DIR"), "{stderr}");
}

//! `run`: one pipeline, its inputs from the command line, its outputs to
//! stdout or a directory, live progress on a terminal, Ctrl-C that keeps
//! what finished.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::args::{CacheArgs, executor, stdout_error, workers};
use super::progress::ProgressBar;
use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, PipelineResult};
use crate::registry;

/// The arguments of `run`.
#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// The pipeline's name.
    pipeline: String,
    /// A run-time input, `NAME=JSON` (`rows=1000`, `path='"data.csv"'`) or
    /// `NAME=@FILE` (a JSON file); a frame input is a file's path.
    #[arg(long = "input", value_name = "NAME=JSON")]
    inputs: Vec<String>,
    /// A string input, taken as it is: `--input-str path=data.csv`.
    #[arg(long = "input-str", value_name = "NAME=TEXT")]
    input_strs: Vec<String>,
    /// Inputs from a JSON or TOML file holding one object (`.toml` is
    /// read as TOML); `--input` and `--input-str` given too win.
    #[arg(long = "inputs", value_name = "FILE")]
    inputs_file: Option<PathBuf>,
    /// Print this artifact to stdout (JSON; a frame as CSV); repeatable.
    /// With `--json`, its value goes in the JSON instead.
    #[arg(long = "output", value_name = "NAME")]
    outputs: Vec<String>,
    /// Write every artifact that can be stored into DIR (JSON for serde
    /// types, Arrow IPC for frames) with a `manifest.json`.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = workers, allow_negative_numbers = true)]
    workers: Option<usize>,
    /// Print the run as JSON (schema in the book's command line chapter).
    #[arg(long)]
    json: bool,
    /// Write a Chrome/Perfetto trace of the run to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the run's HTML report to FILE: the DAG coloured by status, a
    /// timeline per worker, the cache's hits and why the rest ran, a table
    /// of the steps (one self-contained file; written for a failed run too).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Keep running independent steps after a failure.
    #[arg(long)]
    keep_going: bool,
    /// Retry each failed step up to N times (steps that set their own
    /// keep theirs), waiting 200 ms and doubling.
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Stop the run after DURATION (`30s`, `5m`): no step starts after it;
    /// running steps get a grace period, then are abandoned.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    timeout: Option<Duration>,
    /// How long running steps may take to finish after Ctrl-C or the run's
    /// timeout before the process exits anyway.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    grace: Duration,
    #[command(flatten)]
    cache: CacheArgs,
    /// Do not use the persistent cache: run every step.
    #[arg(long)]
    no_cache: bool,
    /// Rerun this step (and, if its outputs change, what depends on it).
    #[arg(long, value_name = "STEP")]
    invalidate: Vec<String>,
    /// Do not open a GPU: GPU steps run their CPU fallback or fail.
    #[arg(long)]
    no_gpu: bool,
}

fn duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): write `30s`, `500ms`, `5m`"))
}

/// `NAME=VALUE` into its parts, naming the flag in its error.
fn name_value<'a>(arg: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    match arg.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(Error::Usage(format!(
            "`{flag} {arg}`: write `{flag} NAME=VALUE`"
        ))),
    }
}

/// The pipeline's inputs from the command line, in the order that lets
/// the most specific win: the file, then `--input`, then `--input-str`.
fn give_inputs(pipeline: &mut Pipeline, args: &RunArgs) -> Result<()> {
    if let Some(path) = &args.inputs_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let object: serde_json::Value = if path.extension().is_some_and(|e| e == "toml") {
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::Usage(format!("--inputs {}: {e}", path.display())))?;
            serde_json::to_value(table)
                .map_err(|e| Error::Usage(format!("--inputs {}: {e}", path.display())))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("--inputs {}: {e}", path.display())))?
        };
        let Some(object) = object.as_object() else {
            return Err(Error::Usage(format!(
                "--inputs {}: the file holds one object of inputs, `{{\"name\": value}}`",
                path.display()
            )));
        };
        for (name, value) in object {
            pipeline.input_json(name, &value.to_string())?;
        }
    }
    for arg in &args.inputs {
        let (name, value) = name_value(arg, "--input")?;
        let json = match value.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file).map_err(|e| Error::Input {
                input: name.to_owned(),
                message: format!("{file}: {e}"),
            })?,
            None => value.to_owned(),
        };
        pipeline.input_json(name, &json)?;
    }
    for arg in &args.input_strs {
        let (name, value) = name_value(arg, "--input-str")?;
        pipeline.input_json(
            name,
            &serde_json::Value::String(value.to_owned()).to_string(),
        )?;
    }
    let missing: Vec<String> = pipeline
        .required_inputs()
        .into_iter()
        .filter(|i| !i.given)
        .map(|i| format!("`{}` ({})", i.name, i.type_name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "pipeline `{}` needs {} {}: give {} with `--input NAME=JSON`",
            pipeline.name(),
            if missing.len() == 1 {
                "input"
            } else {
                "inputs"
            },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(())
}

pub(super) fn run(args: RunArgs, out: &mut dyn Write, interactive: bool) -> Result<()> {
    let mut pipeline = registry::pipeline(&args.pipeline)?;
    give_inputs(&mut pipeline, &args)?;
    pipeline.validate()?;
    let known: Vec<String> = pipeline.artifact_names()?;
    for name in &args.outputs {
        if !known.iter().any(|k| k == name) {
            return Err(Error::UnknownArtifact {
                name: name.clone(),
                hint: flowyml_suggest::did_you_mean(name, known.iter().map(String::as_str)),
            });
        }
    }
    pipeline.keep_going(args.keep_going).no_gpu(args.no_gpu);
    if let Some(retries) = args.retries {
        pipeline.retries(retries, Duration::from_millis(200));
    }
    if let Some(limit) = args.timeout {
        pipeline.timeout(limit);
        if interactive {
            // A step that ignores the run's stop holds the run: the
            // process exits anyway once the grace after the limit is over.
            exit_after(
                limit + args.grace,
                format!(
                    "the run timed out after {limit:?} and steps were still running {:?} later; abandoning them",
                    args.grace
                ),
                1,
            );
        }
    }
    if !args.no_cache {
        pipeline.cache_dir(&args.cache.cache_dir)?;
    }
    for step in &args.invalidate {
        pipeline.invalidate(step)?;
    }
    let progress = (interactive && !args.json && std::io::stderr().is_terminal())
        .then(|| Arc::new(ProgressBar::stderr(pipeline.steps().count())));
    if let Some(bar) = &progress {
        let bar = Arc::clone(bar);
        pipeline.on_progress(move |p| bar.observe(p));
    }
    if interactive {
        cancel_on_signals(&pipeline, args.grace);
    }
    let executor = executor(args.workers)?;
    // A failed run still prints what it did: its result is inside the error.
    let outcome = pipeline.run_with(&executor);
    if let Some(bar) = &progress {
        bar.finish();
    }
    let result: &PipelineResult = match &outcome {
        Ok(result) => result,
        Err(
            Error::StepFailed { result, .. }
            | Error::TimedOut { result, .. }
            | Error::Interrupted { result, .. },
        ) => result,
        Err(_) => return outcome.map(drop),
    };
    if let Some(path) = &args.trace {
        std::fs::write(path, result.chrome_trace()).map_err(|e| Error::io(path, e))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, result.to_html()).map_err(|e| Error::io(path, e))?;
    }
    if let Some(dir) = &args.output_dir {
        write_outputs(result, dir)?;
    }
    if args.json {
        let mut json = result.to_json();
        for name in &args.outputs {
            let value = output_json(result, name)?;
            if let Some(entry) = json["artifacts"]
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|a| a["name"] == name.as_str()))
            {
                entry["value"] = value;
            }
        }
        writeln!(out, "{json}").map_err(stdout_error)?;
    } else {
        if args.outputs.is_empty() {
            write!(out, "{}", result.summary()).map_err(stdout_error)?;
        } else {
            // The outputs are what a script reads: the summary goes to
            // stderr, out of their way.
            eprint!("{}", result.summary());
        }
        for name in &args.outputs {
            match result.text(name) {
                Some(text) => write!(out, "{text}").map_err(stdout_error)?,
                None => writeln!(out, "{}", output_json(result, name)?).map_err(stdout_error)?,
            }
        }
    }
    outcome.map(drop)
}

/// Artifact `name` as JSON: its value, its text (a frame's CSV) as a
/// string, or an error saying why neither exists.
fn output_json(result: &PipelineResult, name: &str) -> Result<serde_json::Value> {
    if let Some(json) = result.json(name) {
        return json;
    }
    if let Some(text) = result.text(name) {
        return Ok(serde_json::Value::String(text));
    }
    Err(match result.get::<()>(name) {
        Err(e @ Error::NotProduced { .. }) => e,
        _ => Error::Usage(format!(
            "artifact `{name}` has a type that neither serialises nor prints: it cannot be shown"
        )),
    })
}

/// Every artifact that can be written outside the cache: serde types as
/// JSON, frames in their own encoding; and `manifest.json`.
fn write_outputs(result: &PipelineResult, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = Vec::new();
    let mut used = std::collections::HashSet::new();
    for name in result
        .artifact_names()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    {
        let (bytes, extension) = if let Some(json) = result.json(&name) {
            let json = json?;
            (
                serde_json::to_vec_pretty(&json).map_err(|e| Error::Usage(e.to_string()))?,
                "json",
            )
        } else if let Some(encoded) = result.encoded(&name) {
            (encoded?, result.extension(&name).unwrap_or("bin"))
        } else {
            continue;
        };
        let file = unique_file_name(&name, extension, &mut used);
        let path = dir.join(&file);
        std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
        entries.push(serde_json::json!({
            "name": name,
            "file": file,
            "bytes": bytes.len(),
            "fingerprint": result.fingerprint(&name).map(|f| f.to_hex()),
        }));
    }
    let manifest = serde_json::json!({
        "pipeline": result.pipeline,
        "run_id": result.run_id(),
        "artifacts": entries,
    });
    let path = dir.join("manifest.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&manifest).expect("JSON serialises"),
    )
    .map_err(|e| Error::io(&path, e))
}

/// A file name for artifact `name`: its characters that are safe in file
/// names, made unique among `used`.
pub(super) fn unique_file_name(
    name: &str,
    extension: &str,
    used: &mut std::collections::HashSet<String>,
) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = if stem.is_empty() || stem.starts_with('.') {
        format!("_{stem}")
    } else {
        stem
    };
    let mut file = format!("{stem}.{extension}");
    let mut n = 1;
    while !used.insert(file.clone()) {
        n += 1;
        file = format!("{stem}-{n}.{extension}");
    }
    file
}

/// Exits the process with `code` and `message` once `after` has passed:
/// the last resort against a step that ignores its run's stop.
fn exit_after(after: Duration, message: String, code: i32) {
    let _ = std::thread::Builder::new()
        .name("flowyml-exit".into())
        .spawn(move || {
            std::thread::sleep(after);
            eprintln!("error: {message}");
            std::process::exit(code);
        });
}

/// On the first SIGINT or SIGTERM, cancels the pipeline's run (no step
/// starts, finished steps stay cached) and exits after `grace` if running
/// steps have not finished by then; on the second, exits at once.
fn cancel_on_signals(pipeline: &Pipeline, grace: Duration) {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let canceller = pipeline.canceller();
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("flowyml-signals".into())
            .spawn(move || {
                let mut seen = 0;
                for _ in signals.forever() {
                    seen += 1;
                    if seen > 1 {
                        eprintln!("\ninterrupted again: exiting now");
                        std::process::exit(130);
                    }
                    eprintln!(
                        "\ninterrupted: no new step starts; waiting up to {grace:?} for the running ones (Ctrl-C again to exit now)"
                    );
                    canceller.cancel();
                    exit_after(
                        grace,
                        "steps still running after the grace period; abandoning them".into(),
                        130,
                    );
                }
            });
    }
    #[cfg(not(unix))]
    let _ = (pipeline, grace);
}

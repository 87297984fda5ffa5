//! `plan` and `run-step`: the contract between a program's pipelines and a
//! runner outside it (a cluster). The plan says what each step reads and
//! writes and which steps must share a process; `run-step` runs one such
//! group in a fresh process, its inputs and outputs files in the cache's
//! own encoding, so an artifact's fingerprint is the same hash in every
//! process, and so are the cache keys.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Args;
use sha2::Digest;

use super::args::stdout_error;
use super::run::unique_file_name;
use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::pipeline::{Pipeline, PipelineResult, StepStatus};
use crate::registry;

/// The sha256 of this program's file, in hex: how a runner knows that the
/// process it started runs the same code as the plan it read.
pub fn binary_sha256() -> Result<&'static str> {
    static HASH: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    HASH.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        remembered_sha256(&exe)
    })
    .as_deref()
    .map_err(|e| Error::Usage(format!("cannot hash this program: {e}")))
}

/// The sha256 of the file at `path`, remembered beside it (`<file>.sha256`)
/// with the file's stamp: a program that a cluster starts once per task
/// hashes its hundred megabytes once, not at every start. A stamp that
/// moved (any write changes the change time), one too recent to trust, or
/// no place to write it means hashing again.
fn remembered_sha256(path: &std::path::Path) -> std::result::Result<String, String> {
    use crate::incremental::FileStamp;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    let sidecar = path.with_file_name(name);
    let stamp = FileStamp::of(path).map_err(|e| e.to_string())?;
    let line = |hash: &str| format!("{stamp:?} {hash}\n");
    if let Ok(text) = std::fs::read_to_string(&sidecar)
        && let Some(hash) = text.rsplit(' ').next().map(str::trim)
        && hash.len() == 64
        && text == line(hash)
    {
        return Ok(hash.to_owned());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hash: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if stamp.is_settled() && FileStamp::of(path).ok() == Some(stamp) {
        // Written aside and renamed, so a reader never sees half a line.
        let tmp = sidecar.with_extension(format!("sha256.{}", std::process::id()));
        if std::fs::write(&tmp, line(&hash)).is_ok() && std::fs::rename(&tmp, &sidecar).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(hash)
}

pub(super) fn plan(name: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let pipeline = registry::pipeline(name)?;
    let mut plan = pipeline.describe()?;
    plan["binary_sha256"] = binary_sha256()?.into();
    if json {
        return writeln!(out, "{plan}").map_err(stdout_error);
    }
    writeln!(out, "pipeline `{name}`").map_err(stdout_error)?;
    for input in plan["inputs"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  input {}: {} ({})",
            input["name"].as_str().unwrap_or_default(),
            input["type"].as_str().unwrap_or_default(),
            input["decoder"].as_str().unwrap_or_default()
        )
        .map_err(stdout_error)?;
    }
    for (g, group) in plan["groups"].as_array().into_iter().flatten().enumerate() {
        let steps: Vec<&str> = group
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .collect();
        writeln!(out, "  group {g}: {}", steps.join(", ")).map_err(stdout_error)?;
    }
    for artifact in plan["artifacts"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  artifact {}: {} from {} ({})",
            artifact["name"].as_str().unwrap_or_default(),
            artifact["type"].as_str().unwrap_or_default(),
            artifact["producer"].as_str().unwrap_or("the run's inputs"),
            artifact["codec"].as_str().unwrap_or_default()
        )
        .map_err(stdout_error)?;
    }
    Ok(())
}

/// The arguments of `run-step`.
#[derive(Args, Debug)]
pub(super) struct RunStepArgs {
    /// The pipeline's name.
    pipeline: String,
    /// The steps to run: one, or a group from `plan`.
    #[arg(required = true)]
    steps: Vec<String>,
    /// An input, `NAME=FILE`: the artifact's bytes in the cache's own
    /// encoding (what another `run-step` wrote).
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// A run-time input of the pipeline as JSON, as `run --input` takes it.
    #[arg(long = "input-json", value_name = "NAME=JSON")]
    json_inputs: Vec<String>,
    /// Where the outputs and `manifest.json` go.
    #[arg(long, value_name = "DIR")]
    output_dir: PathBuf,
    /// Do not open a GPU: GPU steps run their CPU fallback or fail.
    #[arg(long)]
    no_gpu: bool,
    /// Worker threads for the steps of a group (default: one per core).
    #[arg(long, value_name = "N", value_parser = super::args::workers, allow_negative_numbers = true)]
    workers: Option<usize>,
}

pub(super) fn run_step(args: RunStepArgs, out: &mut dyn Write) -> Result<()> {
    let pipeline = registry::pipeline(&args.pipeline)?;
    let mut sub = pipeline.subset(&args.steps)?;
    for arg in &args.inputs {
        let (name, file) = arg
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("`--input {arg}`: write `--input NAME=FILE`")))?;
        let bytes = std::fs::read(file).map_err(|e| Error::Input {
            input: name.to_owned(),
            message: format!("{file}: {e}"),
        })?;
        sub.input_encoded(name, &bytes)?;
    }
    for arg in &args.json_inputs {
        let (name, json) = arg.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "`--input-json {arg}`: write `--input-json NAME=JSON`"
            ))
        })?;
        sub.input_json(name, json)?;
    }
    let missing: Vec<String> = sub
        .required_inputs()
        .into_iter()
        .filter(|i| !i.given)
        .map(|i| format!("`{}`", i.name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "steps {} of `{}` read {} from other steps: give each with `--input NAME=FILE`",
            args.steps.join(", "),
            args.pipeline,
            missing.join(", ")
        )));
    }
    // In memory only: the keys are computed (the manifest echoes them),
    // and storing is the runner's business.
    sub.incremental().no_gpu(args.no_gpu);
    let executor = super::args::executor(args.workers)?;
    let outcome = sub.run_with(&executor);
    let result: &PipelineResult = match &outcome {
        Ok(result) => result,
        Err(Error::StepFailed { result, .. } | Error::TimedOut { result, .. }) => result,
        Err(_) => return outcome.map(drop),
    };
    write_manifest(&args, &sub, result, &executor)?;
    writeln!(out, "{}", args.output_dir.join("manifest.json").display()).map_err(stdout_error)?;
    outcome.map(drop)
}

/// Every stored output of the steps run, and `manifest.json`.
fn write_manifest(
    args: &RunStepArgs,
    sub: &Pipeline,
    result: &PipelineResult,
    executor: &ParallelExecutor,
) -> Result<()> {
    let dir = &args.output_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut used = std::collections::HashSet::new();
    let mut outputs = Vec::new();
    // The subset holds exactly the steps run: no
    // second build of the whole pipeline (a cluster starts this per task).
    for step in sub.steps() {
        let spec = step.spec();
        for output in spec.outputs.iter() {
            let Some(encoded) = result.encoded(&output.name) else {
                continue;
            };
            let bytes = encoded?;
            let file = unique_file_name(&output.name, "bin", &mut used);
            let path = dir.join(&file);
            std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
            outputs.push(serde_json::json!({
                "name": output.name,
                "step": spec.name,
                "type": output.type_name,
                "fingerprint": result.fingerprint(&output.name).map(|f| f.to_hex()),
                "bytes": bytes.len(),
                "file": file,
            }));
        }
    }
    let steps: Vec<serde_json::Value> = result
        .steps()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "status": s.status,
                "cache_key": s.key.map(|k| k.to_hex()),
                "duration_us": u64::try_from(s.duration.as_micros()).unwrap_or(u64::MAX),
                "attempts": s.attempts,
                "notes": s.notes,
                "error": s.error,
                // What a cache entry of the step must keep, so that it is
                // served again only while these files are unchanged.
                "files_read": sub.files_read(s.name).iter().map(|r| serde_json::json!({
                    "path": r.path,
                    "hash": r.hash.to_hex(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "binary_sha256": binary_sha256()?,
        "pipeline": args.pipeline,
        "workers": executor.max_workers(),
        "succeeded": result.steps().all(|s| s.status == StepStatus::Ran),
        "steps": steps,
        "outputs": outputs,
    });
    let path = dir.join("manifest.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&manifest).expect("JSON serialises"),
    )
    .map_err(|e| Error::io(&path, e))
}

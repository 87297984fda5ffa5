//! A command line over every registered pipeline (feature `cli`).
//!
//! Any binary gets it with one line, `fn main() -> std::process::ExitCode
//! { flowyml::cli::main() }`:
//!
//! ```text
//! list                                   pipelines and their steps
//! run <pipeline> [--workers N] [--json] [--trace FILE] [--keep-going]
//!                [--cache-dir DIR | --no-cache] [--invalidate STEP]... [--no-gpu]
//! graph <pipeline> [--format dot|mermaid]
//! cache stats|clear [--cache-dir DIR]     the persistent cache
//! runs [--cache-dir DIR]                  the history of runs
//! gpu                                    devices, memory, the best device (feature `gpu`)
//! ```
//!
//! Runs are incremental across processes: the cache lives in `.flowyml`
//! in the current directory unless `--cache-dir` or `FLOWYML_CACHE_DIR`
//! says otherwise, and `--no-cache` turns it off.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::incremental::ArtifactStore;
use crate::registry;

#[derive(Parser, Debug)]
#[command(
    name = "flowyml",
    about = "Run and inspect the flowyml pipelines of this program"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the registered pipelines and their steps.
    List,
    /// Run a pipeline.
    Run {
        /// The pipeline's name.
        pipeline: String,
        /// Worker threads (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Write a Chrome/Perfetto trace of the run to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Keep running independent steps after a failure.
        #[arg(long)]
        keep_going: bool,
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
    },
    /// Print a pipeline's DAG.
    Graph {
        /// The pipeline's name.
        pipeline: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Inspect or clear the persistent cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// The history of runs: when, how long, how many steps were cached.
    Runs {
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// The GPUs: devices, memory and its source, the chosen best device.
    #[cfg(feature = "gpu")]
    Gpu,
}

#[derive(clap::Args, Debug)]
struct CacheArgs {
    /// The persistent cache's directory.
    #[arg(
        long,
        value_name = "DIR",
        env = "FLOWYML_CACHE_DIR",
        default_value = ".flowyml",
        global = true
    )]
    cache_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// Entries, artifacts, bytes, hits and misses.
    Stats,
    /// Remove every entry and artifact (the run history stays).
    Clear,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Parses the process's arguments, runs the command, prints errors to
/// stderr; exit code 0 on success, 1 on failure, 2 on bad usage.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match execute(cli, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command line `args` (the first being the program name),
/// writing what it prints to `out`.
///
/// ```
/// let mut out = Vec::new();
/// flowyml::cli::run(["prog", "list"], &mut out)?;
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// Bad usage, an unknown pipeline, a failed run, or a failed write.
pub fn run<I, T>(args: I, out: &mut dyn Write) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| Error::Usage(e.to_string()))?;
    execute(cli, out)
}

fn execute(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    match cli.command {
        Command::List => {
            for p in registry::pipelines() {
                let pipeline = (p.build)();
                let steps: Vec<_> = pipeline
                    .steps()
                    .map(|s| s.spec().name.to_string())
                    .collect();
                writeln!(
                    out,
                    "{}  ({})  steps: {}",
                    p.name,
                    p.module_path,
                    steps.join(", ")
                )
                .map_err(io)?;
            }
        }
        Command::Run {
            pipeline,
            workers,
            json,
            trace,
            keep_going,
            cache,
            no_cache,
            invalidate,
            no_gpu,
        } => {
            let mut pipeline = registry::pipeline(&pipeline)?;
            pipeline.keep_going(keep_going).no_gpu(no_gpu);
            if !no_cache {
                pipeline.cache_dir(&cache.cache_dir)?;
            }
            for step in &invalidate {
                pipeline.invalidate(step)?;
            }
            let executor = match workers {
                Some(n) => ParallelExecutor::new(n)?,
                None => ParallelExecutor::with_available_parallelism()?,
            };
            // A failed run still prints what it did: its result is inside
            // the error.
            let outcome = pipeline.run_with(&executor);
            let result = match &outcome {
                Ok(result) => result,
                Err(Error::StepFailed { result, .. }) => &**result,
                Err(_) => return outcome.map(drop),
            };
            if let Some(path) = trace {
                std::fs::write(&path, result.chrome_trace()).map_err(|e| Error::io(path, e))?;
            }
            if json {
                writeln!(out, "{}", result.to_json()).map_err(io)?;
            } else {
                write!(out, "{}", result.summary()).map_err(io)?;
            }
            outcome.map(drop)?;
        }
        Command::Graph { pipeline, format } => {
            let pipeline = registry::pipeline(&pipeline)?;
            let text = match format {
                GraphFormat::Dot => pipeline.to_dot(),
                GraphFormat::Mermaid => pipeline.to_mermaid(),
            };
            write!(out, "{text}").map_err(io)?;
        }
        Command::Cache { command, cache } => {
            let store = ArtifactStore::open(&cache.cache_dir)?;
            match command {
                CacheCommand::Stats => {
                    let s = store.stats()?;
                    writeln!(
                        out,
                        "cache {}: {} entries, {} artifacts, {} bytes, {} hits, {} misses, {} evictions, {} runs",
                        cache.cache_dir.display(),
                        s.entries,
                        s.artifacts,
                        s.bytes,
                        s.hits,
                        s.misses,
                        s.evictions,
                        s.runs
                    )
                    .map_err(io)?;
                }
                CacheCommand::Clear => {
                    store.clear()?;
                    writeln!(out, "cleared {}", cache.cache_dir.display()).map_err(io)?;
                }
            }
        }
        #[cfg(feature = "gpu")]
        Command::Gpu => {
            let manager = crate::gpu::GpuResourceManager::new();
            write!(out, "{manager}").map_err(io)?;
            match manager.best_device() {
                Ok(device) => writeln!(out, "best device: {device}").map_err(io)?,
                Err(e) => writeln!(out, "best device: none ({e})").map_err(io)?,
            }
        }
        Command::Runs { cache } => {
            let store = ArtifactStore::open(&cache.cache_dir)?;
            writeln!(
                out,
                "{:>5}  {:<20}  {:<11}  {:>12}  {:>5}  {:>6}",
                "run", "pipeline", "status", "duration", "steps", "cached"
            )
            .map_err(io)?;
            for r in store.runs()? {
                let duration = r
                    .duration
                    .map_or_else(|| "-".to_owned(), |d| format!("{d:.2?}"));
                writeln!(
                    out,
                    "{:>5}  {:<20}  {:<11}  {:>12}  {:>5}  {:>6}",
                    r.id.0,
                    r.pipeline,
                    r.status.to_string(),
                    duration,
                    r.steps,
                    r.cached
                )
                .map_err(io)?;
            }
        }
    }
    Ok(())
}

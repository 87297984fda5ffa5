//! A command line over every registered pipeline (feature `cli`).
//!
//! Any binary gets it with one line, `fn main() -> std::process::ExitCode
//! { flowyml::cli::main() }`. Its subcommands:
//!
//! ```text
//! list                                   the registered pipelines, their steps and inputs
//! run <pipeline>                         run it; see `run --help`:
//!     [--input NAME=JSON | NAME=@FILE]...  a run-time input as JSON, or a JSON file
//!     [--input-str NAME=TEXT]...           a string input, as it is
//!     [--inputs FILE]                      inputs from a JSON or TOML object
//!     [--output NAME]... [--output-dir DIR] [--json] [--trace FILE] [--report FILE.html]
//!     [--workers N] [--keep-going] [--retries N] [--timeout DURATION]
//!     [--cache-dir DIR | --no-cache] [--invalidate STEP]... [--no-gpu] [-q] [-v]
//! plan <pipeline> [--json]               the plan a cluster runner reads: inputs, artifacts, steps, groups
//! run-step <pipeline> <step>...          run steps alone, inputs and outputs in the cache's encoding
//!     [--input NAME=FILE]... [--input-json NAME=JSON]... --output-dir DIR [--no-gpu]
//! graph <pipeline> [--format dot|mermaid|svg]
//! cache stats [--json] | clear           the persistent cache
//! cache serve <pipeline>                 the cache for a cluster driver: JSON lines on stdin/stdout
//! runs [--all] | runs show <id> [--json] | runs prune --keep N
//!                                        the history of runs
//! gpu                                    devices, memory, the best device (feature `gpu`)
//! --version
//! ```
//!
//! Exit codes: 0 success; 1 a step failed or timed out; 2 bad usage or an
//! input that does not decode; 130 interrupted (Ctrl-C, SIGTERM).
//!
//! Runs are incremental across processes: the cache lives in `.flowyml`
//! in the current directory unless `--cache-dir` or `FLOWYML_CACHE_DIR`
//! says otherwise, and `--no-cache` turns it off. Logs go to stderr:
//! warnings by default, `-v` for info, `-vv` for debug, `RUST_LOG` for
//! anything finer; the library itself never installs a subscriber.

mod args;
mod history;
mod plan;
mod progress;
mod run;
mod serve;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::registry;
use args::{CacheArgs, stdout_error};

pub use indicatif::ProgressDrawTarget;
pub use plan::binary_sha256;
pub use progress::ProgressBar;

#[derive(Parser, Debug)]
#[command(
    name = "flowyml",
    about = "Run and inspect the flowyml pipelines of this program",
    version = &**VERSION,
)]
struct Cli {
    /// More logs on stderr: -v for info, -vv for debug (RUST_LOG wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Errors only: no progress, no logs below error.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// `--version`: flowyml's and its cache format's.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (flowyml; cache format {})",
        env!("CARGO_PKG_VERSION"),
        crate::incremental::CACHE_FORMAT_VERSION
    )
});

#[derive(Subcommand, Debug)]
enum Command {
    /// List the registered pipelines, their steps and their inputs.
    List,
    /// Run a pipeline.
    Run(run::RunArgs),
    /// The plan of a pipeline: inputs, artifacts with their codecs, steps,
    /// and the groups of steps that must share a process.
    Plan {
        /// The pipeline's name.
        pipeline: String,
        /// As JSON, for programs (a cluster runner).
        #[arg(long)]
        json: bool,
    },
    /// Run some steps of a pipeline alone, reading their inputs from files
    /// in the cache's encoding and writing their outputs so.
    RunStep(plan::RunStepArgs),
    /// Print a pipeline's DAG (`--format svg`: a picture, laid out).
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
        command: history::CacheCommand,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// The history of runs: when, how long, how many steps were cached.
    Runs {
        #[command(subcommand)]
        command: Option<history::RunsCommand>,
        /// Every run, not only the latest 20.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// The GPUs: devices, memory and its source, the chosen best device.
    #[cfg(feature = "gpu")]
    Gpu,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

/// Parses the process's arguments, runs the command, prints errors to
/// stderr; exits 0 on success, 1 when a step fails, 2 on bad usage or bad
/// input, 130 when interrupted.
pub fn main() -> ExitCode {
    ExitCode::from(main_from(std::env::args_os()))
}

/// [`main`] over `args` (the first being the program name), returning its
/// exit code: logs on stderr, live progress on a terminal, Ctrl-C and
/// SIGTERM handled, step panics printed once (in their errors).
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    install_logging(cli.verbose, cli.quiet);
    crate::step::silence_step_panics();
    let interactive = !cli.quiet;
    let outcome = crate::registry::check()
        .and_then(|()| execute(cli, &mut std::io::stdout().lock(), interactive));
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

/// The exit code for `error`: 2 for what the user typed or gave, 130 for
/// an interruption, 1 for a failure of the pipeline itself.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Usage(_)
        | Error::UnknownPipeline { .. }
        | Error::DuplicatePipeline { .. }
        | Error::UnknownStep { .. }
        | Error::UnknownInput { .. }
        | Error::UnknownArtifact { .. }
        | Error::Input { .. }
        | Error::InvalidPipeline { .. } => 2,
        Error::Interrupted { .. } => 130,
        _ => 1,
    }
}

fn install_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the command line `args` (the first being the program name),
/// writing what it prints to `out`; draws no progress and installs no
/// signal handler or log subscriber (see [`main`] for those).
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
    execute(cli, out, false)
}

fn execute(cli: Cli, out: &mut dyn Write, interactive: bool) -> Result<()> {
    match cli.command {
        Command::List => list(out),
        Command::Run(args) => run::run(args, out, interactive && !cli.quiet),
        Command::Plan { pipeline, json } => plan::plan(&pipeline, json, out),
        Command::RunStep(args) => plan::run_step(args, out),
        Command::Graph { pipeline, format } => {
            let pipeline = registry::pipeline(&pipeline)?;
            let text = match format {
                GraphFormat::Dot => pipeline.to_dot(),
                GraphFormat::Mermaid => pipeline.to_mermaid(),
                GraphFormat::Svg => pipeline.to_svg()?,
            };
            write!(out, "{text}").map_err(stdout_error)
        }
        Command::Cache { command, cache } => history::cache(command, &cache, out),
        Command::Runs {
            command,
            all,
            cache,
        } => history::runs(command, all, &cache, out),
        #[cfg(feature = "gpu")]
        Command::Gpu => {
            let manager = crate::gpu::GpuResourceManager::new();
            write!(out, "{manager}").map_err(stdout_error)?;
            match manager.best_device() {
                Ok(device) => writeln!(out, "best device: {device}").map_err(stdout_error),
                Err(e) => writeln!(out, "best device: none ({e})").map_err(stdout_error),
            }
        }
    }
}

fn list(out: &mut dyn Write) -> Result<()> {
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
        .map_err(stdout_error)?;
        for input in pipeline.required_inputs() {
            writeln!(
                out,
                "    input {}: {}{}",
                input.name,
                input.type_name,
                if input.given { " (has a default)" } else { "" }
            )
            .map_err(stdout_error)?;
        }
    }
    Ok(())
}

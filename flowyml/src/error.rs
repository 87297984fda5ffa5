//! The one error type of flowyml, and the one error type of user code.
//!
//! Every variant names the thing at fault (the task, the step, the artifact,
//! the column) so that a failure can be traced without a debugger.
//!
//! This module is near the ground floor: it names nothing above it. A
//! failed pipeline run is still an `Err(`[`Error::StepFailed`]`)` carrying
//! the whole [`PipelineResult`](crate::PipelineResult), as a [`FailedRun`]
//! that dereferences to it: the error holds the result without naming its
//! type, which lives above, in [`pipeline`](mod@crate::pipeline), with its
//! artifacts, codecs and fingerprints. The other ways to cut the circle
//! were worse: an error generic over what it carries puts a type
//! parameter on every `Result` of the crate, and a result kept below the
//! error could hold nothing that can fail.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A failed run's [`PipelineResult`](crate::PipelineResult), which it
/// dereferences to: `result.step("load")`, `result.summary()`.
pub struct FailedRun(pub(crate) Box<dyn Any + Send + Sync>);

/// `Result` with flowyml's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error user code fails with, in a pipeline step and in an
/// [`IncrementalComputation`](crate::IncrementalComputation) node alike:
/// any error converts into it with `?` (and so do a `String` and a
/// `&str`), and the original error stays reachable through
/// [`source`](std::error::Error::source) and `downcast_ref`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One problem that validation found in a pipeline; [`Error::InvalidPipeline`]
/// lists every one. Its `Display` is a sentence naming the steps and
/// artifacts involved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A function was added with `add_step` without `#[step]`.
    NotAStep {
        /// The function's type name.
        function: String,
    },
    /// A step said why it cannot be part of a pipeline.
    Step {
        /// The step.
        step: String,
        /// Its reason.
        message: String,
    },
    /// Two steps have the same name.
    DuplicateStep {
        /// The name.
        step: String,
    },
    /// An artifact has two producers.
    ProducedTwice {
        /// The artifact.
        artifact: String,
        /// The first producer: a step, or `None` for a run-time input.
        first: Option<String>,
        /// The step that produces it again.
        second: String,
    },
    /// A step needs an artifact that no step produces and no run-time
    /// input provides.
    MissingInput {
        /// The step.
        step: String,
        /// The artifact it needs.
        artifact: String,
        /// The closest name that exists, if one is close.
        did_you_mean: Option<String>,
    },
    /// A producer and a consumer disagree on an artifact's type.
    TypeMismatch {
        /// The artifact.
        artifact: String,
        /// Its producer: a step, or `None` for a run-time input.
        producer: Option<String>,
        /// The type it produces.
        produced: String,
        /// The step that reads it.
        consumer: String,
        /// The type that step expects.
        expected: String,
    },
    /// Steps that wait for each other.
    Cycle {
        /// The steps in dependency order, each feeding the next and the
        /// last feeding the first.
        steps: Vec<String>,
    },
}

fn producer(p: &Option<String>) -> String {
    p.as_ref()
        .map_or_else(|| "a run-time input".to_owned(), |s| format!("step `{s}`"))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAStep { function } => write!(
                f,
                "`{function}` is not a step: annotate the function with `#[step(outputs = [..])]`"
            ),
            Problem::Step { step, message } => write!(f, "step `{step}`: {message}"),
            Problem::DuplicateStep { step } => write!(f, "step `{step}` is added twice"),
            Problem::ProducedTwice {
                artifact,
                first,
                second,
            } => write!(
                f,
                "artifact `{artifact}` is produced twice: by {} and by step `{second}`",
                producer(first)
            ),
            Problem::MissingInput {
                step,
                artifact,
                did_you_mean,
            } => {
                write!(
                    f,
                    "step `{step}` needs artifact `{artifact}`, which no step produces and no run-time input provides"
                )?;
                match did_you_mean {
                    Some(name) => write!(f, "; did you mean `{name}`?"),
                    None => Ok(()),
                }
            }
            Problem::TypeMismatch {
                artifact,
                producer: p,
                produced,
                consumer,
                expected,
            } => write!(
                f,
                "type mismatch for artifact `{artifact}`: {} produces `{produced}` but step `{consumer}` expects `{expected}`",
                producer(p)
            ),
            Problem::Cycle { steps } => {
                write!(f, "cycle: {}", steps.join(" -> "))?;
                match steps.first() {
                    Some(first) => write!(f, " -> {first}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Everything that can go wrong in flowyml.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A batch size of zero would never make progress.
    #[error("batch_size must be at least 1, got 0")]
    ZeroBatchSize,

    /// A thread pool needs at least one worker.
    #[error("max_workers must be at least 1, got 0")]
    ZeroWorkers,

    /// rayon could not start the executor's threads.
    #[error("could not start a thread pool of {workers} workers: {source}")]
    ThreadPool {
        /// Requested number of workers.
        workers: usize,
        /// rayon's reason.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },

    /// A task submitted to a [`ParallelExecutor`](crate::ParallelExecutor)
    /// returned an error or panicked.
    #[error("task {task} {}: {message}", if *.panicked { "panicked" } else { "failed" })]
    Task {
        /// The task's key (for `wait_all`) or `#index` (for `map`).
        task: String,
        /// The error's `Display` or the panic payload.
        message: String,
        /// Whether the task panicked rather than returning an error.
        panicked: bool,
    },

    /// Validation found problems; all of them are listed.
    #[error("pipeline `{pipeline}` is invalid:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    InvalidPipeline {
        /// The pipeline's name.
        pipeline: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },

    /// A step failed (returned an error or panicked); the run's result says
    /// which steps ran, failed and were skipped.
    #[error("pipeline `{pipeline}`: step `{step}` failed: {message}")]
    StepFailed {
        /// The pipeline's name.
        pipeline: String,
        /// The first step that failed.
        step: String,
        /// Its error message.
        message: String,
        /// The step's own error (for a panic, its message), reachable as
        /// this error's `source()`.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
        /// Everything the run did.
        result: FailedRun,
    },

    /// A step ran past its time limit ([`StepSpec::timeout`](crate::step::StepSpec::timeout)),
    /// or the whole run past the pipeline's
    /// ([`Pipeline::timeout`](crate::Pipeline::timeout)); the result says
    /// what ran.
    #[error("pipeline `{pipeline}`: {} timed out after {limit:?}", .step.as_ref().map_or_else(|| "the run".to_owned(), |s| format!("step `{s}`")))]
    TimedOut {
        /// The pipeline's name.
        pipeline: String,
        /// The step, or `None` for the whole run.
        step: Option<String>,
        /// The limit it ran past.
        limit: std::time::Duration,
        /// Everything the run did.
        result: FailedRun,
    },

    /// The run was cancelled (Ctrl-C, a
    /// [`Canceller`](crate::pipeline::Canceller)): it started no step after
    /// that, and let the running ones finish.
    #[error(
        "pipeline `{pipeline}` was interrupted: no step started after that; the result says which finished"
    )]
    Interrupted {
        /// The pipeline's name.
        pipeline: String,
        /// What the run did before it stopped.
        result: FailedRun,
    },

    /// No artifact has this name.
    #[error("no artifact named `{name}`{hint}")]
    UnknownArtifact {
        /// The name asked for.
        name: String,
        /// A suggestion, if a name is close.
        hint: String,
    },

    /// The pipeline has this artifact, but the run did not produce it.
    #[error("artifact `{name}` was not produced: step `{producer}` {status}")]
    NotProduced {
        /// The artifact.
        name: String,
        /// The step that produces it.
        producer: String,
        /// What happened to that step (`failed`, `skipped`).
        status: crate::record::StepStatus,
    },

    /// The artifact exists with another type.
    #[error("artifact `{name}` is a `{found}`, not a `{expected}`")]
    ArtifactType {
        /// The artifact.
        name: String,
        /// The type asked for.
        expected: String,
        /// The artifact's type.
        found: String,
    },

    /// The pipeline has no step of this name.
    #[error("pipeline `{pipeline}` has no step named `{step}`{hint}")]
    UnknownStep {
        /// The pipeline's name.
        pipeline: String,
        /// The name asked for.
        step: String,
        /// A suggestion, if a name is close.
        hint: String,
    },

    /// A pipeline was given an input it does not read, with the closest
    /// name if one is close.
    #[error("pipeline `{pipeline}` has no input `{name}`{hint}")]
    UnknownInput {
        /// The pipeline's name.
        pipeline: String,
        /// The input given.
        name: String,
        /// A suggestion, if a name is close; else the inputs it reads.
        hint: String,
    },

    /// A value given for a run-time input from outside the program (the
    /// command line, another process) cannot be read as its type.
    #[error("input `{input}`: {message}")]
    Input {
        /// The input.
        input: String,
        /// What is wrong, with the expected type.
        message: String,
    },

    /// No registered pipeline has this name.
    #[error("no pipeline named `{name}`{hint}")]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// A suggestion, if a name is close.
        hint: String,
    },

    /// Two registered pipelines share a name (two `#[pipeline]` modules,
    /// or a `register_pipeline!` beside one), so a name would not say which
    /// is meant.
    #[error("pipeline name `{name}` is registered {} times, by {}: give all but one another `#[pipeline(name = \"..\")]`", .modules.len(), .modules.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" and "))]
    DuplicatePipeline {
        /// The shared name.
        name: String,
        /// The modules that register it.
        modules: Vec<String>,
    },

    /// A command line could not be parsed.
    #[error("{0}")]
    Usage(String),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    // ---- incremental ----
    /// No node of that name is registered.
    #[error("unknown node `{node}`")]
    UnknownNode {
        /// The name asked for.
        node: String,
    },

    /// A node name was registered twice.
    #[error("node `{node}` is already registered")]
    DuplicateNode {
        /// The name registered twice.
        node: String,
    },

    /// A node depends on a name no node has.
    #[error("node `{node}` depends on unknown node `{dep}`")]
    UnknownDependency {
        /// The node declaring the dependency.
        node: String,
        /// The missing dependency.
        dep: String,
    },

    /// A node read a value it did not declare as a dependency.
    #[error("node `{node}` reads `{dep}`, which is not among its declared dependencies")]
    UndeclaredDependency {
        /// The node reading.
        node: String,
        /// The name it read.
        dep: String,
    },

    /// The dependencies form a cycle.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    DependencyCycle {
        /// The nodes of the cycle in dependency order, the first repeated
        /// at the end (`A -> B -> A`).
        cycle: Vec<String>,
    },

    /// A value was read as a type it does not have.
    #[error("node `{node}` holds a `{found}`, read as a `{expected}`")]
    NodeType {
        /// The node whose value was read.
        node: String,
        /// The type asked for.
        expected: &'static str,
        /// The node's type.
        found: &'static str,
    },

    /// A node's computation returned an error or panicked.
    #[error("node `{node}` {}: {source}", if *.panicked { "panicked" } else { "failed" })]
    NodeFailed {
        /// The failing node.
        node: String,
        /// Whether it panicked rather than returning an error.
        panicked: bool,
        /// Its error (or the panic message).
        #[source]
        source: BoxError,
    },

    /// A dirty node was read before being computed.
    #[error(
        "node `{node}` is dirty (never computed, invalidated, or downstream of a failure); compute it first"
    )]
    StaleNode {
        /// The dirty node.
        node: String,
    },

    /// Text that is not 64 hex digits was parsed as a fingerprint.
    #[error("not a fingerprint (64 hex digits): `{input}`")]
    InvalidFingerprint {
        /// The text (at most 80 characters of it).
        input: String,
    },

    /// A value could not be encoded.
    #[error("could not encode a `{type_name}`: {message}")]
    Encode {
        /// The value's type.
        type_name: &'static str,
        /// The codec's reason.
        message: String,
    },

    /// Bytes could not be decoded as the type asked for.
    #[error("could not decode a `{type_name}`: {message}")]
    Decode {
        /// The type asked for.
        type_name: &'static str,
        /// The codec's reason.
        message: String,
    },

    /// A stored artifact failed its hash or size check; it is removed from
    /// the store and never served.
    #[error("artifact {hash} at {} is corrupt: {reason}", path.display())]
    CorruptArtifact {
        /// The artifact's address (its expected hash).
        hash: String,
        /// Its file.
        path: PathBuf,
        /// What the check found.
        reason: String,
    },

    /// A cache entry names an artifact the store does not hold.
    #[error("artifact {hash} is not in the store")]
    MissingArtifact {
        /// The artifact's address.
        hash: String,
    },

    /// The metadata database failed.
    #[error("cache database {}: {}", path.display(), database_reason(path, source))]
    Database {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },

    /// The cache's directory cannot be written: it is read, not written.
    #[error("the cache {} is read-only: its results are served, new ones are not stored", path.display())]
    ReadOnlyCache {
        /// The cache's database file.
        path: PathBuf,
    },

    /// No GPU adapter can run compute shaders here; `reason` says what was
    /// looked for. Match on it to fall back to the CPU.
    #[error("no GPU adapter: {reason}")]
    NoGpu {
        /// What was searched, and the likely fix.
        reason: String,
    },

    /// A GPU operation failed: opening, compiling, dispatching, reading
    /// memory figures, or an override that names no device.
    #[error("GPU{}: {message}", device.as_ref().map(|d| format!(" {d}")).unwrap_or_default())]
    Gpu {
        /// The device at fault, where one is involved.
        device: Option<String>,
        /// What went wrong.
        message: String,
    },

    /// polars failed on a column, a frame or a file (feature `dataframe`).
    #[cfg(feature = "dataframe")]
    #[error("{context}: {source}")]
    Polars {
        /// What failed: the column, the file and its records, or the operation.
        context: String,
        /// polars' reason.
        #[source]
        source: polars::error::PolarsError,
    },

    /// An option or a frame that [`dataframe`](crate::dataframe) rejects
    /// (feature `dataframe`).
    #[cfg(feature = "dataframe")]
    #[error("{}{message}", .column.as_ref().map(|c| format!("column `{c}`: ")).unwrap_or_default())]
    DataFrame {
        /// The column at fault, if one is.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a polars error with what was being done (`map_err(Error::polars("reading x.csv"))`).
    #[cfg(feature = "dataframe")]
    pub(crate) fn polars(
        context: impl Into<String>,
    ) -> impl FnOnce(polars::error::PolarsError) -> Self {
        move |source| Error::Polars {
            context: context.into(),
            source,
        }
    }
}

/// The message of a caught panic payload (`&str` and `String` payloads; other
/// payloads are described, not lost).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// SQLite's reason in the words of the problem: a full disk says so
/// (SQLite says "database or disk is full", or only "disk I/O error" when
/// a write of its WAL or shared memory fails), with the space left where
/// the database is.
fn database_reason(path: &std::path::Path, source: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode::{DiskFull, SystemIoFailure};
    let code = source.sqlite_error_code();
    if code == Some(DiskFull) || (code == Some(SystemIoFailure) && no_space_left(path)) {
        format!("no space left on device ({source})")
    } else {
        source.to_string()
    }
}

/// Whether the filesystem holding `path` has no space for more data.
fn no_space_left(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        let dir = path.parent().unwrap_or(path);
        // Under a block of room left counts as full: SQLite writes pages.
        rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < 65_536)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

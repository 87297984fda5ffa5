//! The one error type of flowyml.
//!
//! Every variant names the thing at fault (the task, the step, the artifact,
//! the column) so that a failure can be traced without a debugger.

use std::path::PathBuf;

/// `Result` with flowyml's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        /// Every problem found, one per entry.
        problems: Vec<String>,
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
        /// Everything the run did.
        result: Box<crate::pipeline::PipelineResult>,
    },

    /// No artifact has this name.
    #[error("no artifact named `{name}`{hint}")]
    UnknownArtifact {
        /// The name asked for.
        name: String,
        /// A suggestion, if a name is close.
        hint: String,
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

    /// No registered pipeline has this name.
    #[error("no pipeline named `{name}`{hint}")]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// A suggestion, if a name is close.
        hint: String,
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
        source: Box<dyn std::error::Error + Send + Sync>,
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
    #[error("cache database {}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
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

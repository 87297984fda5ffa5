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

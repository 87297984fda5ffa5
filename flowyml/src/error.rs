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

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
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

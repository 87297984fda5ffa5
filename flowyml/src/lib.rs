//! # flowyml
//!
//! Fast data and ML pipelines in Rust. Annotate plain functions as steps and
//! get a pipeline that is checked when it compiles, runs in parallel on
//! rayon, recomputes only what changed, runs steps on any GPU (feature
//! `gpu`) and keeps dataframes small (feature `dataframe`).
//!
//! One concept of the guide, one module:
//!
//! | guide section | module |
//! | --- | --- |
//! | Lazy Evaluation | [`lazy`] ([`LazyValue`], [`lazy_property`]) |
//! | Parallel Execution | [`executor`] ([`ParallelExecutor`]) |
//! | Batch Processing | [`batch`] ([`batch_iterator`]) |
//! | SmartCache | [`cache`] ([`SmartCache`]) |
//! | Parallel Pipeline Steps | [`step`](mod@step) ([`#[step]`](macro@step)), [`pipeline`](mod@pipeline) ([`Pipeline`], [`#[pipeline]`](macro@pipeline)) |
//! | Incremental Computation | [`incremental`] ([`IncrementalComputation`]) |
//! | GPU Resource Management | `gpu` (feature `gpu`: `GpuResourceManager`, `Gpu`) |
//! | DataFrame Optimization (feature `dataframe`) | `dataframe` (`optimize_dataframe`, `read_csv_chunks`) |
//!
//! ```
//! use flowyml::{LazyValue, ParallelExecutor, batch_iterator};
//!
//! let data = LazyValue::new(|| (1..=1000).collect::<Vec<u64>>());
//! assert!(!data.is_computed());
//! let executor = ParallelExecutor::new(2)?;
//! let sums = executor.map(|b: Vec<u64>| b.iter().sum::<u64>(), batch_iterator(data.value().iter().copied(), 250)?);
//! assert_eq!(sums.iter().sum::<u64>(), 500_500);
//! # Ok::<(), flowyml::Error>(())
//! ```
#![warn(missing_docs)]

pub mod artifact;
pub mod batch;
pub mod cache;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "dataframe")]
pub mod dataframe;
pub mod error;
pub mod executor;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod incremental;
pub mod lazy;
pub mod pipeline;
pub mod registry;
pub mod step;

pub use batch::batch_iterator;
pub use cache::SmartCache;
pub use error::{Error, Result};
pub use executor::{ParallelExecutor, TaskHandle};
pub use flowyml_macros::{lazy_properties, lazy_property, pipeline, step};
pub use incremental::IncrementalComputation;
pub use lazy::{LazyCells, LazyValue, TryLazyValue};
pub use pipeline::{Pipeline, PipelineResult, StepStatus};
pub use step::{Step, StepError};

/// Paths the macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::artifact::{Codec, probe};
    pub use crate::lazy::LazyHost;
    pub use crate::registry::{RegisteredPipeline, RegisteredStep};
    pub use crate::step::{ArtifactSpec, Step, StepContext, StepError, StepSpec};
    pub use inventory;
    pub use std::borrow::Cow;

    /// The `TypeId` of a function's item type.
    pub fn type_id_of<F: 'static>(_: &F) -> std::any::TypeId {
        std::any::TypeId::of::<F>()
    }
    pub use std::sync::OnceLock;
}

//! # flowyml
//!
//! Fast data and ML pipelines in Rust. Annotate plain functions as steps,
//! group them in a `#[pipeline]` module, and get a pipeline whose DAG is
//! checked when it compiles, that runs independent steps in parallel on a
//! rayon pool, recomputes only what changed, runs steps on any GPU
//! (feature `gpu`) and keeps dataframes small (feature `dataframe`).
//!
//! ```
//! use flowyml::{StepStatus, pipeline};
//!
//! #[pipeline(name = "stats")]
//! mod stats {
//!     #[step(outputs = ["numbers"])]
//!     fn load() -> Vec<f64> {
//!         vec![1.0, 2.0, 3.0, 4.0]
//!     }
//!
//!     #[step(outputs = ["mean"])]
//!     fn mean(numbers: &Vec<f64>) -> f64 {
//!         numbers.iter().sum::<f64>() / numbers.len() as f64
//!     }
//!
//!     #[step(outputs = ["max"])]
//!     fn max(numbers: &Vec<f64>) -> f64 {
//!         numbers.iter().copied().fold(f64::MIN, f64::max)
//!     }
//! }
//!
//! // `mean` and `max` run in parallel once `load` is done.
//! let result = stats::pipeline().run()?;
//! assert_eq!((*result.get::<f64>("mean")?, *result.get::<f64>("max")?), (2.5, 4.0));
//! assert_eq!(result.steps_with(StepStatus::Ran), ["load", "mean", "max"]);
//! println!("{}", result.summary()); // status, start, duration and worker per step
//! let report = result.to_html(); // the DAG coloured by status, a timeline per worker
//! # assert!(report.contains("data-step=\"max\""));
//! # Ok::<(), flowyml::Error>(())
//! ```
//!
//! A step that reads an artifact no step produces, two steps producing one
//! artifact, a cycle or a type mismatch is a compile error at the token at
//! fault. The same pipeline can be built at run time with
//! [`Pipeline::add_step`], run from a command line over every registered
//! pipeline ([`cli`]), and cached across processes
//! ([`Pipeline::cache_dir`]). The guide is the book in `book/`.
//!
//! ## Concepts
//!
//! | concept | where |
//! | --- | --- |
//! | steps: plain functions as units of work | [`step`](mod@step) ([`#[step]`](macro@step), [`Step`], [`FnStep`](step::FnStep)) |
//! | pipelines: steps wired by artifact name, validated, run in parallel | [`pipeline`](mod@pipeline) ([`Pipeline`], [`#[pipeline]`](macro@pipeline), [`PipelineResult`]) |
//! | the values steps exchange, and how each type is hashed and stored | [`artifact`] |
//! | per-run resources such as an opened GPU | [`resource`] |
//! | every `#[pipeline]` of the program, by name | [`registry`] |
//! | a command line over the registry (feature `cli`, on by default) | [`cli`] |
//! | recomputing only what changed: fingerprints, cache keys, the on-disk store | [`incremental`] ([`IncrementalComputation`], [`ArtifactStore`](incremental::ArtifactStore)) |
//! | GPU steps, adapter choice and memory (feature `gpu`) | [`gpu`] |
//! | polars frames as artifacts, made small (feature `dataframe`) | [`dataframe`] |
//! | lazy values and properties | [`lazy`] ([`LazyValue`], [`#[lazy_property]`](macro@lazy_property)) |
//! | a parallel executor, batches, a TTL cache | [`executor`] ([`ParallelExecutor`]), [`batch`] ([`batch_iterator`]), [`cache`] ([`SmartCache`]) |
//! | the error type | [`error`] ([`Error`], [`Problem`](error::Problem), [`BoxError`]) |
//!
//! ## Layers
//!
//! Imports point down this list, never up and never in a circle (a test,
//! `tests/layers.rs`, checks it):
//!
//! 1. `record` (a run's data: [`PipelineResult`], [`StepRecord`](pipeline::StepRecord)) and
//!    `flowyml-dag` (the graph's shape);
//! 2. [`error`];
//! 3. the utilities ([`lazy`], [`executor`], [`batch`], [`cache`]), [`resource`] and
//!    `dag` (the one ready-queue engine, used by pipelines and
//!    `IncrementalComputation`);
//! 4. [`incremental`]: fingerprints, the codec, the store, then
//!    `IncrementalComputation`;
//! 5. [`artifact`], then [`step`](mod@step);
//! 6. [`pipeline`](mod@pipeline): its plan, step cache and run;
//! 7. [`gpu`], [`dataframe`] (steps and artifacts of their own), [`registry`];
//! 8. [`cli`].
//!
//! Each item has one home module; the crate root re-exports the few that
//! every program uses.
//!
//! ## Features
//!
//! | feature | what it adds | on by default |
//! | --- | --- | --- |
//! | `cli` | [`cli`]: a command line over every registered pipeline | yes |
//! | `dataframe` | [`dataframe`]: polars frames as artifacts, made small; CSV read as it is or compressed | no |
//! | `gpu` | [`gpu`]: GPU steps on wgpu (Vulkan, Metal, DX12), adapter choice, memory | no |
//! | `nvml` | NVIDIA memory figures through NVML, for `gpu` | no |
//!
//! A first pipeline needs only the defaults; the heavy dependencies
//! (polars, wgpu) come with their features.
//!
// A feature-gated module is linked where it is built, and to the features
// table where it is not: no broken link either way.
#![cfg_attr(feature = "cli", doc = "[`cli`]: crate::cli")]
#![cfg_attr(not(feature = "cli"), doc = "[`cli`]: #features")]
#![cfg_attr(feature = "gpu", doc = "[`gpu`]: crate::gpu")]
#![cfg_attr(not(feature = "gpu"), doc = "[`gpu`]: #features")]
#![cfg_attr(feature = "dataframe", doc = "[`dataframe`]: crate::dataframe")]
#![cfg_attr(not(feature = "dataframe"), doc = "[`dataframe`]: #features")]
// docs.rs builds with every feature and `--cfg docsrs`: each feature's
// items are badged with the feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod artifact;
pub mod batch;
pub mod cache;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod clock;
mod dag;
#[cfg(feature = "dataframe")]
#[cfg_attr(docsrs, doc(cfg(feature = "dataframe")))]
pub mod dataframe;
pub mod error;
pub mod executor;
#[cfg(feature = "gpu")]
#[cfg_attr(docsrs, doc(cfg(feature = "gpu")))]
pub mod gpu;
pub mod incremental;
pub mod lazy;
pub mod pipeline;
mod prefetch;
mod record;
pub mod registry;
pub mod resource;
mod slot;
pub mod step;
mod sync;
mod type_name;
mod write_once;

pub use batch::batch_iterator;
pub use cache::SmartCache;
pub use error::{BoxError, Error, Result};
pub use executor::{ParallelExecutor, TaskHandle};
pub use flowyml_macros::{lazy_properties, lazy_property, pipeline, step};
pub use incremental::IncrementalComputation;
pub use lazy::{LazyCells, LazyValue, TryLazyValue};
pub use pipeline::{Pipeline, PipelineResult, StepStatus};
pub use step::Step;

/// Paths the macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::artifact::{Codec, probe};
    pub use crate::error::BoxError;
    #[cfg(feature = "gpu")]
    pub use crate::gpu::Gpu;
    pub use crate::lazy::LazyHost;
    pub use crate::pipeline::Pipeline;
    pub use crate::registry::RegisteredPipeline;
    pub use crate::resource::GPU;
    pub use crate::step::{ArtifactSpec, RegisteredStep, Step, StepContext, StepSpec, returned};
    pub use flowyml_macros::step;
    pub use inventory;
    pub use std::borrow::Cow;

    /// The `TypeId` of a function's item type.
    pub fn type_id_of<F: 'static>(_: &F) -> std::any::TypeId {
        std::any::TypeId::of::<F>()
    }
    pub use std::sync::{LazyLock, OnceLock};
}

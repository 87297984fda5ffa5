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

pub mod batch;
pub mod cache;
#[cfg(feature = "dataframe")]
pub mod dataframe;
pub mod error;
pub mod executor;
pub mod lazy;

pub use batch::batch_iterator;
pub use cache::SmartCache;
pub use error::{Error, Result};
pub use executor::{ParallelExecutor, TaskHandle};
pub use flowyml_macros::{lazy_properties, lazy_property};
pub use lazy::{LazyCells, LazyValue, TryLazyValue};

/// Paths the macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::lazy::LazyHost;
    pub use std::sync::OnceLock;
}

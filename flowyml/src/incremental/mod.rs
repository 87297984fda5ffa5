//! Incremental recomputation: recompute only what changed.
//!
//! | concept | where |
//! | --- | --- |
//! | a graph of named computations that reruns only what changed, with early cutoff | [`IncrementalComputation`], [`Deps`] |
//! | hashes of content, code, cache keys and external files | [`Fingerprint`], [`KeyBuilder`], [`FileFingerprints`] |
//! | the artifact encoding, independent of where bytes are kept | [`codec`] |
//! | the persistent, content-addressed on-disk cache | [`ArtifactStore`] |
//!
//! Nothing here serves a stale result: a changed input always reaches its
//! dependents (through dirty marking in memory, through the input
//! fingerprints of the cache key on disk), and what is read from disk is
//! checked against its hash before it is decoded.
//!
//! These modules sit below [`pipeline`](mod@crate::pipeline), whose step cache
//! builds on the fingerprints, the codec and the store.

pub mod codec;
mod computation;
mod deps;
pub(crate) mod fingerprint;
mod metadb;
pub(crate) mod store;

pub use computation::{ComputeReport, IncrementalComputation, IncrementalStats};
pub use deps::Deps;
pub use fingerprint::{
    CACHE_FORMAT_VERSION, FileFingerprints, FileStamp, Fingerprint, KeyBuilder, RACY_WINDOW,
    hash_file,
};
pub use store::{
    ArtifactStore, CacheEntry, DEFAULT_KEEP_RUNS, Eviction, RunId, RunRecord, RunStatus,
    StepExecution, StoreOptions, StoreStats,
};

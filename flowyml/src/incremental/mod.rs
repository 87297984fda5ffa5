//! Incremental recomputation: recompute only what changed.
//!
//! | concept | module |
//! | --- | --- |
//! | the spec's `IncrementalComputation`, with early cutoff | [`computation`] ([`IncrementalComputation`], [`Deps`]) |
//! | hashes of content, code, cache keys and external files | [`fingerprint`] ([`Fingerprint`], [`KeyBuilder`], [`FileFingerprints`]) |
//! | the artifact encoding, independent of where bytes are kept | [`codec`] |
//! | the persistent, content-addressed on-disk cache | [`store`] ([`ArtifactStore`]) |
//!
//! Unlike the reference, nothing here serves a stale result: a changed input
//! always reaches its dependents (through dirty marking in memory, through
//! the input fingerprints of the cache key on disk), and what is read from
//! disk is checked against its hash before it is decoded.

pub mod codec;
pub mod computation;
mod deps;
pub mod fingerprint;
mod metadb;
pub mod store;

pub use computation::{BoxError, ComputeReport, IncrementalComputation, IncrementalStats};
pub use deps::Deps;
pub use fingerprint::{FileFingerprints, FileStamp, Fingerprint, KeyBuilder};
pub use store::{
    ArtifactStore, ArtifactWriter, CacheEntry, Eviction, RunId, RunRecord, RunStatus,
    StagedArtifact, StepExecution, StoreOptions, StoreStats,
};

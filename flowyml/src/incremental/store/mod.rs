//! [`ArtifactStore`]: the persistent cache, a directory of content-addressed
//! artifact files and an embedded SQLite metadata database.
//!
//! ```text
//! <dir>/artifacts/<64 hex digits>   encoded artifacts, named by their blake3 hash
//! <dir>/artifacts/.tmp-*            writes in progress (locked by their writer)
//! <dir>/meta.sqlite                 runs, step executions, cache entries, LRU data
//! ```
//!
//! # Design notes
//! - **Content addressing.** A file's name is the hash of its bytes, never
//!   an artifact's name, so equal outputs of different steps are stored
//!   once, names need no escaping, and every read can be verified.
//! - **Atomic writes.** An artifact is written to a temporary file in the
//!   same directory, fsynced, and renamed to its hash (then the directory is
//!   fsynced). A reader sees a whole file or none; a writer killed midway
//!   leaves only a temporary file, which the next [`open`](ArtifactStore::open)
//!   removes. A writer holds an exclusive lock on its temporary file, which
//!   the OS releases when the writer dies: that, not a timeout, tells a
//!   live write from an abandoned one.
//! - **Never trusted.** A read checks the file's size against
//!   [`StoreOptions::max_artifact_bytes`] before reading it, reads at most
//!   that much, and checks the blake3 hash of what it read against the
//!   name. A truncated, corrupted or crafted file is removed (with the
//!   cache entries that point at it) and reported as
//!   [`Error::CorruptArtifact`]; the next read is a plain miss. Decoding is
//!   bounded too (see [`codec`]).
//! - **Order of writes.** An artifact's row is inserted after its file is
//!   in place, and a cache entry only after its artifacts have rows, so
//!   every row points at a complete file, whatever the point of a crash.
//!   Renames and removals happen inside the database's write transaction,
//!   so two processes cannot interleave an eviction with a write of the same
//!   artifact.
//! - **Cheap lookups.** [`lookup`](ArtifactStore::lookup) and reads are
//!   database reads; the recency they imply (for the LRU bound) and the hit
//!   counters are buffered and written in one transaction with the next
//!   write, [`flush`](ArtifactStore::flush) or drop.
//! - **LRU bound.** With [`StoreOptions::max_bytes`], each write evicts the
//!   least recently used artifacts until the total fits (the artifacts
//!   being written are never evicted, so a step whose outputs exceed the
//!   bound is still stored). Evicting an artifact drops the cache entries
//!   that need it.

mod artifacts;
mod dir;
mod entries;
mod files;
mod history;
mod pending;
mod writer;

pub use dir::{ArtifactStore, StoreOptions};
pub use entries::{CacheEntry, Eviction, StoreStats};
pub use history::{RunId, RunRecord, RunStatus, StepExecution};

#[cfg(test)]
mod tests;

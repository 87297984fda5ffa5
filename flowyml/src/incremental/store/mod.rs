//! [`ArtifactStore`]: the persistent cache, a directory of content-addressed
//! artifact files and an embedded SQLite metadata database.
//!
//! ```text
//! <dir>/artifacts/<64 hex digits>   encoded artifacts, named by their blake3 hash
//!                                   (a run keeps those of 16 KiB or less in the database)
//! <dir>/artifacts/.tmp-*            writes in progress (locked by their writer)
//! <dir>/meta.sqlite                 runs, step executions, cache entries, LRU data
//! ```
//!
//! # Design notes
//! - **Content addressing.** A file's name is the hash of its bytes, never
//!   an artifact's name, so equal outputs of different steps are stored
//!   once, names need no escaping, and every read can be verified. A run
//!   keeps small artifacts (up to 16 KiB) in their row instead of a file of
//!   their own: creating a file costs more than the step that made it
//!   (hundreds of microseconds in a large directory), a row a few; they are
//!   addressed and verified the same way.
//! - **Atomic writes.** An artifact is written to a temporary file in the
//!   same directory and renamed to its hash. A reader sees a whole file or
//!   none; a writer killed midway leaves only a temporary file, which the
//!   next [`open`](ArtifactStore::open) removes. A writer holds an exclusive
//!   lock on its temporary file, which the OS releases when the writer
//!   dies: that, not a timeout, tells a live write from an abandoned one.
//! - **Durable once per run.** A pipeline's run queues its entries and step
//!   records and group-commits them (a transaction per batch of up to
//!   1,024, or every 50 ms); with [`StoreOptions::durable`] its end flushes
//!   the filesystem once. What a killed process or a power loss can lose,
//!   and why it is never a wrong value, is the design note of the run's
//!   writer (`store/batch.rs`). A single [`put`](ArtifactStore::put) outside
//!   a run fsyncs its file and the directory.
//! - **Never trusted.** A read opens the artifact without following links
//!   and without blocking, reads only a regular file, bounds the read by the
//!   size the store recorded when it wrote it (not by the file's claim: a
//!   device says 0 bytes), and checks the blake3 hash of what it read
//!   against the name. A truncated, corrupted or crafted file, a symlink, a
//!   FIFO or a device is removed (with the cache entries that point at it)
//!   and reported as [`Error::CorruptArtifact`]; the next read is a plain
//!   miss. Decoding is bounded too (see [`codec`]).
//! - **Sealed entries.** Each entry's row carries a hash of its key, step
//!   and outputs, checked on every lookup: a row edited by hand or by a
//!   tool, or whose outputs were swapped with another's, is a miss (and is
//!   removed), never another step's data.
//! - **The index is a cache too.** A `meta.sqlite` that is not a database
//!   or is damaged is moved aside (`meta.sqlite.corrupt-<time>`) with one
//!   warning, and the store starts empty. A directory that cannot be
//!   written is opened read-only: hits are served, nothing is stored, and
//!   commands that only read never create a cache directory.
//! - **A bounded history.** The runs beyond [`StoreOptions::keep_runs`]
//!   (1,000 by default) are dropped as each run finishes.
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
mod batch;
mod dir;
mod entries;
mod files;
mod history;
mod pending;
mod writer;

#[cfg(test)]
use batch::MAX_WAIT;
pub(crate) use batch::RunWriter;
pub use dir::{ArtifactStore, DEFAULT_KEEP_RUNS, StoreOptions};
pub use entries::{CacheEntry, Eviction, StoreStats};
pub use history::{RunId, RunRecord, RunStatus, StepExecution};

#[cfg(test)]
mod fooled_tests;
#[cfg(test)]
mod tests;

//! [`ArtifactWriter`] and [`StagedArtifact`]: an artifact on its way into the store.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ArtifactStore, StoreOptions, TMP_PREFIX};
use crate::error::{Error, Result};
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::metadb::now_ns;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ArtifactStore {
    /// A writer for one artifact streamed in pieces; its address is known
    /// at [`commit`](ArtifactWriter::commit).
    ///
    /// ```
    /// use flowyml::incremental::{ArtifactStore, Fingerprint};
    /// use std::io::Write;
    ///
    /// let dir = std::env::temp_dir().join(format!("flowyml-doc-writer-{}", std::process::id()));
    /// let store = ArtifactStore::open(&dir)?;
    /// let mut w = store.writer()?;
    /// w.write_all(b"hello ").unwrap();
    /// w.write_all(b"world").unwrap();
    /// let hash = w.commit()?;
    /// assert_eq!(hash, Fingerprint::of_bytes(b"hello world"));
    /// assert_eq!(store.get_bytes(&hash)?.as_deref(), Some(&b"hello world"[..]));
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub fn writer(&self) -> Result<ArtifactWriter<'_>> {
        loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = self.artifacts.join(format!(
                "{TMP_PREFIX}{}-{n}-{}",
                std::process::id(),
                now_ns()
            ));
            let file = match File::create_new(&tmp) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&tmp, e)),
            };
            file.lock().map_err(|e| Error::io(&tmp, e))?;
            // A sweeper may have removed the file between its creation and
            // our lock; it removes only while holding the lock, so now the
            // file is either ours for good or gone.
            if !tmp.exists() {
                continue;
            }
            let StoreOptions {
                max_artifact_bytes: limit,
                durable,
                ..
            } = self.options();
            return Ok(ArtifactWriter {
                durable,
                store: self,
                file: Some(BufWriter::with_capacity(1 << 20, file)),
                tmp,
                hasher: blake3::Hasher::new(),
                len: 0,
                limit,
            });
        }
    }
}

/// Writes one artifact in pieces (implements [`Write`]); nothing is visible
/// in the store until [`commit`](Self::commit). Dropped without a commit,
/// it removes its temporary file.
pub struct ArtifactWriter<'s> {
    pub(super) store: &'s ArtifactStore,
    pub(super) file: Option<BufWriter<File>>,
    pub(super) tmp: PathBuf,
    pub(super) hasher: blake3::Hasher,
    pub(super) len: u64,
    pub(super) limit: u64,
    pub(super) durable: bool,
}

impl<'s> ArtifactWriter<'s> {
    /// The bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the artifact durable and visible at its address, which it
    /// returns.
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file, [`Error::Database`].
    pub fn commit(self) -> Result<Fingerprint> {
        let store = self.store;
        let staged = self.finish()?;
        let hash = staged.hash;
        store.install_all(vec![staged], None)?;
        Ok(hash)
    }

    /// Finishes writing (hash, fsync if durable) without recording the
    /// artifact; see [`ArtifactStore::commit_entry`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file.
    pub fn finish(mut self) -> Result<StagedArtifact<'s>> {
        let file = self.file.take().expect("present until commit or drop");
        let tmp = std::mem::take(&mut self.tmp);
        let file = match file.into_inner() {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(&tmp, e.into_error()));
            }
        };
        let staged = StagedArtifact {
            store: self.store,
            hash: Fingerprint::from_bytes(*self.hasher.finalize().as_bytes()),
            len: self.len,
            file: Some(file),
            tmp,
        };
        if self.durable {
            let file = staged.file.as_ref().expect("just set");
            file.sync_all().map_err(|e| Error::io(&staged.tmp, e))?;
        }
        Ok(staged)
    }
}

impl Write for ArtifactWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other(format!(
                "artifact exceeds the bound of {} bytes",
                self.limit
            )));
        }
        let file = self.file.as_mut().expect("present until commit or drop");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("present until commit or drop")
            .flush()
    }
}

impl Drop for ArtifactWriter<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for ArtifactWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactWriter")
            .field("tmp", &self.tmp)
            .field("len", &self.len)
            .finish()
    }
}

/// An artifact written to a temporary file and hashed, not yet in the
/// store: made by [`ArtifactStore::stage`] or [`ArtifactWriter::finish`],
/// recorded by [`ArtifactStore::commit_entry`]. Dropped uncommitted, it
/// removes its file.
pub struct StagedArtifact<'s> {
    pub(super) store: &'s ArtifactStore,
    pub(super) hash: Fingerprint,
    pub(super) tmp: PathBuf,
    pub(super) len: u64,
    /// Open (and locked) until the file is renamed into place.
    pub(super) file: Option<File>,
}

impl StagedArtifact<'_> {
    /// The address it will have.
    pub fn hash(&self) -> Fingerprint {
        self.hash
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for StagedArtifact<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for StagedArtifact<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedArtifact")
            .field("hash", &self.hash)
            .field("len", &self.len)
            .field("store", &self.store.dir)
            .finish()
    }
}

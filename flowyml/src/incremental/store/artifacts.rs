//! Writing and reading artifacts: content-addressed, verified on every read.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use rusqlite::OptionalExtension;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dir::ArtifactStore;
use super::entries::drop_artifact;
use crate::error::{Error, Result};
use crate::incremental::codec;
use crate::incremental::fingerprint::Fingerprint;
use crate::sync::lock;

impl ArtifactStore {
    /// Stores `bytes` and returns their address, [`Fingerprint::of_bytes`].
    /// Storing bytes already present only marks them used.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Fingerprint> {
        let hash = Fingerprint::of_bytes(bytes);
        if self.mark_used_if_present(&hash)? {
            return Ok(hash);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|e| Error::io(&w.tmp, e))?;
        w.commit()
    }

    /// Stores the [`codec`] encoding of `value`, streamed to
    /// disk; returns its address, which equals [`Fingerprint::of`]`(value)`.
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::Io`], [`Error::Database`].
    pub fn put<T: Serialize + ?Sized>(&self, value: &T) -> Result<Fingerprint> {
        let mut w = self.writer()?;
        codec::encode_into(value, &mut w)?;
        w.commit()
    }

    pub(super) fn mark_used_if_present(&self, hash: &Fingerprint) -> Result<bool> {
        let present = self.contains(hash)?;
        if present {
            self.touch_artifact(*hash)?;
        }
        Ok(present)
    }

    /// Whether the store records an artifact at `hash` whose file exists (it
    /// is verified only when read).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn contains(&self, hash: &Fingerprint) -> Result<bool> {
        let db = lock(&self.db);
        let inline: Option<bool> = db
            .conn
            .prepare_cached("SELECT data IS NOT NULL FROM artifacts WHERE hash = ?1")
            .and_then(|mut s| s.query_row([hash.to_hex()], |r| r.get(0)).optional())
            .map_err(|e| db.err(e))?;
        Ok(match inline {
            Some(true) => true,
            Some(false) => self.artifact_path(hash).exists(),
            None => false,
        })
    }

    /// The verified bytes of artifact `hash`; `None` if the store does not
    /// have it.
    ///
    /// The read is bounded by the size the store recorded when it wrote the
    /// artifact, never by what the file claims (a device reports 0 bytes and
    /// yields any number), and only a regular file is read: a symlink, a
    /// FIFO or a device at an artifact's path is corrupt, opened without
    /// following links and without blocking, so it can neither hang a run
    /// nor lead a read out of the cache's directory.
    ///
    /// # Errors
    /// [`Error::CorruptArtifact`] if the path holds anything but a regular
    /// file of the recorded size whose content hashes to its name (it is then
    /// removed, so the next read is `None`); [`Error::Io`], [`Error::Database`].
    pub fn get_bytes(&self, hash: &Fingerprint) -> Result<Option<Vec<u8>>> {
        let Some((recorded, inline)) = self.recorded(hash)? else {
            return Ok(None);
        };
        let limit = self.options().max_artifact_bytes;
        if recorded > limit {
            return Err(self.corrupt(
                hash,
                format!("{recorded} bytes exceed the bound of {limit}"),
            ));
        }
        if let Some(bytes) = inline {
            return self.verified(hash, recorded, bytes).map(Some);
        }
        let path = self.artifact_path(hash);
        let mut file = match open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A row without its file (an interrupted eviction, a power
                // loss, a hand-deleted file): forget it.
                self.forget(hash, false)?;
                return Ok(None);
            }
            Err(e) if is_a_link(&e) => {
                return Err(
                    self.corrupt(hash, "a symbolic link, not a file the cache wrote".into())
                );
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(self.corrupt(
                hash,
                format!("a {}, not a regular file", file_kind(&meta.file_type())),
            ));
        }
        let limit = self.options().max_artifact_bytes;
        if recorded > limit {
            return Err(self.corrupt(
                hash,
                format!("{recorded} bytes exceed the bound of {limit}"),
            ));
        }
        if meta.len() != recorded {
            return Err(self.corrupt(
                hash,
                format!("{} bytes where {recorded} were stored", meta.len()),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(recorded).unwrap_or(0));
        // `take`: a file growing after the size check is still bounded.
        (&mut file)
            .take(recorded + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        self.verified(hash, recorded, bytes).map(Some)
    }

    /// `bytes` if they are the `recorded` size and hash to `hash`, else the
    /// artifact is corrupt (removed).
    fn verified(&self, hash: &Fingerprint, recorded: u64, bytes: Vec<u8>) -> Result<Vec<u8>> {
        if bytes.len() as u64 != recorded {
            return Err(self.corrupt(
                hash,
                format!("{} bytes read where {recorded} were stored", bytes.len()),
            ));
        }
        let actual = Fingerprint::of_bytes(&bytes);
        if actual != *hash {
            return Err(self.corrupt(hash, format!("its {} bytes hash to {actual}", bytes.len())));
        }
        self.touch_artifact(*hash)?;
        Ok(bytes)
    }

    /// The size the store recorded for artifact `hash`, and its bytes if it
    /// keeps them in the database; `None` if it has no row.
    fn recorded(&self, hash: &Fingerprint) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        let db = lock(&self.db);
        db.conn
            .prepare_cached("SELECT size, data FROM artifacts WHERE hash = ?1")
            .and_then(|mut s| {
                s.query_row([hash.to_hex()], |r| {
                    let size: i64 = r.get(0)?;
                    Ok((u64::try_from(size).unwrap_or(u64::MAX), r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| db.err(e))
    }

    /// The verified, decoded artifact `hash`; `None` if the store does not
    /// have it.
    ///
    /// # Errors
    /// As [`get_bytes`](Self::get_bytes), and [`Error::Decode`].
    pub fn get<T: DeserializeOwned>(&self, hash: &Fingerprint) -> Result<Option<T>> {
        let limit = usize::try_from(self.options().max_artifact_bytes).unwrap_or(usize::MAX);
        match self.get_bytes(hash)? {
            Some(bytes) => codec::decode_with_limit(&bytes, limit).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn corrupt(&self, hash: &Fingerprint, reason: String) -> Error {
        let path = self.artifact_path(hash);
        tracing::warn!(%hash, path = %path.display(), %reason, "corrupt artifact removed");
        if let Err(e) = self.forget(hash, true) {
            tracing::warn!(%hash, error = %e, "could not remove a corrupt artifact");
        }
        Error::CorruptArtifact {
            hash: hash.to_hex(),
            path,
            reason,
        }
    }

    /// Drops an artifact's row, the entries needing it and (if asked) its file.
    pub(super) fn forget(&self, hash: &Fingerprint, remove_file: bool) -> Result<()> {
        let path = self.artifact_path(hash);
        lock(&self.pending).artifacts.remove(hash);
        let mut db = lock(&self.db);
        db.write(|tx| {
            // Under the write lock: a writer that installed the file since
            // our failed open has a valid row; keep it.
            if !remove_file && path.exists() {
                return Ok(());
            }
            drop_artifact(tx, hash)?;
            if remove_file {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e).into()),
                }
            }
            Ok(())
        })
    }

    /// Checks every recorded artifact against its file (size bound and
    /// hash), removing those that fail; returns the removed addresses.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Database`].
    pub fn verify(&self) -> Result<Vec<Fingerprint>> {
        let hashes: Vec<String> = {
            let db = lock(&self.db);
            let mut stmt = db
                .conn
                .prepare("SELECT hash FROM artifacts ORDER BY hash")
                .map_err(|e| db.err(e))?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| db.err(e))?
        };
        let mut bad = Vec::new();
        for h in hashes {
            let Ok(hash) = h.parse::<Fingerprint>() else {
                continue;
            };
            match self.get_bytes(&hash) {
                Ok(Some(_)) => {}
                Ok(None) | Err(Error::CorruptArtifact { .. }) => bad.push(hash),
                Err(e) => return Err(e),
            }
        }
        Ok(bad)
    }
}

/// Opens `path` for reading without following a symbolic link and without
/// blocking (opening a FIFO would wait for a writer forever).
fn open_regular(path: &Path) -> std::io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        // The flags' bits fit in a C int: they are `open(2)`'s flags.
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    #[cfg(not(unix))]
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::other("a symbolic link"));
    }
    options.open(path)
}

/// Whether opening failed because the path is a symbolic link.
fn is_a_link(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        e.to_string() == "a symbolic link"
    }
}

/// What a file that is not a regular one is, for the corruption report.
fn file_kind(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

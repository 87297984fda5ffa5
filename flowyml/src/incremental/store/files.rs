//! Fingerprints of external files, remembered in the database across processes.

use std::fs;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::dir::ArtifactStore;
use crate::error::{Error, Result};
use crate::incremental::fingerprint::{FileStamp, Fingerprint, hash_file_stamped};
use crate::incremental::metadb::exec;
use crate::sync::lock;

impl ArtifactStore {
    /// The content fingerprint of an external file, remembering `(canonical
    /// path, size, mtime) → hash` in the database so that an unchanged file is
    /// not read again, in this process or the next.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, [`Error::Database`].
    pub fn file_fingerprint(&self, path: &Path) -> Result<Fingerprint> {
        let stamp = FileStamp::of(path)?;
        // Canonical, so that the memo does not depend on the working
        // directory a process runs in.
        let key = fs::canonicalize(path)
            .map_err(|e| Error::io(path, e))?
            .to_string_lossy()
            .into_owned();
        let mtime = i64::try_from(stamp.mtime_ns).unwrap_or(i64::MAX);
        let size = i64::try_from(stamp.size).unwrap_or(i64::MAX);
        {
            let db = lock(&self.db);
            let known: Option<String> = db
                .conn
                .prepare_cached(
                    "SELECT hash FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![key, size, mtime], |r| r.get(0))
                        .optional()
                })
                .map_err(|e| db.err(e))?;
            if let Some(h) = known
                && let Ok(fp) = h.parse()
            {
                return Ok(fp);
            }
        }
        let (fp, stamp, rememberable) = hash_file_stamped(path)?;
        if rememberable {
            let mut db = lock(&self.db);
            db.write(|tx| {
                exec(
                    tx,
                    "INSERT OR REPLACE INTO files(path, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        key,
                        i64::try_from(stamp.size).unwrap_or(i64::MAX),
                        i64::try_from(stamp.mtime_ns).unwrap_or(i64::MAX),
                        fp.to_hex()
                    ],
                )?;
                Ok(())
            })?;
        }
        Ok(fp)
    }
}

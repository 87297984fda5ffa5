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
    /// path, size, mtime, ctime, inode, device) → hash` in the database so
    /// that an unchanged file is not read again, in this process or the
    /// next. The ctime and inode catch a rewrite that restored the old
    /// size and mtime (`cp -p`, `rsync -t`, `tar x`): nothing a user can set
    /// brings the ctime back.
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
        let columns = stamp_columns(&stamp);
        {
            let db = lock(&self.db);
            let known: Option<String> = db
                .conn
                .prepare_cached(
                    "SELECT hash FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3 AND ctime_ns = ?4 AND inode = ?5 AND device = ?6",
                )
                .and_then(|mut s| {
                    let [size, mtime, ctime, inode, device] = columns;
                    s.query_row(params![key, size, mtime, ctime, inode, device], |r| {
                        r.get(0)
                    })
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
            let [size, mtime, ctime, inode, device] = stamp_columns(&stamp);
            db.write(|tx| {
                exec(
                    tx,
                    "INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, inode, device, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![key, size, mtime, ctime, inode, device, fp.to_hex()],
                )?;
                Ok(())
            })?;
        }
        Ok(fp)
    }
}

/// A stamp as the `files` table stores it: size, mtime, ctime, inode and
/// device, each saturated into SQLite's 64-bit integers (inode and device
/// bit-cast, as they are compared, not ordered).
fn stamp_columns(stamp: &FileStamp) -> [i64; 5] {
    [
        i64::try_from(stamp.size).unwrap_or(i64::MAX),
        i64::try_from(stamp.mtime_ns).unwrap_or(i64::MAX),
        i64::try_from(stamp.ctime_ns).unwrap_or(i64::MAX),
        stamp.inode as i64,
        stamp.device as i64,
    ]
}

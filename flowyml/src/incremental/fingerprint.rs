//! Fingerprints: 32-byte blake3 hashes of content, of code and of cache keys.
//!
//! # Design notes
//! - One hash function for everything (blake3): an artifact's content hash
//!   *is* its address in the [`ArtifactStore`](super::ArtifactStore), so the
//!   early-cutoff comparison and the disk lookup share one computation.
//! - [`Fingerprint::of`] hashes the [`codec`](super::codec) encoding of a
//!   value, streamed into the hasher (no buffer), so it equals the hash of the
//!   bytes the store would write for it.
//! - [`KeyBuilder`] frames every field (a tag and a length before each), so
//!   that no two different field sequences hash alike (`"ab" ‖ "c"` is not
//!   `"a" ‖ "bc"`), and starts from [`CACHE_FORMAT_VERSION`], so a change of
//!   key layout invalidates old caches instead of colliding with them.
//! - A key is built in two stages where part of it is fixed: the fields that
//!   do not change between runs (a step's name, code, options) are hashed
//!   once into a base key, and [`KeyBuilder::extend`] keys blake3 with that
//!   base for the fields that do (the inputs). A keyed hash under distinct
//!   bases is an independent function, so this is as collision-free as one
//!   flat hash, and a rerun hashes only the input fields (about 50 bytes
//!   plus the input's name each).
//! - External files are fingerprinted by content; their size and mtime
//!   ([`FileStamp`]) only decide whether the content must be hashed again.
//!   A stamp taken within [`RACY_WINDOW`] of its mtime is not trusted (the
//!   file could change again within the clock's granularity without changing
//!   its stamp), the same rule git uses for its index.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sync::lock;

/// The version of the cache key layout; part of every key built by
/// [`KeyBuilder`]. Bump it when the meaning of a key changes.
pub const CACHE_FORMAT_VERSION: u32 = 3;

/// A file modified this recently may change again without changing its
/// [`FileStamp`], so its hash is not remembered.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// A 32-byte blake3 hash.
///
/// Displayed as 64 lowercase hex digits; parsed back with [`FromStr`].
///
/// ```
/// use flowyml::incremental::Fingerprint;
///
/// let a = Fingerprint::of_bytes(b"hello");
/// assert_eq!(a, Fingerprint::of_bytes(b"hello"));
/// assert_ne!(a, Fingerprint::of_bytes(b"hello!"));
/// let hex = a.to_string();
/// assert_eq!(hex.len(), 64);
/// assert_eq!(hex.parse::<Fingerprint>()?, a);
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint with these bytes (e.g. one computed by a macro at
    /// compile time).
    ///
    /// ```
    /// use flowyml::incremental::Fingerprint;
    /// const CODE: Fingerprint = Fingerprint::from_bytes([7; 32]);
    /// assert_eq!(CODE.as_bytes(), &[7; 32]);
    /// ```
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The blake3 hash of `data`; equal to the address the
    /// [`ArtifactStore`](super::ArtifactStore) gives these bytes.
    pub fn of_bytes(data: &[u8]) -> Self {
        Fingerprint(*blake3::hash(data).as_bytes())
    }

    /// The content hash of a serializable value: the hash of its
    /// [`codec::encode`](super::codec::encode) bytes, computed without
    /// building them.
    ///
    /// ```
    /// use flowyml::incremental::{Fingerprint, codec};
    ///
    /// let v = vec![1.0_f64, 2.0, 3.0];
    /// assert_eq!(Fingerprint::of(&v)?, Fingerprint::of_bytes(&codec::encode(&v)?));
    /// assert_ne!(Fingerprint::of(&v)?, Fingerprint::of(&vec![1.0_f64, 2.0])?);
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Encode`] if the value's `Serialize` impl fails.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let mut hasher = blake3::Hasher::new();
        super::codec::encode_into(value, &mut hasher)?;
        Ok(Fingerprint(*hasher.finalize().as_bytes()))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        // By table rather than `write!` per byte: keys are formatted on
        // every cache lookup.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0_u8; 64];
        for (pair, b) in digits.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        // Into a `String` at once: pushing char by char cost ten times as
        // much (a capacity and width check per digit).
        // Every byte comes from `HEX`, which is ASCII: always UTF-8.
        String::from_utf8(digits.to_vec()).expect("hex digits are ASCII")
    }

    /// The first 8 bytes as a number, e.g. for a seed or a short id.
    pub fn prefix_u64(&self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell fingerprints apart in logs.
        write!(f, "Fingerprint(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidFingerprint {
            input: s.chars().take(80).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(invalid)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(invalid)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Fingerprint(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        <[u8; 32]>::deserialize(d).map(Fingerprint)
    }
}

/// Builds a cache key: format version ‖ code fingerprint ‖ options ‖ input
/// fingerprints, every field tagged and length-framed.
///
/// ```
/// use flowyml::incremental::{Fingerprint, KeyBuilder};
///
/// let code = Fingerprint::of_bytes(b"fn clean(x: &[f64]) -> Vec<f64> { .. }");
/// let input = Fingerprint::of(&vec![1.0_f64, 2.0])?;
/// let key = |threshold: f64| -> flowyml::Result<Fingerprint> {
///     Ok(KeyBuilder::new("clean_data").code(code).option("threshold", &threshold)?.input("raw", input).finish())
/// };
/// assert_eq!(key(0.5)?, key(0.5)?);
/// assert_ne!(key(0.5)?, key(0.6)?);
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyBuilder {
    hasher: blake3::Hasher,
}

impl KeyBuilder {
    /// A key for the step (or node) `name`, starting with
    /// [`CACHE_FORMAT_VERSION`].
    pub fn new(name: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("flowyml cache key");
        hasher.update(&CACHE_FORMAT_VERSION.to_le_bytes());
        let mut b = KeyBuilder { hasher };
        b.field(b'N', name.as_bytes());
        b
    }

    /// Continues the key `base` (a finished key of the fields that stay
    /// fixed) with more fields; equal bases and equal further fields give
    /// equal keys, and a different base gives an unrelated key.
    ///
    /// ```
    /// use flowyml::incremental::{Fingerprint, KeyBuilder};
    ///
    /// let base = KeyBuilder::new("train").code(Fingerprint::of_bytes(b"fn train..")).finish();
    /// let key = |data: &[u8]| KeyBuilder::extend(base).input("data", Fingerprint::of_bytes(data)).finish();
    /// assert_eq!(key(b"rows"), key(b"rows"));
    /// assert_ne!(key(b"rows"), key(b"other rows"));
    /// assert_ne!(key(b"rows"), base);
    /// ```
    pub fn extend(base: Fingerprint) -> Self {
        KeyBuilder {
            hasher: blake3::Hasher::new_keyed(&base.0),
        }
    }

    fn field(&mut self, tag: u8, data: &[u8]) {
        self.hasher.update(&[tag]);
        self.hasher.update(&(data.len() as u64).to_le_bytes());
        self.hasher.update(data);
    }

    /// Adds the fingerprint of the step's code.
    pub fn code(mut self, code: Fingerprint) -> Self {
        self.field(b'C', &code.0);
        self
    }

    /// Adds a named option by its content hash.
    ///
    /// # Errors
    /// [`Error::Encode`] if the value cannot be serialized.
    pub fn option<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Result<Self> {
        self.field(b'O', name.as_bytes());
        self.field(b'V', &Fingerprint::of(value)?.0);
        Ok(self)
    }

    /// Adds named raw bytes (an option already encoded by the caller).
    pub fn bytes(mut self, name: &str, data: &[u8]) -> Self {
        self.field(b'O', name.as_bytes());
        self.field(b'B', data);
        self
    }

    /// Adds a named input by its fingerprint.
    pub fn input(mut self, name: &str, fingerprint: Fingerprint) -> Self {
        self.add_input(name, fingerprint);
        self
    }

    /// Adds a named input by its fingerprint, in place: the way to add
    /// inputs in a loop, since the hasher's state (some 2 KB) is not moved
    /// for each one as a by-value chain may.
    pub fn add_input(&mut self, name: &str, fingerprint: Fingerprint) -> &mut Self {
        self.field(b'I', name.as_bytes());
        self.field(b'F', &fingerprint.0);
        self
    }

    /// The key.
    pub fn finish(&self) -> Fingerprint {
        Fingerprint(*self.hasher.finalize().as_bytes())
    }
}

/// What decides whether a file must be hashed again. Size and mtime alone
/// can be fooled: `cp -p`, `rsync -t` and `tar x` write new content with
/// the old mtime, and a rewrite of the same length then looks unchanged.
/// The inode change time cannot be set back (any write or `utimes` moves it
/// to now), and the inode and device tell a file replaced by a rename; a
/// stamp that differs in any field means hashing the content again, and the
/// content hash decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (negative before).
    pub mtime_ns: i128,
    /// Inode change time, nanoseconds since the Unix epoch (0 where the
    /// platform has none).
    pub ctime_ns: i128,
    /// Inode number (0 where the platform has none).
    pub inode: u64,
    /// Device number (0 where the platform has none).
    pub device: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` now.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be inspected.
    pub fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime = meta.modified().map_err(|e| Error::io(path, e))?;
        let mtime_ns = match mtime.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        #[cfg(unix)]
        let (ctime_ns, inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                meta.ino(),
                meta.dev(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode, device) = (0, 0, 0);
        Ok(FileStamp {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
            device,
        })
    }

    /// Whether a hash taken now may be remembered for this stamp (see
    /// [`RACY_WINDOW`]): both times must be old enough, the change time too,
    /// since a write with a restored mtime is only seen by it.
    pub fn is_settled(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let window = RACY_WINDOW.as_nanos() as i128;
        now - self.mtime_ns >= window && now - self.ctime_ns >= window
    }
}

/// The blake3 hash of a file's content, streamed.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn hash_file(path: &Path) -> Result<Fingerprint> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Fingerprint(*hasher.finalize().as_bytes()))
}

/// Hashes `path` between two stamps, so that a file changing while it is
/// read is never remembered under a stamp it does not match.
pub(crate) fn hash_file_stamped(path: &Path) -> Result<(Fingerprint, FileStamp, bool)> {
    let before = FileStamp::of(path)?;
    let hash = hash_file(path)?;
    let after = FileStamp::of(path)?;
    let rememberable = before == after && after.is_settled();
    Ok((hash, after, rememberable))
}

/// Content fingerprints of external files, remembering `(path, stamp) →
/// hash` ([`FileStamp`]) so an unchanged file is not read again.
///
/// ```
/// use flowyml::incremental::FileFingerprints;
///
/// let dir = std::env::temp_dir().join(format!("flowyml-doc-files-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let csv = dir.join("data.csv");
/// std::fs::write(&csv, "x\n1\n").unwrap();
/// let files = FileFingerprints::new();
/// let first = files.fingerprint(&csv)?;
/// std::fs::write(&csv, "x\n2\n").unwrap();
/// assert_ne!(files.fingerprint(&csv)?, first);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct FileFingerprints {
    memo: Mutex<HashMap<PathBuf, (FileStamp, Fingerprint)>>,
    hashed: AtomicU64,
}

impl FileFingerprints {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// The content fingerprint of the file at `path`; read and hashed only
    /// if its stamp changed since it was last hashed.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn fingerprint(&self, path: &Path) -> Result<Fingerprint> {
        let stamp = FileStamp::of(path)?;
        if let Some((s, fp)) = lock(&self.memo).get(path)
            && *s == stamp
        {
            return Ok(*fp);
        }
        let (fp, stamp, rememberable) = hash_file_stamped(path)?;
        self.hashed.fetch_add(1, Ordering::Relaxed);
        let mut memo = lock(&self.memo);
        if rememberable {
            memo.insert(path.to_owned(), (stamp, fp));
        } else {
            memo.remove(path);
        }
        Ok(fp)
    }

    /// How many times a file's content was read and hashed.
    pub fn hashes_computed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let fp = Fingerprint::of_bytes(b"x");
        assert_eq!(fp.to_hex().parse::<Fingerprint>().unwrap(), fp);
        assert!("zz".parse::<Fingerprint>().is_err());
        assert!("g".repeat(64).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn key_fields_are_framed() {
        let a = KeyBuilder::new("s").bytes("ab", b"c").finish();
        let b = KeyBuilder::new("s").bytes("a", b"bc").finish();
        assert_ne!(a, b);
        let c = KeyBuilder::new("s")
            .input("x", Fingerprint::default())
            .finish();
        let d = KeyBuilder::new("t")
            .input("x", Fingerprint::default())
            .finish();
        assert_ne!(c, d);
    }

    #[test]
    fn settled_files_are_not_rehashed_and_a_restored_mtime_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        let set_mtime = || {
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap()
        };
        set_mtime();
        let files = FileFingerprints::new();
        // Its change time is new: not trusted yet, hashed each time.
        let a = files.fingerprint(&p).unwrap();
        assert_eq!(files.fingerprint(&p).unwrap(), a);
        assert_eq!(files.hashes_computed(), 2);
        // The change time cannot be set back, so only waiting settles it.
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
        assert_eq!(files.fingerprint(&p).unwrap(), a);
        assert_eq!(files.fingerprint(&p).unwrap(), a);
        assert_eq!(files.hashes_computed(), 3);
        assert_eq!(a, Fingerprint::of_bytes(b"abc"));
        // Same size, the old mtime restored (`cp -p`): the change time
        // moved, so it is hashed again, and the content decides.
        std::fs::write(&p, b"abd").unwrap();
        set_mtime();
        assert_ne!(files.fingerprint(&p).unwrap(), a);
        assert_eq!(files.hashes_computed(), 4);
    }
}

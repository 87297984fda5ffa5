//! Artifacts: the values steps exchange, and what flowyml can do with each
//! type.
//!
//! An [`Artifact`] is an `Arc<dyn Any + Send + Sync>`: shared between the
//! steps that read it, never copied. What else is possible depends on the
//! type, and `#[step]` finds out at compile time, per output, with autoref
//! specialisation (the [`probe`] traits), so users implement nothing for
//! common types:
//!
//! 1. a type implementing [`ArtifactCodec`] (such as a polars `DataFrame`)
//!    brings its own content hash and encoding;
//! 2. else a `Serialize + DeserializeOwned` type is hashed and stored with
//!    postcard;
//! 3. else a `Hash` type gets a content hash, in memory only;
//! 4. else the artifact is opaque: no content hash, no disk cache. Its
//!    fingerprint is its producer's cache key, so incremental reruns still
//!    work, only without early cutoff.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::incremental::fingerprint::Fingerprint;

pub use crate::slot::Artifact;

/// A type that encodes itself as an artifact (the polars `DataFrame` does,
/// as Arrow IPC). Its content fingerprint is the hash of its encoding, so
/// the encoding must be deterministic.
pub trait ArtifactCodec: Any + Send + Sync + Sized {
    /// The file extension of [`encode`](Self::encode)'s bytes, for files
    /// written outside the cache (`run --output-dir`).
    const EXTENSION: &'static str = "bin";

    /// The value as bytes that [`decode`](Self::decode) reads back.
    ///
    /// # Errors
    /// If the value cannot be encoded.
    fn encode(&self) -> Result<Vec<u8>>;

    /// The value encoded by [`encode`](Self::encode).
    ///
    /// # Errors
    /// If the bytes are not a valid encoding.
    fn decode(bytes: &[u8]) -> Result<Self>;

    /// The value a user gave on the command line (`run --input`), as JSON
    /// (a frame takes the path of a file to read).
    ///
    /// # Errors
    /// If the value does not describe one; by default, always.
    fn from_input(input: &serde_json::Value) -> Result<Self> {
        let _ = input;
        Err(Error::Usage(format!(
            "a `{}` cannot be given on the command line",
            std::any::type_name::<Self>()
        )))
    }

    /// The value as text for a person (`run --output`; a frame prints as
    /// CSV); `None` if it has no text form.
    fn to_text(&self) -> Option<String> {
        None
    }
}

type HashFn = fn(&(dyn Any + Send + Sync)) -> Option<Result<Fingerprint>>;
type EncodeFn = fn(&(dyn Any + Send + Sync)) -> Option<Result<Vec<u8>>>;
type DecodeFn = fn(&[u8]) -> Result<Artifact>;
type ToJsonFn = fn(&(dyn Any + Send + Sync)) -> Option<Result<serde_json::Value>>;
type FromJsonFn = fn(&str) -> Result<Artifact>;
type ToTextFn = fn(&(dyn Any + Send + Sync)) -> Option<String>;

/// What flowyml can do with one artifact type: hash it, store it, read it
/// from the command line, show it. `#[step]` finds each artifact's codec at
/// compile time (see [`probe`]).
#[derive(Clone, Copy)]
pub struct Codec {
    hash: Option<HashFn>,
    encode: Option<EncodeFn>,
    decode: Option<DecodeFn>,
    to_json: Option<ToJsonFn>,
    from_json: Option<FromJsonFn>,
    to_text: Option<ToTextFn>,
    extension: &'static str,
}

/// What a codec can do with its type, as `plan --json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodecKind {
    /// Encoded and decoded: stored on disk, and can cross a process.
    Persistent,
    /// Encoded (so hashed by content) but not decoded.
    EncodeOnly,
    /// Hashed by content, neither encoded nor decoded.
    HashOnly,
    /// Neither: no content hash, kept in memory.
    Opaque,
}

/// An artifact's content fingerprint, with its encoding when the type can
/// be stored (so that storing it does not encode it twice).
#[derive(Debug)]
pub struct Fingerprinted {
    /// The content fingerprint: equal values, equal fingerprints.
    pub fingerprint: Fingerprint,
    /// The encoding, for types that can be stored on disk.
    pub encoded: Option<Vec<u8>>,
}

impl Codec {
    /// An opaque artifact: no content hash, not stored.
    pub const fn opaque() -> Self {
        Codec {
            hash: None,
            encode: None,
            decode: None,
            to_json: None,
            from_json: None,
            to_text: None,
            extension: "bin",
        }
    }

    /// The codec of a type that brings its own [`ArtifactCodec`].
    pub fn of_artifact<T: ArtifactCodec>() -> Self {
        Codec {
            encode: Some(|v| v.downcast_ref::<T>().map(T::encode)),
            decode: Some(|b| T::decode(b).map(|v| Arc::new(v) as Artifact)),
            from_json: Some(|text| {
                let json: serde_json::Value = serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()));
                T::from_input(&json).map(|v| Arc::new(v) as Artifact)
            }),
            to_text: Some(|v| v.downcast_ref::<T>().and_then(T::to_text)),
            extension: T::EXTENSION,
            ..Self::opaque()
        }
    }

    /// The codec of a serde type, stored with [`incremental::codec`](crate::incremental::codec).
    pub fn of_serde<T>() -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Any + Send + Sync,
    {
        Codec {
            decode: Some(|b| {
                crate::incremental::codec::decode::<T>(b).map(|v| Arc::new(v) as Artifact)
            }),
            from_json: Some(|text| {
                serde_json::from_str::<T>(text)
                    .map(|v| Arc::new(v) as Artifact)
                    .map_err(|e| Error::Decode {
                        type_name: std::any::type_name::<T>(),
                        message: e.to_string(),
                    })
            }),
            ..Self::of_serialize::<T>()
        }
    }

    /// The codec of a type that serialises but does not deserialise: it is
    /// hashed through its encoding, shown as JSON, and not stored.
    pub fn of_serialize<T: serde::Serialize + Any + Send + Sync>() -> Self {
        Codec {
            encode: Some(|v| v.downcast_ref::<T>().map(crate::incremental::codec::encode)),
            to_json: Some(|v| {
                v.downcast_ref::<T>().map(|v| {
                    serde_json::to_value(v).map_err(|e| Error::Encode {
                        type_name: std::any::type_name::<T>(),
                        message: e.to_string(),
                    })
                })
            }),
            extension: "json",
            ..Self::opaque()
        }
    }

    /// The codec of a `Hash` type: a content hash, kept in memory.
    pub fn of_hash<T: std::hash::Hash + Any + Send + Sync>() -> Self {
        Codec {
            hash: Some(|v| {
                v.downcast_ref::<T>().map(|v| {
                    let mut h = Blake3Hasher(blake3::Hasher::new());
                    v.hash(&mut h);
                    Ok(Fingerprint::from_bytes(*h.0.finalize().as_bytes()))
                })
            }),
            ..Self::opaque()
        }
    }

    /// The content fingerprint of `value` (and its encoding if the type is
    /// stored), or `None` for an opaque type or a value of another type.
    ///
    /// # Errors
    /// If encoding the value fails.
    pub fn fingerprint(&self, value: &(dyn Any + Send + Sync)) -> Option<Result<Fingerprinted>> {
        if let Some(encode) = self.encode {
            return encode(value).map(|bytes| {
                bytes.map(|bytes| Fingerprinted {
                    fingerprint: Fingerprint::of_bytes(&bytes),
                    encoded: self.decode.is_some().then_some(bytes),
                })
            });
        }
        self.hash.and_then(|h| h(value)).map(|fp| {
            fp.map(|fingerprint| Fingerprinted {
                fingerprint,
                encoded: None,
            })
        })
    }

    /// The encoding of `value`, for types that can be stored.
    pub fn encode(&self, value: &(dyn Any + Send + Sync)) -> Option<Result<Vec<u8>>> {
        self.decode.and(self.encode).and_then(|e| e(value))
    }

    /// Decodes bytes written for this type.
    pub fn decode(&self, bytes: &[u8]) -> Option<Result<Artifact>> {
        self.decode.map(|d| d(bytes))
    }

    /// `value` as JSON, for types that serialise.
    pub fn to_json(&self, value: &(dyn Any + Send + Sync)) -> Option<Result<serde_json::Value>> {
        self.to_json.and_then(|f| f(value))
    }

    /// `value` as text for a person, for types that have a text form
    /// (frames, as CSV).
    pub fn to_text(&self, value: &(dyn Any + Send + Sync)) -> Option<String> {
        self.to_text.and_then(|f| f(value))
    }

    /// The value a user gave as JSON text, for types that can be read so
    /// (a frame's JSON is the path of its file; a bare path is taken as
    /// one too).
    pub fn from_json(&self, text: &str) -> Option<Result<Artifact>> {
        self.from_json.map(|f| f(text))
    }

    /// The file extension of [`encode`](Self::encode)'s bytes outside the
    /// cache: `json` for serde types (written as JSON there), the type's
    /// own otherwise.
    pub fn extension(&self) -> &'static str {
        self.extension
    }

    /// Whether the type can be stored on disk.
    pub fn is_persistent(&self) -> bool {
        self.encode.is_some() && self.decode.is_some()
    }

    /// Whether the type has a content fingerprint (and so early cutoff).
    pub fn is_hashable(&self) -> bool {
        self.hash.is_some() || self.encode.is_some()
    }

    /// What the codec can do.
    pub fn kind(&self) -> CodecKind {
        match (
            self.is_persistent(),
            self.encode.is_some(),
            self.hash.is_some(),
        ) {
            (true, _, _) => CodecKind::Persistent,
            (false, true, _) => CodecKind::EncodeOnly,
            (false, false, true) => CodecKind::HashOnly,
            (false, false, false) => CodecKind::Opaque,
        }
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Codec({:?})", self.kind())
    }
}

/// The type of an artifact: shared between the pipeline's threads, so
/// `Send + Sync`, and owned, so `'static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an artifact: artifacts are shared between the pipeline's threads and outlive the step, so they are `Send + Sync + 'static`",
    label = "not an artifact type",
    note = "use `Arc` instead of `Rc`, a `Mutex`, `RwLock` or atomics instead of `RefCell` and `Cell`, and owned values instead of references"
)]
pub trait ArtifactType: Any + Send + Sync {}

#[diagnostic::do_not_recommend]
impl<T: Any + Send + Sync> ArtifactType for T {}

/// A `std::hash::Hasher` feeding blake3, so `Hash` types get a stable
/// 256-bit content hash.
struct Blake3Hasher(blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Autoref specialisation: `(&&&&Probe::<T>::new()).__flowyml_codec()`
/// picks the most capable codec `T` supports.
#[doc(hidden)]
pub mod probe {
    use super::{ArtifactCodec, Codec};
    use std::any::Any;
    use std::marker::PhantomData;

    /// The type being probed.
    pub struct Probe<T>(PhantomData<fn() -> T>);

    impl<T> Probe<T> {
        /// A probe for `T`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    /// Requires `T` to be an [`ArtifactType`](super::ArtifactType): the
    /// expansion calls it spanned at the user's type, so that the message
    /// points there.
    pub fn artifact_type<T: super::ArtifactType>(_: &Probe<T>) {}

    impl<T> Default for Probe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Types with their own [`ArtifactCodec`].
    pub trait ViaArtifactCodec {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T: ArtifactCodec> ViaArtifactCodec for &&&Probe<T> {
        fn __flowyml_codec(&self) -> Codec {
            Codec::of_artifact::<T>()
        }
    }

    /// Serde types: hashed and stored.
    pub trait ViaSerde {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T> ViaSerde for &&Probe<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Any + Send + Sync,
    {
        fn __flowyml_codec(&self) -> Codec {
            Codec::of_serde::<T>()
        }
    }

    /// `Hash` types: a content hash, kept in memory.
    pub trait ViaHash {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T: std::hash::Hash + Any + Send + Sync> ViaHash for &Probe<T> {
        fn __flowyml_codec(&self) -> Codec {
            Codec::of_hash::<T>()
        }
    }

    /// Everything else: opaque.
    pub trait ViaOpaque {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T> ViaOpaque for Probe<T> {
        fn __flowyml_codec(&self) -> Codec {
            Codec::opaque()
        }
    }
}

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

/// A value exchanged between steps, shared by reference count.
pub type Artifact = Arc<dyn Any + Send + Sync>;

/// A type that knows how to hash and encode itself as an artifact.
pub trait ArtifactCodec: Any + Send + Sync + Sized {
    /// A hash of the value's content: equal values, equal hashes.
    fn content_hash(&self) -> [u8; 32];
    /// The value as bytes that [`decode`](Self::decode) reads back.
    ///
    /// # Errors
    /// If the value cannot be encoded.
    fn encode(&self) -> Result<Vec<u8>, String>;
    /// The value encoded by [`encode`](Self::encode).
    ///
    /// # Errors
    /// If the bytes are not a valid encoding.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

type HashFn = fn(&(dyn Any + Send + Sync)) -> Option<[u8; 32]>;
type EncodeFn = fn(&(dyn Any + Send + Sync)) -> Option<Result<Vec<u8>, String>>;
type DecodeFn = fn(&[u8]) -> Result<Artifact, String>;

/// What flowyml can do with one output type.
#[derive(Clone, Copy)]
pub struct Codec {
    hash: Option<HashFn>,
    encode: Option<EncodeFn>,
    decode: Option<DecodeFn>,
}

impl Codec {
    /// An opaque artifact: no content hash, not stored.
    pub const fn opaque() -> Self {
        Codec {
            hash: None,
            encode: None,
            decode: None,
        }
    }

    /// The content hash of `value`, if its type has one.
    pub fn content_hash(&self, value: &(dyn Any + Send + Sync)) -> Option<[u8; 32]> {
        self.hash.and_then(|h| h(value))
    }

    /// `value` encoded for the disk cache, if its type can be stored.
    pub fn encode(&self, value: &(dyn Any + Send + Sync)) -> Option<Result<Vec<u8>, String>> {
        self.encode.and_then(|e| e(value))
    }

    /// Decodes bytes written by [`encode`](Self::encode).
    pub fn decode(&self, bytes: &[u8]) -> Option<Result<Artifact, String>> {
        self.decode.map(|d| d(bytes))
    }

    /// Whether the type can be stored on disk.
    pub fn is_persistent(&self) -> bool {
        self.encode.is_some() && self.decode.is_some()
    }

    /// Whether the type has a content hash (and so early cutoff).
    pub fn is_hashable(&self) -> bool {
        self.hash.is_some()
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (self.is_persistent(), self.is_hashable()) {
            (true, _) => "persistent",
            (false, true) => "hashable",
            (false, false) => "opaque",
        };
        write!(f, "Codec({kind})")
    }
}

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

/// Autoref specialisation: `(&&&Probe::<T>::new()).__flowyml_codec()`
/// picks the most capable codec `T` supports.
#[doc(hidden)]
pub mod probe {
    use super::{Artifact, ArtifactCodec, Blake3Hasher, Codec};
    use std::any::Any;
    use std::marker::PhantomData;
    use std::sync::Arc;

    /// The type being probed.
    pub struct Probe<T>(PhantomData<fn() -> T>);

    impl<T> Probe<T> {
        /// A probe for `T`.
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    impl<T> Default for Probe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    fn downcast<T: Any>(v: &(dyn Any + Send + Sync)) -> Option<&T> {
        v.downcast_ref::<T>()
    }

    /// Types with their own [`ArtifactCodec`].
    pub trait ViaArtifactCodec {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T: ArtifactCodec> ViaArtifactCodec for &&&Probe<T> {
        fn __flowyml_codec(&self) -> Codec {
            Codec {
                hash: Some(|v| downcast::<T>(v).map(T::content_hash)),
                encode: Some(|v| downcast::<T>(v).map(T::encode)),
                decode: Some(|b| T::decode(b).map(|v| Arc::new(v) as Artifact)),
            }
        }
    }

    /// Serde types: hashed and stored with postcard.
    pub trait ViaSerde {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T> ViaSerde for &&Probe<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Any + Send + Sync,
    {
        fn __flowyml_codec(&self) -> Codec {
            Codec {
                hash: Some(|v| {
                    downcast::<T>(v)
                        .and_then(|v| postcard::to_stdvec(v).ok())
                        .map(|bytes| *blake3::hash(&bytes).as_bytes())
                }),
                encode: Some(|v| {
                    downcast::<T>(v).map(|v| postcard::to_stdvec(v).map_err(|e| e.to_string()))
                }),
                decode: Some(|b| {
                    postcard::from_bytes::<T>(b)
                        .map(|v| Arc::new(v) as Artifact)
                        .map_err(|e| e.to_string())
                }),
            }
        }
    }

    /// `Hash` types: a content hash, kept in memory.
    pub trait ViaHash {
        /// The codec.
        fn __flowyml_codec(&self) -> Codec;
    }
    impl<T: std::hash::Hash + Any> ViaHash for &Probe<T> {
        fn __flowyml_codec(&self) -> Codec {
            Codec {
                hash: Some(|v| {
                    downcast::<T>(v).map(|v| {
                        let mut h = Blake3Hasher(blake3::Hasher::new());
                        v.hash(&mut h);
                        *h.0.finalize().as_bytes()
                    })
                }),
                encode: None,
                decode: None,
            }
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

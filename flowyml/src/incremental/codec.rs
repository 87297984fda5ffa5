//! The artifact encoding: a 4-byte header and a postcard body.
//!
//! # Design notes
//! - Independent of where the bytes go: the [`ArtifactStore`](super::ArtifactStore)
//!   writes them to a file, a distributed runner may ship them to another
//!   machine; both decode with [`decode`].
//! - The header ([`HEADER`]) names the codec and its version, so a change of
//!   body format is a clean [`Error::Decode`], not a misread.
//! - Decoding never trusts its input: the input is bounded
//!   ([`DEFAULT_MAX_DECODE_BYTES`] or the caller's bound), trailing bytes are
//!   an error, and postcard checks every length prefix against the bytes that
//!   remain, while serde caps what a length prefix may preallocate. So a
//!   crafted input fails or allocates in proportion to its own size. (One
//!   exception no bound can catch: a sequence of a zero-sized type, such as
//!   `Vec<()>`, consumes no input per element, so a crafted count makes a
//!   long, allocation-free loop. Don't store those.)
//! - postcard is not self-describing: types that need
//!   `deserialize_any` (untagged enums, `serde_json::Value`) fail to decode.

use std::any::type_name;
use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The first bytes of every encoded artifact: `FY`, the codec (`P` for
/// postcard) and the body format version.
pub const HEADER: [u8; 4] = *b"FYP1";

/// The default bound on the bytes [`decode`] accepts: 4 GiB.
pub const DEFAULT_MAX_DECODE_BYTES: usize = 4 << 30;

/// The encoding of `value`.
///
/// ```
/// use flowyml::incremental::codec;
///
/// let bytes = codec::encode(&vec![1.5_f64, -2.0])?;
/// assert_eq!(&bytes[..4], b"FYP1");
/// let back: Vec<f64> = codec::decode(&bytes)?;
/// assert_eq!(back, vec![1.5, -2.0]);
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// [`Error::Encode`] if the value's `Serialize` impl fails.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Streams the encoding of `value` into `writer` (a file, a hasher), without
/// building it in memory.
///
/// # Errors
/// [`Error::Encode`] if serialization or a write fails.
pub fn encode_into<T: Serialize + ?Sized, W: Write>(value: &T, mut writer: W) -> Result<()> {
    let fail = |message: String| Error::Encode {
        type_name: type_name::<T>(),
        message,
    };
    writer.write_all(&HEADER).map_err(|e| fail(e.to_string()))?;
    postcard::to_io(value, writer).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Decodes bytes made by [`encode`], accepting at most
/// [`DEFAULT_MAX_DECODE_BYTES`].
///
/// # Errors
/// [`Error::Decode`] for a wrong header, a malformed or truncated body,
/// trailing bytes, or an input over the bound.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    decode_with_limit(bytes, DEFAULT_MAX_DECODE_BYTES)
}

/// Decodes bytes made by [`encode`], accepting at most `max_bytes`.
///
/// ```
/// use flowyml::incremental::codec;
///
/// let bytes = codec::encode(&"a long enough string".to_owned())?;
/// assert!(codec::decode_with_limit::<String>(&bytes, 8).is_err());
/// // A corrupted length prefix claims 2^63 bytes: an error, not an allocation.
/// let mut crafted = b"FYP1".to_vec();
/// crafted.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
/// assert!(codec::decode::<Vec<u8>>(&crafted).is_err());
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// As [`decode`].
pub fn decode_with_limit<T: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<T> {
    let fail = |message: String| Error::Decode {
        type_name: type_name::<T>(),
        message,
    };
    if bytes.len() > max_bytes {
        return Err(fail(format!(
            "{} bytes exceed the bound of {max_bytes}",
            bytes.len()
        )));
    }
    let body = bytes
        .strip_prefix(&HEADER)
        .ok_or_else(|| fail("not a flowyml postcard artifact (bad header)".to_owned()))?;
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        let bytes = encode(&vec![String::from("ab"), String::from("cd")]).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode::<Vec<String>>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Vec<String>>(&longer).is_err());
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap(), ["ab", "cd"]);
    }

    #[test]
    fn crafted_lengths_do_not_allocate_beyond_input() {
        // Claims 2^35 u64s in a few bytes; serde preallocates at most 1 MiB
        // and postcard fails at the end of input.
        let mut crafted = HEADER.to_vec();
        crafted.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert!(decode::<Vec<u64>>(&crafted).is_err());
    }
}

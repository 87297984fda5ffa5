//! Run-time inputs: artifacts given to a pipeline rather than produced by
//! its steps.

use std::any::TypeId;
use std::borrow::Cow;

use crate::artifact::{Codec, CodecKind};
use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::slot::Artifact;

/// An artifact given to the pipeline at run time.
#[derive(Clone)]
pub(crate) struct RuntimeInput {
    pub name: String,
    pub value: Artifact,
    pub type_id: TypeId,
    pub type_name: Cow<'static, str>,
    /// How to fingerprint the value, for cache keys.
    pub codec: Codec,
    /// The fingerprint of an opaque input: new for each `input_opaque`.
    pub fixed: Option<Fingerprint>,
}

impl RuntimeInput {
    pub(crate) fn fingerprint(&self) -> Result<Fingerprint> {
        match (self.fixed, self.codec.fingerprint(&*self.value)) {
            (Some(fp), _) => Ok(fp),
            (None, Some(f)) => f.map(|f| f.fingerprint),
            (None, None) => unreachable!("inputs without a content hash have a fixed fingerprint"),
        }
    }
}

/// A run-time input a pipeline needs: an artifact its steps read and no
/// step produces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequiredInput {
    /// The artifact's name.
    pub name: String,
    /// Its type, as its first consumer writes it.
    pub type_name: String,
    /// How it can be given from outside the program (see
    /// [`Pipeline::input_json`](super::Pipeline::input_json)).
    pub kind: CodecKind,
    /// Whether a value for it was given.
    pub given: bool,
    /// The steps that read it.
    pub consumers: Vec<String>,
}

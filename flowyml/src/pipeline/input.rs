//! Run-time inputs: artifacts given to a pipeline rather than produced by
//! its steps.

use std::any::TypeId;

use crate::artifact::Codec;
use crate::error::Result;
use crate::incremental::fingerprint::Fingerprint;
use crate::record::Artifact;

/// An artifact given to the pipeline at run time.
pub(crate) struct RuntimeInput {
    pub name: String,
    pub value: Artifact,
    pub type_id: TypeId,
    pub type_name: &'static str,
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

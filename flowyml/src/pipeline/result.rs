//! The typed access to a run's artifacts. [`PipelineResult`]'s data and
//! its other accessors are defined with it, below the error module (see
//! [`crate::error`]); this accessor fails with an [`Error`].

use crate::error::{Error, Result};
use crate::record::PipelineResult;

impl PipelineResult {
    /// The artifact `name` as a `T`.
    ///
    /// # Errors
    /// [`Error::UnknownArtifact`] (with a suggestion) if no artifact has
    /// that name, [`Error::NotProduced`] if its step failed or was skipped,
    /// [`Error::ArtifactType`] if it has another type.
    pub fn get<T: 'static>(&self, name: &str) -> Result<&T> {
        let slot = self
            .index
            .slot(name)
            .ok_or_else(|| Error::UnknownArtifact {
                name: name.to_owned(),
                hint: flowyml_suggest::did_you_mean(name, self.index.names()),
            })?;
        let Some(artifact) = self.artifacts[slot].get() else {
            // Run-time inputs are always there: a step produces this one.
            let producer = self.record(self.producers[slot] as usize);
            return Err(Error::NotProduced {
                name: name.to_owned(),
                producer: producer.name.to_owned(),
                status: producer.status,
            });
        };
        artifact.get::<T>().ok_or_else(|| Error::ArtifactType {
            name: name.to_owned(),
            expected: std::any::type_name::<T>().to_owned(),
            found: self.index.type_name(slot).to_owned(),
        })
    }
}

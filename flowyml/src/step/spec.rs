//! [`StepSpec`]: everything known about a step before it runs.

use std::any::TypeId;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// A named artifact a step consumes or produces, with its type.
#[derive(Clone)]
pub struct ArtifactSpec {
    /// The artifact's name in the pipeline.
    pub name: Cow<'static, str>,
    /// The type's name without module paths, for messages.
    pub type_name: Cow<'static, str>,
    /// The type's identity, for validation.
    pub type_id: fn() -> TypeId,
}

impl ArtifactSpec {
    /// The spec of an artifact `name` of type `T`.
    pub fn of<T: 'static>(name: impl Into<Cow<'static, str>>) -> Self {
        ArtifactSpec {
            name: name.into(),
            type_name: crate::type_name::of::<T>(),
            type_id: TypeId::of::<T>,
        }
    }

    /// The spec of an output whose type the `#[step]` expansion knows only
    /// through a probe (see [`returned`](super::returned)).
    #[doc(hidden)]
    pub fn of_probe<T: 'static>(name: &'static str, _: &crate::artifact::probe::Probe<T>) -> Self {
        Self::of::<T>(name)
    }
}

impl fmt::Debug for ArtifactSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.type_name)
    }
}

/// Everything known about a step before it runs.
#[derive(Clone, Debug)]
pub struct StepSpec {
    /// The step's name, unique in a pipeline.
    pub name: Cow<'static, str>,
    /// The module that defines it.
    pub module_path: Cow<'static, str>,
    /// Source file and line of the definition.
    pub location: (&'static str, u32),
    /// Consumed artifacts, in parameter order.
    pub inputs: Cow<'static, [ArtifactSpec]>,
    /// Produced artifacts, in output order.
    pub outputs: Cow<'static, [ArtifactSpec]>,
    /// A hash of the step's code: editing the body changes it, and so
    /// invalidates the step's cached outputs.
    pub code_fingerprint: [u8; 32],
    /// The per-run resources the step uses, by name
    /// ([`resource::GPU`](crate::resource::GPU) for `#[step(gpu)]`).
    pub resources: Cow<'static, [&'static str]>,
    /// External files the step reads; their changes invalidate it.
    pub watch: Cow<'static, [&'static str]>,
    /// How many times to retry the step after it fails (`None`: the
    /// pipeline's default, [`Pipeline::retries`](crate::Pipeline::retries)).
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled (with jitter) for each
    /// next one (`None`: the pipeline's default).
    pub backoff: Option<Duration>,
    /// The longest one attempt may take; past it the step is recorded as
    /// timed out and its thread abandoned (see [`StepContext::is_cancelled`](super::StepContext::is_cancelled)).
    pub timeout: Option<Duration>,
}

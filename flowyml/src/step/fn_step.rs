//! [`FnStep`]: a step built at run time from a closure.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::body::StepBody;
use super::context::StepContext;
use super::spec::{ArtifactSpec, StepSpec};
use super::traits::Step;
use crate::artifact::{ArtifactCodec, Codec};
use crate::error::BoxError;

/// A step built at run time from a closure.
///
/// ```
/// use flowyml::{Pipeline, step::FnStep};
///
/// let double = FnStep::builder("double")
///     .input::<u64>("x")
///     .output::<u64>("y")
///     .build(|ctx| {
///         let x = *ctx.input::<u64>(0)?;
///         ctx.set_output(0, x * 2);
///         Ok(())
///     });
/// let mut pipeline = Pipeline::new("dynamic");
/// pipeline.input("x", 21_u64).add_step(double);
/// assert_eq!(*pipeline.run()?.get::<u64>("y")?, 42);
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct FnStep {
    spec: StepSpec,
    codecs: Vec<Codec>,
    input_codecs: Vec<Codec>,
    run: StepBody,
}

/// Builds a [`FnStep`]; made by [`FnStep::builder`].
#[derive(Debug)]
pub struct FnStepBuilder {
    spec: StepSpec,
    codecs: Vec<Codec>,
    input_codecs: Vec<Codec>,
}

impl FnStep {
    /// A step named `name`; add its inputs and outputs, then `build` it.
    pub fn builder(name: impl Into<Cow<'static, str>>) -> FnStepBuilder {
        FnStepBuilder {
            spec: StepSpec {
                name: name.into(),
                module_path: Cow::Borrowed(""),
                location: ("", 0),
                inputs: Cow::Owned(Vec::new()),
                outputs: Cow::Owned(Vec::new()),
                code_fingerprint: [0; 32],
                resources: Cow::Borrowed(&[]),
                watch: Cow::Borrowed(&[]),
                retries: None,
                backoff: None,
                timeout: None,
            },
            codecs: Vec::new(),
            input_codecs: Vec::new(),
        }
    }
}

impl FnStepBuilder {
    /// Consumes artifact `name` of type `T` (see
    /// [`stored_input`](Self::stored_input) for one that can come from
    /// outside the process).
    pub fn input<T: 'static>(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.input_with::<T>(name, Codec::opaque())
    }

    /// Consumes artifact `name` of a serde type, which `run --input` and
    /// `run-step` can decode.
    pub fn stored_input<T>(self, name: impl Into<Cow<'static, str>>) -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Any + Send + Sync,
    {
        self.input_with::<T>(name, Codec::of_serde::<T>())
    }

    /// Consumes artifact `name` of a type with its own [`ArtifactCodec`]
    /// (a polars `DataFrame`), which `run --input` and `run-step` can read.
    pub fn artifact_input<T: ArtifactCodec>(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.input_with::<T>(name, Codec::of_artifact::<T>())
    }

    fn input_with<T: 'static>(mut self, name: impl Into<Cow<'static, str>>, codec: Codec) -> Self {
        self.spec.inputs.to_mut().push(ArtifactSpec::of::<T>(name));
        self.input_codecs.push(codec);
        self
    }

    /// Produces artifact `name` of type `T`, opaque to the cache (see
    /// [`stored_output`](Self::stored_output) and
    /// [`artifact_output`](Self::artifact_output)).
    pub fn output<T: 'static>(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.output_with::<T>(name, Codec::opaque())
    }

    /// Produces artifact `name` of a serde type, content-hashed and stored
    /// by incremental runs.
    pub fn stored_output<T>(self, name: impl Into<Cow<'static, str>>) -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Any + Send + Sync,
    {
        self.output_with::<T>(name, Codec::of_serde::<T>())
    }

    /// Produces artifact `name` of a type with its own [`ArtifactCodec`]
    /// (a polars `DataFrame`).
    pub fn artifact_output<T: ArtifactCodec>(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.output_with::<T>(name, Codec::of_artifact::<T>())
    }

    fn output_with<T: 'static>(mut self, name: impl Into<Cow<'static, str>>, codec: Codec) -> Self {
        self.spec.outputs.to_mut().push(ArtifactSpec::of::<T>(name));
        self.codecs.push(codec);
        self
    }

    /// Uses the per-run resource `name` (see [`resource`](crate::resource)).
    pub fn resource(mut self, name: &'static str) -> Self {
        self.spec.resources.to_mut().push(name);
        self
    }

    /// Retries the step up to `retries` times after it fails.
    pub fn retries(mut self, retries: u32) -> Self {
        self.spec.retries = Some(retries);
        self
    }

    /// Waits `first` before the first retry (doubling, with jitter).
    pub fn backoff(mut self, first: Duration) -> Self {
        self.spec.backoff = Some(first);
        self
    }

    /// Bounds each attempt to `limit` (see [`StepSpec::timeout`]).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.spec.timeout = Some(limit);
        self
    }

    /// Sets the code fingerprint: change it when the closure's behaviour
    /// changes, so incremental runs recompute the step.
    pub fn version(mut self, version: &str) -> Self {
        self.spec.code_fingerprint = *blake3::hash(version.as_bytes()).as_bytes();
        self
    }

    /// The step, running `run`: one closure, shared by every pipeline the
    /// step is added to.
    pub fn build(
        self,
        run: impl Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> FnStep {
        self.with_body(StepBody::shared(run))
    }

    /// The step, running `run`, a closure that captures only `Copy` values
    /// (an index, a weight): one of at most two words is kept inline in
    /// each pipeline's array of step code, so a run of a large generated
    /// pipeline reads the captures in order instead of from each step's own
    /// heap object (see [`StepBody`]). A larger one is shared, as with
    /// [`build`](Self::build). Each pipeline calls its own copy, which no
    /// call can tell apart: a `Copy` value holds no state a call could
    /// change (shared state is behind a reference, such as a `&'static`).
    ///
    /// ```
    /// use flowyml::{Pipeline, step::FnStep};
    ///
    /// let mut p = Pipeline::new("generated");
    /// p.input("a0", 0_u64);
    /// for i in 1..=100_u64 {
    ///     let step = FnStep::builder(format!("s{i}"))
    ///         .input::<u64>(format!("a{}", i - 1))
    ///         .output::<u64>(format!("a{i}"))
    ///         .build_copied(move |ctx| {
    ///             let before = *ctx.input::<u64>(0)?;
    ///             ctx.set_output(0, before + i);
    ///             Ok(())
    ///         });
    ///     p.add_step(step);
    /// }
    /// assert_eq!(*p.run()?.get::<u64>("a100")?, 5050);
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    pub fn build_copied<F>(self, run: F) -> FnStep
    where
        F: Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Copy + Send + Sync + 'static,
    {
        self.with_body(StepBody::copied(run))
    }

    fn with_body(mut self, run: StepBody) -> FnStep {
        // A pipeline of many small steps reads every spec to plan itself:
        // the less room they waste, the fewer cache lines that costs.
        for list in [&mut self.spec.inputs, &mut self.spec.outputs] {
            if let std::borrow::Cow::Owned(v) = list {
                v.shrink_to_fit();
            }
        }
        self.codecs.shrink_to_fit();
        self.input_codecs.shrink_to_fit();
        FnStep {
            spec: self.spec,
            codecs: self.codecs,
            input_codecs: self.input_codecs,
            run,
        }
    }

    pub(super) fn into_spec(self) -> StepSpec {
        self.spec
    }
}

impl Step for FnStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    #[inline]
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        self.run.call(ctx)
    }

    fn codecs(&self) -> Cow<'_, [Codec]> {
        Cow::Borrowed(&self.codecs)
    }

    fn input_codecs(&self) -> Cow<'_, [Codec]> {
        Cow::Borrowed(&self.input_codecs)
    }

    fn body(&self) -> Option<StepBody> {
        Some(self.run.clone())
    }
}

impl fmt::Debug for FnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnStep")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

//! Steps: what `#[step]` generates, and how a pipeline calls it.
//!
//! A step is a value implementing [`Step`]: its [`StepSpec`] (name, inputs
//! and outputs with their types, code fingerprint, options) and a
//! [`run`](Step::run) that reads its inputs from a [`StepContext`] and
//! writes its outputs into it. `#[step]` generates both from a plain
//! function; [`FnStep`] builds one at run time (for generated or very
//! large pipelines).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::artifact::{Artifact, Codec};

/// A named artifact a step consumes or produces, with its type.
#[derive(Clone)]
pub struct ArtifactSpec {
    /// The artifact's name in the pipeline.
    pub name: Cow<'static, str>,
    /// The type as written in the step's signature, for messages.
    pub type_name: Cow<'static, str>,
    /// The type's identity, for validation.
    pub type_id: fn() -> TypeId,
}

impl ArtifactSpec {
    /// The spec of an artifact `name` of type `T`.
    pub fn of<T: 'static>(name: impl Into<Cow<'static, str>>) -> Self {
        ArtifactSpec {
            name: name.into(),
            type_name: Cow::Borrowed(std::any::type_name::<T>()),
            type_id: TypeId::of::<T>,
        }
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
    /// Whether the step needs a GPU.
    pub gpu: bool,
    /// External files the step reads; their changes invalidate it.
    pub watch: Cow<'static, [&'static str]>,
}

/// A step whose run failed; the message is the step's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError(pub String);

impl StepError {
    /// An error with `message`.
    pub fn new(message: impl fmt::Display) -> Self {
        StepError(message.to_string())
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError(message)
    }
}

/// So that a closure step can fail with `Err("why".into())`.
impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        StepError(message.to_owned())
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StepError {}

/// A unit of work in a pipeline. `#[step]` implements it; see also
/// [`FnStep`].
pub trait Step: Send + Sync + 'static {
    /// Name, inputs, outputs and options.
    fn spec(&self) -> &StepSpec;

    /// Reads the inputs from `ctx` and writes every output into it.
    ///
    /// # Errors
    /// The step's own failure, reported with the step's name.
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), StepError>;

    /// How each output is hashed and stored (by output index); outputs
    /// without a codec are kept in memory only.
    fn codecs(&self) -> Vec<Codec> {
        self.spec()
            .outputs
            .iter()
            .map(|_| Codec::opaque())
            .collect()
    }

    /// Why this step cannot be part of a pipeline, if it cannot;
    /// validation reports it.
    fn problem(&self) -> Option<String> {
        None
    }
}

/// What [`Pipeline::add_step`](crate::Pipeline::add_step) accepts: a
/// `#[step]` function, or any [`Step`] value (such as a [`FnStep`]). The
/// marker type only tells the two apart; it is inferred.
pub trait IntoStep<Marker> {
    /// The step.
    fn into_step(self) -> Arc<dyn Step>;
}

/// Marks a [`Step`] value for [`IntoStep`].
#[derive(Debug)]
pub enum StepValue {}

/// Marks a function for [`IntoStep`], by its signature.
#[derive(Debug)]
pub struct StepFunction<Signature>(std::marker::PhantomData<Signature>);

impl<S: Step> IntoStep<StepValue> for S {
    fn into_step(self) -> Arc<dyn Step> {
        Arc::new(self)
    }
}

/// A registered step, shared.
struct Registered(&'static dyn Step);

impl Step for Registered {
    fn spec(&self) -> &StepSpec {
        self.0.spec()
    }
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        self.0.run(ctx)
    }
    fn codecs(&self) -> Vec<Codec> {
        self.0.codecs()
    }
}

/// A function given to `add_step` without `#[step]`: validation reports it.
struct NotAStep {
    spec: StepSpec,
}

impl Step for NotAStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }
    fn run(&self, _: &mut StepContext<'_>) -> Result<(), StepError> {
        Err(StepError(self.problem().unwrap_or_default()))
    }
    fn problem(&self) -> Option<String> {
        Some(format!(
            "`{}` is not a step: annotate the function with `#[step(outputs = [..])]`",
            self.spec.name
        ))
    }
}

fn function_step<F: 'static>() -> Arc<dyn Step> {
    match crate::registry::step_of::<F>() {
        Some(step) => Arc::new(Registered(step)),
        None => Arc::new(NotAStep {
            spec: FnStep::builder(std::any::type_name::<F>()).spec,
        }),
    }
}

macro_rules! function_steps {
    ($($arg:ident),*) => {
        impl<F, R, $($arg),*> IntoStep<StepFunction<fn($($arg),*) -> R>> for F
        where
            F: Fn($($arg),*) -> R + 'static,
        {
            fn into_step(self) -> Arc<dyn Step> {
                function_step::<F>()
            }
        }
    };
}

function_steps!();
function_steps!(A1);
function_steps!(A1, A2);
function_steps!(A1, A2, A3);
function_steps!(A1, A2, A3, A4);
function_steps!(A1, A2, A3, A4, A5);
function_steps!(A1, A2, A3, A4, A5, A6);
function_steps!(A1, A2, A3, A4, A5, A6, A7);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);

/// Typed per-run resources shared by steps (such as an opened GPU), and
/// why an absent one is absent.
#[derive(Default)]
pub struct Resources {
    entries: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    missing: Vec<(TypeId, String)>,
}

impl Resources {
    /// Adds (or replaces) the resource of type `R`.
    pub fn insert<R: Any + Send + Sync>(&mut self, resource: Arc<R>) {
        self.entries.retain(|(t, _)| *t != TypeId::of::<R>());
        self.entries.push((TypeId::of::<R>(), resource));
    }

    /// Records that the resource of type `R` is unavailable, and why: a
    /// step asking for it gets this reason.
    pub fn insert_missing<R: Any>(&mut self, reason: impl Into<String>) {
        self.missing.push((TypeId::of::<R>(), reason.into()));
    }

    /// The resource of type `R`.
    pub fn get<R: Any + Send + Sync>(&self) -> Option<&R> {
        self.entries
            .iter()
            .find(|(t, _)| *t == TypeId::of::<R>())
            .and_then(|(_, r)| r.downcast_ref())
    }

    fn missing_reason<R: Any>(&self) -> Option<&str> {
        self.missing
            .iter()
            .find(|(t, _)| *t == TypeId::of::<R>())
            .map(|(_, r)| r.as_str())
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resources({} entries)", self.entries.len())
    }
}

/// A resource opened once per run for the steps that want it, such as the
/// GPU (the `gpu` feature registers one). The pipeline never names the
/// resource's type: providers are found through `inventory`.
pub struct ResourceProvider {
    /// What the resource is, for messages ("GPU").
    pub name: &'static str,
    /// Whether a step wants it.
    pub wanted: fn(&StepSpec) -> bool,
    /// Opens it for one run and installs it in `resources`; when it is
    /// `disabled` (`--no-gpu`) or cannot be opened, it records why with
    /// [`Resources::insert_missing`] instead.
    pub open: fn(&mut Resources, bool) -> Option<Arc<dyn RunResource>>,
}

inventory::collect!(ResourceProvider);

/// An opened per-run resource that bounds and observes the steps using it.
pub trait RunResource: Send + Sync {
    /// Waits until step `spec` may use the resource (bounding concurrent
    /// use), and returns what to call when the step is done: it frees the
    /// slot and returns notes for the step's record.
    fn enter(&self, spec: &StepSpec) -> Box<dyn FnOnce() -> Vec<String> + '_>;
}

/// A step's view of the run: its inputs, its output slots, the run's
/// resources.
pub struct StepContext<'a> {
    pub(crate) spec: &'a StepSpec,
    pub(crate) slots: &'a [OnceLock<Artifact>],
    pub(crate) inputs: &'a [usize],
    pub(crate) outputs: &'a [usize],
    pub(crate) resources: &'a Resources,
    pub(crate) notes: Vec<String>,
}

impl<'a> StepContext<'a> {
    /// Input `i` (in parameter order) as a `&T`.
    ///
    /// # Errors
    /// If the input is absent or of another type (validation prevents both
    /// for steps made by `#[step]`).
    #[inline]
    pub fn input<T: 'static>(&self, i: usize) -> Result<&'a T, StepError> {
        let artifact = self.input_artifact(i)?;
        artifact.downcast_ref::<T>().ok_or_else(|| {
            StepError(format!(
                "input `{}` is not a `{}`",
                self.spec.inputs[i].name,
                std::any::type_name::<T>()
            ))
        })
    }

    /// Input `i` as the shared artifact.
    ///
    /// # Errors
    /// If the input has no value.
    #[inline]
    pub fn input_artifact(&self, i: usize) -> Result<&'a Artifact, StepError> {
        self.inputs
            .get(i)
            .and_then(|&slot| self.slots[slot].get())
            .ok_or_else(|| {
                StepError(format!(
                    "input #{i} of step `{}` has no value",
                    self.spec.name
                ))
            })
    }

    /// Stores output `j` (in output order).
    #[inline]
    pub fn set_output<T: Any + Send + Sync>(&mut self, j: usize, value: T) {
        self.set_output_artifact(j, Arc::new(value));
    }

    /// Stores output `j` as an already shared artifact.
    #[inline]
    pub fn set_output_artifact(&mut self, j: usize, value: Artifact) {
        // Each slot has exactly one producer and is written once per run;
        // validation guarantees it, so a second write is a logic error.
        let _ = self.slots[self.outputs[j]].set(value);
    }

    /// The run's resource of type `R`.
    ///
    /// # Errors
    /// If the run has no such resource.
    pub fn resource<R: Any + Send + Sync>(&self) -> Result<&'a R, StepError> {
        self.resources.get::<R>().ok_or_else(|| {
            let reason = self
                .resources
                .missing_reason::<R>()
                .unwrap_or("this run does not provide one");
            let short = std::any::type_name::<R>()
                .rsplit("::")
                .next()
                .unwrap_or_default();
            StepError(format!(
                "step `{}` needs a `{short}`: {reason}",
                self.spec.name
            ))
        })
    }

    /// Adds a note to this step's record (e.g. that it ran its CPU
    /// fallback).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// This step's spec.
    pub fn spec(&self) -> &'a StepSpec {
        self.spec
    }
}

type RunFn = dyn Fn(&mut StepContext<'_>) -> Result<(), StepError> + Send + Sync;

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
    run: Box<RunFn>,
}

/// Builds a [`FnStep`]; made by [`FnStep::builder`].
#[derive(Debug)]
pub struct FnStepBuilder {
    spec: StepSpec,
    codecs: Vec<Codec>,
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
                gpu: false,
                watch: Cow::Borrowed(&[]),
            },
            codecs: Vec::new(),
        }
    }
}

impl FnStepBuilder {
    /// Consumes artifact `name` of type `T`.
    pub fn input<T: 'static>(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.spec.inputs.to_mut().push(ArtifactSpec::of::<T>(name));
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

    /// Produces artifact `name` of a type with its own
    /// [`ArtifactCodec`](crate::artifact::ArtifactCodec) (a polars
    /// `DataFrame`).
    pub fn artifact_output<T: crate::artifact::ArtifactCodec>(
        self,
        name: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.output_with::<T>(name, Codec::of_artifact::<T>())
    }

    fn output_with<T: 'static>(mut self, name: impl Into<Cow<'static, str>>, codec: Codec) -> Self {
        self.spec.outputs.to_mut().push(ArtifactSpec::of::<T>(name));
        self.codecs.push(codec);
        self
    }

    /// Sets the code fingerprint: change it when the closure's behaviour
    /// changes, so incremental runs recompute the step.
    pub fn version(mut self, version: &str) -> Self {
        self.spec.code_fingerprint = *blake3::hash(version.as_bytes()).as_bytes();
        self
    }

    /// The step, running `run`.
    pub fn build(
        self,
        run: impl Fn(&mut StepContext<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    ) -> FnStep {
        FnStep {
            spec: self.spec,
            codecs: self.codecs,
            run: Box::new(run),
        }
    }
}

impl Step for FnStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        (self.run)(ctx)
    }

    fn codecs(&self) -> Vec<Codec> {
        self.codecs.clone()
    }
}

impl fmt::Debug for FnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnStep")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

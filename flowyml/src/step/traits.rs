//! The two traits of steps: [`Step`], what a step is to a pipeline, and
//! [`IntoStep`], what `add_step` accepts.

use std::borrow::Cow;
use std::sync::Arc;

use super::body::{Callable, StepBody};
use super::context::{Specs, StepContext};
use super::spec::StepSpec;
use crate::artifact::Codec;
use crate::error::{BoxError, Problem};

/// A unit of work in a pipeline. `#[step]` implements it; see also
/// [`FnStep`](super::FnStep).
pub trait Step: Send + Sync + 'static {
    /// Name, inputs, outputs and options.
    fn spec(&self) -> &StepSpec;

    /// Reads the inputs from `ctx` and writes every output into it.
    ///
    /// # Errors
    /// The step's own failure, reported with the step's name.
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError>;

    /// How each output is hashed and stored (by output index); outputs
    /// without a codec are kept in memory only. Borrowed where the step
    /// keeps them: a pipeline reads them as each step is added.
    fn codecs(&self) -> Cow<'_, [Codec]> {
        self.spec()
            .outputs
            .iter()
            .map(|_| Codec::opaque())
            .collect()
    }

    /// How each input can be read from outside the process (by input
    /// index): what `run --input` and `run-step` decode an input with.
    /// Inputs without a codec can only come from steps of the same run.
    fn input_codecs(&self) -> Cow<'_, [Codec]> {
        self.spec().inputs.iter().map(|_| Codec::opaque()).collect()
    }

    /// Why this step cannot be part of a pipeline, if it cannot;
    /// validation reports it.
    fn problem(&self) -> Option<Problem> {
        None
    }

    /// The step's code as a closure, where it is one (a
    /// [`FnStep`](super::FnStep)'s): a pipeline keeps it in a flat array
    /// beside its other per-step state and calls it from there, so that
    /// running the step does not first load the step's own heap object.
    /// Calling it must do what [`run`](Self::run) does.
    fn body(&self) -> Option<StepBody> {
        None
    }
}

/// What [`Pipeline::add_step`](crate::Pipeline::add_step) accepts: a
/// `#[step]` function, or any [`Step`] value (such as a [`FnStep`](super::FnStep)). The
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

impl Callable for dyn Step {
    fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        self.run(ctx)
    }
}

impl Specs for &[Arc<dyn Step>] {
    fn spec(&self, i: usize) -> &StepSpec {
        self[i].spec()
    }
}

impl<S: Step> IntoStep<StepValue> for S {
    fn into_step(self) -> Arc<dyn Step> {
        Arc::new(self)
    }
}

//! [`StepContext`]: a step's view of the run.

use std::any::Any;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::spec::StepSpec;
use crate::artifact::ArtifactType;
use crate::error::BoxError;
use crate::resource::Resources;
use crate::slot::{Artifact, Value};

/// A step's view of the run: its inputs, its output slots, the run's
/// resources, and notes for its record.
pub struct StepContext<'a> {
    pub(crate) spec: &'a StepSpec,
    /// Every artifact slot of the run.
    pub(crate) slots: &'a [OnceLock<Value>],
    /// The slot of each of the step's inputs, in parameter order.
    pub(crate) inputs: &'a [u32],
    /// The slots of the step's outputs (consecutive), so that writing one
    /// does not read the step's spec.
    pub(crate) outputs: std::ops::Range<usize>,
    pub(crate) resources: &'a Resources,
    /// The pipeline's canceller and the run's (or this attempt's) stop.
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) notes: Vec<String>,
    /// A misuse of the context (an output index out of range, an output
    /// written twice): the step fails with it once it returns.
    pub(crate) misuse: Option<String>,
}

impl<'a> StepContext<'a> {
    /// Input `i` (in parameter order) as a `&T`.
    ///
    /// # Errors
    /// If the input is absent or of another type (validation prevents both
    /// for steps made by `#[step]`).
    #[inline]
    pub fn input<T: 'static>(&self, i: usize) -> Result<&'a T, BoxError> {
        match self.value(i)?.get::<T>() {
            Some(value) => Ok(value),
            None => Err(self.wrong_type::<T>(i)),
        }
    }

    /// Input `i` as a shared artifact (a small scalar, which the run keeps
    /// inline, is put in an `Arc` for it).
    ///
    /// # Errors
    /// If the step has no input `i`, or it has no value.
    pub fn input_artifact(&self, i: usize) -> Result<Artifact, BoxError> {
        self.value(i).map(Value::to_artifact)
    }

    #[inline]
    fn value(&self, i: usize) -> Result<&'a Value, BoxError> {
        match self
            .inputs
            .get(i)
            .and_then(|&slot| self.slots[slot as usize].get())
        {
            Some(value) => Ok(value),
            None => Err(self.no_value(i)),
        }
    }

    #[cold]
    fn no_value(&self, i: usize) -> BoxError {
        format!("input #{i} of step `{}` has no value", self.spec.name).into()
    }

    #[cold]
    fn wrong_type<T>(&self, i: usize) -> BoxError {
        format!(
            "input `{}` of step `{}` is not a `{}`",
            self.spec.inputs[i].name,
            self.spec.name,
            crate::type_name::of::<T>()
        )
        .into()
    }

    /// Stores output `j` (in output order). An index out of range, or a
    /// second write of the same output, fails the step when it returns.
    #[inline]
    pub fn set_output<T: ArtifactType>(&mut self, j: usize, value: T) {
        if j < self.outputs.len() {
            self.set_value(j, Value::new(value));
        } else {
            self.out_of_range(j);
        }
    }

    /// Stores output `j` as an already shared artifact; misuse fails the
    /// step as with [`set_output`](Self::set_output).
    pub fn set_output_artifact(&mut self, j: usize, value: Artifact) {
        if j < self.outputs.len() {
            self.set_value(j, Value::Shared(value));
        } else {
            self.out_of_range(j);
        }
    }

    #[inline]
    fn set_value(&mut self, j: usize, value: Value) {
        if self.slots[self.outputs.start + j].set(value).is_err() {
            self.written_twice(j);
        }
    }

    #[cold]
    fn written_twice(&mut self, j: usize) {
        let spec = self.spec;
        self.misuse.get_or_insert_with(|| {
            format!(
                "output `{}` of step `{}` was written twice",
                spec.outputs[j].name, spec.name
            )
        });
    }

    #[cold]
    fn out_of_range(&mut self, j: usize) {
        let n = self.outputs.len();
        self.misuse.get_or_insert_with(|| {
            format!(
                "step `{}` wrote output #{j}, but it has {n} output{}",
                self.spec.name,
                if n == 1 { "" } else { "s" }
            )
        });
    }

    /// The run's resource of type `R`.
    ///
    /// # Errors
    /// If the run has no such resource, with the reason its provider gave.
    pub fn resource<R: Any + Send + Sync>(&self) -> Result<&'a R, BoxError> {
        self.resources.get::<R>().ok_or_else(|| {
            let reason = self
                .resources
                .missing_reason::<R>()
                .unwrap_or("this run does not provide one");
            let short = crate::type_name::of::<R>();
            format!("step `{}` needs a `{short}`: {reason}", self.spec.name).into()
        })
    }

    /// Adds a note to this step's record (e.g. that it ran its CPU
    /// fallback).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Whether the run was cancelled (Ctrl-C, a
    /// [`Canceller`](crate::pipeline::Canceller)), stopped (its time limit,
    /// a failure elsewhere) or this step ran past its own time limit: a
    /// long step polls it and ends early. (A thread cannot be stopped from
    /// outside safely; a step that does not poll runs to its end.)
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.stop.load(Ordering::Relaxed)
    }

    /// `Err` once [`is_cancelled`](Self::is_cancelled): `ctx.check_cancelled()?`
    /// in a long step's loop.
    ///
    /// # Errors
    /// "cancelled", once the run was cancelled or stopped.
    pub fn check_cancelled(&self) -> Result<(), BoxError> {
        if self.is_cancelled() {
            Err(format!("step `{}` was cancelled", self.spec.name).into())
        } else {
            Ok(())
        }
    }

    /// This step's spec.
    pub fn spec(&self) -> &'a StepSpec {
        self.spec
    }
}

impl std::fmt::Debug for StepContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("step", &self.spec.name)
            .finish_non_exhaustive()
    }
}

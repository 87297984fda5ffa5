//! [`Catalog`]: what a pipeline knows of its steps, indexed as each is
//! added.
//!
//! # Why index at `add_step`
//! A step's spec lives on the heap, its names in strings of their own: a
//! pipeline of 10k steps spreads them over some 50k allocations. Reading
//! them all again to plan the first run costs a cache miss or more per
//! name, several times what the run itself costs. So each step is read
//! once, when it is added and its spec was just written (hot in cache):
//! its artifact names are interned to ids, and its inputs and outputs kept
//! as ids, type ids and codecs in flat arrays indexed by step, beside one
//! [`StepCall`] record per step: what a run reads to call it (the step,
//! its code where it is a closure, where its inputs and outputs are, the
//! options a run branches on). Planning
//! ([`Plan::build`](super::plan::Plan::build)) then reads only these
//! arrays and hashes no name; the names are read again only to word an
//! error.

use std::any::TypeId;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use crate::artifact::Codec;
use crate::error::{BoxError, Problem};
use crate::record::Names;
use crate::step::{Step, StepBody, StepContext};

/// A pipeline's steps, as flat arrays indexed by step (in the order they
/// were added) and by artifact name id.
#[derive(Clone, Default)]
pub(crate) struct Catalog {
    /// Every artifact name a step reads or writes, or a run-time input
    /// has, once: a name's position is its id. Shared with plans and
    /// results (copied on write if a step is added while one holds it).
    pub names: Arc<Names>,
    /// Each step's name, in step order (a repeated name is kept, and
    /// reported by planning).
    pub step_names: Arc<Names>,
    /// The steps whose name an earlier step has.
    pub repeated_steps: Vec<u32>,
    /// What the steps say about themselves ([`Step::problem`]).
    pub problems: Vec<Problem>,
    /// Step `i`'s inputs are `inputs[input_at[i]..input_at[i + 1]]`.
    input_at: Vec<u32>,
    inputs: Vec<Port>,
    /// Each input's codec (how it is read from outside the program), in
    /// the same order.
    input_codecs: Vec<Codec>,
    /// Step `i`'s outputs are `outputs[output_at[i]..output_at[i + 1]]`.
    output_at: Vec<u32>,
    outputs: Vec<Port>,
    /// Each output's codec, in the same order.
    output_codecs: Vec<Codec>,
    /// The distinct type names of the ports; few, most of them one
    /// `&'static str`.
    pub type_names: Vec<Cow<'static, str>>,
    /// What a run reads to call each step, one record per step.
    calls: Vec<StepCall>,
}

/// What a run reads to call a step, in one record, so that a step costs a
/// run one load from the catalog. (At 100k steps in a random DAG that load
/// misses the CPU's caches and is the largest cost a run adds to a step.)
#[derive(Clone)]
pub(crate) struct StepCall {
    /// The step.
    pub step: Arc<dyn Step>,
    /// Its code where it is a closure ([`Step::body`]): called from here,
    /// the step's own heap object is not loaded.
    pub body: Option<StepBody>,
    /// Where its inputs are in the step-ordered list of inputs (the plan's
    /// slots of inputs are in that order).
    inputs: [u32; 2],
    /// Where its outputs are among all steps' outputs (a slot index, less
    /// the run-time inputs, which come first).
    outputs: [u32; 2],
    /// Whether it declares resources or a time limit, so that a run does
    /// not read every step's spec to find the few that do.
    pub special: bool,
    /// Whether it watches files (part of its cache key), so that a cache
    /// hit does not read the step's spec to find out.
    pub watches_files: bool,
}

impl StepCall {
    /// Runs the step's code: its closure where it has one, else its `run`.
    #[inline]
    pub fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        match &self.body {
            Some(body) => body.call(ctx),
            None => self.step.run(ctx),
        }
    }

    /// Its positions in the step-ordered list of inputs.
    #[inline]
    pub fn inputs(&self) -> Range<usize> {
        self.inputs[0] as usize..self.inputs[1] as usize
    }

    /// Its output slots, after `first` slots of run-time inputs.
    #[inline]
    pub fn outputs(&self, first: usize) -> Range<usize> {
        first + self.outputs[0] as usize..first + self.outputs[1] as usize
    }
}

/// One input or output of a step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    /// The artifact's name, as an id into [`Catalog::names`].
    pub name: u32,
    /// Its type.
    pub type_id: TypeId,
    /// Its type's name, as an index into [`Catalog::type_names`].
    pub type_name: u32,
}

impl Catalog {
    /// The number of steps.
    pub fn steps(&self) -> usize {
        self.output_at.len().saturating_sub(1)
    }

    /// Indexes `step`, the next step.
    pub fn add(&mut self, step: &Arc<dyn Step>) {
        if self.input_at.is_empty() {
            self.input_at.push(0);
            self.output_at.push(0);
        }
        let i = self.steps();
        let spec = step.spec();
        self.problems.extend(step.problem());
        if !Arc::make_mut(&mut self.step_names).push(&spec.name).1 {
            self.repeated_steps.push(index(i));
        }
        for input in spec.inputs.iter() {
            let port = self.port(&input.name, (input.type_id)(), &input.type_name);
            self.inputs.push(port);
        }
        self.input_codecs.extend_from_slice(&step.input_codecs());
        for output in spec.outputs.iter() {
            let port = self.port(&output.name, (output.type_id)(), &output.type_name);
            self.outputs.push(port);
        }
        self.output_codecs.extend_from_slice(&step.codecs());
        self.input_at.push(index(self.inputs.len()));
        self.output_at.push(index(self.outputs.len()));
        self.calls.push(StepCall {
            step: Arc::clone(step),
            body: step.body(),
            inputs: [self.input_at[i], self.input_at[i + 1]],
            outputs: [self.output_at[i], self.output_at[i + 1]],
            special: !spec.resources.is_empty() || spec.timeout.is_some(),
            watches_files: !spec.watch.is_empty(),
        });
    }

    /// The id of artifact `name`, interned if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        index(Arc::make_mut(&mut self.names).intern(name))
    }

    // `&Cow`, not `&str`: a borrowed `'static` name is kept without a copy.
    #[allow(clippy::ptr_arg)]
    fn port(&mut self, name: &str, type_id: TypeId, type_name: &Cow<'static, str>) -> Port {
        Port {
            name: self.intern(name),
            type_id,
            type_name: type_index(&mut self.type_names, type_name),
        }
    }

    /// The positions of step `i`'s inputs in [`all_inputs`](Self::all_inputs).
    pub fn input_range(&self, i: usize) -> Range<usize> {
        self.input_at[i] as usize..self.input_at[i + 1] as usize
    }

    /// The positions of step `i`'s outputs in [`all_outputs`](Self::all_outputs).
    pub fn output_range(&self, i: usize) -> Range<usize> {
        self.output_at[i] as usize..self.output_at[i + 1] as usize
    }

    /// Every step's inputs, step after step.
    pub fn all_inputs(&self) -> &[Port] {
        &self.inputs
    }

    /// Every step's outputs, step after step.
    pub fn all_outputs(&self) -> &[Port] {
        &self.outputs
    }

    /// Where each step's first input is, and the input count at the end.
    pub fn input_offsets(&self) -> &[u32] {
        &self.input_at
    }

    /// Where each step's first output is, and the output count at the end.
    pub fn output_offsets(&self) -> &[u32] {
        &self.output_at
    }

    /// Step `i`'s output codecs, in output order.
    pub fn output_codecs(&self, i: usize) -> &[Codec] {
        &self.output_codecs[self.output_range(i)]
    }

    /// Every output codec, step after step.
    pub fn all_output_codecs(&self) -> &[Codec] {
        &self.output_codecs
    }

    /// Step `i`'s input codecs, in input order.
    pub fn input_codecs(&self, i: usize) -> &[Codec] {
        &self.input_codecs[self.input_range(i)]
    }

    /// What a run reads to call step `i`.
    #[inline]
    pub fn call(&self, i: usize) -> &StepCall {
        &self.calls[i]
    }
}

/// The index of `type_name` among the distinct `type_names`, added if new
/// (`&Cow`, so that a borrowed `'static` name is kept without a copy).
#[allow(clippy::ptr_arg)]
pub(crate) fn type_index(
    type_names: &mut Vec<Cow<'static, str>>,
    type_name: &Cow<'static, str>,
) -> u32 {
    // Most are the same `&'static str`: compared by address first.
    let same = |t: &Cow<'static, str>| {
        std::ptr::eq(t.as_ptr(), type_name.as_ptr()) && t.len() == type_name.len() || t == type_name
    };
    match type_names.iter().rposition(same) {
        Some(t) => index(t),
        None => {
            type_names.push(type_name.clone());
            index(type_names.len() - 1)
        }
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("a pipeline of at most u32::MAX steps and artifacts")
}

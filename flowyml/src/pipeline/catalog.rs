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
//! as ids, type ids and codecs in flat arrays indexed by step, beside a bit
//! for each option a run branches on and the step's code where it is a
//! closure ([`Step::body`]). Planning
//! ([`Plan::build`](super::plan::Plan::build)) then reads only these
//! arrays and hashes no name; the names are read again only to word an
//! error.

use std::any::TypeId;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use crate::artifact::Codec;
use crate::error::Problem;
use crate::record::Names;
use crate::step::{Step, StepBody};

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
    /// The steps that declare resources or a time limit, so that a run
    /// does not read every step's spec to find the few that do.
    special: StepBits,
    /// The steps that watch files (part of their cache key), so that a
    /// cache hit does not read the step's spec to find out.
    watching: StepBits,
    /// Each step's code where it is a closure ([`Step::body`]).
    bodies: Vec<Option<StepBody>>,
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
    pub fn add(&mut self, step: &dyn Step) {
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
        self.special
            .push(i, !spec.resources.is_empty() || spec.timeout.is_some());
        self.watching.push(i, !spec.watch.is_empty());
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
        self.bodies.push(step.body());
        self.input_at.push(index(self.inputs.len()));
        self.output_at.push(index(self.outputs.len()));
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

    /// Whether step `i` declares a resource or a time limit.
    #[inline]
    pub fn is_special(&self, i: usize) -> bool {
        self.special.contains(i)
    }

    /// Whether step `i` watches files.
    #[inline]
    pub fn watches_files(&self, i: usize) -> bool {
        self.watching.contains(i)
    }

    /// Step `i`'s code, where it is a closure.
    #[inline]
    pub fn body(&self, i: usize) -> Option<&StepBody> {
        self.bodies[i].as_ref()
    }
}

/// One bit per step.
#[derive(Clone, Default)]
struct StepBits(Vec<u64>);

impl StepBits {
    /// Sets step `i`'s bit to `on`; steps come in order.
    fn push(&mut self, i: usize, on: bool) {
        if i.is_multiple_of(64) {
            self.0.push(0);
        }
        self.0[i / 64] |= u64::from(on) << (i % 64);
    }

    #[inline]
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
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

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
//! 32-byte record per step: what a run reads to call it (its code, where
//! its inputs and outputs start; see [`Catalog::call`]). Planning
//! ([`Plan::build`](super::plan::Plan::build)) then reads only these
//! arrays and hashes no name; the names are read again only to word an
//! error.

use std::any::TypeId;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use crate::artifact::Codec;
use crate::error::{BoxError, Problem};
use crate::prefetch::prefetch;
use crate::record::Names;
use crate::step::{RawCall, Step, StepBody, StepContext};

/// A pipeline's steps, as flat arrays indexed by step (in the order they
/// were added) and by artifact name id.
#[derive(Default)]
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
    /// Each output's codec, in the same order; shared with the plans (and
    /// so the results) built from this catalog rather than copied into
    /// each (a codec is 64 bytes: 640 KB for 10,000 outputs), and copied
    /// here only if a step is added while one of them is alive.
    output_codecs: Arc<Vec<Codec>>,
    /// The distinct type names of the ports; few, most of them one
    /// `&'static str`.
    pub type_names: Vec<Cow<'static, str>>,
    /// What a run reads to call each step, one record per step and one
    /// past the last (where the last step's inputs and outputs end).
    calls: Vec<CallRecord>,
    /// What each step's record calls, kept alive.
    code: Vec<Code>,
    /// The steps that declare resources or a time limit, so that a run
    /// does not read every step's spec to find the few that do.
    special: Bits,
    /// The steps that watch files (part of their cache key), so that a
    /// cache hit does not read the step's spec to find out.
    watches_files: Bits,
}

/// Where a step's code is called from, and where its inputs and outputs
/// start: what a run reads of a step, 32 bytes, two to a cache line, so
/// that a step costs a run one load of half a line from the catalog (at
/// 100k steps in a random DAG that load misses the CPU's caches and is
/// the largest cost a run adds to a step). Where they end is in the next
/// record: the catalog keeps one past the last step.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct CallRecord {
    code: RawCall,
    inputs: u32,
    outputs: u32,
}

/// What a [`CallRecord`]'s code points into, kept alive beside it.
enum Code {
    /// The step's closure ([`Step::body`]): called from the record, the
    /// step's own heap object is not loaded.
    Body(StepBody),
    /// A step without one, called through its `run`.
    Step(Arc<dyn Step>),
}

/// What a run reads to call a step: see [`Catalog::call`].
pub(crate) struct StepCall<'c> {
    code: &'c RawCall,
    /// Its positions in the step-ordered list of inputs (the plan's slots
    /// of inputs are in that order).
    pub inputs: Range<usize>,
    /// Its positions among all steps' outputs (a slot index, less the
    /// run-time inputs, which come first).
    outputs: Range<usize>,
}

impl StepCall<'_> {
    /// Runs the step's code: its closure where it has one, else its `run`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        // SAFETY: the catalog this call was read from holds what its code
        // points to (the `Code` made with it in `Catalog::add`, never
        // removed or replaced: the catalog's arrays only grow, and it is
        // not `Clone`) for as long as the call borrows the catalog.
        unsafe { self.code.call(ctx) }
    }

    /// Its output slots, after `first` slots of run-time inputs.
    #[inline]
    pub fn outputs(&self, first: usize) -> Range<usize> {
        first + self.outputs.start..first + self.outputs.end
    }
}

/// One bit per step.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn push(&mut self, i: usize, bit: bool) {
        if i.is_multiple_of(64) {
            self.0.push(0);
        }
        self.0[i / 64] |= u64::from(bit) << (i % 64);
    }

    #[inline]
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
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
            self.calls.push(CallRecord {
                code: RawCall::NONE,
                inputs: 0,
                outputs: 0,
            });
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
        Arc::make_mut(&mut self.output_codecs).extend_from_slice(&step.codecs());
        self.input_at.push(index(self.inputs.len()));
        self.output_at.push(index(self.outputs.len()));
        let code = match step.body() {
            Some(body) => Code::Body(body),
            None => Code::Step(Arc::clone(step)),
        };
        // Never empty here: the first `add` pushed the record past the
        // last step above, and every `add` pushes the next one below.
        let past = self
            .calls
            .last_mut()
            .expect("the record past the last step");
        past.code = match &code {
            Code::Body(body) => RawCall::of_body(body),
            Code::Step(step) => RawCall::of_arc(step),
        };
        self.code.push(code);
        self.calls.push(CallRecord {
            code: RawCall::NONE,
            inputs: self.input_at[i + 1],
            outputs: self.output_at[i + 1],
        });
        self.special
            .push(i, !spec.resources.is_empty() || spec.timeout.is_some());
        self.watches_files.push(i, !spec.watch.is_empty());
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

    /// Every output codec, step after step, shared.
    pub fn all_output_codecs(&self) -> Arc<Vec<Codec>> {
        Arc::clone(&self.output_codecs)
    }

    /// Step `i`'s input codecs, in input order.
    pub fn input_codecs(&self, i: usize) -> &[Codec] {
        &self.input_codecs[self.input_range(i)]
    }

    /// What a run reads to call step `i`: its record, and where the next
    /// one starts.
    #[inline]
    pub fn call(&self, i: usize) -> StepCall<'_> {
        let (this, next) = (&self.calls[i], &self.calls[i + 1]);
        StepCall {
            code: &this.code,
            inputs: this.inputs as usize..next.inputs as usize,
            outputs: this.outputs as usize..next.outputs as usize,
        }
    }

    /// Asks the CPU for step `i`'s record (see [`prefetch`]).
    #[inline(always)]
    pub fn prefetch_call(&self, i: usize) {
        if let Some(call) = self.calls.get(i) {
            prefetch(call);
        }
    }

    /// Whether step `i` declares resources or a time limit.
    #[inline]
    pub fn is_special(&self, i: usize) -> bool {
        self.special.get(i)
    }

    /// Whether step `i` watches files.
    #[inline]
    pub fn watches_files(&self, i: usize) -> bool {
        self.watches_files.get(i)
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

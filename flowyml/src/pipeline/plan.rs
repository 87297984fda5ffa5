//! Validation: a pipeline's steps and run-time inputs into a [`Plan`] of
//! slot indices in flat arrays, or every problem found, reported together.
//!
//! Names were interned when the steps were added (see [`Catalog`]); this
//! resolves ids to slots over flat arrays, in time linear in the steps and
//! edges, hashing only the run-time inputs' names. A run does no string
//! lookups. Artifact slots are the run-time inputs
//! first, then each step's outputs in step order, so a step's outputs are
//! consecutive slots and a plan keeps only where each step's first output
//! is.

use std::ops::Range;
use std::sync::Arc;

use crate::artifact::Codec;
use crate::dag::{Cycle, Dag};
use crate::error::{Error, Problem, Result};
use crate::record::{ArtifactIndex, Names};
use crate::step::Step;

use super::buffers::Spare;
use super::catalog::{Catalog, type_index};
use super::input::RuntimeInput;

/// A validated pipeline: artifacts as slots, steps as indices.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Names and types of the slots.
    pub artifacts: ArtifactIndex,
    /// The producing step of each slot; [`INPUT`] for a run-time input.
    pub producers: Box<[u32]>,
    /// How each slot's artifact is hashed, stored and shown.
    pub codecs: SlotCodecs,
    /// The steps and what each waits for.
    pub dag: Dag,
    /// Each step's input slots, in parameter order: those of step `i` are
    /// `input_slots[input_at[i]..input_at[i + 1]]`.
    input_at: Vec<u32>,
    input_slots: Vec<u32>,
    /// Each step's first output slot; `output_at[steps]` is the slot count.
    output_at: Vec<u32>,
    /// The first slot of steps' outputs (after the run-time inputs').
    pub first_output: usize,
    /// A topological order of the steps.
    pub order: Vec<u32>,
    /// Each step's name, shared with the result of every run.
    pub names: Arc<Names>,
    /// The last result's buffers, for the next run (see [`Spare`]).
    pub spare: Spare,
}

/// Each slot's codec: the run-time inputs' own, then the catalog's output
/// codecs, shared with it (the slots' order, see the module docs).
#[derive(Debug)]
pub(crate) struct SlotCodecs {
    inputs: Box<[Codec]>,
    outputs: Arc<Vec<Codec>>,
}

impl SlotCodecs {
    /// The codec of `slot`.
    pub fn get(&self, slot: usize) -> &Codec {
        match slot.checked_sub(self.inputs.len()) {
            Some(output) => &self.outputs[output],
            None => &self.inputs[slot],
        }
    }
}

/// The producer of a run-time input's slot.
pub(crate) const INPUT: u32 = u32::MAX;

impl Plan {
    /// The slots of step `i`'s inputs, in parameter order.
    #[inline]
    pub fn inputs_of(&self, i: usize) -> &[u32] {
        &self.input_slots[self.input_at[i] as usize..self.input_at[i + 1] as usize]
    }

    /// The input slots at `positions` of the step-ordered list of inputs
    /// (a [`StepCall`](super::catalog::StepCall)'s).
    #[inline]
    pub fn input_slots(&self, positions: Range<usize>) -> &[u32] {
        &self.input_slots[positions]
    }

    /// The slots of step `i`'s outputs, in output order.
    #[inline]
    pub fn outputs_of(&self, i: usize) -> Range<usize> {
        self.output_at[i] as usize..self.output_at[i + 1] as usize
    }

    /// The number of steps.
    pub fn steps(&self) -> usize {
        self.dag.len()
    }

    /// Validates the catalogued steps with `inputs` (`steps` are read only
    /// to word a problem).
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] listing every [`Problem`]: steps that are
    /// not steps, duplicate step names, artifacts produced twice, missing
    /// inputs (with a suggestion), type mismatches, cycles.
    pub fn build(
        pipeline: &str,
        catalog: &Catalog,
        steps: &[Arc<dyn Step>],
        inputs: &[RuntimeInput],
    ) -> Result<Plan> {
        let mut problems: Vec<Problem> = catalog.problems.clone();
        for &i in &catalog.repeated_steps {
            problems.push(Problem::DuplicateStep {
                step: catalog.step_names.get(i as usize).to_owned(),
            });
        }
        let names = &catalog.names;
        let outputs = catalog.all_outputs();
        let n_in = inputs.len();
        let slot_count = n_in + outputs.len();
        // Slots: the run-time inputs, then every step's outputs in order.
        let mut slot_of: Vec<u32> = vec![NO_SLOT; names.len()];
        let mut slot_names = Vec::with_capacity(slot_count);
        let mut producers: Vec<u32> = Vec::with_capacity(slot_count);
        let mut type_ids = Vec::with_capacity(slot_count);
        let mut types = Vec::with_capacity(slot_count);
        let mut type_names = catalog.type_names.clone();
        for input in inputs {
            let id = names
                .find(&input.name)
                .expect("a run-time input's name is interned when it is given");
            slot_of[id] = index(producers.len());
            slot_names.push(index(id));
            producers.push(INPUT);
            type_ids.push(input.type_id);
            types.push(type_index(&mut type_names, &input.type_name));
        }
        let producer_name =
            |p: u32| (p != INPUT).then(|| catalog.step_names.get(p as usize).to_owned());
        let offsets = catalog.output_offsets();
        for si in 0..catalog.steps() {
            for out in &outputs[catalog.output_range(si)] {
                let slot = index(producers.len());
                match slot_of[out.name as usize] {
                    NO_SLOT => slot_of[out.name as usize] = slot,
                    first => problems.push(Problem::ProducedTwice {
                        artifact: names.get(out.name as usize).to_owned(),
                        first: producer_name(producers[first as usize]),
                        second: catalog.step_names.get(si).to_owned(),
                    }),
                }
                slot_names.push(out.name);
                producers.push(index(si));
                type_ids.push(out.type_id);
                types.push(out.type_name);
            }
        }
        let output_at: Vec<u32> = offsets.iter().map(|&o| o + index(n_in)).collect();

        let all_inputs = catalog.all_inputs();
        let mut input_slots = Vec::with_capacity(all_inputs.len());
        for si in 0..catalog.steps() {
            for input in &all_inputs[catalog.input_range(si)] {
                match slot_of[input.name as usize] {
                    NO_SLOT => problems.push(Problem::MissingInput {
                        step: catalog.step_names.get(si).to_owned(),
                        artifact: names.get(input.name as usize).to_owned(),
                        did_you_mean: flowyml_suggest::closest(
                            names.get(input.name as usize),
                            slot_names.iter().map(|&id| names.get(id as usize)),
                        )
                        .map(str::to_owned),
                    }),
                    slot => {
                        if type_ids[slot as usize] != input.type_id {
                            problems.push(Problem::TypeMismatch {
                                artifact: names.get(input.name as usize).to_owned(),
                                producer: producer_name(producers[slot as usize]),
                                produced: type_names[types[slot as usize] as usize].to_string(),
                                consumer: catalog.step_names.get(si).to_owned(),
                                expected: type_names[input.type_name as usize].to_string(),
                            });
                        }
                        input_slots.push(slot);
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(invalid(pipeline, problems));
        }
        let input_at = catalog.input_offsets().to_vec();

        let dag = Dag::from_predecessors(catalog.steps(), |i| {
            input_slots[input_at[i] as usize..input_at[i + 1] as usize]
                .iter()
                .map(|&slot| producers[slot as usize])
                .filter(|&p| p != INPUT)
                .map(|p| p as usize)
        });
        let order = match dag.order() {
            Ok(order) => order.into_iter().map(index).collect(),
            Err(Cycle(cycle)) => {
                return Err(invalid(
                    pipeline,
                    vec![Problem::Cycle {
                        steps: cycle
                            .iter()
                            .map(|&i| steps[i].spec().name.to_string())
                            .collect(),
                    }],
                ));
            }
        };
        Ok(Plan {
            artifacts: ArtifactIndex::new(Arc::clone(names), slot_names, types, type_names.into()),
            producers: producers.into(),
            codecs: SlotCodecs {
                inputs: inputs.iter().map(|input| input.codec).collect(),
                outputs: catalog.all_output_codecs(),
            },
            dag,
            input_at,
            input_slots,
            output_at,
            first_output: n_in,
            order,
            names: Arc::clone(&catalog.step_names),
            spare: Spare::default(),
        })
    }
}

/// A name id no slot has (yet).
const NO_SLOT: u32 = u32::MAX;

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("a pipeline of at most u32::MAX steps and artifacts")
}

fn invalid(pipeline: &str, problems: Vec<Problem>) -> Error {
    Error::InvalidPipeline {
        pipeline: pipeline.to_owned(),
        problems,
    }
}

//! Validation: a pipeline's steps and run-time inputs into a [`Plan`] of
//! slot indices in flat arrays, or every problem found, reported together.
//!
//! Names are resolved here, once, in time linear in the steps and edges
//! (one hash per artifact name, in a table that keeps each name once); a
//! run does no string lookups. Artifact slots are the run-time inputs
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

use super::input::RuntimeInput;

/// A validated pipeline: artifacts as slots, steps as indices.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Names and types of the slots; shared with every result.
    pub artifacts: Arc<ArtifactIndex>,
    /// The producing step of each slot; [`INPUT`] for a run-time input.
    pub producers: Arc<[u32]>,
    /// How each slot's artifact is hashed, stored and shown.
    pub codecs: Arc<[Codec]>,
    /// The steps and what each waits for.
    pub dag: Dag,
    /// Each step's input slots, in parameter order: those of step `i` are
    /// `input_slots[input_at[i]..input_at[i + 1]]`.
    input_at: Vec<u32>,
    input_slots: Vec<u32>,
    /// Each step's first output slot; `output_at[steps]` is the slot count.
    output_at: Vec<u32>,
    /// The steps that declare resources or a time limit, one bit each, so
    /// that a run does not read every step's spec to find the few that do.
    special: Vec<u64>,
    /// A topological order of the steps.
    pub order: Vec<u32>,
    /// Each step's name, shared with the result of every run.
    pub names: Arc<Names>,
}

/// The producer of a run-time input's slot.
pub(crate) const INPUT: u32 = u32::MAX;

impl Plan {
    /// The slots of step `i`'s inputs, in parameter order.
    #[inline]
    pub fn inputs_of(&self, i: usize) -> &[u32] {
        &self.input_slots[self.input_at[i] as usize..self.input_at[i + 1] as usize]
    }

    /// The slots of step `i`'s outputs, in output order.
    #[inline]
    pub fn outputs_of(&self, i: usize) -> Range<usize> {
        self.output_at[i] as usize..self.output_at[i + 1] as usize
    }

    /// Whether step `i` declares a resource or a time limit.
    #[inline]
    pub fn is_special(&self, i: usize) -> bool {
        self.special[i / 64] & (1 << (i % 64)) != 0
    }

    /// The number of steps.
    pub fn steps(&self) -> usize {
        self.dag.len()
    }

    /// Validates `steps` with `inputs`.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] listing every [`Problem`]: steps that are
    /// not steps, duplicate step names, artifacts produced twice, missing
    /// inputs (with a suggestion), type mismatches, cycles.
    pub fn build(
        pipeline: &str,
        steps: &[Arc<dyn Step>],
        step_codecs: &[Vec<Codec>],
        inputs: &[RuntimeInput],
    ) -> Result<Plan> {
        // Two passes over the steps, which live on the heap one by one: the
        // first names each step and its outputs, the second resolves the
        // inputs (a step may read an output of a step added after it).
        let mut problems: Vec<Problem> = Vec::new();
        let mut step_names = Names::with_capacity(steps.len());
        let slot_count = inputs.len() + steps.len();
        let mut artifacts = ArtifactIndex::with_capacity(slot_count);
        let mut producers: Vec<u32> = Vec::with_capacity(slot_count);
        let mut type_ids = Vec::with_capacity(slot_count);
        let mut codecs = Vec::with_capacity(slot_count);
        for input in inputs {
            artifacts.push(&input.name, input.type_name.clone());
            producers.push(INPUT);
            type_ids.push(input.type_id);
            codecs.push(input.codec);
        }
        let producer_name =
            |p: u32| (p != INPUT).then(|| steps[p as usize].spec().name.to_string());
        let mut output_at = Vec::with_capacity(steps.len() + 1);
        let mut special = vec![0u64; steps.len().div_ceil(64)];
        for (si, step) in steps.iter().enumerate() {
            problems.extend(step.problem());
            let spec = step.spec();
            if !step_names.push(&spec.name).1 {
                problems.push(Problem::DuplicateStep {
                    step: spec.name.to_string(),
                });
            }
            if !spec.resources.is_empty() || spec.timeout.is_some() {
                special[si / 64] |= 1 << (si % 64);
            }
            output_at.push(index(producers.len()));
            codecs.extend_from_slice(&step_codecs[si]);
            for out in spec.outputs.iter() {
                // A slot per output even when the name repeats, so that a
                // step's outputs stay consecutive; the plan is refused then.
                let (_, new) = artifacts.push(&out.name, out.type_name.clone());
                if !new {
                    let first = artifacts.slot(&out.name).expect("pushed before");
                    problems.push(Problem::ProducedTwice {
                        artifact: out.name.to_string(),
                        first: producer_name(producers[first]),
                        second: spec.name.to_string(),
                    });
                }
                producers.push(index(si));
                type_ids.push((out.type_id)());
            }
        }
        output_at.push(index(producers.len()));

        let mut input_at = Vec::with_capacity(steps.len() + 1);
        let mut input_slots = Vec::with_capacity(steps.len());
        input_at.push(0);
        for step in steps {
            let spec = step.spec();
            for input in spec.inputs.iter() {
                match artifacts.slot(&input.name) {
                    Some(slot) => {
                        if type_ids[slot] != (input.type_id)() {
                            problems.push(Problem::TypeMismatch {
                                artifact: input.name.to_string(),
                                producer: producer_name(producers[slot]),
                                produced: artifacts.type_name(slot).to_owned(),
                                consumer: spec.name.to_string(),
                                expected: input.type_name.to_string(),
                            });
                        }
                        input_slots.push(index(slot));
                    }
                    None => problems.push(Problem::MissingInput {
                        step: spec.name.to_string(),
                        artifact: input.name.to_string(),
                        did_you_mean: flowyml_suggest::closest(&input.name, artifacts.names())
                            .map(str::to_owned),
                    }),
                }
            }
            input_at.push(index(input_slots.len()));
        }
        if !problems.is_empty() {
            return Err(invalid(pipeline, problems));
        }

        let dag = Dag::from_predecessors(steps.len(), |i| {
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
            artifacts: Arc::new(artifacts),
            producers: producers.into(),
            codecs: codecs.into(),
            dag,
            input_at,
            input_slots,
            output_at,
            special,
            order,
            names: Arc::new(step_names),
        })
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("a pipeline of at most u32::MAX steps and artifacts")
}

fn invalid(pipeline: &str, problems: Vec<Problem>) -> Error {
    Error::InvalidPipeline {
        pipeline: pipeline.to_owned(),
        problems,
    }
}

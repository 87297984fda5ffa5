//! Validation: a pipeline's steps and run-time inputs into a [`Plan`] of
//! slot indices, or every problem found, reported together.
//!
//! Names are resolved here, once; a run does no string lookups.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::step::Step;

use super::RuntimeInput;

/// Who writes an artifact slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Producer {
    /// Run-time input `i`.
    Input(usize),
    /// Output `1` of step `0`.
    Step(usize, usize),
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub name: String,
    pub type_name: String,
    pub producer: Producer,
}

#[derive(Debug)]
pub(crate) struct PlannedStep {
    /// Slot of each input, in parameter order.
    pub inputs: Vec<usize>,
    /// Slot of each output, in output order.
    pub outputs: Vec<usize>,
    /// Steps that consume an output of this one, each once.
    pub dependents: Vec<usize>,
    /// Distinct producer steps this one waits for.
    pub waits_for: usize,
}

/// A validated pipeline: artifacts as slots, steps as indices.
#[derive(Debug)]
pub(crate) struct Plan {
    pub slots: Vec<Slot>,
    pub steps: Vec<PlannedStep>,
    /// Steps with nothing to wait for.
    pub roots: Vec<usize>,
    /// A topological order of the steps.
    pub order: Vec<usize>,
    /// Slot of each artifact name, for results.
    pub slot_by_name: HashMap<String, usize>,
    /// Each step's name, shared by the records of every run.
    pub names: Vec<Arc<str>>,
}

impl Plan {
    /// Validates `steps` with `inputs`.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] listing every problem: duplicate step
    /// names, artifacts produced twice, missing inputs (with a suggestion),
    /// type mismatches, cycles.
    pub fn build(pipeline: &str, steps: &[Arc<dyn Step>], inputs: &[RuntimeInput]) -> Result<Plan> {
        let mut problems = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let mut type_of: Vec<TypeId> = Vec::new();

        problems.extend(steps.iter().filter_map(|s| s.problem()));
        let mut step_names: HashMap<&str, usize> = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if step_names.insert(&step.spec().name, i).is_some() {
                problems.push(format!("step `{}` is added twice", step.spec().name));
            }
        }

        for (i, input) in inputs.iter().enumerate() {
            slot_of.insert(&input.name, slots.len());
            slots.push(Slot {
                name: input.name.clone(),
                type_name: input.type_name.to_owned(),
                producer: Producer::Input(i),
            });
            type_of.push(input.type_id);
        }
        let describe = |p: Producer| match p {
            Producer::Input(_) => "a run-time input".to_owned(),
            Producer::Step(s, _) => format!("step `{}`", steps[s].spec().name),
        };
        for (si, step) in steps.iter().enumerate() {
            for (oi, out) in step.spec().outputs.iter().enumerate() {
                match slot_of.get(out.name.as_ref()) {
                    Some(&existing) => problems.push(format!(
                        "artifact `{}` is produced twice: by {} and by step `{}`",
                        out.name,
                        describe(slots[existing].producer),
                        step.spec().name
                    )),
                    None => {
                        slot_of.insert(&out.name, slots.len());
                        slots.push(Slot {
                            name: out.name.to_string(),
                            type_name: out.type_name.to_string(),
                            producer: Producer::Step(si, oi),
                        });
                        type_of.push((out.type_id)());
                    }
                }
            }
        }

        let mut planned = Vec::with_capacity(steps.len());
        for step in steps {
            let spec = step.spec();
            let mut ins = Vec::with_capacity(spec.inputs.len());
            for input in spec.inputs.iter() {
                match slot_of.get(input.name.as_ref()) {
                    Some(&slot) => {
                        if type_of[slot] != (input.type_id)() {
                            problems.push(format!(
                                "type mismatch for artifact `{}`: {} produces `{}` but step `{}` expects `{}`",
                                input.name,
                                describe(slots[slot].producer),
                                slots[slot].type_name,
                                spec.name,
                                input.type_name
                            ));
                        }
                        ins.push(slot);
                    }
                    None => {
                        let hint =
                            flowyml_suggest::did_you_mean(&input.name, slot_of.keys().copied());
                        problems.push(format!(
                            "step `{}` needs artifact `{}`, which no step produces and no run-time input provides{hint}",
                            spec.name, input.name
                        ));
                    }
                }
            }
            let outs = spec
                .outputs
                .iter()
                .filter_map(|o| slot_of.get(o.name.as_ref()).copied())
                .collect();
            planned.push(PlannedStep {
                inputs: ins,
                outputs: outs,
                dependents: Vec::new(),
                waits_for: 0,
            });
        }
        if !problems.is_empty() {
            return Err(invalid(pipeline, problems));
        }

        for ci in 0..planned.len() {
            let mut producers: Vec<usize> = planned[ci]
                .inputs
                .iter()
                .filter_map(|&s| match slots[s].producer {
                    Producer::Step(p, _) => Some(p),
                    Producer::Input(_) => None,
                })
                .collect();
            producers.sort_unstable();
            producers.dedup();
            planned[ci].waits_for = producers.len();
            for p in producers {
                planned[p].dependents.push(ci);
            }
        }

        let order = topological_order(&planned);
        if order.len() < planned.len() {
            let cycle = find_cycle(&planned, &order);
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| steps[i].spec().name.as_ref())
                .collect();
            return Err(invalid(
                pipeline,
                vec![format!("cycle: {} -> {}", names.join(" -> "), names[0])],
            ));
        }
        let roots = (0..planned.len())
            .filter(|&i| planned[i].waits_for == 0)
            .collect();
        let slot_by_name = slot_of
            .into_iter()
            .map(|(name, slot)| (name.to_owned(), slot))
            .collect();
        Ok(Plan {
            slots,
            steps: planned,
            roots,
            order,
            slot_by_name,
            names: steps.iter().map(|s| Arc::from(&*s.spec().name)).collect(),
        })
    }
}

fn invalid(pipeline: &str, problems: Vec<String>) -> Error {
    Error::InvalidPipeline {
        pipeline: pipeline.to_owned(),
        problems,
    }
}

/// Kahn's algorithm; shorter than the step count when there is a cycle.
fn topological_order(steps: &[PlannedStep]) -> Vec<usize> {
    let mut waiting: Vec<usize> = steps.iter().map(|s| s.waits_for).collect();
    let mut order: Vec<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        for &d in &steps[order[next]].dependents {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                order.push(d);
            }
        }
        next += 1;
    }
    order
}

/// A cycle among the steps Kahn's algorithm could not order, in
/// dependency order (each step feeds the next).
fn find_cycle(steps: &[PlannedStep], ordered: &[usize]) -> Vec<usize> {
    let mut done = vec![false; steps.len()];
    for &i in ordered {
        done[i] = true;
    }
    // Every unordered step has an unordered dependent on a cycle or leading
    // to one: walk dependents until a step repeats.
    let start = (0..steps.len())
        .find(|&i| !done[i])
        .expect("a step is left");
    let mut path = vec![start];
    let mut seen = vec![usize::MAX; steps.len()];
    seen[start] = 0;
    loop {
        let last = *path.last().expect("non-empty");
        let next = steps[last]
            .dependents
            .iter()
            .copied()
            .find(|&d| !done[d])
            .expect("an unordered step feeds another unordered step");
        if seen[next] != usize::MAX {
            return path[seen[next]..].to_vec();
        }
        seen[next] = path.len();
        path.push(next);
    }
}

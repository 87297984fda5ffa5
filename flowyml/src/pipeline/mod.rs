//! Pipelines: steps wired by artifact names, validated before they run,
//! run in parallel by the [`scheduler`].
//!
//! [`Pipeline`] is the dynamic form of the guide: `add_step` in any order,
//! run-time inputs, `run()`. `#[pipeline]` builds the same value from a
//! module of steps after checking it at compile time.

mod graph;
mod plan;
pub mod result;
mod scheduler;

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::step::{Resources, Step, StepContext};

pub use result::{PipelineResult, RerunReason, StepRecord, StepStatus};
use scheduler::Outcome;

/// An artifact given to the pipeline at run time.
pub(crate) struct RuntimeInput {
    pub name: String,
    pub value: Artifact,
    pub type_id: TypeId,
    pub type_name: &'static str,
}

/// A named set of steps.
///
/// ```
/// use flowyml::{Pipeline, ParallelExecutor, step};
///
/// #[step(outputs = ["chunk1"])]
/// fn process_chunk1(data: &Vec<u32>) -> u32 { data[..2].iter().sum() }
///
/// #[step(outputs = ["chunk2"])]
/// fn process_chunk2(data: &Vec<u32>) -> u32 { data[2..].iter().sum() }
///
/// // These steps can run in parallel (no dependencies).
/// let mut pipeline = Pipeline::new("parallel_processing");
/// pipeline
///     .input("data", vec![1, 2, 3, 4])
///     .add_step(process_chunk1)
///     .add_step(process_chunk2);
///
/// let executor = ParallelExecutor::new(3)?;
/// let result = pipeline.run_with(&executor)?;
/// assert_eq!((*result.get::<u32>("chunk1")?, *result.get::<u32>("chunk2")?), (3, 7));
/// // The step functions stay plain functions.
/// assert_eq!(process_chunk1(&vec![5, 5]), 10);
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct Pipeline {
    name: String,
    steps: Vec<Arc<dyn Step>>,
    inputs: Vec<RuntimeInput>,
    keep_going: bool,
}

impl Pipeline {
    /// An empty pipeline called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Pipeline {
            name: name.into(),
            steps: Vec::new(),
            inputs: Vec::new(),
            keep_going: false,
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a step; steps may be added in any order.
    pub fn add_step(&mut self, step: impl Step) -> &mut Self {
        self.steps.push(Arc::new(step));
        self
    }

    /// Adds a shared step (e.g. one kept in a registry).
    pub fn add_shared_step(&mut self, step: Arc<dyn Step>) -> &mut Self {
        self.steps.push(step);
        self
    }

    /// Provides artifact `name` at run time; setting it again replaces it.
    pub fn input<T: Any + Send + Sync>(&mut self, name: impl Into<String>, value: T) -> &mut Self {
        let name = name.into();
        self.inputs.retain(|i| i.name != name);
        self.inputs.push(RuntimeInput {
            name,
            value: Arc::new(value),
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        });
        self
    }

    /// Keep running independent steps after a step fails (by default the
    /// run stops starting new steps at the first failure).
    pub fn keep_going(&mut self, keep_going: bool) -> &mut Self {
        self.keep_going = keep_going;
        self
    }

    /// The steps, in the order they were added.
    pub fn steps(&self) -> impl Iterator<Item = &dyn Step> {
        self.steps.iter().map(|s| &**s)
    }

    /// Checks the pipeline without running it.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] listing every problem found.
    pub fn validate(&self) -> Result<()> {
        plan::Plan::build(&self.name, &self.steps, &self.inputs).map(drop)
    }

    /// Runs the pipeline on a shared executor with one worker per core.
    ///
    /// # Errors
    /// See [`run_with`](Self::run_with).
    pub fn run(&self) -> Result<PipelineResult> {
        static DEFAULT: OnceLock<ParallelExecutor> = OnceLock::new();
        let executor = match DEFAULT.get() {
            Some(e) => e,
            None => {
                let e = ParallelExecutor::with_available_parallelism()?;
                DEFAULT.get_or_init(|| e)
            }
        };
        self.run_with(executor)
    }

    /// Runs the pipeline on `executor`'s pool: each step starts as soon as
    /// its inputs exist.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] before anything runs;
    /// [`Error::StepFailed`] naming the first failed step, with the full
    /// result (which steps ran, failed, were skipped) inside.
    pub fn run_with(&self, executor: &ParallelExecutor) -> Result<PipelineResult> {
        let plan = plan::Plan::build(&self.name, &self.steps, &self.inputs)?;
        let started = Instant::now();
        let slots: Vec<OnceLock<Artifact>> = plan.slots.iter().map(|_| OnceLock::new()).collect();
        for (slot, info) in plan.slots.iter().enumerate() {
            if let plan::Producer::Input(i) = info.producer {
                let _ = slots[slot].set(Arc::clone(&self.inputs[i].value));
            }
        }
        let resources = Resources::default();
        let exec = |i: usize| {
            let planned = &plan.steps[i];
            let step = &self.steps[i];
            let spec = step.spec();
            let _span =
                tracing::debug_span!("step", pipeline = %self.name, step = %spec.name).entered();
            let mut ctx = StepContext {
                spec,
                slots: &slots,
                inputs: &planned.inputs,
                outputs: &planned.outputs,
                resources: &resources,
            };
            match step.run(&mut ctx) {
                Ok(()) => match planned
                    .outputs
                    .iter()
                    .position(|&s| slots[s].get().is_none())
                {
                    None => Outcome::Ran(None),
                    Some(j) => Outcome::Failed(format!(
                        "did not produce its output `{}`",
                        spec.outputs[j].name
                    )),
                },
                Err(e) => Outcome::Failed(e.0),
            }
        };
        let timings = scheduler::run(executor.pool(), &plan, self.keep_going, &exec);
        self.finish(&plan, slots, timings, started, executor.max_workers())
    }

    fn finish(
        &self,
        plan: &plan::Plan,
        slots: Vec<OnceLock<Artifact>>,
        timings: Vec<Option<scheduler::Timing>>,
        started: Instant,
        workers: usize,
    ) -> Result<PipelineResult> {
        let steps: Vec<StepRecord> = self
            .steps
            .iter()
            .zip(timings)
            .map(|(step, timing)| {
                let name = step.spec().name.to_string();
                match timing {
                    Some(t) => StepRecord {
                        name,
                        status: t.status,
                        error: t.error,
                        reason: t.reason,
                        start: t.start,
                        duration: t.duration,
                        worker: t.worker,
                        notes: Vec::new(),
                    },
                    None => StepRecord {
                        name,
                        status: StepStatus::Skipped,
                        error: None,
                        reason: None,
                        start: Default::default(),
                        duration: Default::default(),
                        worker: None,
                        notes: Vec::new(),
                    },
                }
            })
            .collect();
        let artifacts = plan
            .slots
            .iter()
            .zip(slots)
            .filter_map(|(info, slot)| {
                slot.into_inner()
                    .map(|a| (info.name.clone(), (a, info.type_name.clone())))
            })
            .collect();
        let result = PipelineResult {
            pipeline: self.name.clone(),
            workers,
            duration: started.elapsed(),
            steps,
            artifacts,
        };
        let first_failure = plan
            .order
            .iter()
            .map(|&i| &result.steps[i])
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| (s.name.clone(), s.error.clone().unwrap_or_default()));
        match first_failure {
            None => Ok(result),
            Some((step, message)) => Err(Error::StepFailed {
                pipeline: self.name.clone(),
                step,
                message,
                result: Box::new(result),
            }),
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|s| s.spec().name.as_ref())
                    .collect::<Vec<_>>(),
            )
            .field(
                "inputs",
                &self
                    .inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

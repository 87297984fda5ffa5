//! Pipelines: steps wired by artifact names, validated before they run,
//! run in parallel by a ready-queue scheduler (its design notes are in
//! `pipeline/scheduler.rs`).
//!
//! [`Pipeline`] is the dynamic form of the guide: `add_step` in any order,
//! run-time inputs, `run()`. `#[pipeline]` builds the same value from a
//! module of steps after checking it at compile time.

mod graph;
mod incremental;
mod plan;
pub mod result;
mod scheduler;

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use std::path::Path;
use std::sync::Mutex;

use crate::artifact::{Artifact, ArtifactCodec, Codec};
use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::incremental::{ArtifactStore, Fingerprint, RunStatus, StoreOptions};
use crate::step::{IntoStep, ResourceProvider, Resources, RunResource, Step, StepContext};
use incremental::{CachedStep, StepCache};

pub use result::{PipelineResult, RerunReason, StepRecord, StepStatus};
use scheduler::Outcome;

/// A per-run resource, with the test of which steps use it.
type OpenedResource = (fn(&crate::step::StepSpec) -> bool, Arc<dyn RunResource>);

/// An artifact given to the pipeline at run time.
pub(crate) struct RuntimeInput {
    pub name: String,
    pub value: Artifact,
    pub type_id: TypeId,
    pub type_name: &'static str,
    /// How to fingerprint the value, for cache keys.
    pub codec: Codec,
    /// The fingerprint of an opaque input: new for each `input_opaque`.
    pub fixed: Option<Fingerprint>,
}

impl RuntimeInput {
    fn fingerprint(&self) -> Result<Fingerprint> {
        match (self.fixed, self.codec.fingerprint(&*self.value)) {
            (Some(fp), _) => Ok(fp),
            (None, Some(f)) => f.map(|f| f.fingerprint),
            (None, None) => unreachable!("inputs without a content hash have a fixed fingerprint"),
        }
    }
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
///     .input("data", vec![1_u32, 2, 3, 4])
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
    /// Each step's output codecs, found once when it is added.
    codecs: Vec<Vec<Codec>>,
    inputs: Vec<RuntimeInput>,
    keep_going: bool,
    no_gpu: bool,
    cache: Option<StepCache>,
    /// The validated plan, kept between runs until a step or an input is
    /// added (a rerun does no name resolution).
    plan: OnceLock<Arc<plan::Plan>>,
}

impl Pipeline {
    /// An empty pipeline called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Pipeline {
            name: name.into(),
            steps: Vec::new(),
            codecs: Vec::new(),
            inputs: Vec::new(),
            keep_going: false,
            no_gpu: false,
            cache: None,
            plan: OnceLock::new(),
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a step: a `#[step]` function, or any [`Step`] value. Steps may
    /// be added in any order.
    pub fn add_step<M>(&mut self, step: impl IntoStep<M>) -> &mut Self {
        self.add_shared_step(step.into_step())
    }

    /// Adds a shared step (e.g. one kept in a registry).
    pub fn add_shared_step(&mut self, step: Arc<dyn Step>) -> &mut Self {
        self.plan = OnceLock::new();
        self.codecs.push(step.codecs());
        self.steps.push(step);
        if let Some(cache) = &mut self.cache {
            cache.grow(self.steps.len());
        }
        self
    }

    /// Provides artifact `name` at run time; setting it again replaces it.
    /// Its content fingerprint (for incremental runs) is the hash of its
    /// serialisation; see [`input_opaque`](Self::input_opaque) for types
    /// that do not serialise.
    pub fn input<T: serde::Serialize + Any + Send + Sync>(
        &mut self,
        name: impl Into<String>,
        value: T,
    ) -> &mut Self {
        self.add_input(name.into(), value, Codec::of_serialize::<T>(), None)
    }

    /// Provides an artifact that brings its own [`ArtifactCodec`] (such as
    /// a polars `DataFrame`).
    pub fn input_artifact<T: ArtifactCodec>(
        &mut self,
        name: impl Into<String>,
        value: T,
    ) -> &mut Self {
        self.add_input(name.into(), value, Codec::of_artifact::<T>(), None)
    }

    /// Provides an artifact with no content hash. Each call counts as a new
    /// value: reruns of this pipeline value reuse what depends on it, a new
    /// process recomputes it.
    pub fn input_opaque<T: Any + Send + Sync>(
        &mut self,
        name: impl Into<String>,
        value: T,
    ) -> &mut Self {
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let fp = crate::incremental::KeyBuilder::new("opaque-input")
            .bytes("process", &std::process::id().to_le_bytes())
            .bytes("time", &nonce.to_le_bytes())
            .bytes("call", &call.to_le_bytes())
            .finish();
        self.add_input(name.into(), value, Codec::opaque(), Some(fp))
    }

    fn add_input<T: Any + Send + Sync>(
        &mut self,
        name: String,
        value: T,
        codec: Codec,
        fixed: Option<Fingerprint>,
    ) -> &mut Self {
        self.plan = OnceLock::new();
        self.inputs.retain(|i| i.name != name);
        self.inputs.push(RuntimeInput {
            name,
            value: Arc::new(value),
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            codec,
            fixed,
        });
        self
    }

    /// Runs without opening a GPU: GPU steps run their CPU fallback, or
    /// fail saying so.
    pub fn no_gpu(&mut self, no_gpu: bool) -> &mut Self {
        self.no_gpu = no_gpu;
        self
    }

    /// Opens the per-run resources some step wants (the GPU once, shared by
    /// every GPU step of the run).
    fn open_resources(&self, resources: &mut Resources) -> Vec<OpenedResource> {
        let mut opened = Vec::new();
        for provider in inventory::iter::<ResourceProvider> {
            if !self.steps.iter().any(|s| (provider.wanted)(s.spec())) {
                continue;
            }
            let disabled = provider.name == "GPU" && self.no_gpu;
            if let Some(resource) = (provider.open)(resources, disabled) {
                opened.push((provider.wanted, resource));
            }
        }
        opened
    }

    /// Makes reruns incremental, in memory: a step reruns only when its
    /// cache key (code, options, inputs, watched files) changed.
    pub fn incremental(&mut self) -> &mut Self {
        if self.cache.is_none() {
            self.cache = Some(StepCache::in_memory(self.steps.len()));
        }
        self
    }

    /// Makes runs incremental across processes, with the persistent cache
    /// in `dir` (created if needed; `.flowyml` by convention).
    ///
    /// # Errors
    /// If the store cannot be opened.
    pub fn cache_dir(&mut self, dir: impl AsRef<Path>) -> Result<&mut Self> {
        self.cache_dir_with(dir, StoreOptions::default())
    }

    /// Like [`cache_dir`](Self::cache_dir), with a size bound or other
    /// options.
    ///
    /// # Errors
    /// If the store cannot be opened.
    pub fn cache_dir_with(
        &mut self,
        dir: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<&mut Self> {
        self.cache = Some(StepCache::on_disk(
            ArtifactStore::open_with(dir, options)?,
            self.steps.len(),
        ));
        Ok(self)
    }

    /// The persistent cache, if the pipeline has one.
    pub fn store(&self) -> Option<&ArtifactStore> {
        self.cache.as_ref().and_then(StepCache::store)
    }

    /// Forces `step` to rerun on the next run (e.g. after its data source
    /// changed in a way it does not watch). Makes the pipeline incremental.
    ///
    /// # Errors
    /// [`Error::UnknownStep`] if no step has that name.
    pub fn invalidate(&mut self, step: &str) -> Result<&mut Self> {
        let Some(index) = self.steps.iter().position(|s| s.spec().name == step) else {
            return Err(Error::UnknownStep {
                pipeline: self.name.clone(),
                step: step.to_owned(),
                hint: flowyml_suggest::did_you_mean(
                    step,
                    self.steps.iter().map(|s| s.spec().name.as_ref()),
                ),
            });
        };
        self.incremental();
        if let Some(cache) = &mut self.cache {
            cache.invalidate(index);
        }
        Ok(self)
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
        self.plan().map(drop)
    }

    fn plan(&self) -> Result<Arc<plan::Plan>> {
        if let Some(plan) = self.plan.get() {
            return Ok(Arc::clone(plan));
        }
        let plan = Arc::new(plan::Plan::build(&self.name, &self.steps, &self.inputs)?);
        Ok(Arc::clone(self.plan.get_or_init(|| plan)))
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
        let plan = self.plan()?;
        let started = Instant::now();
        let slots: Vec<OnceLock<Artifact>> = plan.slots.iter().map(|_| OnceLock::new()).collect();
        for (slot, info) in plan.slots.iter().enumerate() {
            if let plan::Producer::Input(i) = info.producer {
                let _ = slots[slot].set(Arc::clone(&self.inputs[i].value));
            }
        }
        let mut resources = Resources::default();
        let opened = self.open_resources(&mut resources);
        let fingerprints: Vec<OnceLock<Fingerprint>> = match &self.cache {
            Some(_) => plan.slots.iter().map(|_| OnceLock::new()).collect(),
            None => Vec::new(),
        };
        if self.cache.is_some() {
            for (slot, info) in plan.slots.iter().enumerate() {
                if let plan::Producer::Input(i) = info.producer {
                    let _ = fingerprints[slot].set(self.inputs[i].fingerprint()?);
                }
            }
        }
        let history = Mutex::new(Vec::new());
        let run_id = match self.store() {
            Some(store) => Some(store.begin_run(&self.name)?),
            None => None,
        };
        let exec = |i: usize| {
            let planned = &plan.steps[i];
            let step = &self.steps[i];
            let spec = step.spec();
            let _span =
                tracing::debug_span!("step", pipeline = %self.name, step = %spec.name).entered();
            let run = || {
                let exits: Vec<_> = opened
                    .iter()
                    .filter(|(wanted, _)| wanted(spec))
                    .map(|(_, r)| r.enter(spec))
                    .collect();
                let mut ctx = StepContext {
                    spec,
                    slots: &slots,
                    inputs: &planned.inputs,
                    outputs: &planned.outputs,
                    resources: &resources,
                    notes: Vec::new(),
                };
                let result = step.run(&mut ctx);
                let mut notes = ctx.notes;
                notes.extend(exits.into_iter().flat_map(|exit| exit()));
                match result {
                    Ok(()) => match planned
                        .outputs
                        .iter()
                        .position(|&s| slots[s].get().is_none())
                    {
                        None => Outcome::Ran {
                            reason: None,
                            notes,
                        },
                        Some(j) => Outcome::Failed(format!(
                            "did not produce its output `{}`",
                            spec.outputs[j].name
                        )),
                    },
                    Err(e) => Outcome::Failed(e.0),
                }
            };
            match &self.cache {
                None => run(),
                Some(cache) => {
                    let cached = CachedStep {
                        index: i,
                        spec,
                        codecs: &self.codecs[i],
                        inputs: &planned.inputs,
                        outputs: &planned.outputs,
                        slots: &slots,
                        fingerprints: &fingerprints,
                    };
                    cache.execute(&cached, &history, run)
                }
            }
        };
        let records = scheduler::run(executor.pool(), &plan, self.keep_going, &exec);
        let result = self.finish(&plan, slots, records, started, executor.max_workers());
        if let (Some(store), Some(run)) = (self.store(), run_id) {
            let status = if result.is_ok() {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            let recorded = store.record(
                run,
                &history
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            // Finished even if its steps could not be recorded, so that the
            // history does not show the run as still going.
            store.finish_run(run, status)?;
            recorded?;
        }
        result
    }

    fn finish(
        &self,
        plan: &Arc<plan::Plan>,
        slots: Vec<OnceLock<Artifact>>,
        steps: Vec<StepRecord>,
        started: Instant,
        workers: usize,
    ) -> Result<PipelineResult> {
        let artifacts = slots.into_iter().map(OnceLock::into_inner).collect();
        let result = PipelineResult {
            pipeline: self.name.clone(),
            workers,
            duration: started.elapsed(),
            steps,
            artifacts,
            plan: Arc::clone(plan),
        };
        let first_failure = plan
            .order
            .iter()
            .map(|&i| &result.steps[i])
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| (s.name.to_string(), s.error.clone().unwrap_or_default()));
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

//! Pipelines: steps wired by artifact names, validated before they run,
//! run in parallel by the one DAG engine (`dag`), each step
//! as soon as its inputs exist.
//!
//! [`Pipeline`] is the dynamic form: `add_step` in any order, run-time
//! inputs, `run()`. `#[pipeline]` builds the same value from a module of
//! steps after checking it at compile time. This module is the builder;
//! a run's state lives in `run.rs` (`Run`), the validated plan
//! in `plan.rs`, the step cache and its key in `step_cache.rs`.

mod graph;
mod input;
mod plan;
mod result;
mod run;
mod step_cache;

use std::any::{Any, TypeId};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::artifact::{ArtifactCodec, Codec};
use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::incremental::fingerprint::{Fingerprint, KeyBuilder};
use crate::incremental::store::{ArtifactStore, StoreOptions};
use crate::resource::GPU;
use crate::step::{IntoStep, Step};
use input::RuntimeInput;
use step_cache::StepCache;

pub use crate::record::{PipelineResult, RerunReason, StepRecord, StepStatus};

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
    /// Resources not to open, by name (see [`crate::resource`]).
    disabled_resources: Vec<String>,
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
            disabled_resources: Vec::new(),
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
        let fp = KeyBuilder::new("opaque-input")
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

    /// Runs without opening the per-run resource `name` (see
    /// [`crate::resource`]): steps that use it run their fallback, or fail
    /// saying so.
    pub fn disable_resource(&mut self, name: &str) -> &mut Self {
        if !self.disabled_resources.iter().any(|d| d == name) {
            self.disabled_resources.push(name.to_owned());
        }
        self
    }

    /// Undoes [`disable_resource`](Self::disable_resource).
    pub fn enable_resource(&mut self, name: &str) -> &mut Self {
        self.disabled_resources.retain(|d| d != name);
        self
    }

    /// Runs without opening a GPU (`no_gpu(true)` disables the
    /// [`resource::GPU`](crate::resource::GPU) resource): GPU steps run their CPU
    /// fallback, or fail saying so.
    pub fn no_gpu(&mut self, no_gpu: bool) -> &mut Self {
        if no_gpu {
            self.disable_resource(GPU)
        } else {
            self.enable_resource(GPU)
        }
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
        let definition = run::Definition {
            name: &self.name,
            steps: &self.steps,
            codecs: &self.codecs,
            inputs: &self.inputs,
            keep_going: self.keep_going,
            disabled_resources: &self.disabled_resources,
            cache: self.cache.as_ref(),
        };
        let mut run = run::Run::new(definition, &plan, executor.max_workers())?;
        run.seed_inputs()?;
        run.execute(executor.pool())?;
        run.finish()
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

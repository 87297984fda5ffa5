//! Pipelines: steps wired by artifact names, validated before they run,
//! run in parallel by the one DAG engine (`dag`), each step
//! as soon as its inputs exist.
//!
//! [`Pipeline`] is the dynamic form: `add_step` in any order, run-time
//! inputs, `run()`. `#[pipeline]` builds the same value from a module of
//! steps after checking it at compile time. A run gives a
//! [`PipelineResult`]: every artifact, a record per step, and pictures of
//! it ([`PipelineResult::to_html`], [`Pipeline::to_svg`]).

// This module is the builder; a run's state lives in `run.rs` (`Run`), the
// validated plan in `plan.rs`, the step cache and its key in
// `step_cache.rs`, the pictures in `svg.rs` and `report.rs`.

mod buffers;
mod catalog;
mod control;
mod describe;
mod detached;
mod graph;
mod input;
mod plan;
mod report;
mod result;
mod run;
mod step_cache;
mod svg;

use std::any::{Any, TypeId};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::artifact::{ArtifactCodec, Codec};
use crate::error::{Error, Result};
use crate::executor::ParallelExecutor;
use crate::incremental::fingerprint::{Fingerprint, KeyBuilder};
use crate::incremental::store::{ArtifactStore, StoreOptions};
use crate::resource::GPU;
use crate::step::{ArtifactSpec, IntoStep, Step};
pub use input::RequiredInput;
use input::RuntimeInput;
use step_cache::StepCache;

pub use crate::record::{RerunReason, StepStatus};
pub use control::{Canceller, Progress};
pub use result::{JSON_SCHEMA_VERSION, PipelineResult, StepRecord};

/// The version of [`Pipeline::describe`]'s format (`plan --json`).
pub const PLAN_FORMAT_VERSION: u32 = 1;

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
    /// The steps' names, ports and codecs, indexed as each is added.
    catalog: catalog::Catalog,
    inputs: Vec<RuntimeInput>,
    keep_going: bool,
    /// Resources not to open, by name (see [`crate::resource`]).
    disabled_resources: Vec<String>,
    /// Retries and first backoff for steps that set none.
    retries: u32,
    backoff: std::time::Duration,
    /// The longest a run may take.
    timeout: Option<std::time::Duration>,
    canceller: Canceller,
    progress: Option<control::ProgressFn>,
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
            catalog: catalog::Catalog::default(),
            inputs: Vec::new(),
            keep_going: false,
            disabled_resources: Vec::new(),
            retries: 0,
            backoff: std::time::Duration::from_millis(200),
            timeout: None,
            canceller: Canceller::default(),
            progress: None,
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
        self.catalog.add(&step);
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
        self.add_runtime_input(RuntimeInput {
            name,
            value: Arc::new(value),
            type_id: TypeId::of::<T>(),
            type_name: crate::type_name::of::<T>(),
            codec,
            fixed,
        })
    }

    fn add_runtime_input(&mut self, input: RuntimeInput) -> &mut Self {
        self.plan = OnceLock::new();
        self.catalog.intern(&input.name);
        self.inputs.retain(|i| i.name != input.name);
        self.inputs.push(input);
        self
    }

    /// The run-time inputs the steps need: the artifacts they read that no
    /// step produces, each with the type and codec of its first reader.
    pub fn required_inputs(&self) -> Vec<RequiredInput> {
        let produced: std::collections::HashSet<&str> = self
            .steps
            .iter()
            .flat_map(|s| s.spec().outputs.iter().map(|o| o.name.as_ref()))
            .collect();
        let mut required: Vec<RequiredInput> = Vec::new();
        for (si, step) in self.steps.iter().enumerate() {
            let spec = step.spec();
            for (k, input) in spec.inputs.iter().enumerate() {
                if produced.contains(input.name.as_ref()) {
                    continue;
                }
                match required.iter_mut().find(|r| r.name == input.name) {
                    Some(r) => r.consumers.push(spec.name.to_string()),
                    None => required.push(RequiredInput {
                        name: input.name.to_string(),
                        type_name: input.type_name.to_string(),
                        kind: self.catalog.input_codecs(si)[k].kind(),
                        given: self.inputs.iter().any(|i| i.name == input.name),
                        consumers: vec![spec.name.to_string()],
                    }),
                }
            }
        }
        required
    }

    /// The first step reading input `name`, with the input's spec and codec.
    fn reader_of(&self, name: &str) -> Result<(&ArtifactSpec, Codec)> {
        self.steps
            .iter()
            .enumerate()
            .find_map(|(si, step)| {
                let k = step.spec().inputs.iter().position(|i| i.name == name)?;
                Some((&step.spec().inputs[k], self.catalog.input_codecs(si)[k]))
            })
            .ok_or_else(|| {
                let required = self.required_inputs();
                let hint =
                    flowyml_suggest::did_you_mean(name, required.iter().map(|r| r.name.as_str()));
                Error::UnknownInput {
                    pipeline: self.name.clone(),
                    name: name.to_owned(),
                    hint: if hint.is_empty() {
                        let names: Vec<String> =
                            required.iter().map(|r| format!("`{}`", r.name)).collect();
                        if names.is_empty() {
                            "; it reads no input".to_owned()
                        } else {
                            format!("; its inputs are {}", names.join(", "))
                        }
                    } else {
                        hint
                    },
                }
            })
    }

    /// Provides input `name` from JSON text (a frame from the path of its
    /// file), decoded as the type its first reader declares: how the
    /// command line gives inputs. Its fingerprint is its content's, as if
    /// the value had been given with [`input`](Self::input).
    ///
    /// ```
    /// # use flowyml::{Pipeline, step};
    /// #[step(outputs = ["total"])]
    /// fn total(values: &Vec<u32>) -> u32 { values.iter().sum() }
    /// let mut p = Pipeline::new("sum");
    /// p.add_step(total).input_json("values", "[1, 2, 3]")?;
    /// assert_eq!(*p.run()?.get::<u32>("total")?, 6);
    /// let err = p.input_json("values", "[1, -2]").unwrap_err().to_string();
    /// assert!(err.starts_with("input `values`: expected `Vec<u32>`"), "{err}");
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownInput`] if no step reads `name`; [`Error::Input`] if
    /// the reader's type cannot be read from outside the program, or the
    /// text is not a value of it (with serde's line and column).
    pub fn input_json(&mut self, name: &str, json: &str) -> Result<&mut Self> {
        let input = self.json_input(name, json)?;
        Ok(self.add_runtime_input(input))
    }

    /// Input `name` decoded from `json` into the type its readers declare.
    fn json_input(&self, name: &str, json: &str) -> Result<RuntimeInput> {
        let (spec, codec) = self.reader_of(name)?;
        let value = match codec.from_json(json) {
            None => return Err(not_decodable(name, spec)),
            Some(Err(e)) => {
                let message = match e {
                    Error::Decode { message, .. } => message,
                    other => other.to_string(),
                };
                return Err(Error::Input {
                    input: name.to_owned(),
                    message: format!("expected `{}`: {message}", spec.type_name),
                });
            }
            Some(Ok(value)) => value,
        };
        let input = RuntimeInput {
            name: name.to_owned(),
            value,
            type_id: (spec.type_id)(),
            type_name: spec.type_name.clone(),
            codec,
            fixed: None,
        };
        Ok(input)
    }

    /// Provides input `name` from bytes in the cache's own encoding (what
    /// another process of this program stored or sent): how `run-step`
    /// receives its inputs. The fingerprint is the hash of the bytes, the
    /// same everywhere.
    ///
    /// # Errors
    /// As [`input_json`](Self::input_json), for bytes that do not decode.
    pub fn input_encoded(&mut self, name: &str, bytes: &[u8]) -> Result<&mut Self> {
        let (spec, codec) = self.reader_of(name)?;
        let value = match codec.decode(bytes) {
            None => return Err(not_decodable(name, spec)),
            Some(Err(e)) => {
                return Err(Error::Input {
                    input: name.to_owned(),
                    message: format!("not an encoded `{}`: {e}", spec.type_name),
                });
            }
            Some(Ok(value)) => value,
        };
        let input = RuntimeInput {
            name: name.to_owned(),
            value,
            type_id: (spec.type_id)(),
            type_name: spec.type_name.clone(),
            codec,
            fixed: Some(Fingerprint::of_bytes(bytes)),
        };
        Ok(self.add_runtime_input(input))
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

    /// Retries each step that fails up to `retries` times (steps that set
    /// their own, `#[step(retries = n)]`, keep theirs), waiting `backoff`
    /// before the first retry (200 ms by default) and twice as long, with
    /// jitter, before each next. Every attempt's error is in the step's
    /// record; a step that fails every attempt fails as it would have.
    pub fn retries(&mut self, retries: u32, backoff: std::time::Duration) -> &mut Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Bounds each run to `limit`: past it, no step starts, running steps
    /// see [`StepContext::is_cancelled`](crate::step::StepContext::is_cancelled),
    /// and the run fails with [`Error::TimedOut`] once they end. (A step
    /// that never ends holds its run; give it its own time limit,
    /// `#[step(timeout = "30s")]`, which abandons it.)
    pub fn timeout(&mut self, limit: std::time::Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }

    /// A handle that cancels this pipeline's runs from another thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Calls `watch` as each step of a run starts and ends, on the worker
    /// running it (keep it quick): what a progress bar draws from.
    pub fn on_progress(
        &mut self,
        watch: impl Fn(Progress<'_>) + Send + Sync + 'static,
    ) -> &mut Self {
        self.progress = Some(std::sync::Arc::new(watch));
        self
    }

    /// Keep running independent steps after a step fails (by default the
    /// run stops starting new steps at the first failure).
    pub fn keep_going(&mut self, keep_going: bool) -> &mut Self {
        self.keep_going = keep_going;
        self
    }

    /// The names of the pipeline's artifacts: run-time inputs first, then
    /// each step's outputs in the order the steps were added.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] if it does not validate.
    pub fn artifact_names(&self) -> Result<Vec<String>> {
        Ok(self.plan()?.artifacts.names().map(str::to_owned).collect())
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
        let plan = Arc::new(plan::Plan::build(
            &self.name,
            &self.catalog,
            &self.steps,
            &self.inputs,
        )?);
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
            catalog: &self.catalog,
            inputs: &self.inputs,
            keep_going: self.keep_going,
            disabled_resources: &self.disabled_resources,
            cache: self.cache.as_ref(),
            retries: self.retries,
            backoff: self.backoff,
            timeout: self.timeout,
            canceller: &self.canceller,
            progress: self.progress.as_ref(),
        };
        let mut run = run::Run::new(definition, &plan, executor.max_workers())?;
        run.seed_inputs()?;
        run.execute(executor.pool())?;
        run.finish(&plan)
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

fn not_decodable(name: &str, spec: &ArtifactSpec) -> Error {
    Error::Input {
        input: name.to_owned(),
        message: format!(
            "its readers take a `{}`, which cannot be given from outside the program: give it in code with `Pipeline::input`",
            spec.type_name
        ),
    }
}

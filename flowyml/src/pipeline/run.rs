//! [`Run`]: the state of one run of a pipeline, from its seeded inputs to
//! its [`PipelineResult`].
//!
//! A run is a [`dag::Visitor`]: the one DAG engine ([`dag::run`]) calls
//! [`Run::visit`] for each step once the steps it waits for have finished,
//! and the run executes the step (or serves it from the step cache) and
//! writes its record.
//!
//! # Cost per step
//! One clock read (a step continued inline on a worker starts when its
//! predecessor's end was read), one `catch_unwind` frame, the step's own
//! call through its `dyn Step`, and three relaxed stores for its record.
//! Artifacts live in `OnceLock` slots written once and shared by `Arc`;
//! nothing is copied. Errors, rerun reasons and notes, which few steps
//! have, go to one side table behind a mutex. After the run, the calling
//! thread turns the records into [`StepRecord`]s without allocating per
//! step (names are the plan's shared `Arc<str>`s).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use super::input::RuntimeInput;
use super::plan::Plan;
use super::step_cache::{CachedStep, Outcome, StepCache};
use crate::artifact::Codec;
use crate::dag::{self, Visitor};
use crate::error::{BoxError, Error, Result, panic_message};
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::store::ArtifactStore;
use crate::incremental::store::{RunId, RunStatus, StepExecution};
use crate::record::{self, Details, PipelineResult, RawRecord, StepStatus};
use crate::resource::{ResourceGuard, ResourceProvider, Resources, RunResource};
use crate::slot::Value;
use crate::step::{Step, StepContext};
use crate::sync::lock;

/// What a run reads of its pipeline.
pub(crate) struct Definition<'p> {
    pub name: &'p str,
    pub steps: &'p [Arc<dyn Step>],
    /// Each step's output codecs.
    pub codecs: &'p [Vec<Codec>],
    /// The run-time inputs, in slot order.
    pub inputs: &'p [RuntimeInput],
    pub keep_going: bool,
    /// Resources not to open, by name.
    pub disabled_resources: &'p [String],
    pub cache: Option<&'p StepCache>,
}

impl Definition<'_> {
    fn store(&self) -> Option<&ArtifactStore> {
        self.cache.and_then(StepCache::store)
    }
}

/// One run of a pipeline.
pub(crate) struct Run<'p> {
    /// The pipeline being run: its steps, codecs, options and cache.
    pipeline: Definition<'p>,
    /// Its validated plan.
    plan: &'p Plan,
    /// Every artifact slot, written once by its producer (or seeded from a
    /// run-time input).
    slots: Vec<OnceLock<Value>>,
    /// Each slot's content fingerprint, where the pipeline has a cache
    /// (empty otherwise).
    fingerprints: Vec<OnceLock<Fingerprint>>,
    /// The resources opened for this run.
    resources: Resources,
    /// The opened resources by name, for entering them around the steps
    /// that declare them.
    opened: Vec<(&'static str, Arc<dyn RunResource>)>,
    /// One record per step.
    records: Vec<RawRecord>,
    /// Errors, rerun reasons and notes, for the steps that have any.
    details: Mutex<Vec<(u32, Details)>>,
    /// The steps as the store's history records them (only with a store).
    history: Mutex<Vec<StepExecution>>,
    /// The run's id in the store's history.
    run_id: Option<RunId>,
    /// Set by a failed step unless the pipeline keeps going: no step
    /// starts after it.
    abort: AtomicBool,
    /// When the run started, in [`clock`] ticks; records count from it.
    origin: u64,
    /// When the run started, for its wall time.
    started: Instant,
    /// The clock, at hand.
    clock: &'static quanta::Clock,
    /// The executor's worker count, for the result.
    workers: usize,
    /// Whether `tracing` wants debug events (read once per run).
    trace_steps: bool,
}

impl<'p> Run<'p> {
    /// A run of `pipeline` on `workers` workers: opens the resources its
    /// steps declare.
    pub(crate) fn new(pipeline: Definition<'p>, plan: &'p Plan, workers: usize) -> Result<Self> {
        let mut resources = Resources::default();
        let opened = open_resources(&pipeline, &mut resources);
        let slots = plan.producers.iter().map(|_| OnceLock::new()).collect();
        let fingerprints = match pipeline.cache {
            Some(_) => plan.producers.iter().map(|_| OnceLock::new()).collect(),
            None => Vec::new(),
        };
        Ok(Run {
            pipeline,
            plan,
            slots,
            fingerprints,
            resources,
            opened,
            records: (0..plan.steps()).map(|_| RawRecord::default()).collect(),
            details: Mutex::new(Vec::new()),
            history: Mutex::new(Vec::new()),
            run_id: None,
            abort: AtomicBool::new(false),
            origin: 0,
            started: Instant::now(),
            clock: record::clock(),
            workers,
            trace_steps: tracing::enabled!(tracing::Level::DEBUG),
        })
    }

    /// Puts the run-time inputs in their slots (they are the first slots),
    /// with their fingerprints where there is a cache.
    ///
    /// # Errors
    /// If an input's fingerprint cannot be computed (its encoding failed).
    pub(crate) fn seed_inputs(&mut self) -> Result<()> {
        for (slot, input) in self.pipeline.inputs.iter().enumerate() {
            let _ = self.slots[slot].set(Value::Shared(Arc::clone(&input.value)));
            if let Some(fp) = self.fingerprints.get(slot) {
                let _ = fp.set(input.fingerprint()?);
            }
        }
        Ok(())
    }

    /// Starts the run in the store's history (where there is a store) and
    /// runs every step on `pool`, each as soon as its inputs exist.
    ///
    /// # Errors
    /// If the history cannot be written.
    pub(crate) fn execute(&mut self, pool: &rayon::ThreadPool) -> Result<()> {
        if let Some(store) = self.pipeline.store() {
            self.run_id = Some(store.begin_run(self.pipeline.name)?);
        }
        self.started = Instant::now();
        self.origin = self.clock.raw();
        dag::run(Some(pool), &self.plan.dag, &*self);
        Ok(())
    }

    /// Executes step `i` (or serves it from the cache).
    fn execute_step(&self, i: usize) -> Outcome {
        if self.trace_steps {
            // A span per step costs as much as a no-op step when nobody
            // listens: made only when debug events are wanted.
            let name = &self.pipeline.steps[i].spec().name;
            let _span = tracing::debug_span!("step", pipeline = %self.pipeline.name, step = %name)
                .entered();
            return self.serve_or_call(i);
        }
        self.serve_or_call(i)
    }

    fn serve_or_call(&self, i: usize) -> Outcome {
        let step = &*self.pipeline.steps[i];
        match self.pipeline.cache {
            None => self.call(i, step),
            Some(cache) => {
                let cached = CachedStep {
                    index: i,
                    spec: step.spec(),
                    codecs: &self.pipeline.codecs[i],
                    inputs: self.plan.inputs_of(i),
                    outputs: self.plan.outputs_of(i),
                    slots: &self.slots,
                    fingerprints: &self.fingerprints,
                };
                cache.execute(&cached, &self.history, || self.call(i, step))
            }
        }
    }

    /// Calls step `i`'s code. The common case, a step that uses no
    /// resource, reads nothing of the step but its code: the plan has its
    /// slots.
    #[inline]
    fn call(&self, i: usize, step: &dyn Step) -> Outcome {
        if self.plan.uses_resources(i) {
            return self.call_with_resources(i, step);
        }
        let mut ctx = self.context(i, step);
        let result = step.run(&mut ctx);
        self.outcome(i, step, result, ctx)
    }

    /// [`call`](Self::call) for a step that uses resources: entered around
    /// it, given back however it ends, their notes in its record.
    #[cold]
    fn call_with_resources(&self, i: usize, step: &dyn Step) -> Outcome {
        let spec = step.spec();
        let mut guards = self.enter_resources(&spec.resources, &spec.name);
        let mut ctx = self.context(i, step);
        let result = step.run(&mut ctx);
        for guard in &mut guards {
            ctx.notes.extend(guard.notes());
        }
        drop(guards);
        self.outcome(i, step, result, ctx)
    }

    #[inline]
    fn context(&self, i: usize, step: &'p dyn Step) -> StepContext<'_> {
        StepContext {
            spec: step.spec(),
            slots: &self.slots,
            inputs: self.plan.inputs_of(i),
            outputs: self.plan.outputs_of(i),
            resources: &self.resources,
            notes: Vec::new(),
            misuse: None,
        }
    }

    /// What a call of step `i` gave: a misuse of its context, or a missing
    /// output, fails it.
    #[inline]
    fn outcome(
        &self,
        i: usize,
        step: &dyn Step,
        result: Result<(), BoxError>,
        ctx: StepContext<'_>,
    ) -> Outcome {
        if let Some(misuse) = ctx.misuse {
            return Outcome::Failed(misuse.into());
        }
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        let outputs = self.plan.outputs_of(i);
        match outputs.clone().position(|s| self.slots[s].get().is_none()) {
            None => Outcome::Ran {
                reason: None,
                notes: ctx.notes,
            },
            Some(j) => Outcome::Failed(
                format!(
                    "did not produce its output `{}`",
                    step.spec().outputs[j].name
                )
                .into(),
            ),
        }
    }

    /// Enters the opened resources a step declares, in declaration order.
    fn enter_resources(&self, wanted: &[&str], step: &str) -> Vec<Box<dyn ResourceGuard + '_>> {
        self.opened
            .iter()
            .filter(|(name, _)| wanted.contains(name))
            .map(|(_, resource)| resource.enter(step))
            .collect()
    }

    /// Writes step `i`'s record; `started` is when it became ready on its
    /// worker and `finished` when it ended.
    fn record(
        &self,
        i: usize,
        outcome: Outcome,
        worker: Option<usize>,
        started: u64,
        finished: u64,
    ) -> bool {
        let (status, details) = match outcome {
            Outcome::Ran { reason, notes } => (
                StepStatus::Ran,
                (reason.is_some() || !notes.is_empty()).then(|| Details {
                    error: None,
                    reason,
                    notes,
                }),
            ),
            Outcome::Cached => (StepStatus::Cached, None),
            Outcome::Failed(error) => (
                StepStatus::Failed,
                Some(Details {
                    error: Some((error.to_string(), Arc::from(error))),
                    reason: None,
                    notes: Vec::new(),
                }),
            ),
        };
        if let Some(details) = details {
            lock(&self.details).push((i as u32, details));
        }
        let record = &self.records[i];
        record.start.store(started, Ordering::Relaxed);
        record.end.store(finished, Ordering::Relaxed);
        record
            .state
            .store(RawRecord::state(status, worker), Ordering::Relaxed);
        status != StepStatus::Failed
    }

    /// The run's result, the store's history finished; `Err` naming the
    /// first failed step (in topological order) if any step failed.
    pub(crate) fn finish(self) -> Result<PipelineResult> {
        let mut details = self
            .details
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        details.sort_unstable_by_key(|(step, _)| *step);
        let result = PipelineResult {
            pipeline: self.pipeline.name.to_owned(),
            workers: self.workers,
            duration: self.started.elapsed(),
            // The scope has joined every worker: their writes are visible
            // from here on (see `dag`).
            records: self.records,
            origin: self.origin,
            details,
            step_names: Arc::clone(&self.plan.names),
            artifacts: self.slots,
            index: Arc::clone(&self.plan.artifacts),
            producers: Arc::clone(&self.plan.producers),
        };
        let first_failure = self
            .plan
            .order
            .iter()
            .map(|&i| i as usize)
            .find(|&i| result.records[i].status() == StepStatus::Failed);
        if let (Some(store), Some(run)) = (self.pipeline.store(), self.run_id) {
            let status = if first_failure.is_none() {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            let history = self
                .history
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            let recorded = store.record(run, &history);
            // Finished even if its steps could not be recorded, so that the
            // history does not show the run as still going.
            store.finish_run(run, status)?;
            recorded?;
        }
        match first_failure {
            None => Ok(result),
            Some(i) => {
                let record = result.record(i);
                let (step, message) = (
                    record.name.to_owned(),
                    record.error.unwrap_or_default().to_owned(),
                );
                Err(Error::StepFailed {
                    pipeline: result.pipeline.clone(),
                    step,
                    source: result
                        .cause(i)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(BoxError::from(message.clone()))),
                    message,
                    result: Box::new(result),
                })
            }
        }
    }
}

impl Visitor for Run<'_> {
    /// This worker, and when the previous step on it ended, which is when
    /// the next one became ready.
    type Carry = (Option<usize>, u64);

    fn start(&self) -> Self::Carry {
        (rayon::current_thread_index(), self.clock.raw())
    }

    fn visit(&self, i: usize, (worker, started): &mut Self::Carry) -> bool {
        let outcome =
            catch_unwind(AssertUnwindSafe(|| self.execute_step(i))).unwrap_or_else(|payload| {
                Outcome::Failed(format!("panicked: {}", panic_message(&*payload)).into())
            });
        let finished = self.clock.raw();
        let ok = self.record(i, outcome, *worker, *started, finished);
        *started = finished;
        if !ok && !self.pipeline.keep_going {
            self.abort.store(true, Ordering::Relaxed);
        }
        ok
    }

    fn stopped(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// Opens each registered resource that some step declares, once for the
/// run (disabled ones record why they are absent).
fn open_resources(
    pipeline: &Definition<'_>,
    resources: &mut Resources,
) -> Vec<(&'static str, Arc<dyn RunResource>)> {
    let mut opened = Vec::new();
    for provider in inventory::iter::<ResourceProvider> {
        if !pipeline
            .steps
            .iter()
            .any(|s| s.spec().resources.contains(&provider.name))
        {
            continue;
        }
        let disabled = pipeline
            .disabled_resources
            .iter()
            .any(|d| d == provider.name);
        if let Some(resource) = (provider.open)(resources, disabled) {
            opened.push((provider.name, resource));
        }
    }
    opened
}

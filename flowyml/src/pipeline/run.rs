//! [`Run`]: the state of one run of a pipeline, from its seeded inputs to
//! its [`PipelineResult`].
//!
//! A run is a [`dag::Visitor`]: the one DAG engine ([`dag::run`]) calls
//! [`Run::visit`] for each step once the steps it waits for have finished,
//! and the run executes the step (or serves it from the step cache),
//! retries it if it fails and may, and writes its record.
//!
//! # Cost per step
//! One raw clock read (a step continued inline on a worker starts when its
//! predecessor's end was read), one `catch_unwind` frame, the step's
//! code, and three relaxed stores for its record. A closure step's code is
//! called from the catalog's flat array of closures ([`Step::body`]), so a
//! run does not load each step's own heap object; a closure that captures
//! nothing, or whose `Copy` captures are kept inline there, is called
//! without touching memory of its own. Artifacts live in `WriteOnce`
//! slots, written with one compare-and-swap and read with one load: shared
//! values by `Arc`, scalars inline. Errors, rerun reasons and notes, which
//! few steps have, go to one side table behind a mutex. Retries, time limits, the
//! progress callback and the span per step cost a branch each when unused.
//!
//! # Stopping
//! A run stops starting steps when a step fails (unless the pipeline keeps
//! going), when its [`Canceller`](super::Canceller) is cancelled, or when
//! its time limit passes (a watchdog thread sets the run's stop flag).
//! Running steps finish; they can poll the flag through their context.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::catalog::Catalog;
use super::control::{self, Canceller, Progress, ProgressFn, Watchdog};
use super::detached::{self, Attempt};
use super::input::RuntimeInput;
use super::plan::Plan;
use super::result::PipelineResult;
use super::step_cache::{CachedStep, Outcome, StepCache};
use crate::dag::{self, Visitor};
use crate::error::{BoxError, Error, Result, panic_message};
use crate::incremental::fingerprint::Fingerprint;
use crate::incremental::store::{ArtifactStore, RunStatus, RunWriter};
use crate::record::{self, Details, RawRecord, StepStatus};
use crate::resource::{ResourceGuard, ResourceProvider, Resources, RunResource};
use crate::slot::Value;
use crate::step::{Gathered, Step, StepContext};
use crate::sync::lock;
use crate::write_once::WriteOnce;

/// What a run reads of its pipeline.
pub(crate) struct Definition<'p> {
    pub name: &'p str,
    pub steps: &'p [Arc<dyn Step>],
    /// Each step's output codecs.
    pub catalog: &'p Catalog,
    /// The run-time inputs, in slot order.
    pub inputs: &'p [RuntimeInput],
    pub keep_going: bool,
    /// Resources not to open, by name.
    pub disabled_resources: &'p [String],
    pub cache: Option<&'p StepCache>,
    /// Retries and first backoff for steps that do not set their own.
    pub retries: u32,
    pub backoff: Duration,
    /// The whole run's time limit.
    pub timeout: Option<Duration>,
    pub canceller: &'p Canceller,
    pub progress: Option<&'p ProgressFn>,
}

impl<'p> Definition<'p> {
    fn store(&self) -> Option<&'p ArtifactStore> {
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
    slots: Vec<WriteOnce<Value>>,
    /// Each slot's content fingerprint and each step's cache key, where the
    /// pipeline has a cache (empty otherwise).
    fingerprints: Vec<WriteOnce<Fingerprint>>,
    keys: Vec<WriteOnce<Fingerprint>>,
    /// The resources opened for this run (shared with the threads of steps
    /// that have a time limit).
    resources: Arc<Resources>,
    /// The opened resources by name, for entering them around the steps
    /// that declare them.
    opened: Vec<(&'static str, Arc<dyn RunResource>)>,
    /// One record per step.
    records: Vec<RawRecord>,
    /// Errors, rerun reasons and notes, for the steps that have any.
    details: Mutex<Vec<(u32, Details)>>,
    /// The run's writes to the store (only with a store): its entry in the
    /// history, its steps' records and cache entries, group-committed.
    writer: Option<RunWriter<'p>>,
    /// Set when no step may start any more: a failure (unless the pipeline
    /// keeps going), the time limit, a cancellation.
    stop: Arc<AtomicBool>,
    /// Whether the time limit passed.
    timed_out: Arc<AtomicBool>,
    /// When the run started, in [`record::clock`] ticks; records count
    /// from it.
    origin: u64,
    /// When the run started, for its wall time and its report.
    started: Instant,
    started_at: SystemTime,
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
        let slots = plan.producers.iter().map(|_| WriteOnce::new()).collect();
        let (fingerprints, keys) = match pipeline.cache {
            Some(_) => (
                plan.producers.iter().map(|_| WriteOnce::new()).collect(),
                (0..plan.steps()).map(|_| WriteOnce::new()).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Run {
            pipeline,
            plan,
            slots,
            fingerprints,
            keys,
            resources: Arc::new(resources),
            opened,
            records: (0..plan.steps()).map(|_| RawRecord::default()).collect(),
            details: Mutex::new(Vec::new()),
            writer: None,
            stop: Arc::new(AtomicBool::new(false)),
            timed_out: Arc::new(AtomicBool::new(false)),
            origin: 0,
            started: Instant::now(),
            started_at: SystemTime::now(),
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
        // A read-only cache serves its hits and records nothing, not even
        // the run (each step that ran says it was not stored).
        if let Some(store) = self.pipeline.store().filter(|s| !s.is_read_only()) {
            self.writer = Some(RunWriter::begin(store, self.pipeline.name)?);
        }
        self.started = Instant::now();
        self.started_at = SystemTime::now();
        self.origin = self.clock.raw();
        let _watchdog = Watchdog::start(
            self.pipeline.timeout,
            Arc::clone(&self.stop),
            Arc::clone(&self.timed_out),
        );
        let this = &*self;
        let done = AtomicBool::new(false);
        let done = &done;
        std::thread::scope(|scope| {
            let writer = this
                .writer
                .as_ref()
                .map(|w| scope.spawn(move || w.write_periodically(done)));
            dag::run(Some(pool), &this.plan.dag, this);
            done.store(true, Ordering::Relaxed);
            if let Some(writer) = writer {
                writer.thread().unpark();
            }
        });
        Ok(())
    }

    /// Executes step `i` (or serves it from the cache), once.
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
                    watches_files: self.pipeline.catalog.watches_files(i),
                    codecs: self.pipeline.catalog.output_codecs(i),
                    inputs: self.plan.inputs_of(i),
                    outputs: self.plan.outputs_of(i),
                    slots: &self.slots,
                    fingerprints: &self.fingerprints,
                    key: &self.keys[i],
                };
                cache.execute(&cached, self.writer.as_ref(), || self.call(i, step))
            }
        }
    }

    /// Calls step `i`'s code. The common case, a step that uses no
    /// resource and has no time limit, reads nothing of the step but its
    /// code: the plan has its slots.
    #[inline]
    fn call(&self, i: usize, step: &dyn Step) -> Outcome {
        if self.pipeline.catalog.is_special(i) {
            return self.call_special(i, step);
        }
        let mut ctx = self.context(i, step);
        let result = match self.pipeline.catalog.body(i) {
            Some(body) => body.call(&mut ctx),
            None => step.run(&mut ctx),
        };
        self.outcome(i, step, result, ctx)
    }

    /// [`call`](Self::call) for a step that uses resources (entered around
    /// it, given back however it ends, their notes in its record) or has a
    /// time limit (run on a thread of its own, see `detached`).
    #[cold]
    fn call_special(&self, i: usize, step: &dyn Step) -> Outcome {
        let spec = step.spec();
        let mut guards = self.enter_resources(&spec.resources, &spec.name);
        let mut outcome = match spec.timeout {
            None => {
                let mut ctx = self.context(i, step);
                let result = step.run(&mut ctx);
                for guard in &mut guards {
                    ctx.gathered.notes.extend(guard.notes());
                }
                return self.outcome(i, step, result, ctx);
            }
            Some(limit) => self.call_limited(i, limit),
        };
        if let Outcome::Ran { notes, .. } = &mut outcome {
            for guard in &mut guards {
                notes.extend(guard.notes());
            }
        }
        outcome
    }

    /// One attempt of step `i` on a thread of its own, at most `limit`.
    fn call_limited(&self, i: usize, limit: Duration) -> Outcome {
        let step = Arc::clone(&self.pipeline.steps[i]);
        let inputs: Option<Vec<Value>> = self
            .plan
            .inputs_of(i)
            .iter()
            .map(|&slot| self.slots[slot as usize].get().cloned())
            .collect();
        let Some(inputs) = inputs else {
            return Outcome::Failed(
                format!("an input of step `{}` has no value", step.spec().name).into(),
            );
        };
        let attempt = detached::call(
            Arc::clone(&step),
            inputs,
            Arc::clone(&self.resources),
            Arc::clone(&self.pipeline.canceller.0),
            &self.stop,
            limit,
        );
        match attempt {
            Attempt::TimedOut => Outcome::TimedOut(limit),
            Attempt::Returned {
                result,
                outputs,
                gathered,
            } => {
                for (slot, value) in self.plan.outputs_of(i).zip(outputs) {
                    if let Some(value) = value {
                        let _ = self.slots[slot].set(value);
                    }
                }
                let ctx = StepContext {
                    gathered,
                    ..self.context(i, &*step)
                };
                self.outcome(i, &*step, result, ctx)
            }
        }
    }

    #[inline]
    fn context<'s>(&'s self, i: usize, step: &'s dyn Step) -> StepContext<'s> {
        StepContext {
            spec: step.spec(),
            slots: &self.slots,
            inputs: self.plan.inputs_of(i),
            outputs: self.plan.outputs_of(i),
            resources: &self.resources,
            cancel: &self.pipeline.canceller.0,
            stop: &self.stop,
            gathered: Gathered::default(),
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
        let Gathered {
            notes,
            misuse,
            reads,
        } = ctx.gathered;
        if let Some(misuse) = misuse {
            return Outcome::Failed(misuse.into());
        }
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        let outputs = self.plan.outputs_of(i);
        match outputs.clone().position(|s| self.slots[s].get().is_none()) {
            None => Outcome::Ran {
                reason: None,
                notes,
                reads,
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

    /// Step `i`, attempted until it succeeds, its retries run out or the
    /// run stops; each failed attempt before the last becomes a note.
    fn attempts(&self, i: usize) -> (Outcome, u32) {
        let attempt = || {
            catch_unwind(AssertUnwindSafe(|| self.execute_step(i))).unwrap_or_else(|payload| {
                Outcome::Failed(format!("panicked: {}", panic_message(&*payload)).into())
            })
        };
        let outcome = attempt();
        if !matches!(outcome, Outcome::Failed(_) | Outcome::TimedOut(_)) {
            let ran = u32::from(!matches!(outcome, Outcome::Cached));
            return (outcome, ran);
        }
        let spec = self.pipeline.steps[i].spec();
        let retries = spec.retries.unwrap_or(self.pipeline.retries);
        if retries == 0 {
            return (outcome, 1);
        }
        self.retry(i, outcome, retries, attempt)
    }

    #[cold]
    fn retry(
        &self,
        i: usize,
        mut outcome: Outcome,
        retries: u32,
        attempt: impl Fn() -> Outcome,
    ) -> (Outcome, u32) {
        let spec = self.pipeline.steps[i].spec();
        let first = spec.backoff.unwrap_or(self.pipeline.backoff);
        let mut failures = Vec::new();
        let mut attempts = 1;
        while attempts <= retries && !self.stopped() {
            let why = match &outcome {
                Outcome::Failed(e) => e.to_string(),
                Outcome::TimedOut(limit) => format!("timed out after {limit:?}"),
                _ => break,
            };
            let wait = control::backoff(first, attempts, (i as u64) ^ self.origin);
            tracing::info!(step = %spec.name, attempt = attempts, error = %why, ?wait, "step failed; retrying");
            failures.push(format!(
                "attempt {attempts} failed: {why}; retried after {wait:?}"
            ));
            control::pause(wait, &self.stop);
            attempts += 1;
            outcome = attempt();
        }
        match &mut outcome {
            Outcome::Ran { notes, .. } => {
                failures.append(notes);
                *notes = failures;
            }
            _ => {
                if !failures.is_empty() {
                    lock(&self.details).push((
                        i as u32,
                        Details {
                            notes: failures,
                            ..Details::default()
                        },
                    ));
                }
            }
        }
        (outcome, attempts)
    }

    /// Writes step `i`'s record; `started` is when it became ready on its
    /// worker and `finished` when it ended. `false` if it did not succeed.
    fn record(
        &self,
        i: usize,
        (outcome, attempts): (Outcome, u32),
        worker: Option<usize>,
        started: u64,
        finished: u64,
    ) -> StepStatus {
        let (status, details) = match outcome {
            Outcome::Ran { reason, notes, .. } => (
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
                    ..Details::default()
                }),
            ),
            Outcome::TimedOut(limit) => {
                let error: BoxError = format!("timed out after {limit:?}").into();
                (
                    StepStatus::TimedOut,
                    Some(Details {
                        error: Some((error.to_string(), Arc::from(error))),
                        ..Details::default()
                    }),
                )
            }
        };
        if let Some(details) = details {
            lock(&self.details).push((i as u32, details));
        }
        let record = &self.records[i];
        record.start.store(started, Ordering::Relaxed);
        record.end.store(finished, Ordering::Relaxed);
        record.state.store(
            RawRecord::state(status, worker, attempts),
            Ordering::Relaxed,
        );
        status
    }

    /// The run's result, the store's history finished; `Err` if it was
    /// interrupted, timed out, or a step failed (the first in topological
    /// order). `plan` is the run's own, shared (the result's report draws
    /// its DAG).
    pub(crate) fn finish(self, plan: &Arc<Plan>) -> Result<PipelineResult> {
        let mut details = self
            .details
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        // A step's notes from its retries come before those of its last
        // attempt: merge them into one entry per step.
        details.sort_by_key(|(step, _)| *step);
        details.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            let later = std::mem::take(&mut later.1);
            earlier.1.notes.extend(later.notes);
            earlier.1.error = earlier.1.error.take().or(later.error);
            earlier.1.reason = earlier.1.reason.or(later.reason);
            true
        });
        let interrupted = self.pipeline.canceller.is_cancelled();
        let timed_out = self.timed_out.load(Ordering::Relaxed);
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
            codecs: Arc::clone(&self.plan.codecs),
            fingerprints: self.fingerprints,
            keys: self.keys,
            started_at: self.started_at,
            run_id: self.writer.as_ref().map(|w| w.run().0),
            plan: Arc::clone(plan),
        };
        let first_failure = self.plan.order.iter().map(|&i| i as usize).find(|&i| {
            matches!(
                result.records[i].status(),
                StepStatus::Failed | StepStatus::TimedOut
            )
        });
        if let Some(writer) = self.writer {
            let status = match (interrupted, first_failure.is_some() || timed_out) {
                (true, _) => RunStatus::Interrupted,
                (false, true) => RunStatus::Failed,
                (false, false) => RunStatus::Succeeded,
            };
            writer.finish(status)?;
        }
        let pipeline = result.pipeline.clone();
        if interrupted {
            return Err(Error::Interrupted {
                pipeline,
                result: result.into(),
            });
        }
        // Steps that stopped because the time was up fail with it: the
        // run's limit is what happened.
        if timed_out {
            return Err(Error::TimedOut {
                pipeline,
                step: None,
                limit: self.pipeline.timeout.unwrap_or_default(),
                result: result.into(),
            });
        }
        let Some(i) = first_failure else {
            return Ok(result);
        };
        let record = result.record(i);
        let (step, message) = (
            record.name.to_owned(),
            record.error.unwrap_or_default().to_owned(),
        );
        if record.status == StepStatus::TimedOut {
            let limit = self.pipeline.steps[i].spec().timeout.unwrap_or_default();
            return Err(Error::TimedOut {
                pipeline,
                step: Some(step),
                limit,
                result: result.into(),
            });
        }
        Err(Error::StepFailed {
            pipeline,
            step,
            source: result
                .cause(i)
                .cloned()
                .unwrap_or_else(|| Arc::from(BoxError::from(message.clone()))),
            message,
            result: result.into(),
        })
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
        if let Some(progress) = self.pipeline.progress {
            progress(Progress::Started {
                step: self.plan.names.get(i),
                index: i,
            });
        }
        let outcome = self.attempts(i);
        let finished = self.clock.raw();
        let status = self.record(i, outcome, *worker, *started, finished);
        if let Some(progress) = self.pipeline.progress {
            progress(Progress::Finished {
                step: self.plan.names.get(i),
                index: i,
                status,
                duration: Duration::from_nanos(self.clock.delta_as_nanos(*started, finished)),
            });
        }
        *started = finished;
        let ok = matches!(status, StepStatus::Ran | StepStatus::Cached);
        if !ok && !self.pipeline.keep_going {
            self.stop.store(true, Ordering::Relaxed);
        }
        ok
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.pipeline.canceller.is_cancelled()
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

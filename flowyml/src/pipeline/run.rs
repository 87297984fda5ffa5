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
//! predecessor's end was read; on the machines measured the read is about
//! a third of what the hand-written floor spends on a no-op step), one
//! `catch_unwind` frame, the step's code, and three relaxed stores for its
//! record. Everything a call needs is in the step's 32-byte record in the
//! catalog ([`StepCall`]), one load: a closure step's code is called from
//! there ([`Step::body`]), so a run does not load each step's own heap
//! object, and a closure that captures nothing, or whose `Copy` captures
//! are kept inline there, is called without touching memory of its own;
//! the step's spec is read only to word an error. As a step starts, the
//! records of its first dependents are asked for ([`Visitor::prefetch`]),
//! so that in a large random DAG, whose steps run in no order the CPU
//! can guess, their misses overlap this step's work. In a lean run (no
//! progress callback, no span per step) a step that succeeds saying
//! nothing, or is served from the cache, is recorded at once
//! ([`Run::visit_plain`], [`Run::visit_cached`]); only the others go
//! through outcomes and retries. Artifacts live in two-word `Slot`s,
//! written by their producer's visit alone with one store and read with
//! one load: shared values by `Arc`, scalars inline. Errors, rerun
//! reasons and notes, which few steps have, go to one side table behind a
//! mutex. Retries, time limits, the progress callback and the span per
//! step cost a branch each when unused.
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

use super::buffers::RunBuffers;
use super::catalog::{Catalog, StepCall};
use super::control::{self, Canceller, Progress, ProgressFn, Watchdog};
use super::detached::{self, Attempt};
use super::input::RuntimeInput;
use super::plan::Plan;
use super::result::PipelineResult;
use super::step_cache::{CachedStep, Outcome, StepCache};
use crate::clock::Clock;
use crate::dag::{self, Visitor};
use crate::error::{BoxError, Error, Result, panic_message};
use crate::incremental::store::{ArtifactStore, RunStatus, RunWriter};
use crate::prefetch::prefetch;
use crate::record::{Details, StepStatus};
use crate::resource::{ResourceGuard, ResourceProvider, Resources, RunResource};
use crate::slot::{Slot, Value};
use crate::step::{Gathered, Said, Step, StepContext};
use crate::sync::lock;

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
    /// Every artifact slot, each slot's fingerprint and each step's cache
    /// key (where the pipeline has a cache), each step's record and the
    /// ready queue's countdown: the last result's memory where the plan
    /// kept it.
    buffers: RunBuffers,
    /// The resources opened for this run (shared with the threads of steps
    /// that have a time limit).
    resources: Arc<Resources>,
    /// The opened resources by name, for entering them around the steps
    /// that declare them.
    opened: Vec<(&'static str, Arc<dyn RunResource>)>,
    /// Errors, rerun reasons and notes, for the steps that have any.
    details: Mutex<Vec<(u32, Details)>>,
    /// The run's writes to the store (only with a store): its entry in the
    /// history, its steps' records and cache entries, group-committed.
    writer: Option<RunWriter<'p>>,
    /// Set when no step may start any more: a failure (unless the pipeline
    /// keeps going), the time limit, a cancellation.
    stop: Arc<AtomicBool>,
    /// The pipeline's canceller's flag, at hand (read before every step).
    cancelled: &'p AtomicBool,
    /// Whether the time limit passed.
    timed_out: Arc<AtomicBool>,
    /// When the run started, in [`Clock`] ticks; records count
    /// from it.
    origin: u64,
    /// When the run started, for its wall time and its report.
    started: Instant,
    started_at: SystemTime,
    /// The clock, at hand.
    clock: &'static Clock,
    /// The executor's worker count, for the result.
    workers: usize,
    /// Whether `tracing` wants debug events (read once per run).
    trace_steps: bool,
    /// Whether a step that uses no resource and has no time limit may take
    /// a short path ([`Run::visit_plain`], [`Run::visit_cached`]): no
    /// progress callback, no span per step.
    lean: bool,
}

impl<'p> Run<'p> {
    /// A run of `pipeline` on `workers` workers: opens the resources its
    /// steps declare.
    pub(crate) fn new(pipeline: Definition<'p>, plan: &'p Plan, workers: usize) -> Result<Self> {
        let mut resources = Resources::default();
        let opened = open_resources(&pipeline, &mut resources);
        let trace_steps = tracing::enabled!(tracing::Level::DEBUG);
        let cancelled: &'p AtomicBool = &pipeline.canceller.0;
        let lean = pipeline.progress.is_none() && !trace_steps;
        let buffers = plan
            .spare
            .take(plan.producers.len(), plan.steps(), pipeline.cache.is_some());
        Ok(Run {
            pipeline,
            plan,
            buffers,
            resources: Arc::new(resources),
            opened,
            details: Mutex::new(Vec::new()),
            writer: None,
            stop: Arc::new(AtomicBool::new(false)),
            cancelled,
            timed_out: Arc::new(AtomicBool::new(false)),
            origin: 0,
            started: Instant::now(),
            started_at: SystemTime::now(),
            clock: Clock::get(),
            workers,
            trace_steps,
            lean,
        })
    }

    /// Puts the run-time inputs in their slots (they are the first slots),
    /// with their fingerprints where there is a cache.
    ///
    /// # Errors
    /// If an input's fingerprint cannot be computed (its encoding failed).
    pub(crate) fn seed_inputs(&mut self) -> Result<()> {
        for (slot, input) in self.pipeline.inputs.iter().enumerate() {
            self.buffers.slots[slot] = Slot::from(Value::from(Arc::clone(&input.value)));
            if let Some(fp) = self.buffers.fingerprints.get(slot) {
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
        let mut countdown = std::mem::take(&mut self.buffers.countdown);
        let this = &*self;
        let done = AtomicBool::new(false);
        let done = &done;
        std::thread::scope(|scope| {
            let writer = this
                .writer
                .as_ref()
                .map(|w| scope.spawn(move || w.write_periodically(done)));
            dag::run(Some(pool), &this.plan.dag, this, &mut countdown);
            done.store(true, Ordering::Relaxed);
            if let Some(writer) = writer {
                writer.thread().unpark();
            }
        });
        self.buffers.countdown = countdown;
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
        let call = self.pipeline.catalog.call(i);
        match self.pipeline.cache {
            None => self.call(i, &call),
            Some(cache) => cache.execute(&self.cached_step(i, &call), self.writer.as_ref(), || {
                self.call(i, &call)
            }),
        }
    }

    /// Step `i` as its cache sees it.
    #[inline]
    fn cached_step<'s>(&'s self, i: usize, call: &StepCall<'_>) -> CachedStep<'s> {
        let catalog = self.pipeline.catalog;
        CachedStep {
            index: i,
            specs: &self.pipeline.steps,
            watches_files: catalog.watches_files(i),
            catalog,
            inputs: self.plan.input_slots(call.inputs.clone()),
            outputs: call.outputs(self.plan.first_output),
            slots: &self.buffers.slots,
            fingerprints: &self.buffers.fingerprints,
            key: &self.buffers.keys[i],
        }
    }

    /// Calls step `i`'s code. The common case, a step that uses no
    /// resource and has no time limit, reads nothing of the step but its
    /// call record.
    #[inline]
    fn call(&self, i: usize, call: &StepCall<'_>) -> Outcome {
        if self.pipeline.catalog.is_special(i) {
            return self.call_special(i, call);
        }
        let mut ctx = self.context(i, call);
        let result = call.run(&mut ctx);
        self.outcome(i, result, ctx)
    }

    /// [`call`](Self::call) for a step that uses resources (entered around
    /// it, given back however it ends, their notes in its record) or has a
    /// time limit (run on a thread of its own, see `detached`).
    #[cold]
    fn call_special(&self, i: usize, call: &StepCall<'_>) -> Outcome {
        let step = &*self.pipeline.steps[i];
        let spec = step.spec();
        let mut guards = self.enter_resources(&spec.resources, &spec.name);
        let mut outcome = match spec.timeout {
            None => {
                let mut ctx = self.context(i, call);
                let result = step.run(&mut ctx);
                for guard in &mut guards {
                    ctx.gathered.said().notes.extend(guard.notes());
                }
                return self.outcome(i, result, ctx);
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
    #[allow(unsafe_code)]
    fn call_limited(&self, i: usize, limit: Duration) -> Outcome {
        let step = Arc::clone(&self.pipeline.steps[i]);
        let inputs: Option<Vec<Value>> = self
            .plan
            .inputs_of(i)
            .iter()
            .map(|&slot| self.buffers.slots[slot as usize].get().cloned())
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
                        // SAFETY: this is step `i`'s visit, the one writer
                        // of its output slots (see `slot`).
                        let _ = unsafe { self.buffers.slots[slot].set(value) };
                    }
                }
                let call = self.pipeline.catalog.call(i);
                let ctx = StepContext {
                    gathered,
                    ..self.context(i, &call)
                };
                self.outcome(i, result, ctx)
            }
        }
    }

    #[inline(always)]
    fn context(&self, i: usize, call: &StepCall<'_>) -> StepContext<'_> {
        StepContext {
            specs: &self.pipeline.steps,
            index: i,
            slots: &self.buffers.slots,
            inputs: self.plan.input_slots(call.inputs.clone()),
            outputs: call.outputs(self.plan.first_output),
            resources: &self.resources,
            cancel: self.cancelled,
            stop: &self.stop,
            gathered: Gathered::default(),
            written: 0,
        }
    }

    /// What a call of step `i` gave: a misuse of its context, or a missing
    /// output, fails it.
    #[inline]
    fn outcome(&self, i: usize, result: Result<(), BoxError>, ctx: StepContext<'_>) -> Outcome {
        let Said {
            notes,
            misuse,
            reads,
        } = ctx.gathered.into_said();
        if let Some(misuse) = misuse {
            return Outcome::Failed(misuse.into());
        }
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        let outputs = self.plan.outputs_of(i);
        match outputs
            .clone()
            .position(|s| self.buffers.slots[s].get().is_none())
        {
            None => Outcome::Ran {
                reason: None,
                notes,
                reads,
            },
            Some(j) => Outcome::Failed(
                format!(
                    "did not produce its output `{}`",
                    self.pipeline.steps[i].spec().outputs[j].name
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
        let first = self.attempt(i);
        self.after_first_attempt(i, first)
    }

    /// One attempt of step `i`, a panic caught.
    fn attempt(&self, i: usize) -> Outcome {
        catch_unwind(AssertUnwindSafe(|| self.execute_step(i))).unwrap_or_else(panicked)
    }

    /// Step `i` after its first attempt gave `outcome`: retried if it
    /// failed and may be.
    fn after_first_attempt(&self, i: usize, outcome: Outcome) -> (Outcome, u32) {
        let attempt = || self.attempt(i);
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
            self.discard_outputs(i);
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

    /// Empties step `i`'s output slots: what an attempt that failed wrote
    /// before it failed is neither a retry's second write nor the result's
    /// artifact.
    #[allow(unsafe_code)]
    fn discard_outputs(&self, i: usize) {
        for slot in self.plan.outputs_of(i) {
            // SAFETY: this is step `i`'s visit, the one writer of its output
            // slots, and nothing reads them until it ends (see `slot`).
            unsafe { self.buffers.slots[slot].clear() };
        }
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
        if matches!(status, StepStatus::Failed | StepStatus::TimedOut) {
            self.discard_outputs(i);
        }
        self.buffers.records[i].write(status, worker, attempts, (started, finished));
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
        // A failed or timed-out step always leaves its error here (see
        // `record`), so the plan's order is searched for the first one only
        // when some step left an error: not once per step of every run.
        let any_error = details.iter().any(|(_, d)| d.error.is_some());
        let interrupted = self.pipeline.canceller.is_cancelled();
        let timed_out = self.timed_out.load(Ordering::Relaxed);
        let result = PipelineResult {
            pipeline: self.pipeline.name.to_owned(),
            workers: self.workers,
            duration: self.started.elapsed(),
            // The scope has joined every worker: their writes are visible
            // from here on (see `dag`).
            buffers: self.buffers,
            origin: self.origin,
            details,
            started_at: self.started_at,
            run_id: self.writer.as_ref().map(|w| w.run().0),
            plan: Arc::clone(plan),
        };
        let first_failure = any_error
            .then(|| {
                self.plan.order.iter().map(|&i| i as usize).find(|&i| {
                    matches!(
                        result.buffers.records[i].status(),
                        StepStatus::Failed | StepStatus::TimedOut
                    )
                })
            })
            .flatten();
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

    // Inlined into the ready queue's loop: the plain path is a few
    // instructions, the rest is out of line.
    #[inline(always)]
    fn visit(&self, i: usize, carry: &mut Self::Carry) -> bool {
        if self.lean && !self.pipeline.catalog.is_special(i) {
            return match self.pipeline.cache {
                None => self.visit_plain(i, carry),
                Some(_) => self.visit_cached(i, carry),
            };
        }
        self.visit_general(i, carry)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.cancelled.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn prefetch(&self, i: usize) {
        self.pipeline.catalog.prefetch_call(i);
        if let Some(record) = self.buffers.records.get(i) {
            prefetch(record);
        }
        if let Some(cache) = self.pipeline.cache {
            cache.prefetch(i);
        }
    }
}

impl Run<'_> {
    /// Step `i` of any run: progress said, attempts made, record written.
    #[inline(never)]
    fn visit_general(&self, i: usize, carry: &mut (Option<usize>, u64)) -> bool {
        if let Some(progress) = self.pipeline.progress {
            progress(Progress::Started {
                step: self.plan.names.get(i),
                index: i,
            });
        }
        let outcome = self.attempts(i);
        self.finish_step(i, outcome, carry)
    }

    /// Step `i` of a lean run without a cache (see [`Run::lean`]): its
    /// code called directly, and, when it succeeds with nothing to say
    /// (the common case), its record written at once. Any other ending (an
    /// error, a panic, a misused context, notes) goes the general way from
    /// this attempt on, retries included.
    #[inline(always)]
    fn visit_plain(&self, i: usize, carry: &mut (Option<usize>, u64)) -> bool {
        let call = self.pipeline.catalog.call(i);
        let mut ctx = self.context(i, &call);
        let result = catch_unwind(AssertUnwindSafe(|| call.run(&mut ctx)));
        if matches!(result, Ok(Ok(()))) && ctx.gathered.is_empty() && ctx.wrote_every_output() {
            // Nothing to drop (the result holds no error, the context
            // holds references and said nothing), and the drop glue of
            // both is out of line: two calls per step.
            std::mem::forget((result, ctx));
            self.record_quietly(i, StepStatus::Ran, 1, carry);
            return true;
        }
        self.plain_fallback(i, result, ctx, carry)
    }

    /// Step `i` of a lean run with a cache: a step served from the cache
    /// is recorded at once; any other outcome goes the general way from
    /// this attempt on.
    #[inline(never)]
    fn visit_cached(&self, i: usize, carry: &mut (Option<usize>, u64)) -> bool {
        // A hit the store's history need not hear of is checked and
        // served directly (see `StepCache::serve_unchanged`).
        if self.writer.is_none()
            && let Some(cache) = self.pipeline.cache
            && cache.serve_unchanged(&self.cached_step(i, &self.pipeline.catalog.call(i)))
        {
            self.record_quietly(i, StepStatus::Cached, 0, carry);
            return true;
        }
        let outcome = self.attempt(i);
        if matches!(outcome, Outcome::Cached) {
            // Nothing to drop, and the drop glue is out of line.
            std::mem::forget(outcome);
            // A step served from the cache made no attempt (as `attempts` counts).
            self.record_quietly(i, StepStatus::Cached, 0, carry);
            return true;
        }
        let outcome = self.after_first_attempt(i, outcome);
        self.finish_step(i, outcome, carry)
    }

    /// Writes the record of step `i`, which ended now with `status` after
    /// `attempts` attempts and nothing to say.
    #[inline(always)]
    fn record_quietly(
        &self,
        i: usize,
        status: StepStatus,
        attempts: u32,
        carry: &mut (Option<usize>, u64),
    ) {
        let (worker, started) = carry;
        let finished = self.clock.raw();
        self.buffers.records[i].write(status, *worker, attempts, (*started, finished));
        *started = finished;
    }

    /// The rest of [`visit_plain`](Self::visit_plain) for a step that did
    /// not simply succeed.
    #[cold]
    #[inline(never)]
    fn plain_fallback(
        &self,
        i: usize,
        result: std::thread::Result<Result<(), BoxError>>,
        ctx: StepContext<'_>,
        carry: &mut (Option<usize>, u64),
    ) -> bool {
        let first = match result {
            Ok(result) => self.outcome(i, result, ctx),
            Err(payload) => panicked(payload),
        };
        let outcome = self.after_first_attempt(i, first);
        self.finish_step(i, outcome, carry)
    }

    /// Records step `i`'s `outcome`, says so to the progress callback, and
    /// stops the run if it failed (unless the pipeline keeps going);
    /// `true` if its dependents may count it as done.
    fn finish_step(
        &self,
        i: usize,
        outcome: (Outcome, u32),
        (worker, started): &mut (Option<usize>, u64),
    ) -> bool {
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
}

/// A caught panic as a step's failure.
#[cold]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> Outcome {
    Outcome::Failed(format!("panicked: {}", panic_message(&*payload)).into())
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

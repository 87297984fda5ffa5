//! Parallel execution on one rayon thread pool.
//!
//! [`ParallelExecutor`] owns a `rayon::ThreadPool` of `max_workers` threads
//! and runs every task on it: [`submit`](ParallelExecutor::submit) spawns
//! onto the pool (no thread or pool per call), [`map`](ParallelExecutor::map)
//! is a parallel iterator installed in the pool, and pipelines run their
//! ready queue on the same pool.
//!
//! # Design: no deadlock when tasks wait for tasks
//! A task may call `map` on its own executor: rayon runs the nested work on
//! the current worker and steals the rest, so nothing blocks. A task may
//! also `join` a handle of the same pool: instead of parking the worker
//! (with one worker that would deadlock), [`TaskHandle::join`] keeps running
//! the pool's pending jobs with [`rayon::yield_now`] until its task is done.
//!
//! # Failures
//! The plain forms (`map`, `wait_all`, `join`) re-raise a task's panic on
//! the caller, like a sequential loop would. The `try_` forms catch panics
//! and errors per task and report the task's index or key in
//! [`Error::Task`]; the other tasks still run to completion.

use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use rayon::prelude::*;

use crate::error::{Error, Result, panic_message};

/// Runs closures in parallel on its own rayon thread pool.
///
/// ```
/// use flowyml::ParallelExecutor;
/// use std::collections::HashMap;
///
/// let executor = ParallelExecutor::new(4)?;
///
/// // Execute one function over many inputs, in input order.
/// let results = executor.map(|chunk: Vec<u32>| chunk.iter().sum::<u32>(), vec![vec![1, 2], vec![3], vec![4, 5, 6]]);
/// assert_eq!(results, vec![3, 3, 15]);
///
/// // Or execute different functions.
/// let futures = HashMap::from([
///     ("data1", executor.submit(|| "a,b".split(',').count())),
///     ("data2", executor.submit(|| "c".split(',').count())),
/// ]);
/// let results = executor.wait_all(futures);
/// assert_eq!(results["data1"], 2);
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Clone)]
pub struct ParallelExecutor {
    pool: Arc<rayon::ThreadPool>,
}

impl ParallelExecutor {
    /// An executor with `max_workers` threads.
    ///
    /// # Errors
    /// [`Error::ZeroWorkers`] for 0, [`Error::ThreadPool`] if the threads
    /// cannot be started.
    pub fn new(max_workers: usize) -> Result<Self> {
        if max_workers == 0 {
            return Err(Error::ZeroWorkers);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(max_workers)
            .thread_name(|i| format!("flowyml-worker-{i}"))
            .build()
            .map_err(|source| Error::ThreadPool {
                workers: max_workers,
                source,
            })?;
        Ok(ParallelExecutor {
            pool: Arc::new(pool),
        })
    }

    /// An executor with one thread per available core.
    ///
    /// # Errors
    /// [`Error::ThreadPool`] if the threads cannot be started.
    pub fn with_available_parallelism() -> Result<Self> {
        Self::new(thread::available_parallelism().map_or(1, usize::from))
    }

    /// The number of worker threads.
    pub fn max_workers(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The rayon pool every task of this executor runs on: the escape
    /// hatch to rayon itself, for work the executor's methods do not
    /// cover (`executor.pool().install(|| data.par_iter()...)`, a
    /// hand-written `rayon::scope` on the same threads, as the benchmarks'
    /// baselines do). Steps that use rayon inside themselves run on it.
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// Runs `f` on the pool; the handle joins it.
    pub fn submit<T, F>(&self, f: F) -> TaskHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Slot {
            result: Mutex::new(None),
            done: Condvar::new(),
        });
        let writer = Arc::clone(&slot);
        self.pool.spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            *writer.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            writer.done.notify_all();
        });
        TaskHandle { slot }
    }

    /// `f` applied to every item in parallel, results in input order.
    ///
    /// # Panics
    /// Re-raises the panic of a task; see [`try_map`](Self::try_map).
    pub fn map<T, R, F>(&self, f: F, items: impl IntoIterator<Item = T>) -> Vec<R>
    where
        T: Send,
        R: Send,
        F: Fn(T) -> R + Sync + Send,
    {
        let items: Vec<T> = items.into_iter().collect();
        let min_len = self.min_len(items.len());
        self.pool
            .install(|| items.into_par_iter().with_min_len(min_len).map(f).collect())
    }

    /// Like [`map`](Self::map) for a fallible `f`: every task runs, and the
    /// first failure by index (error or panic) is returned as
    /// [`Error::Task`] with `task` = `#index`.
    ///
    /// ```
    /// use flowyml::{Error, ParallelExecutor};
    ///
    /// let executor = ParallelExecutor::new(2)?;
    /// let parse = |s: &str| s.parse::<u8>();
    /// assert_eq!(executor.try_map(parse, ["1", "2"])?, vec![1, 2]);
    /// let err = executor.try_map(parse, ["1", "x", "300"]).unwrap_err();
    /// assert!(matches!(err, Error::Task { ref task, .. } if task == "#1"));
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// The lowest-indexed task that returned `Err` or panicked.
    pub fn try_map<T, R, E, F>(&self, f: F, items: impl IntoIterator<Item = T>) -> Result<Vec<R>>
    where
        T: Send,
        R: Send,
        E: Display,
        F: Fn(T) -> Result<R, E> + Sync + Send,
    {
        let items: Vec<T> = items.into_iter().collect();
        let min_len = self.min_len(items.len());
        let outcomes: Vec<Result<R>> = self.pool.install(|| {
            items
                .into_par_iter()
                .with_min_len(min_len)
                .enumerate()
                .map(|(i, item)| {
                    let task = || format!("#{i}");
                    match catch_unwind(AssertUnwindSafe(|| f(item))) {
                        Ok(Ok(r)) => Ok(r),
                        Ok(Err(e)) => Err(task_error(task(), e.to_string(), false)),
                        Err(p) => Err(task_error(task(), panic_message(&*p), true)),
                    }
                })
                .collect()
        });
        outcomes.into_iter().collect()
    }

    /// The fewest items a piece of `len` items may hold. Rayon splits a
    /// piece again whenever it is stolen, down to single items, where the
    /// hand-off of a tiny task costs more than the task. Eight pieces per
    /// worker still balance tasks whose costs are scattered; slow tasks
    /// that sit next to each other (up to `len / (8 × workers)` of them)
    /// may share one worker.
    fn min_len(&self, len: usize) -> usize {
        (len / (self.max_workers() * 8)).max(1)
    }

    /// Waits for every handle; the results keep their keys.
    ///
    /// # Panics
    /// Re-raises the panic of a task; see [`try_wait_all`](Self::try_wait_all).
    pub fn wait_all<K: Eq + Hash, T>(&self, handles: HashMap<K, TaskHandle<T>>) -> HashMap<K, T> {
        handles.into_iter().map(|(k, h)| (k, h.join())).collect()
    }

    /// Waits for every handle; a panicked task is reported with its key.
    /// Every handle is joined even after a failure, so no task is left
    /// running unobserved.
    ///
    /// # Errors
    /// [`Error::Task`] naming the key (its `Debug` form) of a panicked task.
    pub fn try_wait_all<K: Eq + Hash + Debug, T>(
        &self,
        handles: HashMap<K, TaskHandle<T>>,
    ) -> Result<HashMap<K, T>> {
        let mut results = HashMap::with_capacity(handles.len());
        let mut first_error = None;
        for (key, handle) in handles {
            match handle.try_join_keyed(|| format!("{key:?}")) {
                Ok(v) => {
                    results.insert(key, v);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(results), Err)
    }
}

impl Debug for ParallelExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelExecutor")
            .field("max_workers", &self.max_workers())
            .finish()
    }
}

fn task_error(task: String, message: String, panicked: bool) -> Error {
    Error::Task {
        task,
        message,
        panicked,
    }
}

struct Slot<T> {
    result: Mutex<Option<thread::Result<T>>>,
    done: Condvar,
}

/// A task submitted with [`ParallelExecutor::submit`].
pub struct TaskHandle<T> {
    slot: Arc<Slot<T>>,
}

impl<T> TaskHandle<T> {
    /// Whether the task has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.slot
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Waits for the task and returns its value.
    ///
    /// # Panics
    /// Re-raises the task's panic.
    pub fn join(self) -> T {
        match self.wait() {
            Ok(v) => v,
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Waits for the task; a panic becomes [`Error::Task`].
    ///
    /// # Errors
    /// [`Error::Task`] with `panicked: true` if the task panicked.
    pub fn try_join(self) -> Result<T> {
        self.try_join_keyed(|| "submitted".to_owned())
    }

    fn try_join_keyed(self, key: impl FnOnce() -> String) -> Result<T> {
        self.wait()
            .map_err(|p| task_error(key(), panic_message(&*p), true))
    }

    fn wait(self) -> thread::Result<T> {
        let mut guard = self
            .slot
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = guard.take() {
                return result;
            }
            if rayon::current_thread_index().is_some() {
                // On a pool thread: help the pool instead of blocking a worker.
                drop(guard);
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    thread::sleep(Duration::from_micros(50));
                }
                guard = self
                    .slot
                    .result
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
            } else {
                guard = self
                    .slot
                    .done
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

impl<T> Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

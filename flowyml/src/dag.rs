//! The one DAG engine: the graph's shape ([`Dag`], from `flowyml-dag`,
//! which the macros share for their compile-time check) and the
//! ready-queue run over a rayon pool ([`run`]) that pipelines and
//! [`IncrementalComputation`](crate::IncrementalComputation) both use.
//!
//! # The ready queue
//! Each node has an atomic count of the nodes it still waits for, set from
//! [`Dag::waits_for`] when the run starts. The nodes that wait for nothing
//! are started inside one `rayon::scope`: all but one are spawned and the
//! last runs on the thread that opened the scope. When a node finishes,
//! it decrements the count of each dependent; a dependent whose count
//! reaches zero is ready. Of the nodes a finishing node makes ready, all
//! but one are spawned and the last runs on the same worker right away, so
//! a chain runs without any spawn and a fan-out is spread by rayon's work
//! stealing. There are no level-by-level barriers: a node starts the
//! moment the last node it waits for finishes, as in bevy's multi-threaded
//! executor and Dask. The scope returns when every spawned node has
//! finished, so a run never leaves work behind.
//!
//! As a node starts, the counts of its first few dependents, and what
//! visiting them reads first ([`Visitor::prefetch`]), are asked of the CPU
//! (see [`prefetch`](crate::prefetch)): those are the nodes that may run
//! next, and in a large random DAG each would otherwise miss the caches
//! only once it is reached. A dependent that is the next node in order is
//! skipped: its state follows this node's, where the CPU looks anyway.
//!
//! A node whose visit fails does not count its dependents down, so they
//! (and everything downstream of them) never start; a [`Visitor`] can also
//! stop the run from starting any more nodes.
//!
//! # Why each memory ordering suffices
//! - The countdown is a `fetch_sub` with `AcqRel`. Its release half
//!   publishes everything the finishing node wrote (its outputs, its
//!   record) before the count drops; its acquire half, on the decrement
//!   that reaches zero, makes every producer's writes visible to the
//!   thread that goes on to run the dependent, since all the decrements of
//!   one counter form a release sequence.
//! - What visitors write with `Relaxed` stores (the pipeline's step
//!   records) is read after [`run`] returns: rayon's scope joins every job
//!   through a latch with acquire/release semantics, so those stores
//!   happen-before the reads.
//! - [`Visitor::stopped`] is a hint read with `Relaxed`: a node starting
//!   just after another asked to stop is harmless, so no ordering is needed.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::prefetch::prefetch;

pub(crate) use flowyml_dag::{Cycle, Dag};

/// What a run does at each node.
pub(crate) trait Visitor: Sync {
    /// State handed from a node to the next one run on the same worker (a
    /// pipeline hands on when the previous step ended, which is when its
    /// successor became ready, so a chain reads the clock once per step).
    type Carry;

    /// The state of a node that starts a worker's sequence (a root, or a
    /// spawned dependent), made when it starts.
    fn start(&self) -> Self::Carry;

    /// Runs `node`; `true` if its dependents may count it as done.
    fn visit(&self, node: usize, carry: &mut Self::Carry) -> bool;

    /// Asks the CPU for what visiting `node` will read first (see
    /// [`prefetch`](crate::prefetch)): called for the first few dependents
    /// of a node as it starts, as they may be visited next.
    fn prefetch(&self, node: usize) {
        let _ = node;
    }

    /// Whether to start no more nodes.
    fn stopped(&self) -> bool {
        false
    }
}

/// Runs every node of `dag` that becomes ready, each once, calling
/// `visitor` for it: on `pool`'s workers, or, without a pool, starting on
/// the calling thread (spawns go to rayon's global pool), so a run over
/// one chain involves no other thread.
///
/// `countdown` is refilled for the run and left holding its counts: a
/// caller that runs the same DAG again passes the same buffer, so a rerun
/// writes memory the process already has (see the pipeline's recycled run
/// buffers).
pub(crate) fn run<V: Visitor>(
    pool: Option<&rayon::ThreadPool>,
    dag: &Dag,
    visitor: &V,
    countdown: &mut Vec<AtomicU32>,
) {
    countdown.clear();
    countdown.extend((0..dag.len()).map(|i| AtomicU32::new(dag.waits_for(i))));
    let queue = ReadyQueue {
        dag,
        visitor,
        waiting: countdown,
    };
    match pool {
        Some(pool) => pool.scope(|scope| queue.start(scope)),
        None => rayon::in_place_scope(|scope| queue.start(scope)),
    }
}

/// One run's countdown.
struct ReadyQueue<'a, V> {
    dag: &'a Dag,
    visitor: &'a V,
    /// For each node, how many of the nodes it waits for have not finished.
    waiting: &'a [AtomicU32],
}

impl<'a, V: Visitor> ReadyQueue<'a, V> {
    fn start<'s>(&'s self, scope: &rayon::Scope<'s>) {
        let mut roots = self.dag.roots();
        let Some(mut last) = roots.next() else {
            return;
        };
        for root in roots {
            let spawned = std::mem::replace(&mut last, root);
            scope.spawn(move |scope| self.go(scope, spawned));
        }
        self.go(scope, last);
    }

    /// Runs `node`, then keeps running one newly ready dependent on this
    /// worker while spawning the others.
    fn go<'s>(&'s self, scope: &rayon::Scope<'s>, mut node: usize) {
        let mut carry = self.visitor.start();
        loop {
            if self.visitor.stopped() {
                return;
            }
            let dependents = self.dag.dependents(node);
            // The first few dependents' counts, and what visiting them
            // reads first, asked for now: those misses then overlap this
            // node's own work rather than follow it (the many dependents
            // of a wide fan-out are not all visited soon). Not the next
            // node's: its state follows this one's, where the CPU's own
            // prefetcher looks (a chain would pay for nothing).
            for &d in dependents.iter().take(PREFETCHED) {
                let d = d as usize;
                if d != node + 1 {
                    prefetch(&self.waiting[d]);
                    self.visitor.prefetch(d);
                }
            }
            if !self.visitor.visit(node, &mut carry) {
                return;
            }
            let mut next = None;
            for &d in dependents {
                let d = d as usize;
                if self.waiting[d].fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(ready) = next.replace(d)
                {
                    scope.spawn(move |scope| self.go(scope, ready));
                }
            }
            match next {
                Some(d) => node = d,
                None => return,
            }
        }
    }
}

/// How many of a node's dependents [`ReadyQueue::go`] asks the CPU for.
const PREFETCHED: usize = 4;

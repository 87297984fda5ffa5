//! [`IncrementalComputation`]: a graph of named computations that reruns
//! only what changed.
//!
//! # Design notes
//! - **Dirty marking.** [`invalidate`](IncrementalComputation::invalidate)
//!   marks the node *forced* and it and everything downstream *dirty*, in
//!   time proportional to what it marks. Invariant: every descendant of a
//!   dirty node is dirty, so the clean nodes never read a stale input.
//! - **Early cutoff.** A dirty node that is not forced runs only if one of
//!   its inputs changed since it last ran (each node records the pass in
//!   which its value last changed, as salsa does). A node that reruns and
//!   produces a value *equal* to its previous one keeps the previous value
//!   and counts as unchanged, so its dependents are not run.
//! - **Equal means "the same value", never `PartialEq`.** A cutoff
//!   serves the dependents' old values, so it must only happen when they
//!   could not tell the new value from the old. `PartialEq` does not
//!   promise that: `0.0 == -0.0` yet `1.0 / x` differs, and a type's `==`
//!   may ignore fields on purpose. So [`register`](IncrementalComputation::register)
//!   compares content hashes of the serde encoding ([`Fingerprint::of`],
//!   what pipelines compare): bitwise for floats (`-0.0` is not `0.0`, NaN
//!   payloads are told apart), collision-free in practice (256-bit blake3),
//!   and the old value's hash is kept, so a rerun hashes only the new one.
//!   [`register_with`](IncrementalComputation::register_with) takes the
//!   user's own "same value" relation for types without `Serialize` (or
//!   too large to hash), and
//!   [`register_opaque`](IncrementalComputation::register_opaque) has no
//!   cutoff: every run counts as a change.
//! - **Parallel passes.** A pass computes the dirty nodes it needs, each
//!   as soon as its dirty inputs are done, with the same ready-queue engine
//!   as pipelines ([`dag`](crate::dag)) over the graph of the pass's nodes:
//!   on the [`ParallelExecutor`]'s pool if one was given; without one, the
//!   pass starts on the calling thread, so a pass over one chain of nodes
//!   involves no other thread. The work of a pass is proportional to the
//!   dirty nodes, never to the graph.
//! - **Failures.** A failing (or panicking) node stays dirty, as does
//!   everything downstream of it; every other node of the pass is computed.
//!   The pass reports the first failing node in topological order.
//! - **Strict reads.** [`get`](IncrementalComputation::get) refuses a dirty
//!   node ([`Error::StaleNode`]) instead of serving an outdated value;
//!   [`get_stale`](IncrementalComputation::get_stale) says so in its name.

use std::any::{Any, type_name};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use super::deps::{Deps, Input, Value, type_error};
use super::fingerprint::Fingerprint;
use crate::dag::{self, Cycle, Dag, Visitor};
use crate::error::{BoxError, Error, Result, panic_message};
use crate::executor::ParallelExecutor;

type NodeFn = Box<dyn Fn(&Deps<'_>) -> std::result::Result<Value, BoxError> + Send + Sync>;
type HashFn = fn(&(dyn Any + Send + Sync)) -> Option<Fingerprint>;
type SameFn = Box<dyn Fn(&(dyn Any + Send + Sync), &(dyn Any + Send + Sync)) -> bool + Send + Sync>;

/// How a node tells that a rerun produced the same value (see the design
/// notes: never by `PartialEq`).
enum Cutoff {
    /// The content hashes agree ([`register`](IncrementalComputation::register)).
    Hash(HashFn),
    /// The user's relation says so ([`register_with`](IncrementalComputation::register_with)).
    Same(SameFn),
    /// Never: every run is a change ([`register_opaque`](IncrementalComputation::register_opaque)).
    Never,
}

const NOT_IN_PASS: usize = usize::MAX;

struct Node {
    name: String,
    dep_names: Vec<String>,
    /// The nodes of `dep_names`, in declaration order.
    deps: Vec<usize>,
    f: NodeFn,
    cutoff: Cutoff,
    type_name: &'static str,
    value: Option<Value>,
    /// The content hash of `value`, under [`Cutoff::Hash`] (`None` if it
    /// could not be encoded, which counts as a change).
    hash: Option<Fingerprint>,
    dirty: bool,
    forced: bool,
    /// The pass in which `value` last changed.
    changed_at: u64,
    /// The pass in which the node last became clean.
    verified_at: u64,
    runs: u64,
    cutoffs: u64,
    /// Position in the current pass, or `NOT_IN_PASS`.
    pass_pos: usize,
}

/// A graph of named computations that recomputes only what changed.
///
/// Dependency tracking: C reads A and B, D reads C; if A changes, C and D
/// recompute, but not B.
///
/// ```
/// use flowyml::IncrementalComputation;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let source_a = Arc::new(AtomicU64::new(1)); // the outside data A reads
/// let mut inc = IncrementalComputation::new();
/// let a = Arc::clone(&source_a);
/// inc.register("A", &[], move |_| Ok(a.load(Ordering::SeqCst)))?;
/// inc.register("B", &[], |_| Ok(10_u64))?;
/// inc.register("C", &["A", "B"], |d| Ok(d.get::<u64>("A")? + d.get::<u64>("B")?))?;
/// inc.register("D", &["C"], |d| Ok(d.get::<u64>("C")? * 2))?;
/// inc.compute_all()?;
/// assert_eq!(*inc.get::<u64>("D")?, 22);
///
/// source_a.store(2, Ordering::SeqCst);
/// inc.invalidate("A")?;
/// let report = inc.compute_all()?;
/// assert_eq!(report.ran, ["A", "C", "D"]); // not B
/// assert_eq!(*inc.get::<u64>("D")?, 24);
/// assert_eq!(inc.runs("B")?, 1);
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct IncrementalComputation {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    /// The graph of dependencies, valid when `resolved`.
    graph: Dag,
    /// Each node's position in a topological order, valid when `resolved`.
    topo_pos: Vec<usize>,
    resolved: bool,
    /// Every dirty node (no duplicates: a node is pushed when it turns dirty).
    dirty: Vec<usize>,
    revision: u64,
    executor: Option<ParallelExecutor>,
}

/// What a pass did, node names in topological order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComputeReport {
    /// Nodes whose closure ran (including those in `unchanged`).
    pub ran: Vec<String>,
    /// Nodes that ran and produced a value equal to their previous one, so
    /// their dependents were cut off.
    pub unchanged: Vec<String>,
    /// Dirty nodes that did not run because none of their inputs changed.
    pub skipped: Vec<String>,
}

/// Counters over a graph's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncrementalStats {
    /// Registered nodes.
    pub nodes: usize,
    /// Nodes currently dirty.
    pub dirty: usize,
    /// Closure executions, all nodes together.
    pub runs: u64,
    /// Executions whose value equalled the previous one.
    pub cutoffs: u64,
}

enum Outcome {
    /// Ran; `value` is `Some` only when it changed, `hash` is its content
    /// hash under [`Cutoff::Hash`].
    Ran {
        value: Option<Value>,
        hash: Option<Fingerprint>,
    },
    Skipped,
    Failed {
        error: BoxError,
        panicked: bool,
    },
    Blocked,
}

impl Default for IncrementalComputation {
    fn default() -> Self {
        Self::new()
    }
}

impl IncrementalComputation {
    /// An empty graph whose passes run on rayon's global pool.
    pub fn new() -> Self {
        IncrementalComputation {
            nodes: Vec::new(),
            index: HashMap::new(),
            graph: Dag::default(),
            topo_pos: Vec::new(),
            resolved: true,
            dirty: Vec::new(),
            revision: 0,
            executor: None,
        }
    }

    /// An empty graph whose passes run on `executor`'s pool.
    ///
    /// ```
    /// use flowyml::{IncrementalComputation, ParallelExecutor};
    ///
    /// let mut inc = IncrementalComputation::with_executor(ParallelExecutor::new(2)?);
    /// inc.register("x", &[], |_| Ok(1_u8))?;
    /// assert_eq!(*inc.compute::<u8>("x")?, 1);
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    pub fn with_executor(executor: ParallelExecutor) -> Self {
        IncrementalComputation {
            executor: Some(executor),
            ..Self::new()
        }
    }

    /// Registers node `name`, computed by `f` from the values of `deps`.
    /// Dependencies may be registered later; they are checked when the
    /// graph is next computed. A rerun whose value has the same content
    /// hash as the previous one (the same serde encoding: `-0.0` is not
    /// `0.0`) cuts off its dependents.
    ///
    /// # Errors
    /// [`Error::DuplicateNode`] if `name` is taken.
    pub fn register<T, F>(&mut self, name: impl Into<String>, deps: &[&str], f: F) -> Result<()>
    where
        T: serde::Serialize + Send + Sync + 'static,
        F: Fn(&Deps<'_>) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    {
        self.insert(
            name.into(),
            deps,
            wrap(f),
            Cutoff::Hash(hash_of::<T>),
            type_name::<T>(),
        )
    }

    /// Like [`register`](Self::register), with `same` deciding whether a
    /// rerun produced the same value as before. `same(old, new)` must mean
    /// that no dependent could tell them apart: a cutoff serves the
    /// dependents' old results. (`PartialEq` rarely means that for floats:
    /// compare `to_bits`.)
    ///
    /// ```
    /// use flowyml::IncrementalComputation;
    ///
    /// struct Reading(f64); // not `Serialize`
    /// let mut inc = IncrementalComputation::new();
    /// inc.register_with("reading", &[], |old: &Reading, new: &Reading| old.0.to_bits() == new.0.to_bits(), |_| Ok(Reading(-0.0)))?;
    /// assert_eq!(inc.compute::<Reading>("reading")?.0.to_bits(), (-0.0_f64).to_bits());
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::DuplicateNode`] if `name` is taken.
    pub fn register_with<T, S, F>(
        &mut self,
        name: impl Into<String>,
        deps: &[&str],
        same: S,
        f: F,
    ) -> Result<()>
    where
        T: Send + Sync + 'static,
        S: Fn(&T, &T) -> bool + Send + Sync + 'static,
        F: Fn(&Deps<'_>) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    {
        let same: SameFn = Box::new(
            move |old, new| matches!((old.downcast_ref::<T>(), new.downcast_ref::<T>()), (Some(a), Some(b)) if same(a, b)),
        );
        self.insert(
            name.into(),
            deps,
            wrap(f),
            Cutoff::Same(same),
            type_name::<T>(),
        )
    }

    /// Like [`register`](Self::register) for a type with no notion of
    /// "the same value": every run counts as a change, so there is no early
    /// cutoff below it.
    ///
    /// # Errors
    /// [`Error::DuplicateNode`] if `name` is taken.
    pub fn register_opaque<T, F>(
        &mut self,
        name: impl Into<String>,
        deps: &[&str],
        f: F,
    ) -> Result<()>
    where
        T: Send + Sync + 'static,
        F: Fn(&Deps<'_>) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    {
        self.insert(name.into(), deps, wrap(f), Cutoff::Never, type_name::<T>())
    }

    fn insert(
        &mut self,
        name: String,
        deps: &[&str],
        f: NodeFn,
        cutoff: Cutoff,
        type_name: &'static str,
    ) -> Result<()> {
        if self.index.contains_key(&name) {
            return Err(Error::DuplicateNode { node: name });
        }
        // Deduplicated in declaration order, so that `dep_names[k]` names the
        // resolved `deps[k]`.
        let mut dep_names: Vec<String> = Vec::with_capacity(deps.len());
        for d in deps {
            if !dep_names.iter().any(|n| n == d) {
                dep_names.push((*d).to_owned());
            }
        }
        let i = self.nodes.len();
        self.index.insert(name.clone(), i);
        self.nodes.push(Node {
            name,
            dep_names,
            deps: Vec::new(),
            f,
            cutoff,
            type_name,
            value: None,
            hash: None,
            dirty: true,
            forced: true,
            changed_at: 0,
            verified_at: 0,
            runs: 0,
            cutoffs: 0,
            pass_pos: NOT_IN_PASS,
        });
        self.dirty.push(i);
        self.resolved = false;
        Ok(())
    }

    fn node_index(&self, name: &str) -> Result<usize> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownNode {
                node: name.to_owned(),
            })
    }

    /// Resolves dependency names and orders the graph; errors name the
    /// node at fault.
    fn resolve(&mut self) -> Result<()> {
        if self.resolved {
            return Ok(());
        }
        let mut deps_of = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let mut deps = Vec::with_capacity(node.dep_names.len());
            for d in &node.dep_names {
                let j = self
                    .index
                    .get(d)
                    .copied()
                    .ok_or_else(|| Error::UnknownDependency {
                        node: node.name.clone(),
                        dep: d.clone(),
                    })?;
                deps.push(j);
            }
            deps_of.push(deps);
        }
        let graph = Dag::from_predecessors(deps_of.len(), |i| deps_of[i].iter().copied());
        let order = graph.order().map_err(|Cycle(cycle)| {
            let mut names: Vec<String> =
                cycle.iter().map(|&i| self.nodes[i].name.clone()).collect();
            names.push(names[0].clone());
            Error::DependencyCycle { cycle: names }
        })?;
        let mut topo_pos = vec![0; order.len()];
        for (p, &i) in order.iter().enumerate() {
            topo_pos[i] = p;
        }
        for (node, deps) in self.nodes.iter_mut().zip(deps_of) {
            node.deps = deps;
        }
        self.graph = graph;
        self.topo_pos = topo_pos;
        self.resolved = true;
        Ok(())
    }

    /// Marks `name` as changed, and it and everything downstream dirty.
    /// Costs time in proportion to the nodes it marks.
    ///
    /// # Errors
    /// [`Error::UnknownNode`], or a graph error ([`Error::UnknownDependency`],
    /// [`Error::DependencyCycle`]) that makes "downstream" undefined.
    pub fn invalidate(&mut self, name: &str) -> Result<()> {
        let start = self.node_index(name)?;
        self.resolve()?;
        self.nodes[start].forced = true;
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let node = &mut self.nodes[i];
            // A dirty node's descendants are dirty already (the invariant),
            // except the start, whose flag may predate this call.
            if node.dirty && i != start {
                continue;
            }
            if !node.dirty {
                node.dirty = true;
                self.dirty.push(i);
            }
            stack.extend(self.graph.dependents(i).iter().map(|&d| d as usize));
        }
        Ok(())
    }

    /// Computes the dirty nodes that `name` needs, and `name`; returns its
    /// value.
    ///
    /// # Errors
    /// Graph errors, [`Error::NodeFailed`] naming the first node that
    /// failed, [`Error::NodeType`] if the value is not a `T`.
    pub fn compute<T: Any + Send + Sync>(&mut self, name: &str) -> Result<Arc<T>> {
        let i = self.node_index(name)?;
        self.pass(Some(i))?;
        self.get(name)
    }

    /// Computes every dirty node, independent ones in parallel, and says
    /// which ran.
    ///
    /// # Errors
    /// Graph errors, or [`Error::NodeFailed`] naming the first failing node
    /// in topological order; the nodes that do not depend on a failed one
    /// are computed all the same.
    pub fn compute_all(&mut self) -> Result<ComputeReport> {
        self.pass(None)
    }

    /// The value of a clean node.
    ///
    /// # Errors
    /// [`Error::UnknownNode`], [`Error::StaleNode`] if the node is dirty
    /// (never computed, invalidated, or downstream of one of those),
    /// [`Error::NodeType`] if its value is not a `T`.
    pub fn get<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>> {
        let node = &self.nodes[self.node_index(name)?];
        if node.dirty {
            return Err(Error::StaleNode {
                node: name.to_owned(),
            });
        }
        downcast(node)
    }

    /// The last computed value of a node, even if it is dirty now; `None`
    /// if it never computed.
    ///
    /// # Errors
    /// [`Error::UnknownNode`], [`Error::NodeType`].
    pub fn get_stale<T: Any + Send + Sync>(&self, name: &str) -> Result<Option<Arc<T>>> {
        let node = &self.nodes[self.node_index(name)?];
        if node.value.is_none() {
            return Ok(None);
        }
        downcast(node).map(Some)
    }

    /// Whether `name` is dirty.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn is_dirty(&self, name: &str) -> Result<bool> {
        Ok(self.nodes[self.node_index(name)?].dirty)
    }

    /// How many times `name`'s closure has run.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn runs(&self, name: &str) -> Result<u64> {
        Ok(self.nodes[self.node_index(name)?].runs)
    }

    /// How many runs of `name` produced a value equal to the previous one.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn cutoffs(&self, name: &str) -> Result<u64> {
        Ok(self.nodes[self.node_index(name)?].cutoffs)
    }

    /// Counters over the whole graph.
    pub fn stats(&self) -> IncrementalStats {
        IncrementalStats {
            nodes: self.nodes.len(),
            dirty: self.dirty.len(),
            runs: self.nodes.iter().map(|n| n.runs).sum(),
            cutoffs: self.nodes.iter().map(|n| n.cutoffs).sum(),
        }
    }

    /// The registered node names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    fn pass(&mut self, target: Option<usize>) -> Result<ComputeReport> {
        self.resolve()?;
        let mut set: Vec<usize> = match target {
            None => self.dirty.clone(),
            Some(t) => self.dirty_ancestors(t),
        };
        if set.is_empty() {
            return Ok(ComputeReport::default());
        }
        set.sort_unstable_by_key(|&i| self.topo_pos[i]);
        for (p, &i) in set.iter().enumerate() {
            self.nodes[i].pass_pos = p;
        }
        let revision = self.revision + 1;
        self.revision = revision;
        let outcomes = {
            let pass = Pass::new(&self.nodes, &set);
            // Without an executor, in place: a small pass needs no hop to a
            // pool thread.
            dag::run(
                self.executor.as_ref().map(ParallelExecutor::pool),
                &pass.dag,
                &pass,
                &mut Vec::new(),
            );
            pass.outcomes
        };
        let mut report = ComputeReport::default();
        let mut failure = None;
        for (&i, outcome) in set.iter().zip(outcomes) {
            let node = &mut self.nodes[i];
            node.pass_pos = NOT_IN_PASS;
            // A node downstream of a failure never became ready.
            match outcome.into_inner().unwrap_or(Outcome::Blocked) {
                Outcome::Ran { value, hash } => {
                    node.runs += 1;
                    report.ran.push(node.name.clone());
                    match value {
                        Some(v) => {
                            node.value = Some(v);
                            node.hash = hash;
                            node.changed_at = revision;
                        }
                        None => {
                            node.cutoffs += 1;
                            report.unchanged.push(node.name.clone());
                        }
                    }
                    node.clean(revision);
                }
                Outcome::Skipped => {
                    report.skipped.push(node.name.clone());
                    node.clean(revision);
                }
                Outcome::Failed { error, panicked } => {
                    node.runs += 1;
                    failure.get_or_insert(Error::NodeFailed {
                        node: node.name.clone(),
                        panicked,
                        source: error,
                    });
                }
                Outcome::Blocked => {}
            }
        }
        let nodes = &self.nodes;
        self.dirty.retain(|&i| nodes[i].dirty);
        failure.map_or(Ok(report), Err)
    }

    /// `t` and its dirty ancestors (a clean node's ancestors are clean).
    fn dirty_ancestors(&self, t: usize) -> Vec<usize> {
        if !self.nodes[t].dirty {
            return Vec::new();
        }
        let mut seen = std::collections::HashSet::from([t]);
        let mut stack = vec![t];
        while let Some(i) = stack.pop() {
            for &d in &self.nodes[i].deps {
                if self.nodes[d].dirty && seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        seen.into_iter().collect()
    }
}

impl Node {
    fn clean(&mut self, revision: u64) {
        self.dirty = false;
        self.forced = false;
        self.verified_at = revision;
    }
}

fn wrap<T, F>(f: F) -> NodeFn
where
    T: Send + Sync + 'static,
    F: Fn(&Deps<'_>) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
{
    Box::new(move |deps| f(deps).map(|v| Arc::new(v) as Value))
}

fn hash_of<T: serde::Serialize + 'static>(value: &(dyn Any + Send + Sync)) -> Option<Fingerprint> {
    value
        .downcast_ref::<T>()
        .and_then(|v| Fingerprint::of(v).ok())
}

fn downcast<T: Any + Send + Sync>(node: &Node) -> Result<Arc<T>> {
    let value = node.value.clone().ok_or_else(|| Error::StaleNode {
        node: node.name.clone(),
    })?;
    value
        .downcast::<T>()
        .map_err(|_| type_error::<T>(&node.name, node.type_name))
}

/// One pass over a set of dirty nodes (positions index `set`).
struct Pass<'a> {
    nodes: &'a [Node],
    set: &'a [usize],
    /// What each node of the pass waits for among the pass's nodes.
    dag: Dag,
    outcomes: Vec<OnceLock<Outcome>>,
}

impl<'a> Pass<'a> {
    fn new(nodes: &'a [Node], set: &'a [usize]) -> Self {
        let dag = Dag::from_predecessors(set.len(), |p| {
            nodes[set[p]]
                .deps
                .iter()
                .map(|&d| nodes[d].pass_pos)
                .filter(|&dp| dp != NOT_IN_PASS)
        });
        Pass {
            nodes,
            set,
            dag,
            outcomes: (0..set.len()).map(|_| OnceLock::new()).collect(),
        }
    }

    fn evaluate(&self, p: usize) -> Outcome {
        let node = &self.nodes[self.set[p]];
        let mut inputs = Vec::with_capacity(node.deps.len());
        let mut input_changed = false;
        for (&d, name) in node.deps.iter().zip(&node.dep_names) {
            let dep = &self.nodes[d];
            let (value, changed) = if dep.pass_pos == NOT_IN_PASS {
                (dep.value.as_ref(), dep.changed_at > node.verified_at)
            } else {
                match self.outcomes[dep.pass_pos].get() {
                    Some(Outcome::Ran { value: Some(v), .. }) => (Some(v), true),
                    Some(Outcome::Ran { value: None, .. } | Outcome::Skipped) => {
                        (dep.value.as_ref(), dep.changed_at > node.verified_at)
                    }
                    _ => return Outcome::Blocked,
                }
            };
            let Some(value) = value else {
                return Outcome::Blocked;
            };
            input_changed |= changed;
            inputs.push(Input {
                name,
                value,
                type_name: dep.type_name,
            });
        }
        if !(node.forced || node.value.is_none() || input_changed) {
            return Outcome::Skipped;
        }
        let deps = Deps {
            node: &node.name,
            inputs: &inputs,
        };
        match catch_unwind(AssertUnwindSafe(|| (node.f)(&deps))) {
            Ok(Ok(new)) => {
                let (same, hash) = match (&node.cutoff, &node.value) {
                    (Cutoff::Hash(hash_of), old) => {
                        let hash = hash_of(&*new);
                        (old.is_some() && hash.is_some() && hash == node.hash, hash)
                    }
                    (Cutoff::Same(same), Some(old)) => (same(&**old, &*new), None),
                    _ => (false, None),
                };
                Outcome::Ran {
                    value: (!same).then_some(new),
                    hash,
                }
            }
            Ok(Err(error)) => Outcome::Failed {
                error,
                panicked: false,
            },
            Err(payload) => Outcome::Failed {
                error: panic_message(&*payload).into(),
                panicked: true,
            },
        }
    }
}

impl Visitor for Pass<'_> {
    type Carry = ();

    fn start(&self) {}

    fn visit(&self, p: usize, (): &mut ()) -> bool {
        let outcome = self.evaluate(p);
        let ok = matches!(outcome, Outcome::Ran { .. } | Outcome::Skipped);
        if self.outcomes[p].set(outcome).is_err() {
            unreachable!("a node is evaluated once per pass");
        }
        ok
    }
}

impl std::fmt::Debug for IncrementalComputation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncrementalComputation")
            .field("nodes", &self.nodes.len())
            .field("dirty", &self.dirty.len())
            .field("executor", &self.executor)
            .finish()
    }
}

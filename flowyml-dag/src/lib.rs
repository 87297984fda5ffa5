//! The shape of a DAG of steps, shared by `flowyml` (which validates and
//! schedules pipelines with it) and `flowyml-macros` (which checks a
//! `#[pipeline]` at compile time), so that both order steps and find
//! cycles the same way.
//!
//! # Layout
//! A [`Dag`] is two compressed sparse rows over `u32` node indices: for
//! each node its distinct predecessors (what it waits for) and its
//! dependents (what waits for it). Each is one offsets array and one
//! indices array, so a pass over the graph touches contiguous memory and a
//! node costs eight bytes plus four per edge in each direction.
//!
//! # Order and cycles
//! [`Dag::order`] is Kahn's algorithm, taking ready nodes in index order.
//! When it cannot order every node, the graph has a cycle, and every node
//! it left has a predecessor it also left (else that node would have
//! become ready). So walking predecessors from any left node must revisit
//! a node, and the walk from that node's first visit, reversed, is a cycle
//! in dependency order. Walking *dependents* instead would be wrong: a node
//! downstream of a cycle is left too, but may feed nothing.
#![warn(missing_docs)]

/// A DAG (or a graph that turns out to have a cycle) over nodes `0..len`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dag {
    predecessors_at: Vec<u32>,
    predecessors: Vec<u32>,
    dependents_at: Vec<u32>,
    dependents: Vec<u32>,
}

/// A cycle: nodes in dependency order, each feeding the next and the last
/// feeding the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl Dag {
    /// The graph of `len` nodes in which node `i` waits for the nodes
    /// `predecessors(i)` yields. A repeated predecessor counts once; a node
    /// that waits for itself is a cycle of one.
    ///
    /// ```
    /// use flowyml_dag::Dag;
    ///
    /// // 0 -> 1 -> 2, and 0 -> 2
    /// let dag = Dag::from_predecessors(3, |i| match i { 1 => vec![0], 2 => vec![1, 0, 1], _ => vec![] });
    /// assert_eq!(dag.predecessors(2), &[0, 1]);
    /// assert_eq!(dag.dependents(0), &[1, 2]);
    /// assert_eq!(dag.order().unwrap(), vec![0, 1, 2]);
    /// ```
    ///
    /// # Panics
    /// If `len` or the number of edges exceeds `u32::MAX`.
    pub fn from_predecessors<I>(len: usize, mut predecessors: impl FnMut(usize) -> I) -> Self
    where
        I: IntoIterator<Item = usize>,
    {
        let index = |i: usize| u32::try_from(i).expect("a DAG of at most u32::MAX nodes and edges");
        let mut predecessors_at = Vec::with_capacity(len + 1);
        let mut preds: Vec<u32> = Vec::with_capacity(len);
        predecessors_at.push(0);
        let mut counts = vec![0u32; len + 1];
        for i in 0..len {
            let start = preds.len();
            for p in predecessors(i) {
                assert!(
                    p < len,
                    "node {i} waits for node {p}, beyond the {len} nodes"
                );
                preds.push(index(p));
            }
            // Distinct, in index order: most nodes have a handful of inputs.
            let own = &mut preds[start..];
            if own.len() > 1 {
                own.sort_unstable();
                let distinct = dedup_sorted(own);
                preds.truncate(start + distinct);
            }
            for &p in &preds[start..] {
                counts[p as usize + 1] += 1;
            }
            predecessors_at.push(index(preds.len()));
        }
        for i in 0..len {
            counts[i + 1] += counts[i];
        }
        let dependents_at = counts.clone();
        let mut fill = counts;
        let mut dependents = vec![0u32; preds.len()];
        for i in 0..len {
            for &p in &preds[predecessors_at[i] as usize..predecessors_at[i + 1] as usize] {
                dependents[fill[p as usize] as usize] = index(i);
                fill[p as usize] += 1;
            }
        }
        Dag {
            predecessors_at,
            predecessors: preds,
            dependents_at,
            dependents,
        }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.predecessors_at.len().saturating_sub(1)
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The distinct nodes `node` waits for, in index order.
    #[inline]
    pub fn predecessors(&self, node: usize) -> &[u32] {
        &self.predecessors
            [self.predecessors_at[node] as usize..self.predecessors_at[node + 1] as usize]
    }

    /// The nodes that wait for `node`, each once, in index order.
    #[inline]
    pub fn dependents(&self, node: usize) -> &[u32] {
        &self.dependents[self.dependents_at[node] as usize..self.dependents_at[node + 1] as usize]
    }

    /// How many distinct nodes `node` waits for.
    #[inline]
    pub fn waits_for(&self, node: usize) -> u32 {
        self.predecessors_at[node + 1] - self.predecessors_at[node]
    }

    /// The nodes that wait for nothing, in index order.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.waits_for(i) == 0)
    }

    /// A topological order (every node after the nodes it waits for; among
    /// nodes ready together, the lower index first), or a cycle.
    ///
    /// ```
    /// use flowyml_dag::{Cycle, Dag};
    ///
    /// // 0 waits for 2, 1 waits for 0, 2 waits for 1; 3 waits for 2.
    /// let dag = Dag::from_predecessors(4, |i| [vec![2], vec![0], vec![1], vec![2]][i].clone());
    /// let Err(Cycle(cycle)) = dag.order() else { panic!("a cycle") };
    /// assert_eq!(cycle, vec![0, 1, 2]);
    /// ```
    ///
    /// # Errors
    /// A [`Cycle`] if some nodes wait for each other.
    pub fn order(&self) -> Result<Vec<usize>, Cycle> {
        let n = self.len();
        let mut unmet: Vec<u32> = (0..n).map(|i| self.waits_for(i)).collect();
        let mut order: Vec<usize> = self.roots().collect();
        let mut next = 0;
        while next < order.len() {
            for &d in self.dependents(order[next]) {
                let d = d as usize;
                unmet[d] -= 1;
                if unmet[d] == 0 {
                    order.push(d);
                }
            }
            next += 1;
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(self.find_cycle(&unmet))
        }
    }

    /// A cycle among the nodes Kahn's algorithm left (`unmet > 0`); see the
    /// crate's notes for why walking predecessors always finds one.
    fn find_cycle(&self, unmet: &[u32]) -> Cycle {
        let start = unmet
            .iter()
            .position(|&u| u > 0)
            .expect("a cycle leaves a node unordered");
        let mut seen = vec![u32::MAX; self.len()];
        let mut path: Vec<usize> = Vec::new();
        let mut node = start;
        while seen[node] == u32::MAX {
            seen[node] = path.len() as u32;
            path.push(node);
            node = self
                .predecessors(node)
                .iter()
                .map(|&p| p as usize)
                .find(|&p| unmet[p] > 0)
                .expect("a node left unordered waits for another one left unordered");
        }
        let mut cycle = path.split_off(seen[node] as usize);
        // The walk went against the edges: reverse it into dependency
        // order, starting at the lowest node so the answer is stable.
        cycle.reverse();
        let lowest = (0..cycle.len())
            .min_by_key(|&k| cycle[k])
            .expect("a cycle has a node");
        cycle.rotate_left(lowest);
        Cycle(cycle)
    }
}

fn dedup_sorted(v: &mut [u32]) -> usize {
    if v.is_empty() {
        return 0;
    }
    let mut w = 1;
    for r in 1..v.len() {
        if v[r] != v[w - 1] {
            v[w] = v[r];
            w += 1;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(preds: &[&[usize]]) -> Dag {
        Dag::from_predecessors(preds.len(), |i| preds[i].to_vec())
    }

    #[test]
    fn a_cycle_behind_a_downstream_node_is_found() {
        // 0 (a sink) waits for 2; 1 and 2 wait for each other.
        let g = dag(&[&[2], &[2], &[1]]);
        assert_eq!(g.order(), Err(Cycle(vec![1, 2])));
    }

    #[test]
    fn a_node_waiting_for_itself_is_a_cycle_of_one() {
        let g = dag(&[&[], &[1, 0]]);
        assert_eq!(g.order(), Err(Cycle(vec![1])));
    }

    #[test]
    fn cycles_come_in_dependency_order() {
        // 0 -> 1 -> 2 -> 0, and 3 waits for 0.
        let g = dag(&[&[2], &[0], &[1], &[0]]);
        let Err(Cycle(c)) = g.order() else {
            panic!("a cycle")
        };
        assert_eq!(c, vec![0, 1, 2]);
        for k in 0..c.len() {
            let (from, to) = (c[k], c[(k + 1) % c.len()]);
            assert!(g.predecessors(to).contains(&(from as u32)));
        }
    }

    #[test]
    fn order_puts_every_node_after_what_it_waits_for() {
        let g = dag(&[&[3], &[], &[1, 0], &[1]]);
        let order = g.order().unwrap();
        let pos = |n: usize| order.iter().position(|&x| x == n).unwrap();
        for n in 0..g.len() {
            for &p in g.predecessors(n) {
                assert!(pos(p as usize) < pos(n));
            }
        }
        assert_eq!(g.roots().collect::<Vec<_>>(), vec![1]);
        assert_eq!(g.dependents(1), &[2, 3]);
    }

    #[test]
    fn an_empty_graph_is_ordered() {
        let g = Dag::from_predecessors(0, |_| Vec::<usize>::new());
        assert!(g.is_empty());
        assert_eq!(g.order(), Ok(vec![]));
    }
}

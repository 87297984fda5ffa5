//! The rules a `#[pipeline]` must follow, one function each; together
//! they make its DAG valid when it compiles.

use std::collections::{BTreeMap, HashMap};

use flowyml_dag::{Cycle, Dag};

use super::parse::Parsed;
use crate::ctxt::Ctxt;

/// A producer → consumer edge: (producer step, output), (consumer step, input).
pub type Edge = ((usize, usize), (usize, usize));

/// Who provides each artifact: a run-time input (`None`) or a step's
/// output.
type Producers = BTreeMap<String, Option<(usize, usize)>>;

/// Applies every rule; returns the DAG's edges.
pub fn check(p: &Parsed, cx: &Ctxt) -> Vec<Edge> {
    has_steps(p, cx);
    step_names_are_unique(p, cx);
    let producers = artifacts_are_produced_once(p, cx);
    let edges = inputs_are_produced(p, &producers, cx);
    has_no_cycle(p, &edges, cx);
    edges
}

fn has_steps(p: &Parsed, cx: &Ctxt) {
    if p.steps.is_empty() {
        cx.error_at(
            &p.module.ident,
            format!("pipeline `{}` has no `#[step]` functions", p.name),
        );
    }
}

fn step_names_are_unique(p: &Parsed, cx: &Ctxt) {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, s) in p.steps.iter().enumerate() {
        if let Some(first) = by_name.insert(&s.name, i) {
            cx.error_at(
                &s.func.sig.ident,
                format!(
                    "pipeline `{}`: step name `{}` is used twice (also by `{}`): give one of them `name = \"..\"`",
                    p.name, s.name, p.steps[first].func.sig.ident
                ),
            );
        }
    }
}

/// Run-time inputs, then step outputs; each artifact has one producer.
fn artifacts_are_produced_once(p: &Parsed, cx: &Ctxt) -> Producers {
    let mut producers = Producers::new();
    for lit in &p.inputs {
        if producers.insert(lit.value(), None).is_some() {
            cx.error_at(
                lit,
                format!(
                    "pipeline `{}`: run-time input `{}` is listed twice",
                    p.name,
                    lit.value()
                ),
            );
        }
    }
    for (si, s) in p.steps.iter().enumerate() {
        for (oi, o) in s.outputs.iter().enumerate() {
            match producers.get(&o.name) {
                Some(prev) => {
                    let by = prev.map_or_else(
                        || "a run-time input".to_owned(),
                        |(q, _)| format!("step `{}`", p.steps[q].name),
                    );
                    cx.error(syn::Error::new(
                        o.span,
                        format!(
                            "pipeline `{}`: artifact `{}` is produced twice, by {by} and by step `{}`: rename one output",
                            p.name, o.name, s.name
                        ),
                    ));
                }
                None => {
                    producers.insert(o.name.clone(), Some((si, oi)));
                }
            }
        }
    }
    producers
}

/// Every input is a run-time input or some step's output.
fn inputs_are_produced(p: &Parsed, producers: &Producers, cx: &Ctxt) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (ci, c) in p.steps.iter().enumerate() {
        for (ii, input) in c.inputs.iter().enumerate() {
            match producers.get(&input.name) {
                Some(Some(producer)) => edges.push((*producer, (ci, ii))),
                Some(None) => {}
                None => {
                    let hint = match flowyml_suggest::did_you_mean(
                        &input.name,
                        producers.keys().map(String::as_str),
                    ) {
                        h if h.is_empty() => format!(
                            "; add a step with `outputs = [\"{0}\"]`, or declare a run-time input with `#[pipeline(inputs = [\"{0}\"])]`",
                            input.name
                        ),
                        h => h,
                    };
                    cx.error(syn::Error::new(
                        input.span,
                        format!(
                            "pipeline `{}`: step `{}` needs artifact `{}`, which no step produces{hint}",
                            p.name, c.name, input.name
                        ),
                    ));
                }
            }
        }
    }
    edges
}

/// The steps form a DAG: found the way the library finds cycles.
fn has_no_cycle(p: &Parsed, edges: &[Edge], cx: &Ctxt) {
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); p.steps.len()];
    for ((producer, _), (consumer, _)) in edges {
        waits[*consumer].push(*producer);
    }
    let dag = Dag::from_predecessors(p.steps.len(), |i| waits[i].iter().copied());
    if let Err(Cycle(cycle)) = dag.order() {
        let path: Vec<&str> = cycle.iter().map(|&i| p.steps[i].name.as_str()).collect();
        cx.error_at(
            &p.steps[cycle[0]].func.sig.ident,
            format!(
                "pipeline `{}` has a cycle: {} -> {}: a step cannot depend on its own output",
                p.name,
                path.join(" -> "),
                path[0]
            ),
        );
    }
}

//! The pipeline as a picture: Graphviz DOT and Mermaid.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::Pipeline;

/// An edge: producer (a step, or `None` for a run-time input), consumer
/// step, artifact name.
type Edge<'a> = (Option<&'a str>, &'a str, &'a str);

impl Pipeline {
    fn edges(&self) -> Vec<Edge<'_>> {
        let producer: HashMap<&str, &str> = self
            .steps
            .iter()
            .flat_map(|s| {
                s.spec()
                    .outputs
                    .iter()
                    .map(move |o| (o.name.as_ref(), s.spec().name.as_ref()))
            })
            .collect();
        self.steps
            .iter()
            .flat_map(|s| {
                let consumer = s.spec().name.as_ref();
                let producer = &producer;
                s.spec().inputs.iter().map(move |i| {
                    (
                        producer.get(i.name.as_ref()).copied(),
                        consumer,
                        i.name.as_ref(),
                    )
                })
            })
            .collect()
    }

    /// The DAG in Graphviz DOT: steps are boxes, run-time inputs ellipses,
    /// edges are labelled with the artifact.
    ///
    /// ```
    /// # use flowyml::{Pipeline, step};
    /// #[step(outputs = ["clean"])]
    /// fn clean(raw: &Vec<f64>) -> Vec<f64> { raw.clone() }
    /// let mut p = Pipeline::new("etl");
    /// p.add_step(clean);
    /// assert!(p.to_dot().contains("\"raw\" -> \"clean\" [label=\"raw\"]"));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n",
            self.name
        );
        for s in &self.steps {
            let _ = writeln!(out, "  \"{}\";", s.spec().name);
        }
        for (from, to, artifact) in self.edges() {
            let from = from.unwrap_or(artifact);
            if from == artifact {
                let _ = writeln!(out, "  \"{artifact}\" [shape=ellipse];");
            }
            let _ = writeln!(out, "  \"{from}\" -> \"{to}\" [label=\"{artifact}\"];");
        }
        out.push_str("}\n");
        out
    }

    /// The DAG as a Mermaid flowchart (renders in GitHub and mdBook).
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut out = String::from("flowchart LR\n");
        for s in &self.steps {
            let name = s.spec().name.as_ref();
            let _ = writeln!(out, "    {}[\"{name}\"]", id(name));
        }
        for (from, to, artifact) in self.edges() {
            let from = match from {
                Some(step) => id(step),
                None => {
                    let input = format!("input_{}", id(artifact));
                    let _ = writeln!(out, "    {input}([\"{artifact}\"])");
                    input
                }
            };
            let _ = writeln!(out, "    {from} -->|{artifact}| {}", id(to));
        }
        out
    }
}

//! The pipeline as a picture: SVG (laid out here, see `svg`), Graphviz DOT
//! and Mermaid.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::Pipeline;
use super::svg::Drawing;
use crate::error::Result;

/// An edge: producer (a step's index, or `None` for a run-time input),
/// consumer step's index, artifact name.
type Edge<'a> = (Option<usize>, usize, &'a str);

/// `text` as a DOT quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Pipeline {
    /// The DAG as a standalone SVG picture, laid out in layers from top
    /// to bottom: steps are boxes, run-time inputs rounded boxes, one arrow
    /// per pair of nodes, whose tooltip names the artifacts it carries
    /// (`<g class="edge" data-artifacts="a, b">`). No script and no external
    /// resource: it shows in a browser, an `<img>` or a Markdown page as
    /// it is. Each step's box is a `<g class="node step planned"
    /// data-step="NAME">` with a tooltip; [`PipelineResult::to_html`]
    /// draws the same picture coloured by what a run did. A pipeline of
    /// more than 150 steps and inputs is not laid out (it would take
    /// seconds to minutes): the picture says so, and [`to_dot`](Self::to_dot)
    /// gives the DAG to Graphviz.
    ///
    /// ```
    /// # use flowyml::{Pipeline, step};
    /// #[step(outputs = ["clean"])]
    /// fn clean(raw: &Vec<f64>) -> Vec<f64> { raw.clone() }
    /// #[step(outputs = ["mean"])]
    /// fn mean(clean: &Vec<f64>) -> f64 { clean.iter().sum::<f64>() / clean.len() as f64 }
    /// let mut p = Pipeline::new("etl");
    /// p.add_step(clean).add_step(mean);
    /// let svg = p.to_svg()?;
    /// assert!(svg.starts_with("<svg"));
    /// assert!(svg.contains(r#"data-step="clean""#) && svg.contains(r#"data-input="raw""#));
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`](crate::Error::InvalidPipeline) if the
    /// steps do not form a DAG (as [`validate`](Self::validate)): the
    /// picture is of a pipeline that can run.
    ///
    /// [`PipelineResult::to_html`]: crate::PipelineResult::to_html
    pub fn to_svg(&self) -> Result<String> {
        Ok(Drawing::of(&self.plan_with_every_input()?).to_svg())
    }

    fn edges(&self) -> Vec<Edge<'_>> {
        let producer: HashMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.spec().outputs.iter().map(move |o| (o.name.as_ref(), i)))
            .collect();
        self.steps
            .iter()
            .enumerate()
            .flat_map(|(consumer, s)| {
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
    /// edges are labelled with the artifact. Node ids are positions
    /// (`s0`, `i0`), so a step named like an artifact stays a step, and
    /// every name is escaped.
    ///
    /// ```
    /// # use flowyml::{Pipeline, step};
    /// #[step(outputs = ["clean"])]
    /// fn clean(raw: &Vec<f64>) -> Vec<f64> { raw.clone() }
    /// let mut p = Pipeline::new("etl");
    /// p.add_step(clean);
    /// let dot = p.to_dot();
    /// assert!(dot.contains("s0 [label=\"clean\"]"));
    /// assert!(dot.contains("i0 [label=\"raw\", shape=ellipse]"));
    /// assert!(dot.contains("i0 -> s0 [label=\"raw\"]"));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
            quoted(&self.name)
        );
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  s{i} [label={}];", quoted(&s.spec().name));
        }
        let mut inputs: Vec<&str> = Vec::new();
        for (from, to, artifact) in self.edges() {
            let from = match from {
                Some(step) => format!("s{step}"),
                None => {
                    let k = match inputs.iter().position(|i| *i == artifact) {
                        Some(k) => k,
                        None => {
                            inputs.push(artifact);
                            let k = inputs.len() - 1;
                            let _ = writeln!(
                                out,
                                "  i{k} [label={}, shape=ellipse];",
                                quoted(artifact)
                            );
                            k
                        }
                    };
                    format!("i{k}")
                }
            };
            let _ = writeln!(out, "  {from} -> s{to} [label={}];", quoted(artifact));
        }
        out.push_str("}\n");
        out
    }

    /// The DAG as a Mermaid flowchart, for pages that render Mermaid
    /// (GitHub's Markdown does; mdBook needs the `mdbook-mermaid`
    /// preprocessor, or use [`to_svg`](Self::to_svg)).
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut out = String::from("flowchart LR\n");
        let name = |i: usize| self.steps[i].spec().name.as_ref();
        for i in 0..self.steps.len() {
            let _ = writeln!(out, "    {}[\"{}\"]", id(name(i)), name(i));
        }
        for (from, to, artifact) in self.edges() {
            let from = match from {
                Some(step) => id(name(step)),
                None => {
                    let input = format!("input_{}", id(artifact));
                    let _ = writeln!(out, "    {input}([\"{artifact}\"])");
                    input
                }
            };
            let _ = writeln!(out, "    {from} -->|{artifact}| {}", id(name(to)));
        }
        out
    }
}

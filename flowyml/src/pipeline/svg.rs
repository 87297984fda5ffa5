//! The DAG as an SVG picture: steps as boxes, run-time inputs as rounded
//! boxes, an arrow per pair of nodes that names (as its tooltip) the
//! artifacts it carries.
//!
//! `layout-rs` lays the graph out in layers (rank assignment, crossing
//! reduction, Brandes–Köpf placement: the Sugiyama method Graphviz's `dot`
//! uses); the SVG itself is written here, through its `RenderBackend`, so
//! that every box carries its step's name and status as attributes, a
//! tooltip, and the colour of its status. Edges carry no label in the
//! layout: its labels are placed as nodes of their own, which crowds a
//! fan-out like the quickstart's (one label landed on a step's box), so
//! the artifacts are named in each arrow's tooltip instead.

use std::fmt::Write as _;

use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::plan::{INPUT, Plan};
use crate::record::StepStatus;

/// What a box of the picture stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A step, with its status where the picture is of a run.
    Step(Option<StepStatus>),
    /// A run-time input.
    Input,
}

/// A node of the picture.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The step's or input's name.
    pub name: String,
    /// The text in its box: the name, and what a run adds (a duration).
    pub label: String,
    /// Its tooltip.
    pub title: String,
    pub kind: NodeKind,
}

/// A pipeline's DAG, ready to draw: its steps, then its run-time inputs,
/// and the edges between them, labelled with the artifacts they carry.
#[derive(Debug, Clone)]
pub(crate) struct Drawing {
    pub nodes: Vec<Node>,
    /// `(from, to, artifacts)`, node indices; one edge per pair of nodes,
    /// its label naming every artifact that passes between them.
    pub edges: Vec<(usize, usize, String)>,
}

/// The fill colour of a step with `status` (`None`: not run, the picture
/// of a pipeline), shared by the DAG, the timeline and the table of a run
/// report so that a status reads the same everywhere.
pub(crate) fn fill(status: Option<StepStatus>) -> &'static str {
    match status {
        None => "#e7f5ff",
        Some(StepStatus::Ran) => "#8ce99a",
        Some(StepStatus::Cached) => "#74c0fc",
        Some(StepStatus::Failed) => "#ff8787",
        Some(StepStatus::TimedOut) => "#ffc078",
        Some(StepStatus::Skipped) => "#dee2e6",
    }
}

/// The class of a step with `status`, as the report's CSS and its tests
/// name it (`ran`, `cached`, `failed`, `timed_out`, `skipped`; `planned`
/// for a step of a pipeline that has not run).
pub(crate) fn class(status: Option<StepStatus>) -> &'static str {
    match status {
        None => "planned",
        Some(StepStatus::Ran) => "ran",
        Some(StepStatus::Cached) => "cached",
        Some(StepStatus::Failed) => "failed",
        Some(StepStatus::TimedOut) => "timed_out",
        Some(StepStatus::Skipped) => "skipped",
    }
}

/// `text` escaped for XML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Drawing {
    /// The DAG of `plan`, every step not run yet.
    pub(crate) fn of(plan: &Plan) -> Drawing {
        let slot_names: Vec<&str> = plan.artifacts.names().collect();
        let steps = plan.steps();
        let mut nodes: Vec<Node> = (0..steps)
            .map(|i| {
                let name = plan.names.get(i).to_owned();
                Node {
                    label: name.clone(),
                    title: format!("step {name}"),
                    name,
                    kind: NodeKind::Step(None),
                }
            })
            .collect();
        // The input node of each slot that is a run-time input, made when
        // a step first reads it.
        let mut input_node = vec![usize::MAX; slot_names.len()];
        let mut edges: Vec<(usize, usize, String)> = Vec::new();
        for to in 0..steps {
            for &slot in plan.inputs_of(to) {
                let slot = slot as usize;
                let from = match plan.producers[slot] {
                    INPUT => {
                        if input_node[slot] == usize::MAX {
                            input_node[slot] = nodes.len();
                            nodes.push(Node {
                                name: slot_names[slot].to_owned(),
                                label: slot_names[slot].to_owned(),
                                title: format!("run-time input {}", slot_names[slot]),
                                kind: NodeKind::Input,
                            });
                        }
                        input_node[slot]
                    }
                    step => step as usize,
                };
                // Two artifacts between the same steps share one edge: the
                // layout takes one edge per pair of nodes.
                match edges.iter_mut().find(|(f, t, _)| (*f, *t) == (from, to)) {
                    Some((_, _, label)) => {
                        label.push_str(", ");
                        label.push_str(slot_names[slot]);
                    }
                    None => edges.push((from, to, slot_names[slot].to_owned())),
                }
            }
        }
        Drawing { nodes, edges }
    }

    /// The picture as a standalone SVG document (no script, no external
    /// resource), laid out from top to bottom.
    pub(crate) fn to_svg(&self) -> String {
        if self.nodes.is_empty() {
            let mut canvas = Canvas::new(self);
            canvas.note("no steps");
            return canvas.finish();
        }
        if self.nodes.len() > MAX_NODES {
            let mut canvas = Canvas::new(self);
            canvas.note(&format!(
                "{} steps and inputs: too many to lay out here (graph --format dot gives the DAG to Graphviz)",
                self.nodes.len()
            ));
            return canvas.finish();
        }
        // The layout asserts what it expects of a graph (one edge per pair
        // of nodes, which `of` ensures); should one still fail, the page
        // says so in place of the picture rather than losing the report.
        let laid_out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut canvas = Canvas::new(self);
            let mut graph = VisualGraph::new(ORIENTATION);
            let handles: Vec<_> = self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, node)| {
                    // Inputs are boxes too, drawn with round ends by the
                    // canvas: the layout's ellipses can leave an edge
                    // with no direction to meet them at.
                    // The node's index travels as its "properties", for
                    // the canvas to find its name, status and tooltip.
                    let shape = ShapeKind::new_box(&node.label);
                    // Sized to its label up front: a zero size is not
                    // always grown before edges are routed to it.
                    let size = get_shape_size(ORIENTATION, &shape, NODE_FONT, false);
                    graph.add_node(Element::create_with_properties(
                        shape,
                        node_look(),
                        ORIENTATION,
                        size,
                        i.to_string(),
                    ))
                })
                .collect();
            for (i, (from, to, _)) in self.edges.iter().enumerate() {
                // As for nodes, the edge's index is its "properties".
                let mut arrow = Arrow::simple_with_properties("", i.to_string());
                arrow.look = edge_look();
                graph.add_edge(arrow, handles[*from], handles[*to]);
            }
            graph.do_it(false, false, false, &mut canvas);
            canvas.finish()
        }));
        laid_out.unwrap_or_else(|_| {
            let mut canvas = Canvas::new(self);
            canvas.note("this graph could not be laid out: see its DOT form (graph --format dot)");
            canvas.finish()
        })
    }
}

/// The most nodes a picture lays out. The layout's crossing reduction
/// grows much faster than the graph: about 15 ms for 50 nodes, 0.36 s for
/// 150, 9 s for 500 and 70 s for 1,000 (release build; ten times that in a
/// debug one), and a picture of hundreds of boxes is not read anyway.
pub(crate) const MAX_NODES: usize = 150;

/// Top to bottom: a pipeline's DAG is usually deeper than it is wide,
/// and a page scrolls down, not across.
const ORIENTATION: Orientation = Orientation::TopToBottom;
/// Node labels' size, in pixels.
const NODE_FONT: usize = 14;
/// Edge labels' size: smaller.
const EDGE_FONT: usize = 11;

fn node_look() -> StyleAttr {
    StyleAttr::new(
        layout::core::color::Color::new(0x495057ff),
        1,
        None,
        6,
        NODE_FONT,
    )
}

fn edge_look() -> StyleAttr {
    StyleAttr::new(
        layout::core::color::Color::new(0x868e96ff),
        1,
        None,
        0,
        EDGE_FONT,
    )
}

/// Where the layout draws: SVG elements into `body`, the picture's extent
/// in `size`.
struct Canvas<'a> {
    drawing: &'a Drawing,
    body: String,
    size: Point,
    /// The centre of the node box drawn last: the layout draws a box, then
    /// its label at its centre; any other text is an edge's label.
    label_at: Option<Point>,
}

impl<'a> Canvas<'a> {
    fn new(drawing: &'a Drawing) -> Self {
        Canvas {
            drawing,
            body: String::new(),
            size: Point::new(0.0, 0.0),
            label_at: None,
        }
    }

    fn grow(&mut self, corner: Point) {
        self.size.x = self.size.x.max(corner.x + 8.0);
        self.size.y = self.size.y.max(corner.y + 8.0);
    }

    /// The node a shape's properties name.
    fn node(&self, properties: Option<String>) -> Option<&Node> {
        properties
            .and_then(|p| p.parse::<usize>().ok())
            .and_then(|i| self.drawing.nodes.get(i))
    }

    /// A line of text in place of a picture.
    fn note(&mut self, text: &str) {
        let _ = write!(
            self.body,
            r#"<text x="12" y="24" class="label">{}</text>"#,
            escape(text)
        );
        self.size = Point::new(12.0 + 8.0 * text.chars().count() as f64, 40.0);
    }

    /// The opening of a node's group: its classes, name and tooltip.
    fn open_node(&mut self, node: &Node) -> &'static str {
        let (kind, attribute, fill) = match node.kind {
            NodeKind::Step(status) => (class(status), "data-step", fill(status)),
            NodeKind::Input => ("input", "data-input", "#ffffff"),
        };
        let step = if node.kind == NodeKind::Input {
            ""
        } else {
            " step"
        };
        let _ = write!(
            self.body,
            r#"<g class="node{step} {kind}" {attribute}="{}"><title>{}</title>"#,
            escape(&node.name),
            escape(&node.title),
        );
        fill
    }

    fn finish(self) -> String {
        let (w, h) = (self.size.x.ceil(), self.size.y.ceil());
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="flowyml-dag" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">
<style>
.flowyml-dag text {{ font-family: "DejaVu Sans", Verdana, sans-serif; fill: #212529; pointer-events: none; }}
.flowyml-dag .label {{ font-size: {NODE_FONT}px; }}
.flowyml-dag .artifact {{ font-size: {EDGE_FONT}px; fill: #495057; font-style: italic; }}
</style>
<defs><marker id="flowyml-arrow" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polygon points="0 0, 10 3.5, 0 7" fill="#868e96"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
{}</svg>
"##,
            self.body
        )
    }
}

/// A coordinate as the SVG writes it: to a tenth of a pixel, so that the
/// same graph always gives the same text.
fn n(x: f64) -> String {
    format!("{:.1}", x)
}

impl RenderBackend for Canvas<'_> {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        self.grow(xy.add(size));
        let node = self.node(properties).cloned();
        let fill = match &node {
            Some(node) => self.open_node(node),
            None => "none",
        };
        let rounded = match node.as_ref().map(|n| n.kind) {
            Some(NodeKind::Input) => n(size.y / 2.0),
            _ => look.rounded.to_string(),
        };
        let _ = write!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" rx="{rounded}" fill="{fill}" stroke="{}" stroke-width="{}"/>"#,
            n(xy.x),
            n(xy.y),
            n(size.x),
            n(size.y),
            look.line_color.to_web_color(),
            look.line_width,
        );
        if node.is_some() {
            self.body.push_str("</g>\n");
            self.label_at = Some(xy.add(size.scale(0.5)));
        }
    }

    fn draw_line(&mut self, start: Point, stop: Point, look: &StyleAttr, _: Option<String>) {
        self.grow(start);
        self.grow(stop);
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"/>"#,
            n(start.x),
            n(start.y),
            n(stop.x),
            n(stop.y),
            look.line_color.to_web_color(),
            look.line_width
        );
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.grow(xy.add(size.scale(0.5)));
        let node = self.node(properties).cloned();
        let fill = match &node {
            Some(node) => self.open_node(node),
            None => "none",
        };
        let _ = write!(
            self.body,
            r#"<ellipse cx="{}" cy="{}" rx="{}" ry="{}" fill="{fill}" stroke="{}" stroke-width="{}"/>"#,
            n(xy.x),
            n(xy.y),
            n(size.x / 2.0),
            n(size.y / 2.0),
            look.line_color.to_web_color(),
            look.line_width,
        );
        if node.is_some() {
            self.body.push_str("</g>\n");
        }
    }

    fn draw_text(&mut self, xy: Point, text: &str, _look: &StyleAttr) {
        let label = self
            .label_at
            .take()
            .is_some_and(|at| (at.x - xy.x).abs() < 0.5 && (at.y - xy.y).abs() < 0.5);
        let (class, font) = if label {
            ("label", NODE_FONT)
        } else {
            ("artifact", EDGE_FONT)
        };
        let lines: Vec<&str> = text.lines().collect();
        let height = font as f64 * 1.25;
        let first = xy.y - height * (lines.len().saturating_sub(1)) as f64 / 2.0;
        let _ = write!(
            self.body,
            r#"<text class="{class}" text-anchor="middle" dominant-baseline="central">"#
        );
        for (k, line) in lines.iter().enumerate() {
            let _ = write!(
                self.body,
                r#"<tspan x="{}" y="{}">{}</tspan>"#,
                n(xy.x),
                n(first + height * k as f64),
                escape(line)
            );
        }
        self.body.push_str("</text>\n");
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        text: &str,
    ) {
        // The layout's path: the exit vector of the first point, then the
        // entry vector of each following one, as cubic Bézier segments.
        let (Some(first), Some(second)) = (path.first(), path.get(1)) else {
            return;
        };
        for (a, b) in path {
            self.grow(*a);
            self.grow(*b);
        }
        let mut d = format!(
            "M {} {} C {} {}, {} {}, {} {}",
            n(first.0.x),
            n(first.0.y),
            n(first.1.x),
            n(first.1.y),
            n(second.0.x),
            n(second.0.y),
            n(second.1.x),
            n(second.1.y)
        );
        for (a, b) in &path[2..] {
            let _ = write!(d, " S {} {}, {} {}", n(a.x), n(a.y), n(b.x), n(b.y));
        }
        let dash = if dashed {
            r#" stroke-dasharray="5,5""#
        } else {
            ""
        };
        let end = if head.1 {
            r#" marker-end="url(#flowyml-arrow)""#
        } else {
            ""
        };
        let edge = properties
            .and_then(|p| p.parse::<usize>().ok())
            .and_then(|i| self.drawing.edges.get(i));
        if let Some((from, to, artifacts)) = edge {
            let name = |i: usize| self.drawing.nodes[i].name.as_str();
            let _ = write!(
                self.body,
                r#"<g class="edge" data-artifacts="{}"><title>{} → {}: {}</title>"#,
                escape(artifacts),
                escape(name(*from)),
                escape(name(*to)),
                escape(artifacts)
            );
        }
        let _ = write!(
            self.body,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{}"{dash}{end}/>"#,
            look.line_color.to_web_color(),
            look.line_width,
        );
        if edge.is_some() {
            // A wider, invisible copy of the arrow to hover.
            let _ = write!(
                self.body,
                r#"<path d="{d}" fill="none" stroke="transparent" stroke-width="9"/></g>"#
            );
        }
        self.body.push('\n');
        // Labelled edges reach here split at a connector that carries the
        // label; a label left on the arrow itself is drawn at its middle.
        if !text.is_empty() {
            let mid = path[path.len() / 2].0;
            self.label_at = None;
            self.draw_text(mid, text, look);
        }
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded: usize) -> ClipHandle {
        // Only records clip, and the picture draws none.
        0
    }
}

//! The benchmarks page's charts: ratios against a baseline as horizontal
//! bars (the median) with whiskers (best to worst), a line at 1 (as fast as
//! the baseline) and one at the target. Drawn as plain SVG from
//! `benches/figures.json` by `cargo run --example bench_charts`, so the
//! pictures are regenerated from the figures, never drawn by hand; a test
//! checks they are fresh.

use std::fmt::Write as _;
use std::path::Path;

/// One measured ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// What was measured, e.g. `rerun, chain, 10k steps`.
    pub label: String,
    /// The median ratio over the runs.
    pub median: f64,
    /// The best (lowest) of the runs' ratios.
    pub best: f64,
    /// The worst (highest).
    pub worst: f64,
}

/// A chart of ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Its file name without extension, `bench-<id>.svg`.
    pub id: String,
    /// The title above the bars.
    pub title: String,
    /// What the ratio is, e.g. `flowyml / hand-written rayon (lower is faster)`.
    pub axis: String,
    /// The target ratio, drawn as a dashed line.
    pub target: Option<f64>,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
}

const WIDTH: f64 = 720.0;
const LABEL_WIDTH: f64 = 230.0;
const BAR_HEIGHT: f64 = 22.0;
const GAP: f64 = 8.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;
const RIGHT: f64 = 60.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round upper bound for the axis: the largest value, with room.
fn axis_max(chart: &Chart) -> f64 {
    let largest = chart
        .bars
        .iter()
        .map(|b| b.worst.max(b.median))
        .chain(chart.target)
        .fold(1.0_f64, f64::max);
    let step = if largest <= 2.0 { 0.5 } else { 1.0 };
    ((largest * 1.05) / step).ceil() * step
}

impl Chart {
    /// The chart as a self-contained SVG document.
    pub fn to_svg(&self) -> String {
        let max = axis_max(self);
        let plot = WIDTH - LABEL_WIDTH - RIGHT;
        let x = |v: f64| LABEL_WIDTH + plot * (v / max);
        let height = TOP + self.bars.len() as f64 * (BAR_HEIGHT + GAP) + BOTTOM;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        let bottom = height - BOTTOM;
        // Grid lines and their values.
        let step = if max <= 2.0 { 0.25 } else { 0.5 };
        let mut v = 0.0;
        while v <= max + 1e-9 {
            let gx = x(v);
            let _ = writeln!(
                s,
                r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{bottom:.1}" stroke="#e5e5e5"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{v}</text>"##,
                bottom + 16.0
            );
            v += step;
        }
        let one = x(1.0);
        let _ = writeln!(
            s,
            r##"<line x1="{one:.1}" y1="{TOP}" x2="{one:.1}" y2="{bottom:.1}" stroke="#333" stroke-width="1.5"/>"##
        );
        if let Some(target) = self.target {
            let tx = x(target);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5,4"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#c0392b">target {target}</text>"##,
                TOP - 6.0
            );
        }
        for (i, bar) in self.bars.iter().enumerate() {
            let y = TOP + GAP / 2.0 + i as f64 * (BAR_HEIGHT + GAP);
            let mid = y + BAR_HEIGHT / 2.0;
            let met = self.target.is_none_or(|t| bar.median <= t);
            let fill = if met { "#2e86c1" } else { "#e67e22" };
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL_WIDTH - 8.0,
                mid + 4.5,
                escape(&bar.label)
            );
            let _ = writeln!(
                s,
                r#"<rect x="{LABEL_WIDTH}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" fill="{fill}"><title>{}: median {:.2}, best {:.2}, worst {:.2}</title></rect>"#,
                x(bar.median) - LABEL_WIDTH,
                escape(&bar.label),
                bar.median,
                bar.best,
                bar.worst
            );
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#222"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#222"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#222"/>"##,
                x(bar.best),
                x(bar.worst),
                x(bar.best),
                mid - 5.0,
                x(bar.best),
                mid + 5.0,
                x(bar.worst),
                mid - 5.0,
                x(bar.worst),
                mid + 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{:.2}</text>"#,
                x(bar.worst.max(bar.median)) + 6.0,
                mid + 4.5,
                bar.median
            );
        }
        let _ = writeln!(
            s,
            // Centred on the whole chart, not the plot: the axis's words are
            // wider than the plot's right half.
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
            WIDTH / 2.0,
            height - 8.0,
            escape(&self.axis)
        );
        s.push_str("</svg>\n");
        s
    }
}

/// The charts described in a figures file: a JSON array of objects with
/// `id`, `title`, `axis`, an optional `target`, and `bars`, each
/// `[label, median, best, worst]`.
///
/// # Errors
/// The file cannot be read, or an entry is not of that shape (named).
pub fn load(path: &Path) -> Result<Vec<Chart>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let charts = json
        .as_array()
        .ok_or_else(|| format!("{}: not an array of charts", path.display()))?;
    charts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let field = |name: &str| {
                c[name]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("chart {i}: `{name}` is not a string"))
            };
            let bars = c["bars"]
                .as_array()
                .ok_or_else(|| format!("chart {i}: `bars` is not an array"))?
                .iter()
                .map(|b| {
                    let number = |k: usize| {
                        b[k].as_f64()
                            .ok_or_else(|| format!("chart {i}: bar {b}: item {k} is not a number"))
                    };
                    Ok(Bar {
                        label: b[0]
                            .as_str()
                            .ok_or_else(|| format!("chart {i}: bar {b}: no label"))?
                            .to_owned(),
                        median: number(1)?,
                        best: number(2)?,
                        worst: number(3)?,
                    })
                })
                .collect::<Result<Vec<Bar>, String>>()?;
            Ok(Chart {
                id: field("id")?,
                title: field("title")?,
                axis: field("axis")?,
                target: c["target"].as_f64(),
                bars,
            })
        })
        .collect()
}

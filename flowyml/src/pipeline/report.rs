//! A run as one self-contained HTML page ([`PipelineResult::to_html`]):
//! the DAG coloured by status, a timeline with a lane per worker, what the
//! cache served and why the rest ran, and a table of the steps. No network
//! and no external script: the file opens anywhere, offline, as it is.

use std::fmt::Write as _;
use std::time::Duration;

use super::result::{PipelineResult, StepRecord};
use super::svg::{Drawing, NodeKind, class, escape, fill};
use crate::record::StepStatus;

/// Every status, in the order the legend shows them.
const STATUSES: [StepStatus; 5] = [
    StepStatus::Ran,
    StepStatus::Cached,
    StepStatus::Failed,
    StepStatus::TimedOut,
    StepStatus::Skipped,
];

/// A duration as the report writes it: always in milliseconds, so that
/// durations compare at a glance down a column.
fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// What a step's record says beyond its status: its error, why it ran, or
/// its notes.
fn why(s: &StepRecord<'_>) -> String {
    match (s.error, s.reason) {
        (Some(e), _) => e.to_owned(),
        (None, Some(r)) => {
            let mut text = format!("ran: {r}");
            for note in s.notes {
                text.push_str("; ");
                text.push_str(note);
            }
            text
        }
        (None, None) => s.notes.join("; "),
    }
}

/// A step's tooltip: name, status, timing, worker, and why.
fn tooltip(s: &StepRecord<'_>) -> String {
    let mut text = format!("{}: {}", s.name, s.status);
    if s.status != StepStatus::Skipped {
        let _ = write!(text, ", {} from {}", ms(s.duration), ms(s.start));
        match s.worker {
            Some(w) => {
                let _ = write!(text, " on worker {w}");
            }
            None => text.push_str(" outside the pool"),
        }
    }
    let why = why(s);
    if !why.is_empty() {
        text.push('\n');
        text.push_str(&why);
    }
    text
}

/// The text in a step's box of the DAG.
fn label(s: &StepRecord<'_>) -> String {
    match s.status {
        StepStatus::Ran => format!("{}\n{}", s.name, ms(s.duration)),
        StepStatus::Cached => format!("{}\ncached", s.name),
        StepStatus::Skipped => format!("{}\nskipped", s.name),
        StepStatus::Failed | StepStatus::TimedOut => {
            format!("{}\n{} after {}", s.name, s.status, ms(s.duration))
        }
    }
}

/// The page's style: status colours come from [`fill`], so that the DAG,
/// the timeline, the legend and the table agree.
fn style() -> String {
    let mut css = String::from(
        "body { font-family: \"DejaVu Sans\", Verdana, sans-serif; margin: 24px; color: #212529; background: #ffffff; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 28px 0 8px; }
code { font-family: \"DejaVu Sans Mono\", monospace; }
.summary { margin: 4px 0; }
.legend { display: flex; gap: 14px; list-style: none; padding: 0; margin: 8px 0; font-size: 13px; }
.chip { display: inline-block; padding: 1px 8px; border-radius: 4px; border: 1px solid #868e96; }
.picture { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #dee2e6; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.hl td { background: #fff3bf; }
.hl rect, .hl ellipse { stroke: #000000; stroke-width: 3; }
.timeline text { font-size: 12px; fill: #212529; pointer-events: none; }
.timeline .lane { fill: #f8f9fa; }
.timeline .axis { stroke: #adb5bd; }
",
    );
    for status in STATUSES {
        let _ = writeln!(
            css,
            ".chip.{} {{ background: {}; }}",
            class(Some(status)),
            fill(Some(status))
        );
    }
    css
}

/// Highlights a step everywhere it appears (DAG, timeline, table) while
/// the pointer is on any of them.
const SCRIPT: &str = r#"(function () {
  function mark(name, on) {
    document.querySelectorAll('[data-step]').forEach(function (el) {
      if (el.getAttribute('data-step') === name) { el.classList.toggle('hl', on); }
    });
  }
  document.querySelectorAll('[data-step]').forEach(function (el) {
    var name = el.getAttribute('data-step');
    el.addEventListener('mouseenter', function () { mark(name, true); });
    el.addEventListener('mouseleave', function () { mark(name, false); });
  });
})();"#;

/// The timeline's geometry, in pixels.
const LABELS: f64 = 130.0;
const PLOT: f64 = 760.0;
const LANE: f64 = 30.0;
const BAR: f64 = 20.0;
/// About how wide a character of the timeline's 12 px font is, to tell
/// whether a name fits in its bar.
const CHAR: f64 = 7.2;

impl PipelineResult {
    /// The run as one self-contained HTML page: the DAG drawn as SVG with
    /// each step coloured by its status and labelled with its duration; a
    /// timeline with one lane per worker (hover a bar for the step's name,
    /// duration and why it ran); what the cache served and why the other
    /// steps ran; a table of the steps. It needs no network and loads no
    /// script from anywhere: write it to a file and open it (the command
    /// line's `run --report FILE.html` does).
    ///
    /// Every element that stands for a step carries `data-step="NAME"`
    /// and its status as a class (`ran`, `cached`, `failed`, `timed_out`,
    /// `skipped`), for a program that reads the page.
    ///
    /// ```
    /// use flowyml::pipeline;
    ///
    /// #[pipeline(name = "report_demo")]
    /// mod report_demo {
    ///     #[step(outputs = ["numbers"])]
    ///     fn load() -> Vec<u32> { (1..=10).collect() }
    ///     #[step(outputs = ["total"])]
    ///     fn total(numbers: &Vec<u32>) -> u32 { numbers.iter().sum() }
    /// }
    ///
    /// let result = report_demo::pipeline().run()?;
    /// let html = result.to_html();
    /// assert!(html.starts_with("<!DOCTYPE html>"));
    /// assert!(html.contains(r#"class="node step ran" data-step="total""#));
    /// std::fs::write(std::env::temp_dir().join("report_demo.html"), html)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_html(&self) -> String {
        let steps: Vec<StepRecord<'_>> = self.steps().collect();
        let mut drawing = Drawing::of(&self.plan);
        for (node, s) in drawing.nodes.iter_mut().zip(&steps) {
            node.kind = NodeKind::Step(Some(s.status));
            node.label = label(s);
            node.title = tooltip(s);
        }
        let mut html = String::with_capacity(16 * 1024);
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>flowyml run: {name}</title>\n<style>\n{style}</style>\n</head>\n<body>\n",
            name = escape(&self.pipeline),
            style = style(),
        );
        self.write_header(&mut html, &steps);
        let _ = write!(
            html,
            "<section id=\"dag\">\n<h2>DAG</h2>\n<div class=\"picture\">\n{}</div>\n</section>\n",
            drawing.to_svg()
        );
        let _ = write!(
            html,
            "<section id=\"timeline\">\n<h2>Timeline</h2>\n<div class=\"picture\">\n{}</div>\n</section>\n",
            self.timeline(&steps)
        );
        self.write_cache(&mut html, &steps);
        write_table(&mut html, &steps);
        let _ = write!(html, "<script>\n{SCRIPT}\n</script>\n</body>\n</html>\n");
        html
    }

    fn write_header(&self, html: &mut String, steps: &[StepRecord<'_>]) {
        let outcome = if self.succeeded() {
            "succeeded"
        } else {
            "did not succeed"
        };
        let _ = write!(
            html,
            "<header>\n<h1>Pipeline <code>{}</code></h1>\n<p class=\"summary\">{} steps in {} on {} workers, started {}{}: <strong>{outcome}</strong>.</p>\n<ul class=\"legend\">\n",
            escape(&self.pipeline),
            steps.len(),
            ms(self.duration),
            self.workers,
            humantime::format_rfc3339_seconds(self.started_at),
            self.run_id
                .map_or_else(String::new, |id| format!(" (run {id})")),
        );
        for status in STATUSES {
            let count = steps.iter().filter(|s| s.status == status).count();
            let _ = writeln!(
                html,
                "<li><span class=\"chip {}\">{status}</span> {count}</li>",
                class(Some(status))
            );
        }
        html.push_str("</ul>\n</header>\n");
    }

    /// The timeline: a lane per worker of the executor, one for steps
    /// that ran outside the pool (cached ones, checked on the calling
    /// thread), one for the steps that did not run.
    fn timeline(&self, steps: &[StepRecord<'_>]) -> String {
        let ran: Vec<&StepRecord<'_>> = steps
            .iter()
            .filter(|s| s.status != StepStatus::Skipped)
            .collect();
        let outside = ran.iter().any(|s| s.worker.is_none());
        let skipped: Vec<&StepRecord<'_>> = steps
            .iter()
            .filter(|s| s.status == StepStatus::Skipped)
            .collect();
        let mut lanes: Vec<String> = (0..self.workers).map(|w| format!("worker {w}")).collect();
        // A worker beyond the executor's count (none should be) still gets
        // a lane rather than a bar drawn outside the picture.
        let highest = ran.iter().filter_map(|s| s.worker).max();
        if let Some(h) = highest {
            for w in lanes.len()..=h {
                lanes.push(format!("worker {w}"));
            }
        }
        let outside_lane = lanes.len();
        if outside {
            lanes.push("outside the pool".to_owned());
        }
        let total = ran
            .iter()
            .map(|s| s.start + s.duration)
            .chain([self.duration])
            .max()
            .unwrap_or_default()
            .max(Duration::from_micros(1));
        let x = |d: Duration| LABELS + PLOT * d.as_secs_f64() / total.as_secs_f64();
        let top = 24.0;
        let skipped_at = top + LANE * lanes.len() as f64;
        // Steps that did not run, as chips wrapped over rows.
        let mut chips = Vec::new();
        let (mut cx, mut rows) = (LABELS, usize::from(!skipped.is_empty()));
        for s in &skipped {
            let w = (s.name.chars().count() as f64 * CHAR + 14.0).max(40.0);
            if cx + w > LABELS + PLOT && cx > LABELS {
                cx = LABELS;
                rows += 1;
            }
            chips.push((cx, skipped_at + LANE * (rows - 1) as f64, w, s));
            cx += w + 6.0;
        }
        let height = skipped_at + LANE * rows as f64 + 4.0;
        let width = LABELS + PLOT + 40.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">\n"
        );
        for k in 0..=4 {
            let at = total.mul_f64(f64::from(k) / 4.0);
            let _ = writeln!(
                svg,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"18\" x2=\"{x:.1}\" y2=\"{height:.1}\"/><text x=\"{x:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
                ms(at),
                x = x(at),
            );
        }
        for (i, name) in lanes.iter().enumerate() {
            let y = top + LANE * i as f64;
            let _ = writeln!(
                svg,
                "<rect class=\"lane\" x=\"{LABELS}\" y=\"{y:.1}\" width=\"{PLOT}\" height=\"{BAR}\"/><text x=\"4\" y=\"{:.1}\">{name}</text>",
                y + BAR / 2.0 + 4.0
            );
        }
        for s in &ran {
            let lane = s.worker.unwrap_or(outside_lane);
            let y = top + LANE * lane as f64;
            let (x0, w) = (x(s.start), (x(s.start + s.duration) - x(s.start)).max(2.0));
            bar(&mut svg, s, (x0, y, w), false);
        }
        if !skipped.is_empty() {
            let _ = writeln!(
                svg,
                "<text x=\"4\" y=\"{:.1}\">did not run</text>",
                skipped_at + BAR / 2.0 + 4.0
            );
        }
        for (cx, y, w, s) in chips {
            bar(&mut svg, s, (cx, y, w), true);
        }
        svg.push_str("</svg>\n");
        svg
    }

    /// What the cache served, and why each other step ran.
    fn write_cache(&self, html: &mut String, steps: &[StepRecord<'_>]) {
        html.push_str("<section id=\"cache\">\n<h2>Cache</h2>\n");
        let cached: Vec<&str> = steps
            .iter()
            .filter(|s| s.status == StepStatus::Cached)
            .map(|s| s.name)
            .collect();
        if self.buffers.keys.is_empty() && cached.is_empty() {
            html.push_str(
                "<p>This pipeline has no cache: every step that could run, ran.</p>\n</section>\n",
            );
            return;
        }
        let _ = writeln!(
            html,
            "<p>{} of {} steps came from the cache{}</p>",
            cached.len(),
            steps.len(),
            if cached.is_empty() {
                ".".to_owned()
            } else {
                format!(": {}.", list(&cached))
            }
        );
        let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
        for s in steps {
            if let Some(reason) = s.reason {
                let reason = reason.to_string();
                match reasons.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => names.push(s.name),
                    None => reasons.push((reason, vec![s.name])),
                }
            }
        }
        if !reasons.is_empty() {
            html.push_str("<p>Why the others ran:</p>\n<ul class=\"reasons\">\n");
            for (reason, names) in &reasons {
                let _ = writeln!(html, "<li>{}: {}</li>", escape(reason), list(names));
            }
            html.push_str("</ul>\n");
        }
        html.push_str("</section>\n");
    }
}

/// Step `s` as a bar of the timeline at `(x, y)`, `w` wide, with its
/// tooltip, and its name where it fits; dashed for a step that did not
/// run (a chip, always named).
fn bar(svg: &mut String, s: &StepRecord<'_>, (x, y, w): (f64, f64, f64), dashed: bool) {
    let stroke = if dashed {
        "stroke=\"#868e96\" stroke-dasharray=\"3,2\""
    } else {
        "stroke=\"#495057\" stroke-width=\"1\""
    };
    let _ = write!(
        svg,
        "<g class=\"bar {}\" data-step=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"3\" fill=\"{}\" {stroke}/>",
        class(Some(s.status)),
        escape(s.name),
        escape(&tooltip(s)),
        fill(Some(s.status)),
    );
    // A bar's name shows only where it fits; a chip is sized to its name.
    if dashed {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 7.0,
            y + BAR / 2.0 + 4.0,
            escape(s.name)
        );
    } else if s.name.chars().count() as f64 * CHAR + 8.0 <= w {
        let _ = write!(
            svg,
            "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 4.0,
            y + BAR / 2.0 + 4.0,
            escape(s.name)
        );
    }
    svg.push_str("</g>\n");
}

/// Step names as a list of code spans.
fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("<code>{}</code>", escape(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_table(html: &mut String, steps: &[StepRecord<'_>]) {
    html.push_str(
        "<section id=\"steps\">\n<h2>Steps</h2>\n<table>\n<thead><tr><th>step</th><th>status</th><th>start</th><th>duration</th><th>worker</th><th>attempts</th><th>why it ran, error, notes</th></tr></thead>\n<tbody>\n",
    );
    for s in steps {
        let (start, duration) = if s.status == StepStatus::Skipped {
            (String::new(), String::new())
        } else {
            (ms(s.start), ms(s.duration))
        };
        let _ = writeln!(
            html,
            "<tr class=\"{class}\" data-step=\"{name}\"><td><code>{name}</code></td><td><span class=\"chip {class}\">{status}</span></td><td class=\"num\">{start}</td><td class=\"num\">{duration}</td><td class=\"num\">{worker}</td><td class=\"num\">{attempts}</td><td>{why}</td></tr>",
            class = class(Some(s.status)),
            name = escape(s.name),
            status = s.status,
            worker = s.worker.map_or_else(|| "-".to_owned(), |w| w.to_string()),
            attempts = s.attempts,
            why = escape(&why(s)),
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

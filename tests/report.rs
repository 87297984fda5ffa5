//! The pictures of a pipeline and of a run: `Pipeline::to_svg`,
//! `PipelineResult::to_html`, `graph --format svg`, `run --report`; the
//! report as headless Chromium renders it; the book's pictures, kept
//! fresh.
//!
//! The browser tests skip with a printed reason where Chromium is absent
//! and fail instead where `FLOWYML_REQUIRE_BROWSER=1` (CI sets it).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowyml::{Error, Pipeline, PipelineResult, StepStatus, pipeline, step};

use crate::cli::cli;

#[pipeline(name = "report_shapes", inputs = ["count"])]
mod report_shapes {
    #[step(outputs = ["numbers"])]
    pub fn load(count: &u32) -> Vec<u32> {
        (1..=*count).collect()
    }

    #[step(outputs = ["total"])]
    pub fn total(numbers: &Vec<u32>) -> u64 {
        numbers.iter().map(|&n| u64::from(n)).sum()
    }

    #[step(outputs = ["checked"])]
    pub fn check(numbers: &Vec<u32>) -> Result<u32, String> {
        Err(format!("{} numbers <too many> & \"quoted\"", numbers.len()))
    }

    #[step(outputs = ["published"])]
    pub fn publish(checked: &u32, total: &u64) -> String {
        format!("{checked} {total}")
    }
}

/// A run of `report_shapes` with every status there is but a time-out:
/// `load` cached, `total` invalidated (so it ran, with a reason), `check`
/// failed, `publish` skipped.
fn mixed_run(cache: &Path) -> PipelineResult {
    let build = || {
        let mut p = report_shapes::pipeline();
        p.input("count", 50_u32)
            .keep_going(true)
            .cache_dir(cache)
            .expect("cache");
        p
    };
    let first = build().run().expect_err("check fails");
    let first = failed_result(first);
    assert_eq!(first.step("load").expect("load").status, StepStatus::Ran);
    let mut again = build();
    again.invalidate("total").expect("a step");
    let result = failed_result(again.run().expect_err("check fails again"));
    let status = |name: &str| result.step(name).expect("a step").status;
    assert_eq!(
        [
            status("load"),
            status("total"),
            status("check"),
            status("publish")
        ],
        [
            StepStatus::Cached,
            StepStatus::Ran,
            StepStatus::Failed,
            StepStatus::Skipped
        ]
    );
    result
}

fn failed_result(error: Error) -> PipelineResult {
    match error {
        Error::StepFailed { result, .. } => (*result).clone(),
        other => panic!("expected a failed step, got {other}"),
    }
}

/// The opening tags in `html` whose attributes contain every one of
/// `needles`.
fn tags_with<'h>(html: &'h str, needles: &[&str]) -> Vec<&'h str> {
    html.split('<')
        .filter_map(|t| t.split('>').next())
        .filter(|t| needles.iter().all(|n| t.contains(n)))
        .collect()
}

/// The value of attribute `name` in the opening tag `tag`.
fn attribute<'t>(tag: &'t str, name: &str) -> &'t str {
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in <{tag}>"))
        + name.len()
        + 3;
    &tag[start..start + tag[start..].find('"').expect("a closing quote")]
}

/// `html`'s part from `from` to the next `to`.
fn between<'h>(html: &'h str, from: &str, to: &str) -> &'h str {
    let start = html
        .find(from)
        .unwrap_or_else(|| panic!("no `{from}` in {html}"));
    let end = start + html[start..].find(to).expect("closed");
    &html[start..end]
}

#[test]
fn the_svg_of_a_pipeline_has_every_step_input_and_edge() {
    let svg = report_shapes::pipeline().to_svg().expect("a DAG");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    for step in ["load", "total", "check", "publish"] {
        let boxes = tags_with(&svg, &[&format!("data-step=\"{step}\"")]);
        assert_eq!(boxes.len(), 1, "one box for {step}: {svg}");
        assert!(boxes[0].contains("class=\"node step planned\""), "{svg}");
    }
    assert_eq!(tags_with(&svg, &["data-input=\"count\""]).len(), 1);
    // One arrow per edge, named by the artifacts it carries.
    let mut edges: Vec<&str> = tags_with(&svg, &["class=\"edge\""])
        .iter()
        .map(|t| attribute(t, "data-artifacts"))
        .collect();
    edges.sort_unstable();
    assert_eq!(
        edges,
        ["checked", "count", "numbers", "numbers", "total"],
        "{svg}"
    );
    assert!(
        svg.contains("<title>load → check: numbers</title>"),
        "{svg}"
    );
    // Drawn twice, the same picture: the book's copy can be checked.
    assert_eq!(svg, report_shapes::pipeline().to_svg().expect("a DAG"));
}

#[test]
fn two_artifacts_between_two_steps_share_one_labelled_edge() {
    #[step(outputs = ["low", "high"])]
    fn split(values: &Vec<i32>) -> (Vec<i32>, Vec<i32>) {
        values.iter().partition(|v| **v < 0)
    }
    #[step(outputs = ["both"])]
    fn join(low: &Vec<i32>, high: &Vec<i32>) -> usize {
        low.len() + high.len()
    }
    let mut p = Pipeline::new("pairs");
    p.add_step(split).add_step(join);
    let svg = p.to_svg().expect("a DAG");
    let edges: Vec<&str> = tags_with(&svg, &["class=\"edge\""])
        .iter()
        .map(|t| attribute(t, "data-artifacts"))
        .collect();
    assert_eq!(edges, ["values", "low, high"], "{svg}");
}

#[test]
fn names_are_escaped_in_the_picture() {
    let step = flowyml::step::FnStep::builder("a<b & \"c\"")
        .input::<u8>("in <put>")
        .output::<u8>("out")
        .build(|ctx| {
            let x = *ctx.input::<u8>(0)?;
            ctx.set_output(0, x);
            Ok(())
        });
    let mut p = Pipeline::new("escapes");
    p.add_step(step);
    let svg = p.to_svg().expect("a DAG");
    assert!(
        svg.contains("data-step=\"a&lt;b &amp; &quot;c&quot;\""),
        "{svg}"
    );
    assert!(svg.contains("data-input=\"in &lt;put&gt;\""), "{svg}");
    assert!(!svg.contains("a<b") && !svg.contains("<put>"), "{svg}");
}

#[test]
fn an_empty_pipeline_is_a_picture_that_says_so_and_a_cycle_is_refused() {
    let svg = Pipeline::new("empty").to_svg().expect("a picture");
    assert!(svg.contains(">no steps</text>"), "{svg}");

    #[step(outputs = ["a"])]
    fn one(b: &u8) -> u8 {
        *b
    }
    #[step(outputs = ["b"])]
    fn two(a: &u8) -> u8 {
        *a
    }
    let mut p = Pipeline::new("circle");
    p.add_step(one).add_step(two);
    let err = p.to_svg().expect_err("a cycle is no DAG");
    assert!(matches!(err, Error::InvalidPipeline { .. }), "{err}");
    assert!(err.to_string().contains("one -> two"), "{err}");
}

#[test]
fn a_dag_too_large_to_lay_out_says_so_in_its_picture_and_report() {
    let mut p = Pipeline::new("wide");
    p.input("seed", 1_u64);
    for i in 0..400 {
        let input = if i == 0 {
            "seed".to_owned()
        } else {
            format!("a{}", i / 2)
        };
        p.add_step(
            flowyml::step::FnStep::builder(format!("s{i}"))
                .input::<u64>(input)
                .output::<u64>(format!("a{i}"))
                .build(|ctx| {
                    let x = *ctx.input::<u64>(0)?;
                    ctx.set_output(0, x + 1);
                    Ok(())
                }),
        );
    }
    let svg = p.to_svg().expect("a DAG");
    assert!(
        svg.contains("401 steps and inputs: too many to lay out here"),
        "{svg}"
    );
    let html = p.run().expect("runs").to_html();
    assert!(html.contains("too many to lay out here"));
    // The timeline and the table still have every step.
    let timeline = between(&html, "<section id=\"timeline\">", "</section>");
    assert_eq!(tags_with(timeline, &["class=\"bar ran\""]).len(), 400);
}

#[test]
fn the_html_report_shows_each_step_in_the_dag_the_timeline_and_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = mixed_run(dir.path());
    let html = result.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing is fetched.
    for outside in [
        "src=", "href=", "http://", "https://", "@import", "url(http",
    ] {
        let found = html
            .match_indices(outside)
            .map(|(i, _)| &html[i.saturating_sub(40)..(i + 60).min(html.len())])
            .filter(|context| !context.contains("http://www.w3.org/2000/svg"))
            .collect::<Vec<_>>();
        assert!(found.is_empty(), "`{outside}` in the report: {found:?}");
    }
    let dag = between(&html, "<section id=\"dag\">", "</section>");
    let timeline = between(&html, "<section id=\"timeline\">", "</section>");
    let table = between(&html, "<section id=\"steps\">", "</section>");
    for (step, class, fill) in [
        ("load", "cached", "#74c0fc"),
        ("total", "ran", "#8ce99a"),
        ("check", "failed", "#ff8787"),
        ("publish", "skipped", "#dee2e6"),
    ] {
        let step_attr = format!("data-step=\"{step}\"");
        let node = format!("class=\"node step {class}\"");
        assert_eq!(
            tags_with(dag, &[&node, &step_attr]).len(),
            1,
            "{step} in the DAG: {dag}"
        );
        let bar = format!("class=\"bar {class}\"");
        assert_eq!(
            tags_with(timeline, &[&bar, &step_attr]).len(),
            1,
            "{step} in the timeline: {timeline}"
        );
        assert_eq!(
            tags_with(table, &[&step_attr]).len(),
            1,
            "{step} in the table"
        );
        let fills = format!("fill=\"{fill}\"");
        assert!(
            tags_with(dag, &["<rect", &fills]).len() + tags_with(dag, &["rect", &fills]).len() > 0,
            "{class} is {fill} in the DAG"
        );
        assert!(
            !tags_with(timeline, &["rect", &fills]).is_empty(),
            "{class} is {fill} in the timeline"
        );
    }
    // The DAG's labels: a duration for what ran, the status otherwise.
    let total = result.step("total").expect("total");
    assert!(dag.contains(">cached</tspan>") && dag.contains(">skipped</tspan>"));
    assert!(total.duration > Duration::ZERO);
    // Why `total` ran, in its tooltip, the cache section and the table.
    assert!(
        between(&html, "<section id=\"cache\">", "</section>")
            .contains("invalidated: <code>total</code>"),
        "{html}"
    );
    assert!(html.contains("1 of 4 steps came from the cache: <code>load</code>."));
    // The failed step's error, escaped.
    assert!(
        table.contains("50 numbers &lt;too many&gt; &amp; &quot;quoted&quot;"),
        "{table}"
    );
    assert!(!html.contains("<too many>"));
    // A lane per worker of the executor, and one for what did not run.
    for w in 0..result.workers {
        assert!(
            timeline.contains(&format!(">worker {w}</text>")),
            "{timeline}"
        );
    }
    assert!(timeline.contains(">did not run</text>"), "{timeline}");
}

#[pipeline(name = "report_cli", inputs = ["text"])]
mod report_cli {
    #[step(outputs = ["word"])]
    pub fn shout(text: &String) -> String {
        text.to_uppercase()
    }

    #[step(outputs = ["length"])]
    pub fn measure(word: &String) -> Result<usize, String> {
        if word.is_empty() {
            Err("nothing to measure".into())
        } else {
            Ok(word.len())
        }
    }
}

#[test]
fn graph_format_svg_prints_the_pipelines_picture() {
    let (result, out) = cli(&["graph", "report_cli", "--format", "svg"]);
    result.expect("graph works");
    let mut p = flowyml::registry::pipeline("report_cli").expect("registered");
    assert_eq!(out, p.to_svg().expect("a DAG"));
    p.input("text", "x".to_owned());
    assert_eq!(
        out,
        p.to_svg().expect("a DAG"),
        "the same with inputs given"
    );
    let (result, _) = cli(&["graph", "report_cli", "--format", "png"]);
    let err = result.expect_err("no such format");
    assert!(err.to_string().contains("png"), "{err}");
}

#[test]
fn run_report_writes_the_page_for_a_run_that_succeeds_or_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("run.html");
    let page_arg = page.to_str().expect("utf-8 path");
    let (result, _) = cli(&[
        "run",
        "report_cli",
        "--input-str",
        "text=hello",
        "--no-cache",
        "--report",
        page_arg,
    ]);
    result.expect("runs");
    let html = std::fs::read_to_string(&page).expect("written");
    assert!(html.contains("<strong>succeeded</strong>"));
    assert_eq!(
        tags_with(&html, &["class=\"node step ran\"", "data-step=\"measure\""]).len(),
        1
    );

    let (result, _) = cli(&[
        "run",
        "report_cli",
        "--input-str",
        "text=",
        "--no-cache",
        "--report",
        page_arg,
    ]);
    assert!(result.is_err(), "measure fails");
    let html = std::fs::read_to_string(&page).expect("written for a failed run too");
    assert!(html.contains("<strong>did not succeed</strong>"));
    assert!(html.contains("nothing to measure"));

    let missing = dir.path().join("no/such/dir/run.html");
    let (result, _) = cli(&[
        "run",
        "report_cli",
        "--input-str",
        "text=hi",
        "--no-cache",
        "--report",
        missing.to_str().expect("utf-8 path"),
    ]);
    let err = result.expect_err("the directory does not exist");
    assert!(err.to_string().contains("no/such/dir/run.html"), "{err}");
}

// --- In a real browser -------------------------------------------------

/// Headless Chromium, or why there is none (after saying so, or failing
/// where `FLOWYML_REQUIRE_BROWSER=1`).
fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    });
    if found.is_none() {
        let why = "no `chromium` on PATH (Debian: apt-get install chromium)";
        if std::env::var("FLOWYML_REQUIRE_BROWSER").is_ok_and(|v| v.trim() == "1") {
            panic!("{test}: FLOWYML_REQUIRE_BROWSER=1, but {why}");
        }
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    }
    found
}

/// What Chromium made of a page: its DOM after the scripts ran, and every
/// message the page wrote to its console (errors included).
struct Rendered {
    dom: String,
    console: Vec<String>,
}

/// Runs headless Chromium on `page` with `args`, within a minute.
fn browse(browser: &Path, page: &Path, args: &[&str]) -> Rendered {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            // As root (CI) Chromium has no sandbox to run in; the page is
            // one this test wrote.
            "--no-sandbox",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium on {} took over a minute", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out.join().expect("reader").expect("stdout");
    let log = err.join().expect("reader").expect("stderr");
    assert!(status.success(), "chromium failed ({status}): {log}");
    let console = log
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Rendered { dom, console }
}

/// Appended to a copy of the report: writes what the browser laid out
/// (each step element's section, rendered size and computed fill) into the
/// DOM, for `--dump-dom` to hand back.
const PROBE: &str = r#"<script>
(function () {
  var found = [];
  document.querySelectorAll('[data-step]').forEach(function (el) {
    var section = el.closest('section');
    var shape = el.querySelector('rect');
    var box = el.getBoundingClientRect();
    found.push({
      step: el.getAttribute('data-step'),
      section: section ? section.id : '',
      status: el.getAttribute('class'),
      width: box.width, height: box.height,
      fill: shape ? getComputedStyle(shape).fill : ''
    });
  });
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
})();
</script>"#;

#[test]
fn the_report_renders_in_chromium_with_every_step_coloured_and_no_console_message() {
    const TEST: &str = "the_report_renders_in_chromium";
    let Some(browser) = chromium(TEST) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let result = mixed_run(&dir.path().join("cache"));
    let page = dir.path().join("report.html");
    let html = result
        .to_html()
        .replace("</body>", &format!("{PROBE}</body>"));
    std::fs::write(&page, html).expect("written");
    let rendered = browse(&browser, &page, &["--dump-dom"]);
    assert!(
        rendered.console.is_empty(),
        "console: {:?}",
        rendered.console
    );
    let probe = between(&rendered.dom, "<pre id=\"probe\">", "</pre>")
        .trim_start_matches("<pre id=\"probe\">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let found: Vec<serde_json::Value> = serde_json::from_str(&probe).expect("the probe's JSON");
    for (step, status, rgb) in [
        ("load", "cached", "rgb(116, 192, 252)"),
        ("total", "ran", "rgb(140, 233, 154)"),
        ("check", "failed", "rgb(255, 135, 135)"),
        ("publish", "skipped", "rgb(222, 226, 230)"),
    ] {
        for section in ["dag", "timeline"] {
            let shown: Vec<&serde_json::Value> = found
                .iter()
                .filter(|f| f["step"] == step && f["section"] == section)
                .collect();
            assert_eq!(shown.len(), 1, "{step} once in the {section}: {found:?}");
            let f = shown[0];
            assert!(
                f["status"]
                    .as_str()
                    .is_some_and(|c| c.split(' ').any(|c| c == status)),
                "{step} is {status} in the {section}: {f}"
            );
            assert!(
                f["width"].as_f64().is_some_and(|w| w > 1.0)
                    && f["height"].as_f64().is_some_and(|h| h > 1.0),
                "{step} is drawn in the {section}: {f}"
            );
            assert_eq!(f["fill"], rgb, "{step}'s colour in the {section}");
        }
        assert!(
            found
                .iter()
                .any(|f| f["step"] == step && f["section"] == "steps"),
            "{step} in the table"
        );
    }
}

#[test]
fn the_browser_check_sees_a_page_that_logs_or_throws() {
    const TEST: &str = "the_browser_check_sees_a_page_that_logs_or_throws";
    let Some(browser) = chromium(TEST) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error('said'); notAFunction();</script></body></html>",
    )
    .expect("written");
    let rendered = browse(&browser, &page, &["--dump-dom"]);
    assert_eq!(rendered.console.len(), 2, "{:?}", rendered.console);
    assert!(
        rendered.console[1].contains("notAFunction"),
        "{:?}",
        rendered.console
    );
}

// --- The book's pictures ------------------------------------------------

fn book_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/images")
}

/// Whether this run rewrites the book's pictures (`FLOWYML_BLESS=1`)
/// instead of checking them.
fn blessing() -> bool {
    std::env::var("FLOWYML_BLESS").is_ok_and(|v| v.trim() == "1")
}

/// The quickstart run the book shows, as its report: four workers, no
/// cache, a small input.
fn quickstart_report(out: &Path) -> String {
    let status = Command::new(crate::plan::quickstart())
        .args([
            "-q",
            "run",
            "quickstart",
            "--input",
            "rows=20000",
            "--workers",
            "4",
            "--no-cache",
        ])
        .arg("--report")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .expect("the quickstart runs");
    assert!(status.success(), "the quickstart failed: {status}");
    std::fs::read_to_string(out).expect("the report")
}

/// `html` without what differs between two runs of one pipeline: every
/// number (durations, coordinates, workers, the date) and the names drawn
/// inside timeline bars, which show only where a bar is wide enough.
fn shape_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find("<text class=\"name\"") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        rest = &rest[rest.find("</text>").map_or(rest.len(), |e| e + 7)..];
    }
    out.push_str(rest);
    let mut masked = String::with_capacity(out.len());
    let mut in_number = false;
    for c in out.chars() {
        let digit = c.is_ascii_digit() || (in_number && c == '.');
        if digit && !in_number {
            masked.push('#');
        } else if !digit {
            masked.push(c);
        }
        in_number = digit;
    }
    masked
}

#[test]
fn the_books_pictures_are_those_the_code_draws_now() {
    let images = book_images();
    // The quickstart's DAG: drawn from the pipeline alone, so exactly.
    let out = Command::new(crate::plan::quickstart())
        .args(["graph", "quickstart", "--format", "svg"])
        .output()
        .expect("the quickstart runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dag = String::from_utf8(out.stdout).expect("utf-8");
    let dag_file = images.join("quickstart-dag.svg");
    // The report of a quickstart run: what changes from run to run is
    // masked, the rest (steps, lanes, sections, styles) must match.
    let dir = tempfile::tempdir().expect("tempdir");
    let report = quickstart_report(&dir.path().join("report.html"));
    let report_file = images.join("quickstart-report.html");
    if blessing() {
        std::fs::create_dir_all(&images).expect("book/src/images");
        std::fs::write(&dag_file, &dag).expect("written");
        std::fs::write(&report_file, &report).expect("written");
        let browser = chromium("the_books_pictures (screenshot)")
            .expect("FLOWYML_BLESS=1 takes the report's screenshot: install chromium");
        browse(
            &browser,
            &report_file,
            &[
                "--window-size=1000,1280",
                &format!(
                    "--screenshot={}",
                    images.join("quickstart-report.png").display()
                ),
            ],
        );
        return;
    }
    let stale = "stale: regenerate the book's pictures with `FLOWYML_BLESS=1 cargo test --test integration -- the_books_pictures`";
    let committed = std::fs::read_to_string(&dag_file).expect("book/src/images/quickstart-dag.svg");
    assert!(committed == dag, "{} is {stale}", dag_file.display());
    let committed = std::fs::read_to_string(&report_file).expect("the report's copy");
    assert!(
        shape_of(&committed) == shape_of(&report),
        "{} is {stale}",
        report_file.display()
    );
    let png = std::fs::read(images.join("quickstart-report.png")).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
}

#[test]
fn shape_of_masks_numbers_and_bar_names_only() {
    assert_eq!(
        shape_of("<p>1.25 ms on 4</p><text class=\"name\" x=\"3\">train</text><b>x2</b>"),
        "<p># ms on #</p><b>x#</b>"
    );
    assert_ne!(shape_of("<p>worker 1</p>"), shape_of("<p>lane 1</p>"));
}

/// The anchor mdBook gives `heading`: lowercase, spaces as dashes, other
/// punctuation dropped.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn the_books_links_and_pictures_point_at_what_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).expect("book/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a chapter");
        let chapter = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        assert!(
            !text.contains("```mermaid"),
            "{chapter}: a Mermaid block shows as its source in this book: use the generated SVG"
        );
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with('#') || target.contains(' ') {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = src.join(file);
            assert!(
                linked.is_file(),
                "{chapter} links to {target}, which does not exist"
            );
            if !fragment.is_empty() {
                let headings = std::fs::read_to_string(&linked).expect("the linked chapter");
                assert!(
                    headings
                        .lines()
                        .filter_map(|l| l.strip_prefix('#'))
                        .any(|h| anchor_of(h.trim_start_matches('#')) == fragment),
                    "{chapter} links to {target}: no such heading"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10,
        "only {checked} links found: is the parser right?"
    );
}

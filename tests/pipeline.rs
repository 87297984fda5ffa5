//! Steps and pipelines: wiring, validation, real parallelism, failures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flowyml::error::Problem;
use flowyml::step::FnStep;
use flowyml::{Error, ParallelExecutor, Pipeline, StepStatus, pipeline, step};

#[step(inputs = ["raw"], outputs = ["clean"])]
fn clean_data(values: &Vec<f64>) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

#[step(outputs = ["mean", "count"])]
fn describe(clean: &Vec<f64>) -> (f64, usize) {
    (clean.iter().sum::<f64>() / clean.len() as f64, clean.len())
}

#[step(outputs = ["scaled"])]
fn scale(clean: Vec<f64>, mean: &f64) -> Vec<f64> {
    // An owned parameter is this step's own clone of the artifact.
    clean.into_iter().map(|v| v / mean).collect()
}

#[step(outputs = ["parsed"])]
fn parse(text: &String) -> Result<u32, std::num::ParseIntError> {
    text.trim().parse()
}

#[test]
fn a_step_stays_a_plain_function() {
    assert_eq!(clean_data(&vec![1.0, f64::NAN, 3.0]), vec![1.0, 3.0]);
    assert_eq!(describe(&vec![1.0, 3.0]), (2.0, 2));
    assert!(parse(&"x".to_owned()).is_err());
}

#[test]
fn steps_are_registered_with_their_signature() {
    let specs = flowyml::step::registered();
    let spec = specs
        .iter()
        .find(|s| &*s.name == "describe")
        .expect("registered");
    assert!(spec.module_path.ends_with("pipeline"));
    assert_eq!(spec.inputs.len(), 1);
    assert_eq!(
        (
            spec.inputs[0].name.as_ref(),
            spec.inputs[0].type_name.as_ref()
        ),
        ("clean", "Vec<f64>")
    );
    let outputs: Vec<_> = spec
        .outputs
        .iter()
        .map(|o| (o.name.as_ref(), o.type_name.as_ref()))
        .collect();
    assert_eq!(outputs, vec![("mean", "f64"), ("count", "usize")]);
    let spec = specs
        .iter()
        .find(|s| &*s.name == "scale")
        .expect("registered");
    assert!(
        !spec.inputs[0].type_name.starts_with('&'),
        "an owned parameter"
    );
}

#[test]
fn a_pipeline_wires_steps_by_artifact_name() -> flowyml::Result<()> {
    let mut p = Pipeline::new("stats");
    // Added out of order on purpose: the plan orders them.
    p.add_step(scale).add_step(describe).add_step(clean_data);
    p.input("raw", vec![2.0, f64::INFINITY, 4.0]);
    let result = p.run()?;
    assert_eq!(result.get::<Vec<f64>>("clean")?, &vec![2.0, 4.0]);
    assert_eq!(*result.get::<f64>("mean")?, 3.0);
    assert_eq!(*result.get::<usize>("count")?, 2);
    assert_eq!(
        result.get::<Vec<f64>>("scaled")?,
        &vec![2.0 / 3.0, 4.0 / 3.0]
    );
    assert!(result.steps().all(|s| s.status == StepStatus::Ran));
    assert!(result.succeeded());
    Ok(())
}

#[test]
fn result_access_errors_name_the_artifact() -> flowyml::Result<()> {
    let mut p = Pipeline::new("stats");
    p.add_step(clean_data).input("raw", vec![1.0]);
    let result = p.run()?;
    let err = result.get::<Vec<f64>>("claen").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no artifact named `claen`; did you mean `clean`?"
    );
    let err = result.get::<Vec<f32>>("clean").unwrap_err();
    assert!(
        matches!(err, Error::ArtifactType { ref name, ref found, .. } if name == "clean" && found == "Vec<f64>"),
        "{err}"
    );
    Ok(())
}

#[test]
fn validation_reports_every_problem_together() {
    let mut p = Pipeline::new("broken");
    p.add_step(describe) // needs `clean`, which nobody produces
        .add_step(scale)
        .add_step(
            FnStep::builder("other_mean")
                .output::<f64>("mean")
                .build(|_| Ok(())),
        )
        .input("clen", vec![1.0_f64]);
    let err = p.validate().unwrap_err();
    let Error::InvalidPipeline { pipeline, problems } = &err else {
        panic!("{err}")
    };
    assert_eq!(pipeline, "broken");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems.contains(&Problem::ProducedTwice {
        artifact: "mean".into(),
        first: Some("describe".into()),
        second: "other_mean".into(),
    }));
    assert!(problems.contains(&Problem::MissingInput {
        step: "describe".into(),
        artifact: "clean".into(),
        did_you_mean: Some("clen".into()),
    }));
    assert!(problems.iter().any(|p| matches!(p,
        Problem::MissingInput { step, artifact, .. } if step == "scale" && artifact == "clean")));
    let text = err.to_string();
    assert!(
        text.starts_with("pipeline `broken` is invalid:\n  - "),
        "{text}"
    );
    assert!(
        text.contains(
            "artifact `mean` is produced twice: by step `describe` and by step `other_mean`"
        ),
        "{text}"
    );
    assert!(text.contains("step `describe` needs artifact `clean`, which no step produces and no run-time input provides; did you mean `clen`?"), "{text}");
}

#[test]
fn validation_names_a_cycle_in_order() {
    let mut p = Pipeline::new("loop");
    p.add_step(
        FnStep::builder("a")
            .input::<u8>("y")
            .output::<u8>("x")
            .build(|_| Ok(())),
    );
    p.add_step(
        FnStep::builder("b")
            .input::<u8>("x")
            .output::<u8>("y")
            .build(|_| Ok(())),
    );
    let err = p.validate().unwrap_err();
    let Error::InvalidPipeline { problems, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        problems,
        &[Problem::Cycle {
            steps: vec!["a".into(), "b".into()]
        }]
    );
    assert!(err.to_string().ends_with("cycle: a -> b -> a"), "{err}");
}

#[test]
fn validation_reports_type_mismatches_with_both_types() {
    let mut p = Pipeline::new("types");
    p.add_step(clean_data).input("raw", vec![1.0_f32]);
    let err = p.validate().unwrap_err().to_string();
    assert!(
        err.contains("type mismatch for artifact `raw`: a run-time input produces `Vec<f32>` but step `clean_data` expects `Vec<f64>`"),
        "{err}"
    );
}

fn sleeper(name: &'static str, output: &'static str, ms: u64) -> FnStep {
    FnStep::builder(name)
        .output::<u64>(output)
        .build(move |ctx| {
            std::thread::sleep(Duration::from_millis(ms));
            ctx.set_output(0, ms);
            Ok(())
        })
}

#[test]
fn independent_steps_run_at_the_same_time() -> flowyml::Result<()> {
    let executor = ParallelExecutor::new(2)?;
    let mut p = Pipeline::new("parallel");
    p.add_step(sleeper("a", "x", 100))
        .add_step(sleeper("b", "y", 100));
    let start = Instant::now();
    let result = p.run_with(&executor)?;
    let ratio = start.elapsed().as_secs_f64() / 0.200;
    assert!(ratio <= 0.75, "two 100 ms steps took {ratio:.2} of 200 ms");
    let workers: Vec<_> = result.steps().map(|s| s.worker).collect();
    assert_ne!(workers[0], workers[1], "each step on its own worker");
    Ok(())
}

#[test]
fn a_diamond_runs_each_step_once_after_its_inputs() -> flowyml::Result<()> {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = |name: &'static str, inputs: &[&'static str], output: &'static str| {
        let runs = std::sync::Arc::clone(&runs);
        let mut b = FnStep::builder(name);
        for i in inputs {
            b = b.input::<u64>(*i);
        }
        let n = inputs.len();
        b.output::<u64>(output).build(move |ctx| {
            runs.fetch_add(1, Ordering::SeqCst);
            let sum: u64 = (0..n)
                .map(|i| ctx.input::<u64>(i).copied())
                .sum::<Result<_, _>>()?;
            ctx.set_output(0, sum + 1);
            Ok(())
        })
    };
    let mut p = Pipeline::new("diamond");
    p.add_step(counted("top", &[], "t"))
        .add_step(counted("left", &["t"], "l"))
        .add_step(counted("right", &["t"], "r"))
        .add_step(counted("bottom", &["l", "r"], "b"));
    let result = p.run_with(&ParallelExecutor::new(2)?)?;
    assert_eq!(*result.get::<u64>("b")?, 5);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    let start = |n| result.step(n).map(|s| s.start).expect("ran");
    let end = |n| result.step(n).map(|s| s.start + s.duration).expect("ran");
    assert!(start("bottom") >= end("left").max(end("right")));
    Ok(())
}

#[test]
fn a_failing_step_is_named_and_its_dependents_skipped() -> flowyml::Result<()> {
    let mut p = Pipeline::new("fails");
    p.add_step(parse)
        .add_step(
            FnStep::builder("double")
                .input::<u32>("parsed")
                .output::<u32>("twice")
                .build(|ctx| {
                    let v = *ctx.input::<u32>(0)?;
                    ctx.set_output(0, v * 2);
                    Ok(())
                }),
        )
        .add_step(sleeper("independent", "other", 30))
        .input("text", "12x".to_owned());
    let err = p.run_with(&ParallelExecutor::new(2)?).unwrap_err();
    let Error::StepFailed {
        pipeline,
        step,
        message,
        result,
        ..
    } = err
    else {
        panic!("expected StepFailed")
    };
    assert_eq!((pipeline.as_str(), step.as_str()), ("fails", "parse"));
    assert_eq!(message, "invalid digit found in string");
    assert_eq!(
        result.step("parse").map(|s| s.status),
        Some(StepStatus::Failed)
    );
    assert_eq!(
        result.step("double").map(|s| s.status),
        Some(StepStatus::Skipped)
    );
    // Already running when `parse` failed (2 workers), so it finished.
    assert_eq!(
        result.step("independent").map(|s| s.status),
        Some(StepStatus::Ran)
    );
    Ok(())
}

#[test]
fn a_panicking_step_is_contained_and_keep_going_runs_the_rest() -> flowyml::Result<()> {
    let mut p = Pipeline::new("panics");
    p.add_step(
        FnStep::builder("boom")
            .output::<u8>("x")
            .build(|_| panic!("disk on fire")),
    )
    .add_step(
        FnStep::builder("after")
            .input::<u8>("x")
            .output::<u8>("y")
            .build(|_| Ok(())),
    );
    for i in 0..6 {
        p.add_step(sleeper(
            ["s0", "s1", "s2", "s3", "s4", "s5"][i],
            ["o0", "o1", "o2", "o3", "o4", "o5"][i],
            1,
        ));
    }
    p.keep_going(true);
    let err = p.run_with(&ParallelExecutor::new(1)?).unwrap_err();
    let Error::StepFailed {
        step,
        message,
        result,
        ..
    } = err
    else {
        panic!("expected StepFailed")
    };
    assert_eq!(
        (step.as_str(), message.as_str()),
        ("boom", "panicked: disk on fire")
    );
    assert_eq!(result.steps_with(StepStatus::Skipped), vec!["after"]);
    assert_eq!(result.steps_with(StepStatus::Ran).len(), 6);
    Ok(())
}

#[test]
fn a_step_that_forgets_an_output_fails_clearly() {
    let mut p = Pipeline::new("forgetful");
    p.add_step(FnStep::builder("lazy").output::<u8>("x").build(|_| Ok(())));
    let err = p.run().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `forgetful`: step `lazy` failed: did not produce its output `x`"
    );
}

#[test]
fn json_and_trace_describe_the_run() -> flowyml::Result<()> {
    let mut p = Pipeline::new("stats");
    p.add_step(clean_data)
        .add_step(describe)
        .input("raw", vec![1.0, 2.0]);
    let result = p.run()?;
    let json = result.to_json();
    assert_eq!(json["pipeline"], "stats");
    let steps = json["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["name"], "clean_data");
    assert_eq!(steps[0]["status"], "ran");
    assert!(steps[0]["worker"].is_u64());
    let trace: serde_json::Value =
        serde_json::from_str(&result.chrome_trace()).expect("valid JSON");
    let events = trace["traceEvents"].as_array().expect("events");
    let spans: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|e| e["dur"].as_u64() >= Some(1)));
    // Lanes are named, the process is this one, and every id is exact in
    // JSON (no `usize::MAX` for a step outside the pool).
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("worker ")), "{names:?}");
    assert!(events.iter().all(|e| e["pid"] == std::process::id()));
    assert!(
        events
            .iter()
            .all(|e| e["tid"].as_u64().is_some_and(|t| t < 1 << 53))
    );
    assert_eq!(
        json["schema_version"],
        flowyml::pipeline::JSON_SCHEMA_VERSION
    );
    assert!(
        json["started_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let artifacts = json["artifacts"].as_array().expect("artifacts");
    let mean = artifacts
        .iter()
        .find(|a| a["name"] == "mean")
        .expect("mean");
    assert_eq!(
        (mean["type"].as_str(), mean["producer"].as_str()),
        (Some("f64"), Some("describe"))
    );
    assert_eq!(mean["fingerprint"].as_str().map(str::len), Some(64));
    assert!(result.summary().contains("describe"));
    Ok(())
}

#[test]
fn graphs_show_every_edge() {
    let mut p = Pipeline::new("stats");
    p.add_step(clean_data).add_step(describe).add_step(scale);
    let dot = p.to_dot();
    let edges = crate::dot_edges(&dot);
    for (from, to, artifact) in [
        ("raw", "clean_data", "raw"),
        ("clean_data", "describe", "clean"),
        ("clean_data", "scale", "clean"),
        ("describe", "scale", "mean"),
    ] {
        assert!(edges.contains(&crate::edge(from, to, artifact)), "{dot}");
    }
    assert_eq!(edges.len(), 4, "{dot}");
    let mermaid = p.to_mermaid();
    assert!(mermaid.starts_with("flowchart LR"));
    assert!(mermaid.contains("input_raw([\"raw\"])"), "{mermaid}");
    assert!(mermaid.contains("describe -->|mean| scale"), "{mermaid}");
}

#[pipeline(name = "registered_etl", inputs = ["raw"])]
mod etl {
    #[step(outputs = ["clean"])]
    pub fn clean_up(raw: &Vec<i64>) -> Vec<i64> {
        raw.iter().copied().filter(|v| *v >= 0).collect()
    }

    #[step(outputs = ["total"])]
    pub fn total(clean: &Vec<i64>) -> i64 {
        clean.iter().sum()
    }
}

#[test]
fn a_compile_time_pipeline_is_found_by_name() -> flowyml::Result<()> {
    assert_eq!(etl::NAME, "registered_etl");
    let registered = flowyml::registry::pipelines();
    assert!(
        registered
            .iter()
            .any(|p| p.name == "registered_etl" && p.module_path.ends_with("etl"))
    );
    let mut p = flowyml::registry::pipeline("registered_etl")?;
    p.input("raw", vec![3_i64, -1, 4]);
    assert_eq!(*p.run()?.get::<i64>("total")?, 7);
    let err = flowyml::registry::pipeline("registered_elt").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no pipeline named `registered_elt`; did you mean `registered_etl`?"
    );
    Ok(())
}

#[step(outputs = ["numbers"])]
fn numbers() -> Vec<u64> {
    vec![1, 2, 3]
}

#[step(outputs = ["sum"])]
fn sum_numbers(numbers: &Vec<u64>) -> u64 {
    // A parameter (and any binding) may share its name with a step function.
    let numbers: u64 = numbers.iter().sum();
    numbers
}

fn not_a_step(x: &u64) -> u64 {
    *x
}

#[test]
fn step_functions_do_not_shadow_bindings_and_plain_functions_are_refused() -> flowyml::Result<()> {
    let mut p = Pipeline::new("names");
    p.add_step(numbers).add_step(sum_numbers);
    assert_eq!(*p.run()?.get::<u64>("sum")?, 6);
    assert_eq!(numbers(), vec![1, 2, 3]);

    p.add_step(not_a_step);
    let err = p.validate().unwrap_err().to_string();
    assert!(err.contains("`integration::pipeline::not_a_step` is not a step: annotate the function with `#[step(outputs = [..])]`"), "{err}");
    Ok(())
}

type ParseResult<T> = Result<T, String>;

#[step(outputs = ["port"])]
fn parse_port(text: &String) -> ParseResult<u16> {
    text.parse().map_err(|e| format!("port {text:?}: {e}"))
}

#[test]
fn result_aliases_are_fallible_steps() -> flowyml::Result<()> {
    let mut p = Pipeline::new("alias");
    p.add_step(parse_port).input("text", "8080".to_owned());
    assert_eq!(*p.run()?.get::<u16>("port")?, 8080);
    p.input("text", "http".to_owned());
    let err = p.run().unwrap_err().to_string();
    assert_eq!(
        err,
        "pipeline `alias`: step `parse_port` failed: port \"http\": invalid digit found in string"
    );
    Ok(())
}

type Fallible<T> = Result<T, String>;

#[step(outputs = ["checked"])]
fn check_input(text: &String) -> Fallible<u32> {
    if text == "bad input" {
        Err("bad input".into())
    } else {
        Ok(text.len() as u32)
    }
}

/// Fallibility is decided by type: a `Result` under a name that does not
/// end in `Result` fails its step on `Err` (it was once stored as the
/// artifact, and the run recorded as a success).
#[test]
fn a_result_under_any_name_fails_its_step() -> flowyml::Result<()> {
    let mut p = Pipeline::new("fallible");
    p.add_step(check_input).input("text", "fine".to_owned());
    assert_eq!(*p.run()?.get::<u32>("checked")?, 4);
    let described = p.describe()?;
    let checked = described["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "checked"))
        .expect("described");
    assert_eq!(checked["type"], "u32");

    p.input("text", "bad input".to_owned());
    let err = p.run().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `fallible`: step `check_input` failed: bad input"
    );
    let Error::StepFailed { result, .. } = &err else {
        panic!("{err}")
    };
    let record = result.step("check_input").expect("recorded");
    assert_eq!(record.status, flowyml::StepStatus::Failed);
    assert!(result.get::<u32>("checked").is_err());
    Ok(())
}

/// A step downstream of a cycle is unordered too and feeds nothing: the
/// cycle must still be found (walking inputs, not dependents), and named.
#[test]
fn a_cycle_behind_a_downstream_step_is_reported_not_a_panic() {
    let step = |name: &'static str, input: &'static str, output: &'static str| {
        FnStep::builder(name)
            .input::<u8>(input)
            .output::<u8>(output)
            .build(|_| Ok(()))
    };
    let mut p = Pipeline::new("cyclic");
    p.add_step(step("sink", "b", "c"))
        .add_step(step("A", "b", "a"))
        .add_step(step("B", "a", "b"));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.validate()))
        .expect("validation does not panic")
        .unwrap_err();
    let Error::InvalidPipeline { problems, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        problems,
        &[Problem::Cycle {
            steps: vec!["A".into(), "B".into()]
        }]
    );
    assert!(err.to_string().ends_with("cycle: A -> B -> A"), "{err}");
}

/// A step named after its output (`fn clean` → `"clean"`) is a step, not a
/// run-time input; names with quotes are escaped.
#[test]
fn dot_draws_a_step_named_like_its_output_as_a_step() {
    #[step(outputs = ["clean"])]
    fn clean(raw: &Vec<f64>) -> Vec<f64> {
        raw.clone()
    }
    #[step(outputs = ["report"])]
    fn report(clean: &Vec<f64>) -> usize {
        clean.len()
    }
    let mut p = Pipeline::new("say \"etl\"");
    p.add_step(clean).add_step(report);
    let dot = p.to_dot();
    let ellipses = dot.lines().filter(|l| l.contains("shape=ellipse")).count();
    assert_eq!(ellipses, 1, "only `raw` is a run-time input:\n{dot}");
    assert!(dot.contains("label=\"raw\""), "{dot}");
    assert!(dot.starts_with("digraph \"say \\\"etl\\\"\""), "{dot}");
}

/// A pipeline calls a closure step's code from its own per-step array
/// (`Step::body`), and a step with a time limit through the step itself on
/// a thread of its own: both are the one closure, shared with every
/// pipeline the step is in, so state it captures is never split.
#[test]
fn a_closure_step_is_one_closure_in_every_pipeline_and_path() -> flowyml::Result<()> {
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let counting = |name: &str, limit: Option<Duration>| {
        let calls = Arc::clone(&calls);
        let step = FnStep::builder(name.to_owned()).output::<usize>(format!("{name}_n"));
        let step = match limit {
            Some(limit) => step.timeout(limit),
            None => step,
        };
        Arc::new(step.build(move |ctx| {
            ctx.set_output(0, calls.fetch_add(1, Ordering::SeqCst) + 1);
            Ok(())
        })) as Arc<dyn flowyml::step::Step>
    };
    let plain = counting("plain", None);
    let limited = counting("limited", Some(Duration::from_secs(30)));
    assert!(
        plain.body().is_some(),
        "a closure step hands its pipeline its code"
    );
    let mut first = Pipeline::new("first");
    first.add_shared_step(Arc::clone(&plain));
    let mut second = Pipeline::new("second");
    second
        .add_shared_step(Arc::clone(&plain))
        .add_shared_step(Arc::clone(&limited));
    assert_eq!(*first.run()?.get::<usize>("plain_n")?, 1);
    let result = second.run()?;
    let mut seen = [
        *result.get::<usize>("plain_n")?,
        *result.get::<usize>("limited_n")?,
    ];
    seen.sort_unstable();
    assert_eq!(seen, [2, 3], "one counter across pipelines and paths");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    Ok(())
}

/// A closure of `Copy` captures of at most two words is kept inline by
/// `build_copied` (each pipeline copies it); a larger one is shared; both
/// run what they captured.
#[test]
fn copied_closures_are_inline_when_small_and_shared_when_not() -> flowyml::Result<()> {
    use flowyml::step::Step;
    let (a, b) = (20_u64, 22_u32);
    let small = FnStep::builder("small")
        .output::<u64>("sum")
        .build_copied(move |ctx| {
            ctx.set_output(0, a + u64::from(b));
            Ok(())
        });
    let table = [1_u64, 2, 3, 4];
    let large = FnStep::builder("large")
        .input::<u64>("sum")
        .output::<u64>("total")
        .build_copied(move |ctx| {
            let sum = *ctx.input::<u64>(0)?;
            ctx.set_output(0, sum + table.iter().sum::<u64>());
            Ok(())
        });
    assert!(small.body().is_some_and(|b| b.is_copied()));
    assert!(large.body().is_some_and(|b| !b.is_copied()));
    let mut p = Pipeline::new("copied");
    p.add_step(small).add_step(large);
    let result = p.run()?;
    assert_eq!(*result.get::<u64>("sum")?, 42);
    assert_eq!(*result.get::<u64>("total")?, 52);
    Ok(())
}

/// A plan shares its catalog's output codecs: a step added while a result
/// of the pipeline is alive must not change how that result shows its
/// artifacts, and the new run must show the new step's.
#[test]
fn a_result_keeps_its_codecs_when_a_step_is_added_after_it() -> flowyml::Result<()> {
    let mut p = Pipeline::new("codecs");
    p.input("n", 20_u64);
    p.add_step(
        FnStep::builder("double")
            .input::<u64>("n")
            .stored_output::<u64>("twice")
            .build(|ctx| {
                let n = *ctx.input::<u64>(0)?;
                ctx.set_output(0, n * 2);
                Ok(())
            }),
    );
    let first = p.run()?;
    p.add_step(
        FnStep::builder("name")
            .input::<u64>("twice")
            .output::<String>("label")
            .build(|ctx| {
                let label = format!("n = {}", ctx.input::<u64>(0)?);
                ctx.set_output(0, label);
                Ok(())
            }),
    );
    p.add_step(
        FnStep::builder("quote")
            .input::<String>("label")
            .stored_output::<String>("quoted")
            .build(|ctx| {
                let quoted = format!("«{}»", ctx.input::<String>(0)?);
                ctx.set_output(0, quoted);
                Ok(())
            }),
    );
    let second = p.run()?;
    for result in [&first, &second] {
        assert_eq!(result.json("n").transpose()?, Some(serde_json::json!(20)));
        assert_eq!(
            result.json("twice").transpose()?,
            Some(serde_json::json!(40))
        );
    }
    assert!(
        first.json("quoted").is_none(),
        "not an artifact of the first run"
    );
    assert_eq!(
        second.json("quoted").transpose()?,
        Some(serde_json::json!("«n = 40»"))
    );
    // An opaque artifact has no JSON form, whatever step sits next to it.
    assert!(second.json("label").is_none_or(|json| json.is_err()));
    Ok(())
}

/// A step gathering a hundred inputs (in an order of its own) and one
/// writing a hundred outputs read and write each where it is, and the step
/// after them finds its inputs past theirs.
#[test]
fn steps_with_a_hundred_inputs_or_outputs_read_and_write_each() -> flowyml::Result<()> {
    const N: usize = 100;
    let mut p = Pipeline::new("wide");
    let mut scatter = FnStep::builder("scatter");
    for k in 0..N {
        scatter = scatter.output::<u64>(format!("part{k}"));
    }
    p.add_step(scatter.build(|ctx| {
        for k in 0..N {
            ctx.set_output(k, k as u64 * 3);
        }
        Ok(())
    }));
    let mut gather = FnStep::builder("gather");
    for k in (0..N).rev() {
        gather = gather.input::<u64>(format!("part{k}"));
    }
    p.add_step(gather.output::<Vec<u64>>("gathered").build(|ctx| {
        let all = (0..ctx.input_count())
            .map(|i| ctx.input::<u64>(i).copied())
            .collect::<Result<Vec<u64>, _>>()?;
        ctx.set_output(0, all);
        Ok(())
    }));
    p.add_step(
        FnStep::builder("after")
            .input::<Vec<u64>>("gathered")
            .input::<u64>("part7")
            .output::<u64>("check")
            .build(|ctx| {
                let total = ctx.input::<Vec<u64>>(0)?.iter().sum::<u64>();
                ctx.set_output(0, total + ctx.input::<u64>(1)?);
                Ok(())
            }),
    );
    let result = p.run()?;
    let expected: Vec<u64> = (0..N as u64).rev().map(|k| k * 3).collect();
    assert_eq!(
        result.get::<Vec<u64>>("gathered")?.as_slice(),
        expected.as_slice()
    );
    assert_eq!(*result.get::<u64>("check")?, 3 * 99 * 100 / 2 + 21);
    Ok(())
}

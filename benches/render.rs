//! How long one chart takes to render (a 28-day, three-series line chart, and a bar chart
//! of ten Japanese categories), PNG encoding included.

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use kpibot::render::data::{ChartData, Series, XAxis};
use kpibot::render::{Heading, render_png};
use kpibot::spec::{ChartKind, NumberFormat};

fn line_data() -> ChartData {
    let start = NaiveDate::from_ymd_opt(2026, 10, 29).unwrap();
    let days: Vec<NaiveDate> = start.iter_days().take(28).collect();
    let series = ["student", "guardian", "teacher"]
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            name: name.to_string(),
            values: (0..28)
                .map(|i| Some(1000.0 * (k + 1) as f64 + (i * 37 % 11) as f64 * 40.0))
                .collect(),
        })
        .collect();
    ChartData {
        x: XAxis::Dates(days),
        series,
    }
}

fn bar_data() -> ChartData {
    let names = [
        "東京都",
        "神奈川県",
        "大阪府",
        "愛知県",
        "埼玉県",
        "千葉県",
        "兵庫県",
        "北海道",
        "福岡県",
        "静岡県",
    ];
    ChartData {
        x: XAxis::Categories(names.iter().map(|s| s.to_string()).collect()),
        series: vec![Series {
            name: "users".into(),
            values: (0..10).map(|i| Some(5000.0 - i as f64 * 350.0)).collect(),
        }],
    }
}

fn bench(c: &mut Criterion) {
    let heading = Heading {
        title: "日次アクティブユーザー (DAU)",
        subtitle: "2026-10-29 – 2026-11-25 (Asia/Tokyo)",
        empty_message: "No data",
    };
    let line = line_data();
    let bars = bar_data();
    c.bench_function("render line chart 28x3", |b| {
        b.iter(|| render_png(&line, ChartKind::Line, NumberFormat::Integer, &heading).unwrap())
    });
    c.bench_function("render bar chart 10 categories", |b| {
        b.iter(|| render_png(&bars, ChartKind::Bar, NumberFormat::Integer, &heading).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

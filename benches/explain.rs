//! Why a number moved, timed. On the demo mart: one explanation of `active_users` over its
//! 3 dimensions (prefecture 47, role 3, school type 3 members) for 28 days against the 28
//! before — the one `GROUPING SETS` query and the decomposition — against the same done
//! with one query per dimension; then over prefecture × role alone. Then the arithmetic
//! by itself: a decomposition of 47 × 3 = 141 members (a sum and a ratio) and the ranking.
//! Then `kpibot ask "why …"` end to end (catalog, proof of what it reads, query, waterfall).
//!
//! No time is asserted (speed targets are not tests); every explanation's parts are.
//!
//! `cargo bench --bench explain` (`KPIBOT_BENCH_RUNS=N` runs per measurement)

use std::time::{Duration, Instant};

use kpibot::app::App;
use kpibot::explain::{RatioMember, SumMember, decompose_ratio, decompose_sum, rank_dimensions};
use kpibot::pipeline::why;
use kpibot::settings::Settings;
use kpibot::spec::Window;
use kpibot::warehouse::QueryJob;

const DEFAULT_RUNS: usize = 20;
const DAYS: u64 = 28;

fn runs() -> usize {
    std::env::var("KPIBOT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms over {} runs",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.len()
    );
}

fn on_the_demo_mart() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.reports.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    settings.warehouse.duckdb.path = dir.path().join("demo.duckdb");
    settings.delivery.folder = dir.path().join("out");
    let app = App::new(settings).unwrap();
    let now = chrono::Utc::now();
    let catalog = app.load_catalog().unwrap();
    let warehouse = runtime
        .block_on(app.open_warehouse(now, &mut std::io::sink()))
        .unwrap();
    let metric = catalog.metric("active_users").unwrap();
    let end = kpibot::pipeline::today_in(app.timezone, now) - chrono::Days::new(1);
    let asked = Window {
        start: end - chrono::Days::new(DAYS - 1),
        end,
    };
    let compared = asked.previous();
    let job = QueryJob::new(Duration::from_secs(60));
    let explain = |dimensions: &[&str]| {
        let prepared =
            why::prepare(warehouse.as_ref(), metric, dimensions, &[], asked, compared).unwrap();
        runtime
            .block_on(prepared.run(warehouse.as_ref(), &job))
            .unwrap()
    };
    let all = ["prefecture", "role", "school_type"];
    let change = explain(&all).dimensions[0].decomposition.change;
    let time = |dimensions: &[&[&str]]| -> Vec<Duration> {
        (0..runs())
            .map(|_| {
                let started = Instant::now();
                for set in dimensions {
                    let explanation = explain(set);
                    for d in &explanation.dimensions {
                        let parts: f64 = d.decomposition.members.iter().map(|m| m.change).sum();
                        assert!((parts - change).abs() < 1e-6, "parts add up");
                    }
                }
                started.elapsed()
            })
            .collect()
    };
    report(
        "3 dimensions × 2 × 28 days, one GROUPING SETS query",
        time(&[&all]),
    );
    report(
        "3 dimensions × 2 × 28 days, one query per dimension",
        time(&[&["prefecture"], &["role"], &["school_type"]]),
    );
    report(
        "47 prefectures and 3 roles × 2 × 28 days, one query",
        time(&[&["prefecture", "role"]]),
    );
    let question = format!("why active_users {}..{}", asked.start, asked.end);
    let answers: Vec<Duration> = (0..runs())
        .map(|_| {
            let mut out = Vec::new();
            let started = Instant::now();
            runtime
                .block_on(kpibot::cli::ask::ask(&app, &question, now, &mut out))
                .unwrap();
            let printed = String::from_utf8(out).unwrap();
            assert!(printed.contains("active_users_why.png"), "{printed}");
            started.elapsed()
        })
        .collect();
    report(
        "`kpibot ask \"why active_users <28 days>\"` (waterfall included)",
        answers,
    );
}

fn arithmetic() {
    let members = 47 * 3;
    let sums: Vec<SumMember> = (0..members)
        .map(|i| SumMember {
            member: Some(format!("m{i}")),
            before: Some(1_000.0 + (i * 37 % 101) as f64),
            after: Some(950.0 + (i * 53 % 113) as f64),
        })
        .collect();
    let ratios: Vec<RatioMember> = (0..members)
        .map(|i| RatioMember {
            member: Some(format!("m{i}")),
            before: Some((300.0 + (i % 17) as f64, 100.0 + (i % 7) as f64)),
            after: Some((310.0 + (i % 19) as f64, 98.0 + (i % 5) as f64)),
        })
        .collect();
    let times: Vec<Duration> = (0..runs() * 50)
        .map(|_| {
            let started = Instant::now();
            let sum = decompose_sum(&sums);
            let ratio = decompose_ratio(&ratios).unwrap();
            let dims = [("sum".to_string(), sum), ("ratio".to_string(), ratio)];
            let ranked = rank_dimensions(&dims);
            assert_eq!(ranked.len(), 2);
            started.elapsed()
        })
        .collect();
    report(
        "decomposing 141 members as a sum and as a ratio, and ranking",
        times,
    );
}

fn main() {
    arithmetic();
    on_the_demo_mart();
}

//! Metric types at scale and in an answer. First: a dbt semantic manifest of 1,000 metrics
//! (50 semantic models; simple, ratio, cumulative and derived in the proportions 2:1:1:1)
//! read into the catalog — JSON, translation, derived inputs linked — and the SQL of every
//! metric generated at three grains in both dialects, as `check` and the first questions
//! after a reload do. Then a question end to end on the demo mart (`kpibot ask`: catalog,
//! warehouse, one statement per window, chart): a derived metric over two inputs against a
//! simple one, so the cost of the inputs' subqueries shows.
//!
//! No time is asserted (speed targets are not tests); each answer's rows are.
//!
//! `cargo bench --bench metric_types` (`KPIBOT_BENCH_ANSWERS=N` answers per question)

use std::time::{Duration, Instant};

use kpibot::app::App;
use kpibot::settings::Settings;
use kpibot::spec::metric_sql::{Dialect, Grain, metric_sql};
use kpibot::spec::{self, SpecDefaults};
use serde_json::json;

const MODELS: usize = 50;
const METRICS_PER_MODEL: usize = 20;
const DEFAULT_ANSWERS: usize = 20;

fn manifest() -> serde_json::Value {
    let mut models = Vec::new();
    let mut metrics = Vec::new();
    for m in 0..MODELS {
        models.push(json!({
            "name": format!("model_{m}"),
            "defaults": {"agg_time_dimension": "day"},
            "node_relation": {"alias": format!("fact_{m}"), "schema_name": "mart"},
            "entities": [{"name": format!("entity_{m}"), "type": "primary"}],
            "dimensions": [
                {"name": "day", "type": "time", "type_params": {"time_granularity": "day"}},
                {"name": "region", "type": "categorical"},
                {"name": "plan", "type": "categorical"},
            ],
            "measures": [
                {"name": format!("amount_{m}"), "agg": "sum", "expr": "amount"},
                {"name": format!("rows_{m}"), "agg": "count", "expr": "1"},
                {"name": format!("users_{m}"), "agg": "count_distinct", "expr": "user_id"},
            ],
        }));
        for k in 0..METRICS_PER_MODEL {
            let name = format!("metric_{m}_{k}");
            let base = format!("metric_{m}_0");
            let other = format!("metric_{m}_1");
            metrics.push(match k % 5 {
                0 | 1 => json!({"name": name, "type": "simple", "type_params": {
                    "measure": {"name": if k % 2 == 0 { format!("amount_{m}") } else { format!("rows_{m}") },
                                "filter": {"where_filters": [{"where_sql_template": format!("{{{{ Dimension('entity_{m}__region') }}}} = 'r{k}'")}]}}}}),
                2 => json!({"name": name, "type": "ratio", "type_params": {
                    "numerator": {"name": base}, "denominator": {"name": other}}}),
                3 => json!({"name": name, "type": "cumulative", "type_params": {
                    "measure": {"name": format!("users_{m}")},
                    "cumulative_type_params": {"window": {"count": 28, "granularity": "day"}, "period_agg": "last"}}}),
                _ => json!({"name": name, "type": "derived", "type_params": {
                    "expr": "(a - b) / b",
                    "metrics": [{"name": base, "alias": "a"},
                                {"name": base, "alias": "b", "offset_window": {"count": 1, "granularity": "week"}}]}}),
            });
        }
    }
    json!({"semantic_models": models, "metrics": metrics})
}

fn load_and_generate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semantic_manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest()).unwrap()).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let mut defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
    defaults.dbt.semantic_manifest = Some(path);
    let mut load_times = Vec::new();
    let mut sql_times = Vec::new();
    let mut statements = 0usize;
    for _ in 0..5 {
        let started = Instant::now();
        let files = spec::load_dir(reports.path(), &defaults).unwrap();
        load_times.push(started.elapsed());
        let metrics = &files.last().unwrap().metrics;
        assert_eq!(
            metrics.len(),
            MODELS * METRICS_PER_MODEL,
            "every metric loads"
        );
        let started = Instant::now();
        statements = 0;
        for metric in metrics {
            for dialect in [Dialect::DuckDb, Dialect::BigQuery] {
                for grain in [Grain::Day, Grain::Week, Grain::Month] {
                    let (sql, _) = metric_sql(dialect, metric, grain, Some("region"), &[]);
                    assert!(sql.starts_with("SELECT") || sql.starts_with("WITH"));
                    statements += 1;
                }
            }
        }
        sql_times.push(started.elapsed());
    }
    let best = |times: &[Duration]| times.iter().min().copied().unwrap_or_default();
    println!(
        "1,000 dbt metrics: manifest read and translated in {:.1} ms (best of 5); {statements} statements generated in {:.1} ms ({:.1} µs each)",
        best(&load_times).as_secs_f64() * 1e3,
        best(&sql_times).as_secs_f64() * 1e3,
        best(&sql_times).as_secs_f64() * 1e6 / statements as f64,
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn answers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.reports.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    settings.warehouse.duckdb.path = dir.path().join("demo.duckdb");
    settings.delivery.folder = dir.path().join("out");
    let app = App::new(settings).unwrap();
    let count: usize = std::env::var("KPIBOT_BENCH_ANSWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ANSWERS);
    let now = chrono::Utc::now();
    for question in [
        "signups last 28 days by channel",
        "signups_wow last 28 days by channel",
        "signups_mtd last 28 days by channel",
    ] {
        let mut times = Vec::new();
        for i in 0..=count {
            let mut out = Vec::new();
            let started = Instant::now();
            runtime
                .block_on(kpibot::cli::ask::ask(&app, question, now, &mut out))
                .unwrap();
            let printed = String::from_utf8(out).unwrap();
            assert!(printed.contains(" rows → "), "{question}: {printed}");
            if i > 0 {
                // The first builds the demo mart.
                times.push(started.elapsed());
            }
        }
        times.sort();
        println!(
            "`kpibot ask \"{question}\"`: p50 {:.1} ms, p99 {:.1} ms over {count} answers",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
        );
    }
}

fn main() {
    load_and_generate();
    answers();
}

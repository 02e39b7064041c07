//! Alerts at scale: 1,000 alerts, each split by prefecture (47 instances: 47,000 in all),
//! evaluated against the demo mart in one round as `serve` does it — the warehouse query,
//! the judge and state machine, the round written to a SQLite ledger — and the memory
//! their state takes. Prints the figures for the README.
//!
//! `cargo bench --bench alerts` (`KPIBOT_BENCH_ALERTS=N` for another count)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use kpibot::alerts::engine::{AlertState, evaluate};
use kpibot::alerts::watch::{Sources, observe};
use kpibot::catalog;
use kpibot::ledger::Ledger;
use kpibot::pipeline::{RunLimits, today_in};
use kpibot::spec::{SpecDefaults, load_source};
use kpibot::warehouse::demo::ensure_demo_mart;
use kpibot::warehouse::duckdb::DuckDbWarehouse;

const DEFAULT_ALERTS: usize = 1_000;
const ROUNDS: usize = 3;

/// Resident memory of this process, in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// `count` alerts over the demo's active users by prefecture, the four kinds of
/// condition in turn.
fn alerts_file(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let condition = match i % 4 {
            0 => format!("below = {}", 1_000 + i),
            1 => "change = { percent = -40 }".to_string(),
            2 => "band = { weeks = 4, sigmas = 4, min_weeks = 3 }".to_string(),
            _ => format!("above = {}\nrecover = {}", 20_000 + i, 18_000 + i),
        };
        text.push_str(&format!(
            "[[alert]]\nname = \"alert_{i}\"\nmetric = \"active_users\"\nby = \"prefecture\"\n{condition}\nchannel = \"#data-team\"\nowner = \"#data-team\"\ntimezone = \"Asia/Tokyo\"\nlag_days = {}\n\n",
            1 + i % 28
        ));
    }
    text
}

fn main() {
    let count: usize = std::env::var("KPIBOT_BENCH_ALERTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ALERTS);
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::Asia::Tokyo;
    let yesterday = today_in(tz, Utc::now()) - Days::new(1);
    let mart = dir.path().join("demo.duckdb");
    ensure_demo_mart(&mart, yesterday).unwrap();
    let warehouse = DuckDbWarehouse::open(&mart).unwrap();
    let defaults = SpecDefaults::duckdb(tz);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let parse_started = Instant::now();
    let file = load_source(
        Path::new("bench_alerts.toml"),
        alerts_file(count),
        &defaults,
    );
    let parsed = parse_started.elapsed();
    assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    let catalog = catalog::load_strict(&repo, &defaults)
        .unwrap()
        .with_alerts(file.alerts.clone());
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sources = Sources {
        warehouse: &warehouse,
        catalog: &catalog,
        timeout: Duration::from_secs(60),
        limits: RunLimits::default(),
    };
    let rss_before = rss_kb();
    let mut states: BTreeMap<String, AlertState> = BTreeMap::new();
    let mut timings = Vec::new();
    let mut instances = 0;
    let mut previous_at = None;
    for round in 0..ROUNDS {
        let at = Utc::now() + chrono::Duration::minutes(round as i64);
        let started = Instant::now();
        let mut query = Duration::ZERO;
        runtime.block_on(async {
            for alert in catalog.alerts() {
                let previous = states.remove(&alert.name).unwrap_or_default();
                let known: Vec<String> = previous.instances.keys().cloned().collect();
                let asked = Instant::now();
                let seen = observe(sources, alert, at, &known, kpibot::i18n::Locale::En).await;
                query += asked.elapsed();
                let next = evaluate(alert, &previous, seen, at, 50);
                let json = serde_json::to_string(&next).unwrap();
                ledger
                    .insert_alert_round(
                        &alert.name,
                        at,
                        previous_at,
                        &json,
                        0,
                        next.notices.len() as u32,
                        None,
                        "bench",
                        Utc::now(),
                    )
                    .await
                    .unwrap()
                    .then_some(())
                    .expect("every round is recorded");
                states.insert(alert.name.clone(), next.state);
            }
        });
        previous_at = Some(at);
        instances = states.values().map(|s| s.instances.len()).sum();
        timings.push((started.elapsed(), query));
    }
    let rss_after = rss_kb();
    let state_bytes: usize = states
        .values()
        .map(|s| serde_json::to_string(s).unwrap().len())
        .sum();
    println!(
        "alerts benchmark: {count} alerts, {instances} instances, {ROUNDS} rounds, 2 worker threads"
    );
    println!(
        "  parsing and checking {count} [[alert]] entries: {:.1} ms",
        parsed.as_secs_f64() * 1e3
    );
    for (i, (total, query)) in timings.iter().enumerate() {
        println!(
            "  round {}: {:.2} s ({:.2} ms per alert; warehouse queries {:.2} s, judging + state machine + ledger {:.2} s)",
            i + 1,
            total.as_secs_f64(),
            total.as_secs_f64() * 1e3 / count as f64,
            query.as_secs_f64(),
            (*total - *query).as_secs_f64()
        );
    }
    println!(
        "  state of {instances} instances: {:.1} MB as stored JSON; resident memory {} MB before the rounds, {} MB after",
        state_bytes as f64 / 1e6,
        rss_before / 1024,
        rss_after / 1024
    );
}

//! A whole company's morning through the release binary: reports over channels and alerts
//! (47 prefectures each) all due in one second, replicas on one PostgreSQL ledger
//! (`KPIBOT_TEST_POSTGRES_URL`, as `.ci/postgres start` exports it), the fake BigQuery
//! with a running-jobs cap, the fake Slack enforcing Slack's documented limits (Tier 1 at
//! an internal app's 50 a minute), one replica SIGKILLed once a sixth is out. Prints the
//! figures the README quotes: time to the last post, posts a second against the ceiling
//! (one a second per channel; Tier 4 for uploads), alerts evaluated and posted, BigQuery
//! jobs against queries asked, 429s, peak memory.
//!
//! `cargo bench --bench morning` (2,000 reports over 200 channels, 200 alerts); the full
//! size: `KPIBOT_MORNING_REPORTS=10000 KPIBOT_MORNING_CHANNELS=500 KPIBOT_MORNING_ALERTS=1000
//! KPIBOT_MORNING_ALERT_CHANNELS=100 KPIBOT_MORNING_IMAGE_EVERY=50
//! KPIBOT_MORNING_LEAD_SECONDS=90 cargo bench --bench morning`.

use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

use common::morning::{Morning, simulate};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let Some(server) = common::postgres::server_url() else {
        eprintln!("morning: set KPIBOT_TEST_POSTGRES_URL (eval \"$(.ci/postgres start)\")");
        return;
    };
    let plan = Morning {
        reports: setting("KPIBOT_MORNING_REPORTS", 2_000),
        channels: setting("KPIBOT_MORNING_CHANNELS", 200),
        image_every: setting("KPIBOT_MORNING_IMAGE_EVERY", 10),
        replicas: 3,
        alerts: setting("KPIBOT_MORNING_ALERTS", 200),
        alert_channels: setting("KPIBOT_MORNING_ALERT_CHANNELS", 50),
        fire_every: 10,
        // Scaled from BigQuery's documented example (about 200 at once per project).
        bigquery_running_cap: setting("KPIBOT_MORNING_BIGQUERY_CAP", 100),
        workspace_per_minute: [50, 20, 50, 100],
        kill_after_fraction: 1.0 / 6.0,
        max_concurrent_runs: setting("KPIBOT_MORNING_RUNS", 32),
        // Long enough for replicas loaded to the hilt on two cores to renew their leases.
        lease_seconds: setting("KPIBOT_MORNING_LEASE_SECONDS", 30) as u64,
        lead: Duration::from_secs(setting("KPIBOT_MORNING_LEAD_SECONDS", 40) as u64),
        patience: Duration::from_secs(900),
    };
    let figures = simulate(&plan, &server);
    let images = plan.reports.div_ceil(plan.image_every);
    let twice = figures.posts.values().filter(|n| **n > 1).count();
    println!(
        "morning: {} reports ({} as uploaded PNGs) over {} channels, {} replicas, one SIGKILLed {:.1} s after the due second",
        plan.reports, images, plan.channels, plan.replicas, figures.killed_at_seconds
    );
    println!(
        "  posted {} once, {} more than once, {} missing; owners told {} times",
        figures.posts.len() - twice,
        twice,
        figures.missing.len(),
        figures.notices.len()
    );
    println!(
        "  last post {:.1} s after the due second: {:.1} posts/s (ceiling: {} channels x 1 post/s; uploads {}/min)",
        figures.last_post_seconds,
        figures.posts_per_second(),
        plan.channels,
        plan.workspace_per_minute[3]
    );
    let rounds_twice = figures.alert_rounds.values().filter(|n| **n > 1).count();
    let alert_posts_twice = figures.alert_posts.values().filter(|n| **n > 1).count();
    println!(
        "  alerts: {} of {} evaluated ({} more than once), {} of {} firing posted ({} more than once), the last {:.1} s after the due second",
        figures.alert_rounds.len(),
        plan.alerts,
        rounds_twice,
        figures.alert_posts.len(),
        figures.firing.len(),
        alert_posts_twice,
        figures.last_alert_post_seconds
    );
    println!(
        "  BigQuery: {} queries run for {} asked (identical ones shared), at most {} running (cap {}), {} refused",
        figures.warehouse_queries,
        figures.queries_asked,
        figures.most_running_jobs,
        plan.bigquery_running_cap,
        figures.admission_denied
    );
    println!(
        "  Slack calls {}, 429s {:?}; ledger taken for unavailable {} times",
        figures.calls, figures.rate_limited, figures.ledger_unavailable_lines
    );
    println!(
        "  peak RSS of the surviving replicas: {}",
        figures
            .peak_rss_mib
            .iter()
            .map(|m| format!("{m:.0} MiB"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

//! Soak: 500 reports through the real client to the fake Slack while 30% of all calls fail
//! transiently (429, 5xx, `internal_error`, slow answers, dropped connections, files still
//! processing). Every report must arrive exactly once. Prints the figures.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_slack::{FakeSlack, Fault, TOKEN};
use kpibot::deliver::{Delivery, Rendered, SlackDelivery, SlackOptions};
use kpibot::metrics::Metrics;
use kpibot::render::MessageFacts;
use kpibot::retry::RetryPolicy;
use kpibot::settings::Secret;

const REPORTS: usize = 500;
const CHANNELS: usize = 50;
const FAULT_RATE: f64 = 0.3;

fn report(i: usize) -> Rendered {
    let facts = MessageFacts {
        report_id: format!("report_{i:03}"),
        title: format!("レポート {i}"),
        locale: kpibot::i18n::Locale::Ja,
        channel: Some(format!("#soak-{}", i % CHANNELS)),
        slot: "2026-11-26T09:00:00+09:00".into(),
        window_start: "2026-11-25".into(),
        window_end: "2026-11-25".into(),
        window_text: "2026-11-25 (Asia/Tokyo)".into(),
        timezone: "Asia/Tokyo".into(),
        headline_label: "Latest".into(),
        headline_text: Some(i.to_string()),
        headline_raw: Some(i as f64),
        change_text: None,
        alt_text: format!("report {i}"),
        source: "mart.soak".into(),
        refreshed: "hourly".into(),
        not_numbers: 0,
        native: None,
        actions: None,
    };
    Rendered::from_facts(
        &facts,
        false,
        vec![0x89, b'P', b'N', b'G', 1, 2, 3, 4],
        String::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "wall-clock: run by .ci/run serialised"]
async fn five_hundred_posts_through_30_percent_transient_failures_arrive_exactly_once() {
    let slack = FakeSlack::start(&[]).await;
    for c in 0..CHANNELS {
        slack.add_channel(&format!("C0SOAK{c:04}"), &format!("soak-{c}"), true);
    }
    slack.fail_randomly(
        FAULT_RATE,
        vec![
            Fault::RateLimited {
                retry_after_seconds: 1,
            },
            Fault::Status(500),
            Fault::Status(503),
            Fault::SlackError("internal_error"),
            Fault::Slow(Duration::from_millis(600)),
            Fault::DropAfterProcessing,
            Fault::FileNotReady,
        ],
        20261126,
    );
    let metrics = Arc::new(Metrics::new());
    let delivery = Arc::new(
        SlackDelivery::new(
            SlackOptions {
                api_url: slack.api_url.clone(),
                bot_token: Secret::new(TOKEN),
                retry: RetryPolicy {
                    base_delay: Duration::from_millis(20),
                    max_delay: Duration::from_millis(400),
                    deadline: Duration::from_secs(45),
                    max_attempts: 12,
                    request_timeout: Duration::from_millis(300),
                },
                channel_interval: Duration::from_millis(50),
                max_concurrent_posts: 32,
                tier_rates: kpibot::slack::limits::TierRates::uniform(
                    common::fake_slack::UNPACED_CALLS_PER_MINUTE,
                ),
            },
            metrics.clone(),
        )
        .unwrap(),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..REPORTS)
        .map(|i| {
            let delivery = delivery.clone();
            tokio::spawn(async move { delivery.deliver(&report(i)).await })
        })
        .collect();
    let mut failed = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if let Err(e) = task.await.unwrap() {
            failed.push(format!("report_{i:03}: {e}"));
        }
    }
    let elapsed = started.elapsed();

    let mut posts_per_report: HashMap<String, usize> = HashMap::new();
    for m in slack.messages() {
        let id = m.body["metadata"]["event_payload"]["report_id"]
            .as_str()
            .unwrap()
            .to_string();
        *posts_per_report.entry(id).or_default() += 1;
    }
    let duplicates: usize = posts_per_report.values().map(|n| n - 1).sum();
    let retries = metrics.counter("kpibot_slack_retries_total", &[]);
    let found_existing =
        metrics.counter("kpibot_slack_posts_total", &[("outcome", "found_existing")]);
    eprintln!(
        "soak: {REPORTS} reports, {} calls, {} faults injected ({:.0}%), {retries} retries, \
         {found_existing} posts found after a lost answer, {} delivered, {duplicates} duplicates, \
         {} failed, {:.1} s",
        slack.calls().len(),
        slack.faults_injected(),
        100.0 * slack.faults_injected() as f64 / slack.calls().len() as f64,
        posts_per_report.len(),
        failed.len(),
        elapsed.as_secs_f64()
    );
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(posts_per_report.len(), REPORTS, "every report arrived");
    assert_eq!(duplicates, 0, "no report posted twice");
    assert!(
        slack.faults_injected() as f64 >= 0.25 * slack.calls().len() as f64,
        "the soak injected too few faults to mean anything"
    );
    assert!(found_existing > 0.0, "no lost answer was exercised");
}

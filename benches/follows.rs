//! A morning of digests through the release binary: people following questions, all due
//! in one slot, over the fake BigQuery (which counts the jobs that read data) and the fake
//! Slack. Prints the figures the README quotes: followers and follows, distinct questions,
//! data queries run, seconds from start to the last digest handed to Slack, digests a
//! second, and the bot's peak memory.
//!
//! `cargo bench --bench follows` (1,000 people × 5 follows over 200 questions); the full
//! size: `KPIBOT_FOLLOW_PEOPLE=10000 cargo bench --bench follows`.

use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use chrono::{Timelike, Utc};
use common::bot::{Bot, block_on, terminate, wait_for};
use common::fake_slack::{FakeSlack, TOKEN};
use kpibot::ledger::Ledger;
use kpibot::ledger::follows::Follow;
use kpibot::settings::LedgerSettings;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let people = setting("KPIBOT_FOLLOW_PEOPLE", 1_000);
    let per_person = setting("KPIBOT_FOLLOW_PER_PERSON", 5);
    let distinct = setting("KPIBOT_FOLLOW_QUESTIONS", 200);
    // 200 questions: two metrics over `last N days` windows.
    let questions: Vec<String> = (0..distinct)
        .map(|i| {
            let metric = if i % 2 == 0 {
                "active_users"
            } else {
                "signups"
            };
            format!("{metric} last {} days", 2 + i / 2)
        })
        .collect();
    let slack = FakeSlack::start_in_background(&[("C0DATATEAM", "data-team", true)]);
    let dir = common::bot::setup(&[]);
    std::fs::copy(
        common::repo_path("reports/metrics.toml"),
        dir.path().join("reports/metrics.toml"),
    )
    .unwrap();
    let bigquery = common::fake_bigquery::on_demo_mart(dir.path());
    // Due a minute ago in Tokyo, followed days before.
    let slot = (Utc::now() - chrono::Duration::minutes(1))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let local = slot.with_timezone(&chrono_tz::Asia::Tokyo);
    let minute = local.hour() * 60 + local.minute();
    let names: Vec<String> = (0..people).map(|i| format!("U0P{i:07}")).collect();
    {
        let ledger = block_on(Ledger::from_settings(&LedgerSettings {
            path: dir.path().join("ledger.sqlite"),
            ..LedgerSettings::default()
        }))
        .unwrap();
        for (i, person) in names.iter().enumerate() {
            for k in 0..per_person {
                let follow = Follow {
                    target: person.clone(),
                    question: questions[(i * per_person + k) % distinct].clone(),
                    person: person.clone(),
                    place: None,
                    cadence: "daily".into(),
                    at_minute: minute,
                    timezone: "Asia/Tokyo".into(),
                    locale: Some(if i % 2 == 0 { "ja" } else { "en" }.into()),
                    created_at: Utc::now() - chrono::Duration::days(3),
                    paused: None,
                };
                block_on(ledger.add_follow(&follow)).unwrap();
            }
        }
    }
    let mut env: Vec<(&str, &str)> = common::fake_bigquery::settings_for(&bigquery).to_vec();
    env.extend([
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__SCHEDULER__LEASE_SECONDS", "60"),
        ("KPIBOT__FOLLOWS__MAX_CONCURRENT_DIGESTS", "16"),
        ("KPIBOT__SLASH__CACHE_ENTRIES", "1024"),
        ("RUST_LOG", "kpibot=warn"),
    ]);
    let bot = Bot::new(dir.path(), &env);
    let started = Instant::now();
    let running = bot.start("bot.log");
    let pid = running.0.id();
    let digests = || {
        slack
            .messages()
            .iter()
            .filter(|m| m.body["metadata"]["event_type"] == "kpibot_digest")
            .count()
    };
    let mut peak: f64 = 0.0;
    wait_for("every digest", Duration::from_secs(3600), || {
        peak = peak.max(peak_mib(pid));
        digests() >= people
    });
    let seconds = started.elapsed().as_secs_f64();
    peak = peak.max(peak_mib(pid));
    assert!(terminate(running).success());
    let jobs = bigquery
        .calls_of("jobs.query")
        .into_iter()
        .filter(|c| c.body["dryRun"] != true)
        .filter(|c| {
            c.body["query"]
                .as_str()
                .is_some_and(|q| q.contains("mart.daily_"))
        })
        .count();
    println!(
        "follows: {people} people × {per_person} follows ({} follows) over {distinct} questions, half in Japanese",
        people * per_person
    );
    println!(
        "  {} digests in {seconds:.1} s from start ({:.0} a second); {jobs} data queries run (a question's window and comparison: {} would be one per follow); peak memory {peak:.0} MiB",
        digests(),
        digests() as f64 / seconds,
        people * per_person * 2,
    );
}

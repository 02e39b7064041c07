//! A company's morning through the real binary on loopback, for `tests/due_minute.rs`
//! (small, asserted) and `benches/morning.rs` (large, measured): reports over channels
//! and alerts (each split by prefecture: 47 instances) all due in one second, replicas on
//! one PostgreSQL ledger, the fake BigQuery with a cap on running jobs, the fake Slack
//! enforcing Slack's rate limits, and one replica SIGKILLed once a share of posts is out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};

use super::bot::{Bot, block_on, report_spec, setup, terminate, wait_for};
use super::fake_slack::{FakeSlack, TOKEN};
use super::slack_limits::SlackLimits;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Morning {
    pub reports: usize,
    pub channels: usize,
    /// One report in this many posts an uploaded PNG (two Tier 4 calls); the rest use
    /// Slack's own chart block.
    pub image_every: usize,
    pub replicas: usize,
    /// Alerts due in the same second, each over a metric split by prefecture.
    pub alerts: usize,
    /// Channels the alerts post to (apart from the reports').
    pub alert_channels: usize,
    /// One alert in this many fires (and posts); the rest evaluate quietly.
    pub fire_every: usize,
    /// Jobs the fake BigQuery runs at once; past it, ADMISSION_DENIED.
    pub bigquery_running_cap: usize,
    /// The workspace's allowance per tier, a minute; each replica is given its share.
    pub workspace_per_minute: [usize; 4],
    /// The kill comes once this share of the reports is posted.
    pub kill_after_fraction: f64,
    /// Slots one replica runs at once.
    pub max_concurrent_runs: usize,
    /// `scheduler.lease_seconds`: how soon a dead replica's slots are taken over, and how
    /// much time a loaded replica has to renew its leases.
    pub lease_seconds: u64,
    /// How long the replicas get to start before the due second.
    pub lead: Duration,
    /// How long after the due second the simulation waits for the last post.
    pub patience: Duration,
}

/// What happened.
#[derive(Debug)]
pub struct Figures {
    /// Posts per report id (each should be 1).
    pub posts: BTreeMap<String, usize>,
    pub missing: Vec<String>,
    /// Rounds recorded in the ledger per alert (each should be 1).
    pub alert_rounds: BTreeMap<String, usize>,
    /// Messages posted per firing alert (each should be 1).
    pub alert_posts: BTreeMap<String, usize>,
    /// The alerts that should fire.
    pub firing: Vec<String>,
    /// Seconds from the due second to the last alert post.
    pub last_alert_post_seconds: f64,
    /// Queries the fake BigQuery ran (billed jobs, dry runs apart).
    pub warehouse_queries: usize,
    /// Queries the reports' and alerts' runs asked for (two per report: its window and
    /// the one before; one per alert), before identical ones were shared.
    pub queries_asked: usize,
    /// The most jobs running at once, and the queries refused past the cap.
    pub most_running_jobs: usize,
    pub admission_denied: usize,
    /// Seconds from the due second to the last post.
    pub last_post_seconds: f64,
    /// Seconds from the due second to the kill.
    pub killed_at_seconds: f64,
    /// 429s answered, by method.
    pub rate_limited: BTreeMap<String, usize>,
    pub calls: usize,
    /// What owners were told (failure notices).
    pub notices: Vec<String>,
    /// Peak resident memory of each replica still running at the end, in MiB.
    pub peak_rss_mib: Vec<f64>,
    /// Log lines where a replica took a busy ledger for an unavailable one.
    pub ledger_unavailable_lines: usize,
    /// The surviving replicas' logs.
    pub logs: Vec<String>,
}

impl Figures {
    /// Posts a second from the due second to the last post.
    pub fn posts_per_second(&self) -> f64 {
        self.posts.values().sum::<usize>() as f64 / self.last_post_seconds.max(1e-3)
    }
}

fn report(i: usize, plan: &Morning, cron: &str) -> String {
    let chart = if i.is_multiple_of(plan.image_every) {
        "image"
    } else {
        "native"
    };
    let channel = format!("#kpi-due-{}", i % plan.channels);
    report_spec(&format!("Due {i}"), cron, &channel, chart, Some("UTC"))
}

/// A metric over the demo mart's active users, split by prefecture (47 values).
const SIM_METRIC: &str = r##"[[metric]]
name = "sim_active_users"
label = "Active users"
description = "Active users, for the simulation."
table = "mart.daily_active_users"
time_column = "activity_date"
measure = "sum"
column = "active_users"
owner = "#data-team"
[metric.dimensions]
prefecture = "Prefecture"
"##;

/// The alerts: each over every prefecture; one in `fire_every` has a threshold no
/// prefecture reaches (it fires), the rest one none falls below.
fn alerts_file(plan: &Morning, cron: &str) -> String {
    (0..plan.alerts)
        .map(|i| {
            let below = if i.is_multiple_of(plan.fire_every) { 1_000_000_000 } else { 0 };
            format!(
                "[[alert]]\nname = \"due_alert_{i:05}\"\nmetric = \"sim_active_users\"\nby = \"prefecture\"\nbelow = {below}\nchannel = \"#kpi-alert-{}\"\nowner = \"#data-team\"\ntimezone = \"UTC\"\ncron = \"{cron}\"\n\n",
                i % plan.alert_channels.max(1)
            )
        })
        .collect()
}

/// Peak resident memory of process `pid` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the morning against a fresh database on the PostgreSQL server at `server`.
pub fn simulate(plan: &Morning, server: &str) -> Figures {
    let url = block_on(super::postgres::fresh_database(server));
    let names: Vec<(String, String)> = (0..plan.channels)
        .map(|i| (format!("C0DUE{i:04}"), format!("kpi-due-{i}")))
        .collect();
    let mut channels: Vec<(&str, &str, bool)> = names
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str(), true))
        .collect();
    let alert_names: Vec<(String, String)> = (0..plan.alert_channels)
        .map(|i| (format!("C0ALR{i:04}"), format!("kpi-alert-{i}")))
        .collect();
    channels.extend(
        alert_names
            .iter()
            .map(|(id, name)| (id.as_str(), name.as_str(), true)),
    );
    channels.push(("C0DATATEAM", "data-team", true));
    let slack = FakeSlack::start_in_background(&channels);
    // BigQuery: the demo mart through yesterday in Tokyo, each job running until polled
    // once, and no more than the cap running at once.
    let mart_dir = tempfile::tempdir().unwrap();
    let bigquery = super::fake_bigquery::on_demo_mart(mart_dir.path());
    bigquery.set_pending_polls(1);
    bigquery.set_max_running_jobs(plan.bigquery_running_cap);
    slack.enforce_limits(SlackLimits {
        per_minute: plan.workspace_per_minute,
        ..SlackLimits::documented()
    });
    let due: DateTime<Utc> = (Utc::now() + chrono::Duration::from_std(plan.lead).unwrap())
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} {} * * *", due.second(), due.minute(), due.hour());
    let mut files: Vec<(String, String)> = (0..plan.reports)
        .map(|i| (format!("due_{i:05}.toml"), report(i, plan, &cron)))
        .collect();
    if plan.alerts > 0 {
        files.push(("sim_metrics.toml".into(), SIM_METRIC.into()));
        files.push(("sim_alerts.toml".into(), alerts_file(plan, &cron)));
    }
    let files: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let dir = setup(&files);
    let share: Vec<String> = plan
        .workspace_per_minute
        .iter()
        .map(|n| (n / plan.replicas).max(1).to_string())
        .collect();
    let runs = plan.max_concurrent_runs.to_string();
    let lease = plan.lease_seconds.to_string();
    let mut env = super::fake_bigquery::settings_for(&bigquery).to_vec();
    env.extend([
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__SLACK__CHANNEL_POST_INTERVAL_MS", "1000"),
        ("KPIBOT__SLACK__TIER1_PER_MINUTE", share[0].as_str()),
        ("KPIBOT__SLACK__TIER2_PER_MINUTE", share[1].as_str()),
        ("KPIBOT__SLACK__TIER3_PER_MINUTE", share[2].as_str()),
        ("KPIBOT__SLACK__TIER4_PER_MINUTE", share[3].as_str()),
        ("KPIBOT__LEDGER__URL", url.as_str()),
        ("KPIBOT__SCHEDULER__LEASE_SECONDS", lease.as_str()),
        ("KPIBOT__SCHEDULER__MAX_CONCURRENT_RUNS", runs.as_str()),
        ("RUST_LOG", "kpibot=warn"),
    ]);
    let bots: Vec<Bot> = (0..plan.replicas)
        .map(|_| Bot::new(dir.path(), &env))
        .collect();
    let mut running: Vec<_> = bots
        .iter()
        .enumerate()
        .map(|(i, bot)| Some(bot.start(&format!("replica-{i}.log"))))
        .collect();
    let report_posts = || -> BTreeMap<String, usize> {
        let mut per_report = BTreeMap::new();
        for (id, _) in &names {
            for m in slack.messages_in(id) {
                let payload = &m.body["metadata"]["event_payload"];
                let slot = chrono::DateTime::parse_from_rfc3339(payload["slot"].as_str().unwrap());
                assert_eq!(
                    slot.unwrap().to_utc(),
                    due,
                    "a post of another slot: {payload}"
                );
                let report = payload["report_id"].as_str().unwrap().to_string();
                *per_report.entry(report).or_default() += 1;
            }
        }
        per_report
    };
    // Each alert's root message, by the alert its metadata names.
    let alert_posts = || -> BTreeMap<String, usize> {
        let mut per_alert = BTreeMap::new();
        for (id, _) in &alert_names {
            for m in slack.messages_in(id) {
                let metadata = &m.body["metadata"];
                if m.thread_ts.is_none() && metadata["event_type"] == "kpibot_alert" {
                    let alert = metadata["event_payload"]["alert"].as_str().unwrap();
                    *per_alert.entry(alert.to_string()).or_default() += 1;
                }
            }
        }
        per_alert
    };
    let firing: Vec<String> = (0..plan.alerts)
        .filter(|i| i.is_multiple_of(plan.fire_every))
        .map(|i| format!("due_alert_{i:05}"))
        .collect();
    let kill_after = ((plan.reports as f64 * plan.kill_after_fraction) as usize).max(1);
    wait_for(
        "the first posts of the due minute",
        plan.lead + plan.patience,
        || report_posts().len() >= kill_after,
    );
    running[0].take().unwrap().sigkill();
    let killed_at = Utc::now();
    let settle = Instant::now()
        + (due + chrono::Duration::from_std(plan.patience).unwrap() - Utc::now())
            .to_std()
            .unwrap_or_default();
    let (mut last_count, mut last_alerts) = (0, 0);
    let (mut last_post, mut last_alert_post) = (Utc::now(), Utc::now());
    while Instant::now() < settle {
        let count = report_posts().len();
        if count != last_count {
            (last_count, last_post) = (count, Utc::now());
        }
        let alerts = alert_posts().len();
        if alerts != last_alerts {
            (last_alerts, last_alert_post) = (alerts, Utc::now());
        }
        if count >= plan.reports && alerts >= firing.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let peak_rss_mib = running
        .iter()
        .flatten()
        .filter_map(|r| peak_rss_mib(r.0.id()))
        .collect();
    for replica in running.into_iter().flatten() {
        assert!(terminate(replica).success());
    }
    let posts = report_posts();
    let logs: Vec<String> = (1..plan.replicas)
        .map(|i| bots[i].log(&format!("replica-{i}.log")))
        .collect();
    let methods: std::collections::BTreeSet<String> =
        slack.calls().iter().map(|c| c.method.clone()).collect();
    let rate_limited = methods
        .into_iter()
        .map(|m| {
            let n = slack.rate_limited(&m);
            (m, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut alert_rounds = BTreeMap::new();
    let rounds = block_on(async {
        let ledger = kpibot::ledger::Ledger::postgres(&url, &Default::default())
            .await
            .unwrap();
        ledger
            .alert_history(None, plan.alerts * 10 + 10)
            .await
            .unwrap()
    });
    for round in rounds {
        assert_eq!(
            round.evaluated_at, due,
            "a round of another slot: {}",
            round.alert
        );
        *alert_rounds.entry(round.alert).or_default() += 1;
    }
    let warehouse_queries = bigquery
        .calls_of("jobs.query")
        .iter()
        .filter(|c| c.body["dryRun"] != true)
        .count();
    Figures {
        alert_rounds,
        alert_posts: alert_posts(),
        firing,
        last_alert_post_seconds: (last_alert_post - due).num_milliseconds() as f64 / 1000.0,
        warehouse_queries,
        queries_asked: plan.reports * 2 + plan.alerts,
        most_running_jobs: bigquery.most_running_jobs(),
        admission_denied: bigquery.admission_denied(),
        missing: (0..plan.reports)
            .map(|i| format!("due_{i:05}"))
            .filter(|r| !posts.contains_key(r))
            .collect(),
        posts,
        last_post_seconds: (last_post - due).num_milliseconds() as f64 / 1000.0,
        killed_at_seconds: (killed_at - due).num_milliseconds() as f64 / 1000.0,
        rate_limited,
        calls: slack.calls().len(),
        notices: slack
            .messages_in("C0DATATEAM")
            .iter()
            .map(|m| m.body["text"].to_string())
            .collect(),
        peak_rss_mib,
        ledger_unavailable_lines: logs
            .iter()
            .flat_map(|log| log.lines())
            .filter(|l| {
                l.contains("the ledger is unavailable")
                    || l.contains("could not check the slot's lease")
            })
            .count(),
        logs,
    }
}

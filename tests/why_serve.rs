//! Why a number moved, through the real binary and the fake Slack: an alert's root states
//! its drivers in one line (the firing prefecture's part of the day's change and its
//! share, equal to what DuckDB sums), its Why? button answers in the root's thread with
//! the full explanation, and in a channel the prefecture policy does not allow, neither the
//! drivers line nor the explanation names a prefecture or the dimension.

mod common;

use std::time::Duration;

use common::bot::{Bot, EVERY_TWO_SECONDS, post_signed_click, terminate, wait_for};
use common::fake_slack::{FakeSlack, Posted, TOKEN};
use serde_json::Value;

const DATA_TEAM: &str = "C0DATATEAM";
const GROWTH: &str = "C0GROWTH01";
const SIGNING_SECRET: &str = "why-signing-secret";
/// The judged day is in the demo incident (Fukuoka's outage, 24 to 19 days before the
/// mart's last day, yesterday).
const INCIDENT_LAG_DAYS: u32 = 23;

fn alerts() -> String {
    format!(
        r##"[[alert]]
name = "prefecture_drop"
title = "Active users fell in a prefecture"
metric = "active_users"
by = "prefecture"
change = {{ percent = -40, against = "previous_week" }}
channel = "#data-team"
owner = "#data-team"
timezone = "Asia/Tokyo"
cron = "{EVERY_TWO_SECONDS}"
lag_days = {INCIDENT_LAG_DAYS}

[[alert]]
name = "users_watch"
title = "Active users watched in #growth"
metric = "active_users"
below = 1000000000
channel = "#growth"
owner = "#growth"
timezone = "Asia/Tokyo"
cron = "{EVERY_TWO_SECONDS}"
lag_days = {INCIDENT_LAG_DAYS}
"##
    )
}

fn roots(slack: &FakeSlack, channel: &str) -> Vec<Posted> {
    slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect()
}

fn explanations_under(slack: &FakeSlack, channel: &str, root: &str) -> Vec<Value> {
    slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| {
            m.thread_ts.as_deref() == Some(root)
                && m.body["metadata"]["event_type"] == "kpibot_explanation"
        })
        .map(|m| m.body)
        .collect()
}

/// The root's context line that names its drivers.
fn drivers_line(root: &Value) -> String {
    common::context_lines(root)
        .into_iter()
        .find(|l| l.starts_with("Driver: "))
        .unwrap_or_else(|| panic!("no drivers line in {root}"))
}

fn click_why(bot: &Bot, root: &Posted, channel: (&str, &str)) {
    let block_id = common::actions_block_id(&root.body);
    let payload = common::block_actions_payload(
        "U0BOB",
        channel,
        (&root.body, &root.ts),
        common::button_click("kpi_why", &block_id, "why"),
    );
    let response = post_signed_click(bot.port(), SIGNING_SECRET, &payload).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn an_alert_root_states_its_drivers_and_why_answers_in_its_thread_showing_only_what_may_be_seen() {
    let slack =
        FakeSlack::start_in_background(&[(DATA_TEAM, "data-team", true), (GROWTH, "growth", true)]);
    let dir = common::bot::setup(&[("alerts.toml", alerts())]);
    for file in ["metrics.toml", "policies.toml"] {
        std::fs::copy(
            common::repo_path(&format!("reports/{file}")),
            dir.path().join("reports").join(file),
        )
        .unwrap();
    }
    let bot = Bot::new(
        dir.path(),
        &[
            ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
            ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
            ("KPIBOT__SLACK__SIGNING_SECRET", SIGNING_SECRET),
        ],
    );
    let running = bot.start("bot.log");
    wait_for("both roots", Duration::from_secs(60), || {
        !roots(&slack, DATA_TEAM).is_empty() && !roots(&slack, GROWTH).is_empty()
    });
    // #data-team may see prefectures: Fukuoka's part of the whole day's change against
    // the same day a week before, as DuckDB sums it, and its share.
    let root = roots(&slack, DATA_TEAM)[0].clone();
    let line = drivers_line(&root.body);
    let judged = kpibot::pipeline::today_in(chrono_tz::Asia::Tokyo, chrono::Utc::now())
        - chrono::Days::new(u64::from(INCIDENT_LAG_DAYS));
    let earlier = judged - chrono::Days::new(7);
    let duckdb = common::read_only_duckdb(&dir.path().join("demo.duckdb"));
    let sum = |day: chrono::NaiveDate, filter: &str| -> f64 {
        duckdb
            .query_row(
                &format!(
                    "SELECT SUM(active_users)::DOUBLE FROM mart.daily_active_users
                     WHERE activity_date = DATE '{day}' {filter}"
                ),
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    let fukuoka = "AND prefecture = '福岡県'";
    let part = sum(judged, fukuoka) - sum(earlier, fukuoka);
    let total = sum(judged, "") - sum(earlier, "");
    let written = kpibot::render::format::NumberStyle::integer().value(part);
    assert!(part < 0.0, "the incident is a drop: {part}");
    assert!(
        line.contains(&format!(
            "福岡県 {written}, {:.0}%",
            (part / total).abs() * 100.0
        )),
        "{line} (part {part}, total {total})"
    );
    // Its Why? button: the full explanation, in the root's thread, naming who asked.
    click_why(&bot, &root, (DATA_TEAM, "data-team"));
    wait_for(
        "the explanation in the thread",
        Duration::from_secs(30),
        || !explanations_under(&slack, DATA_TEAM, &root.ts).is_empty(),
    );
    let explained = explanations_under(&slack, DATA_TEAM, &root.ts)[0].clone();
    let payload = &explained["metadata"]["event_payload"];
    assert_eq!(payload["asked_start"], judged.to_string());
    assert_eq!(payload["compared_start"], earlier.to_string());
    let change: f64 = payload["change"].as_str().unwrap().parse().unwrap();
    assert!((change - total).abs() < 1e-6);
    assert_eq!(
        common::context_lines(&explained)[0],
        "why it changed, asked by <@U0BOB>"
    );
    // #growth may not see prefectures: its drivers come from the other dimensions, and
    // neither they nor the Why? answer name a prefecture or the dimension.
    let growth_root = roots(&slack, GROWTH)[0].clone();
    drivers_line(&growth_root.body);
    click_why(&bot, &growth_root, (GROWTH, "growth"));
    wait_for(
        "the explanation in #growth",
        Duration::from_secs(30),
        || !explanations_under(&slack, GROWTH, &growth_root.ts).is_empty(),
    );
    let everything: String = slack
        .messages_in(GROWTH)
        .iter()
        .map(|m| m.body.to_string())
        .collect();
    for hidden in ["prefecture", "Prefecture", "福岡県", "東京都"] {
        assert!(
            !everything.contains(hidden),
            "{hidden} in #growth: {everything}"
        );
    }
    assert!(terminate(running).success());
}

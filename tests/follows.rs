//! Following from Slack, through the real binary and the fake Slack: `/kpi follow` in
//! English and Japanese keeps the question with the person's own Slack timezone,
//! `following` lists it and `unfollow` stops it; each person's digest arrives once at
//! their own local time and in their language, across a restart and a second replica on
//! the same ledger; a policy narrowed between two digests pauses the covered question with
//! one line and shows none of its data; and a digest whose process died after posting is
//! found in Slack, not posted again.

mod common;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::bot::{
    Bot, block_on, command_form, post_signed_command, post_signed_event, terminate, wait_for,
};
use common::fake_slack::{FakeSlack, Posted, TOKEN};
use kpibot::ledger::Ledger;
use kpibot::ledger::follows::{DigestClaimed, Follow};
use kpibot::settings::LedgerSettings;
use serde_json::json;

const SECRET: &str = "follow-signing-secret";
const DATA_TEAM: &str = "C0DATATEAM";
const AKI: &str = "U0AKI0001";
const BEN: &str = "U0BEN0001";
const BY_PREFECTURE: &str = "active_users last 7 days by prefecture";

fn slack() -> FakeSlack {
    let slack = FakeSlack::start_in_background(&[(DATA_TEAM, "data-team", true)]);
    slack.set_user_locale(AKI, "ja-JP");
    slack.set_user_timezone(AKI, "Asia/Tokyo");
    slack.set_user_locale(BEN, "en-US");
    slack.set_user_timezone(BEN, "America/New_York");
    slack
}

fn dir_with_metrics() -> tempfile::TempDir {
    let dir = common::bot::setup(&[]);
    std::fs::copy(
        common::repo_path("reports/metrics.toml"),
        dir.path().join("reports/metrics.toml"),
    )
    .unwrap();
    dir
}

fn bot(dir: &std::path::Path, slack: &FakeSlack) -> Bot {
    Bot::new(
        dir,
        &[
            ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
            ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
            ("KPIBOT__SLACK__SIGNING_SECRET", SECRET),
            ("KPIBOT__SCHEDULER__LEASE_SECONDS", "30"),
        ],
    )
}

/// `/kpi <text>` typed by `user` in #data-team; its answer goes to the response URL `id`.
fn slash(bot: &Bot, slack: &FakeSlack, user: &str, text: &str, id: &str) -> String {
    let body = command_form(
        text,
        user,
        (DATA_TEAM, "data-team"),
        &slack.response_url(id),
    );
    let response = post_signed_command(bot.port(), SECRET, &body).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Answered at once (a mistake, an unknown name), or in the background.
    if !response.contains("Working on") && !response.contains("集計しています") {
        return response;
    }
    wait_for(
        &format!("the answer to {text}"),
        Duration::from_secs(60),
        || !slack.responses(id).is_empty(),
    );
    slack
        .responses(id)
        .iter()
        .filter_map(|r| r["text"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The deployment's data policies, as `reports/policies.toml` says them.
fn write_policies(dir: &std::path::Path, toml: &str) {
    std::fs::write(dir.join("reports/policies.toml"), toml).unwrap();
}

fn ledger(dir: &std::path::Path) -> Ledger {
    block_on(Ledger::from_settings(&LedgerSettings {
        path: dir.join("ledger.sqlite"),
        ..LedgerSettings::default()
    }))
    .unwrap()
}

fn digests_to(slack: &FakeSlack, user: &str) -> Vec<Posted> {
    slack
        .messages_in(&format!("D{user}"))
        .into_iter()
        .filter(|m| m.body["metadata"]["event_type"] == "kpibot_digest")
        .collect()
}

#[test]
fn a_follow_by_command_keeps_the_persons_timezone_is_listed_and_is_stopped() {
    let slack = slack();
    let dir = dir_with_metrics();
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");

    let english = slash(
        &bot,
        &slack,
        BEN,
        "follow active_users last 7 days by role weekly monday at 8:30",
        "ben-follow",
    );
    assert!(
        english.contains("Following `active_users last 7 days by role`")
            && english.contains("every Mon at 08:30 (America/New_York)"),
        "{english}"
    );
    let japanese = slash(
        &bot,
        &slack,
        AKI,
        "フォロー アクティブユーザー 過去7日 毎週月曜 9時",
        "aki-follow",
    );
    assert!(
        japanese.contains("フォローしました") && japanese.contains("毎週月曜 09:00（Asia/Tokyo）"),
        "{japanese}"
    );
    let unknown = slash(&bot, &slack, BEN, "follow no_such_metric", "ben-unknown");
    assert!(!unknown.contains("Following"), "{unknown}");

    let follows = block_on(ledger(dir.path()).follows(None)).unwrap();
    let kept: Vec<(&str, &str, &str, u32, &str)> = follows
        .iter()
        .map(|f| {
            (
                f.target.as_str(),
                f.question.as_str(),
                f.cadence.as_str(),
                f.at_minute,
                f.timezone.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                AKI,
                "active_users last 7 days",
                "weekly:mon",
                540,
                "Asia/Tokyo"
            ),
            (
                BEN,
                "active_users last 7 days by role",
                "weekly:mon",
                510,
                "America/New_York"
            ),
        ]
    );

    let listed = slash(&bot, &slack, BEN, "following", "ben-list");
    assert!(
        listed.contains("1. `active_users last 7 days by role`"),
        "{listed}"
    );
    let stopped = slash(&bot, &slack, BEN, "unfollow 1", "ben-unfollow");
    assert!(stopped.contains("Stopped following"), "{stopped}");
    let none = slash(&bot, &slack, BEN, "following", "ben-none");
    assert!(none.contains("You follow nothing yet"), "{none}");
    assert!(terminate(running).success());
}

/// A follow made three days ago, due every day at `minute` past midnight in `timezone`.
fn seeded(target: &str, question: &str, minute: u32, timezone: &str, locale: &str) -> Follow {
    Follow {
        target: target.into(),
        question: question.into(),
        person: target.into(),
        cadence: "daily".into(),
        at_minute: minute,
        timezone: timezone.into(),
        locale: Some(locale.into()),
        created_at: Utc::now() - chrono::Duration::days(3),
        paused: None,
        place: None,
    }
}

/// The local minute of the day `hours_ago` hours before now in `timezone`, and that slot
/// as an instant.
fn minute_hours_ago(timezone: chrono_tz::Tz, hours_ago: i64) -> (u32, DateTime<Utc>) {
    let at = (Utc::now() - chrono::Duration::hours(hours_ago))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let local = at.with_timezone(&timezone);
    (local.hour() * 60 + local.minute(), at)
}

#[test]
fn each_digest_arrives_once_in_its_persons_time_and_language_and_a_narrowed_policy_pauses_without_leaking()
 {
    let slack = slack();
    let dir = dir_with_metrics();
    let (aki_minute, aki_slot) = minute_hours_ago(chrono_tz::Asia::Tokyo, 2);
    let (ben_minute, ben_slot) = minute_hours_ago(chrono_tz::America::New_York, 2);
    {
        let ledger = ledger(dir.path());
        for follow in [
            seeded(AKI, BY_PREFECTURE, aki_minute, "Asia/Tokyo", "ja"),
            seeded(AKI, "signups last 28 days", aki_minute, "Asia/Tokyo", "ja"),
            seeded(BEN, BY_PREFECTURE, ben_minute, "America/New_York", "en"),
        ] {
            block_on(ledger.add_follow(&follow)).unwrap();
        }
    }
    // Two replicas on one ledger.
    let first = bot(dir.path(), &slack);
    let second = bot(dir.path(), &slack);
    let (one, two) = (first.start("first.log"), second.start("second.log"));
    wait_for("both digests", Duration::from_secs(120), || {
        !digests_to(&slack, AKI).is_empty() && !digests_to(&slack, BEN).is_empty()
    });
    wait_for("every claim decided", Duration::from_secs(60), || {
        let claims = |bot: &Bot, outcome: &str| {
            bot.metric(&format!(
                "kpibot_digest_claims_total{{outcome=\"{outcome}\"}}"
            ))
        };
        claims(&first, "won") + claims(&second, "won") == 2.0
            && claims(&first, "lost") + claims(&second, "lost") >= 2.0
    });
    assert!(terminate(one).success() && terminate(two).success());

    let aki = digests_to(&slack, AKI);
    let ben = digests_to(&slack, BEN);
    assert_eq!((aki.len(), ben.len()), (1, 1), "one digest each");
    let slot_of = |m: &Posted| m.body["metadata"]["event_payload"]["slot"].clone();
    assert_eq!(
        slot_of(&aki[0]),
        json!(aki_slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    assert_eq!(
        slot_of(&ben[0]),
        json!(ben_slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let aki_text = aki[0].body.to_string();
    let ben_text = ben[0].body.to_string();
    assert!(
        aki_text.contains("フォロー中のKPI") && aki_text.contains("フォロー解除"),
        "{aki_text}"
    );
    assert!(
        ben_text.contains("Your KPIs") && ben_text.contains("Unfollow"),
        "{ben_text}"
    );
    assert_eq!(
        aki[0].body["metadata"]["event_payload"]["questions"],
        json!("2")
    );
    // Each question shows a chart: Slack's own block, or an uploaded image.
    let charts = |m: &Posted| {
        m.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| {
                matches!(
                    b["type"].as_str(),
                    Some("image" | "data_visualization" | "data_table")
                )
            })
            .count()
    };
    assert_eq!((charts(&aki[0]), charts(&ben[0])), (2, 1));
    assert!(
        ben_text.contains("東京都"),
        "Ben may see prefectures now: {ben_text}"
    );

    // Between two digests: prefectures become Aki's alone, and Ben's follow is due again.
    write_policies(
        dir.path(),
        &format!(
            r##"[[policy]]
name = "prefecture_detail"
table = "mart.daily_active_users"
columns = ["prefecture"]
owner = "#data-team"
allowed_channels = ["#data-team"]
allowed_users = ["{AKI}"]
"##
        ),
    );
    let (ben_minute, ben_second_slot) = minute_hours_ago(chrono_tz::America::New_York, 1);
    {
        let ledger = ledger(dir.path());
        let mut again = seeded(BEN, BY_PREFECTURE, ben_minute, "America/New_York", "en");
        again.created_at = Utc::now() - chrono::Duration::days(3);
        block_on(ledger.add_follow(&again)).unwrap();
    }
    let restarted = first.start("restarted.log");
    wait_for("Ben's second digest", Duration::from_secs(120), || {
        digests_to(&slack, BEN).len() >= 2
    });
    wait_for("Aki's digest found sent", Duration::from_secs(60), || {
        first.metric("kpibot_digest_claims_total{outcome=\"lost\"}") >= 1.0
    });
    assert!(terminate(restarted).success());
    assert_eq!(
        digests_to(&slack, AKI).len(),
        1,
        "Aki's digest is not sent again"
    );
    let ben = digests_to(&slack, BEN);
    assert_eq!(ben.len(), 2);
    assert_eq!(
        slot_of(&ben[1]),
        json!(ben_second_slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let second_text = ben[1].body.to_string();
    assert!(
        second_text.contains("is paused") && second_text.contains("#data-team"),
        "{second_text}"
    );
    for covered in ["福岡県", "東京都", "prefecture"] {
        assert!(
            !second_text.replace(BY_PREFECTURE, "").contains(covered),
            "{covered} leaked: {second_text}"
        );
    }
    assert_eq!(charts(&ben[1]), 0);
    let paused = block_on(ledger(dir.path()).follows(Some(BEN))).unwrap();
    assert!(paused[0].paused.is_some());
}

#[test]
fn a_digest_posted_by_a_process_that_died_before_recording_it_is_found_not_sent_again() {
    let slack = slack();
    let dir = dir_with_metrics();
    let (minute, slot) = minute_hours_ago(chrono_tz::Asia::Tokyo, 1);
    let slot_text = slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    {
        let ledger = ledger(dir.path());
        for user in [AKI, BEN] {
            block_on(ledger.add_follow(&seeded(
                user,
                "signups last 28 days",
                minute,
                "Asia/Tokyo",
                "en",
            )))
            .unwrap();
            // A dead process claimed both and began to post; its lease has lapsed.
            let now = Utc::now();
            let DigestClaimed::Won(claim) = block_on(ledger.claim_digest(
                user,
                slot,
                "dead-process",
                now - chrono::Duration::seconds(1),
                now - chrono::Duration::seconds(5),
            ))
            .unwrap() else {
                panic!("a new digest is won")
            };
            assert!(
                block_on(ledger.begin_digest_post(
                    &claim.fence,
                    now - chrono::Duration::seconds(1),
                    now - chrono::Duration::seconds(5),
                ))
                .unwrap()
            );
        }
    }
    // Aki's post reached Slack before the process died; Ben's did not.
    slack.add_bot_message(
        &format!("D{AKI}"),
        "kpibot_digest",
        json!({"target": AKI, "person": AKI, "slot": slot_text, "questions": "1"}),
    );
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");
    wait_for("Ben's digest", Duration::from_secs(120), || {
        !digests_to(&slack, BEN).is_empty()
    });
    wait_for("both recorded", Duration::from_secs(60), || {
        bot.metric("kpibot_digests_total{outcome=\"posted\"}") >= 2.0
    });
    assert!(terminate(running).success());
    assert_eq!(digests_to(&slack, AKI).len(), 1, "found, not posted again");
    assert_eq!(digests_to(&slack, BEN).len(), 1);
    let counts = block_on(ledger(dir.path()).digest_counts()).unwrap();
    assert_eq!(counts, vec![("posted".to_string(), 2)]);
}

#[test]
fn the_home_tab_shows_each_person_what_they_follow_and_only_what_they_may_see() {
    let slack = slack();
    let dir = dir_with_metrics();
    // Sign-ups are Aki's alone.
    write_policies(
        dir.path(),
        &format!(
            r##"[[policy]]
name = "signups_private"
table = "mart.daily_signups"
owner = "#growth"
allowed_users = ["{AKI}"]
"##
        ),
    );
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");
    let followed = slash(
        &bot,
        &slack,
        BEN,
        "follow active_users last 7 days",
        "ben-follow",
    );
    assert!(followed.contains("Following"), "{followed}");

    // Slack checks the URL first: the challenge comes back.
    let challenge = post_signed_event(
        bot.port(),
        SECRET,
        &json!({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}),
    )
    .unwrap();
    assert!(
        challenge.starts_with("HTTP/1.1 200")
            && challenge.contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
        "{challenge}"
    );
    // An unsigned event is refused.
    let forged = common::bot::get_on(bot.port(), "/slack/events");
    assert!(forged.is_none_or(|(status, _)| status != 200));

    let opened = |user: &str| {
        json!({
            "token": "legacy", "team_id": "T0FAKE", "api_app_id": "A0KPIBOT", "type": "event_callback",
            "event_id": format!("Ev{user}"), "event_time": 1_700_000_000,
            "event": {"type": "app_home_opened", "user": user, "channel": format!("D{user}"), "tab": "home", "event_ts": "1700000000.000100"},
        })
    };
    for user in [BEN, AKI] {
        let response = post_signed_event(bot.port(), SECRET, &opened(user)).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    wait_for("both Home tabs", Duration::from_secs(60), || {
        let views = slack.published_views();
        views.iter().any(|(u, _)| u == BEN) && views.iter().any(|(u, _)| u == AKI)
    });
    // Follow buttons on the tab: one from a tab shown before sign-ups were Aki's alone is
    // refused, and the tab says so; another follows. (A click on the Home tab has a view,
    // no channel.)
    let home_click = |entry: &str| {
        json!({
            "type": "block_actions",
            "user": {"id": BEN, "username": "ben", "name": "ben", "team_id": "T0FAKE"},
            "api_app_id": "A0KPIBOT", "token": "legacy",
            "container": {"type": "view", "view_id": "V0HOME0001"},
            "trigger_id": "1700000000.123456.abcdef",
            "team": {"id": "T0FAKE", "domain": "fake"},
            "enterprise": null, "is_enterprise_install": false,
            "view": {
                "id": "V0HOME0001", "team_id": "T0FAKE", "type": "home", "blocks": [],
                "private_metadata": "", "callback_id": "", "state": {"values": {}},
                "hash": "1700000000.abcdef", "clear_on_close": false, "notify_on_close": false,
                "root_view_id": "V0HOME0001", "app_id": "A0KPIBOT", "external_id": "",
                "app_installed_team_id": "T0FAKE", "bot_id": "B0KPIBOT",
            },
            "actions": [common::button_click("kpi_follow_entry", "home_entry", entry)],
        })
    };
    let views_of_ben = || {
        slack
            .published_views()
            .into_iter()
            .filter(|(u, _)| u == BEN)
            .count()
    };
    for (entry, views) in [("signups", 2), ("study_minutes", 3)] {
        let response = common::bot::post_signed_click(bot.port(), SECRET, &home_click(entry));
        assert!(response.is_some_and(|r| r.starts_with("HTTP/1.1 200")));
        wait_for("Ben's tab published again", Duration::from_secs(60), || {
            views_of_ben() >= views
        });
    }
    assert!(terminate(running).success());
    assert_eq!(views_of_ben(), 3, "each click publishes his tab once");
    let bens_views: Vec<String> = slack
        .published_views()
        .into_iter()
        .filter(|(u, _)| u == BEN)
        .map(|(_, view)| view["blocks"][1].to_string())
        .collect();
    assert!(
        bens_views[1].contains("#growth") && !bens_views[1].contains("Following"),
        "the refusal, at the top of his tab: {}",
        bens_views[1]
    );
    assert!(bens_views[2].contains("Following"), "{}", bens_views[2]);
    let questions: Vec<String> = block_on(ledger(dir.path()).follows(Some(BEN)))
        .unwrap()
        .into_iter()
        .map(|f| f.question)
        .collect();
    assert!(
        questions.iter().all(|q| !q.starts_with("signups"))
            && questions.iter().any(|q| q.starts_with("study_minutes")),
        "{questions:?}"
    );
    // The numbers the tab showed him are in the audit log, as every answer is.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|line| line.contains(&format!("\"user\":\"{BEN}\""))
                && line.contains("\"command\":\"home active_users last 7 days\"")),
        "{audit}"
    );
    let view_of = |user: &str| {
        slack
            .published_views()
            .into_iter()
            .find(|(u, _)| u == user)
            .map(|(_, view)| view)
            .unwrap()
    };
    let ben = view_of(BEN);
    let ben_text = ben.to_string();
    assert!(
        ben_text.contains("Your KPIs") && ben_text.contains("`active_users last 7 days`"),
        "{ben_text}"
    );
    assert!(
        ben_text.contains("Unfollow") && ben_text.contains("next "),
        "{ben_text}"
    );
    assert!(
        ben["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "image"),
        "the followed question's chart: {ben_text}"
    );
    assert!(ben_text.contains("`active_users`") && ben_text.contains("daily by 06:00 JST"));
    assert!(
        !ben_text.contains("`signups`"),
        "Ben may not see sign-ups: {ben_text}"
    );
    let aki_text = view_of(AKI).to_string();
    assert!(
        aki_text.contains("フォローできるもの") && aki_text.contains("`signups`"),
        "{aki_text}"
    );
}

#[test]
fn a_question_many_people_follow_is_queried_once_for_all_of_them_on_bigquery() {
    const PEOPLE: usize = 24;
    let slack = slack();
    let dir = dir_with_metrics();
    let bigquery = common::fake_bigquery::on_demo_mart(dir.path());
    let (minute, _) = minute_hours_ago(chrono_tz::Asia::Tokyo, 1);
    let people: Vec<String> = (0..PEOPLE).map(|i| format!("U0MANY{i:04}")).collect();
    {
        let ledger = ledger(dir.path());
        for (i, person) in people.iter().enumerate() {
            // Half read Slack in Japanese: the same numbers, worded twice.
            let locale = if i % 2 == 0 { "ja" } else { "en" };
            slack.set_user_locale(person, if i % 2 == 0 { "ja-JP" } else { "en-US" });
            for question in ["active_users last 7 days", "signups last 28 days"] {
                block_on(ledger.add_follow(&seeded(
                    person,
                    question,
                    minute,
                    "Asia/Tokyo",
                    locale,
                )))
                .unwrap();
            }
        }
    }
    let mut env: Vec<(&str, &str)> = common::fake_bigquery::settings_for(&bigquery).to_vec();
    env.extend([
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__SLACK__SIGNING_SECRET", SECRET),
        ("KPIBOT__SCHEDULER__LEASE_SECONDS", "30"),
    ]);
    let bot = Bot::new(dir.path(), &env);
    let running = bot.start("bot.log");
    wait_for("every digest", Duration::from_secs(180), || {
        people.iter().all(|p| !digests_to(&slack, p).is_empty())
    });
    assert!(terminate(running).success());
    for person in &people {
        let digests = digests_to(&slack, person);
        assert_eq!(digests.len(), 1, "{person}");
        assert_eq!(
            digests[0].body["metadata"]["event_payload"]["questions"],
            json!("2")
        );
    }
    // Each question's queries ran once for all 24 people and both languages: the jobs
    // that read data (not dry runs) are as few as one person's digest needs.
    let jobs: Vec<String> = bigquery
        .calls_of("jobs.query")
        .into_iter()
        .filter(|c| c.body["dryRun"] != true)
        .filter(|c| {
            c.body["query"].as_str().is_some_and(|q| {
                q.contains("mart.daily_active_users") || q.contains("mart.daily_signups")
            })
        })
        // A query is its text and its values (a window and its comparison are two).
        .map(|c| format!("{} {}", c.body["query"], c.body["queryParameters"]))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = jobs.iter().collect();
    assert_eq!(
        jobs.len(),
        distinct.len(),
        "a query ran more than once for {PEOPLE} followers: {} jobs, {} distinct",
        jobs.len(),
        distinct.len()
    );
    assert!(
        !jobs.is_empty() && jobs.len() <= 8,
        "{} jobs: {jobs:#?}",
        jobs.len()
    );
}

#[test]
fn over_socket_mode_the_follow_button_follows_the_home_tab_opens_and_unfollow_stops_it() {
    let slack = slack();
    let dir = dir_with_metrics();
    let bot = Bot::new(
        dir.path(),
        &[
            ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
            ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
            ("KPIBOT__SLACK__APP_TOKEN", common::fake_slack::APP_TOKEN),
            ("KPIBOT__SLASH__TRANSPORT", "socket"),
        ],
    );
    let running = bot.start("bot.log");
    wait_for("a Socket Mode connection", Duration::from_secs(20), || {
        slack.socket_connections() > 0
    });
    assert!(slack.push_slash_command(
        "env-ask",
        json!({
            "token": "legacy", "team_id": "T0FAKE", "team_domain": "fake",
            "channel_id": DATA_TEAM, "channel_name": "data-team",
            "user_id": AKI, "user_name": "aki", "command": "/kpi", "text": "signups last 7 days",
            "api_app_id": "A0FAKE", "response_url": slack.response_url("ask"), "trigger_id": "1.2.3",
        }),
    ));
    wait_for("the chart in #data-team", Duration::from_secs(60), || {
        !slack.messages_in(DATA_TEAM).is_empty()
    });
    // Ben presses Follow under Aki's answer: that exact question, his, with the defaults.
    let post = slack.messages_in(DATA_TEAM)[0].clone();
    let block_id = common::actions_block_id(&post.body);
    let click = |id: &str, action: serde_json::Value| {
        let payload = common::block_actions_payload(
            BEN,
            (DATA_TEAM, "data-team"),
            (&post.body, &post.ts),
            action,
        );
        assert!(slack.push_interaction(id, payload));
    };
    click(
        "env-follow",
        common::button_click("kpi_follow", &block_id, "follow"),
    );
    wait_for("the private confirmation", Duration::from_secs(60), || {
        slack.ephemerals().iter().any(|(_, user, body)| {
            user == BEN && body.to_string().contains("Following `signups last 7 days`")
        })
    });
    let follows = block_on(ledger(dir.path()).follows(Some(BEN))).unwrap();
    assert_eq!(
        follows
            .iter()
            .map(|f| (
                f.question.as_str(),
                f.cadence.as_str(),
                f.at_minute,
                f.timezone.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("signups last 7 days", "daily", 540, "America/New_York")]
    );
    // His Home tab, opened over the same WebSocket, shows it.
    assert!(slack.push_event(
        "env-home",
        json!({
            "token": "legacy", "team_id": "T0FAKE", "api_app_id": "A0KPIBOT", "type": "event_callback",
            "event_id": "Ev0HOME", "event_time": 1_700_000_000,
            "event": {"type": "app_home_opened", "user": BEN, "channel": format!("D{BEN}"), "tab": "home", "event_ts": "1700000000.000100"},
        }),
    ));
    wait_for("Ben's Home tab", Duration::from_secs(60), || {
        slack
            .published_views()
            .iter()
            .any(|(user, view)| user == BEN && view.to_string().contains("`signups last 7 days`"))
    });
    // The confirmation's Unfollow button stops it; pressed by someone else, it would not.
    let confirmation = slack
        .ephemerals()
        .into_iter()
        .find(|(_, user, body)| user == BEN && body.to_string().contains("Following"))
        .unwrap()
        .2;
    let unfollow = confirmation["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| {
            (b["accessory"]["action_id"] == "kpi_unfollow").then(|| b["accessory"]["value"].clone())
        })
        .unwrap();
    assert_eq!(unfollow, json!(format!("{BEN}|signups last 7 days")));
    let payload = |user: &str| {
        common::block_actions_payload(
            user,
            (DATA_TEAM, "data-team"),
            (&post.body, &post.ts),
            common::button_click("kpi_unfollow", "kpi_follow_0", unfollow.as_str().unwrap()),
        )
    };
    assert!(slack.push_interaction("env-other", payload(AKI)));
    // In her own language.
    wait_for("Aki told it is not hers", Duration::from_secs(30), || {
        slack.ephemerals().iter().any(|(_, user, body)| {
            user == AKI && body.to_string().contains("はフォローしていません")
        })
    });
    assert_eq!(
        block_on(ledger(dir.path()).follows(Some(BEN)))
            .unwrap()
            .len(),
        1
    );
    assert!(slack.push_interaction("env-unfollow", payload(BEN)));
    wait_for("Ben's follow stopped", Duration::from_secs(30), || {
        block_on(ledger(dir.path()).follows(Some(BEN)))
            .unwrap()
            .is_empty()
    });
    assert!(terminate(running).success());
}

#[test]
fn a_digest_of_many_questions_fits_slacks_limits_and_is_posted_once() {
    const QUESTIONS: usize = 25;
    let slack = slack();
    let dir = dir_with_metrics();
    let (minute, _) = minute_hours_ago(chrono_tz::Asia::Tokyo, 1);
    {
        // More than the settings allow (two follows racing past the bound, say).
        let ledger = ledger(dir.path());
        for n in 0..QUESTIONS {
            let question = format!("signups last {} days", n + 2);
            block_on(ledger.add_follow(&seeded(BEN, &question, minute, "Asia/Tokyo", "en")))
                .unwrap();
        }
    }
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");
    wait_for("Ben's digest", Duration::from_secs(180), || {
        !digests_to(&slack, BEN).is_empty()
    });
    wait_for("recorded", Duration::from_secs(60), || {
        bot.metric("kpibot_digests_total{outcome=\"posted\"}") >= 1.0
    });
    assert!(terminate(running).success());
    let digests = digests_to(&slack, BEN);
    assert_eq!(digests.len(), 1);
    let blocks = digests[0].body["blocks"].as_array().unwrap().clone();
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    let native = blocks
        .iter()
        .filter(|b| b["type"] == "data_visualization")
        .count();
    assert!(native <= 2, "{native} of Slack's own charts");
    assert_eq!(
        digests[0].body["metadata"]["event_payload"]["questions"],
        json!(QUESTIONS.to_string())
    );
    // Every question is in it: a chart each while they fit, then a line.
    let text = digests[0].body.to_string();
    assert!(text.contains("Sign-ups"), "{text}");
    // Each chart with an Unfollow button: beside its headline, or among its buttons.
    let unfollows = text.matches("\"kpi_unfollow\"").count();
    assert!(unfollows >= 23, "{unfollows}: {text}");
}

/// The actions blocks of a digest (each question's buttons).
fn digest_actions(digest: &Posted) -> Vec<serde_json::Value> {
    digest.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .cloned()
        .collect()
}

#[test]
fn a_digest_carries_the_usual_buttons_each_persons_own_and_a_click_in_it_answers_in_the_dm() {
    let slack = slack();
    let dir = dir_with_metrics();
    write_policies(
        dir.path(),
        r##"[[policy]]
name = "prefecture_detail"
table = "mart.daily_active_users"
columns = ["prefecture"]
owner = "#data-team"
allowed_channels = ["#data-team"]
"##,
    );
    let (minute, _) = minute_hours_ago(chrono_tz::Asia::Tokyo, 1);
    {
        let ledger = ledger(dir.path());
        // Ben for himself; Aki for #data-team, the channel prefectures are for.
        let question = "active_users last 7 days";
        let mut team = seeded(DATA_TEAM, question, minute, "Asia/Tokyo", "en");
        (team.person, team.place) = (AKI.into(), Some("data-team".into()));
        let ben = seeded(BEN, question, minute, "Asia/Tokyo", "en");
        for follow in [team, ben] {
            block_on(ledger.add_follow(&follow)).unwrap();
        }
    }
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");
    let team_digests = || {
        slack
            .messages_in(DATA_TEAM)
            .into_iter()
            .filter(|m| m.body["metadata"]["event_type"] == "kpibot_digest")
            .collect::<Vec<_>>()
    };
    wait_for("both digests", Duration::from_secs(120), || {
        !team_digests().is_empty() && !digests_to(&slack, BEN).is_empty()
    });
    // Each digest's question has the buttons a chart has: another period, a split by what
    // place may see, refresh — and Unfollow in place of Follow.
    let menu_values = |actions: &serde_json::Value, action_id: &str| -> Vec<String> {
        actions["elements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action_id"] == action_id)
            .flat_map(|e| e["options"].as_array().cloned().unwrap_or_default())
            .filter_map(|o| o["value"].as_str().map(str::to_string))
            .collect()
    };
    let mut splits = Vec::new();
    for (person, digest) in [
        (DATA_TEAM, team_digests()[0].clone()),
        (BEN, digests_to(&slack, BEN)[0].clone()),
    ] {
        let digest = &digest;
        let actions = digest_actions(digest);
        assert_eq!(
            actions.len(),
            1,
            "one question, one actions block: {}",
            digest.body
        );
        let block = &actions[0];
        let asked: serde_json::Value = serde_json::from_str(
            block["block_id"]
                .as_str()
                .unwrap()
                .strip_prefix("kpi:")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (asked["n"].as_str(), asked["m"].as_bool()),
            (Some("active_users"), Some(true))
        );
        let ids: Vec<&str> = block["elements"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action_id"].as_str())
            .collect();
        for id in ["kpi_period", "kpi_refresh", "kpi_unfollow"] {
            assert!(ids.contains(&id), "{person}: {id} missing from {ids:?}");
        }
        assert!(!ids.contains(&"kpi_follow"), "{person} already follows it");
        assert!(menu_values(block, "kpi_period").contains(&"last 28 days".to_string()));
        let unfollow = block["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action_id"] == "kpi_unfollow")
            .unwrap();
        assert_eq!(
            unfollow["value"],
            json!(format!("{person}|active_users last 7 days"))
        );
        splits.push(menu_values(block, "kpi_by"));
    }
    // Computed once, but each menu is its place's: prefecture is the data team's alone.
    assert!(splits[0].contains(&"prefecture".to_string()), "{splits:?}");
    assert!(!splits[1].contains(&"prefecture".to_string()), "{splits:?}");
    assert!(
        !splits[1].is_empty(),
        "Ben may split by other things: {splits:?}"
    );

    // Ben picks another period in his digest: the answer comes into his DM.
    let digest = digests_to(&slack, BEN)[0].clone();
    let block_id = digest_actions(&digest)[0]["block_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dm = format!("D{BEN}");
    let payload = common::block_actions_payload(
        BEN,
        (&dm, "directmessage"),
        (&digest.body, &digest.ts),
        common::menu_choice("kpi_period", &block_id, "last 28 days"),
    );
    let response = common::bot::post_signed_click(bot.port(), SECRET, &payload).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let answers = || {
        slack
            .messages_in(&dm)
            .into_iter()
            .filter(|m| m.body["metadata"]["event_type"] != "kpibot_digest")
            .collect::<Vec<_>>()
    };
    wait_for("the answer in Ben's DM", Duration::from_secs(60), || {
        !answers().is_empty()
    });
    assert!(terminate(running).success());
    let answer = answers()[0].body.to_string();
    assert!(
        answer.contains("last 28 days") || answer.contains("Last 28 days"),
        "{answer}"
    );
    for covered in ["福岡県", "東京都"] {
        assert!(!answer.contains(covered), "{covered} leaked: {answer}");
    }
}

#[test]
fn two_follows_of_one_question_worded_two_ways_share_a_digest_slack_accepts() {
    let slack = slack();
    let dir = dir_with_metrics();
    let (minute, _) = minute_hours_ago(chrono_tz::Asia::Tokyo, 1);
    {
        // The metric's own period, and the same period said: one question to the buttons.
        let ledger = ledger(dir.path());
        for question in ["active_users", "active_users last 28 days"] {
            block_on(ledger.add_follow(&seeded(BEN, question, minute, "Asia/Tokyo", "en")))
                .unwrap();
        }
    }
    let bot = bot(dir.path(), &slack);
    let running = bot.start("bot.log");
    wait_for("Ben's digest", Duration::from_secs(120), || {
        !digests_to(&slack, BEN).is_empty()
    });
    assert!(terminate(running).success());
    let digest = &digests_to(&slack, BEN)[0];
    assert_eq!(
        digest.body["metadata"]["event_payload"]["questions"],
        json!("2")
    );
    let text = digest.body.to_string();
    assert_eq!(text.matches("\"kpi_unfollow\"").count(), 2, "{text}");
}

//! Slack delivery through the real slack-morphism client against the local fake Slack:
//! the upload flow, error classification and retries, lost answers, pacing, owner notices.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_slack::{FakeSlack, Fault, TOKEN};
use kpibot::deliver::{
    Delivery, DeliveryError, PostIdentity, Receipt, Rendered, SlackDelivery, SlackOptions,
    deliver_or_notify,
};
use kpibot::i18n::Locale;
use kpibot::metrics::Metrics;
use kpibot::render::MessageFacts;
use kpibot::render::data::{ChartData, Series, XAxis};
use kpibot::render::native;
use kpibot::retry::RetryPolicy;
use kpibot::settings::Secret;
use kpibot::spec::ChartKind;

const DAILY: &str = "C0KPIDAILY";
const TEAM: &str = "C0DATATEAM";
const PRIVATE: &str = "C0PRIVATE1";

/// The fake with `#kpi-daily`, `#data-team`, `#private-kpi` (bot not invited) and 2,500
/// other channels, so resolving a name needs several `conversations.list` pages.
async fn fake() -> FakeSlack {
    let slack = FakeSlack::start(&[(PRIVATE, "private-kpi", false)]).await;
    for i in 0..2500 {
        slack.add_channel(&format!("C{i:09}"), &format!("team-{i}"), true);
    }
    slack.add_channel(TEAM, "data-team", true);
    slack.add_channel(DAILY, "kpi-daily", true);
    slack
}

fn options(slack: &FakeSlack) -> SlackOptions {
    SlackOptions {
        api_url: slack.api_url.clone(),
        bot_token: Secret::new(TOKEN),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            deadline: Duration::from_secs(20),
            max_attempts: 6,
            request_timeout: Duration::from_millis(500),
        },
        channel_interval: Duration::from_millis(1000),
        max_concurrent_posts: 8,
        tier_rates: kpibot::slack::limits::TierRates::uniform(
            common::fake_slack::UNPACED_CALLS_PER_MINUTE,
        ),
    }
}

fn delivery(slack: &FakeSlack) -> (SlackDelivery, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (
        SlackDelivery::new(options(slack), metrics.clone()).unwrap(),
        metrics,
    )
}

fn chart_png() -> Vec<u8> {
    std::fs::read(common::repo_path("tests/golden/empty.png")).unwrap()
}

fn facts(report: &str, slot: &str, channel: &str) -> MessageFacts {
    MessageFacts {
        report_id: report.into(),
        title: "日次アクティブユーザー (DAU)".into(),
        locale: kpibot::i18n::Locale::En,
        channel: Some(channel.into()),
        slot: slot.into(),
        window_start: "2026-10-29".into(),
        window_end: "2026-11-25".into(),
        window_text: "2026-10-29 – 2026-11-25 (Asia/Tokyo)".into(),
        timezone: "Asia/Tokyo".into(),
        headline_label: "Latest (2026-11-25)".into(),
        headline_text: Some("12,345".into()),
        headline_raw: Some(12345.0),
        change_text: Some("▲ +1,234 (+11.1%) vs 2026-11-24".into()),
        alt_text: "DAU by role. Latest: students 10,000".into(),
        source: "mart.daily_active_users".into(),
        refreshed: "daily by 06:00 JST".into(),
        not_numbers: 0,
        native: None,
        actions: None,
    }
}

fn rendered_from(facts: &MessageFacts) -> Rendered {
    Rendered::from_facts(facts, false, chart_png(), "day,users\n".into())
}

fn rendered(report: &str, slot: &str, channel: &str) -> Rendered {
    rendered_from(&facts(report, slot, channel))
}

const SLOT: &str = "2026-11-26T09:00:00+09:00";

fn slack_receipt(receipt: &Receipt) -> (&str, &str, bool) {
    match receipt {
        Receipt::Slack {
            channel,
            ts,
            found_existing,
            ..
        } => (channel, ts, *found_existing),
        other => panic!("expected a Slack receipt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_report_is_one_upload_and_one_message_with_the_chart_in_it() {
    let slack = fake().await;
    let (delivery, _) = delivery(&slack);
    let receipt = delivery
        .deliver(&rendered("dau", SLOT, "#kpi-daily"))
        .await
        .unwrap();
    let (channel, ts, found) = slack_receipt(&receipt);
    assert_eq!(channel, DAILY, "#kpi-daily resolved across list pages");
    assert!(!found);
    // A post costs no permalink call: a link is asked for only where one is shown.
    assert!(slack.calls_of("chat.getPermalink").is_empty());
    assert_eq!(
        delivery.link(&receipt).await.unwrap(),
        format!(
            "https://fake.slack.test/archives/{DAILY}/p{}",
            ts.replace('.', "")
        )
    );
    assert_eq!(slack.calls_of("conversations.list").len(), 3);
    assert_eq!(slack.calls_of("files.getUploadURLExternal").len(), 1);
    assert_eq!(slack.calls_of("files.upload").len(), 1);
    assert_eq!(slack.calls_of("files.completeUploadExternal").len(), 1);
    let messages = slack.messages();
    assert_eq!(messages.len(), 1);
    let posted = &messages[0];
    assert_eq!((posted.channel.as_str(), posted.ts.as_str()), (DAILY, ts));
    let image = posted.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "image")
        .expect("the chart is in the message");
    assert!(image["slack_file"]["id"].as_str().unwrap().starts_with('F'));
    assert_eq!(posted.body["metadata"]["event_type"], "kpibot_report");
    assert_eq!(posted.body["metadata"]["event_payload"]["report_id"], "dau");
    assert_eq!(posted.body["metadata"]["event_payload"]["slot"], SLOT);

    // A second post to the same channel uses the cached channel id.
    delivery
        .deliver(&rendered("signups", SLOT, "#kpi-daily"))
        .await
        .unwrap();
    assert_eq!(slack.calls_of("conversations.list").len(), 3);
}

#[tokio::test]
async fn a_429_is_retried_after_at_least_retry_after() {
    let slack = fake().await;
    slack.fail_next(
        "chat.postMessage",
        [Fault::RateLimited {
            retry_after_seconds: 1,
        }],
    );
    let (delivery, metrics) = delivery(&slack);
    delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    let posts = slack.calls_of("chat.postMessage");
    assert_eq!(posts.len(), 2);
    let waited = posts[1].at - posts[0].at;
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(
        metrics.counter(
            "kpibot_slack_api_errors_total",
            &[("method", "chat.postMessage"), ("code", "ratelimited")]
        ),
        1.0
    );
}

#[tokio::test]
async fn three_5xx_then_success_posts_once() {
    let slack = fake().await;
    slack.fail_next("files.upload", [Fault::Status(502)]);
    slack.fail_next(
        "chat.postMessage",
        [Fault::Status(500), Fault::Status(503), Fault::Status(500)],
    );
    let (delivery, metrics) = delivery(&slack);
    delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    assert_eq!(slack.calls_of("files.upload").len(), 2);
    assert_eq!(slack.calls_of("chat.postMessage").len(), 4);
    // A 5xx may hide a post that went through, so each retry looked first.
    assert_eq!(slack.calls_of("conversations.history").len(), 3);
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(
        metrics.counter(
            "kpibot_slack_retries_total",
            &[("method", "chat.postMessage")]
        ),
        3.0
    );
}

#[tokio::test]
async fn not_in_channel_is_not_retried_and_the_owner_is_told_how_to_fix_it() {
    let slack = fake().await;
    let (delivery, metrics) = delivery(&slack);
    let report = rendered("dau", SLOT, "#private-kpi");
    let error = deliver_or_notify(&delivery, &report, "#data-team")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_in_channel");
    assert!(
        error.to_string().contains("invite @kpibot to #private-kpi"),
        "{error}"
    );
    assert_eq!(slack.calls_of("chat.postMessage").len(), 2, "post + notice");
    let messages = slack.messages();
    assert_eq!(messages.len(), 1);
    let notice = &messages[0];
    assert_eq!(notice.channel, TEAM);
    let text = notice.body["text"].as_str().unwrap();
    for expected in [
        "日次アクティブユーザー (DAU)",
        "`dau`",
        // The slot, as a reader writes a time.
        "2026-11-26 09:00",
        "#private-kpi",
        "not_in_channel",
        "/invite @kpibot",
    ] {
        assert!(text.contains(expected), "notice lacks {expected:?}: {text}");
    }
    assert_eq!(
        metrics.counter(
            "kpibot_slack_api_errors_total",
            &[("code", "not_in_channel")]
        ),
        1.0
    );
    assert_eq!(
        metrics.counter("kpibot_slack_posts_total", &[("outcome", "failed")]),
        1.0
    );
}

#[tokio::test]
async fn an_unknown_channel_name_fails_with_advice_and_nothing_is_uploaded() {
    let slack = fake().await;
    let (delivery, _) = delivery(&slack);
    let error = delivery
        .deliver(&rendered("dau", SLOT, "#kpi-dialy"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "channel_not_found");
    assert!(error.to_string().contains("#kpi-dialy"), "{error}");
    assert!(slack.calls_of("files.getUploadURLExternal").is_empty());
}

#[tokio::test]
async fn a_bad_token_is_permanent_and_names_the_setting() {
    let slack = fake().await;
    let mut options = options(&slack);
    options.bot_token = Secret::new("xoxb-wrong");
    let delivery = SlackDelivery::new(options, Arc::new(Metrics::new())).unwrap();
    let error = delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_auth");
    assert!(error.to_string().contains("KPIBOT__SLACK__BOT_TOKEN"));
    assert_eq!(slack.calls_of("files.getUploadURLExternal").len(), 1);
}

#[tokio::test]
async fn oversize_text_is_truncated_by_the_renderer_and_accepted_by_slack() {
    let slack = fake().await;
    let (delivery, _) = delivery(&slack);
    let mut long = facts("long", SLOT, DAILY);
    long.title = "売上".repeat(200);
    long.alt_text = "x".repeat(10_000);
    long.headline_label = "y".repeat(5_000);
    long.source = "z".repeat(5_000);
    delivery.deliver(&rendered_from(&long)).await.unwrap();
    let blocks = slack.messages()[0].body["blocks"].clone();
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert!(header.ends_with('…'));
}

#[tokio::test]
async fn a_lost_answer_is_looked_up_not_resent() {
    let slack = fake().await;
    slack.fail_next("chat.postMessage", [Fault::DropAfterProcessing]);
    let (delivery, _) = delivery(&slack);
    let receipt = delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    let (_, ts, found) = slack_receipt(&receipt);
    assert!(found, "the post was found, not re-sent");
    assert_eq!(slack.calls_of("chat.postMessage").len(), 1);
    let messages = slack.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].ts, ts);
}

#[tokio::test]
async fn a_slow_answer_past_the_timeout_is_looked_up_not_resent() {
    let slack = fake().await;
    slack.fail_next(
        "chat.postMessage",
        [Fault::Slow(Duration::from_millis(1500))],
    );
    let (delivery, _) = delivery(&slack);
    let receipt = delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    assert!(slack_receipt(&receipt).2);
    assert_eq!(slack.messages().len(), 1);
}

#[tokio::test]
async fn a_file_slack_is_still_processing_is_waited_for() {
    let slack = fake().await;
    slack.fail_next(
        "chat.postMessage",
        [Fault::FileNotReady, Fault::FileNotReady],
    );
    let (delivery, _) = delivery(&slack);
    delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    assert_eq!(slack.calls_of("chat.postMessage").len(), 3);
    assert_eq!(slack.messages().len(), 1);
    // `ok:false` is a definite answer: nothing to look up.
    assert!(slack.calls_of("conversations.history").is_empty());
}

#[tokio::test]
async fn after_a_crash_the_lookup_finds_the_earlier_post() {
    let slack = fake().await;
    let report = rendered("dau", SLOT, "#kpi-daily");
    {
        let (first_process, _) = delivery(&slack);
        first_process.deliver(&report).await.unwrap();
    }
    // A new process (fresh caches) that does not know whether the post went out.
    let (second_process, _) = delivery(&slack);
    let found = second_process
        .find_existing(&PostIdentity::of(&report))
        .await
        .unwrap();
    let (channel, ts, found_existing) = slack_receipt(found.as_ref().unwrap());
    assert_eq!(channel, DAILY);
    assert_eq!(ts, slack.messages()[0].ts);
    assert!(found_existing);
    // Another slot of the same report, and the same slot of another report, are not it.
    let next_day = rendered("dau", "2026-11-27T09:00:00+09:00", "#kpi-daily");
    assert_eq!(
        second_process
            .find_existing(&PostIdentity::of(&next_day))
            .await
            .unwrap(),
        None
    );
    let other = rendered("signups", SLOT, "#kpi-daily");
    assert_eq!(
        second_process
            .find_existing(&PostIdentity::of(&other))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_post_that_waited_in_the_pacing_queue_still_gets_its_retries() {
    let slack = fake().await;
    let mut options = options(&slack);
    // Waiting for the channel (3 s) takes longer than the whole retry deadline (2 s).
    options.channel_interval = Duration::from_secs(3);
    options.retry.deadline = Duration::from_secs(2);
    let delivery = SlackDelivery::new(options, Arc::new(Metrics::new())).unwrap();
    delivery
        .deliver(&rendered("dau", SLOT, DAILY))
        .await
        .unwrap();
    slack.fail_next("chat.postMessage", [Fault::SlackError("internal_error")]);
    let second = delivery.deliver(&rendered("signups", SLOT, DAILY)).await;
    assert!(
        second.is_ok(),
        "the retry was lost to time spent queueing: {second:?}"
    );
    assert_eq!(slack.messages_in(DAILY).len(), 2);
}

#[tokio::test]
async fn a_post_buried_past_the_lookup_limit_is_unknown_never_not_posted() {
    let slack = fake().await;
    let report = rendered("dau", SLOT, "#kpi-daily");
    {
        let (first_process, _) = delivery(&slack);
        first_process.deliver(&report).await.unwrap();
    }
    // A busy channel: more messages since the post than the lookup reads.
    slack.add_chatter(DAILY, 2_100);
    let (second_process, _) = delivery(&slack);
    let found = second_process
        .find_existing(&PostIdentity::of(&report))
        .await;
    match found {
        Err(DeliveryError::Slack(error)) => assert_eq!(error.code(), "unconfirmed"),
        other => panic!("a lookup that gave up must not say `not posted`: {other:?}"),
    }
}

#[tokio::test]
async fn thread_mode_posts_a_summary_and_the_chart_as_a_reply() {
    let slack = fake().await;
    let (delivery, _) = delivery(&slack);
    let mut report = rendered("dau", SLOT, DAILY);
    report.thread = true;
    let receipt = delivery.deliver(&report).await.unwrap();
    let messages = slack.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].thread_ts, None);
    assert_eq!(
        messages[1].thread_ts.as_deref(),
        Some(messages[0].ts.as_str())
    );
    assert!(
        messages[1].body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "image")
    );
    match receipt {
        Receipt::Slack { thread_ts, .. } => assert_eq!(thread_ts, Some(messages[0].ts.clone())),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_burst_of_200_reports_all_arrive_paced_per_channel_and_in_order() {
    let slack = fake().await;
    let channels: Vec<String> = (0..40).map(|i| format!("C{i:09}")).collect();
    let delivery = Arc::new(delivery(&slack).0);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let delivery = delivery.clone();
        let channel = channels[i % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            delivery
                .deliver(&rendered(&format!("report_{i:03}"), SLOT, &channel))
                .await
        }));
        // Queue in order, as the scheduler does for reports due at the same second.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let messages = slack.messages();
    assert_eq!(messages.len(), 200, "none dropped, none doubled");
    for channel in &channels {
        let posts = slack.messages_in(channel);
        assert_eq!(posts.len(), 5);
        for pair in posts.windows(2) {
            let gap = pair[1].at - pair[0].at;
            // The pacer spaces the requests; allow for the request's own travel time.
            assert!(gap >= Duration::from_millis(950), "{channel}: {gap:?}");
            let id = |p: &common::fake_slack::Posted| {
                p.body["metadata"]["event_payload"]["report_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            assert!(
                id(&pair[0]) < id(&pair[1]),
                "posts to {channel} out of order"
            );
        }
    }
}

#[test]
fn plain_http_is_refused_except_to_this_machine() {
    let mut options = SlackOptions {
        api_url: "http://slack.example.com/api".into(),
        bot_token: Secret::new(TOKEN),
        retry: RetryPolicy::default(),
        channel_interval: Duration::from_secs(1),
        max_concurrent_posts: 1,
        tier_rates: kpibot::slack::limits::TierRates::uniform(
            common::fake_slack::UNPACED_CALLS_PER_MINUTE,
        ),
    };
    let refused = SlackDelivery::new(options.clone(), Arc::new(Metrics::new()));
    assert!(matches!(refused, Err(DeliveryError::Setup(m)) if m.contains("https://")));
    options.api_url = "https://slack.com/api".into();
    assert!(SlackDelivery::new(options, Arc::new(Metrics::new())).is_ok());
}

/// A week of two series: fits Slack's own chart block.
fn native_rendered(report: &str, thread: bool) -> Rendered {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
    let data = ChartData {
        x: XAxis::Dates(start.iter_days().take(7).collect()),
        series: ["student", "teacher"]
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: name.to_string(),
                values: (0..7)
                    .map(|d| Some((1000 * (i + 1) + d * 10) as f64))
                    .collect(),
            })
            .collect(),
    };
    let mut facts = facts(report, SLOT, "#kpi-daily");
    facts.native = native::chart_block(ChartKind::Line, &data, &facts.title, Locale::Ja);
    assert!(facts.native.is_some(), "a week of two series fits");
    Rendered::from_facts(&facts, thread, chart_png(), "day,users\n".into())
}

#[tokio::test]
async fn a_chart_that_fits_slacks_own_block_is_one_call_and_no_upload() {
    let slack = fake().await;
    let (delivery, _) = delivery(&slack);
    delivery
        .deliver(&native_rendered("dau", false))
        .await
        .unwrap();
    assert_eq!(slack.calls_of("chat.postMessage").len(), 1);
    assert!(slack.calls_of("files.getUploadURLExternal").is_empty());
    assert!(slack.calls_of("files.completeUploadExternal").is_empty());
    let posted = &slack.messages()[0].body;
    let chart = posted["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "data_visualization")
        .expect("the chart is Slack's own block");
    assert_eq!(chart["chart"]["type"], "line");
    assert_eq!(chart["chart"]["axis_config"]["categories"][0], "11/19");
    assert_eq!(chart["chart"]["series"][1]["data"][6]["value"], 2060);
    // Readable in a notification and to a screen reader without the chart.
    assert!(
        posted["text"].as_str().unwrap().contains("1,234"),
        "{posted}"
    );
}

#[tokio::test]
async fn a_workspace_that_rejects_the_block_gets_the_png_and_later_posts_skip_the_try() {
    let slack = fake().await;
    slack.reject_native_blocks();
    let (delivery, metrics) = delivery(&slack);
    delivery
        .deliver(&native_rendered("dau", false))
        .await
        .unwrap();
    // invalid_blocks, then the PNG: upload and post.
    assert_eq!(slack.calls_of("chat.postMessage").len(), 2);
    assert_eq!(slack.calls_of("files.completeUploadExternal").len(), 1);
    let messages = slack.messages();
    assert_eq!(messages.len(), 1, "exactly one post");
    assert!(
        messages[0].body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "image")
    );
    insta::assert_snapshot!(
        "png_fallback_message",
        serde_json::to_string_pretty(&messages[0].body).unwrap()
    );
    assert!(
        metrics
            .render()
            .contains("kpibot_native_chart_fallbacks_total 1"),
        "{}",
        metrics.render()
    );
    // The decision holds: the next post goes straight to the PNG.
    delivery
        .deliver(&native_rendered("wau", false))
        .await
        .unwrap();
    assert_eq!(slack.calls_of("chat.postMessage").len(), 3);
    assert_eq!(slack.messages().len(), 2);
}

#[tokio::test]
async fn thread_mode_with_a_rejected_block_posts_one_summary_and_the_png_reply() {
    let slack = fake().await;
    slack.reject_native_blocks();
    let (delivery, _) = delivery(&slack);
    delivery
        .deliver(&native_rendered("dau", true))
        .await
        .unwrap();
    let messages = slack.messages();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].thread_ts.is_none());
    assert_eq!(
        messages[1].thread_ts.as_deref(),
        Some(messages[0].ts.as_str())
    );
    assert!(
        messages[1].body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "image")
    );
}

#[test]
fn the_fake_holds_native_blocks_to_slacks_limits() {
    // The fake's own check, fed blocks kpibot would never build: it must refuse them.
    let too_many = serde_json::json!({
        "type": "data_visualization",
        "title": "x".repeat(51),
        "chart": {"type": "line", "axis_config": {"categories": ["a"]},
                  "series": (0..7).map(|i| serde_json::json!({"name": format!("s{i}"), "data": [{"label": "a", "value": 1}]})).collect::<Vec<_>>()},
    });
    let errors = common::fake_slack::check_blocks(&[too_many.clone(), too_many.clone(), too_many]);
    let text = errors.join("\n");
    assert!(text.contains("1 to 50 characters"), "{text}");
    assert!(text.contains("1 to 6 series"), "{text}");
    assert!(text.contains("no more than 2 data_visualization"), "{text}");
}

/// After a crash a replica may have to ask Slack about many slots at once, and history
/// is Tier 1 (a request a minute, 15 messages a page, for most apps). Lookups of one
/// channel share one read of it, a later one reads only what is newer — and every
/// answer is still right: found where posted, not found only where not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_after_a_crash_share_one_read_per_channel_and_answer_every_slot_right() {
    let seed = common::bot::seed();
    println!("seed {seed} (KPIBOT_CRASH_SEED replays it)");
    let mut state = seed | 1;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let slack = FakeSlack::start(&[]).await;
    let channels = ["C0LOOKUP01", "C0LOOKUP02", "C0LOOKUP03", "C0LOOKUP04"];
    for (i, id) in channels.iter().enumerate() {
        slack.add_channel(id, &format!("kpi-{i}"), true);
    }
    slack.enforce_limits(common::slack_limits::SlackLimits {
        per_minute: [common::fake_slack::UNPACED_CALLS_PER_MINUTE as usize; 4],
        channel_post_interval: Duration::ZERO,
        history_page_max: 15,
    });
    // 120 slots over the four channels; about half were posted before the crash.
    let mut slots = Vec::new();
    for i in 0..120u64 {
        let channel = channels[next(channels.len() as u64) as usize];
        let slot = format!("2026-11-26T09:{:02}:00+09:00", i % 60);
        let report = format!("report{}", i / 60);
        slots.push((rendered(&report, &slot, channel), next(2) == 0));
    }
    let mut before_crash = options(&slack);
    before_crash.channel_interval = Duration::from_millis(1);
    let first = SlackDelivery::new(before_crash, Arc::new(Metrics::new())).unwrap();
    for (report, posted) in &slots {
        if *posted {
            first.deliver(report).await.unwrap();
        }
    }
    let history_calls = || slack.calls_of("conversations.history").len();
    assert_eq!(history_calls(), 0);

    let (second, _) = delivery(&slack);
    let second = Arc::new(second);
    // Reads take a while, as they do under Tier 1's pace: lookups arriving during one
    // wait for it, and the next read (of what is newer only) serves them all.
    slack.fail_next(
        "conversations.history",
        vec![Fault::Slow(Duration::from_millis(400)); 8],
    );
    let mut lookups = tokio::task::JoinSet::new();
    for (index, (report, _)) in slots.iter().enumerate() {
        let (second, identity) = (second.clone(), PostIdentity::of(report));
        lookups.spawn(async move { (index, second.find_existing(&identity).await) });
    }
    while let Some(done) = lookups.join_next().await {
        let (index, found) = done.unwrap();
        let (report, posted) = &slots[index];
        let found = found.unwrap_or_else(|e| panic!("{}: {e}", report.slot));
        assert_eq!(
            found.is_some(),
            *posted,
            "{} {} in {:?} (seed {seed})",
            report.report_id,
            report.slot,
            report.channel
        );
    }
    // Per channel: one read of as many 15-message pages as it holds posts, and at most
    // one more page for the lookups that arrived while it was under way.
    let pages: usize = channels
        .iter()
        .map(|c| slack.messages_in(c).len().div_ceil(15).max(1) + 1)
        .sum();
    assert!(
        history_calls() <= pages,
        "{} history calls for {} lookups; a read of each channel and one more page each is {pages} (seed {seed})",
        history_calls(),
        slots.len()
    );

    // Later: a post made since is found by reading only what is newer than the last read.
    let late = rendered("late", "2026-11-26T10:00:00+09:00", channels[0]);
    first.deliver(&late).await.unwrap();
    let before = history_calls();
    let found = second
        .find_existing(&PostIdentity::of(&late))
        .await
        .unwrap();
    assert!(found.is_some());
    assert_eq!(
        history_calls(),
        before + 1,
        "one page, of the newer messages only"
    );
    // And a slot known to be posted is answered without asking Slack at all.
    let known = slots.iter().find(|(_, posted)| *posted).unwrap();
    assert!(
        second
            .find_existing(&PostIdentity::of(&known.0))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(history_calls(), before + 1);
}

/// A process paused between its fence's yes and the request (SIGSTOP, a frozen VM) must
/// not post on that yes: its other replica may have taken the slot over meanwhile. A yes
/// whose send-by instant has passed is asked again — and a "no" then posts nothing.
#[tokio::test]
async fn a_post_is_never_sent_on_a_lease_check_that_expired_before_the_request() {
    let fake = fake().await;
    let slack = kpibot::slack::Slack::new(options(&fake), Arc::new(Metrics::new())).unwrap();
    let body = serde_json::json!({"channel": DAILY, "text": "DAU 4,321"});
    let options = kpibot::slack::post_once::PostOnce {
        written: "#kpi-daily",
        deadline: slack.deadline(),
        file_not_ready_attempts: 1,
    };
    let nothing_found = || async { Ok(None) };
    let expired = std::time::Instant::now() - Duration::from_millis(1);
    let later = std::time::Instant::now() + Duration::from_secs(60);

    // Expired, then a fresh yes: asked twice, posted once.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let guard = || {
        let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { Ok::<_, DeliveryError>(Some(if n == 0 { expired } else { later })) }
    };
    let (_, found) = slack
        .post_once_or_find(&body, options, guard, nothing_found)
        .await
        .unwrap();
    assert!(!found);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(fake.messages_in(DAILY).len(), 1);

    // Expired, then the slot is another process's: nothing is sent.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let guard = || {
        let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            if n == 0 {
                Ok(Some(expired))
            } else {
                Err(DeliveryError::SlotTakenOver)
            }
        }
    };
    let result = slack
        .post_once_or_find(&body, options, guard, nothing_found)
        .await;
    assert!(matches!(result, Err(DeliveryError::SlotTakenOver)));
    assert_eq!(fake.messages_in(DAILY).len(), 1, "no second post");
    assert_eq!(fake.calls_of("chat.postMessage").len(), 1);
}

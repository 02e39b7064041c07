//! `/kpi` over HTTP: requests signed exactly as Slack signs them, the 3-second
//! acknowledgement, answers posted to the fake Slack, access control and the audit log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use common::bot::wait_for_async as wait_for;
use common::fake_slack::{FakeSlack, TOKEN};
use kpibot::adhoc::AccessPolicy;
use kpibot::adhoc::audit::AuditLog;
use kpibot::adhoc::slash::{COMMANDS_PATH, CommandHandler};
use kpibot::adhoc::throttle::Throttle;
use kpibot::catalog::Catalog;
use kpibot::deliver::{SlackDelivery, SlackOptions};
use kpibot::ledger::Ledger;
use kpibot::metrics::Metrics;
use kpibot::retry::RetryPolicy;
use kpibot::settings::{LedgerSettings, Secret};
use kpibot::spec::SpecDefaults;
use kpibot::warehouse::Dialect;
use kpibot::warehouse::cache::QueryCache;
use kpibot::warehouse::duckdb::DuckDbWarehouse;
use kpibot::warehouse::{Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DATA_TEAM: &str = "C0DATATEAM";
const SALES: &str = "C0SALES001";
const GENERAL: &str = "C0GENERAL1";

/// The demo mart, built once for all tests in this file.
fn mart() -> &'static Path {
    static MART: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MART
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("demo.duckdb");
            // Through yesterday where the bot answers (Tokyo), not in UTC.
            let yesterday = common::tokyo_yesterday(chrono::Utc::now());
            kpibot::warehouse::demo::ensure_demo_mart(&path, yesterday).unwrap();
            (dir, path)
        })
        .1
}

/// The real DuckDB warehouse, answering only after `delay` (a slow warehouse), and each
/// query only once it takes a permit from `held` (unlimited unless a test holds it).
struct Slow {
    inner: DuckDbWarehouse,
    delay: Duration,
    held: Arc<tokio::sync::Semaphore>,
    /// Queries that reached the warehouse.
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Warehouse for Slow {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.held.acquire().await.unwrap().forget();
        tokio::time::sleep(self.delay).await;
        self.inner.query(sql, params, job).await
    }
    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        self.inner.dry_run(sql, params, job).await
    }
    async fn reads(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> kpibot::warehouse::reads::Reads {
        self.inner.reads(sql, params, job).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}

struct Bot {
    slack: FakeSlack,
    warehouse_calls: Arc<std::sync::atomic::AtomicUsize>,
    /// The warehouse's permits: a test that takes them all lets one query through at a time.
    held: Arc<tokio::sync::Semaphore>,
    handler: Arc<CommandHandler>,
    url: String,
    /// Where clicks go (`/slack/interactions`).
    interactions_url: String,
    ledger: Arc<Ledger>,
    audit_log: PathBuf,
    _dir: tempfile::TempDir,
}

async fn bot(reports: &Path, delay: Duration) -> Bot {
    bot_with(reports, delay, AccessPolicy::Allow).await
}

async fn bot_with(reports: &Path, delay: Duration, policy: AccessPolicy) -> Bot {
    bot_throttled(reports, delay, policy, Throttle::new(100, 4)).await
}

async fn bot_throttled(
    reports: &Path,
    delay: Duration,
    policy: AccessPolicy,
    throttle: Throttle,
) -> Bot {
    let slack = FakeSlack::start(&[(DATA_TEAM, "data-team", true), (SALES, "sales", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let files =
        kpibot::spec::load_dir(reports, &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo)).unwrap();
    let catalog = Arc::new(RwLock::new(Arc::new(Catalog::from_loaded(&files))));
    let metrics = Arc::new(Metrics::new());
    let delivery = SlackDelivery::new(
        SlackOptions {
            api_url: slack.api_url.clone(),
            bot_token: Secret::new(TOKEN),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(20),
                ..RetryPolicy::default()
            },
            channel_interval: Duration::from_millis(10),
            max_concurrent_posts: 4,
            tier_rates: kpibot::slack::limits::TierRates::uniform(
                common::fake_slack::UNPACED_CALLS_PER_MINUTE,
            ),
        },
        metrics.clone(),
    )
    .unwrap();
    let audit_log = dir.path().join("audit.jsonl");
    let ledger = Arc::new(
        Ledger::from_settings(&LedgerSettings {
            path: dir.path().join("ledger.sqlite"),
            ..LedgerSettings::default()
        })
        .await
        .unwrap(),
    );
    let warehouse_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = Arc::new(tokio::sync::Semaphore::new(
        tokio::sync::Semaphore::MAX_PERMITS,
    ));
    let handler = Arc::new(CommandHandler {
        catalog,
        warehouse: Arc::new(Slow {
            inner: DuckDbWarehouse::open(mart()).unwrap(),
            delay,
            held: held.clone(),
            calls: warehouse_calls.clone(),
        }),
        slack: Arc::new(delivery),
        metrics,
        timezone: chrono_tz::Asia::Tokyo,
        timeout: Duration::from_secs(30),
        policy,
        limits: Default::default(),
        cache: QueryCache::default(),
        throttle,
        audit: AuditLog::new(audit_log.clone()),
        answers: Default::default(),
        locale: kpibot::i18n::Locale::En,
        fiscal_year_start_month: 4,
        ledger: Some(ledger.clone()),
        meter: None,
        follows: Default::default(),
    });
    let verifier = Arc::new(kpibot::slack::inbound::Verifier::new(SECRET));
    let app = kpibot::adhoc::slash::router(verifier.clone(), handler.clone())
        .merge(kpibot::adhoc::interact::router(verifier, handler.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{}{COMMANDS_PATH}", listener.local_addr().unwrap());
    let interactions_url = format!(
        "{}{}",
        listener.local_addr().unwrap(),
        kpibot::adhoc::interact::INTERACTIONS_PATH
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Bot {
        slack,
        warehouse_calls,
        held,
        handler,
        url,
        interactions_url,
        ledger,
        audit_log,
        _dir: dir,
    }
}

fn sign(timestamp: i64, body: &str) -> String {
    common::slack_signature(SECRET, timestamp, body)
}

/// The channel's name, as Slack sends it beside the ID.
fn channel_name(channel: &str) -> &'static str {
    match channel {
        DATA_TEAM => "data-team",
        SALES => "sales",
        _ => "general",
    }
}

fn form(bot: &Bot, text: &str, channel: &str, user: &str, id: &str) -> String {
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "token=legacy&team_id=T0FAKE&channel_id={channel}&channel_name={}&user_id={user}&command=%2Fkpi&text={}&response_url={}&trigger_id=1.2.3",
        channel_name(channel),
        encode(text),
        encode(&bot.slack.response_url(id))
    )
}

/// POSTs like Slack does; returns (status, body, time to answer).
fn post(url: &str, body: &str, headers: &[(&str, String)]) -> (u16, String, Duration) {
    let (host, path) = url.split_once('/').unwrap();
    let started = Instant::now();
    let mut stream = TcpStream::connect(host).unwrap();
    let mut request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let _ = stream.write_all(body.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let elapsed = started.elapsed();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, elapsed)
}

fn signed(body: &str) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    vec![
        ("X-Slack-Request-Timestamp", now.to_string()),
        ("X-Slack-Signature", sign(now, body)),
    ]
}

async fn send(
    bot: &Bot,
    body: String,
    headers: Vec<(&'static str, String)>,
) -> (u16, String, Duration) {
    let url = bot.url.clone();
    tokio::task::spawn_blocking(move || post(&url, &body, &headers))
        .await
        .unwrap()
}

fn reports() -> PathBuf {
    common::repo_path("reports")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_command_is_acknowledged_then_the_chart_is_posted_in_the_channel() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let body = form(
        &bot,
        "active_users last 7 days by role",
        SALES,
        "U0ALICE",
        "r1",
    );
    let (status, ack, _) = send(&bot, body.clone(), signed(&body)).await;
    assert_eq!(status, 200, "{ack}");
    assert!(
        ack.contains("\"response_type\":\"ephemeral\"") && ack.contains("Working on"),
        "{ack}"
    );
    wait_for("the chart in #sales", Duration::from_secs(20), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
    let posted = &bot.slack.messages_in(SALES)[0];
    assert_eq!(
        posted.body["blocks"][0]["text"]["text"],
        "Active users by Role"
    );
    // A week of three series fits Slack's own chart block: no upload.
    let chart = posted.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "data_visualization")
        .unwrap_or_else(|| panic!("no native chart: {}", posted.body));
    // Seven days through yesterday in Tokyo, where the bot answers: the mart holds them all.
    let yesterday = common::tokyo_yesterday(chrono::Utc::now());
    let days: Vec<String> = (0..7u64)
        .rev()
        .map(|n| {
            (yesterday - chrono::Days::new(n))
                .format("%m/%d")
                .to_string()
        })
        .collect();
    assert_eq!(
        chart["chart"]["axis_config"]["categories"],
        serde_json::json!(days)
    );
    assert!(bot.slack.calls_of("files.getUploadURLExternal").is_empty());
    wait_for("the audit line", Duration::from_secs(5), || {
        std::fs::read_to_string(&bot.audit_log)
            .is_ok_and(|a| a.contains("\"outcome\":\"answered\""))
    })
    .await;
    let audit = std::fs::read_to_string(&bot.audit_log).unwrap();
    assert!(
        audit.contains("\"user\":\"U0ALICE\"")
            && audit.contains("active_users last 7 days by role"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_stale_and_oversize_requests_are_rejected() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let body = form(&bot, "help", SALES, "U0ALICE", "r2");
    let (status, _, _) = send(&bot, body.clone(), vec![]).await;
    assert_eq!(status, 401, "missing headers");
    let mut forged = signed(&body);
    forged[1].1 = sign(chrono::Utc::now().timestamp(), "text=something+else");
    assert_eq!(
        send(&bot, body.clone(), forged).await.0,
        401,
        "bad signature"
    );
    let stale = chrono::Utc::now().timestamp() - 6 * 60;
    let old = vec![
        ("X-Slack-Request-Timestamp", stale.to_string()),
        ("X-Slack-Signature", sign(stale, &body)),
    ];
    assert_eq!(
        send(&bot, body.clone(), old).await.0,
        401,
        "stale timestamp"
    );
    let huge = format!(
        "{body}&pad={}",
        "x".repeat(kpibot::adhoc::slash::MAX_BODY_BYTES)
    );
    assert_eq!(
        send(&bot, huge.clone(), signed(&huge)).await.0,
        413,
        "oversize body"
    );
    assert!(
        bot.slack.responses("r2").is_empty(),
        "a rejected request got an answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_sent_again_is_refused_and_answered_once() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let body = form(&bot, "signups yesterday", SALES, "U0ALICE", "replay");
    let headers = signed(&body);
    let (status, ack, _) = send(&bot, body.clone(), headers.clone()).await;
    assert_eq!(status, 200, "{ack}");
    let (status, again, _) = send(&bot, body.clone(), headers.clone()).await;
    assert_eq!(status, 401, "a replay within the five minutes: {again}");
    // The other endpoint that verifies remembers it too.
    let url = bot.interactions_url.clone();
    let (status, _, _) = tokio::task::spawn_blocking(move || post(&url, &body, &headers))
        .await
        .unwrap();
    assert_eq!(status, 401, "replayed to /slack/interactions");
    wait_for("the answer", Duration::from_secs(20), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
    wait_for("the audit line", Duration::from_secs(5), || {
        !audit_lines(&bot).is_empty()
    })
    .await;
    // A fresh request with the same words is a new question, not a replay.
    let body = form(&bot, "signups yesterday", SALES, "U0ALICE", "replay2");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the second answer", Duration::from_secs(20), || {
        bot.slack.messages_in(SALES).len() == 2
    })
    .await;
    wait_for("two audit lines", Duration::from_secs(5), || {
        audit_lines(&bot).len() == 2
    })
    .await;
    assert_eq!(
        bot.slack.messages_in(SALES).len(),
        2,
        "nothing answered twice"
    );
    assert!(bot.slack.responses("replay").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_definitions_and_mistakes_are_answered_in_the_acknowledgement_itself() {
    let bot = bot(&reports(), Duration::ZERO).await;
    for (text, expected) in [
        ("", "`/kpi list [tag]`"),
        ("activ_users", "Did you mean `active_users`?"),
        ("describe signups", "Source: `mart.daily_signups`"),
        (
            "active_users by role; DROP TABLE x",
            "I did not understand `DROP`",
        ),
        ("active_users by rol", "Did you mean `role`?"),
    ] {
        let body = form(&bot, text, SALES, "U0ALICE", "unused");
        let (status, ack, _) = send(&bot, body.clone(), signed(&body)).await;
        assert_eq!(status, 200);
        let reply: serde_json::Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(reply["response_type"], "ephemeral");
        let reply = reply["text"].as_str().unwrap();
        assert!(reply.contains(expected), "`{text}` → {reply}");
    }
    assert!(
        bot.slack.messages().is_empty(),
        "text answers are not channel posts"
    );
    assert!(bot.slack.responses("unused").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_fails_gets_a_clear_reply_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("metrics.toml"),
        r##"[[metric]]
name = "broken"
label = "Broken"
table = "mart.no_such_table"
time_column = "day"
measure = "count"
owner = "#data-team"
"##,
    )
    .unwrap();
    let bot = bot(dir.path(), Duration::ZERO).await;
    let body = form(&bot, "broken yesterday", SALES, "U0ALICE", "fail");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the failure reply", Duration::from_secs(10), || {
        !bot.slack.responses("fail").is_empty()
    })
    .await;
    let reply = bot.slack.responses("fail")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reply.contains("Sorry, `broken` failed")
            && reply.contains("no_such_table")
            && reply.contains("#data-team"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_answers_and_restricted_metrics_are_ephemeral_and_allow_lists_hold() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let body = form(&bot, "signups 先週 private", SALES, "U0ALICE", "p");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the private chart", Duration::from_secs(20), || {
        !bot.slack.ephemerals().is_empty()
    })
    .await;
    let (channel, user, _) = bot.slack.ephemerals()[0].clone();
    assert_eq!((channel.as_str(), user.as_str()), (SALES, "U0ALICE"));

    // `prefecture_active_users` is allowed in #data-team only, and always ephemeral.
    let body = form(
        &bot,
        "prefecture_active_users by prefecture",
        SALES,
        "U0ALICE",
        "denied",
    );
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the refusal", Duration::from_secs(10), || {
        !bot.slack.responses("denied").is_empty()
    })
    .await;
    let refusal = bot.slack.responses("denied")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_refused(
        &bot,
        &refusal,
        ("U0ALICE", "/kpi prefecture_active_users by prefecture"),
        "prefecture_active_users",
        "#data-team",
    )
    .await;
    let body = form(
        &bot,
        "prefecture_active_users by prefecture",
        DATA_TEAM,
        "U0BOB",
        "allowed",
    );
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the restricted chart", Duration::from_secs(20), || {
        bot.slack.ephemerals().len() == 2
    })
    .await;
    assert_eq!(bot.slack.ephemerals()[1].0, DATA_TEAM);
    assert!(
        bot.slack.messages().is_empty(),
        "nothing restricted or private was posted publicly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_groups_grant_access() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("metrics.toml"),
        r##"[[metric]]
name = "revenue"
label = "Revenue"
table = "mart.daily_signups"
time_column = "signup_date"
measure = "sum"
column = "signups"
owner = "#finance"
allowed_usergroups = ["S0ANALYSTS"]
"##,
    )
    .unwrap();
    let bot = bot(dir.path(), Duration::ZERO).await;
    bot.slack.add_usergroup("S0ANALYSTS", &["U0CAROL"]);
    let body = form(&bot, "revenue last 7 days", SALES, "U0ALICE", "no");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the refusal", Duration::from_secs(10), || {
        !bot.slack.responses("no").is_empty()
    })
    .await;
    let refusal = bot.slack.responses("no")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_refused(
        &bot,
        &refusal,
        ("U0ALICE", "/kpi revenue last 7 days"),
        "revenue",
        "#finance",
    )
    .await;
    let body = form(&bot, "revenue last 7 days", SALES, "U0CAROL", "yes");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    // Carol may see revenue, #sales may not: the chart goes to Carol only, saying why.
    wait_for("Carol's chart", Duration::from_secs(20), || {
        !bot.slack.ephemerals().is_empty()
    })
    .await;
    let (channel, user, message) = bot.slack.ephemerals()[0].clone();
    assert_eq!((channel.as_str(), user.as_str()), (SALES, "U0CAROL"));
    assert!(
        message.to_string().contains("Only you can see this"),
        "one line says why: {message}"
    );
    assert!(
        bot.slack.messages_in(SALES).is_empty(),
        "revenue was posted publicly in #sales"
    );
    assert!(
        bot.slack.responses("yes").is_empty(),
        "Carol got a chart, not a refusal"
    );
    assert_eq!(
        bot.slack.calls_of("usergroups.list").len(),
        1,
        "memberships are read once and cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_query_still_gets_the_three_second_acknowledgement_then_the_chart() {
    let bot = bot(&reports(), Duration::from_secs(10)).await;
    let body = form(
        &bot,
        "signups last 7 days by channel",
        SALES,
        "U0ALICE",
        "slow",
    );
    let (status, ack, took) = send(&bot, body.clone(), signed(&body)).await;
    assert_eq!(status, 200);
    assert!(ack.contains("Working on"), "{ack}");
    assert!(took < Duration::from_secs(3), "acknowledged after {took:?}");
    assert!(
        bot.slack.messages_in(SALES).is_empty(),
        "the answer cannot be ready yet"
    );
    wait_for("the chart", Duration::from_secs(40), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_question_is_answered_from_the_cache() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let calls = || {
        bot.warehouse_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    for round in 1..=2 {
        let body = form(
            &bot,
            "signups last 7 days by channel",
            SALES,
            "U0ALICE",
            &format!("c{round}"),
        );
        assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
        wait_for("the chart", Duration::from_secs(20), || {
            bot.slack.messages_in(SALES).len() == round
        })
        .await;
    }
    // The window and the comparison window, once: the second answer cost no query.
    assert_eq!(calls(), 2);
}

/// Sends `text` from `channel` as `user` and waits for the text reply at its response_url.
async fn reply_to(bot: &Bot, text: &str, channel: &str, user: &str, id: &str) -> String {
    let body = form(bot, text, channel, user, id);
    let (status, ack, _) = send(bot, body.clone(), signed(&body)).await;
    assert_eq!(status, 200, "{ack}");
    if !ack.contains("Working on") {
        // Answered in the acknowledgement itself.
        let value: serde_json::Value = serde_json::from_str(&ack).unwrap();
        return value["text"].as_str().unwrap().to_string();
    }
    wait_for(text, Duration::from_secs(20), || {
        !bot.slack.responses(id).is_empty()
    })
    .await;
    bot.slack.responses(id)[0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The audit log's lines, parsed.
fn audit_lines(bot: &Bot) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&bot.audit_log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `reply` is the access rule's refusal of `name`, naming `owner` to ask, and the audit line
/// of `user`'s `command` (as the audit log writes it) says `refused`. A failed query names the owner too, and must not
/// pass for a refusal.
async fn assert_refused(
    bot: &Bot,
    reply: &str,
    (user, command): (&str, &str),
    name: &str,
    owner: &str,
) {
    let words = format!("You cannot see `{name}` here. Ask its owner, {owner}, for access.");
    assert!(
        reply.contains(&words),
        "expected the refusal {words:?}, got: {reply}"
    );
    let line = || {
        audit_lines(bot)
            .into_iter()
            .find(|l| l["user"] == user && l["command"] == command)
    };
    wait_for("the refusal's audit line", Duration::from_secs(10), || {
        line().is_some()
    })
    .await;
    let line = line().unwrap();
    assert_eq!(line["outcome"], "refused", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_prefecture_numbers_follow_their_policy_through_every_entry_that_reads_them() {
    let bot = bot(&reports(), Duration::ZERO).await;
    // The metric split by the covered column, both prefecture reports, and the restricted
    // metric: all refused in #general, each naming who to ask.
    for (n, text) in [
        "active_users by prefecture",
        "active_users last 7 days where prefecture=東京都",
        "active_users_by_prefecture",
        "prefecture_breakdown",
        "prefecture_active_users by prefecture",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = reply_to(&bot, text, GENERAL, "U0ALICE", &format!("g{n}")).await;
        assert!(
            reply.contains("You cannot see") && reply.contains("#data-team"),
            "`{text}` in #general: {reply}"
        );
    }
    assert!(
        bot.slack.messages().is_empty() && bot.slack.ephemerals().is_empty(),
        "per-prefecture numbers reached #general"
    );
    // Not split by prefecture, the same metric answers anywhere.
    let body = form(
        &bot,
        "active_users last 7 days by role",
        GENERAL,
        "U0ALICE",
        "r",
    );
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    // #sales is allowed by the policy: the split is posted there.
    let body = form(&bot, "active_users by prefecture", SALES, "U0ALICE", "s");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("the chart in #sales", Duration::from_secs(20), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
    wait_for("every audit line", Duration::from_secs(20), || {
        audit_lines(&bot).len() == 7
    })
    .await;
    let audit = audit_lines(&bot);
    let refused: Vec<&serde_json::Value> =
        audit.iter().filter(|l| l["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 5, "{audit:?}");
    assert!(
        refused
            .iter()
            .filter(|l| l["entries"][0] != "prefecture_active_users")
            .all(|l| l["policies"][0] == "prefecture_detail"),
        "{refused:?}"
    );
    assert!(audit.iter().all(|l| l["duration_ms"].is_u64()));
    assert!(
        !std::fs::read_to_string(&bot.audit_log)
            .unwrap()
            .contains("response_url"),
        "the audit log keeps no response_url"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_definitions_and_suggestions_show_only_what_the_asker_may_see() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let list = reply_to(&bot, "list", GENERAL, "U0ALICE", "l").await;
    for hidden in [
        "prefecture_active_users",
        "active_users_by_prefecture",
        "prefecture_breakdown",
        "prefecture",
    ] {
        assert!(!list.contains(hidden), "#general sees `{hidden}`: {list}");
    }
    assert!(
        list.contains("`active_users`: Active users (by role, school_type)"),
        "{list}"
    );
    let in_sales = reply_to(&bot, "list", SALES, "U0ALICE", "ls").await;
    assert!(in_sales.contains("prefecture_breakdown"), "{in_sales}");
    let describe = reply_to(
        &bot,
        "describe prefecture_active_users",
        GENERAL,
        "U0ALICE",
        "d",
    )
    .await;
    assert!(
        describe.starts_with("I don't know `prefecture_active_users`"),
        "{describe}"
    );
    let suggestion = reply_to(&bot, "prefecture_breakdwn", GENERAL, "U0ALICE", "s").await;
    assert!(!suggestion.contains("prefecture_breakdown"), "{suggestion}");
    let dimension = reply_to(&bot, "active_users by prefectur", GENERAL, "U0ALICE", "dim").await;
    assert!(!dimension.contains("`prefecture`"), "{dimension}");
    let visible = reply_to(&bot, "describe active_users", SALES, "U0ALICE", "dv").await;
    assert!(
        visible.contains("Who may see it: policy `prefecture_detail`"),
        "{visible}"
    );

    // With `default_policy = "deny"`, entries no list allows are invisible too.
    let strict = bot_with(&reports(), Duration::ZERO, AccessPolicy::Deny).await;
    let list = reply_to(&strict, "list", GENERAL, "U0ALICE", "deny").await;
    assert!(!list.contains("active_users"), "{list}");
    assert!(!list.contains("signups"), "{list}");
    let unknown = reply_to(&strict, "activ_users", GENERAL, "U0ALICE", "deny2").await;
    assert!(!unknown.contains("active_users`?"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_selects_star_or_cannot_be_parsed_is_covered_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        reports().join("policies.toml"),
        dir.path().join("policies.toml"),
    )
    .unwrap();
    let report = |sql: &str| {
        format!(
            r##"title = "Raw"
description = "d"
owner = "#data-team"
[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "p"
[query]
sql = """
{sql}
"""
period = "yesterday"
[chart]
kind = "table"
x = "activity_date"
y = "active_users"
"##
        )
    };
    std::fs::write(
        dir.path().join("everything.toml"),
        report("SELECT * FROM mart.daily_active_users WHERE activity_date BETWEEN @start_date AND @end_date"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("odd.toml"),
        report("SELECT activity_date, active_users FROM mart.daily_active_users WHERE activity_date BETWEEN @start_date AND @end_date QUALIFY ROW_NUMBER() OVER () < 10 ;;; !!"),
    )
    .unwrap();
    let bot = bot(dir.path(), Duration::ZERO).await;
    for (id, name) in [("star", "everything"), ("odd", "odd")] {
        let reply = reply_to(&bot, name, GENERAL, "U0ALICE", id).await;
        assert!(reply.contains("You cannot see"), "`{name}`: {reply}");
    }
    assert!(bot.slack.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_one_audit_line_saying_how_it_ended() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let asks = [
        ("help", SALES, "help"),
        ("list", SALES, "catalog"),
        ("activ_users", SALES, "mistake"),
        ("signups last 7 days private", SALES, "answered_privately"),
        ("active_users last 7 days by role", SALES, "answered"),
        ("prefecture_breakdown", GENERAL, "refused"),
    ];
    for (n, (text, channel, _)) in asks.iter().enumerate() {
        let body = form(&bot, text, channel, "U0ALICE", &format!("a{n}"));
        assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    }
    // A date far outside the calendar: whatever happens inside, the person gets an answer
    // and the request its line.
    let body = form(
        &bot,
        "active_users since -262143-01-01",
        GENERAL,
        "U0ALICE",
        "extreme",
    );
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("every audit line", Duration::from_secs(30), || {
        audit_lines(&bot).len() == asks.len() + 1
    })
    .await;
    let audit = audit_lines(&bot);
    for (text, channel, outcome) in asks {
        let line = audit
            .iter()
            .find(|l| l["command"].as_str().unwrap().ends_with(text))
            .unwrap_or_else(|| panic!("no line for `{text}`: {audit:?}"));
        assert_eq!(line["outcome"], outcome, "`{text}`: {line}");
        assert_eq!(
            (&line["user"], &line["channel"]),
            (&"U0ALICE".into(), &channel.into())
        );
    }
    let extreme = audit
        .iter()
        .find(|l| l["command"].as_str().unwrap().contains("-262143"))
        .unwrap();
    assert!(
        ["panicked", "mistake", "failed"].contains(&extreme["outcome"].as_str().unwrap()),
        "{extreme}"
    );
    wait_for("the extreme date's reply", Duration::from_secs(10), || {
        !bot.slack.responses("extreme").is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_questions_asked_together_run_one_query() {
    let bot = bot(&reports(), Duration::ZERO).await;
    // No query answers until released: the three questions meet however slow the runner.
    bot.held.forget_permits(tokio::sync::Semaphore::MAX_PERMITS);
    for n in 0..3 {
        let body = form(
            &bot,
            "signups last 7 days",
            SALES,
            "U0ALICE",
            &format!("same{n}"),
        );
        assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    }
    let calls = || {
        bot.warehouse_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    // The window's query, then the comparison's: each released only once all three
    // questions wait for it (one running it, two sharing its answer), so none can be
    // answered from the cache or run a query of its own.
    for query in 1..=2 {
        wait_for(
            "all three questions on one held query",
            Duration::from_secs(20),
            || calls() == query && bot.handler.cache.sharing() == [3],
        )
        .await;
        bot.held.add_permits(1);
    }
    wait_for("three answers", Duration::from_secs(30), || {
        bot.slack.messages_in(SALES).len() == 3
    })
    .await;
    // One query for the window and one for the comparison, shared by all three.
    assert_eq!(calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_asking_too_often_is_told_to_wait_and_others_are_not() {
    let bot = bot_throttled(
        &reports(),
        Duration::ZERO,
        AccessPolicy::Allow,
        Throttle::new(2, 4),
    )
    .await;
    for n in 0..2 {
        let body = form(
            &bot,
            "signups yesterday",
            SALES,
            "U0ALICE",
            &format!("ok{n}"),
        );
        assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    }
    let third = reply_to(&bot, "signups yesterday", SALES, "U0ALICE", "third").await;
    assert!(
        third.contains("You have asked 2 questions in the last minute"),
        "{third}"
    );
    let help = reply_to(&bot, "help", SALES, "U0ALICE", "help").await;
    assert!(help.contains("/kpi list"), "help is never limited: {help}");
    let bob = form(&bot, "signups yesterday", SALES, "U0BOB", "bob");
    let (_, ack, _) = send(&bot, bob.clone(), signed(&bob)).await;
    assert!(
        ack.contains("Working on"),
        "Bob is not limited by Alice: {ack}"
    );
    wait_for("the audit lines", Duration::from_secs(20), || {
        audit_lines(&bot)
            .iter()
            .any(|l| l["outcome"] == "rate_limited")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_alerts_count_against_the_askers_limit_like_any_query() {
    let bot = bot_throttled(
        &reports(),
        Duration::ZERO,
        AccessPolicy::Allow,
        Throttle::new(2, 4),
    )
    .await;
    for (n, text) in ["history daily_active_users", "alerts"].iter().enumerate() {
        let answer = reply_to(&bot, text, SALES, "U0ALICE", &format!("ok{n}")).await;
        assert!(!answer.contains("in the last minute"), "{answer}");
    }
    for (n, text) in ["history daily_active_users", "alerts", "signups yesterday"]
        .iter()
        .enumerate()
    {
        let refused = reply_to(&bot, text, SALES, "U0ALICE", &format!("over{n}")).await;
        assert!(
            refused.contains("You have asked 2 questions in the last minute"),
            "{text}: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_asker_is_answered_in_their_own_slack_language() {
    let bot = bot(&reports(), Duration::ZERO).await;
    bot.slack.set_user_locale("U0HANAKO", "ja-JP");
    // The first question: the acknowledgement cannot wait for Slack, so it guesses from
    // the words (English here, the bot's language); the answer asks Slack and is Japanese.
    let body = form(
        &bot,
        "active_users last 7 days by role",
        SALES,
        "U0HANAKO",
        "j1",
    );
    let (status, ack, _) = send(&bot, body.clone(), signed(&body)).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack.contains("Working on"), "{ack}");
    wait_for("the chart in #sales", Duration::from_secs(20), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
    let posted = &bot.slack.messages_in(SALES)[0].body;
    assert_eq!(
        posted["blocks"][0]["text"]["text"],
        "Active users（Role別）"
    );
    let context = small_print(posted);
    assert!(context.starts_with("期間: "), "{context}");
    assert!(
        posted["text"].as_str().unwrap().contains("〜"),
        "the window in Japanese: {posted}"
    );
    assert_eq!(bot.slack.calls_of("users.info").len(), 1);
    // Now that Slack has said, even the acknowledgement is Japanese.
    let body = form(&bot, "help", SALES, "U0HANAKO", "j2");
    let (_, ack, _) = send(&bot, body.clone(), signed(&body)).await;
    assert!(ack.contains("定期レポートと同じ定義"), "{ack}");
    assert!(ack.contains("/kpi active_users 先月 週次 by role"), "{ack}");
    assert_eq!(
        bot.slack.calls_of("users.info").len(),
        1,
        "the language is cached"
    );
    // Someone reading Slack in English gets English, even asking in Japanese words the
    // acknowledgement guesses from.
    let body = form(&bot, "active_users 先週", SALES, "U0ALICE", "e1");
    let (_, ack, _) = send(&bot, body.clone(), signed(&body)).await;
    assert!(
        ack.contains("を集計しています"),
        "guessed from the words: {ack}"
    );
    wait_for("the English answer", Duration::from_secs(20), || {
        bot.slack.messages_in(SALES).len() == 2
    })
    .await;
    let posted = &bot.slack.messages_in(SALES)[1].body;
    let context = small_print(posted);
    assert!(context.starts_with("Data: "), "{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_users_read_scope_answers_still_come_in_the_guessed_language() {
    let bot = bot(&reports(), Duration::ZERO).await;
    bot.slack.fail_next(
        "users.info",
        [common::fake_slack::Fault::SlackError("missing_scope")],
    );
    let body = form(&bot, "active_users 先週", SALES, "U0NOSCOPE", "m1");
    send(&bot, body.clone(), signed(&body)).await;
    wait_for("the answer", Duration::from_secs(20), || {
        bot.slack.messages_in(SALES).len() == 1
    })
    .await;
    let posted = &bot.slack.messages_in(SALES)[0].body;
    let context = small_print(posted);
    assert!(
        context.starts_with("期間: "),
        "guessed from the words: {context}"
    );
    let body = form(&bot, "active_users 先月", SALES, "U0NOSCOPE", "m2");
    send(&bot, body.clone(), signed(&body)).await;
    wait_for("the second answer", Duration::from_secs(20), || {
        bot.slack.messages_in(SALES).len() == 2
    })
    .await;
    assert_eq!(
        bot.slack.calls_of("users.info").len(),
        1,
        "a missing scope is not asked about on every question"
    );
}

/// POSTs a click to `/slack/interactions`, signed like Slack signs it.
async fn click(bot: &Bot, payload: &serde_json::Value) -> (u16, String) {
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let body = format!("payload={}", encode(&payload.to_string()));
    let headers = signed(&body);
    let url = bot.interactions_url.clone();
    let (status, text, _) = tokio::task::spawn_blocking(move || post(&url, &body, &headers))
        .await
        .unwrap();
    (status, text)
}

/// Asks `/kpi <text>` in #sales and waits for the chart: the post and its ts.
async fn posted_answer(bot: &Bot, text: &str, user: &str) -> (serde_json::Value, String) {
    let before = bot.slack.messages_in(SALES).len();
    let body = form(bot, text, SALES, user, "q");
    send(bot, body.clone(), signed(&body)).await;
    wait_for("the chart in #sales", Duration::from_secs(20), || {
        bot.slack.messages_in(SALES).len() > before
    })
    .await;
    let posted = bot.slack.messages_in(SALES)[before].clone();
    (posted.body, posted.ts)
}

fn thread_replies(bot: &Bot, ts: &str) -> Vec<serde_json::Value> {
    bot.slack
        .messages_in(SALES)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(ts))
        .map(|m| m.body)
        .collect()
}

/// The first context line: who asked, or why the answer is private.
fn first_context(message: &serde_json::Value) -> String {
    common::context_lines(message)
        .first()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_chosen_under_a_post_is_answered_in_its_thread_naming_who_asked() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "daily_active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&post, &ts),
        common::menu_choice("kpi_period", &block_id, "last 90 days"),
    );
    let (status, ack) = click(&bot, &payload).await;
    assert_eq!(status, 200, "{ack}");
    wait_for("the answer in the thread", Duration::from_secs(20), || {
        !thread_replies(&bot, &ts).is_empty()
    })
    .await;
    let replies = thread_replies(&bot, &ts);
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(
        first_context(reply),
        "last 90 days, asked by <@U0BOB>",
        "{reply}"
    );
    // The number answers the period chosen: a 90-day window, in the metadata too.
    let payload = &reply["metadata"]["event_payload"];
    let day = |k: &str| {
        chrono::NaiveDate::parse_from_str(payload[k].as_str().unwrap(), "%Y-%m-%d").unwrap()
    };
    assert_eq!((day("window_end") - day("window_start")).num_days(), 89);
    assert_eq!(reply["metadata"]["event_type"], "kpibot_report");
    // The channel keeps one post: the answer is only in the thread.
    let top_level = bot
        .slack
        .messages_in(SALES)
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .count();
    assert_eq!(top_level, 1);
    let audit = std::fs::read_to_string(&bot.audit_log).unwrap();
    assert!(audit.contains("(click) kpi_period last 90 days"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_refresh_and_definition_answer_the_clicker() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    let payload =
        |action| common::block_actions_payload("U0BOB", (SALES, "sales"), (&post, &ts), action);
    // Split by a dimension: the answer in the thread has one series per role.
    click(
        &bot,
        &payload(common::menu_choice("kpi_by", &block_id, "role")),
    )
    .await;
    wait_for("the split answer", Duration::from_secs(20), || {
        thread_replies(&bot, &ts).len() == 1
    })
    .await;
    let split = &thread_replies(&bot, &ts)[0];
    assert_eq!(
        split["blocks"][1]["text"]["text"], "Active users by Role",
        "{split}"
    );
    assert_eq!(first_context(split), "by Role, asked by <@U0BOB>");
    // Refresh: the same question again, in the thread, from the warehouse (not the cache
    // that answered the first question).
    let queries_before = bot
        .warehouse_calls
        .load(std::sync::atomic::Ordering::SeqCst);
    click(
        &bot,
        &payload(common::button_click("kpi_refresh", &block_id, "refresh")),
    )
    .await;
    wait_for("the refreshed answer", Duration::from_secs(20), || {
        thread_replies(&bot, &ts).len() == 2
    })
    .await;
    assert_eq!(
        first_context(&thread_replies(&bot, &ts)[1]),
        "refreshed, asked by <@U0BOB>"
    );
    assert!(
        bot.warehouse_calls
            .load(std::sync::atomic::Ordering::SeqCst)
            > queries_before,
        "a refresh runs the query again"
    );
    // Definition: to the clicker only, in the thread.
    click(
        &bot,
        &payload(common::button_click(
            "kpi_definition",
            &block_id,
            "definition",
        )),
    )
    .await;
    wait_for("the definition", Duration::from_secs(20), || {
        !bot.slack.ephemerals().is_empty()
    })
    .await;
    let (channel, user, body) = bot.slack.ephemerals()[0].clone();
    assert_eq!((channel.as_str(), user.as_str()), (SALES, "U0BOB"));
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("• Measure: sum of `active_users`"),
        "{body}"
    );
    assert_eq!(body["thread_ts"], ts.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_is_held_to_the_same_access_rule_and_the_catalog_as_it_is_now() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    // Splitting by prefecture is restricted to #data-team and #sales members: a click in
    // #general by someone who may not see it is refused privately, nothing in the thread.
    let general = "C0GENERAL";
    bot.slack.add_channel(general, "general", true);
    let payload = common::block_actions_payload(
        "U0SALES01",
        (general, "general"),
        (&post, &ts),
        common::menu_choice("kpi_by", &block_id, "prefecture"),
    );
    click(&bot, &payload).await;
    wait_for("the refusal", Duration::from_secs(20), || {
        !bot.slack.ephemerals().is_empty()
    })
    .await;
    let (_, user, body) = bot.slack.ephemerals()[0].clone();
    assert_eq!(user, "U0SALES01");
    assert_refused(
        &bot,
        body["text"].as_str().unwrap(),
        ("U0SALES01", "(click) kpi_by prefecture"),
        "active_users",
        "#data-team",
    )
    .await;
    assert!(thread_replies(&bot, &ts).is_empty());
    // A button from a post whose report no longer exists: a clear reply.
    let gone = kpibot::render::actions::Asked {
        name: "retired_report".into(),
        period: "last 7 days".into(),
        ..Default::default()
    };
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&post, &ts),
        common::button_click("kpi_refresh", &gone.block_id().unwrap(), "refresh"),
    );
    click(&bot, &payload).await;
    wait_for(
        "the reply about the missing report",
        Duration::from_secs(20),
        || bot.slack.ephemerals().len() == 2,
    )
    .await;
    let (_, _, body) = bot.slack.ephemerals()[1].clone();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("I don't know `retired_report`"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_oversize_clicks_are_refused() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&serde_json::json!({"blocks": []}), "1700000000.000100"),
        common::button_click(
            "kpi_refresh",
            "kpi:{\"n\":\"daily_active_users\",\"p\":\"yesterday\"}",
            "refresh",
        ),
    );
    let body = format!(
        "payload={}",
        form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    );
    let url = bot.interactions_url.clone();
    let send_raw = |body: String, headers: Vec<(&'static str, String)>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || post(&url, &body, &headers))
    };
    let now = chrono::Utc::now().timestamp();
    let forged = vec![
        ("X-Slack-Request-Timestamp", now.to_string()),
        (
            "X-Slack-Signature",
            common::slack_signature("wrong-secret", now, &body),
        ),
    ];
    assert_eq!(send_raw(body.clone(), forged).await.unwrap().0, 401);
    let stale = now - 600;
    let old = vec![
        ("X-Slack-Request-Timestamp", stale.to_string()),
        ("X-Slack-Signature", sign(stale, &body)),
    ];
    assert_eq!(send_raw(body.clone(), old).await.unwrap().0, 401);
    let huge = format!(
        "{body}{}",
        "x".repeat(kpibot::adhoc::interact::MAX_INTERACTION_BODY_BYTES)
    );
    let headers = signed(&huge);
    assert_eq!(send_raw(huge, headers).await.unwrap().0, 413);
    assert!(bot.slack.messages().is_empty() && bot.slack.ephemerals().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_a_reports_last_runs_with_links() {
    let bot = bot(&reports(), Duration::ZERO).await;
    // Two runs the scheduler recorded, and their posts in the channel.
    use kpibot::ledger::{Claim, Lease, Outcome, SlotKey};
    let mut newest_ts = String::new();
    for day in [24, 25] {
        let key = SlotKey {
            report: "daily_active_users".into(),
            schedule: 0,
            slot: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, day, 0, 30, 0)
                .unwrap(),
        };
        bot.slack
            .add_post(SALES, "daily_active_users", &key.slot.to_rfc3339());
        let ts = bot.slack.messages().last().unwrap().ts.clone();
        newest_ts = ts.clone();
        let now = chrono::Utc::now();
        let lease = Lease {
            owner: "test".into(),
            until: now + chrono::Duration::seconds(60),
        };
        assert_eq!(
            bot.ledger.claim(&key, &lease, now).await.unwrap(),
            Claim::Won
        );
        let delivered = Outcome::Delivered {
            channel: SALES.into(),
            ts,
            rows: 3,
            bytes: Some(5 << 30),
        };
        bot.ledger.finish(&key, &delivered, now).await.unwrap();
    }
    // `/kpi history daily_active_users` as Alice in #sales, its answer's text.
    let history = async |id: &str| {
        let body = form(&bot, "history daily_active_users", SALES, "U0ALICE", id);
        send(&bot, body.clone(), signed(&body)).await;
        wait_for("the history", Duration::from_secs(20), || {
            !bot.slack.responses(id).is_empty()
        })
        .await;
        bot.slack.responses(id)[0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let text = history("h1").await;
    assert!(text.contains("the last 2 runs"), "{text}");
    assert!(text.contains("2026-11-25 09:30 — posted"), "{text}");
    // What each run cost, where the warehouse said: bytes and the price at $6.25 a TiB.
    assert!(text.contains("5.0 GiB (≈ $0.03)"), "{text}");
    // Slack's own permalink (the fake's differ from a hand-built slack.com link), asked
    // for once per run shown and kept in the ledger.
    let link = format!(
        "<https://fake.slack.test/archives/{SALES}/p{}|post>",
        newest_ts.replace('.', "")
    );
    assert!(text.contains(&link), "{text}");
    assert_eq!(bot.slack.calls_of("chat.getPermalink").len(), 2);
    let stored = bot
        .ledger
        .history(Some("daily_active_users"), 10)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|run| run
            .permalink
            .as_deref()
            .is_some_and(|p| p.starts_with("https://fake.slack.test/"))),
        "{stored:?}"
    );
    // Listed again: the links come from the ledger, with no further Tier 4 call.
    let again = history("h2").await;
    assert!(again.contains(&link), "{again}");
    assert_eq!(bot.slack.calls_of("chat.getPermalink").len(), 2);
}

/// The small print at the bottom of a post: window, source, report.
fn small_print(message: &serde_json::Value) -> String {
    common::context_lines(message)
        .last()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_answer_whose_reply_was_lost_is_found_in_the_thread_not_posted_twice() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "daily_active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    // Slack posts the answer, then the connection drops before kpibot hears back.
    bot.slack.fail_next(
        "chat.postMessage",
        [common::fake_slack::Fault::DropAfterProcessing],
    );
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&post, &ts),
        common::menu_choice("kpi_period", &block_id, "last 28 days"),
    );
    click(&bot, &payload).await;
    wait_for("the lookup in the thread", Duration::from_secs(20), || {
        !bot.slack.calls_of("conversations.replies").is_empty()
    })
    .await;
    wait_for("the click's audit line", Duration::from_secs(20), || {
        std::fs::read_to_string(&bot.audit_log).is_ok_and(|a| a.contains("(click) kpi_period"))
    })
    .await;
    assert_eq!(thread_replies(&bot, &ts).len(), 1, "posted exactly once");
    let audit = std::fs::read_to_string(&bot.audit_log).unwrap();
    assert!(audit.contains("\"outcome\":\"answered\""), "{audit}");
}

/// Why?: the explanation in the post's thread, naming who asked — once, even when Slack's
/// answer to the post is lost (the thread is looked in, by the marker its small print
/// carries, since replies come back without metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_answers_in_the_thread_once_even_when_the_reply_is_lost() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    bot.slack.fail_next(
        "chat.postMessage",
        [common::fake_slack::Fault::DropAfterProcessing],
    );
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&post, &ts),
        common::button_click("kpi_why", &block_id, "why"),
    );
    click(&bot, &payload).await;
    wait_for("the click's audit line", Duration::from_secs(20), || {
        std::fs::read_to_string(&bot.audit_log).is_ok_and(|a| a.contains("(click) kpi_why"))
    })
    .await;
    let replies = thread_replies(&bot, &ts);
    assert_eq!(replies.len(), 1, "posted exactly once");
    let reply = &replies[0];
    assert_eq!(reply["metadata"]["event_type"], "kpibot_explanation");
    assert_eq!(first_context(reply), "why it changed, asked by <@U0BOB>");
    assert!(!bot.slack.calls_of("conversations.replies").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_under_a_reply_answers_in_the_parents_thread() {
    let bot = bot(&reports(), Duration::ZERO).await;
    let (post, ts) = posted_answer(&bot, "daily_active_users last 7 days", "U0ALICE").await;
    let block_id = common::actions_block_id(&post);
    let payload = common::block_actions_payload(
        "U0BOB",
        (SALES, "sales"),
        (&post, &ts),
        common::menu_choice("kpi_period", &block_id, "last 28 days"),
    );
    click(&bot, &payload).await;
    wait_for("the first answer", Duration::from_secs(20), || {
        thread_replies(&bot, &ts).len() == 1
    })
    .await;
    // Now a click under that answer, itself a reply in the thread of `ts`.
    let reply = bot
        .slack
        .messages_in(SALES)
        .into_iter()
        .find(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
        .unwrap();
    let mut payload = common::block_actions_payload(
        "U0CAROL",
        (SALES, "sales"),
        (&reply.body, &reply.ts),
        common::button_click(
            "kpi_refresh",
            &common::actions_block_id(&reply.body),
            "refresh",
        ),
    );
    payload["message"]["thread_ts"] = serde_json::json!(ts);
    click(&bot, &payload).await;
    wait_for("the second answer", Duration::from_secs(20), || {
        thread_replies(&bot, &ts).len() == 2
    })
    .await;
    assert!(
        thread_replies(&bot, &reply.ts).is_empty(),
        "no thread under a reply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_with_two_readings_is_asked_back_and_its_button_answers_that_reading() {
    let bot = bot(&reports(), Duration::ZERO).await;
    // With the fiscal year starting in April, a bare quarter has a fiscal and a calendar
    // reading: never guessed.
    let body = form(
        &bot,
        "アクティブユーザー 第3四半期 ロール別",
        SALES,
        "U0ALICE",
        "r1",
    );
    let (status, ack, _) = send(&bot, body.clone(), signed(&body)).await;
    assert_eq!(status, 200, "{ack}");
    let ack: serde_json::Value = serde_json::from_str(&ack).unwrap();
    assert_eq!(ack["response_type"], "ephemeral", "asked back privately");
    let buttons = ack["blocks"][1]["elements"].as_array().unwrap().clone();
    assert_eq!(buttons.len(), 2, "{ack}");
    let readings: Vec<kpibot::adhoc::grammar::Query> = buttons
        .iter()
        .map(|b| {
            let value = b["value"].as_str().unwrap();
            match kpibot::adhoc::grammar::parse(value).unwrap() {
                kpibot::adhoc::grammar::Request::Query(q) => q,
                other => panic!("{value}: {other:?}"),
            }
        })
        .collect();
    for b in &buttons {
        // Each button is labelled with its reading alone: name, window, split.
        let label = b["text"]["text"].as_str().unwrap();
        assert!(
            label.starts_with("アクティブユーザー · ") && label.ends_with("ロール別"),
            "{label}"
        );
    }
    for q in &readings {
        assert_eq!(
            (q.name.as_str(), q.by.as_deref()),
            ("active_users", Some("role"))
        );
    }
    assert_ne!(
        readings[0].period, readings[1].period,
        "two different windows"
    );
    assert!(
        bot.slack.messages_in(SALES).is_empty(),
        "nothing answered yet"
    );
    // The calendar reading, chosen from the ephemeral message.
    let shown = serde_json::json!({"text": ack["text"], "blocks": ack["blocks"]});
    let button = &buttons[1];
    let mut payload = common::block_actions_payload(
        "U0ALICE",
        (SALES, "sales"),
        (&shown, "1700000000.000001"),
        common::button_click(
            button["action_id"].as_str().unwrap(),
            "kpi_choose",
            button["value"].as_str().unwrap(),
        ),
    );
    payload["container"]["is_ephemeral"] = serde_json::json!(true);
    click(&bot, &payload).await;
    wait_for(
        "the chosen reading's chart",
        Duration::from_secs(20),
        || !bot.slack.messages_in(SALES).is_empty(),
    )
    .await;
    let posted = &bot.slack.messages_in(SALES)[0].body;
    // Right under the title.
    assert_eq!(posted["blocks"][0]["type"], "header", "{posted}");
    let read_back = posted["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    let today = common::tokyo_yesterday(chrono::Utc::now()) + chrono::Days::new(1);
    let window = readings[1]
        .period
        .unwrap()
        .resolve(today, chrono::Weekday::Mon)
        .unwrap();
    // In the clicker's Slack language (the fake Slack does not say: the bot's, English).
    let dates = kpibot::i18n::date_range(kpibot::i18n::Locale::En, window.start, window.end);
    assert!(
        read_back.contains(&dates) && read_back.contains("by Role"),
        "the post says how it was read: {read_back} (expected {dates})"
    );
    assert!(
        posted["thread_ts"].is_null(),
        "an ephemeral message has no thread"
    );
}

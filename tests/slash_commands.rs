//! `/kpi` over HTTP: requests signed exactly as Slack signs them, the 3-second
//! acknowledgement, answers posted to the fake Slack, access control and the audit log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use common::fake_slack::{FakeSlack, TOKEN};
use kpibot::adhoc::AccessPolicy;
use kpibot::adhoc::audit::AuditLog;
use kpibot::adhoc::slash::{COMMANDS_PATH, CommandHandler};
use kpibot::catalog::Catalog;
use kpibot::deliver::{SlackDelivery, SlackOptions};
use kpibot::metrics::Metrics;
use kpibot::retry::RetryPolicy;
use kpibot::settings::Secret;
use kpibot::spec::SpecDefaults;
use kpibot::warehouse::Dialect;
use kpibot::warehouse::cache::QueryCache;
use kpibot::warehouse::duckdb::DuckDbWarehouse;
use kpibot::warehouse::{Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DATA_TEAM: &str = "C0DATATEAM";
const SALES: &str = "C0SALES001";

/// The demo mart, built once for all tests in this file.
fn mart() -> &'static Path {
    static MART: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MART
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("demo.duckdb");
            let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
            kpibot::warehouse::demo::ensure_demo_mart(&path, yesterday).unwrap();
            (dir, path)
        })
        .1
}

/// The real DuckDB warehouse, answering only after `delay` (a slow warehouse).
struct Slow {
    inner: DuckDbWarehouse,
    delay: Duration,
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
    url: String,
    audit_log: PathBuf,
    _dir: tempfile::TempDir,
}

async fn bot(reports: &Path, delay: Duration) -> Bot {
    let slack = FakeSlack::start(&[(DATA_TEAM, "data-team", true), (SALES, "sales", true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let files = kpibot::spec::load_dir(
        reports,
        &SpecDefaults {
            timezone: chrono_tz::Asia::Tokyo,
        },
    )
    .unwrap();
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
        },
        metrics.clone(),
    )
    .unwrap();
    let audit_log = dir.path().join("audit.jsonl");
    let warehouse_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = Arc::new(CommandHandler {
        catalog,
        warehouse: Arc::new(Slow {
            inner: DuckDbWarehouse::open(mart()).unwrap(),
            delay,
            calls: warehouse_calls.clone(),
        }),
        slack: Arc::new(delivery),
        metrics,
        timezone: chrono_tz::Asia::Tokyo,
        timeout: Duration::from_secs(30),
        policy: AccessPolicy::Allow,
        cache: QueryCache::default(),
        audit: AuditLog::new(audit_log.clone()),
    });
    let app = kpibot::adhoc::slash::router(SECRET, handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{}{COMMANDS_PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Bot {
        slack,
        warehouse_calls,
        url,
        audit_log,
        _dir: dir,
    }
}

fn sign(timestamp: i64, body: &str) -> String {
    common::slack_signature(SECRET, timestamp, body)
}

fn form(bot: &Bot, text: &str, channel: &str, user: &str, id: &str) -> String {
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "token=legacy&team_id=T0FAKE&channel_id={channel}&user_id={user}&command=%2Fkpi&text={}&response_url={}&trigger_id=1.2.3",
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

async fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    assert!(
        posted.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "image")
    );
    wait_for("the audit line", Duration::from_secs(5), || {
        std::fs::read_to_string(&bot.audit_log).is_ok_and(|a| a.contains("\"outcome\":\"chart\""))
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
    assert!(refusal.contains("Ask its owner, #data-team"), "{refusal}");
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
    let body = form(&bot, "revenue last 7 days", SALES, "U0CAROL", "yes");
    assert_eq!(send(&bot, body.clone(), signed(&body)).await.0, 200);
    wait_for("Carol's chart", Duration::from_secs(20), || {
        !bot.slack.messages_in(SALES).is_empty()
    })
    .await;
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
            "c",
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

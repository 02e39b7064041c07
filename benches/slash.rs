//! Slash-command acknowledgement under load, on loopback: 200 connections sending signed
//! `/kpi help` to `kpibot serve` — first with nothing else to do (the baseline), then
//! while 20 heavy `/kpi` answers (a billion-row scan each, on the embedded warehouse) are
//! being computed — and, for comparison, to Slack's Bolt for Python (async app on
//! aiohttp, the same immediate ack). Prints throughput and p50/p99 latency for each.
//!
//! Then the time from a `/kpi` question to its answer's `chat.postMessage` arriving at the
//! tests' fake Slack, every Slack call answered after 50 ms: a metric answer that fits
//! Slack's own chart block (one call) and one that needs the PNG (upload, then post).
//!
//! `pip install slack_bolt aiohttp && cargo bench --bench slash`

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[path = "../tests/common/mod.rs"]
mod common;

/// How long the fake Slack takes to answer each API call in the answer-latency runs.
const SLACK_LATENCY_MS: u64 = 50;
/// Questions timed for each kind of answer.
const ANSWER_ROUNDS: usize = 15;

const CONNECTIONS: usize = 200;
const DURATION_SECONDS: u64 = 10;
const SECRET: &str = "bench-signing-secret";
const HEAVY_ANSWERS: usize = 20;
/// The fixed rate of the second measurement: far above any Slack workspace's `/kpi`
/// traffic, well below what saturates this machine.
const PACED_REQUESTS_PER_SECOND: u32 = 2_000;

/// A report whose every answer scans a billion generated rows: seconds of CPU each.
const HEAVY_REPORT: &str = r##"title = "Heavy"
description = "A deliberately slow report for the slash benchmark."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "benchmark"

[query]
sql = '''
SELECT activity_date AS day,
       SUM(active_users) + (SELECT COUNT(*) FROM range(0, 1000000000) AS t(i) WHERE i % 7 = 8) AS users
FROM mart.daily_active_users
WHERE activity_date BETWEEN @start_date AND @end_date
GROUP BY activity_date ORDER BY day
'''
period = "last 7 days"

[chart]
kind = "line"
x = "day"
y = "users"
"##;

const BOLT_APP: &str = r#"
import os, sys
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

async def authorize(enterprise_id, team_id, logger):
    # No network: the same fixed bot identity kpibot has.
    return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id,
                           bot_token="xoxb-bench", bot_id="B0BENCH", bot_user_id="U0BENCH")

app = AsyncApp(signing_secret=os.environ["SECRET"], authorize=authorize,
               request_verification_enabled=True)

@app.command("/kpi")
async def kpi(ack):
    await ack("Working on it")

app.start(port=int(sys.argv[1]), path="/slack/commands")
"#;

fn sign(timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(port: u16) -> bool {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A request, signed afresh each time it is called.
type NewRequest = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

/// One keep-alive connection sending requests from `request` until `until`: back to
/// back, or every `pace` (then latency counts from the time the request was due, so a
/// stall is not hidden by the requests it delayed). Each is signed afresh, as Slack
/// signs each: kpibot refuses a signed request it has already received.
async fn client(
    port: u16,
    request: NewRequest,
    until: Instant,
    pace: Option<Duration>,
    index: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return latencies;
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // Paced connections are spread evenly over the interval, not sent in bursts.
    let mut due = Instant::now()
        + pace.map_or(Duration::ZERO, |p| {
            p.mul_f64(index as f64 / CONNECTIONS as f64)
        });
    while Instant::now() < until {
        let started = match pace {
            Some(interval) => {
                tokio::time::sleep_until(due.into()).await;
                let started = due;
                due += interval;
                started
            }
            None => Instant::now(),
        };
        if write.write_all(&request()).await.is_err() {
            break;
        }
        let mut length = 0usize;
        let mut ok = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return latencies;
            }
            if line.starts_with("HTTP/1.1 200") {
                ok = true;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() || !ok {
            break;
        }
        latencies.push(started.elapsed());
    }
    latencies
}

/// A signed `/kpi <text>` request from `user`.
fn slash_request(user: &str, text: &str, response_url: &str) -> Vec<u8> {
    slash_request_in("C1", user, text, response_url)
}

/// A signed `/kpi <text>` request from `user` in `channel`, with a trigger id of its own
/// (like Slack's, unique to the request).
fn slash_request_in(channel: &str, user: &str, text: &str, response_url: &str) -> Vec<u8> {
    static TRIGGERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let trigger = TRIGGERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = &format!(
        "token=x&team_id=T1&channel_id={channel}&channel_name=general&user_id={user}&command=%2Fkpi&text={}&response_url={}&trigger_id={trigger}",
        form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(response_url.as_bytes()).collect::<String>()
    );
    let timestamp = chrono::Utc::now().timestamp();
    format!(
        "POST /slack/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nX-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {}\r\n\r\n{body}",
        body.len(),
        sign(timestamp, body)
    )
    .into_bytes()
}

/// Asks 20 heavy questions (different people, different windows: no cache, no
/// single-flight, no per-person limit in the way); returns once all are acknowledged.
async fn start_heavy_answers(port: u16, response_url: &str) {
    for i in 0..HEAVY_ANSWERS {
        let request = slash_request(
            &format!("U{:03}", 100 + i),
            &format!("heavy last {} days", 10 + i),
            response_url,
        );
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).await.unwrap();
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "heavy question refused: {status}"
        );
    }
}

/// `/kpi help` over 200 connections: as fast as they go (`rate` none: the CPU is
/// saturated, so the p99 is mostly queueing) or at `rate` requests per second in all.
async fn load(name: &str, port: u16, response_url: &str, rate: Option<u32>) {
    let response_url = response_url.to_string();
    let request: NewRequest = Arc::new(move || slash_request("U1", "help", &response_url));
    let started = Instant::now();
    let until = started + Duration::from_secs(DURATION_SECONDS);
    let pace = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / f64::from(r)));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|index| tokio::spawn(client(port, request.clone(), until, pace, index)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    if all.is_empty() {
        println!("{name}: no successful requests");
        return;
    }
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    let name = match rate {
        Some(rate) => format!("{name}, {rate} requests/s"),
        None => format!("{name}, as fast as they go"),
    };
    println!(
        "{name}: {} acks in {elapsed:.1} s = {:.0} requests/s; p50 {:.2} ms, p99 {:.2} ms ({CONNECTIONS} connections)",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os("KPIBOT_BENCH_ANSWERS_ONLY").is_some() {
        let dir = tempfile::tempdir().unwrap();
        answer_latency(dir.path()).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("reports")).unwrap();
    std::fs::write(dir.path().join("reports/heavy.toml"), HEAVY_REPORT).unwrap();
    // A sink for the background answers (response_url) and Slack API calls; it counts
    // the answers that arrive.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/api", sink.local_addr().unwrap());
    let response_url = format!("http://{}/response", sink.local_addr().unwrap());
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = answers.clone();
    tokio::spawn(async move {
        let app = axum::Router::new()
            .route(
                "/response",
                axum::routing::post(move || {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async { "ok" }
                }),
            )
            .fallback(|| async { "{\"ok\":true}" });
        axum::serve(sink, app).await.unwrap();
    });

    let start_kpibot = |port: u16| {
        Killed(
            Command::new(env!("CARGO_BIN_EXE_kpibot"))
                .arg("serve")
                .current_dir(dir.path())
                .env("KPIBOT__REPORTS__DIR", dir.path().join("reports"))
                .env("KPIBOT__HTTP__LISTEN", format!("127.0.0.1:{port}"))
                .env(
                    "KPIBOT__HTTP__OPS_LISTEN",
                    format!("127.0.0.1:{}", free_port()),
                )
                .env("KPIBOT__SLACK__BOT_TOKEN", "xoxb-bench")
                .env("KPIBOT__SLACK__SIGNING_SECRET", SECRET)
                .env("KPIBOT__SLACK__API_URL", &sink_url)
                .env("KPIBOT__SLASH__QUERY_TIMEOUT_SECONDS", "600")
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // Each measurement on a fresh process: saturating first, then at a fixed rate.
    for rate in [None, Some(PACED_REQUESTS_PER_SECOND)] {
        let kpibot_port = free_port();
        let kpibot = start_kpibot(kpibot_port);
        assert!(wait_ready(kpibot_port).await, "kpibot serve did not start");
        load(
            "kpibot serve, nothing else to do",
            kpibot_port,
            &response_url,
            rate,
        )
        .await;
        drop(kpibot);

        let kpibot_port = free_port();
        let kpibot = start_kpibot(kpibot_port);
        assert!(wait_ready(kpibot_port).await, "kpibot serve did not start");
        start_heavy_answers(kpibot_port, &response_url).await;
        let answered_before = answers.load(std::sync::atomic::Ordering::SeqCst);
        load(
            &format!("kpibot serve, while {HEAVY_ANSWERS} heavy /kpi answers compute"),
            kpibot_port,
            &response_url,
            rate,
        )
        .await;
        println!(
            "  answers posted to response_url while the load ran: {}",
            answers.load(std::sync::atomic::Ordering::SeqCst) - answered_before
        );
        drop(kpibot);
    }

    answer_latency(dir.path()).await;

    let script = dir.path().join("bolt_app.py");
    std::fs::File::create(&script)
        .unwrap()
        .write_all(BOLT_APP.as_bytes())
        .unwrap();
    let bolt_port = free_port();
    let bolt = Command::new("python3")
        .arg(&script)
        .arg(bolt_port.to_string())
        .env("SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match bolt {
        Ok(child) => {
            let bolt = Killed(child);
            if wait_ready(bolt_port).await {
                load(
                    "Bolt for Python (AsyncApp, aiohttp)",
                    bolt_port,
                    &response_url,
                    None,
                )
                .await;
            } else {
                println!("Bolt baseline skipped: install it with `pip install slack_bolt aiohttp`");
            }
            drop(bolt);
        }
        Err(e) => println!("Bolt baseline skipped: cannot run python3 ({e})"),
    }
}

/// Sends one request and reads the acknowledgement's status line.
async fn ask(port: u16, request: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "refused: {status}");
}

/// From the question to its `chat.postMessage` arriving at the fake Slack, every Slack
/// call answered after `SLACK_LATENCY_MS`: a week of one metric (Slack's own chart block,
/// no upload) and four weeks (past the block's 20 categories: the PNG, uploaded first).
async fn answer_latency(dir: &std::path::Path) {
    // A channel per question: posts to one channel are paced a second apart, which would
    // be measured instead.
    let channels: Vec<(String, String)> = (0..2 * (ANSWER_ROUNDS + 1))
        .map(|i| (format!("C0BENCH{i:03}"), format!("bench-{i}")))
        .collect();
    let listed: Vec<(&str, &str, bool)> = channels
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str(), true))
        .collect();
    let slack = common::fake_slack::FakeSlack::start(&listed).await;
    let mut channel_ids = channels.iter().map(|(id, _)| id.clone());
    slack.fail_randomly(
        1.0,
        vec![common::fake_slack::Fault::Slow(Duration::from_millis(
            SLACK_LATENCY_MS,
        ))],
        7,
    );
    let port = free_port();
    let _kpibot = Killed(
        Command::new(env!("CARGO_BIN_EXE_kpibot"))
            .arg("serve")
            .current_dir(dir)
            .env("KPIBOT__REPORTS__DIR", common::repo_path("reports"))
            .env("KPIBOT__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "KPIBOT__HTTP__OPS_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("KPIBOT__SLACK__BOT_TOKEN", common::fake_slack::TOKEN)
            .env("KPIBOT__SLACK__SIGNING_SECRET", SECRET)
            .env("KPIBOT__SLACK__API_URL", &slack.api_url)
            .env("KPIBOT__SLASH__MAX_QUESTIONS_PER_MINUTE", "1000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_ready(port).await, "kpibot serve did not start");
    let response_url = slack.response_url("bench");
    println!(
        "/kpi question → its chat.postMessage at Slack, each Slack call answered after {SLACK_LATENCY_MS} ms:"
    );
    for (name, text) in [
        (
            "fits Slack's chart block (1 call)",
            "active_users last 7 days",
        ),
        (
            "needs the PNG (upload: 3 calls, then the post)",
            "active_users last 28 days",
        ),
    ] {
        let mut times = Vec::new();
        // One untimed question first: the asker's language and the query cache warm up.
        for round in 0..=ANSWER_ROUNDS {
            let before = slack.messages().len();
            let channel = channel_ids.next().unwrap();
            let request = slash_request_in(&channel, "U1", text, &response_url);
            let started = Instant::now();
            ask(port, &request).await;
            let give_up = Instant::now() + Duration::from_secs(60);
            let arrived = loop {
                if let Some(posted) = slack.messages().get(before) {
                    break posted.at;
                }
                assert!(
                    Instant::now() < give_up,
                    "no answer was posted for `{text}`; replies: {:?}; calls: {:?}",
                    slack.responses("bench"),
                    slack
                        .calls()
                        .iter()
                        .map(|c| c.method.clone())
                        .collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            if round > 0 {
                times.push(arrived.saturating_duration_since(started));
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {name:<48} p50 {:>6.1} ms  p90 {:>6.1} ms",
            at(0.5).as_secs_f64() * 1000.0,
            at(0.9).as_secs_f64() * 1000.0
        );
    }
}

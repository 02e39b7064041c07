//! `kpibot serve` as a child process for the end-to-end tests: start it with settings,
//! wait for it, read its endpoints and logs, SIGKILL or SIGTERM it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use super::fake_slack::FakeSlack;

/// Every two seconds: fast enough for a test, slow enough for a debug build to keep up.
pub const EVERY_TWO_SECONDS: &str = "*/2 * * * * *";

pub fn report_toml(title: &str, cron: &str, channel: &str) -> String {
    // The PNG path: these tests hold up its upload to stall a run mid-way.
    report_spec(title, cron, channel, "image", None)
}

/// A report over the demo mart's daily active users, posting to `channel` at `cron`, its
/// chart `slack_chart` (`image` or `native`), the schedule in `timezone` if given.
pub fn report_spec(
    title: &str,
    cron: &str,
    channel: &str,
    slack_chart: &str,
    timezone: Option<&str>,
) -> String {
    let timezone = timezone.map_or(String::new(), |tz| format!("timezone = \"{tz}\"\n"));
    format!(
        r##"title = "{title}"
description = "A report for the serve tests."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "testing"

[query]
sql = """
SELECT activity_date AS day, SUM(active_users) AS users
FROM mart.daily_active_users
WHERE activity_date BETWEEN @start_date AND @end_date
GROUP BY activity_date ORDER BY day
"""
period = "last 7 days"

[chart]
kind = "line"
x = "day"
y = "users"
slack_chart = "{slack_chart}"

[[schedule]]
cron = "{cron}"
{timezone}channel = "{channel}"
"##
    )
}

/// A report with one slot, at `at` (daily, at that second in Tokyo): no other slot runs
/// during the test.
pub fn due_once_report(title: &str, channel: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let at = at.with_timezone(&chrono_tz::Asia::Tokyo);
    use chrono::Timelike;
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    report_toml(title, &cron, channel).replace(
        &format!("cron = \"{cron}\""),
        &format!("cron = \"{cron}\"\ntimezone = \"Asia/Tokyo\""),
    )
}

/// A bot's settings in a folder. Each start binds port 0 (unless a test sets the
/// addresses) and reads the ports it got from the address file `serve` writes: no port is
/// picked by the test and bound later by the child, so parallel tests cannot race for one.
pub struct Bot {
    pub dir: PathBuf,
    /// The public listener of the last start: `/slack/…` (and `/healthz`).
    port: AtomicU16,
    /// The operations listener of the last start: `/healthz`, `/readyz`, `/metrics`.
    ops_port: AtomicU16,
    pub env: Vec<(String, String)>,
}

impl Bot {
    pub fn new(dir: &Path, extra: &[(&str, &str)]) -> Self {
        let mut env: Vec<(String, String)> = vec![
            (
                "KPIBOT__REPORTS__DIR".into(),
                dir.join("reports").display().to_string(),
            ),
            (
                "KPIBOT__WAREHOUSE__DUCKDB__PATH".into(),
                dir.join("demo.duckdb").display().to_string(),
            ),
            (
                "KPIBOT__LEDGER__PATH".into(),
                dir.join("ledger.sqlite").display().to_string(),
            ),
            (
                "KPIBOT__SLASH__AUDIT_LOG".into(),
                dir.join("audit.jsonl").display().to_string(),
            ),
            (
                "KPIBOT__DELIVERY__FOLDER".into(),
                dir.join("out").display().to_string(),
            ),
            ("KPIBOT__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
            ("KPIBOT__HTTP__OPS_LISTEN".into(), "127.0.0.1:0".into()),
            ("KPIBOT__SCHEDULER__RELOAD_INTERVAL_MS".into(), "200".into()),
            ("KPIBOT__HTTP__DRAIN_SECONDS".into(), "0".into()),
            ("KPIBOT__SCHEDULER__LEASE_SECONDS".into(), "2".into()),
            (
                "KPIBOT__SLACK__CHANNEL_POST_INTERVAL_MS".into(),
                "100".into(),
            ),
            ("RUST_LOG".into(), "kpibot=info".into()),
        ];
        // The fake enforces no tiers unless a test asks it to (and sets these to match).
        let unpaced = super::fake_slack::UNPACED_CALLS_PER_MINUTE.to_string();
        for tier in 1..=4 {
            env.push((
                format!("KPIBOT__SLACK__TIER{tier}_PER_MINUTE"),
                unpaced.clone(),
            ));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self {
            dir: dir.to_path_buf(),
            port: AtomicU16::new(0),
            ops_port: AtomicU16::new(0),
            env,
        }
    }

    pub fn start(&self, log_name: &str) -> Running {
        let log = std::fs::File::create(self.dir.join(log_name)).unwrap();
        STARTED_LOGS.with(|logs| logs.borrow_mut().push(self.dir.join(log_name)));
        let address_file = self.dir.join(format!("{log_name}.addr"));
        let _ = std::fs::remove_file(&address_file);
        let child = Command::new(env!("CARGO_BIN_EXE_kpibot"))
            .arg("serve")
            .current_dir(&self.dir)
            .env_remove("KPIBOT__SLACK__BOT_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KPIBOT__HTTP__ADDRESS_FILE", &address_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut running = Running(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut bound = false;
        loop {
            if !bound && let Some((port, ops_port)) = read_addresses(&address_file) {
                self.port.store(port, Ordering::SeqCst);
                self.ops_port.store(ops_port, Ordering::SeqCst);
                bound = true;
            }
            if bound
                && self
                    .get("/healthz")
                    .is_some_and(|(status, _)| status == 200)
            {
                return running;
            }
            if let Ok(Some(status)) = running.0.try_wait() {
                panic!(
                    "kpibot serve exited ({status}) before answering /healthz; its log:\n{}",
                    self.log(log_name)
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the bot to answer /healthz; its log:\n{}",
                self.log(log_name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The public port of the last start.
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// The operations port of the last start.
    pub fn ops_port(&self) -> u16 {
        self.ops_port.load(Ordering::SeqCst)
    }

    /// A plain HTTP/1.1 GET to the operations listener: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        get_on(self.ops_port(), path)
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The value of `series` (a metric's name and labels, as `/metrics` writes them) on
    /// this process's `/metrics`; 0 when it has not been counted yet.
    pub fn metric(&self, series: &str) -> f64 {
        let (status, metrics) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(status, 200, "{metrics}");
        let prefix = format!("{series} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }
}

/// The (public, operations) ports in an address file `serve` wrote, once it has.
fn read_addresses(path: &Path) -> Option<(u16, u16)> {
    let text = std::fs::read_to_string(path).ok()?;
    let port_of = |key: &str| -> Option<u16> {
        let line = text.lines().find_map(|l| l.strip_prefix(key))?;
        line.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
    };
    Some((port_of("listen=")?, port_of("ops_listen=")?))
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`: (status, body).
pub fn get_on(port: u16, path: &str) -> Option<(u16, String)> {
    {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }
}

/// Polls `condition` until it holds; after `limit`, panics with `what` and the logs of
/// every bot this test started (its thread's [`Bot::start`]s).
pub fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        fail_after(deadline, what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] for async tests whose bot runs on their own runtime: it yields instead of
/// blocking a worker.
pub async fn wait_for_async(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        fail_after(deadline, what);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fail_after(deadline: Instant, what: &str) {
    if Instant::now() < deadline {
        return;
    }
    let logs: Vec<String> = STARTED_LOGS.with(|logs| {
        logs.borrow()
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
                format!(
                    "--- {} (last {LOG_TAIL_LINES} lines)\n{tail}",
                    path.display()
                )
            })
            .collect()
    });
    panic!("timed out waiting for {what}\n{}", logs.join("\n"));
}

/// How much of each bot's log a timeout shows.
const LOG_TAIL_LINES: usize = 200;

thread_local! {
    /// The log files of the bots started on this thread: each test runs on its own.
    static STARTED_LOGS: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `body` POSTed to `/slack/commands` on 127.0.0.1:`port`, signed with `secret` as Slack
/// signs it: the raw HTTP answer, or `None` if the connection failed or stayed silent 5 s.
pub fn post_signed_command(port: u16, secret: &str, body: &str) -> Option<String> {
    post_signed(port, secret, "/slack/commands", body)
}

/// A click on a posted message, POSTed to `/slack/interactions` signed as Slack signs it.
pub fn post_signed_click(port: u16, secret: &str, payload: &serde_json::Value) -> Option<String> {
    let body = format!(
        "payload={}",
        form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    );
    post_signed(port, secret, "/slack/interactions", &body)
}

/// An Events API body (JSON) POSTed to `/slack/events`, signed as Slack signs it.
pub fn post_signed_event(port: u16, secret: &str, event: &serde_json::Value) -> Option<String> {
    post_signed_as(
        port,
        secret,
        ("/slack/events", "application/json"),
        &event.to_string(),
    )
}

/// `body` POSTed to `path` on 127.0.0.1:`port`, signed with `secret`.
fn post_signed(port: u16, secret: &str, path: &str, body: &str) -> Option<String> {
    post_signed_as(
        port,
        secret,
        (path, "application/x-www-form-urlencoded"),
        body,
    )
}

fn post_signed_as(
    port: u16,
    secret: &str,
    (path, content_type): (&str, &str),
    body: &str,
) -> Option<String> {
    let timestamp = chrono::Utc::now().timestamp();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nX-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        super::slack_signature(secret, timestamp, body)
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// A `/kpi <text>` form as Slack posts it, its answer going to `response_url`.
pub fn command_form(text: &str, user: &str, channel: (&str, &str), response_url: &str) -> String {
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "command=%2Fkpi&text={}&user_id={user}&channel_id={}&channel_name={}&response_url={}",
        encode(text),
        channel.0,
        channel.1,
        encode(response_url)
    )
}

/// A `kpibot serve` process, killed if a test fails before stopping it.
pub struct Running(pub Child);

impl Running {
    /// Sends the signal `name` (TERM, STOP, CONT, …) with the shell's own `kill`, so no
    /// procps package is needed; panics if it could not be sent.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{name} {}", self.0.id())])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name} {} failed", self.0.id());
    }

    pub fn sigkill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM, then the exit status.
pub fn terminate(mut running: Running) -> std::process::ExitStatus {
    running.signal("TERM");
    running.0.wait().unwrap()
}

pub fn setup(reports: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("reports")).unwrap();
    for (name, text) in reports {
        std::fs::write(dir.path().join("reports").join(name), text).unwrap();
    }
    dir
}

/// Seeds the kill schedule; printed so a failure can be replayed.
pub fn seed() -> u64 {
    std::env::var("KPIBOT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// How many times each slot was posted to `channel`, by the slot its metadata names.
pub fn posts_per_slot(slack: &FakeSlack, channel: &str) -> BTreeMap<String, usize> {
    let mut per_slot: BTreeMap<String, usize> = BTreeMap::new();
    for m in slack.messages_in(channel) {
        let slot = m.body["metadata"]["event_payload"]["slot"]
            .as_str()
            .unwrap()
            .to_string();
        *per_slot.entry(slot).or_default() += 1;
    }
    per_slot
}

/// How many times each (report, slot) was posted to `channel`, by its metadata.
pub fn posts_per_report_and_slot(
    slack: &FakeSlack,
    channel: &str,
) -> BTreeMap<(String, String), usize> {
    let mut posts = BTreeMap::new();
    for m in slack.messages_in(channel) {
        let payload = &m.body["metadata"]["event_payload"];
        let key = (
            payload["report_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            payload["slot"].as_str().unwrap_or_default().to_string(),
        );
        *posts.entry(key).or_insert(0) += 1;
    }
    posts
}

/// Runs one ledger call from a plain test.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

//! Helpers shared by the integration tests: a fixed clock and settings in a temp folder.
#![allow(dead_code)]

pub mod bot;
pub mod chromium;
pub mod fake_bigquery;
pub mod fake_slack;
pub mod golden;
pub mod morning;
pub mod postgres;
pub mod slack_limits;
pub mod studio;

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use kpibot::app::App;
use kpibot::settings::Settings;

/// 2026-11-25 16:30 UTC: already 2026-11-26 (a Thursday) in Tokyo, still the 25th in UTC.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 16, 30, 0).unwrap()
}

/// Yesterday in Tokyo, the bot's timezone, at `now`: the last day a test's demo mart must
/// hold for the bot's "yesterday" to have data. (UTC's yesterday is a day short from 15:00
/// to 24:00 UTC, when Tokyo is already a day ahead.)
pub fn tokyo_yesterday(now: DateTime<Utc>) -> chrono::NaiveDate {
    kpibot::pipeline::today_in(chrono_tz::Asia::Tokyo, now) - chrono::Days::new(1)
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Default settings, with the demo mart and output inside `dir`.
pub fn settings_in(dir: &Path, reports: &Path) -> Settings {
    let mut settings = Settings::default();
    settings.reports.dir = reports.to_path_buf();
    settings.warehouse.duckdb.path = dir.join("demo.duckdb");
    settings.delivery.folder = dir.join("out");
    settings
}

/// The DuckDB file at `path`, opened read-only: the tests' own view of a mart, beside
/// kpibot's.
pub fn read_only_duckdb(path: &Path) -> duckdb::Connection {
    duckdb::Connection::open_with_flags(
        path,
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap()
}

/// The app assembled from `settings`, as the CLI assembles it.
pub fn app(settings: &Settings) -> App {
    App::new(settings.clone()).expect("valid settings")
}

/// How `kpibot ask` sets up a question (no cache, ledger or meter; every table allowed),
/// at `now`, answered in `locale`, with no window or row limits. A test that needs the
/// settings' limits sets `limits` on the result.
pub fn cli_context<'a>(
    app: &App,
    catalog: &'a kpibot::catalog::Catalog,
    warehouse: &'a dyn kpibot::warehouse::Warehouse,
    now: DateTime<Utc>,
    locale: kpibot::i18n::Locale,
) -> kpibot::adhoc::Context<'a> {
    kpibot::adhoc::Context {
        catalog,
        warehouse,
        trigger: kpibot::warehouse::Trigger::Cli,
        timezone: app.timezone,
        now,
        timeout: app.slash_timeout,
        policy: kpibot::adhoc::AccessPolicy::Allow,
        limits: Default::default(),
        cache: None,
        ledger: None,
        slack: None,
        meter: None,
        fresh: false,
        locale,
        fiscal_year_start_month: app.fiscal_year_start_month,
        follows: None,
    }
}

/// Runs `start` on a thread of its own with its own runtime, which keeps serving what it
/// started; returns what `start` built. For the fakes of tests that run the real binary
/// from synchronous code.
pub fn start_in_background<T, F>(start: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tx.send(start().await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// A gate a test opens once what it stages has happened: whatever waits at it (a held
/// fake call) goes on then, not after a guessed delay. Clones are the same gate.
#[derive(Clone, Debug)]
pub struct Gate(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Lets everything waiting (and all that comes later) through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Returns once the gate is open.
    pub async fn passed(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A minimal RFC 4180 reader: rows of fields, quotes and doubled quotes handled.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Slack's request signature: `v0=` + hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}")).
pub fn slack_signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs the real `kpibot` binary in `dir` with the demo mart there, no Slack token unless
/// `env` gives one; returns (success, stdout, stderr).
pub fn run_kpibot(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kpibot"))
        .args(args)
        .current_dir(dir)
        .env_remove("KPIBOT__SLACK__BOT_TOKEN")
        .env("KPIBOT__WAREHOUSE__DUCKDB__PATH", dir.join("demo.duckdb"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The actions block of a posted message: its `block_id` (the question it answers).
pub fn actions_block_id(message: &serde_json::Value) -> String {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["block_id"].as_str())
        .unwrap_or_else(|| panic!("no actions block in {message}"))
        .to_string()
}

/// A `block_actions` payload as Slack sends it for a click on `message` (posted in
/// `channel` at `ts`): the whole message, the container, the user and the action.
pub fn block_actions_payload(
    user: &str,
    (channel, channel_name): (&str, &str),
    (message, ts): (&serde_json::Value, &str),
    action: serde_json::Value,
) -> serde_json::Value {
    let mut shown = message.clone();
    if let Some(m) = shown.as_object_mut() {
        m.remove("channel");
        m.remove("metadata");
    }
    shown["type"] = serde_json::json!("message");
    shown["ts"] = serde_json::json!(ts);
    shown["user"] = serde_json::json!("U0KPIBOT");
    serde_json::json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T0FAKE"},
        "api_app_id": "A0KPIBOT",
        "token": "legacy",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": "1700000000.123456.abcdef",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": channel_name},
        "message": shown,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0FAKE/1/unused",
        "actions": [action],
    })
}

/// A click on one of the menus: `static_select` with the chosen option.
pub fn menu_choice(action_id: &str, block_id: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "static_select", "action_id": action_id, "block_id": block_id,
        "selected_option": {"text": {"type": "plain_text", "text": value, "emoji": true}, "value": value},
        "placeholder": {"type": "plain_text", "text": "Period", "emoji": true},
        "action_ts": "1700000001.000100",
    })
}

/// A click on a button.
pub fn button_click(action_id: &str, block_id: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "button", "action_id": action_id, "block_id": block_id,
        "text": {"type": "plain_text", "text": value, "emoji": true}, "value": value,
        "action_ts": "1700000001.000100",
    })
}

/// The text of each context line in a posted message, top to bottom (the first may say who
/// asked or why it is private; the last is the small print: window, source, report).
pub fn context_lines(message: &serde_json::Value) -> Vec<String> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "context")
        .filter_map(|b| b["elements"][0]["text"].as_str().map(str::to_string))
        .collect()
}

/// `reports/` as Kubernetes mounts a ConfigMap: the files in a timestamped folder, `..data`
/// linked to it, and one link per file (`x.toml -> ..data/x.toml`).
pub fn configmap_volume(into: &std::path::Path, stamp: &str, from: &std::path::Path) -> usize {
    use std::os::unix::fs::symlink;
    let folder = into.join(format!("..{stamp}"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_owned();
            std::fs::copy(&path, folder.join(&name)).unwrap();
            names.push(name);
        }
    }
    symlink(format!("..{stamp}"), into.join("..data")).unwrap();
    for name in &names {
        symlink(std::path::Path::new("..data").join(name), into.join(name)).unwrap();
    }
    names.len()
}

/// The text of every mrkdwn text object in a Block Kit message, and its top-level `text`
/// (notifications read it as mrkdwn too).
pub fn mrkdwn_texts(message: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(serde_json::Value::as_str) == Some("mrkdwn")
                    && let Some(text) = map.get("text").and_then(serde_json::Value::as_str)
                {
                    out.push(text.to_string());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out: Vec<String> = message["text"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    walk(&message["blocks"], &mut out);
    out
}

/// Consecutive days grouped into (first, last) spans: when an alert held, as a reader
/// says it.
pub fn spans(days: &[chrono::NaiveDate]) -> Vec<(chrono::NaiveDate, chrono::NaiveDate)> {
    let mut out: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = Vec::new();
    for day in days {
        match out.last_mut() {
            Some((_, last)) if *last + chrono::Days::new(1) == *day => *last = *day,
            _ => out.push((*day, *day)),
        }
    }
    out
}

/// A copy of the example `reports/` folder at `dir/reports`, for a test that adds to it.
pub fn copy_reports(dir: &Path) -> PathBuf {
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    for entry in std::fs::read_dir(repo_path("reports")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, reports.join(path.file_name().unwrap())).unwrap();
    }
    reports
}

/// The example reports over a demo mart built in `dir` at [`fixed_now`]: the settings,
/// the app, its catalog and its warehouse, as `kpibot ask` assembles them.
pub struct Demo {
    pub settings: Settings,
    pub app: App,
    pub catalog: kpibot::catalog::Catalog,
    pub warehouse: Box<dyn kpibot::warehouse::Warehouse>,
}

pub async fn demo(dir: &Path, reports: &Path) -> Demo {
    let settings = settings_in(dir, reports);
    let app = app(&settings);
    let catalog = app.load_catalog().unwrap();
    let warehouse = app
        .open_warehouse(fixed_now(), &mut Vec::new())
        .await
        .unwrap();
    Demo {
        settings,
        app,
        catalog,
        warehouse,
    }
}

/// A paced post's target, from its flat metadata (`target_value`, … as strings) back into
/// one object of numbers and text.
pub fn target_of(payload: &serde_json::Value) -> serde_json::Value {
    let mut target = serde_json::Map::new();
    for (key, value) in payload.as_object().into_iter().flatten() {
        let Some(name) = key.strip_prefix("target_") else {
            continue;
        };
        let text = value.as_str().unwrap_or_default();
        let value = match (text.parse::<u64>(), text.parse::<f64>()) {
            (Ok(n), _) => serde_json::json!(n),
            (_, Ok(x)) => serde_json::json!(x),
            _ => serde_json::json!(text),
        };
        target.insert(name.to_string(), value);
    }
    if target.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Object(target)
    }
}

/// The demo incident's days (Fukuoka's outage) as a window, for a mart whose last day is
/// `data_through`.
pub fn incident_window(data_through: chrono::NaiveDate) -> kpibot::spec::Window {
    let (start, end) = kpibot::warehouse::demo::incident_days(data_through);
    kpibot::spec::Window { start, end }
}

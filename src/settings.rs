//! Process settings: defaults, then an optional `kpibot.toml`, then `KPIBOT__SECTION__KEY`
//! environment variables. Secrets never print. One cohesive thing: every setting with its
//! default and its documentation, read in one place (`app` types them).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};

use crate::i18n::Locale;

/// The settings file read when `--config` is not given (optional).
pub const DEFAULT_SETTINGS_FILE: &str = "kpibot.toml";
/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "KPIBOT";
/// What a secret prints as.
pub const REDACTED: &str = "[redacted]";
/// Slack's documented sustained rate for posting into one channel: one post per second.
pub const SLACK_CHANNEL_POST_INTERVAL_MS: u64 = 1000;
/// Where the operations endpoints listen unless `http.ops_listen` says otherwise: this
/// host only, the port the deploy files give them.
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:9090";

/// A secret value (token, signing secret). It prints and serializes as `[redacted]`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Timezone of reports that do not name one. Default `Asia/Tokyo`.
    pub timezone: String,
    /// The language kpibot writes in (`en` or `ja`), for reports that do not state a
    /// `locale` and for owners; `/kpi` answers use the asker's Slack language. Default `en`.
    pub locale: String,
    /// The month (1–12) the company's fiscal year starts in: what `/kpi … 今年度`, `上期`
    /// and `Q3` mean. Default 4 (April) where `locale` is `ja`, else 1.
    pub fiscal_year_start_month: Option<u32>,
    pub reports: ReportsSettings,
    pub warehouse: WarehouseSettings,
    pub delivery: DeliverySettings,
    pub slack: SlackSettings,
    pub ledger: LedgerSettings,
    pub http: HttpSettings,
    pub scheduler: SchedulerSettings,
    pub log: LogSettings,
    pub slash: SlashSettings,
    pub limits: LimitsSettings,
    pub alerts: AlertsSettings,
    pub cost: CostSettings,
    pub dbt: DbtSettings,
    pub follows: FollowSettings,
    pub studio: StudioSettings,
}

/// `kpibot studio`, the authors' local web page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StudioSettings {
    /// Where it listens. Default `127.0.0.1:8787` (this machine only).
    pub listen: String,
    /// Required to listen anywhere but this machine: the page is opened with `?token=…`.
    pub token: Option<Secret>,
    /// The longest range an alert's page replays, in days. Default 366.
    pub backtest_days_max: u32,
    /// Recent runs shown on a report's page, from the ledger. Default 10.
    pub runs_shown: u32,
    /// The workspace's address (`https://acme.slack.com`), to link a run's post when the
    /// ledger holds no permalink for it. Default none: such runs show channel and time.
    pub slack_url: Option<String>,
}

impl Default for StudioSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            token: None,
            backtest_days_max: 366,
            runs_shown: 10,
            slack_url: None,
        }
    }
}

/// Slack's limit on blocks in one message; a digest shows two per question.
pub const DIGEST_QUESTIONS_MAX: u32 = 24;

/// Following questions from Slack (`/kpi follow`) and the digests they are delivered in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FollowSettings {
    /// Questions one person may follow. Default 20; at most 24, as every question of a
    /// digest takes two of the 50 blocks Slack allows in a message.
    pub max_per_person: u32,
    /// Questions one channel may follow. Default 20 (at most 24, likewise).
    pub max_per_channel: u32,
    /// Follows in all. Default 50000.
    pub max_total: u32,
    /// The time of day a follow is due when it does not say (`HH:MM`, the follower's own
    /// Slack timezone). Default `09:00`.
    pub default_time: String,
    /// How long after its slot a digest missed while kpibot was down is still sent, in
    /// minutes (only the newest missed one). Default 360.
    pub catch_up_minutes: u32,
    /// Digests one process prepares at once. Default 8.
    pub max_concurrent_digests: usize,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            max_per_person: 20,
            max_per_channel: 20,
            max_total: 50_000,
            default_time: "09:00".into(),
            catch_up_minutes: 360,
            max_concurrent_digests: 8,
        }
    }
}

/// dbt's artifacts: every metric of its semantic layer becomes a kpibot metric under its
/// dbt name, with the descriptions of its tables and columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DbtSettings {
    /// `target/semantic_manifest.json`, as `dbt parse` writes it. Default: none.
    pub semantic_manifest: Option<PathBuf>,
    /// `target/manifest.json`, for descriptions of tables and columns. Default: none.
    pub manifest: Option<PathBuf>,
}

/// BigQuery's on-demand price per TiB scanned in US dollars (`cost.price_per_tib_usd`).
pub const DEFAULT_PRICE_PER_TIB_USD: f64 = 6.25;

/// What queries cost and the daily budgets they are checked against (BigQuery; DuckDB
/// bills nothing). A budget of 0 is none. A day starts at midnight in `timezone`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostSettings {
    /// Dollars per TiB scanned, for the estimated price shown beside bytes. Default 6.25
    /// (BigQuery on-demand).
    pub price_per_tib_usd: f64,
    /// Bytes one report's scheduled runs may scan a day. Default 0 (no budget).
    pub report_bytes_per_day: u64,
    /// Bytes one person's `/kpi` questions and button clicks may scan a day. Default 0.
    pub person_bytes_per_day: u64,
    /// Bytes one alert's evaluations may scan a day. Default 0.
    pub alert_bytes_per_day: u64,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            price_per_tib_usd: DEFAULT_PRICE_PER_TIB_USD,
            report_bytes_per_day: 0,
            person_bytes_per_day: 0,
            alert_bytes_per_day: 0,
        }
    }
}

/// Bounds on alerts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSettings {
    /// Instances (dimension values) one alert may track unless it sets `max_instances`;
    /// past it the rest are dropped and the owner told. Default 50.
    pub max_instances: u32,
    /// Days `kpibot alerts backtest` replays when no `--since` is given. Default 60.
    pub backtest_days: u32,
    /// Small charts in one digest message; the rest are listed as text. Default 6.
    pub digest_charts: u32,
    /// Alerts one process evaluates at once when many fall due together (their queries
    /// also share `warehouse.max_concurrent_queries`). Default 16.
    pub max_concurrent_evaluations: usize,
}

impl Default for AlertsSettings {
    fn default() -> Self {
        Self {
            max_instances: 50,
            backtest_days: 60,
            digest_charts: 6,
            max_concurrent_evaluations: 16,
        }
    }
}

/// Bounds on the work one question or report may ask for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// No window starts before this date (YYYY-MM-DD). Default `2000-01-01`.
    pub earliest_date: String,
    /// No window ends more than this many days after today. Default 365.
    pub latest_days_ahead: u32,
    /// The longest window, in days. Default 1096 (three years).
    pub max_window_days: u32,
    /// Rows one query may return; past it the run fails naming this limit. Default 100000.
    pub max_rows: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            earliest_date: "2000-01-01".into(),
            latest_days_ahead: 365,
            max_window_days: 1096,
            max_rows: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AccessPolicy {
    /// Anyone in the workspace may ask for reports and metrics without allow-lists.
    Allow,
    /// Only allow-listed channels, users and groups may ask.
    Deny,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditTo {
    /// The `audit_log` file, rotated by size.
    File,
    /// Standard output.
    Stdout,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SlashTransport {
    /// Slack POSTs to `/slack/commands` (needs a public URL and the signing secret).
    Http,
    /// Socket Mode over the app-level token `KPIBOT__SLACK__APP_TOKEN` (no public URL).
    Socket,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlashSettings {
    /// How slash commands arrive: `http` (default) or `socket`.
    pub transport: SlashTransport,
    /// Who may ask when a report or metric has no allow-lists: `allow` (default) or `deny`.
    pub default_policy: AccessPolicy,
    /// One JSON line per ad-hoc request. Default `data/audit.jsonl`.
    pub audit_log: PathBuf,
    /// Where audit lines go: `file` (default: `audit_log`, rotated by size) or `stdout`
    /// (one JSON object per line, for Cloud Run's and Kubernetes' log collectors).
    pub audit_to: AuditTo,
    /// The audit file is rotated once it would grow past this many bytes. Default 10 MiB.
    pub audit_max_bytes: u64,
    /// Rotated audit files kept (`audit.jsonl.1` …). Default 5.
    pub audit_files_kept: usize,
    /// Longest an ad-hoc query may run, in seconds. Default 30.
    pub query_timeout_seconds: u64,
    /// Questions that need the warehouse, per person per minute. Default 10.
    pub max_questions_per_minute: usize,
    /// Ad-hoc queries running at once; later ones wait. Default 4.
    pub max_concurrent_queries: usize,
    /// Answered queries kept for reuse (10 minutes each). Default 256.
    pub cache_entries: usize,
}

impl Default for SlashSettings {
    fn default() -> Self {
        Self {
            transport: SlashTransport::Http,
            default_policy: AccessPolicy::Allow,
            audit_log: "data/audit.jsonl".into(),
            audit_to: AuditTo::File,
            audit_max_bytes: 10 * 1024 * 1024,
            audit_files_kept: 5,
            query_timeout_seconds: 30,
            max_questions_per_minute: 10,
            max_concurrent_queries: 4,
            cache_entries: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSettings {
    /// The run ledger (SQLite, WAL) when `url` is not set. Default `data/ledger.sqlite`.
    pub path: PathBuf,
    /// A PostgreSQL ledger shared by replicas (`postgres://USER:PASSWORD@HOST/DB`, a
    /// Unix-socket `?host=/cloudsql/…`, `sslmode=require|verify-full`). Unset: SQLite.
    pub url: Option<Secret>,
    /// Connections each process keeps to PostgreSQL at most. Default 16.
    pub pool_size: usize,
    /// How long one ledger statement (or a new connection) may take before the ledger
    /// counts as unavailable. Default 5000 ms.
    pub timeout_ms: u64,
    /// How long a statement may queue for a pooled connection while all are busy (a busy
    /// ledger is not an unavailable one: a due minute of thousands of slots queues here).
    /// Default 60000 ms.
    pub pool_wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Where `serve` listens for Slack: `/slack/…`, and `/healthz` (it says only "ok",
    /// and single-port platforms probe it here). Default `127.0.0.1:3000`.
    pub listen: String,
    /// Where the operations endpoints listen: `/healthz`, `/readyz` (whose detail names
    /// ledger and warehouse errors) and `/metrics`. Default `127.0.0.1:9090`: this host
    /// only; `0.0.0.0:9090` for probes and a scraper from elsewhere (Kubernetes).
    pub ops_listen: String,
    /// Also serve `/readyz` and `/metrics` on `listen`, for a platform whose probes or
    /// scraper reach only that port. Default false: they never face the internet.
    pub ops_on_public_listener: bool,
    /// On SIGTERM, how long the listeners keep answering (with `/readyz` already "not
    /// ready") so a load balancer stops sending requests before they close: no `/kpi`
    /// is refused during a rolling restart. Default 5.
    pub drain_seconds: u64,
    /// Once both listeners are bound, `serve` writes their addresses here (`listen=…` and
    /// `ops_listen=…`, one a line): how a supervisor or test that asks for port 0 learns
    /// the ports the system chose. Default none: nothing is written.
    pub address_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Slots missed by at most this long run after downtime; older ones are skipped.
    /// A schedule's `catch_up_hours` overrides it. Default 6.
    pub catch_up_hours: u64,
    /// A running slot's claim lasts this long unless its process renews it; after that,
    /// another process may recover it. Default 60.
    pub lease_seconds: u64,
    /// On SIGTERM, how long in-flight posts may take to finish. Default 30.
    pub shutdown_grace_seconds: u64,
    /// How long a report query that fails transiently (timeouts, warehouse unavailable)
    /// keeps being retried, with backoff, before the slot fails and its owner is told.
    /// Default 1800 s (30 minutes).
    pub warehouse_outage_seconds: u64,
    /// First wait before retrying such a query, doubling up to a minute. Default 2000 ms.
    pub warehouse_retry_base_ms: u64,
    /// How often `reports/` is checked for changes, in ms. Default 2000.
    pub reload_interval_ms: u64,
    /// First wait, in seconds, before looking again for an interrupted slot's post when
    /// Slack could not say whether it exists (doubling each time). Default 30.
    pub recovery_retry_seconds: u64,
    /// Slots one process runs at once (claimed, queried, rendered, posted). A due minute's
    /// other slots wait unclaimed, so replicas with room take them. Default 32.
    pub max_concurrent_runs: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` (default) or `json` (one object per line, for log collectors).
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `kpibot=debug`. Default `info`. `RUST_LOG` wins.
    pub level: String,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            path: "data/ledger.sqlite".into(),
            url: None,
            pool_size: 16,
            timeout_ms: 5_000,
            pool_wait_ms: 60_000,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            ops_listen: DEFAULT_OPS_LISTEN.into(),
            ops_on_public_listener: false,
            drain_seconds: 5,
            address_file: None,
        }
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            catch_up_hours: 6,
            lease_seconds: 60,
            shutdown_grace_seconds: 30,
            warehouse_outage_seconds: 1800,
            warehouse_retry_base_ms: 2000,
            reload_interval_ms: 2000,
            recovery_retry_seconds: 30,
            max_concurrent_runs: 32,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSettings {
    /// Folder of report specs. Default `reports`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WarehouseKind {
    /// The embedded DuckDB database (the default).
    Duckdb,
    /// Google BigQuery.
    Bigquery,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSettings {
    /// `duckdb` (default) or `bigquery`.
    pub kind: WarehouseKind,
    /// Longest a report query may run, unless its spec says otherwise. Default 60.
    pub query_timeout_seconds: u64,
    /// Queries one `serve` process runs at once (scheduled runs, alerts and `/kpi`
    /// together); the rest queue. Default 32: three replicas stay inside BigQuery's usual
    /// interactive concurrency of about 100 a project.
    pub max_concurrent_queries: usize,
    pub duckdb: DuckDbSettings,
    pub bigquery: BigQuerySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BigQuerySettings {
    /// The Google Cloud project jobs run (and are billed) in. Required for `bigquery`.
    pub project: String,
    /// The dataset unqualified table names resolve in. Default none: reports name
    /// `dataset.table`.
    pub dataset: String,
    /// Where jobs run, e.g. `asia-northeast1` or `US`. Default: BigQuery chooses from the
    /// tables read.
    pub location: Option<String>,
    /// An emulator or proxy base URL, e.g. `http://127.0.0.1:9050`; no authentication is
    /// sent unless `credentials_file` is set. Default Google's endpoint.
    pub endpoint: Option<String>,
    /// A service-account key file. Default: application default credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud user credentials, or the metadata server).
    pub credentials_file: Option<PathBuf>,
    /// Bytes a job may bill unless its report sets `[query] maximum_bytes_billed`.
    /// Default 10 GiB. BigQuery bills at least 10 MiB per table read.
    pub maximum_bytes_billed: u64,
}

impl Default for BigQuerySettings {
    fn default() -> Self {
        Self {
            project: String::new(),
            dataset: String::new(),
            location: None,
            endpoint: None,
            credentials_file: None,
            maximum_bytes_billed: 10 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DuckDbSettings {
    /// The database file. Default `data/demo.duckdb`, the demo mart.
    pub path: PathBuf,
    /// Build (or refresh) the demo mart in `path` before running. Default true.
    pub demo_mart: bool,
    /// Parquet or CSV files kpibot attaches as tables `extracts.<name>` when it opens the
    /// database (name → file). Report SQL itself cannot read files. Default none.
    pub extracts: std::collections::BTreeMap<String, PathBuf>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// Slack when a bot token is set, otherwise the folder (the default).
    Auto,
    /// Write PNG, JSON and CSV files to a folder.
    Folder,
    /// Post to Slack.
    Slack,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// `auto` (default: Slack when KPIBOT__SLACK__BOT_TOKEN is set, else the folder),
    /// `folder` or `slack`.
    pub kind: DeliveryKind,
    /// Output folder of folder delivery. Default `out`.
    pub folder: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// Bot token (`xoxb-…`). No default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Secret>,
    /// Signing secret for slash-command requests. No default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<Secret>,
    /// App-level token (`xapp-…`) for Socket Mode. No default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token: Option<Secret>,
    /// Base URL of the Slack Web API. Default `https://slack.com/api`. Plain `http://` is
    /// accepted only for 127.0.0.1 (a local test server).
    pub api_url: String,
    /// Longest wait for one Slack API answer. Default 30.
    pub request_timeout_seconds: u64,
    /// How long a post keeps being retried before its owner is told it failed. Default 300.
    pub retry_deadline_seconds: u64,
    /// Shortest time between two posts to one channel, in ms. Default 1000 (Slack's limit).
    pub channel_post_interval_ms: u64,
    /// Posts in flight at once across all channels. Default 16.
    pub max_concurrent_posts: usize,
    /// Calls a minute kpibot makes of each Slack rate-limit tier's methods, workspace-wide
    /// per process. Tier 1 (`conversations.history`, `.replies`): default 1, Slack's limit
    /// for commercially distributed apps outside the Marketplace; 50 for an internal app.
    pub tier1_per_minute: u32,
    /// Tier 2 (`conversations.list`, `usergroups.list`). Default 20.
    pub tier2_per_minute: u32,
    /// Tier 3 (`chat.update`, `conversations.open`). Default 50.
    pub tier3_per_minute: u32,
    /// Tier 4 (file uploads, `chat.getPermalink`, `users.info`). Default 100.
    pub tier4_per_minute: u32,
}

/// The fiscal year's first month where the bot's language is Japanese (April).
pub const JAPANESE_FISCAL_YEAR_START_MONTH: u32 = 4;

impl Default for Settings {
    fn default() -> Self {
        Self {
            timezone: "Asia/Tokyo".into(),
            locale: "en".into(),
            fiscal_year_start_month: None,
            reports: ReportsSettings::default(),
            warehouse: WarehouseSettings::default(),
            delivery: DeliverySettings::default(),
            slack: SlackSettings::default(),
            ledger: LedgerSettings::default(),
            http: HttpSettings::default(),
            scheduler: SchedulerSettings::default(),
            log: LogSettings::default(),
            slash: SlashSettings::default(),
            limits: LimitsSettings::default(),
            alerts: AlertsSettings::default(),
            cost: CostSettings::default(),
            dbt: DbtSettings::default(),
            follows: FollowSettings::default(),
            studio: StudioSettings::default(),
        }
    }
}

impl Default for ReportsSettings {
    fn default() -> Self {
        Self {
            dir: "reports".into(),
        }
    }
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        Self {
            kind: WarehouseKind::Duckdb,
            query_timeout_seconds: 60,
            max_concurrent_queries: 32,
            duckdb: DuckDbSettings::default(),
            bigquery: BigQuerySettings::default(),
        }
    }
}

impl Default for DuckDbSettings {
    fn default() -> Self {
        Self {
            path: "data/demo.duckdb".into(),
            demo_mart: true,
            extracts: Default::default(),
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            kind: DeliveryKind::Auto,
            folder: "out".into(),
        }
    }
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            bot_token: None,
            signing_secret: None,
            app_token: None,
            api_url: "https://slack.com/api".into(),
            request_timeout_seconds: 30,
            retry_deadline_seconds: 300,
            channel_post_interval_ms: SLACK_CHANNEL_POST_INTERVAL_MS,
            max_concurrent_posts: 16,
            tier1_per_minute: 1,
            tier2_per_minute: 20,
            tier3_per_minute: 50,
            tier4_per_minute: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error(
        "unknown timezone `{0}` in setting `timezone` (KPIBOT__TIMEZONE); use an IANA name such as `Asia/Tokyo`"
    )]
    Timezone(String),
    #[error(
        "unknown language `{0}` in setting `locale` (KPIBOT__LOCALE); kpibot writes `en` or `ja`"
    )]
    Locale(String),
    #[error(
        "`{0}` in setting `fiscal_year_start_month` (KPIBOT__FISCAL_YEAR_START_MONTH) is not a month; write 1–12 (4 for a year starting in April)"
    )]
    FiscalYearStartMonth(u32),
    #[error(
        "`{0}` in setting `limits.earliest_date` (KPIBOT__LIMITS__EARLIEST_DATE) is not a date; write it as YYYY-MM-DD"
    )]
    EarliestDate(String),
}

impl Settings {
    /// Every environment variable the settings understand, e.g. `KPIBOT__SLACK__BOT_TOKEN`.
    pub fn env_var_names() -> Vec<String> {
        fn walk(prefix: String, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, inner) in map {
                        walk(format!("{prefix}__{}", key.to_uppercase()), inner, out);
                    }
                }
                _ => out.push(prefix),
            }
        }
        let mut all = Settings::default();
        all.slack.bot_token = Some(Secret::new("x"));
        all.slack.signing_secret = Some(Secret::new("x"));
        all.slack.app_token = Some(Secret::new("x"));
        let value = serde_json::to_value(&all).expect("settings serialize");
        let mut out = Vec::new();
        walk(ENV_PREFIX.to_string(), &value, &mut out);
        out
    }

    /// Where reports go: `auto` resolved to Slack when a bot token is set.
    pub fn effective_delivery(&self) -> DeliveryKind {
        match self.delivery.kind {
            DeliveryKind::Auto if self.slack.bot_token.is_some() => DeliveryKind::Slack,
            DeliveryKind::Auto => DeliveryKind::Folder,
            kind => kind,
        }
    }

    /// Loads settings from `file` (or `kpibot.toml` if it exists) and the process
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, std::env::vars())
    }

    /// Loads settings from `file` and the given environment (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let (path, required) = match file {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_SETTINGS_FILE), false),
        };
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let settings: Settings = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(required),
            )
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.timezone()?;
        settings.locale()?;
        settings.fiscal_year_start_month()?;
        Ok(settings)
    }

    /// The month the fiscal year starts in: the setting, else April in Japanese, else
    /// January.
    pub fn fiscal_year_start_month(&self) -> Result<u32, SettingsError> {
        match self.fiscal_year_start_month {
            Some(month @ 1..=12) => Ok(month),
            Some(month) => Err(SettingsError::FiscalYearStartMonth(month)),
            None if self.locale()? == Locale::Ja => Ok(JAPANESE_FISCAL_YEAR_START_MONTH),
            None => Ok(1),
        }
    }

    pub fn locale(&self) -> Result<Locale, SettingsError> {
        Locale::parse(&self.locale).ok_or_else(|| SettingsError::Locale(self.locale.clone()))
    }

    pub fn timezone(&self) -> Result<Tz, SettingsError> {
        Tz::from_str(&self.timezone).map_err(|_| SettingsError::Timezone(self.timezone.clone()))
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.warehouse.query_timeout_seconds)
    }

    /// The effective settings as TOML, every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print settings: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_demo_and_folder_delivery() {
        let s = Settings::load_from(Some(Path::new("/nonexistent/kpibot.toml")), env(&[]));
        assert!(s.is_err(), "a named settings file must exist");
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.warehouse.kind, WarehouseKind::Duckdb);
        assert_eq!(s.delivery.kind, DeliveryKind::Auto);
        assert_eq!(s.effective_delivery(), DeliveryKind::Folder);
        assert_eq!(s.delivery.folder, PathBuf::from("out"));
        assert_eq!(s.timezone().unwrap(), chrono_tz::Asia::Tokyo);
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kpibot.toml");
        std::fs::write(
            &file,
            "timezone = \"UTC\"\n[warehouse]\nquery_timeout_seconds = 5\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[
                ("KPIBOT__WAREHOUSE__QUERY_TIMEOUT_SECONDS", "9"),
                ("KPIBOT__DELIVERY__KIND", "slack"),
                ("KPIBOT__SLACK__BOT_TOKEN", "xoxb-very-secret"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.timezone, "UTC");
        assert_eq!(s.warehouse.query_timeout_seconds, 9);
        assert_eq!(s.delivery.kind, DeliveryKind::Slack);
        assert_eq!(
            s.slack.bot_token.as_ref().unwrap().expose(),
            "xoxb-very-secret"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(
            None,
            env(&[("KPIBOT__SLACK__BOT_TOKEN", "xoxb-very-secret")]),
        )
        .unwrap();
        let printed = s.to_redacted_toml();
        assert!(!printed.contains("xoxb-very-secret"), "{printed}");
        assert!(printed.contains(REDACTED));
        assert!(!format!("{s:?}").contains("xoxb-very-secret"));
    }

    #[test]
    fn the_operations_endpoints_default_to_their_own_local_listener() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.http.ops_listen, "127.0.0.1:9090");
        assert!(!s.http.ops_on_public_listener);
        let s = Settings::load_from(
            None,
            env(&[
                ("KPIBOT__HTTP__OPS_LISTEN", "0.0.0.0:9191"),
                ("KPIBOT__HTTP__OPS_ON_PUBLIC_LISTENER", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.ops_listen, "0.0.0.0:9191");
        assert!(s.http.ops_on_public_listener);
        let err =
            Settings::load_from(None, env(&[("KPIBOT__HTTP__OPS_ON_PUBLIC", "true")])).unwrap_err();
        assert!(err.to_string().contains("ops_on_public"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err =
            Settings::load_from(None, env(&[("KPIBOT__WAREHOUSE__KIDN", "duckdb")])).unwrap_err();
        assert!(err.to_string().contains("kidn"), "{err}");
        let err =
            Settings::load_from(None, env(&[("KPIBOT__TIMEZONE", "Asia/Tokio")])).unwrap_err();
        assert!(err.to_string().contains("Asia/Tokio"), "{err}");
        let err =
            Settings::load_from(None, env(&[("KPIBOT__WAREHOUSE__KIND", "oracle")])).unwrap_err();
        assert!(err.to_string().contains("oracle"), "{err}");
    }
}

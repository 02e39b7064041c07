//! `kpibot config --check`: settings that are missing or contradict each other for the
//! chosen delivery and transport, found before the bot starts. `serve` refuses to start
//! on the same errors.

use std::fmt;
use std::net::SocketAddr;

use crate::settings::{DeliveryKind, Settings, SlashTransport, WarehouseKind};
use crate::warehouse::MIN_BILLED_BYTES_PER_TABLE;

/// The schema the demo mart (and the example reports) put their tables in.
const DEMO_SCHEMA: &str = "mart";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The bot cannot do its job this way.
    Error,
    /// It will run, but something probably intended is off.
    Warning,
}

/// One finding: the setting (as its environment variable) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub setting: &'static str,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.setting, self.message)
    }
}

/// Everything wrong with `settings` for running `serve`.
pub fn check(settings: &Settings) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Warnings found while the `error` closure holds `findings`; added at the end.
    let mut warnings = Vec::new();
    let mut error = |setting, message: String| {
        findings.push(Finding {
            level: Level::Error,
            setting,
            message,
        })
    };
    let slack = &settings.slack;
    let bot_token = slack.bot_token.as_ref().map(|t| t.expose());
    if settings.timezone().is_err() {
        error(
            "KPIBOT__TIMEZONE",
            format!(
                "`{}` is not an IANA timezone; write e.g. Asia/Tokyo",
                settings.timezone
            ),
        );
    }
    if !settings.reports.dir.is_dir() {
        error(
            "KPIBOT__REPORTS__DIR",
            format!(
                "{} is not a folder of report specs",
                settings.reports.dir.display()
            ),
        );
    }
    match settings.warehouse.kind {
        WarehouseKind::Bigquery => {
            let bq = &settings.warehouse.bigquery;
            if bq.project.trim().is_empty() {
                error(
                    "KPIBOT__WAREHOUSE__BIGQUERY__PROJECT",
                    "the warehouse is `bigquery` but no project is set: name the Google Cloud project the query jobs run (and are billed) in".into(),
                );
            }
            if bq.maximum_bytes_billed < MIN_BILLED_BYTES_PER_TABLE {
                error(
                    "KPIBOT__WAREHOUSE__BIGQUERY__MAXIMUM_BYTES_BILLED",
                    format!(
                        "{} bytes is below 10485760: BigQuery bills at least 10 MiB for every table a query reads, so every real query would fail",
                        bq.maximum_bytes_billed
                    ),
                );
            }
            match bq.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
                Some(endpoint) => {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        error(
                            "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT",
                            format!(
                                "`{endpoint}` is not an http(s) URL; write e.g. http://127.0.0.1:9050"
                            ),
                        );
                    } else if bq.credentials_file.is_none() {
                        warnings.push(Finding {
                            level: Level::Warning,
                            setting: "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT",
                            message: format!("queries go to {endpoint} without credentials (an emulator); unset it to use Google's BigQuery"),
                        });
                    }
                }
                None => {
                    let from_env = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS");
                    if let Some(path) = from_env
                        .as_ref()
                        .filter(|p| !std::path::Path::new(p).exists())
                    {
                        error(
                            "GOOGLE_APPLICATION_CREDENTIALS",
                            format!(
                                "{} does not exist; point it at the service account's JSON key file",
                                std::path::Path::new(path).display()
                            ),
                        );
                    }
                }
            }
            if let Some(file) = &bq.credentials_file
                && !file.exists()
            {
                error(
                    "KPIBOT__WAREHOUSE__BIGQUERY__CREDENTIALS_FILE",
                    format!(
                        "{} does not exist; point it at the service account's JSON key file",
                        file.display()
                    ),
                );
            }
        }
        WarehouseKind::Duckdb => {
            let duck = &settings.warehouse.duckdb;
            if !duck.demo_mart && !duck.path.exists() {
                error(
                    "KPIBOT__WAREHOUSE__DUCKDB__PATH",
                    format!(
                        "{} does not exist (and KPIBOT__WAREHOUSE__DUCKDB__DEMO_MART is false, so it will not be built)",
                        duck.path.display()
                    ),
                );
            }
            // DuckDB names a database after its file: in `mart.duckdb`, `mart.table` could
            // be the catalog or the schema, and DuckDB refuses to guess.
            let stem = duck
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().to_lowercase());
            if stem.as_deref() == Some(DEMO_SCHEMA) {
                let message = format!(
                    "DuckDB calls the database in {} `{DEMO_SCHEMA}`, the same as the `{DEMO_SCHEMA}` schema, so every `{DEMO_SCHEMA}.table` in a report is ambiguous; name the file differently, e.g. warehouse.duckdb",
                    duck.path.display()
                );
                if duck.demo_mart {
                    error("KPIBOT__WAREHOUSE__DUCKDB__PATH", message);
                } else {
                    warnings.push(Finding {
                        level: Level::Warning,
                        setting: "KPIBOT__WAREHOUSE__DUCKDB__PATH",
                        message,
                    });
                }
            }
        }
    }
    if settings.delivery.kind == DeliveryKind::Slack && bot_token.is_none() {
        error(
            "KPIBOT__SLACK__BOT_TOKEN",
            "delivery is `slack` but no bot token is set: set the app's Bot User OAuth Token (xoxb-…)".into(),
        );
    }
    if let Some(token) = bot_token
        && !token.starts_with("xoxb-")
    {
        error(
            "KPIBOT__SLACK__BOT_TOKEN",
            format!(
                "a bot token starts with xoxb- (this one starts with `{}`); use the Bot User OAuth Token",
                token.chars().take(5).collect::<String>()
            ),
        );
    }
    if let Some(token) = slack.app_token.as_ref().map(|t| t.expose())
        && !token.starts_with("xapp-")
    {
        error(
            "KPIBOT__SLACK__APP_TOKEN",
            "an app-level token starts with xapp- (Basic Information → App-Level Tokens, scope connections:write)".into(),
        );
    }
    if let Err(why) = crate::slack::plain_http_allowed(&slack.api_url) {
        error("KPIBOT__SLACK__API_URL", why);
    }
    let slack_delivery = settings.effective_delivery() == DeliveryKind::Slack;
    match settings.slash.transport {
        SlashTransport::Socket => {
            if slack.app_token.is_none() {
                error(
                    "KPIBOT__SLACK__APP_TOKEN",
                    "Socket Mode (KPIBOT__SLASH__TRANSPORT=socket) needs an app-level token (xapp-…, scope connections:write)".into(),
                );
            }
            if !slack_delivery {
                error(
                    "KPIBOT__SLACK__BOT_TOKEN",
                    "Socket Mode slash commands answer through Slack: set the bot token (xoxb-…)"
                        .into(),
                );
            }
        }
        SlashTransport::Http => {
            if slack.signing_secret.is_some() && !slack_delivery {
                error(
                    "KPIBOT__SLACK__BOT_TOKEN",
                    "a signing secret is set for HTTP slash commands, but they answer through Slack: set the bot token (xoxb-…)".into(),
                );
            }
        }
    }
    let listen = settings.http.listen.parse::<SocketAddr>();
    if listen.is_err() {
        error(
            "KPIBOT__HTTP__LISTEN",
            format!(
                "`{}` is not an address:port, e.g. 0.0.0.0:3000",
                settings.http.listen
            ),
        );
    }
    match settings.http.ops_listen.parse::<SocketAddr>() {
        Err(_) => error(
            "KPIBOT__HTTP__OPS_LISTEN",
            format!(
                "`{}` is not an address:port, e.g. 127.0.0.1:9090",
                settings.http.ops_listen
            ),
        ),
        Ok(ops) if listen.is_ok_and(|l| same_socket(l, ops)) => error(
            "KPIBOT__HTTP__OPS_LISTEN",
            format!(
                "`{}` has the port of KPIBOT__HTTP__LISTEN; the operations endpoints need a port of their own (to serve them on both, set KPIBOT__HTTP__OPS_ON_PUBLIC_LISTENER=true)",
                settings.http.ops_listen
            ),
        ),
        Ok(_) => {}
    }
    if let Some(parent) = settings
        .ledger
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        && std::fs::create_dir_all(parent).is_err()
    {
        error(
            "KPIBOT__LEDGER__PATH",
            format!(
                "cannot create {} for the run ledger; point it at a writable volume",
                parent.display()
            ),
        );
    }
    if slack_delivery
        && settings.slash.transport == SlashTransport::Http
        && slack.signing_secret.is_none()
    {
        findings.push(Finding {
            level: Level::Warning,
            setting: "KPIBOT__SLACK__SIGNING_SECRET",
            message: "no signing secret: /kpi slash commands are off (reports still post)".into(),
        });
    }
    if !slack_delivery {
        findings.push(Finding {
            level: Level::Warning,
            setting: "KPIBOT__SLACK__BOT_TOKEN",
            message: format!(
                "no bot token: reports are written to {} instead of Slack",
                settings.delivery.folder.display()
            ),
        });
    }
    findings.extend(warnings);
    findings
}

/// The errors among `findings`, as one message (for `serve` to refuse with).
pub fn errors(findings: &[Finding]) -> Option<String> {
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .map(|f| format!("  {f}"))
        .collect();
    (!errors.is_empty()).then(|| {
        format!(
            "the settings are not usable (see `kpibot config --check`):\n{}",
            errors.join("\n")
        )
    })
}

/// Two listen addresses that cannot both be bound: one port (not 0, "any free one") on
/// one address, or on every address.
fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

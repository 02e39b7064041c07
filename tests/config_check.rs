//! `kpibot config --check`: each missing or inconsistent setting is found, named by its
//! environment variable, and `serve` refuses to start on the same errors.

mod common;

use kpibot::app::preflight::{Level, check, errors};
use kpibot::settings::Settings;

fn settings(env: &[(&str, &str)]) -> Settings {
    let reports = common::repo_path("reports");
    let mut all = vec![(
        "KPIBOT__REPORTS__DIR".to_string(),
        reports.display().to_string(),
    )];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(None, all).unwrap()
}

/// The (level, setting) pairs found.
fn found(env: &[(&str, &str)]) -> Vec<(Level, &'static str)> {
    check(&settings(env))
        .into_iter()
        .map(|f| (f.level, f.setting))
        .collect()
}

fn has_error(env: &[(&str, &str)], setting: &str) -> bool {
    found(env).contains(&(Level::Error, leak(setting)))
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

const BOT: (&str, &str) = ("KPIBOT__SLACK__BOT_TOKEN", "xoxb-1-2-3");

#[test]
fn the_defaults_are_usable_and_say_where_reports_go() {
    let findings = check(&settings(&[]));
    assert!(errors(&findings).is_none(), "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.level == Level::Warning && f.message.contains("written to out"))
    );
}

#[test]
fn slack_delivery_without_a_bot_token() {
    assert!(has_error(
        &[("KPIBOT__DELIVERY__KIND", "slack")],
        "KPIBOT__SLACK__BOT_TOKEN"
    ));
}

#[test]
fn a_token_of_the_wrong_kind() {
    assert!(has_error(
        &[("KPIBOT__SLACK__BOT_TOKEN", "xoxp-user-token")],
        "KPIBOT__SLACK__BOT_TOKEN"
    ));
    assert!(has_error(
        &[BOT, ("KPIBOT__SLACK__APP_TOKEN", "xoxb-not-an-app-token")],
        "KPIBOT__SLACK__APP_TOKEN"
    ));
}

#[test]
fn http_slash_commands_without_a_signing_secret_are_off_with_a_warning() {
    let findings = found(&[BOT]);
    assert!(findings.contains(&(Level::Warning, "KPIBOT__SLACK__SIGNING_SECRET")));
    assert!(!findings.iter().any(|(l, _)| *l == Level::Error));
}

#[test]
fn a_signing_secret_without_slack_delivery() {
    assert!(has_error(
        &[("KPIBOT__SLACK__SIGNING_SECRET", "s3cret")],
        "KPIBOT__SLACK__BOT_TOKEN"
    ));
}

#[test]
fn socket_mode_without_an_app_token_or_a_bot_token() {
    assert!(has_error(
        &[BOT, ("KPIBOT__SLASH__TRANSPORT", "socket")],
        "KPIBOT__SLACK__APP_TOKEN"
    ));
    assert!(has_error(
        &[
            ("KPIBOT__SLASH__TRANSPORT", "socket"),
            ("KPIBOT__SLACK__APP_TOKEN", "xapp-1")
        ],
        "KPIBOT__SLACK__BOT_TOKEN"
    ));
    let complete = [
        BOT,
        ("KPIBOT__SLASH__TRANSPORT", "socket"),
        ("KPIBOT__SLACK__APP_TOKEN", "xapp-1"),
    ];
    assert!(errors(&check(&settings(&complete))).is_none());
}

#[test]
fn an_insecure_api_url_a_bad_listen_address_and_a_missing_folder() {
    assert!(has_error(
        &[("KPIBOT__SLACK__API_URL", "http://slack.example.com/api")],
        "KPIBOT__SLACK__API_URL"
    ));
    assert!(has_error(
        &[("KPIBOT__HTTP__LISTEN", "port 3000")],
        "KPIBOT__HTTP__LISTEN"
    ));
    assert!(has_error(
        &[("KPIBOT__REPORTS__DIR", "/no/such/folder")],
        "KPIBOT__REPORTS__DIR"
    ));
    assert!(has_error(
        &[
            ("KPIBOT__WAREHOUSE__DUCKDB__DEMO_MART", "false"),
            ("KPIBOT__WAREHOUSE__DUCKDB__PATH", "/no/such.duckdb")
        ],
        "KPIBOT__WAREHOUSE__DUCKDB__PATH"
    ));
}

#[test]
fn the_operations_address_must_be_an_address_and_a_port_of_its_own() {
    assert!(has_error(
        &[("KPIBOT__HTTP__OPS_LISTEN", "port 9090")],
        "KPIBOT__HTTP__OPS_LISTEN"
    ));
    assert!(has_error(
        &[
            ("KPIBOT__HTTP__LISTEN", "0.0.0.0:3000"),
            ("KPIBOT__HTTP__OPS_LISTEN", "127.0.0.1:3000")
        ],
        "KPIBOT__HTTP__OPS_LISTEN"
    ));
    assert!(!has_error(&[], "KPIBOT__HTTP__OPS_LISTEN"));
}

#[test]
fn serve_refuses_to_start_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::repo_path("reports");
    let (ok, _, stderr) = common::run_kpibot(
        &["serve"],
        dir.path(),
        &[
            ("KPIBOT__REPORTS__DIR", reports.to_str().unwrap()),
            ("KPIBOT__DELIVERY__KIND", "slack"),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "error: KPIBOT__SLACK__BOT_TOKEN: delivery is `slack` but no bot token is set"
        ),
        "{stderr}"
    );
    let (ok, stdout, _) = common::run_kpibot(
        &["config", "--check"],
        dir.path(),
        &[
            ("KPIBOT__REPORTS__DIR", reports.to_str().unwrap()),
            ("KPIBOT__DELIVERY__KIND", "slack"),
        ],
    );
    assert!(!ok);
    assert!(
        stdout.contains("1 error(s): `kpibot serve` would refuse to start"),
        "{stdout}"
    );
}

const ON_BIGQUERY: (&str, &str) = ("KPIBOT__WAREHOUSE__KIND", "bigquery");
const PROJECT: (&str, &str) = ("KPIBOT__WAREHOUSE__BIGQUERY__PROJECT", "acme-analytics");
const EMULATOR: (&str, &str) = (
    "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT",
    "http://127.0.0.1:9050",
);

#[test]
fn bigquery_without_a_project() {
    assert!(has_error(
        &[ON_BIGQUERY, EMULATOR],
        "KPIBOT__WAREHOUSE__BIGQUERY__PROJECT"
    ));
    assert!(!has_error(
        &[ON_BIGQUERY, EMULATOR, PROJECT],
        "KPIBOT__WAREHOUSE__BIGQUERY__PROJECT"
    ));
}

#[test]
fn a_bytes_billed_cap_below_bigquerys_minimum_bill() {
    let cap = (
        "KPIBOT__WAREHOUSE__BIGQUERY__MAXIMUM_BYTES_BILLED",
        "1000000",
    );
    let findings = check(&settings(&[ON_BIGQUERY, EMULATOR, PROJECT, cap]));
    let finding = findings
        .iter()
        .find(|f| f.setting == "KPIBOT__WAREHOUSE__BIGQUERY__MAXIMUM_BYTES_BILLED")
        .expect("the cap is flagged");
    assert_eq!(finding.level, Level::Error);
    assert!(finding.message.contains("10 MiB"), "{}", finding.message);
    let enough = (
        "KPIBOT__WAREHOUSE__BIGQUERY__MAXIMUM_BYTES_BILLED",
        "10485760",
    );
    assert!(errors(&check(&settings(&[ON_BIGQUERY, EMULATOR, PROJECT, enough]))).is_none());
}

#[test]
fn a_bigquery_endpoint_that_is_not_a_url_and_a_missing_key_file() {
    assert!(has_error(
        &[
            ON_BIGQUERY,
            PROJECT,
            ("KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT", "127.0.0.1:9050")
        ],
        "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT"
    ));
    assert!(has_error(
        &[
            ON_BIGQUERY,
            PROJECT,
            (
                "KPIBOT__WAREHOUSE__BIGQUERY__CREDENTIALS_FILE",
                "/nonexistent/key.json"
            )
        ],
        "KPIBOT__WAREHOUSE__BIGQUERY__CREDENTIALS_FILE"
    ));
    // An emulator without credentials is allowed, with a word that it is one.
    let findings = check(&settings(&[ON_BIGQUERY, PROJECT, EMULATOR]));
    assert!(errors(&findings).is_none(), "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.level == Level::Warning
                && f.setting == "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT")
    );
}

#[test]
fn a_duckdb_file_named_like_the_mart_schema() {
    // DuckDB would call the database `mart`, and `mart.daily_active_users` is ambiguous.
    assert!(has_error(
        &[("KPIBOT__WAREHOUSE__DUCKDB__PATH", "data/mart.duckdb")],
        "KPIBOT__WAREHOUSE__DUCKDB__PATH"
    ));
    assert!(!has_error(
        &[("KPIBOT__WAREHOUSE__DUCKDB__PATH", "data/warehouse.duckdb")],
        "KPIBOT__WAREHOUSE__DUCKDB__PATH"
    ));
}

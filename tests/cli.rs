//! The `kpibot` binary as a user runs it: exit codes and what it prints.

mod common;

use std::process::Command;

fn kpibot(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    common::run_kpibot(args, dir, &[])
}

#[test]
fn check_reports_every_broken_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = common::repo_path("tests/fixtures/invalid");
    let (ok, stdout, _) = kpibot(&["check", fixtures.to_str().unwrap()], dir.path());
    assert!(!ok, "check must exit non-zero on invalid specs");
    let broken = std::fs::read_dir(&fixtures).unwrap().count();
    assert_eq!(stdout.matches("✗ ").count(), broken, "{stdout}");
    assert!(
        stdout.contains(&format!("{broken} report(s) checked: {broken} invalid")),
        "{stdout}"
    );
    assert!(!stdout.contains("panicked"), "{stdout}");
}

#[test]
fn check_passes_the_example_reports() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::repo_path("reports");
    let (ok, stdout, stderr) = kpibot(&["check", reports.to_str().unwrap()], dir.path());
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("all valid"), "{stdout}");
    assert!(
        stdout.contains("next post ") && stdout.contains("(Asia/Tokyo) → #kpi-daily"),
        "{stdout}"
    );
}

#[test]
fn check_reads_a_configmap_volume_once_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("reports");
    let files = common::configmap_volume(
        &mounted,
        "2026_12_05_10_00_00.123456789",
        &common::repo_path("reports"),
    );
    assert_eq!(files, 14, "the example reports");
    let (ok, stdout, stderr) = kpibot(&["check", mounted.to_str().unwrap()], dir.path());
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{files} report(s) checked: all valid")),
        "{stdout}"
    );
    // Each file under the name a person gave it, never through the mount's bookkeeping.
    assert!(!stdout.contains(".."), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "✓ {}  (",
            mounted.join("daily_active_users.toml").display()
        )),
        "{stdout}"
    );
}

#[test]
fn check_dry_run_catches_columns_and_sql_errors_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = common::repo_path("tests/fixtures/dry_run");
    let (ok, stdout, stderr) = kpibot(
        &["check", "--dry-run", fixtures.to_str().unwrap()],
        dir.path(),
    );
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("wrong_column.toml:21:5: error: `chart.y` names column `user`, which the query does not return"),
        "{stdout}"
    );
    assert!(stdout.contains("did you mean `users`?"), "{stdout}");
    assert!(
        stdout.contains("`chart.series` names column `role`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad_sql.toml:14:1: error: the warehouse rejected the query"),
        "{stdout}"
    );
    assert!(stdout.contains("activity_day"), "{stdout}");
    // A metric's generated query points at the metric's `table`.
    assert!(
        stdout.contains("bad_metric.toml:6:9: error: metric `active_users_typo`: the warehouse rejected its query"),
        "{stdout}"
    );
}

#[test]
fn config_prints_effective_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kpibot"))
        .arg("config")
        .current_dir(dir.path())
        .env("KPIBOT__SLACK__BOT_TOKEN", "xoxb-123-456-secret")
        .env("KPIBOT__DELIVERY__FOLDER", "elsewhere")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("xoxb-123-456-secret"), "{stdout}");
    assert!(stdout.contains("bot_token = \"[redacted]\""), "{stdout}");
    assert!(stdout.contains("folder = \"elsewhere\""), "{stdout}");
    assert!(stdout.contains("timezone = \"Asia/Tokyo\""), "{stdout}");
}

#[test]
fn a_bad_setting_is_named_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kpibot"))
        .arg("config")
        .current_dir(dir.path())
        .env("KPIBOT__WAREHOUSE__KIND", "oracle")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("oracle"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

//! `kpibot check` and `kpibot run` as a report author meets them, on the forms of SQL that
//! used to read covered data unnoticed: a table function, `query(…)`, `COLUMNS(…)`, and a
//! view in the mart that renames the covered column. Each is refused at `check` — by the
//! planner when the warehouse file is there, by the parser (naming the construct) when it
//! is not — and `run --channel` will not post it where the policy does not allow.

mod common;

use std::path::Path;

const POLICY: &str = r##"[[policy]]
name = "prefecture_detail"
table = "mart.daily_active_users"
columns = ["prefecture"]
owner = "#data-team"
allowed_channels = ["#data-team", "#sales"]
"##;

/// A report with `sql` that posts to #general.
fn report(sql: &str) -> String {
    format!(
        r##"title = "Leaky"
description = "Reads prefectures in a way the parser cannot see."
owner = "#data-team"

[definition]
source = "mart"
refreshed = "daily"
purpose = "testing"

[query]
sql = """
{sql}
"""

[chart]
kind = "bar"
x = "place"
y = "users"

[[schedule]]
cron = "0 0 9 * * *"
channel = "#general"
"##
    )
}

/// The forms the issue found passing `check`, each reading prefectures.
const LEAKS: [(&str, &str); 4] = [
    (
        "table_function",
        "SELECT prefecture AS place, SUM(active_users) AS users FROM query_table('mart.daily_active_users') GROUP BY ALL",
    ),
    (
        "query_function",
        "SELECT place, users FROM query('SELECT prefecture AS place, SUM(active_users) AS users FROM mart.daily_active_users GROUP BY ALL')",
    ),
    (
        "columns",
        "SELECT COLUMNS('^pref') AS place, SUM(active_users) AS users FROM mart.daily_active_users GROUP BY ALL",
    ),
    (
        "view",
        "SELECT place, SUM(users) AS users FROM mart.usage_by_place GROUP BY ALL",
    ),
];

/// A small mart with the covered column and a view that renames it.
fn mart(path: &Path) {
    let connection = duckdb::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "CREATE SCHEMA mart;
             CREATE TABLE mart.daily_active_users AS
               SELECT DATE '2026-01-01' + (i % 20)::INT AS activity_date,
                      'pref_' || (i % 47) AS prefecture, 'student' AS role, i AS active_users
               FROM range(400) t(i);
             CREATE VIEW mart.usage_by_place AS
               SELECT prefecture AS place, active_users AS users FROM mart.daily_active_users;",
        )
        .unwrap();
}

fn folder(name: &str, sql: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("reports")).unwrap();
    std::fs::write(dir.path().join("reports/policies.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join(format!("reports/{name}.toml")), report(sql)).unwrap();
    dir
}

const NO_DEMO: (&str, &str) = ("KPIBOT__WAREHOUSE__DUCKDB__DEMO_MART", "false");

#[test]
fn check_with_the_planner_refuses_every_form_that_reads_the_covered_column() {
    for (name, sql) in LEAKS {
        let dir = folder(name, sql);
        mart(&dir.path().join("demo.duckdb"));
        let (ok, stdout, stderr) =
            common::run_kpibot(&["check", "reports"], dir.path(), &[NO_DEMO]);
        assert!(!ok, "{name} passed check:\n{stdout}{stderr}");
        assert!(
            stdout.contains(
                "this schedule posts to `#general`, which policy `prefecture_detail` does not allow"
            ),
            "{name}:\n{stdout}"
        );
        // And `run --channel` will not post it there either.
        let (ok, stdout, stderr) = common::run_kpibot(
            &["run", name, "--channel", "#general"],
            dir.path(),
            &[NO_DEMO],
        );
        assert!(!ok, "{name} ran into #general:\n{stdout}{stderr}");
        // Stopped by the policy, saying so, not by some other failure: at the post (what
        // the planner proves it reads) or, where the parser already sees the column, when
        // the report loads.
        assert!(
            stderr.contains("policy `prefecture_detail` does not allow")
                && stderr.contains("#general"),
            "{name}: not refused by the policy:\n{stdout}{stderr}"
        );
    }
}

#[test]
fn check_without_a_warehouse_names_what_it_cannot_see_into() {
    for (name, sql) in &LEAKS[..2] {
        let dir = folder(name, sql);
        let (ok, stdout, stderr) =
            common::run_kpibot(&["check", "reports"], dir.path(), &[NO_DEMO]);
        assert!(!ok, "{name} passed check:\n{stdout}{stderr}");
        assert!(
            stdout.contains("kpibot cannot establish what this query reads")
                && stdout.contains("the table function `query"),
            "{name}:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("{name}.toml:11:7")),
            "{name}:\n{stdout}"
        );
    }
    // COLUMNS(…) counts as every column: the schedule is refused by the policy.
    let (name, sql) = LEAKS[2];
    let dir = folder(name, sql);
    let (ok, stdout, _) = common::run_kpibot(&["check", "reports"], dir.path(), &[NO_DEMO]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("policy `prefecture_detail` does not allow"),
        "{stdout}"
    );
}

#[test]
fn the_same_queries_pass_where_the_policy_allows_and_a_query_that_does_not_read_it_passes() {
    let dir = folder(
        "roles",
        "SELECT role AS place, SUM(active_users) AS users FROM query_table('mart.daily_active_users') GROUP BY ALL",
    );
    mart(&dir.path().join("demo.duckdb"));
    let (ok, stdout, stderr) = common::run_kpibot(&["check", "reports"], dir.path(), &[NO_DEMO]);
    assert!(
        ok,
        "the planner proves it reads no prefecture:\n{stdout}{stderr}"
    );
    let (name, sql) = LEAKS[3];
    let dir = folder(name, sql);
    mart(&dir.path().join("demo.duckdb"));
    let allowed = std::fs::read_to_string(dir.path().join(format!("reports/{name}.toml")))
        .unwrap()
        .replace("#general", "#sales");
    std::fs::write(dir.path().join(format!("reports/{name}.toml")), allowed).unwrap();
    let (ok, stdout, stderr) = common::run_kpibot(&["check", "reports"], dir.path(), &[NO_DEMO]);
    assert!(ok, "{stdout}{stderr}");
}

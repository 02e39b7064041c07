//! kpibot on BigQuery end to end, against the local fake BigQuery serving the demo mart:
//! the example reports give the numbers DuckDB gives, and `demo`, `check --dry-run` and
//! `ask` work as the real binary with `KPIBOT__WAREHOUSE__KIND=bigquery`.

mod common;

use std::path::Path;

use common::fake_bigquery::FakeBigQuery;
use kpibot::cli;
use kpibot::settings::WarehouseKind;

const PROJECT: &str = "kpibot-test";

/// Parses every CSV the demo wrote in `out`, by report id.
fn csvs(out: &Path) -> std::collections::BTreeMap<String, Vec<Vec<String>>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                common::parse_csv(&std::fs::read_to_string(&p).unwrap()),
            )
        })
        .collect()
}

/// Two CSV fields hold the same value: equal text, or equal numbers (BigQuery writes
/// NUMERIC without trailing zeros, `12.50` → `12.5`).
fn same_value(a: &str, b: &str) -> bool {
    a == b
        || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() <= 1e-9 * x.abs().max(1.0))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_reports_give_the_same_numbers_on_bigquery_as_on_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let now = common::fixed_now();
    let duck_out = dir.path().join("duck");
    let mut log = Vec::new();
    assert_eq!(
        cli::run::demo(&common::app(&settings), &duck_out, now, &mut log)
            .await
            .unwrap(),
        0
    );

    let fake = FakeBigQuery::start(Some(&settings.warehouse.duckdb.path)).await;
    fake.set_page_rows(5);
    let mut on_bigquery = settings.clone();
    on_bigquery.warehouse.kind = WarehouseKind::Bigquery;
    on_bigquery.warehouse.bigquery.project = PROJECT.into();
    on_bigquery.warehouse.bigquery.endpoint = Some(fake.endpoint.clone());
    let bq_out = dir.path().join("bq");
    let mut log = Vec::new();
    let failed = cli::run::demo(&common::app(&on_bigquery), &bq_out, now, &mut log)
        .await
        .unwrap();
    assert_eq!(failed, 0, "{}", String::from_utf8_lossy(&log));

    let duck = csvs(&duck_out);
    let bq = csvs(&bq_out);
    // Ten reports and the demo's explanation of its incident, each the same on both.
    assert_eq!(duck.len(), 11);
    assert!(duck.contains_key("active_users_why"));
    assert_eq!(
        duck.keys().collect::<Vec<_>>(),
        bq.keys().collect::<Vec<_>>()
    );
    for (report, duck_rows) in &duck {
        let bq_rows = &bq[report];
        assert_eq!(duck_rows.len(), bq_rows.len(), "{report}: row count");
        for (d, b) in duck_rows.iter().zip(bq_rows) {
            assert!(
                d.len() == b.len() && d.iter().zip(b).all(|(x, y)| same_value(x, y)),
                "{report}: DuckDB {d:?} vs BigQuery {b:?}"
            );
        }
    }
    // Pages of 5 rows: some reports needed several pages.
    assert!(!fake.calls_of("jobs.getQueryResults").is_empty());
    assert!(
        fake.calls_of("jobs.query")
            .iter()
            .all(|c| c.body["labels"]["kpibot_trigger"] == "cli")
    );
}

/// A folder with the demo mart built (by the binary on DuckDB) and a fake BigQuery over it.
struct OnBigQuery {
    dir: tempfile::TempDir,
    fake: FakeBigQuery,
}

impl OnBigQuery {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ok, stdout, stderr) = common::run_kpibot(
            &["demo"],
            dir.path(),
            &[("KPIBOT__REPORTS__DIR", &reports_dir())],
        );
        assert!(ok, "{stdout}{stderr}");
        let fake = FakeBigQuery::start_in_background(Some(dir.path().join("demo.duckdb")));
        Self { dir, fake }
    }

    fn run(&self, args: &[&str], reports: &str) -> (bool, String, String) {
        self.run_with(args, reports, &[])
    }

    fn run_with(
        &self,
        args: &[&str],
        reports: &str,
        extra: &[(&str, &str)],
    ) -> (bool, String, String) {
        let mut env = vec![
            ("KPIBOT__REPORTS__DIR", reports),
            ("KPIBOT__WAREHOUSE__KIND", "bigquery"),
            ("KPIBOT__WAREHOUSE__BIGQUERY__PROJECT", PROJECT),
            ("KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT", &self.fake.endpoint),
            ("KPIBOT__DELIVERY__FOLDER", "bq-out"),
        ];
        env.extend_from_slice(extra);
        common::run_kpibot(args, self.dir.path(), &env)
    }
}

fn reports_dir() -> String {
    common::repo_path("reports").display().to_string()
}

#[test]
fn demo_check_and_ask_run_on_bigquery_as_the_binary() {
    let bq = OnBigQuery::new();

    let (ok, stdout, stderr) = bq.run(&["demo"], &reports_dir());
    assert!(ok, "{stdout}{stderr}");
    assert!(bq.dir.path().join("bq-out/daily_active_users.png").exists());

    let (ok, stdout, stderr) = bq.run(&["check", "--dry-run"], &reports_dir());
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("all valid"), "{stdout}");
    // Every report and every metric says what it would scan, against its limit.
    assert_eq!(stdout.matches("would scan").count(), 10 + 8, "{stdout}");
    assert!(stdout.contains("(limit 10.0 GiB)"), "{stdout}");
    // And each report what it costs on its schedules: a run, and the next 30 days of them.
    assert_eq!(stdout.matches("a run scans about").count(), 10, "{stdout}");
    assert!(
        stdout.contains("its schedules run it 30 times in 30 days: about"),
        "a report posted every day runs 30 times a month: {stdout}"
    );
    assert!(
        stdout.contains("a month") && stdout.contains("(≈ $"),
        "{stdout}"
    );
    assert!(
        bq.fake
            .calls_of("jobs.query")
            .iter()
            .filter(|c| c.body["dryRun"] == true)
            .count()
            >= 13
    );

    let (ok, stdout, stderr) = bq.run(&["ask", "active_users weekly by role"], &reports_dir());
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(" rows → "), "{stdout}");
    let asked = bq.fake.calls_of("jobs.query");
    let last = &asked.last().unwrap().body;
    // The metric's SQL was generated in BigQuery's dialect.
    let sql = last["query"].as_str().unwrap();
    assert!(sql.contains("WEEK(MONDAY)") && sql.contains('`'), "{sql}");
    assert_eq!(last["labels"]["kpibot_report"], "active_users");
}

/// Cumulative and derived metrics, native and dbt's, give the same numbers on BigQuery's
/// dialect as on DuckDB's (whose numbers `tests/metric_types.rs` and
/// `tests/dbt_semantic_layer.rs` hold to independent SQL): the same question, through the
/// binary, over the same mart.
#[test]
fn cumulative_and_derived_metrics_answer_the_same_on_bigquery() {
    let bq = OnBigQuery::new();
    let manifest = common::repo_path("dbt/semantic_manifest.json")
        .display()
        .to_string();
    let dbt = [("KPIBOT__DBT__SEMANTIC_MANIFEST", manifest.as_str())];
    for question in [
        "new_accounts_organic last 14 days",
        "user_days_28d last 3 months monthly by role",
        "minutes_per_assignment last 8 weeks weekly by subject",
        "signups_mtd last 60 days by channel",
        "signups_mtd last 12 weeks weekly where channel=organic",
        "active_users_7d last 3 months monthly by role",
        "signups_wow last 28 days by channel",
        "signups_wow last 8 weeks weekly",
    ] {
        let name = question.split_whitespace().next().unwrap();
        let (ok, stdout, stderr) = bq.run_with(&["ask", question], &reports_dir(), &dbt);
        assert!(
            ok && stdout.contains(" rows → "),
            "{question}: {stdout}{stderr}"
        );
        let on_bigquery =
            std::fs::read_to_string(bq.dir.path().join(format!("bq-out/{name}.csv"))).unwrap();
        let (ok, stdout, stderr) = common::run_kpibot(
            &["ask", question],
            bq.dir.path(),
            &[
                ("KPIBOT__REPORTS__DIR", &reports_dir()),
                ("KPIBOT__DELIVERY__FOLDER", "duck-out"),
                dbt[0],
            ],
        );
        assert!(ok, "{question}: {stdout}{stderr}");
        let on_duckdb =
            std::fs::read_to_string(bq.dir.path().join(format!("duck-out/{name}.csv"))).unwrap();
        assert!(on_duckdb.lines().count() > 5, "{question}: {on_duckdb}");
        let values = |csv: &str| -> Vec<(String, f64)> {
            common::parse_csv(csv)[1..]
                .iter()
                .map(|r| {
                    let v = r.last().unwrap().parse::<f64>().unwrap_or(f64::NAN);
                    (r[..r.len() - 1].join(","), (v * 1e9).round() / 1e9)
                })
                .collect()
        };
        assert_eq!(values(&on_bigquery), values(&on_duckdb), "{question}");
        let sql = bq.fake.calls_of("jobs.query").last().unwrap().body["query"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(sql.contains('`'), "not BigQuery's dialect: {sql}");
    }
}

const BAD_SYNTAX: &str = r##"title = "Broken"
description = "A syntax error on the third line of its SQL."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "testing BigQuery errors"

[query]
sql = """
SELECT activity_date AS day, SUM(active_users) AS users
FROM mart.daily_active_users
WHERE activity_date BETWEEN @start_date AND @end_date AND
GROUP BY activity_date
"""
period = "last 7 days"

[chart]
kind = "line"
x = "day"
y = "users"
"##;

#[test]
fn check_dry_run_points_bigquery_errors_at_the_spec_and_refuses_an_over_budget_scan() {
    let bq = OnBigQuery::new();
    let reports = bq.dir.path().join("my-reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("broken.toml"), BAD_SYNTAX).unwrap();
    let (ok, stdout, _) = bq.run(&["check", "--dry-run"], &reports.display().to_string());
    assert!(!ok);
    // BigQuery says `Unexpected keyword GROUP at [4:1]`: line 4 of the SQL is line 15 of
    // the file.
    assert!(
        stdout.contains("broken.toml:15:1: error: the warehouse rejected the query: Syntax error: Unexpected keyword GROUP at [4:1]"),
        "{stdout}"
    );

    // A run hits the same error and names the same place.
    let (ok, stdout, stderr) = bq.run(&["preview", "broken"], &reports.display().to_string());
    assert!(!ok);
    assert!(
        stderr.contains("broken.toml:15:1") && stderr.contains("Unexpected keyword GROUP"),
        "{stdout}{stderr}"
    );

    // A report capped at 100 MiB: within budget, until the fake says the table is 8× bigger.
    let capped = BAD_SYNTAX
        .replace("Broken", "Capped")
        .replace(" AND\nGROUP BY", "\nGROUP BY")
        .replace(
            "period = \"last 7 days\"",
            "period = \"last 7 days\"\nmaximum_bytes_billed = 104_857_600",
        );
    std::fs::remove_file(reports.join("broken.toml")).unwrap();
    std::fs::write(reports.join("capped.toml"), capped).unwrap();
    let (ok, stdout, stderr) = bq.run(&["check", "--dry-run"], &reports.display().to_string());
    assert!(ok, "within budget: {stdout}{stderr}");
    bq.fake.set_bytes_per_cell(64);
    let (ok, stdout, _) = bq.run(&["check", "--dry-run"], &reports.display().to_string());
    assert!(!ok);
    assert!(
        stdout.contains("capped.toml:11:7: error: the query would scan")
            && stdout.contains("but may bill at most 100.0 MiB"),
        "{stdout}"
    );
}

const WITH_PARAMS: &str = r##"title = "Kanto and Kansai"
description = "Active users in two regions, with the report's own typed parameters."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "testing [query.params]"

[query]
sql = """
SELECT prefecture, SUM(active_users) AS users
FROM mart.daily_active_users
WHERE activity_date BETWEEN @start_date AND @end_date
  AND prefecture IN (SELECT * FROM UNNEST(@prefectures))
GROUP BY prefecture
HAVING SUM(active_users) >= @min_users
ORDER BY prefecture
"""
period = "last 7 days"

[query.params]
prefectures = ["東京都", "大阪府", "no such place"]
min_users = 1

[chart]
kind = "bar"
x = "prefecture"
y = "users"
"##;

#[test]
fn a_reports_own_typed_parameters_give_the_same_rows_on_both_warehouses() {
    let bq = OnBigQuery::new();
    let reports = bq.dir.path().join("param-reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("regions.toml"), WITH_PARAMS).unwrap();
    let reports = reports.display().to_string();

    let (ok, stdout, stderr) = common::run_kpibot(
        &["preview", "regions", "--out", "duck-out"],
        bq.dir.path(),
        &[("KPIBOT__REPORTS__DIR", &reports)],
    );
    assert!(ok, "{stdout}{stderr}");
    let (ok, stdout, stderr) = bq.run(&["preview", "regions", "--out", "bq-out"], &reports);
    assert!(ok, "{stdout}{stderr}");
    let read = |folder: &str| {
        common::parse_csv(
            &std::fs::read_to_string(bq.dir.path().join(folder).join("regions.csv")).unwrap(),
        )
    };
    let (duck, on_bigquery) = (read("duck-out"), read("bq-out"));
    // Two prefectures matched; the third name matches nothing.
    assert_eq!(duck.len(), 3, "{duck:?}");
    assert_eq!(
        duck.iter()
            .skip(1)
            .map(|r| r[0].as_str())
            .collect::<Vec<_>>(),
        vec!["大阪府", "東京都"]
    );
    assert_eq!(duck, on_bigquery);

    let types = bq
        .fake
        .calls_of("jobs.query")
        .last()
        .unwrap()
        .parameter_types();
    assert_eq!(
        types,
        [
            ("end_date", "DATE"),
            ("min_users", "INT64"),
            ("prefectures", "ARRAY<STRING>"),
            ("start_date", "DATE"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .to_vec()
    );
}

/// A target kept in the mart's targets table paces the same answer on BigQuery as on
/// DuckDB: the table is read in BigQuery's dialect, with its values bound.
#[test]
fn a_target_from_the_targets_table_paces_the_same_on_bigquery() {
    let bq = OnBigQuery::new();
    let question = "signups this month where channel=ads";
    let (ok, stdout, stderr) = bq.run(&["ask", question], &reports_dir());
    assert!(ok, "{stdout}{stderr}");
    let target = |folder: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(bq.dir.path().join(format!("{folder}/signups.json"))).unwrap();
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        common::target_of(&message["metadata"]["event_payload"])
    };
    let on_bigquery = target("bq-out");
    let read = bq
        .fake
        .calls_of("jobs.query")
        .into_iter()
        .map(|call| call.body["query"].as_str().unwrap_or_default().to_string())
        .find(|sql| sql.contains("kpi_targets"))
        .expect("the targets table is read");
    assert!(
        read.contains("`mart.kpi_targets`") && read.contains("@target_member"),
        "{read}"
    );
    let (ok, stdout, stderr) = common::run_kpibot(
        &["ask", question],
        bq.dir.path(),
        &[
            ("KPIBOT__REPORTS__DIR", &reports_dir()),
            ("KPIBOT__DELIVERY__FOLDER", "duck-out"),
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    let on_duckdb = target("duck-out");
    assert!(on_duckdb["value"].as_f64().unwrap() > 0.0, "{on_duckdb}");
    assert_eq!(on_bigquery, on_duckdb);
}

/// Why a number moved is one `GROUPING SETS` query in BigQuery's dialect too, and the
/// explanation is the same as DuckDB's: the same members, parts and shares.
#[test]
fn an_explanation_is_one_grouping_sets_query_and_the_same_on_bigquery() {
    let bq = OnBigQuery::new();
    let window = common::incident_window(common::tokyo_yesterday(chrono::Utc::now()));
    let question = format!("why active_users {}..{}", window.start, window.end);
    let (ok, stdout, stderr) = bq.run(&["ask", &question], &reports_dir());
    assert!(ok, "{stdout}{stderr}");
    let payload = |folder: &str| -> serde_json::Value {
        let path = bq
            .dir
            .path()
            .join(format!("{folder}/active_users_why.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}{stderr}", path.display()));
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut payload = message["metadata"]["event_payload"].clone();
        // When it ran differs between the two runs; everything it says may not.
        payload.as_object_mut().unwrap().remove("slot");
        payload
    };
    let on_bigquery = payload("bq-out");
    let grouping: Vec<String> = bq
        .fake
        .calls_of("jobs.query")
        .into_iter()
        .filter(|call| call.body["dryRun"] != true)
        .map(|call| call.body["query"].as_str().unwrap_or_default().to_string())
        .filter(|sql| sql.contains("GROUPING SETS"))
        .collect();
    assert_eq!(grouping.len(), 1, "one query explains every dimension");
    assert!(
        grouping[0].contains("`mart.daily_active_users`") && grouping[0].contains("@compare_start"),
        "{}",
        grouping[0]
    );
    let (ok, stdout, stderr) = common::run_kpibot(
        &["ask", &question],
        bq.dir.path(),
        &[
            ("KPIBOT__REPORTS__DIR", &reports_dir()),
            ("KPIBOT__DELIVERY__FOLDER", "duck-out"),
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    let on_duckdb = payload("duck-out");
    assert_eq!(on_duckdb["member_1"], "福岡県");
    assert_eq!(on_bigquery, on_duckdb);
}

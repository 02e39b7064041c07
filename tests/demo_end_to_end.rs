//! `kpibot demo` end to end over the real embedded DuckDB mart: every report leaves a PNG,
//! the exact message and the CSV; the CSV equals the report's SQL run by DuckDB itself over
//! the window the metadata states; that window is right for the period and timezone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use kpibot::cli;
use serde_json::Value;

/// Windows worked out by hand for "now" = 2026-11-26 01:30 in Tokyo (a Thursday).
fn expected_windows() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    BTreeMap::from([
        ("daily_active_users", ("2026-10-29", "2026-11-25")),
        ("signups_by_channel", ("2026-11-12", "2026-11-25")),
        ("study_minutes_by_subject", ("2026-10-26", "2026-11-22")),
        ("assignment_submissions", ("2026-09-28", "2026-11-22")),
        ("web_sessions_by_device", ("2026-08-01", "2026-10-31")),
        ("active_users_by_prefecture", ("2026-11-25", "2026-11-25")),
        ("active_users_card", ("2026-10-29", "2026-11-25")),
        ("prefecture_breakdown", ("2026-11-19", "2026-11-25")),
        ("page_views_month_to_date", ("2026-11-01", "2026-11-25")),
        ("signups_month_to_date", ("2026-11-01", "2026-11-25")),
    ])
}

/// The report's SQL run by DuckDB directly (not through kpibot), written by DuckDB's own
/// CSV writer.
fn duckdb_csv(db: &Path, sql: &str, start: &str, end: &str, scratch: &Path) -> Vec<Vec<String>> {
    let conn = common::read_only_duckdb(db);
    let sql = sql
        .trim()
        .trim_end_matches(';')
        .replace("@start_date", &format!("DATE '{start}'"))
        .replace("@end_date", &format!("DATE '{end}'"));
    let target = scratch.join("expected.csv");
    conn.execute_batch(&format!(
        "COPY ({sql}) TO '{}' (HEADER, DELIMITER ',')",
        target.display()
    ))
    .unwrap();
    common::parse_csv(&std::fs::read_to_string(target).unwrap())
}

#[tokio::test]
async fn demo_writes_every_report_and_the_numbers_are_the_warehouse_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let out_dir = dir.path().join("out");
    let mut log = Vec::new();
    let failed = cli::run::demo(
        &common::app(&settings),
        &out_dir,
        common::fixed_now(),
        &mut log,
    )
    .await
    .unwrap();
    let log = String::from_utf8(log).unwrap();
    assert_eq!(failed, 0, "{log}");
    assert!(log.contains("built the demo mart"), "{log}");

    let catalog = common::app(&settings).load_catalog().unwrap();
    let expected = expected_windows();
    assert_eq!(
        catalog.ids().collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );

    for spec in catalog.reports() {
        let id = spec.id.as_str();
        assert!(log.contains(id), "demo prints a line for {id}:\n{log}");
        let message: Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        let payload = &message["metadata"]["event_payload"];
        assert_eq!(message["metadata"]["event_type"], "kpibot_report");
        assert_eq!(payload["report_id"], id);
        assert_eq!(payload["timezone"], "Asia/Tokyo");
        let (start, end) = expected[id];
        assert_eq!(
            (
                payload["window_start"].as_str().unwrap(),
                payload["window_end"].as_str().unwrap()
            ),
            (start, end),
            "{id}"
        );
        assert_eq!(message["blocks"][0]["text"]["text"], spec.title.as_str());
        let lines = common::context_lines(&message);
        let context = lines.last().unwrap();
        // The window in the report's language: `2026-10-29 – 2026-11-25` or
        // `2026年10月29日〜11月25日`.
        let locale = spec.chart.locale.unwrap_or_default();
        let day = |d: &str| d.parse::<chrono::NaiveDate>().unwrap();
        let window = kpibot::i18n::date_range(locale, day(start), day(end));
        assert!(
            context.contains(&format!("{window} (Asia/Tokyo)")),
            "{context}"
        );
        assert!(
            payload["headline_value"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .is_ok(),
            "{id}: {payload}"
        );
        assert_eq!(message["channel"], spec.schedules[0].channel.as_str());

        let csv = std::fs::read_to_string(out_dir.join(format!("{id}.csv"))).unwrap();
        let ours = common::parse_csv(&csv);
        let theirs = duckdb_csv(
            &settings.warehouse.duckdb.path,
            &spec.query.sql,
            start,
            end,
            dir.path(),
        );
        assert!(ours.len() > 1, "{id} has data rows");
        assert_eq!(
            ours, theirs,
            "{id}: kpibot's CSV differs from DuckDB's own answer"
        );

        let png = std::fs::read(out_dir.join(format!("{id}.png"))).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(
            (info.width, info.height),
            (1600, 900),
            "{id}: 2x density chart"
        );
        let inked = pixels
            .chunks(3)
            .filter(|p| p.iter().any(|c| *c < 200))
            .count();
        assert!(
            inked > 20_000,
            "{id}: the chart has a plot, not a blank canvas ({inked} inked pixels)"
        );
    }

    // And the demo's incident explained: the waterfall, the message and every member's
    // part, with Fukuoka first and its part equal to what DuckDB sums.
    let why = |ext: &str| out_dir.join(format!("active_users_why.{ext}"));
    assert!(log.contains("active_users_why.png"), "{log}");
    let message: Value =
        serde_json::from_str(&std::fs::read_to_string(why("json")).unwrap()).unwrap();
    let payload = &message["metadata"]["event_payload"];
    assert_eq!(message["metadata"]["event_type"], "kpibot_explanation");
    assert_eq!(payload["dimension"], "prefecture");
    assert_eq!(payload["member_1"], "福岡県");
    let window = common::incident_window(common::tokyo_yesterday(common::fixed_now()));
    assert_eq!(payload["asked_start"], window.start.to_string());
    let rows = common::parse_csv(&std::fs::read_to_string(why("csv")).unwrap());
    let fukuoka = rows
        .iter()
        .find(|r| r[0] == "prefecture" && r[1] == "福岡県")
        .unwrap();
    let number = |text: &str| text.parse::<f64>().unwrap();
    assert_eq!(
        number(&fukuoka[2]),
        number(payload["change_1"].as_str().unwrap())
    );
    assert!(std::fs::read(why("png")).unwrap().starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn the_headline_matches_the_data_and_the_comparison_window() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let out_dir = dir.path().join("out");
    cli::run::demo(
        &common::app(&settings),
        &out_dir,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap();

    // daily_active_users: headline = all roles on the last day of the window.
    let csv = common::parse_csv(
        &std::fs::read_to_string(out_dir.join("daily_active_users.csv")).unwrap(),
    );
    let last_day_total: f64 = csv[1..]
        .iter()
        .filter(|row| row[0] == "2026-11-25")
        .map(|row| row[2].parse::<f64>().unwrap())
        .sum();
    let message: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("daily_active_users.json")).unwrap(),
    )
    .unwrap();
    let headline: f64 = message["metadata"]["event_payload"]["headline_value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(headline, last_day_total);
    let fields = message["blocks"][1]["fields"].to_string();
    // The report is written in Japanese (`locale = "ja"`).
    assert!(fields.contains("最新（2026年11月25日）"), "{fields}");
    assert!(
        fields.contains("2026年10月28日比"),
        "the day compared with is named: {fields}"
    );

    // A total is compared with the whole previous window, which the message names.
    let message: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("web_sessions_by_device.json")).unwrap(),
    )
    .unwrap();
    let fields = message["blocks"][1]["fields"].to_string();
    assert!(fields.contains("vs 2026-05-01 – 2026-07-31"), "{fields}");

    // `compare = "previous_week"`: the same weekday one week earlier.
    let message: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("active_users_card.json")).unwrap(),
    )
    .unwrap();
    let fields = message["blocks"][1]["fields"].to_string();
    assert!(fields.contains("2026年11月18日比"), "{fields}");
}

#[tokio::test]
async fn the_demo_mart_is_deterministic_and_school_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let (a, b) = (dir.path().join("a.duckdb"), dir.path().join("b.duckdb"));
    kpibot::warehouse::demo::ensure_demo_mart(&a, end).unwrap();
    kpibot::warehouse::demo::ensure_demo_mart(&b, end).unwrap();
    let fingerprint = |path: &Path| -> (i64, i64, String, String) {
        let conn = duckdb::Connection::open(path).unwrap();
        conn.query_row(
            "SELECT (SELECT SUM(active_users) FROM mart.daily_active_users),
                    (SELECT SUM(page_views) FROM mart.web_traffic),
                    (SELECT strftime(MIN(activity_date), '%Y-%m-%d') FROM mart.daily_active_users),
                    (SELECT strftime(MAX(activity_date), '%Y-%m-%d') FROM mart.daily_active_users)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    let fa = fingerprint(&a);
    assert_eq!(fa, fingerprint(&b), "same data on every build");
    assert_eq!(
        (fa.2.as_str(), fa.3.as_str()),
        ("2024-01-01", "2026-11-25"),
        "two years and more, ending yesterday"
    );

    let conn = duckdb::Connection::open(&a).unwrap();
    let ratio = |sql: &str| -> f64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let weekend_vs_weekday = ratio(
        "SELECT AVG(CASE WHEN dayofweek(activity_date) IN (0, 6) THEN active_users END)
              / AVG(CASE WHEN dayofweek(activity_date) NOT IN (0, 6) THEN active_users END)
         FROM mart.daily_active_users WHERE role = 'student'",
    );
    assert!(
        weekend_vs_weekday < 0.6,
        "students rest at weekends: {weekend_vs_weekday}"
    );
    let august_vs_june = ratio(
        "SELECT AVG(CASE WHEN month(activity_date) = 8 THEN active_users END)
              / AVG(CASE WHEN month(activity_date) = 6 THEN active_users END)
         FROM mart.daily_active_users WHERE year(activity_date) = 2025",
    );
    assert!(august_vs_june < 0.6, "summer holidays: {august_vs_june}");
    let growth = ratio(
        "SELECT SUM(CASE WHEN year(activity_date) = 2025 THEN active_users END)::DOUBLE
              / SUM(CASE WHEN year(activity_date) = 2024 THEN active_users END)
         FROM mart.daily_active_users",
    );
    assert!(growth > 1.2, "the platform grows: {growth}");
    let outage_rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM mart.web_traffic WHERE visit_date = DATE '2026-11-25' - 400",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outage_rows, 0, "the tracking outage day has no rows");
}

#[tokio::test]
async fn preview_of_an_unknown_report_lists_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let err = cli::run::preview(
        &common::app(&settings),
        "daily_active_user",
        None,
        dir.path(),
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("no report named `daily_active_user`"), "{err}");
    assert!(err.contains("did you mean `daily_active_users`?"), "{err}");
    assert!(
        err.contains("signups_by_channel"),
        "lists the valid reports: {err}"
    );
}

#[tokio::test]
async fn preview_with_a_period_override_uses_that_window() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let out = dir.path().join("preview");
    cli::run::preview(
        &common::app(&settings),
        "daily_active_users",
        Some("last 7 days"),
        &out,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let message: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("daily_active_users.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        message["metadata"]["event_payload"]["window_start"],
        "2026-11-19"
    );
    assert_eq!(
        message["metadata"]["event_payload"]["window_end"],
        "2026-11-25"
    );
    let rows =
        common::parse_csv(&std::fs::read_to_string(out.join("daily_active_users.csv")).unwrap());
    assert_eq!(rows.len(), 1 + 7 * 3, "header + 7 days x 3 roles");
    assert!(
        !out.join("signups_by_channel.png").exists(),
        "preview runs one report only"
    );
}

#[tokio::test]
async fn a_warehouse_error_names_the_report_and_the_sql_line() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("tests/fixtures/dry_run"));
    let err = cli::run::preview(
        &common::app(&settings),
        "bad_sql",
        None,
        dir.path(),
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("report `bad_sql`"), "{message}");
    assert!(
        message.contains("tests/fixtures/dry_run/bad_sql.toml:14:1"),
        "points at the SQL line: {message}"
    );
    assert!(message.contains("activity_day"), "{message}");
    assert!(
        !dir.path().join("bad_sql.png").exists(),
        "a failed run writes no chart"
    );
}

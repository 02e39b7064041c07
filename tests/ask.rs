//! `kpibot ask`: every form of the `/kpi` grammar answered on the demo mart, in process,
//! exactly as Slack's path answers it.

mod common;

use kpibot::cli;

#[tokio::test]
async fn every_grammar_form_is_answered_on_the_demo_mart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let now = common::fixed_now();
    let charts = [
        ("daily_active_users", "daily_active_users.png"),
        ("daily_active_users yesterday", "daily_active_users.png"),
        ("daily_active_users 先月", "daily_active_users.png"),
        ("active_users", "active_users.png"),
        (
            "active_users last 30 days weekly by role",
            "active_users.png",
        ),
        (
            "active_users 過去3ヶ月 monthly where role=student,teacher and school_type=高校",
            "active_users.png",
        ),
        ("signups this month by channel private", "signups.png"),
        (
            "minutes_per_submission 過去7日 by subject",
            "minutes_per_submission.png",
        ),
        (
            "signups 2026-04-01..2026-04-30 daily where channel=ads",
            "signups.png",
        ),
        ("signups since 2026-11-01", "signups.png"),
    ];
    for (text, file) in charts {
        let png = dir.path().join("out").join(file);
        let _ = std::fs::remove_file(&png);
        let mut out = Vec::new();
        cli::ask::ask(&common::app(&settings), text, now, &mut out)
            .await
            .unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains(" rows → "), "`{text}` → {printed}");
        assert!(png.exists(), "`{text}` wrote no chart");
        let json = std::fs::read_to_string(png.with_extension("json")).unwrap();
        // The PNG, or Slack's own chart or table block where the data fits it.
        assert!(
            ["\"image\"", "\"data_visualization\"", "\"data_table\""]
                .iter()
                .any(|block| json.contains(block)),
            "`{text}`: the message has no chart"
        );
    }
    for (text, expected) in [
        ("", "/kpi list [tag]"),
        ("help", "/kpi describe <name>"),
        ("list", "`active_users`: Active users"),
        ("list growth", "`signups`: Sign-ups"),
        (
            "describe active_users",
            "Dimensions: `prefecture` (Prefecture), `role` (Role)",
        ),
        (
            "describe daily_active_users",
            "Default period: last 28 days",
        ),
        ("activ_users", "Did you mean `active_users`?"),
        ("active_users by rol", "Did you mean `role`?"),
        (
            "daily_active_users by role",
            "is a report: it takes only a period",
        ),
        (
            "active_users where school='x' OR 1=1",
            "I did not understand",
        ),
    ] {
        let mut out = Vec::new();
        cli::ask::ask(&common::app(&settings), text, now, &mut out)
            .await
            .unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains(expected), "`{text}` → {printed}");
    }
}

#[tokio::test]
async fn a_filter_value_is_data_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let mut out = Vec::new();
    cli::ask::ask(
        &common::app(&settings),
        "active_users last 7 days where role=\"' OR 1=1 --\"",
        common::fixed_now(),
        &mut out,
    )
    .await
    .unwrap();
    let printed = String::from_utf8(out).unwrap();
    // No role is called that: the answer is "no data", not every row.
    assert!(printed.contains(": 0 rows → "), "{printed}");
}

/// Sum of `column` in a CSV the folder delivery wrote.
fn csv_total(path: &std::path::Path, column: &str) -> f64 {
    let rows = common::parse_csv(&std::fs::read_to_string(path).unwrap());
    let index = rows[0].iter().position(|c| c == column).unwrap();
    rows[1..]
        .iter()
        .map(|r| r[index].parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn periods_mean_what_they_say_for_reports_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let now = common::fixed_now(); // 2026-11-26 in Tokyo
    let cases = [
        ("yesterday", "2026-11-25", "2026-11-25"),
        ("昨日", "2026-11-25", "2026-11-25"),
        ("last 7 days", "2026-11-19", "2026-11-25"),
        ("2026-11-01..2026-11-10", "2026-11-01", "2026-11-10"),
    ];
    for (name, file, column) in [
        ("daily_active_users", "daily_active_users", "users"),
        ("active_users", "active_users", "value"),
    ] {
        for (period, start, end) in cases {
            let text = format!("{name} {period}");
            let mut out = Vec::new();
            cli::ask::ask(&common::app(&settings), &text, now, &mut out)
                .await
                .unwrap();
            let out_dir = dir.path().join("out");
            let message: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out_dir.join(format!("{file}.json"))).unwrap(),
            )
            .unwrap();
            let payload = &message["metadata"]["event_payload"];
            assert_eq!(
                (
                    payload["window_start"].as_str(),
                    payload["window_end"].as_str()
                ),
                (Some(start), Some(end)),
                "`{text}` states the wrong window"
            );
            // The numbers are the warehouse's for exactly that window.
            let expected: f64 = duckdb::Connection::open(&settings.warehouse.duckdb.path)
                .unwrap()
                .query_row(
                    "SELECT SUM(active_users)::DOUBLE FROM mart.daily_active_users \
                     WHERE activity_date BETWEEN ?::DATE AND ?::DATE",
                    [start, end],
                    |row| row.get(0),
                )
                .unwrap();
            let charted = csv_total(&out_dir.join(format!("{file}.csv")), column);
            assert_eq!(charted, expected, "`{text}` charted other numbers");
        }
    }
}

#[tokio::test]
async fn dates_outside_the_limits_get_a_clear_reply_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    for (text, expected) in [
        (
            "active_users since -262143-01-01",
            "before the earliest date",
        ),
        ("active_users since 1900-01-01", "before the earliest date"),
        (
            "daily_active_users 2026-01-01..2031-01-01",
            "too far in the future",
        ),
        (
            "active_users 2020-01-01..2026-11-01",
            "kpibot reads at most 1096 days",
        ),
    ] {
        let mut out = Vec::new();
        cli::ask::ask(&common::app(&settings), text, common::fixed_now(), &mut out)
            .await
            .unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains(expected), "`{text}` → {printed}");
    }
}

#[tokio::test]
async fn nan_and_infinity_are_gaps_and_the_message_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(
        reports.join("ratio.toml"),
        r##"title = "A ratio with holes"
description = "Division by zero upstream leaves NaN and infinity in the mart."
owner = "#data-team"
[definition]
source = "generated"
refreshed = "never"
purpose = "Test."
[query]
sql = """
SELECT @end_date - (4 - i)::INTEGER AS day,
       CASE WHEN i = 2 THEN 'NaN'::DOUBLE WHEN i = 3 THEN 'Infinity'::DOUBLE ELSE i::DOUBLE END AS v
FROM range(5) AS t(i)
"""
period = "last 7 days"
[chart]
kind = "line"
x = "day"
y = "v"
"##,
    )
    .unwrap();
    let settings = common::settings_in(dir.path(), &reports);
    let mut out = Vec::new();
    cli::run::preview(
        &common::app(&settings),
        "ratio",
        None,
        &dir.path().join("out"),
        common::fixed_now(),
        &mut out,
    )
    .await
    .unwrap();
    let message = std::fs::read_to_string(dir.path().join("out/ratio.json")).unwrap();
    assert!(
        message.contains("2 values were not numbers (NaN or ∞) and are shown as gaps"),
        "{message}"
    );
}

#[tokio::test]
async fn typed_values_never_become_mentions_or_links_in_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let mut out = Vec::new();
    cli::ask::ask(
        &common::app(&settings),
        "active_users last 7 days where role=\"<!channel> <https://evil.example|click>\"",
        common::fixed_now(),
        &mut out,
    )
    .await
    .unwrap();
    let message: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/active_users.json")).unwrap(),
    )
    .unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
}

#[tokio::test]
async fn a_phrased_month_and_its_comparison_are_the_warehouses_numbers_for_those_dates() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let now = common::fixed_now(); // 2026-11-26 in Tokyo
    let total = |start: &str, end: &str| -> f64 {
        duckdb::Connection::open(&settings.warehouse.duckdb.path)
            .unwrap()
            .query_row(
                "SELECT SUM(active_users)::DOUBLE FROM mart.daily_active_users \
                 WHERE activity_date BETWEEN ?::DATE AND ?::DATE",
                [start, end],
                |row| row.get(0),
            )
            .unwrap()
    };
    for (text, compared) in [
        (
            "アクティブユーザー 2026年10月 前月比",
            ("2026-09-01", "2026-09-30"),
        ),
        ("DAU Oct 2026 year over year", ("2025-10-01", "2025-10-31")),
    ] {
        let mut out = Vec::new();
        cli::ask::ask(&common::app(&settings), text, now, &mut out)
            .await
            .unwrap();
        let out_dir = dir.path().join("out");
        let json = std::fs::read_to_string(out_dir.join("active_users.json")).unwrap();
        let message: serde_json::Value = serde_json::from_str(&json).unwrap();
        let payload = &message["metadata"]["event_payload"];
        assert_eq!(
            (
                payload["window_start"].as_str(),
                payload["window_end"].as_str()
            ),
            (Some("2026-10-01"), Some("2026-10-31")),
            "`{text}` read the wrong month"
        );
        let october = total("2026-10-01", "2026-10-31");
        assert_eq!(
            csv_total(&out_dir.join("active_users.csv"), "value"),
            october,
            "`{text}` charted other numbers"
        );
        // The change is against the whole comparison month, computed here independently.
        let before = total(compared.0, compared.1);
        let percent = (october - before) / before.abs() * 100.0;
        let sign = if percent > 0.0 { "+" } else { "" };
        let stated = format!("({sign}{percent:.1}%)");
        assert!(
            json.contains(&stated) && json.contains(&format!("{} – {}", compared.0, compared.1)),
            "`{text}`: expected {stated} against {compared:?} in {json}"
        );
        // And the post says how the question was read.
        assert!(json.contains("Read as: "), "{json}");
    }
}

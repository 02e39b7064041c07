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
        assert!(
            json.contains("\"image\""),
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

//! Pace alerts (`pace = { below = 90 }`): replayed over the demo mart, they fire on
//! exactly the days DuckDB itself says the month to date, projected linearly to the month's
//! end, falls short of the target (written in the spec, or read from the mart's targets
//! table); and `check` names a pace alert that has no target to judge against.

mod common;

use std::path::Path;

use chrono::NaiveDate;
use kpibot::cli;

const PACE_ALERTS: &str = r##"
[[alert]]
name = "signups_short_of_target"
title = "Sign-ups behind this month's target"
metric = "signups"
pace = { below = 90 }
channel = "#growth"
owner = "#growth"
timezone = "Asia/Tokyo"

[[alert]]
name = "ads_signups_short_of_target"
title = "Ads sign-ups behind the planners' target"
metric = "signups"
where = { channel = "ads" }
pace = { below = 90, per = "month" }
channel = "#growth"
owner = "#growth"
timezone = "Asia/Tokyo"
"##;

/// The days of `since..=until` whose month to date, projected linearly over the month,
/// is under 90 % of the month's target: computed here, by DuckDB, from the rows.
fn short_days(db: &Path, ads: bool, since: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let (filter, target) = if ads {
        (
            "WHERE channel = 'ads'",
            "(SELECT target FROM mart.kpi_targets t WHERE t.metric = 'signups' AND t.per = 'month'
              AND t.dimension = 'channel' AND t.member = 'ads'
              AND t.period_start = date_trunc('month', day))",
        )
    } else {
        ("", "24000")
    };
    let sql = format!(
        "WITH daily AS (
            SELECT signup_date AS day, SUM(signups)::DOUBLE AS v FROM mart.daily_signups {filter} GROUP BY 1
         ), to_date AS (
            SELECT day, SUM(v) OVER (PARTITION BY date_trunc('month', day) ORDER BY day) AS so_far
            FROM daily
         )
         SELECT strftime(day, '%Y-%m-%d') FROM to_date
         WHERE day BETWEEN DATE '{since}' AND DATE '{until}'
           AND so_far * day(last_day(day)) / day(day) < 0.9 * {target}
         ORDER BY 1"
    );
    let conn = common::read_only_duckdb(db);
    let mut statement = conn.prepare(&sql).unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|d| d.unwrap().parse().unwrap())
        .collect()
}

/// Consecutive days grouped into (first, last) spans.
fn spans(days: &[NaiveDate]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for day in days {
        match out.last_mut() {
            Some((_, last)) if *last + chrono::Days::new(1) == *day => *last = *day,
            _ => out.push((*day, *day)),
        }
    }
    out
}

fn reports_with(dir: &Path, extra: &str) -> std::path::PathBuf {
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    for entry in std::fs::read_dir(common::repo_path("reports")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, reports.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(reports.join("pace_alerts.toml"), extra).unwrap();
    reports
}

#[tokio::test]
async fn pace_alerts_fire_on_the_days_the_month_is_projected_short_of_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let reports = reports_with(dir.path(), PACE_ALERTS);
    let settings = common::settings_in(dir.path(), &reports);
    let app = common::app(&settings);
    let db = settings.warehouse.duckdb.path.clone();
    let since = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let until = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    for (name, ads) in [
        ("signups_short_of_target", false),
        ("ads_signups_short_of_target", true),
    ] {
        let mut printed = Vec::new();
        let backtest = cli::alerts::backtest_command(
            &app,
            name,
            Some(since),
            Some(until),
            common::fixed_now(),
            &mut printed,
        )
        .await
        .unwrap();
        let printed = String::from_utf8(printed).unwrap();
        let expected = spans(&short_days(&db, ads, since, until));
        let found: Vec<(NaiveDate, NaiveDate)> = backtest
            .firing_days()
            .remove("")
            .unwrap_or_default()
            .into_iter()
            .map(|(from, to)| (from, to.unwrap_or(until)))
            .collect();
        assert_eq!(found, expected, "{name}:\n{printed}");
        // The replay can fail: it fires on some days and not on others.
        assert!(expected.len() >= 2, "{name}: {expected:?}");
        let days_short: i64 = expected.iter().map(|(a, b)| (*b - *a).num_days() + 1).sum();
        assert!(days_short < (until - since).num_days(), "{name}");
        assert!(
            printed.contains("projected to land below 90% of its")
                && printed.contains("on pace for"),
            "{printed}"
        );
    }
}

#[test]
fn a_pace_alert_needs_one_target_for_the_total_it_watches() {
    let dir = tempfile::tempdir().unwrap();
    for (alert, expected) in [
        (
            "metric = \"active_users\"\npace = { below = 90 }",
            "metric `active_users` has no target for this total to pace against",
        ),
        (
            "metric = \"signups\"\nwhere = { channel = \"referral\" }\npace = { below = 90 }",
            "metric `signups` has no target for this total to pace against",
        ),
        (
            "metric = \"signups\"\nby = \"channel\"\npace = { below = 90 }",
            "a pace alert watches one total against its target, not a split",
        ),
        (
            "report = \"daily_active_users\"\npace = { below = 90 }",
            "`pace` needs `metric`",
        ),
        (
            "metric = \"signups\"\npace = { below = -5 }",
            "`pace` needs `below`",
        ),
        (
            "metric = \"signups\"\npace = { below = 90, per = \"quarter\" }",
            "`quarter` is not a valid",
        ),
    ] {
        let text = format!(
            "[[alert]]\nname = \"p\"\n{alert}\nchannel = \"#growth\"\nowner = \"#growth\"\n"
        );
        let reports = reports_with(dir.path(), &text);
        let files = kpibot::spec::load_dir(
            &reports,
            &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
        )
        .unwrap();
        let rendered: String = files
            .iter()
            .filter(|f| f.path.ends_with("pace_alerts.toml"))
            .map(|f| f.render_diagnostics())
            .collect();
        assert!(
            rendered.contains(expected) && rendered.contains("pace_alerts.toml:"),
            "expected `{expected}` in:\n{rendered}"
        );
    }
}

//! Alerts over the real demo mart: the backtest finds the demo's incident (Fukuoka's
//! active users down to about a third for six days) on exactly the days independent SQL,
//! run by DuckDB itself, says each condition held; specs are checked across files,
//! access included.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use kpibot::cli;

/// Per value, the spans of days a backtest had it firing (still firing: to its last day).
fn firing_spans(
    backtest: &kpibot::alerts::backtest::Backtest,
) -> BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> {
    backtest
        .firing_days()
        .into_iter()
        .map(|(value, spans)| {
            let spans = spans
                .into_iter()
                .map(|(from, to)| (from, to.unwrap_or(backtest.to)))
                .collect();
            (value, spans)
        })
        .collect()
}

/// (prefecture, day) rows of a query returning exactly those two columns.
fn days_by_prefecture(db: &Path, sql: &str) -> BTreeMap<String, Vec<NaiveDate>> {
    let conn = common::read_only_duckdb(db);
    let mut statement = conn.prepare(sql).unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap();
    let mut out: BTreeMap<String, Vec<NaiveDate>> = BTreeMap::new();
    for row in rows {
        let (prefecture, day) = row.unwrap();
        out.entry(prefecture)
            .or_default()
            .push(day.parse().unwrap());
    }
    out
}

/// Daily totals per prefecture with the same weekday 1–4 weeks earlier beside them.
const HISTORY: &str = "
WITH daily AS (
    SELECT prefecture, activity_date AS day, SUM(active_users)::DOUBLE AS v
    FROM mart.daily_active_users GROUP BY 1, 2
)
SELECT d.prefecture, d.day, d.v,
       w1.v AS w1, w2.v AS w2, w3.v AS w3, w4.v AS w4
FROM daily d
LEFT JOIN daily w1 ON w1.prefecture = d.prefecture AND w1.day = d.day - 7
LEFT JOIN daily w2 ON w2.prefecture = d.prefecture AND w2.day = d.day - 14
LEFT JOIN daily w3 ON w3.prefecture = d.prefecture AND w3.day = d.day - 21
LEFT JOIN daily w4 ON w4.prefecture = d.prefecture AND w4.day = d.day - 28
";

#[tokio::test]
async fn backtests_find_the_demo_incident_on_the_days_duckdb_itself_says() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    // 2026-11-26 01:30 in Tokyo: the mart holds data through the 25th, the last day judged.
    let now = common::fixed_now();
    let mut printed = Vec::new();
    let drop = cli::alerts::backtest_command(
        &app,
        "active_users_prefecture_drop",
        None,
        None,
        now,
        &mut printed,
    )
    .await
    .unwrap();
    let printed = String::from_utf8(printed).unwrap();
    let (since, until) = (drop.from, drop.to);
    assert_eq!(until, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    let window = format!("BETWEEN DATE '{since}' AND DATE '{until}'");
    let db = dir.path().join("demo.duckdb");

    // change = -40 % against the same weekday a week before: firing exactly on the days
    // that hold, resolved the first day that does not.
    let expected_drop = days_by_prefecture(
        &db,
        &format!(
            "SELECT prefecture, strftime(day, '%Y-%m-%d') FROM ({HISTORY})
             WHERE day {window} AND w1 IS NOT NULL AND (v - w1) / w1 * 100 <= -40 ORDER BY 1, 2"
        ),
    );
    let expected: BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> = expected_drop
        .iter()
        .map(|(p, days)| (p.clone(), common::spans(days)))
        .collect();
    let found = firing_spans(&drop);
    assert_eq!(found, expected, "{printed}");
    // The incident is Fukuoka's six days, 24 to 19 days before the mart's end, and nothing else.
    let d = |day: u32| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    assert_eq!(expected.keys().collect::<Vec<_>>(), vec!["福岡県"]);
    assert_eq!(expected["福岡県"], vec![(d(1), d(6))]);
    assert!(
        printed.contains("福岡県: firing for the days 2026-11-01 to 2026-11-06"),
        "{printed}"
    );

    // band: outside mean ± 4 sd of the four same weekdays before, for 2 evaluations.
    let unusual = cli::alerts::backtest_command(
        &app,
        "active_users_prefecture_unusual",
        Some(since),
        Some(until),
        now,
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let outside = days_by_prefecture(
        &db,
        &format!(
            "SELECT prefecture, strftime(day, '%Y-%m-%d') FROM (
                SELECT *, (w1 + w2 + w3 + w4) / 4 AS mean,
                       sqrt(((w1 - (w1 + w2 + w3 + w4) / 4) ^ 2 + (w2 - (w1 + w2 + w3 + w4) / 4) ^ 2
                           + (w3 - (w1 + w2 + w3 + w4) / 4) ^ 2 + (w4 - (w1 + w2 + w3 + w4) / 4) ^ 2) / 3) AS sd
                FROM ({HISTORY}))
             WHERE day {window} AND abs(v - mean) > 4 * sd ORDER BY 1, 2"
        ),
    );
    // `for = 2`: a run of breaching days fires on its second day and resolves after it.
    let expected_band: BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> = outside
        .iter()
        .map(|(p, days)| {
            let runs: Vec<(NaiveDate, NaiveDate)> = common::spans(days)
                .into_iter()
                .filter(|(a, b)| a < b)
                .map(|(a, b)| (a + chrono::Days::new(1), b))
                .collect();
            (p.clone(), runs)
        })
        .filter(|(_, runs)| !runs.is_empty())
        .collect();
    let found_band = firing_spans(&unusual);
    assert_eq!(found_band, expected_band);
    assert_eq!(expected_band.keys().collect::<Vec<_>>(), vec!["福岡県"]);
}

#[tokio::test]
async fn a_query_that_reads_the_current_state_cannot_be_replayed_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let error = cli::alerts::backtest_command(
        &app,
        "web_traffic_stale",
        None,
        None,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("cannot be replayed over history"), "{error}");
    let error = cli::alerts::backtest_command(
        &app,
        "signups_flor",
        None,
        None,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("no alert `signups_flor` (did you mean `signups_floor`?)"),
        "{error}"
    );
}

#[test]
fn an_alert_may_only_post_what_its_channel_may_see_and_must_name_real_metrics() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["metrics.toml", "policies.toml"] {
        std::fs::copy(
            common::repo_path(&format!("reports/{file}")),
            dir.path().join(file),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("alerts.toml"),
        r##"
[[alert]]
name = "prefecture_drop"
metric = "active_users"
by = "prefecture"
below = 10
channel = "#growth"
owner = "#data-team"

[[alert]]
name = "typo"
metric = "signup"
below = 10
channel = "#growth"
owner = "#growth"

[[alert]]
name = "no_such_dimension"
metric = "signups"
by = "region"
below = 10
channel = "#growth"
owner = "#growth"
"##,
    )
    .unwrap();
    let files = kpibot::spec::load_dir(
        dir.path(),
        &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    )
    .unwrap();
    let alerts = files
        .iter()
        .find(|f| f.path.ends_with("alerts.toml"))
        .unwrap();
    assert!(
        alerts.alerts.is_empty(),
        "a file with problems loads no alerts"
    );
    let rendered = alerts.render_diagnostics();
    for needle in [
        "alerts.toml:2:1: error: alert `prefecture_drop` posts metric `active_users` to `#growth`, which policy `prefecture_detail` does not allow",
        "alerts.toml:12:10: error: no metric `signup`",
        "did you mean `signups`?",
        "metric `signups` has no dimension `region`",
    ] {
        assert!(
            rendered.contains(needle),
            "missing {needle:?} in:\n{rendered}"
        );
    }
}

/// A split alert's volume floor, over the demo mart: with `min_value` and `min_change`,
/// a prefecture fires on exactly the days DuckDB says the drop held *and* the larger of
/// the two days reached `min_value` *and* the drop was at least `min_change` users; the
/// small prefectures that fire without the floor stay quiet.
#[tokio::test]
async fn a_volume_floor_keeps_small_members_from_firing_on_exactly_the_days_duckdb_says() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    let alert = |name: &str, floor: &str| {
        format!(
            r##"
[[alert]]
name = "{name}"
metric = "active_users"
by = "prefecture"
change = {{ percent = -15, against = "previous_day" }}
channel = "#data-team"
owner = "#data-team"
timezone = "Asia/Tokyo"
{floor}
"##
        )
    };
    std::fs::write(
        reports.join("floor.toml"),
        alert("wobble", "") + &alert("wobble_floored", "min_value = 6000\nmin_change = 3000"),
    )
    .unwrap();
    let settings = common::settings_in(dir.path(), &reports);
    let app = common::app(&settings);
    let now = common::fixed_now();
    let run = |name: &'static str| {
        let app = &app;
        async move {
            cli::alerts::backtest_command(app, name, None, None, now, &mut Vec::new())
                .await
                .unwrap()
        }
    };
    let (unfloored, floored) = (run("wobble").await, run("wobble_floored").await);
    let window = format!("BETWEEN DATE '{}' AND DATE '{}'", floored.from, floored.to);
    let db = dir.path().join("demo.duckdb");
    // Per prefecture and day, from DuckDB: whether the drop held, and whether it was big
    // enough. A value starts firing on a big day the drop holds and fires until a day it
    // does not hold (the floor stops starts, not recoveries).
    let expected = |floor: &str| -> BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> {
        let conn = common::read_only_duckdb(&db);
        let sql = format!(
            "WITH daily AS (
                SELECT prefecture, activity_date AS day, SUM(active_users)::DOUBLE AS v
                FROM mart.daily_active_users GROUP BY 1, 2)
             SELECT d.prefecture, strftime(d.day, '%Y-%m-%d'),
                    (d.v - p.v) / p.v * 100 <= -15, {floor}
             FROM daily d JOIN daily p ON p.prefecture = d.prefecture AND p.day = d.day - 1
             WHERE d.day {window} ORDER BY 1, 2"
        );
        let mut statement = conn.prepare(&sql).unwrap();
        let rows: Vec<(String, String, bool, bool)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut spans: BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> = BTreeMap::new();
        let mut firing: BTreeMap<String, NaiveDate> = BTreeMap::new();
        let mut last: BTreeMap<String, NaiveDate> = BTreeMap::new();
        for (prefecture, day, holds, big) in rows {
            let day: NaiveDate = day.parse().unwrap();
            match firing.get(&prefecture).copied() {
                None if holds && big => {
                    firing.insert(prefecture.clone(), day);
                }
                Some(since) if !holds => {
                    let until = last[&prefecture];
                    spans
                        .entry(prefecture.clone())
                        .or_default()
                        .push((since, until));
                    firing.remove(&prefecture);
                }
                _ => {}
            }
            last.insert(prefecture, day);
        }
        for (prefecture, since) in firing {
            spans
                .entry(prefecture.clone())
                .or_default()
                .push((since, last[&prefecture]));
        }
        spans
    };
    let without = expected("true");
    let with = expected("greatest(d.v, p.v) >= 6000 AND abs(d.v - p.v) >= 3000");
    assert_eq!(firing_spans(&unfloored), without);
    assert_eq!(firing_spans(&floored), with);
    // The floor matters here: small prefectures fire without it, and none with it.
    assert!(
        without.len() > with.len() && !with.is_empty(),
        "{} vs {}",
        without.len(),
        with.len()
    );
    assert!(without.contains_key("鳥取県") && !with.contains_key("鳥取県"));
}

//! Why a number moved, on the real demo mart: one query splits a metric over every
//! dimension in both windows, and the decomposition names the demo's incident (Fukuoka's
//! active users down to about a third, 1–6 November) first, with parts equal to what
//! DuckDB itself sums from the rows; a ratio's rate and mix add up to its change.

mod common;

use chrono::NaiveDate;
use kpibot::explain::{decompose_ratio, decompose_sum, rank_dimensions, share_of_change};
use kpibot::spec::Window;
use kpibot::spec::explain_sql::{Split, explain_sql, members_of, sum_members};
use kpibot::warehouse::QueryJob;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// One number from the demo mart, computed here.
fn number(db: &std::path::Path, sql: &str) -> f64 {
    common::read_only_duckdb(db)
        .query_row(sql, [], |row| row.get::<_, f64>(0))
        .unwrap()
}

#[tokio::test]
async fn the_demo_incident_is_explained_by_fukuoka_in_one_query() {
    let dir = tempfile::tempdir().unwrap();
    let common::Demo {
        settings,
        catalog,
        warehouse,
        ..
    } = common::demo(dir.path(), &common::repo_path("reports")).await;
    let db = settings.warehouse.duckdb.path.clone();
    let asked = Window {
        start: day("2026-11-01"),
        end: day("2026-11-06"),
    };
    let compared = Window {
        start: day("2026-10-25"),
        end: day("2026-10-30"),
    };
    let metric = catalog.metric("active_users").unwrap();
    let dimensions: Vec<&str> = metric.dimensions.keys().map(String::as_str).collect();
    assert!(dimensions.len() >= 3, "{dimensions:?}");
    let (sql, params, split) = explain_sql(
        warehouse.dialect(),
        metric,
        &dimensions,
        &[],
        asked,
        compared,
    )
    .unwrap();
    assert_eq!(split, Split::Sum);
    assert!(sql.contains("GROUPING SETS"), "{sql}");
    let table = warehouse
        .query(
            &sql,
            &params,
            &QueryJob::new(std::time::Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let per_dimension = members_of(&table, &dimensions).unwrap();
    let total = |window: Window, filter: &str| {
        number(
            &db,
            &format!(
                "SELECT COALESCE(SUM(active_users), 0)::DOUBLE FROM mart.daily_active_users
                 WHERE activity_date BETWEEN DATE '{}' AND DATE '{}' {filter}",
                window.start, window.end
            ),
        )
    };
    let change = total(asked, "") - total(compared, "");
    assert!(change < 0.0, "the incident is a drop: {change}");
    let decompositions: Vec<(String, kpibot::explain::Decomposition)> = dimensions
        .iter()
        .zip(&per_dimension)
        .map(|(name, members)| (name.to_string(), decompose_sum(&sum_members(members))))
        .collect();
    for (name, d) in &decompositions {
        // Every dimension's parts add up to the same change, DuckDB's own.
        let parts: f64 = d.members.iter().map(|m| m.change).sum();
        assert!((parts - change).abs() < 1e-6, "{name}: {parts} vs {change}");
        assert!((d.change - change).abs() < 1e-6, "{name}");
    }
    let ranked = rank_dimensions(&decompositions);
    assert_eq!(
        ranked[0].0,
        "prefecture",
        "{:?}",
        ranked.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>()
    );
    let top = &ranked[0].2.members[0];
    assert_eq!(top.member.as_deref(), Some("福岡県"));
    let fukuoka = "AND prefecture = '福岡県'";
    let fukuoka_change = total(asked, fukuoka) - total(compared, fukuoka);
    assert!((top.change - fukuoka_change).abs() < 1e-6);
    let share = share_of_change(top, ranked[0].2).unwrap();
    assert!((share - fukuoka_change / change).abs() < 1e-9);
    assert!(share > 0.5, "Fukuoka carries most of the drop: {share}");
}

#[tokio::test]
async fn a_ratios_change_splits_into_rate_and_mix_that_add_up_to_duckdbs_own() {
    let dir = tempfile::tempdir().unwrap();
    let common::Demo {
        settings,
        catalog,
        warehouse,
        ..
    } = common::demo(dir.path(), &common::repo_path("reports")).await;
    let db = settings.warehouse.duckdb.path.clone();
    let (asked, compared) = (
        Window {
            start: day("2026-11-01"),
            end: day("2026-11-14"),
        },
        Window {
            start: day("2026-10-18"),
            end: day("2026-10-31"),
        },
    );
    let metric = catalog.metric("minutes_per_submission").unwrap();
    let (sql, params, split) = explain_sql(
        warehouse.dialect(),
        metric,
        &["subject"],
        &[],
        asked,
        compared,
    )
    .unwrap();
    assert_eq!(split, Split::Ratio);
    let table = warehouse
        .query(
            &sql,
            &params,
            &QueryJob::new(std::time::Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let members = &members_of(&table, &["subject"]).unwrap()[0];
    let d = decompose_ratio(members).unwrap();
    let ratio = |w: Window| {
        number(
            &db,
            &format!(
                "SELECT SUM(study_minutes)::DOUBLE / SUM(submissions) FROM mart.daily_study
                 WHERE activity_date BETWEEN DATE '{}' AND DATE '{}'",
                w.start, w.end
            ),
        )
    };
    let change = ratio(asked) - ratio(compared);
    assert!((d.change - change).abs() < 1e-9, "{} vs {change}", d.change);
    let parts: f64 = d
        .members
        .iter()
        .map(|m| m.rate.unwrap() + m.mix.unwrap())
        .sum();
    assert!((parts - change).abs() < 1e-9);
    assert!(members.len() >= 2, "{members:?}");
    // Windows that overlap are refused, not explained; a total over windows of unequal
    // length too (a ratio may compare them).
    assert!(explain_sql(warehouse.dialect(), metric, &["subject"], &[], asked, asked).is_err());
    let longer = Window {
        start: day("2026-09-01"),
        end: day("2026-10-31"),
    };
    assert!(
        explain_sql(
            warehouse.dialect(),
            metric,
            &["subject"],
            &[],
            asked,
            longer
        )
        .is_ok()
    );
    let sum = catalog.metric("active_users").unwrap();
    assert!(matches!(
        explain_sql(warehouse.dialect(), sum, &["role"], &[], asked, longer),
        Err(kpibot::spec::explain_sql::ExplainSqlError::UnequalWindows(
            ..
        ))
    ));
}

//! Targets and pacing on `/kpi` answers: the value to date, the target, attainment and the
//! projection in the message and its metadata, equal to what is computed here by hand
//! from the demo mart (linearly, and by last year's shape of the same month).

mod common;

use chrono::{Datelike, NaiveDate};
use kpibot::cli;

fn sum_signups(db: &std::path::Path, start: NaiveDate, end: NaiveDate, organic: bool) -> f64 {
    let filter = if organic {
        "AND channel = 'organic'"
    } else {
        ""
    };
    duckdb::Connection::open(db)
        .unwrap()
        .query_row(
            &format!(
                "SELECT COALESCE(SUM(signups), 0)::DOUBLE FROM mart.daily_signups
                 WHERE signup_date BETWEEN ?::DATE AND ?::DATE {filter}"
            ),
            [start.to_string(), end.to_string()],
            |row| row.get(0),
        )
        .unwrap()
}

fn last_day_with_data(db: &std::path::Path) -> NaiveDate {
    duckdb::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT CAST(MAX(signup_date) AS VARCHAR) FROM mart.daily_signups",
            [],
            |row| row.get::<_, String>(0),
        )
        .unwrap()
        .parse()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

async fn ask(app: &kpibot::app::App, text: &str, out: &std::path::Path) -> serde_json::Value {
    let mut printed = Vec::new();
    cli::ask::ask(app, text, common::fixed_now(), &mut printed)
        .await
        .unwrap();
    let name = text.split_whitespace().next().unwrap();
    serde_json::from_str(&std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap())
        .unwrap()
}

#[tokio::test]
async fn this_months_answers_are_paced_against_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let out = dir.path().join("out");
    let db = settings.warehouse.duckdb.path.clone();

    // A sum against its monthly target, paced linearly over the days with data.
    let message = ask(&app, "signups this month", &out).await;
    let payload = &message["metadata"]["event_payload"];
    let start: NaiveDate = payload["window_start"].as_str().unwrap().parse().unwrap();
    let end: NaiveDate = payload["window_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(start.day(), 1, "`this month` starts on the 1st");
    let through = end.min(last_day_with_data(&db));
    let to_date = sum_signups(&db, start, through, false);
    let elapsed = f64::from(through.day());
    let days = f64::from(
        (start.checked_add_months(chrono::Months::new(1)).unwrap() - start).num_days() as u32,
    );
    let target = &payload["target"];
    assert_eq!(target["value"], 24000.0);
    assert_eq!(target["method"], "linear");
    assert!(
        close(target["to_date"].as_f64().unwrap(), to_date),
        "{target}"
    );
    assert!(
        close(target["attainment"].as_f64().unwrap(), to_date / 24000.0),
        "{target}"
    );
    let projected = to_date * days / elapsed;
    assert!(
        close(target["projected"].as_f64().unwrap(), projected),
        "{target}"
    );
    assert!(
        close(target["pace"].as_f64().unwrap(), projected / 24000.0),
        "{target}"
    );
    // And the reader sees it, right under the title.
    let text = message.to_string();
    let attained = format!("*{:.0}%* attained", to_date / 24000.0 * 100.0);
    assert!(
        text.contains("🎯 Target 24,000") && text.contains(&attained),
        "{text}"
    );

    // One channel's own target, for a question filtered to it.
    let message = ask(&app, "signups this month where channel=organic", &out).await;
    let target = &message["metadata"]["event_payload"]["target"];
    assert_eq!(target["value"], 7000.0);
    let organic = sum_signups(&db, start, through, true);
    assert!(
        close(target["to_date"].as_f64().unwrap(), organic),
        "{target}"
    );

    // Split by channel, no total target applies: no pacing is made up.
    let message = ask(&app, "signups this month by channel", &out).await;
    assert!(message["metadata"]["event_payload"].get("target").is_none());
    // Nor for a window that does not start a month, nor at a grain whose buckets hide the
    // last day with data.
    for question in ["signups last 7 days", "signups this month weekly"] {
        let message = ask(&app, question, &out).await;
        assert!(
            message["metadata"]["event_payload"].get("target").is_none(),
            "{question}"
        );
    }
}

#[tokio::test]
async fn a_month_to_date_metric_is_paced_by_last_years_shape() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let out = dir.path().join("out");
    let db = settings.warehouse.duckdb.path.clone();
    let message = ask(&app, "signups_mtd this month", &out).await;
    let payload = &message["metadata"]["event_payload"];
    let target = &payload["target"];
    let start: NaiveDate = payload["window_start"].as_str().unwrap().parse().unwrap();
    let end: NaiveDate = payload["window_end"].as_str().unwrap().parse().unwrap();
    // A running total ends with the data: paced to the last day with rows.
    let through = end.min(last_day_with_data(&db));
    let to_date = sum_signups(&db, start, through, false);
    assert_eq!(
        target["elapsed_days"].as_u64(),
        Some((through - start).num_days() as u64 + 1)
    );
    assert!(
        close(target["to_date"].as_f64().unwrap(), to_date),
        "{target}"
    );
    // Last year's same month: whole, and to the same day.
    let ly_start = start.with_year(start.year() - 1).unwrap();
    let ly_end =
        ly_start.checked_add_months(chrono::Months::new(1)).unwrap() - chrono::Days::new(1);
    let ly_so_far = ly_start + chrono::Days::new((through - start).num_days() as u64);
    let projected = to_date * sum_signups(&db, ly_start, ly_end, false)
        / sum_signups(&db, ly_start, ly_so_far, false);
    assert_eq!(target["method"], "last_year");
    assert!(
        close(target["projected"].as_f64().unwrap(), projected),
        "{target} vs {projected}"
    );
    let value = target["value"].as_f64().unwrap();
    assert!(close(target["pace"].as_f64().unwrap(), projected / value));
    assert!(
        message
            .to_string()
            .contains("as the same period grew last year")
    );

    // In Japanese, the same line in Japanese.
    let mut printed = Vec::new();
    let mut ja = settings.clone();
    ja.locale = "ja".into();
    cli::ask::ask(
        &common::app(&ja),
        "signups_mtd this month",
        common::fixed_now(),
        &mut printed,
    )
    .await
    .unwrap();
    let json = std::fs::read_to_string(out.join("signups_mtd.json")).unwrap();
    assert!(
        json.contains("🎯 目標") && json.contains("達成率") && json.contains("着地見込み"),
        "{json}"
    );
}

#[test]
fn mistakes_in_targets_are_named_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::repo_path("reports/metrics.toml")).unwrap();
    for (target, expected) in [
        (
            "[[target]]\nmetric = \"signup\"\nper = \"month\"\nvalue = 1\n",
            "no metric is named `signup`",
        ),
        (
            "[[target]]\nmetric = \"minutes_per_submission\"\nper = \"month\"\nvalue = 1\n",
            "is not a total over a month",
        ),
        (
            "[[target]]\nmetric = \"signups\"\nper = \"month\"\n[target.values]\n\"2026-13\" = 5\n",
            "`2026-13` is not a month",
        ),
        (
            "[[target]]\nmetric = \"signups\"\nper = \"week\"\n[target.values]\n\"2026-12-08\" = 5\n",
            "`2026-12-08` is not a week's Monday",
        ),
        (
            "[[target]]\nmetric = \"signups\"\nper = \"month\"\nvalue = 1\nwhere = { region = \"x\" }\n",
            "`region` is not a dimension of `signups`",
        ),
        (
            "[[target]]\nmetric = \"signups\"\nper = \"quarter\"\nvalue = 1\n",
            "`quarter` is not a valid `target[0].per`",
        ),
        (
            "[[target]]\nmetric = \"signups\"\nper = \"month\"\n",
            "a target needs `value` or `values`",
        ),
    ] {
        std::fs::write(dir.path().join("metrics.toml"), format!("{base}\n{target}")).unwrap();
        let files = kpibot::spec::load_dir(
            dir.path(),
            &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
        )
        .unwrap();
        let rendered = files[0].render_diagnostics();
        assert!(
            rendered.contains(expected),
            "expected `{expected}` in:\n{rendered}"
        );
        assert!(rendered.contains("metrics.toml:"), "{rendered}");
    }
}

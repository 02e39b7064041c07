//! Targets and pacing on `/kpi` answers: the value to date, the target, attainment and the
//! projection in the message and its metadata, equal to what is computed here by hand
//! from the demo mart (linearly, and by last year's shape of the same month).

mod common;

use chrono::{Datelike, NaiveDate};
use kpibot::cli;

fn sum_signups(db: &std::path::Path, start: NaiveDate, end: NaiveDate, organic: bool) -> f64 {
    sum_channel(db, start, end, organic.then_some("organic"))
}

fn sum_channel(
    db: &std::path::Path,
    start: NaiveDate,
    end: NaiveDate,
    channel: Option<&str>,
) -> f64 {
    let filter = channel.map_or(String::new(), |c| format!("AND channel = '{c}'"));
    common::read_only_duckdb(db)
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
    // Slack's metadata (and slack-morphism's type for it) holds strings only: a paced
    // answer's message must be one Slack accepts.
    let metadata = serde_json::from_value::<slack_morphism::prelude::SlackMessageMetadata>(
        message["metadata"].clone(),
    );
    assert!(metadata.is_ok(), "{metadata:?}: {}", message["metadata"]);
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
    let target = &common::target_of(payload);
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
    let target = &common::target_of(&message["metadata"]["event_payload"]);
    assert_eq!(target["value"], 7000.0);
    let organic = sum_signups(&db, start, through, true);
    assert!(
        close(target["to_date"].as_f64().unwrap(), organic),
        "{target}"
    );

    // Split by channel, no total target applies: no pacing is made up.
    let message = ask(&app, "signups this month by channel", &out).await;
    assert!(common::target_of(&message["metadata"]["event_payload"]).is_null());
    // Nor for a window that does not start a month, nor at a grain whose buckets hide the
    // last day with data.
    for question in ["signups last 7 days", "signups this month weekly"] {
        let message = ask(&app, question, &out).await;
        assert!(
            common::target_of(&message["metadata"]["event_payload"]).is_null(),
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
    let target = &common::target_of(payload);
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

/// The ads channel's targets live in the demo mart's `mart.kpi_targets`: each answer reads
/// the period's row when it is paced (a changed row shows on the next answer), rows that
/// disagree pace nothing, and a policy on the targets table guards the answer showing it.
#[tokio::test]
async fn targets_kept_in_a_mart_table_are_read_when_paced_and_guarded_by_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    let settings = common::settings_in(dir.path(), &reports);
    let app = common::app(&settings);
    let out = dir.path().join("out");
    let db = settings.warehouse.duckdb.path.clone();
    let question = "signups this month where channel=ads";

    let message = ask(&app, question, &out).await;
    let payload = &message["metadata"]["event_payload"];
    let start: NaiveDate = payload["window_start"].as_str().unwrap().parse().unwrap();
    let end: NaiveDate = payload["window_end"].as_str().unwrap().parse().unwrap();
    let row = "metric = 'signups' AND per = 'month' AND dimension = 'channel' AND member = 'ads'";
    let planned: f64 = common::read_only_duckdb(&db)
        .query_row(
            &format!(
                "SELECT target::DOUBLE FROM mart.kpi_targets WHERE {row} AND period_start = ?::DATE"
            ),
            [start.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let target = &common::target_of(payload);
    assert_eq!(target["value"].as_f64(), Some(planned), "{target}");
    let through = end.min(last_day_with_data(&db));
    let to_date = sum_channel(&db, start, through, Some("ads"));
    assert!(
        close(target["to_date"].as_f64().unwrap(), to_date),
        "{target}"
    );
    assert!(close(
        target["attainment"].as_f64().unwrap(),
        to_date / planned
    ));

    // The planners change this month's target: the next answer shows the new one.
    let write = |sql: String| {
        duckdb::Connection::open(&db)
            .unwrap()
            .execute_batch(&sql)
            .unwrap()
    };
    write(format!(
        "UPDATE mart.kpi_targets SET target = 4321 WHERE {row} AND period_start = DATE '{start}'"
    ));
    let message = ask(&app, question, &out).await;
    assert_eq!(
        common::target_of(&message["metadata"]["event_payload"])["value"],
        4321.0
    );
    assert!(message.to_string().contains("🎯 Target 4,321"), "{message}");

    // A second row for the same month that disagrees: neither is picked.
    write(format!(
        "INSERT INTO mart.kpi_targets VALUES ('signups', 'month', DATE '{start}', 5000, 'channel', 'ads')"
    ));
    let message = ask(&app, question, &out).await;
    assert!(
        common::target_of(&message["metadata"]["event_payload"]).is_null(),
        "{message}"
    );

    // The targets table is the planning team's: only their channel may see an answer
    // that shows it; a question whose target is written in the spec is not affected.
    std::fs::write(
        reports.join("targets_policy.toml"),
        "[[policy]]\nname = \"plans\"\ndescription = \"Targets are the planners'.\"\ntable = \"mart.kpi_targets\"\nowner = \"#planning\"\nallowed_channels = [\"#planning\"]\n",
    )
    .unwrap();
    let common::Demo {
        catalog, warehouse, ..
    } = common::demo(dir.path(), &reports).await;
    let context = common::cli_context(
        &app,
        &catalog,
        warehouse.as_ref(),
        common::fixed_now(),
        kpibot::i18n::Locale::En,
    );
    let asker = |channel: &str| kpibot::adhoc::Asker {
        user_id: "U1".into(),
        channel_id: format!("C_{channel}"),
        channel_name: channel.into(),
        usergroups: Vec::new(),
        operator: false,
    };
    let refused = |answer: &kpibot::adhoc::Answer| {
        matches!(
            answer,
            kpibot::adhoc::Answer::Text(kpibot::adhoc::Reply::Refused { .. })
        )
    };
    let sales = asker("sales");
    let planning = asker("planning");
    assert!(refused(
        &kpibot::adhoc::answer(&context, question, &sales).await
    ));
    assert!(!refused(
        &kpibot::adhoc::answer(&context, question, &planning).await
    ));
    assert!(!refused(
        &kpibot::adhoc::answer(&context, "signups this month where channel=organic", &sales).await
    ));
}

#[tokio::test]
async fn check_dry_run_names_a_targets_table_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let base = std::fs::read_to_string(common::repo_path("reports/metrics.toml")).unwrap();
    std::fs::write(
        reports.join("metrics.toml"),
        format!(
            "{base}\n[[target]]\nmetric = \"signups\"\nper = \"month\"\ntable = \"mart.kpi_target\"\n"
        ),
    )
    .unwrap();
    let settings = common::settings_in(dir.path(), &reports);
    let (ok, stdout, stderr) = common::run_kpibot(
        &["check", reports.to_str().unwrap(), "--dry-run"],
        dir.path(),
        &[(
            "KPIBOT__WAREHOUSE__DUCKDB__PATH",
            settings.warehouse.duckdb.path.to_str().unwrap(),
        )],
    );
    let text = format!("{stdout}{stderr}");
    assert!(!ok, "{text}");
    let line = base.lines().count() + 3;
    assert!(
        text.contains(&format!("metrics.toml:{line}:"))
            && text.contains("the targets of `signups` cannot be read from `mart.kpi_target`"),
        "{text}"
    );
}

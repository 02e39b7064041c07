//! Cumulative and derived metrics answer with the numbers their definitions mean: every
//! type at daily, weekly and monthly grain, split by a dimension and filtered, against a
//! computation written here in plain SQL (window functions and a self join, not the
//! generated query's time spine), over the demo mart.

mod common;

use std::collections::BTreeMap;

use kpibot::cli;

/// (period, dimension) → value, from the CSV an answer wrote.
type Series = BTreeMap<(String, String), f64>;

fn answer_series(csv: &std::path::Path) -> Series {
    let rows = common::parse_csv(&std::fs::read_to_string(csv).unwrap());
    let column = |name: &str| rows[0].iter().position(|c| c == name);
    let (period, value) = (column("period").unwrap(), column("value").unwrap());
    let dimension = column("dimension");
    rows[1..]
        .iter()
        .filter(|r| !r[value].is_empty())
        .map(|r| {
            let d = dimension.map(|i| r[i].clone()).unwrap_or_default();
            ((r[period].clone(), d), r[value].parse().unwrap())
        })
        .collect()
}

/// Runs `sql` (returning period, dimension, value) with the window's dates bound.
fn expected_series(db: &std::path::Path, sql: &str, start: &str, end: &str) -> Series {
    let connection = duckdb::Connection::open(db).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let rows = statement
        .query_map([start, end], |row| {
            Ok((
                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                row.get::<_, Option<f64>>(2)?,
            ))
        })
        .unwrap();
    rows.filter_map(|r| {
        let (key, value) = r.unwrap();
        value.map(|v| (key, v))
    })
    .collect()
}

fn assert_same(question: &str, got: &Series, expected: &Series) {
    assert!(
        !expected.is_empty(),
        "{question}: the check computed nothing"
    );
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{question}: other periods or members"
    );
    for (key, want) in expected {
        let have = got[key];
        assert!(
            (have - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{question}: {key:?} is {have}, the definition means {want}"
        );
    }
}

/// The day a bucket starts, in SQL, for the grain a question asked.
fn bucket(grain: &str, day: &str) -> String {
    match grain {
        "weekly" => format!("CAST(date_trunc('week', {day}) AS DATE)"),
        "monthly" => format!("CAST(date_trunc('month', {day}) AS DATE)"),
        _ => day.to_string(),
    }
}

/// Independent SQL per metric: `daily` is the metric's value on each day (its window
/// functions over whole days), then each bucket keeps its last day within the window.
fn independent_sql(metric: &str, grain: &str, by: Option<&str>, filter: Option<&str>) -> String {
    let dim = by.map_or("''".to_string(), |d| format!("CAST({d} AS VARCHAR)"));
    let partition = by.map_or(String::new(), |d| format!("PARTITION BY {d}"));
    let group = by.map_or(String::new(), |d| format!(", {d}"));
    let filter = filter.map_or(String::new(), |f| format!("WHERE {f}"));
    let daily = match metric {
        // Month to date: a running total restarting each month.
        "signups_mtd" => format!(
            "SELECT signup_date AS day, {dim} AS dim,
                    SUM(SUM(signups)) OVER (PARTITION BY date_trunc('month', signup_date){} ORDER BY signup_date) AS value
             FROM mart.daily_signups {filter} GROUP BY signup_date{group}",
            by.map_or(String::new(), |d| format!(", {d}"))
        ),
        // Rolling 7 days: this day and the 6 before it.
        "active_users_7d" => format!(
            "SELECT activity_date AS day, {dim} AS dim,
                    SUM(SUM(active_users)) OVER ({partition} ORDER BY activity_date
                        RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW) AS value
             FROM mart.daily_active_users {filter} GROUP BY activity_date{group}"
        ),
        // Sign-ups against the same day a week before, by a self join on the date.
        "signups_wow" => format!(
            "WITH d AS (SELECT signup_date, {dim} AS dim, SUM(signups)::DOUBLE AS s
                        FROM mart.daily_signups {filter} GROUP BY signup_date{group})
             SELECT now_.signup_date AS day, now_.dim, now_.s / NULLIF(week_ago.s, 0) - 1 AS value
             FROM d AS now_ JOIN d AS week_ago
               ON week_ago.signup_date = now_.signup_date - 7 AND week_ago.dim = now_.dim"
        ),
        other => panic!("no independent computation for {other}"),
    };
    let kept = if metric == "signups_wow" {
        // A derived metric over simple inputs is computed per bucket from the inputs'
        // bucket totals, so at a coarser grain it is checked only daily (below).
        "value"
    } else {
        "arg_max(value, day)"
    };
    format!(
        "WITH daily AS ({daily})
         SELECT CAST({} AS VARCHAR), dim, {kept}
         FROM daily WHERE day BETWEEN ?::DATE AND ?::DATE
         GROUP BY 1, 2{}",
        bucket(grain, "day"),
        if kept == "value" { ", value" } else { "" }
    )
}

#[tokio::test]
async fn cumulative_and_derived_metrics_are_what_their_definitions_mean() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let now = common::fixed_now();
    let app = common::app(&settings);
    let cases: [(&str, &str, Option<&str>, Option<&str>); 10] = [
        ("signups_mtd last 60 days", "daily", None, None),
        (
            "signups_mtd last 12 weeks weekly by channel",
            "weekly",
            Some("channel"),
            None,
        ),
        ("signups_mtd last 6 months monthly", "monthly", None, None),
        (
            "signups_mtd last 30 days where channel=organic",
            "daily",
            None,
            Some("channel = 'organic'"),
        ),
        (
            "active_users_7d last 28 days by role",
            "daily",
            Some("role"),
            None,
        ),
        ("active_users_7d last 8 weeks weekly", "weekly", None, None),
        (
            "active_users_7d last 3 months monthly by role where role=student,teacher",
            "monthly",
            Some("role"),
            Some("role IN ('student', 'teacher')"),
        ),
        ("signups_wow last 28 days", "daily", None, None),
        (
            "signups_wow last 14 days by channel",
            "daily",
            Some("channel"),
            None,
        ),
        (
            "signups_wow last 14 days where channel=ads",
            "daily",
            None,
            Some("channel = 'ads'"),
        ),
    ];
    for (question, grain, by, filter) in cases {
        let mut out = Vec::new();
        cli::ask::ask(&app, question, now, &mut out).await.unwrap();
        let printed = String::from_utf8(out).unwrap();
        let name = question.split_whitespace().next().unwrap();
        let out_dir = dir.path().join("out");
        let json = std::fs::read_to_string(out_dir.join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("{question}: no answer ({e}): {printed}"));
        let message: serde_json::Value = serde_json::from_str(&json).unwrap();
        let payload = &message["metadata"]["event_payload"];
        let (start, end) = (
            payload["window_start"].as_str().unwrap(),
            payload["window_end"].as_str().unwrap(),
        );
        let got = answer_series(&out_dir.join(format!("{name}.csv")));
        let sql = independent_sql(name, grain, by, filter);
        let expected = expected_series(&settings.warehouse.duckdb.path, &sql, start, end);
        assert_same(question, &got, &expected);
    }
}

#[tokio::test]
async fn a_derived_metric_at_a_coarser_grain_divides_the_inputs_bucket_totals() {
    // MetricFlow computes a derived metric from its inputs at the asked grain: a week's
    // growth is that week's sign-ups over the week before's, not an average of days.
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let mut out = Vec::new();
    cli::ask::ask(
        &app,
        "signups_wow last 8 weeks weekly",
        common::fixed_now(),
        &mut out,
    )
    .await
    .unwrap();
    let out_dir = dir.path().join("out");
    let message: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("signups_wow.json")).unwrap())
            .unwrap();
    let payload = &message["metadata"]["event_payload"];
    let (start, end) = (
        payload["window_start"].as_str().unwrap(),
        payload["window_end"].as_str().unwrap(),
    );
    let sql = "WITH w AS (SELECT CAST(date_trunc('week', signup_date) AS DATE) AS week,
                                SUM(signups)::DOUBLE AS s
                         FROM mart.daily_signups GROUP BY 1)
               SELECT CAST(this.week AS VARCHAR), '', this.s / prev.s - 1
               FROM w AS this JOIN w AS prev ON prev.week = this.week - 7
               WHERE this.week BETWEEN ?::DATE AND ?::DATE";
    let expected = expected_series(&settings.warehouse.duckdb.path, sql, start, end);
    let got = answer_series(&out_dir.join("signups_wow.csv"));
    assert_same("signups_wow weekly", &got, &expected);
}

/// Every mistake in a cumulative or derived metric is named at its line and column, and
/// only the broken metrics are refused.
#[test]
fn mistakes_in_new_metric_types_point_at_the_word() {
    let dir = tempfile::tempdir().unwrap();
    let base = r##"
[[metric]]
name = "signups"
label = "Sign-ups"
table = "mart.daily_signups"
time_column = "signup_date"
measure = "sum"
column = "signups"
owner = "#growth"
"##;
    let broken = [
        // (file text after the base metric, expected "line:col: message" pieces)
        (
            "[[metric]]\nname = \"d\"\nlabel = \"D\"\nowner = \"#g\"\ntype = \"derived\"\nexpr = \"signups / signup\"\n",
            "16:19: error: no metric is named `signup`",
        ),
        (
            "[[metric]]\nname = \"d\"\nlabel = \"D\"\nowner = \"#g\"\ntype = \"derived\"\nexpr = \"signups / (2 - 2)\"\n",
            "16:19: error: cannot read the expression: this divides by zero",
        ),
        (
            "[[metric]]\nname = \"d\"\nlabel = \"D\"\nowner = \"#g\"\ntype = \"derived\"\nexpr = \"signups; DROP TABLE x\"\n",
            "16:16: error: cannot read the expression: `;` follows a complete expression",
        ),
        (
            "[[metric]]\nname = \"d\"\nlabel = \"D\"\nowner = \"#g\"\ntype = \"derived\"\nexpr = \"signups\"\ntable = \"mart.x\"\n",
            "17:9: error: a derived metric has no `table`",
        ),
        (
            "[[metric]]\nname = \"c\"\nlabel = \"C\"\nowner = \"#g\"\ntype = \"cumulative\"\nwindow = \"7 dayz\"\ntable = \"mart.daily_signups\"\ntime_column = \"signup_date\"\nmeasure = \"sum\"\ncolumn = \"signups\"\n",
            "16:10: error: `7 dayz` is not a length of time",
        ),
        (
            "[[metric]]\nname = \"c\"\nlabel = \"C\"\nowner = \"#g\"\ntype = \"cumulative\"\ntable = \"mart.daily_signups\"\ntime_column = \"signup_date\"\nmeasure = \"sum\"\ncolumn = \"signups\"\n",
            "error: a cumulative metric needs `window` or `grain_to_date`",
        ),
        (
            "[[metric]]\nname = \"s\"\nlabel = \"S\"\nowner = \"#g\"\nwindow = \"7 days\"\ntable = \"mart.daily_signups\"\ntime_column = \"signup_date\"\nmeasure = \"sum\"\ncolumn = \"signups\"\n",
            "15:10: error: `window` belongs to a cumulative metric",
        ),
    ];
    for (text, expected) in broken {
        let path = dir.path().join("metrics.toml");
        std::fs::write(&path, format!("{base}\n{text}")).unwrap();
        let files = kpibot::spec::load_dir(
            dir.path(),
            &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
        )
        .unwrap();
        let rendered = files[0].render_diagnostics();
        assert!(
            rendered.contains(expected),
            "expected `{expected}` in:\n{rendered}\nfor:\n{text}"
        );
    }
}

/// A derived metric shows its inputs' numbers, so their own access guards it: an input
/// allowed only in #finance keeps the derived metric there (and private when restricted),
/// for `/kpi` and for an alert's posts alike.
#[test]
fn a_derived_metric_is_guarded_by_its_inputs_access() {
    const METRICS: &str = r##"
[[metric]]
name = "payroll"
label = "Payroll"
table = "mart.daily_signups"
time_column = "signup_date"
measure = "sum"
column = "signups"
owner = "#finance"
restricted = true
allowed_channels = ["#finance"]

[[metric]]
name = "payroll_doubled"
label = "Payroll doubled"
type = "derived"
expr = "payroll * 2"
owner = "#growth"
"##;
    const ALERT: &str = r##"
[[alert]]
name = "payroll_drop"
title = "Payroll fell"
metric = "payroll_doubled"
below = 10
channel = "#general"
owner = "#growth"
cron = "0 0 9 * * *"
"##;
    let load = |text: String| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.toml"), text).unwrap();
        kpibot::spec::load_dir(
            dir.path(),
            &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
        )
        .unwrap()
    };
    let files = load(format!("{METRICS}{ALERT}"));
    // The alert would post the restricted input's numbers to #general: refused.
    let rendered = files[0].render_diagnostics();
    assert!(
        rendered.contains(
            "posts metric `payroll_doubled` to `#general`, which its access does not allow"
        ),
        "{rendered}"
    );
    let catalog = kpibot::catalog::Catalog::from_loaded(&load(METRICS.to_string()));
    let derived = catalog.metric("payroll_doubled").unwrap();
    assert!(derived.access.restricted, "the input is answered privately");
    let gates = kpibot::adhoc::access::metric_gates(
        &catalog,
        derived,
        &kpibot::adhoc::access::base_columns(derived),
    );
    assert!(
        gates
            .iter()
            .any(|g| g.allowed.allowed_channels == ["#finance"]),
        "no gate from the input's own list: {gates:?}"
    );
}

/// An input offset by a month looks back from each day to its own day a month earlier,
/// as MetricFlow does (March 31 reads February 28; February 28 reads January 28 alone),
/// and a month at monthly grain reads the whole month before.
#[tokio::test]
async fn a_month_offset_looks_back_from_each_day() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::copy(
        common::repo_path("reports/metrics.toml"),
        reports.join("metrics.toml"),
    )
    .unwrap();
    std::fs::write(
        reports.join("growth.toml"),
        r##"
[[metric]]
name = "signups_mom"
label = "Sign-ups against a month earlier"
type = "derived"
expr = "signups - signups_month_ago"
inputs = [{ metric = "signups", alias = "signups_month_ago", offset_window = "1 month" }]
owner = "#growth"
"##,
    )
    .unwrap();
    let settings = common::settings_in(dir.path(), &reports);
    let app = common::app(&settings);
    let out = dir.path().join("out");
    for (question, grain) in [
        ("signups_mom last 120 days by channel", "daily"),
        ("signups_mom last 6 months monthly", "monthly"),
    ] {
        let mut printed = Vec::new();
        cli::ask::ask(&app, question, common::fixed_now(), &mut printed)
            .await
            .unwrap();
        let message: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("signups_mom.json")).unwrap())
                .unwrap();
        let payload = &message["metadata"]["event_payload"];
        let (start, end) = (
            payload["window_start"].as_str().unwrap(),
            payload["window_end"].as_str().unwrap(),
        );
        let sql = if grain == "daily" {
            "WITH d AS (SELECT signup_date AS day, channel, SUM(signups)::DOUBLE AS s
                        FROM mart.daily_signups GROUP BY 1, 2)
             SELECT CAST(a.day AS VARCHAR), a.channel, a.s - b.s
             FROM d a JOIN d b ON b.day = CAST(a.day - INTERVAL 1 MONTH AS DATE) AND b.channel = a.channel
             WHERE a.day BETWEEN ?::DATE AND ?::DATE"
        } else {
            "WITH m AS (SELECT CAST(date_trunc('month', signup_date) AS DATE) AS month, '' AS dim,
                               SUM(signups)::DOUBLE AS s FROM mart.daily_signups GROUP BY 1)
             SELECT CAST(a.month AS VARCHAR), a.dim, a.s - b.s
             FROM m a JOIN m b ON b.month = CAST(a.month - INTERVAL 1 MONTH AS DATE)
             WHERE a.month BETWEEN ?::DATE AND ?::DATE"
        };
        let expected = expected_series(&settings.warehouse.duckdb.path, sql, start, end);
        let got = answer_series(&out.join("signups_mom.csv"));
        assert_same(question, &got, &expected);
    }
}

/// A report on a metric names its metric and dimensions as `/kpi` does, or is refused at
/// the word; its SQL is the metric's, generated.
#[test]
fn a_report_on_a_metric_is_checked_and_generated() {
    let report = |query: &str| {
        format!(
            "title = \"T\"\ndescription = \"D\"\nowner = \"#growth\"\n[definition]\nsource = \"mart.daily_signups\"\nrefreshed = \"daily\"\npurpose = \"P\"\n[query]\n{query}\n[chart]\nkind = \"line\"\nx = \"period\"\ny = \"value\"\n"
        )
    };
    for (query, expected) in [
        ("metric = \"signup_mtd\"", "no metric is named `signup_mtd`"),
        (
            "metric = \"signups_mtd\"\nby = \"region\"",
            "`region` is not a dimension of `signups_mtd`",
        ),
        (
            "metric = \"signups_mtd\"\nsql = \"SELECT 1\"",
            "a report on metric `signups_mtd` has no `sql`",
        ),
        (
            "sql = \"SELECT 1\"\nby = \"channel\"",
            "`query.by` belongs to a report on a metric",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        for file in ["metrics.toml", "metric_types.toml"] {
            std::fs::copy(
                common::repo_path(&format!("reports/{file}")),
                dir.path().join(file),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("r.toml"), report(query)).unwrap();
        let files = kpibot::spec::load_dir(
            dir.path(),
            &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
        )
        .unwrap();
        let r = files.iter().find(|f| f.path.ends_with("r.toml")).unwrap();
        let rendered = r.render_diagnostics();
        assert!(
            rendered.contains(expected) && rendered.contains("r.toml:"),
            "{query}: {rendered}"
        );
    }
    // `by` and `where` by the names people use; the SQL is the metric's.
    let dir = tempfile::tempdir().unwrap();
    for file in ["metrics.toml", "metric_types.toml"] {
        std::fs::copy(
            common::repo_path(&format!("reports/{file}")),
            dir.path().join(file),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("r.toml"),
        report("metric = \"signups_mtd\"\nwhere = { \"流入経路\" = \"organic\" }"),
    )
    .unwrap();
    let files = kpibot::spec::load_dir(
        dir.path(),
        &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    )
    .unwrap();
    let r = files.iter().find(|f| f.path.ends_with("r.toml")).unwrap();
    let spec = r
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("{}", r.render_diagnostics()));
    assert!(
        spec.query
            .sql
            .contains("CAST(\"channel\" AS VARCHAR) IN (@filter_0_0)"),
        "{}",
        spec.query.sql
    );
    assert!(
        spec.query.sql.contains("generate_series"),
        "{}",
        spec.query.sql
    );
}

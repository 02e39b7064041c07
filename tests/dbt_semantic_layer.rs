//! dbt's semantic manifest read as it is: every metric kpibot can compute becomes a
//! catalog metric under its dbt name with the numbers MetricFlow's definitions mean (held
//! to SQL written here), what it cannot compute is listed with its reason, policies cover
//! dbt metrics by their tables, and a changed manifest is seen by hot reload.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use kpibot::catalog::Catalog;
use kpibot::cli;
use kpibot::settings::Settings;
use kpibot::spec::{self, SpecDefaults};

fn dbt_settings(dir: &std::path::Path, reports: &std::path::Path) -> Settings {
    let mut settings = common::settings_in(dir, reports);
    settings.dbt.semantic_manifest = Some(common::repo_path("dbt/semantic_manifest.json"));
    settings.dbt.manifest = Some(common::repo_path("dbt/manifest.json"));
    settings
}

fn defaults_with(manifest: PathBuf) -> SpecDefaults {
    let mut defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
    defaults.dbt.semantic_manifest = Some(manifest);
    defaults
}

/// (period, dimension) → value from an answer's CSV.
fn answer(dir: &std::path::Path, name: &str) -> BTreeMap<(String, String), f64> {
    let rows =
        common::parse_csv(&std::fs::read_to_string(dir.join(format!("out/{name}.csv"))).unwrap());
    let col = |c: &str| rows[0].iter().position(|x| x == c);
    let (p, v, d) = (
        col("period").unwrap(),
        col("value").unwrap(),
        col("dimension"),
    );
    rows[1..]
        .iter()
        .filter(|r| !r[v].is_empty())
        .map(|r| {
            let key = (r[p].clone(), d.map(|i| r[i].clone()).unwrap_or_default());
            (key, r[v].parse().unwrap())
        })
        .collect()
}

fn window(dir: &std::path::Path, name: &str) -> (String, String) {
    let json = std::fs::read_to_string(dir.join(format!("out/{name}.json"))).unwrap();
    let message: serde_json::Value = serde_json::from_str(&json).unwrap();
    let payload = &message["metadata"]["event_payload"];
    (
        payload["window_start"].as_str().unwrap().to_string(),
        payload["window_end"].as_str().unwrap().to_string(),
    )
}

fn expected(
    db: &std::path::Path,
    sql: &str,
    (start, end): &(String, String),
) -> BTreeMap<(String, String), f64> {
    let connection = duckdb::Connection::open(db).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    statement
        .query_map([start, end], |row| {
            Ok((
                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                row.get::<_, Option<f64>>(2)?,
            ))
        })
        .unwrap()
        .filter_map(|r| {
            let (k, v) = r.unwrap();
            v.map(|v| (k, v))
        })
        .collect()
}

#[tokio::test]
async fn dbt_metrics_are_asked_by_their_dbt_names_with_the_numbers_they_mean() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dbt_settings(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let now = common::fixed_now();
    let db = settings.warehouse.duckdb.path.clone();
    // (question, independent SQL over the window's bounds ?1..?2)
    let cases = [
        (
            "new_accounts_organic last 14 days",
            "SELECT CAST(signup_date AS VARCHAR), '', SUM(signups) FROM mart.daily_signups
             WHERE channel = 'organic' AND signup_date BETWEEN ?::DATE AND ?::DATE GROUP BY 1",
        ),
        (
            // grain_to_date month with period_agg last: each week's last day's MTD.
            "new_accounts_mtd last 8 weeks weekly by channel",
            "WITH d AS (SELECT signup_date AS day, channel,
                          SUM(SUM(signups)) OVER (PARTITION BY date_trunc('month', signup_date), channel ORDER BY signup_date) AS v
                        FROM mart.daily_signups GROUP BY 1, 2)
             SELECT CAST(CAST(date_trunc('week', day) AS DATE) AS VARCHAR), channel, arg_max(v, day)
             FROM d WHERE day BETWEEN ?::DATE AND ?::DATE GROUP BY 1, 2",
        ),
        (
            // A 28-day window with dbt's default period_agg `first`: a month shows the
            // value of its first day in the window.
            "user_days_28d last 3 months monthly by role",
            "WITH d AS (SELECT activity_date AS day, role,
                          SUM(SUM(active_users)) OVER (PARTITION BY role ORDER BY activity_date
                            RANGE BETWEEN INTERVAL 27 DAYS PRECEDING AND CURRENT ROW) AS v
                        FROM mart.daily_active_users GROUP BY 1, 2)
             SELECT CAST(CAST(date_trunc('month', day) AS DATE) AS VARCHAR), role, arg_min(v, day)
             FROM d WHERE day BETWEEN ?::DATE AND ?::DATE GROUP BY 1, 2",
        ),
        (
            // A ratio: the sums divided per bucket, not an average of daily ratios.
            "minutes_per_assignment last 8 weeks weekly by subject",
            "SELECT CAST(CAST(date_trunc('week', activity_date) AS DATE) AS VARCHAR), subject,
                    SUM(study_minutes)::DOUBLE / SUM(submissions)
             FROM mart.daily_study WHERE activity_date BETWEEN ?::DATE AND ?::DATE GROUP BY 1, 2",
        ),
        (
            "new_accounts_wow last 28 days",
            "WITH d AS (SELECT signup_date AS day, SUM(signups)::DOUBLE AS s FROM mart.daily_signups GROUP BY 1)
             SELECT CAST(a.day AS VARCHAR), '', (a.s - b.s) / b.s
             FROM d a JOIN d b ON b.day = a.day - 7 WHERE a.day BETWEEN ?::DATE AND ?::DATE",
        ),
    ];
    for (question, sql) in cases {
        let mut out = Vec::new();
        cli::ask::ask(&app, question, now, &mut out).await.unwrap();
        let printed = String::from_utf8(out).unwrap();
        let name = question.split_whitespace().next().unwrap();
        assert!(printed.contains(" rows → "), "{question}: {printed}");
        let got = answer(dir.path(), name);
        let want = expected(&db, sql, &window(dir.path(), name));
        assert!(!want.is_empty(), "{question}: the check computed nothing");
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{question}"
        );
        for (key, w) in &want {
            let g = got[key];
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{question}: {key:?} is {g}, dbt's definition means {w}"
            );
        }
    }
    // `describe` shows the definition, the SQL and dbt's own descriptions.
    let mut out = Vec::new();
    cli::ask::ask(&app, "describe new_accounts_mtd", now, &mut out)
        .await
        .unwrap();
    let described = String::from_utf8(out).unwrap();
    for needle in [
        "from the start of the month to each day",
        "DATE_TRUNC('month'",
        "From dbt's documentation",
        "Acquisition channel: organic, referral, ads or school_contract.",
    ] {
        assert!(
            described.contains(needle),
            "missing {needle:?} in {described}"
        );
    }
}

#[test]
fn what_kpibot_cannot_compute_is_listed_with_its_reason() {
    let defaults = defaults_with(common::repo_path(
        "tests/fixtures/dbt/jaffle_shop_semantic_manifest.json",
    ));
    let empty = tempfile::tempdir().unwrap();
    let files = spec::load_dir(empty.path(), &defaults).unwrap();
    let manifest = files.last().unwrap();
    assert!(
        manifest.diagnostics.is_empty(),
        "{}",
        manifest.render_diagnostics()
    );
    let mut loaded: Vec<&str> = manifest.metrics.iter().map(|m| m.name.as_str()).collect();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "average_order_value",
            "customers_with_orders",
            "food_order_count",
            "food_order_pct",
            "order_count",
            "revenue",
            "revenue_growth_mom",
            "revenue_mtd",
            "trailing_7d_orders",
        ]
    );
    let reasons: Vec<&str> = manifest
        .unsupported
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    for (name, reason) in [
        ("large_orders", "beyond kpibot's"),
        ("order_total_zero_filled", "fill_nulls_with"),
        ("cumulative_revenue", "over all time"),
        ("revenue_share_start_of_month", "offset_to_grain"),
        ("pct_rev_from_ads", "coalesce"),
        (
            "food_revenue_by_location",
            "needs a join to another semantic model",
        ),
        ("customer_balance", "semi-additive"),
        ("repeat_purchase", "conversion metrics"),
        ("customer_order_number", "SQL expression"),
    ] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(&format!("`{name}`")) && r.contains(reason)),
            "no `{reason}` reason for {name} in {reasons:#?}"
        );
    }
    // Every note points at the entry in the file.
    assert!(manifest.unsupported.iter().all(|d| d.span.start > 0));
    let catalog = Catalog::from_loaded(&files);
    let pct = catalog.metric("food_order_pct").unwrap();
    // The ratio's numerator keeps its own filter (`is_food_order = true`).
    let (sql, params) = spec::metric_sql::metric_sql(
        kpibot::warehouse::Dialect::BigQuery,
        pct,
        spec::metric_sql::Grain::Day,
        None,
        &[],
    );
    assert!(sql.contains("`is_food_order`"), "{sql}");
    assert!(
        params
            .values()
            .any(|v| *v == kpibot::warehouse::ParamValue::Text("true".into())),
        "{params:?}"
    );
    // A dbt user's `entity__dimension` names the dimension too.
    assert_eq!(
        spec::names::dimension_of(
            catalog.metric("revenue").unwrap(),
            "order_id__is_food_order"
        )
        .map(|(column, _)| column),
        Some("is_food_order")
    );
}

#[test]
fn a_broken_manifest_is_named_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semantic_manifest.json");
    std::fs::write(
        &path,
        "{\n  \"metrics\": [\n    {\"name\": \"x\",, }\n  ]\n}\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let files = spec::load_dir(empty.path(), &defaults_with(path)).unwrap();
    let rendered = files.last().unwrap().render_diagnostics();
    assert!(
        rendered.contains("semantic_manifest.json:3:")
            && rendered.contains("not a semantic manifest"),
        "{rendered}"
    );
}

#[test]
fn policies_cover_dbt_metrics_by_the_tables_they_read() {
    let reports = tempfile::tempdir().unwrap();
    std::fs::write(
        reports.path().join("policies.toml"),
        "[[policy]]\nname = \"growth_only\"\ndescription = \"Sign-ups are the growth team's.\"\ntable = \"mart.daily_signups\"\nowner = \"#growth\"\nallowed_channels = [\"#growth\"]\n",
    )
    .unwrap();
    let files = spec::load_dir(
        reports.path(),
        &defaults_with(common::repo_path("dbt/semantic_manifest.json")),
    )
    .unwrap();
    assert!(
        files.iter().all(|f| f.diagnostics.is_empty()),
        "{}",
        files[0].render_diagnostics()
    );
    let catalog = Catalog::from_loaded(&files);
    for name in ["new_accounts", "new_accounts_mtd", "new_accounts_wow"] {
        let metric = catalog.metric(name).unwrap();
        let policies =
            catalog.metric_policies(metric, &kpibot::adhoc::access::base_columns(metric));
        assert!(
            policies.iter().any(|p| p.name == "growth_only"),
            "{name} is not covered by the policy on its table"
        );
    }
    let other = catalog.metric("minutes_per_assignment").unwrap();
    assert!(
        catalog
            .metric_policies(other, &kpibot::adhoc::access::base_columns(other))
            .is_empty()
    );
}

#[test]
fn a_changed_manifest_is_seen_by_hot_reload() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("semantic_manifest.json");
    std::fs::copy(common::repo_path("dbt/semantic_manifest.json"), &manifest).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let defaults = defaults_with(manifest.clone());
    let before = kpibot::catalog::reload::fingerprint(reports.path(), &defaults);
    assert!(
        before.contains_key(&manifest),
        "the manifest is not watched"
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"New accounts\"", "\"New accounts (dbt)\""),
    )
    .unwrap();
    assert_ne!(
        before,
        kpibot::catalog::reload::fingerprint(reports.path(), &defaults)
    );
}

/// Whatever is in the manifest, the rest of the bot keeps working: a manifest with no
/// metric kpibot computes, one named like a native metric, one over an hourly window or
/// over an unavailable metric, and a half-written file during a reload each cost only
/// those metrics (listed with the reason), never every answer.
#[test]
fn a_manifest_problem_costs_only_its_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("semantic_manifest.json");
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("dbt/semantic_manifest.json")).unwrap(),
    )
    .unwrap();
    let metrics = json["metrics"].as_array_mut().unwrap();
    // Named like the TOML metric `signups`; an hourly window; a ratio over an
    // unavailable metric.
    let mut clash = metrics[0].clone();
    clash["name"] = "signups".into();
    let mut hourly = metrics[3].clone();
    hourly["name"] = "hourly_window".into();
    hourly["type_params"]["cumulative_type_params"]["window"]["granularity"] = "hour".into();
    let mut over_unavailable = metrics[6].clone();
    over_unavailable["name"] = "ratio_over_conversion".into();
    over_unavailable["type_params"]["numerator"]["name"] = "signup_to_activity".into();
    metrics.extend([clash, hourly, over_unavailable]);
    std::fs::write(&manifest, serde_json::to_vec(&json).unwrap()).unwrap();
    let defaults = defaults_with(manifest.clone());
    let reports = common::repo_path("reports");
    let (catalog, broken) =
        kpibot::catalog::load(&reports, &defaults, &Catalog::default()).unwrap();
    assert!(
        broken.is_empty(),
        "{:?}",
        broken
            .iter()
            .map(|f| f.render_diagnostics())
            .collect::<Vec<_>>()
    );
    assert!(!catalog.policies_incomplete());
    assert!(catalog.metric("new_accounts_mtd").is_some());
    assert_eq!(
        catalog.metric("signups").unwrap().path,
        reports.join("metrics.toml")
    );
    for gone in ["hourly_window", "ratio_over_conversion"] {
        assert!(catalog.metric(gone).is_none(), "{gone}");
    }
    let files = spec::load_dir(&reports, &defaults).unwrap();
    let notes: Vec<&str> = files
        .last()
        .unwrap()
        .unsupported
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    for reason in [
        "metric name `signups` is already taken",
        "granularity `hour`",
        "`signup_to_activity`",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(reason)),
            "no {reason:?} in {notes:#?}"
        );
    }

    // A manifest with nothing kpibot computes, then one cut off mid-write: the reports
    // still answer, and the last good dbt metrics stay.
    std::fs::write(&manifest, r#"{"semantic_models": [], "metrics": []}"#).unwrap();
    let (empty, broken) = kpibot::catalog::load(&reports, &defaults, &catalog).unwrap();
    assert!(broken.is_empty() && !empty.policies_incomplete());
    let text = serde_json::to_string(&json).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    let (after, broken) = kpibot::catalog::load(&reports, &defaults, &catalog).unwrap();
    assert_eq!(broken.len(), 1, "the cut-off manifest is reported");
    assert!(
        !after.policies_incomplete(),
        "a broken manifest does not stop every answer"
    );
    assert!(
        after.metric("new_accounts_mtd").is_some(),
        "its last good metrics stay"
    );
    assert!(after.get("daily_active_users").is_some());
}

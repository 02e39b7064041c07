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
    // Windows that overlap are refused, not explained.
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
    // A total over windows of different lengths (November against October) is explained
    // as the post compares it: total against total, the parts adding up exactly.
    let sum = catalog.metric("active_users").unwrap();
    let (sql, params, _) =
        explain_sql(warehouse.dialect(), sum, &["role"], &[], asked, longer).unwrap();
    let job = QueryJob::new(std::time::Duration::from_secs(30));
    let table = warehouse.query(&sql, &params, &job).await.unwrap();
    let d = decompose_sum(&sum_members(&members_of(&table, &["role"]).unwrap()[0]));
    let users = |w: Window| {
        number(
            &db,
            &format!(
                "SELECT SUM(active_users)::DOUBLE FROM mart.daily_active_users
                 WHERE activity_date BETWEEN DATE '{}' AND DATE '{}'",
                w.start, w.end
            ),
        )
    };
    assert!((d.change - (users(asked) - users(longer))).abs() < 1e-6);
}

/// The demo incident's days at [`common::fixed_now`]: Fukuoka's outage, 24 to 19 days
/// before the mart's last day.
fn incident() -> (Window, Window) {
    let asked = common::incident_window(common::tokyo_yesterday(common::fixed_now()));
    (asked, asked.previous())
}

fn asker(channel: &str) -> kpibot::adhoc::Asker {
    kpibot::adhoc::Asker {
        user_id: "U0ASKER".into(),
        channel_id: format!("C_{channel}"),
        channel_name: channel.into(),
        usergroups: Vec::new(),
        operator: false,
    }
}

/// The explanation an answer carries: its message and CSV, or the text it answered.
fn explanation(answer: &kpibot::adhoc::Answer) -> (serde_json::Value, String) {
    match answer {
        kpibot::adhoc::Answer::Chart { rendered, .. } => {
            (rendered.message.clone(), rendered.csv.clone())
        }
        kpibot::adhoc::Answer::Text(reply) => {
            panic!("no explanation: {}", reply.text(kpibot::i18n::Locale::En))
        }
    }
}

#[tokio::test]
async fn kpi_why_names_fukuoka_first_with_the_parts_duckdb_sums_in_both_languages() {
    use kpibot::i18n::Locale;
    let dir = tempfile::tempdir().unwrap();
    let common::Demo {
        settings,
        app,
        catalog,
        warehouse,
    } = common::demo(dir.path(), &common::repo_path("reports")).await;
    let db = settings.warehouse.duckdb.path.clone();
    let (asked, compared) = incident();
    let sum = |w: Window, filter: &str| {
        number(
            &db,
            &format!(
                "SELECT COALESCE(SUM(active_users), 0)::DOUBLE FROM mart.daily_active_users
                 WHERE activity_date BETWEEN DATE '{}' AND DATE '{}' {filter}",
                w.start, w.end
            ),
        )
    };
    let fukuoka = "AND prefecture = '福岡県'";
    let fukuoka_change = sum(asked, fukuoka) - sum(compared, fukuoka);
    let total_change = sum(asked, "") - sum(compared, "");
    for (locale, text, share_words) in [
        (
            Locale::En,
            format!("why active_users {}..{}", asked.start, asked.end),
            "of the drop",
        ),
        (
            Locale::Ja,
            format!("なぜ active_users {}..{}", asked.start, asked.end),
            "減少の",
        ),
        (
            Locale::Ja,
            format!(
                "{}..{} のアクティブユーザーはなぜ減った？",
                asked.start, asked.end
            ),
            "減少の",
        ),
    ] {
        let context = common::cli_context(&app, &catalog, &*warehouse, common::fixed_now(), locale);
        // Asked in #sales, which the prefecture policy allows.
        let answer = kpibot::adhoc::answer(&context, &text, &asker("sales")).await;
        let (message, csv) = explanation(&answer);
        let payload = &message["metadata"]["event_payload"];
        assert_eq!(
            message["metadata"]["event_type"], "kpibot_explanation",
            "{text}"
        );
        assert_eq!(payload["metric"], "active_users");
        assert_eq!(payload["asked_start"], asked.start.to_string());
        assert_eq!(payload["compared_end"], compared.end.to_string());
        assert_eq!(payload["dimension"], "prefecture", "{text}: {payload}");
        assert_eq!(payload["member_1"], "福岡県");
        // Slack's payload values are strings; the numbers are written in full.
        let number = |key: &str| payload[key].as_str().unwrap().parse::<f64>().unwrap();
        assert!((number("change_1") - fukuoka_change).abs() < 1e-6);
        assert!((number("change") - total_change).abs() < 1e-6);
        // The parts shown and the rest folded add up to the change, exactly.
        let shown: f64 = (1..=number("members") as usize)
            .map(|i| number(&format!("change_{i}")))
            .sum::<f64>()
            + payload["others_change"]
                .as_str()
                .map_or(0.0, |v| v.parse::<f64>().unwrap());
        assert!(
            (shown - total_change).abs() < 1e-6,
            "{shown} vs {total_change}"
        );
        let share = format!("{:.0}%", fukuoka_change / total_change * 100.0);
        let texts = common::mrkdwn_texts(&message).join("\n");
        assert!(texts.contains("福岡県"), "{texts}");
        assert!(
            texts.contains(&share) && texts.contains(share_words),
            "{share}: {texts}"
        );
        // The CSV has every member of every dimension the asker may see.
        let rows = common::parse_csv(&csv);
        assert!(rows.iter().any(|r| r[0] == "role"));
        assert!(rows.iter().filter(|r| r[0] == "prefecture").count() >= 47);
    }
}

#[tokio::test]
async fn a_dimension_the_channel_may_not_see_is_never_computed_named_or_hinted() {
    let dir = tempfile::tempdir().unwrap();
    let common::Demo {
        app,
        catalog,
        warehouse,
        ..
    } = common::demo(dir.path(), &common::repo_path("reports")).await;
    let (asked, _) = incident();
    let context = common::cli_context(
        &app,
        &catalog,
        &*warehouse,
        common::fixed_now(),
        kpibot::i18n::Locale::Ja,
    );
    let question = format!("why active_users {}..{}", asked.start, asked.end);
    // #general may not see prefectures (the example policy): the explanation there uses
    // the other dimensions, and neither the dimension nor any prefecture appears anywhere.
    let answer = kpibot::adhoc::answer(&context, &question, &asker("general")).await;
    let (message, csv) = explanation(&answer);
    let everything = format!("{message}\n{csv}");
    for hidden in ["prefecture", "Prefecture", "都道府県", "福岡県", "東京都"] {
        assert!(!everything.contains(hidden), "{hidden} in {everything}");
    }
    assert!(matches!(
        answer,
        kpibot::adhoc::Answer::Chart {
            ephemeral: false,
            ..
        }
    ));
    assert_ne!(message["metadata"]["event_payload"]["dimension"], "");
    // Asking for it by name there is refused, with nothing computed.
    let by = format!("{question} by prefecture");
    let refused = kpibot::adhoc::answer(&context, &by, &asker("general")).await;
    assert!(
        matches!(
            &refused,
            kpibot::adhoc::Answer::Text(kpibot::adhoc::Reply::Refused { .. })
        ),
        "{refused:?}"
    );
}

/// The action ids of a message's buttons.
fn buttons(message: &serde_json::Value) -> Vec<String> {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .filter_map(|e| e["action_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn why_is_offered_under_posts_and_answers_whose_metric_splits_and_that_compare() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    let report = |headline: &str| {
        format!(
            r##"title = "Active users this week"
description = "Active users per day, compared with the week before."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "testing"

[query]
metric = "active_users"
period = "last 7 days"

[chart]
kind = "line"
x = "period"
y = "value"
headline = "{headline}"

[[schedule]]
cron = "0 0 9 * * *"
channel = "#data-team"
"##
        )
    };
    std::fs::write(reports.join("users_weekly.toml"), report("total")).unwrap();
    std::fs::write(reports.join("users_latest.toml"), report("last")).unwrap();
    let common::Demo {
        app,
        catalog,
        warehouse,
        ..
    } = common::demo(dir.path(), &reports).await;
    let now = common::fixed_now();
    let post = |id: &str| {
        let spec = catalog.get(id).unwrap().clone();
        let warehouse = &*warehouse;
        async move {
            let options = kpibot::pipeline::RunOptions::new(
                now,
                std::time::Duration::from_secs(30),
                kpibot::warehouse::Trigger::Cli,
            );
            kpibot::pipeline::run(warehouse, &spec, &options)
                .await
                .unwrap()
                .rendered
                .message
        }
    };
    // A scheduled post on a metric that splits, headlining its window's total: Why?. One
    // headlining its last day (Why? would explain another number), on a running total
    // (which does not split into members' parts) or hand-written SQL: no button.
    assert!(buttons(&post("users_weekly").await).contains(&"kpi_why".to_string()));
    assert!(!buttons(&post("users_latest").await).contains(&"kpi_why".to_string()));
    assert!(!buttons(&post("signups_month_to_date").await).contains(&"kpi_why".to_string()));
    assert!(!buttons(&post("daily_active_users").await).contains(&"kpi_why".to_string()));
    // A report in SQL that names the metric its headline is (`[chart] metric`): Why?.
    assert!(buttons(&post("signups_by_channel").await).contains(&"kpi_why".to_string()));
    // An answer: a sum or a ratio that compares, yes; a distinct count or `compare none`, no.
    let context = common::cli_context(&app, &catalog, &*warehouse, now, kpibot::i18n::Locale::En);
    let answer = |text: &str| {
        let context = &context;
        let text = text.to_string();
        async move {
            match kpibot::adhoc::answer(context, &text, &asker("data-team")).await {
                kpibot::adhoc::Answer::Chart { rendered, .. } => buttons(&rendered.message),
                kpibot::adhoc::Answer::Text(reply) => {
                    panic!("{text}: {}", reply.text(kpibot::i18n::Locale::En))
                }
            }
        }
    };
    assert!(
        answer("active_users last 7 days")
            .await
            .contains(&"kpi_why".to_string())
    );
    // A report asked again offers it as its post does.
    assert!(
        answer("signups_by_channel")
            .await
            .contains(&"kpi_why".to_string())
    );
    assert!(
        answer("minutes_per_submission last 7 days")
            .await
            .contains(&"kpi_why".to_string())
    );
    assert!(
        !answer("active_users last 7 days compare none")
            .await
            .contains(&"kpi_why".to_string())
    );
    assert!(
        !answer("signups_mtd last 7 days")
            .await
            .contains(&"kpi_why".to_string())
    );
}

#[tokio::test]
async fn why_about_a_report_keeps_the_reports_own_access() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    std::fs::write(
        reports.join("exec_users.toml"),
        r##"title = "Users for the executives"
description = "Active users, for the executive channel only."
owner = "#exec"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "testing"

[query]
metric = "active_users"
period = "last 7 days"

[chart]
kind = "line"
x = "period"
y = "value"
headline = "total"

[access]
allowed_channels = ["#exec"]

[[schedule]]
cron = "0 0 9 * * *"
channel = "#exec"
"##,
    )
    .unwrap();
    let common::Demo {
        app,
        catalog,
        warehouse,
        ..
    } = common::demo(dir.path(), &reports).await;
    assert!(catalog.get("exec_users").is_some());
    let context = common::cli_context(
        &app,
        &catalog,
        &*warehouse,
        common::fixed_now(),
        kpibot::i18n::Locale::En,
    );
    let ask = |text: &'static str, channel: &'static str| {
        let context = &context;
        async move { kpibot::adhoc::answer(context, text, &asker(channel)).await }
    };
    // The metric itself is open; the report on it is #exec's: asking why about the report
    // elsewhere explains nothing, as asking for the report would.
    assert!(matches!(
        ask("active_users last 7 days", "general").await,
        kpibot::adhoc::Answer::Chart { .. }
    ));
    for question in ["exec_users", "why exec_users"] {
        let answer = ask(question, "general").await;
        assert!(
            matches!(
                &answer,
                kpibot::adhoc::Answer::Text(
                    kpibot::adhoc::Reply::Refused { .. } | kpibot::adhoc::Reply::Unknown(_)
                )
            ),
            "{question}: {answer:?}"
        );
    }
    let (message, _) = explanation(&ask("why exec_users", "exec").await);
    assert_eq!(
        message["metadata"]["event_payload"]["metric"],
        "active_users"
    );
    // A report takes a period only: the asker's own `where` is not silently dropped.
    assert!(matches!(
        ask("why exec_users where role=student", "exec").await,
        kpibot::adhoc::Answer::Text(kpibot::adhoc::Reply::NotAMetric { .. })
    ));
}

#[test]
fn a_headline_metric_must_exist_and_split_into_parts() {
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    let sql_report = |metric: &str, headline: &str| {
        format!(
            r##"title = "Sign-ups, {metric}, {headline}"
description = "d"
owner = "#growth"

[definition]
source = "mart.daily_signups"
refreshed = "daily"
purpose = "testing"

[query]
sql = "SELECT signup_date AS day, SUM(signups) AS signups FROM mart.daily_signups WHERE signup_date BETWEEN @start_date AND @end_date GROUP BY 1"
period = "last 14 days"

[chart]
kind = "line"
x = "day"
y = "signups"
headline = "{headline}"
metric = "{metric}"
"##
        )
    };
    for (file, metric, headline) in [
        ("typo.toml", "signup", "total"),
        ("running.toml", "signups_mtd", "total"),
        ("ratio.toml", "minutes_per_submission", "total"),
        ("latest.toml", "signups", "last"),
        ("fine.toml", "signups", "total"),
    ] {
        std::fs::write(reports.join(file), sql_report(metric, headline)).unwrap();
    }
    // A report on a metric already names the one Why? explains.
    let on_metric = sql_report("signups", "total").replace(
        "sql = \"SELECT signup_date AS day, SUM(signups) AS signups FROM mart.daily_signups WHERE signup_date BETWEEN @start_date AND @end_date GROUP BY 1\"",
        "metric = \"signups\"",
    );
    assert!(
        on_metric.contains("[query]\nmetric = \"signups\""),
        "{on_metric}"
    );
    std::fs::write(
        reports.join("both.toml"),
        on_metric.replace("Sign-ups, signups, total", "Sign-ups on the metric"),
    )
    .unwrap();
    let files = kpibot::spec::load_dir(
        &reports,
        &kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    )
    .unwrap();
    let rendered = |name: &str| {
        files
            .iter()
            .find(|f| f.path.ends_with(name))
            .unwrap()
            .render_diagnostics()
    };
    let typo = rendered("typo.toml");
    assert!(
        typo.contains("typo.toml:19:10: error: no metric is named `signup`")
            && typo.contains("did you mean `signups`?"),
        "{typo}"
    );
    for (file, says) in [
        ("running.toml", "metric `signups_mtd` is not a sum or count"),
        (
            "ratio.toml",
            "metric `minutes_per_submission` is not a sum or count",
        ),
        ("latest.toml", "but `headline` is not `total`"),
        (
            "both.toml",
            "`[chart] metric` is for a report written in SQL",
        ),
    ] {
        let text = rendered(file);
        assert!(text.contains(says), "{file}: {text}");
    }
    assert_eq!(rendered("fine.toml"), "");
}

//! What people read, snapshot-tested so a change to it is reviewed like a change to code:
//! every example report's Slack message body (the folder JSON is the exact
//! `chat.postMessage` body), a `/kpi` chart answer's message, and the main `/kpi` text
//! replies (help, list, describe, did-you-mean, mistakes, a refusal, a failure).

mod common;

use kpibot::adhoc::{self, Answer, Asker};
use kpibot::cli;
use kpibot::i18n::Locale;

/// The demo run's outputs, built once per test (each test has its own folder).
async fn demo_messages(dir: &std::path::Path) -> Vec<(String, String)> {
    let settings = common::settings_in(dir, &common::repo_path("reports"));
    let out = dir.join("out");
    let failed = cli::run::demo(
        &common::app(&settings),
        &out,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(failed, 0);
    let mut messages: Vec<(String, String)> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                serde_json::to_string_pretty(&value).unwrap(),
            )
        })
        .collect();
    messages.sort();
    messages
}

#[tokio::test]
async fn every_example_reports_message_is_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let messages = demo_messages(dir.path()).await;
    assert_eq!(
        messages.len(),
        11,
        "one message per example report, and the demo incident's explanation"
    );
    for (report, json) in messages {
        let event_type = if report.ends_with("_why") {
            "\"kpibot_explanation\""
        } else {
            "\"kpibot_report\""
        };
        assert!(json.contains(event_type), "{report}: no metadata");
        insta::assert_snapshot!(format!("message_{report}"), json);
    }
}

/// What `kpibot ask` prints for `text` (a text reply, or the chart's result line).
async fn ask(text: &str, dir: &std::path::Path, reports: &str) -> String {
    let settings = common::settings_in(dir, &common::repo_path(reports));
    let mut out = Vec::new();
    cli::ask::ask(&common::app(&settings), text, common::fixed_now(), &mut out)
        .await
        .unwrap();
    // The first question in a folder builds the demo mart and says where: not the answer.
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("built the demo mart"))
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        .replace(env!("CARGO_MANIFEST_DIR"), "[repo]")
}

#[tokio::test]
async fn the_main_kpi_replies_are_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("reply_help", "help"),
        ("reply_list", "list"),
        ("reply_list_tag", "list growth"),
        ("reply_describe_metric", "describe active_users"),
        ("reply_describe_report", "describe daily_active_users"),
        ("reply_did_you_mean_name", "activ_users"),
        ("reply_did_you_mean_dimension", "active_users by rol"),
        ("reply_report_takes_a_period", "daily_active_users by role"),
        (
            "reply_not_understood",
            "active_users where school='x' OR 1=1",
        ),
    ] {
        let printed = ask(text, dir.path(), "reports").await;
        assert!(!printed.trim().is_empty(), "`{text}` printed nothing");
        insta::assert_snapshot!(name, printed);
    }
}

#[tokio::test]
async fn a_chart_answers_message_is_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let printed = ask("active_users last 7 days by role", dir.path(), "reports").await;
    assert!(printed.contains(" rows → "), "{printed}");
    let json = std::fs::read_to_string(dir.path().join("out").join("active_users.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    insta::assert_snapshot!(
        "answer_active_users_by_role",
        serde_json::to_string_pretty(&value).unwrap()
    );
}

#[tokio::test]
async fn a_failed_answer_names_the_report_its_sql_line_and_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let printed = ask("bad_sql", dir.path(), "tests/fixtures/dry_run").await;
    assert!(printed.contains("Its owner is"), "{printed}");
    insta::assert_snapshot!("reply_failed", printed);
}

#[tokio::test]
async fn a_refusal_names_the_owner_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let catalog = app.load_catalog().unwrap();
    let warehouse = app
        .open_warehouse(common::fixed_now(), &mut Vec::new())
        .await
        .unwrap();
    let context = common::cli_context(
        &app,
        &catalog,
        warehouse.as_ref(),
        common::fixed_now(),
        Locale::En,
    );
    let asker = Asker {
        user_id: "U0SALES01".into(),
        channel_id: "C0GENERAL".into(),
        channel_name: "general".into(),
        usergroups: Vec::new(),
        operator: false,
    };
    let answer = adhoc::answer(&context, "prefecture_active_users by prefecture", &asker).await;
    let Answer::Text(reply) = answer else {
        panic!("a restricted metric was answered in #general");
    };
    insta::assert_snapshot!("reply_refused", reply.text(Locale::En));
    insta::assert_snapshot!("reply_refused_ja", reply.text(Locale::Ja));
}

#[tokio::test]
async fn a_table_that_fits_slacks_table_block_is_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let value = preview_message(
        dir.path(),
        &common::repo_path("tests/fixtures/native_table"),
        "minutes_by_subject_table",
    )
    .await;
    let table = value["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "data_table")
        .expect("a five-row table is Slack's own table block");
    assert_eq!(table["rows"][0][0]["text"], "subject");
    assert_eq!(table["rows"][1][1]["type"], "raw_number");
    insta::assert_snapshot!(
        "message_native_table",
        serde_json::to_string_pretty(&value).unwrap()
    );
}

/// The blocks `kpibot run --preview` writes for `report` from the reports in `reports`.
async fn preview_blocks(
    dir: &std::path::Path,
    reports: &std::path::Path,
    report: &str,
) -> Vec<serde_json::Value> {
    preview_message(dir, reports, report).await["blocks"]
        .as_array()
        .unwrap()
        .clone()
}

/// The message `kpibot run --preview` writes for `report` from the reports in `reports`.
async fn preview_message(
    dir: &std::path::Path,
    reports: &std::path::Path,
    report: &str,
) -> serde_json::Value {
    let settings = common::settings_in(dir, reports);
    let out = dir.join("out");
    cli::run::preview(
        &common::app(&settings),
        report,
        None,
        &out,
        common::fixed_now(),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let json = std::fs::read_to_string(out.join(format!("{report}.json"))).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[tokio::test]
async fn a_stacked_bar_keeps_its_picture_unless_the_author_opts_into_slacks_grouped_bars() {
    // The example stacked bar (14 days × 4 channels) fits Slack's bar block, which would
    // draw the channels side by side and lose the stack and its total.
    let stacked =
        std::fs::read_to_string(common::repo_path("reports/signups_by_channel.toml")).unwrap();
    assert!(stacked.contains("kind = \"stacked_bar\"") && !stacked.contains("slack_chart"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(reports.join("signups_by_channel.toml"), &stacked).unwrap();
    // Its headline names the catalog metric `signups`: the catalog comes along.
    std::fs::copy(
        common::repo_path("reports/metrics.toml"),
        reports.join("metrics.toml"),
    )
    .unwrap();
    let opted_in = stacked.replace(
        "kind = \"stacked_bar\"\n",
        "kind = \"stacked_bar\"\nslack_chart = \"native\"\n",
    );
    assert_ne!(opted_in, stacked);
    std::fs::write(reports.join("signups_grouped_in_slack.toml"), opted_in).unwrap();

    let by_default = preview_blocks(dir.path(), &reports, "signups_by_channel").await;
    assert!(
        by_default.iter().any(|b| b["type"] == "image"),
        "the stacked PNG: {by_default:?}"
    );
    assert!(
        by_default.iter().all(|b| b["type"] != "data_visualization"),
        "no grouped native bars unless asked for: {by_default:?}"
    );

    let asked = preview_blocks(dir.path(), &reports, "signups_grouped_in_slack").await;
    let chart = asked
        .iter()
        .find(|b| b["type"] == "data_visualization")
        .expect("slack_chart = \"native\" is the author's choice of Slack's bars");
    assert_eq!(chart["chart"]["type"], "bar");
    assert!(asked.iter().all(|b| b["type"] != "image"));
}

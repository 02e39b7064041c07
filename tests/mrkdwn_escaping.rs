//! Every value from the warehouse or a person reaches Slack as the text it is. Hostile
//! values — `<!channel>`, `<!here>`, `<@U…>`, `<#C…|x>`, `<https://x|Dashboard>`, `&`,
//! `&lt;`, `*_~`, backticks, line breaks, mixed with Japanese — are put where values go in
//! report messages, data tables, alert notices, `/kpi` replies and owner notices; in every
//! mrkdwn text of what would be posted, none mentions, links or formats anything, and
//! each reads back as it was (line breaks as spaces).

mod common;

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use kpibot::adhoc::Reply;
use kpibot::adhoc::access::Viewer;
use kpibot::adhoc::{AccessPolicy, Asker, Resolved, resolve};
use kpibot::alerts::engine::{Item, Kind, Notice, NoticeRef};
use kpibot::alerts::message::{Facts, notice_message, problem_text, resolved_root};
use kpibot::catalog::Catalog;
use kpibot::deliver::{DeliveryError, FailedStep, PostIdentity, failure_notice};
use kpibot::i18n::Locale;
use kpibot::i18n::mrkdwn::{escape, unescape};
use kpibot::pipeline::PipelineError;
use kpibot::render::format::NumberStyle;
use kpibot::render::{ChartData, RunFacts, render_run};
use kpibot::slack::{SlackError, advice};
use kpibot::spec::{SpecDefaults, Window, load_source};
use kpibot::warehouse::{Cell, ColumnInfo, ColumnType, Dialect, Table, WarehouseError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

/// Pieces hostile values are made of.
const FRAGMENTS: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<#C1|x>",
    "<https://x|Dashboard>",
    "<mailto:a@b.jp|mail>",
    "&",
    "&lt;",
    "&amp;",
    "*",
    "_",
    "~",
    "`",
    "```",
    "*bold*",
    "_it_",
    "~gone~",
    "\n",
    "\r\n",
    "> ",
    "• ",
    " ",
    "東京都",
    "日本語",
    "a",
    "b_c",
];

/// Slack control sequences: a mention, a channel, a link.
const CONTROL_STARTS: [&str; 5] = ["<!", "<@", "<#", "<http", "<mailto"];

/// Values shorter than this (in characters) may occur in kpibot's own words.
const MIN_TRACEABLE_CHARS: usize = 3;

/// Cases per property: each renders a chart, so a few dozen.
const CASES: u32 = 40;

fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 1..6)
        .prop_map(|pieces| pieces.concat())
        .prop_filter("a value shows something", |v| !v.trim().is_empty())
}

fn locale() -> impl Strategy<Value = Locale> {
    prop::sample::select(vec![Locale::En, Locale::Ja])
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The value as a reader sees it on one line.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c })
        .collect()
}

/// Fails unless every one of `texts` (mrkdwn kpibot would post) is free of control
/// sequences and bare `&`, and `value` shows in one of them inert and whole.
fn assert_inert(texts: &[String], value: &str, place: &str) -> Result<(), TestCaseError> {
    let escaped = escape(value);
    for text in texts {
        for start in CONTROL_STARTS {
            prop_assert!(
                !text.contains(start),
                "{place}: `{start}` in {text:?} (value {value:?})"
            );
        }
        for (at, _) in text.match_indices('&') {
            let rest = &text[at..];
            prop_assert!(
                ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "{place}: a bare `&` in {text:?} (value {value:?})"
            );
        }
        // Where the value shows, it shows escaped: never as it was typed. (A value of a
        // character or two may be part of kpibot's own words, like the `_` of a name.)
        if value.trim().chars().count() >= MIN_TRACEABLE_CHARS
            && unescape(text).contains(&one_line(value))
        {
            prop_assert!(
                text.contains(&escaped),
                "{place}: {value:?} shown unescaped in {text:?}"
            );
        }
    }
    prop_assert!(
        texts.iter().any(|t| t.contains(&escaped)),
        "{place}: {value:?} (escaped {escaped:?}) is not in {texts:#?}"
    );
    // Escaped, it reads back as the value, and has nothing left that formats.
    prop_assert_eq!(unescape(&escaped), one_line(value));
    prop_assert!(
        !escaped.contains(['<', '>', '`', '*', '~', '\n', '\r']),
        "{escaped:?}"
    );
    let chars: Vec<char> = escaped.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_' {
            let word = |j: Option<usize>| {
                j.and_then(|j| chars.get(j))
                    .is_some_and(|c| c.is_ascii_alphanumeric())
            };
            prop_assert!(
                word(i.checked_sub(1)) && word(Some(i + 1)),
                "an `_` that could open italics in {escaped:?}"
            );
        }
    }
    Ok(())
}

/// A TOML basic string holding `value`.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn report_spec(value: &str, chart: &str) -> kpibot::spec::ReportSpec {
    let source = format!(
        r##"title = {title}
description = {value}
owner = "#data-team"

[definition]
source = {value}
refreshed = {value}
purpose = "To see that values stay values."

[query]
sql = "SELECT label, dim, value FROM t WHERE d BETWEEN @start_date AND @end_date"
period = "last 7 days"

{chart}
"##,
        title = toml_string(&format!("KPI {value}")),
        value = toml_string(value),
    );
    let file = load_source(
        Path::new("hostile.toml"),
        source,
        &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    );
    assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    file.spec.expect("a report")
}

fn text_column(name: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.into(),
        ty: ColumnType::Text,
    }
}

/// (label, dim, value) rows: `value` is a category (the last, so the headline names it)
/// and a series.
fn hostile_table(value: &str) -> Table {
    let row = |label: &str, dim: &str, n: i64| {
        vec![
            Cell::Text(label.into()),
            Cell::Text(dim.into()),
            Cell::Integer(n),
        ]
    };
    Table {
        bytes_processed: None,
        columns: vec![
            text_column("label"),
            text_column("dim"),
            ColumnInfo {
                name: "value".into(),
                ty: ColumnType::Integer,
            },
        ],
        rows: vec![
            row("北海道", value, 3),
            row("北海道", "other", 4),
            row(value, value, 5),
            row(value, "other", 6),
        ],
    }
}

fn rendered_message(spec: &kpibot::spec::ReportSpec, table: &Table, value: &str) -> Value {
    let data = ChartData::from_table(table, &spec.chart).expect("chartable");
    let headline = data.headline(spec.chart.headline);
    let rendered = render_run(RunFacts {
        spec,
        table,
        data: &data,
        window: Window {
            start: NaiveDate::from_ymd_opt(2026, 11, 19).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        },
        headline,
        // Compared with a category: the change text names it.
        previous: Some((1.0, value.to_string())),
        channel: Some("#kpi".into()),
        slot: "2026-11-26T09:00:00+09:00".into(),
        thread: false,
        actions: None,
        pacing: None,
    })
    .expect("rendered");
    rendered.message
}

#[test]
fn report_messages_show_labels_series_and_headlines_inert() {
    runner()
        .run(&(hostile(), locale()), |(value, locale)| {
            let chart = format!(
                "[chart]\nkind = \"bar\"\nx = \"label\"\ny = \"value\"\nseries = \"dim\"\nheadline = \"last\"\nlocale = \"{}\"",
                locale.name()
            );
            let spec = report_spec(&value, &chart);
            let message = rendered_message(&spec, &hostile_table(&value), &value);
            let texts = common::mrkdwn_texts(&message);
            assert_inert(&texts, &value, "report")?;
            // The headline names the category, the change compares with it, the fallback
            // and the small print carry the title and the definition: all escaped.
            let headline = message["blocks"][1]["fields"][0]["text"].as_str().unwrap();
            prop_assert!(headline.contains(&escape(&value)), "{headline}");
            let change = message["blocks"][1]["fields"][1]["text"].as_str().unwrap();
            prop_assert!(change.contains(&escape(&value)), "{change}");
            prop_assert!(
                message["text"].as_str().unwrap().contains(&escape(&format!("KPI {value}"))),
                "{}",
                message["text"]
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn data_table_cells_are_raw_text_and_the_message_around_them_is_inert() {
    runner()
        .run(&hostile(), |value| {
            let chart = "[chart]\nkind = \"table\"\nx = \"label\"\ny = \"value\"\nheadline = \"total\"\nslack_chart = \"native\"";
            let spec = report_spec(&value, chart);
            let message = rendered_message(&spec, &hostile_table(&value), &value);
            let table = message["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "data_table")
                .expect("a data_table block");
            // `raw_text` is never read as mrkdwn: the cell holds the value as it is.
            let cells: Vec<&Value> = table["rows"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).collect();
            prop_assert!(
                cells
                    .iter()
                    .any(|c| c["type"] == "raw_text" && c["text"] == value.as_str()),
                "{table}"
            );
            prop_assert!(cells.iter().all(|c| c["type"] != "mrkdwn"));
            assert_inert(&common::mrkdwn_texts(&message), &value, "data table report")
        })
        .unwrap();
}

fn alert_spec(extra: &str) -> kpibot::spec::AlertSpec {
    let source = format!(
        r##"
[[alert]]
name = "prefecture_drop"
metric = "active_users"
by = "prefecture"
change = {{ percent = -40 }}
channel = "#data-team"
owner = "#data-team"
timezone = "Asia/Tokyo"
{extra}
"##
    );
    let file = load_source(
        Path::new("alerts.toml"),
        source,
        &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    );
    assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    file.alerts.into_iter().next().unwrap()
}

fn item(instance: &str, kind: Kind) -> Item {
    Item {
        instance: instance.into(),
        kind,
        value: Some(1_787.0),
        reference: Some(kpibot::alerts::judge::Reference::Threshold(4_000.0)),
        at: Utc.with_ymd_and_hms(2026, 11, 6, 0, 0, 0).unwrap(),
        detail: None,
    }
}

fn notice(kind: Kind, items: Vec<Item>, still_firing: Vec<String>) -> Notice {
    Notice {
        index: 0,
        kind,
        root: (kind != Kind::Fired).then_some(NoticeRef {
            evaluated_at: Utc.with_ymd_and_hms(2026, 11, 6, 0, 0, 0).unwrap(),
            index: 0,
        }),
        items,
        still_firing,
        dropped: 0,
    }
}

#[test]
fn alert_roots_replies_resolutions_and_owner_notes_show_values_inert() {
    let alert = alert_spec("");
    runner()
        .run(&(hostile(), locale()), |(value, locale)| {
            let mut style = NumberStyle::integer();
            style.locale = locale;
            let title = format!("Drop {value}");
            let facts = Facts {
                alert: &alert,
                title: &title,
                style,
                locale,
                evaluated_at: Utc.with_ymd_and_hms(2026, 11, 7, 0, 0, 0).unwrap(),
                day: NaiveDate::from_ymd_opt(2026, 11, 6).unwrap(),
            };
            // A `rows` alert's instance is its row, joined.
            let row = format!("2026-11-05 · {value}");
            let root = notice(
                Kind::Fired,
                vec![
                    item(&value, Kind::Fired),
                    item("東京都", Kind::Fired),
                    item(&row, Kind::Fired),
                ],
                Vec::new(),
            );
            let messages = [
                ("root", notice_message(&facts, &root, Some("F0CHART01"))),
                (
                    "reminder",
                    notice_message(
                        &facts,
                        &notice(
                            Kind::Reminder,
                            vec![item(&value, Kind::Reminder)],
                            Vec::new(),
                        ),
                        None,
                    ),
                ),
                (
                    "worse",
                    notice_message(
                        &facts,
                        &notice(
                            Kind::Worsened,
                            vec![item(&value, Kind::Worsened)],
                            Vec::new(),
                        ),
                        None,
                    ),
                ),
                (
                    "resolution",
                    notice_message(
                        &facts,
                        &notice(
                            Kind::Resolved,
                            vec![item(&value, Kind::Resolved)],
                            vec!["東京都".into()],
                        ),
                        None,
                    ),
                ),
                (
                    "mute summary",
                    notice_message(
                        &facts,
                        &notice(
                            Kind::MuteSummary,
                            vec![item(&value, Kind::Fired)],
                            Vec::new(),
                        ),
                        None,
                    ),
                ),
                (
                    "root partly resolved",
                    resolved_root(&facts, &root, &facts, &["東京都".to_string()], None),
                ),
                (
                    "root resolved",
                    resolved_root(&facts, &root, &facts, &[], None),
                ),
            ];
            for (place, message) in &messages {
                assert_inert(&common::mrkdwn_texts(message), &value, place)?;
            }
            // The fallback (notification) text carries the title.
            assert_inert(
                &common::mrkdwn_texts(&messages[0].1)[..1],
                &format!("Drop {value}"),
                "root fallback",
            )?;
            let mut problem = notice(Kind::Problem, vec![item(&value, Kind::Problem)], Vec::new());
            problem.items[0].detail = Some(format!("Binder Error: {value}"));
            let note = problem_text(&facts, &problem, 100);
            assert_inert(std::slice::from_ref(&note), &value, "owner note")?;
            assert_inert(
                std::slice::from_ref(&note),
                &format!("Binder Error: {value}"),
                "owner note's error",
            )
        })
        .unwrap();
}

fn repo_catalog() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    common::app(&settings).load_catalog().unwrap()
}

/// A word with nothing in it the `/kpi` grammar splits on.
fn one_word() -> impl Strategy<Value = String> {
    hostile()
        .prop_map(|v| v.split_whitespace().collect::<String>())
        .prop_filter("a word", |w| !w.is_empty())
}

#[test]
fn kpi_replies_echo_what_was_typed_inert() {
    let catalog = repo_catalog();
    let asker = Asker {
        user_id: "U0ALICE01".into(),
        channel_id: "C0DATATEAM".into(),
        channel_name: "data-team".into(),
        usergroups: Vec::new(),
        operator: false,
    };
    let viewer = Viewer {
        catalog: &catalog,
        asker: &asker,
        policy: AccessPolicy::Allow,
    };
    runner()
        .run(&(one_word(), locale()), |(word, locale)| {
            for (command, place) in [
                (word.clone(), "unknown name"),
                (format!("describe {word}"), "describe"),
                (format!("list {word}"), "unknown tag"),
                (format!("active_users by {word}"), "unknown dimension"),
            ] {
                let Resolved::Reply(reply) = resolve(
                    &catalog,
                    &command,
                    Dialect::DuckDb,
                    chrono_tz::Asia::Tokyo,
                    &kpibot::adhoc::phrase::Calendar {
                        today: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
                        fiscal_year_start_month: 4,
                    },
                    &viewer,
                    locale,
                ) else {
                    return Err(TestCaseError::fail(format!(
                        "`{command}` was not answered in words"
                    )));
                };
                assert_inert(&[reply.text(locale)], &word, place)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn owner_notices_and_failure_replies_show_titles_and_error_text_inert() {
    runner()
        .run(&(hostile(), locale()), |(value, locale)| {
            let post = PostIdentity {
                report_id: "daily_active_users".into(),
                channel: Some("#kpi".into()),
                slot: "2026-11-26T09:00:00+09:00".into(),
                thread: false,
                summary_ts: None,
            };
            // The warehouse's own words, and Slack's, carry the value.
            let run_error = PipelineError::Warehouse {
                report: "daily_active_users".into(),
                location: "reports/daily_active_users.toml:14:1".into(),
                source: WarehouseError::Query {
                    message: format!("Binder Error: {value}"),
                    line: Some(1),
                    column: None,
                },
            };
            let slack_error = DeliveryError::Slack(SlackError::Call {
                method: "chat.postMessage",
                code: "invalid_arguments".into(),
                detail: Some(Box::new(kpibot::slack::failure::Detail::Quoted(
                    value.clone(),
                ))),
                attempts: 1,
                advice: advice("invalid_arguments", "#kpi", None),
            });
            for (step, error) in [
                (FailedStep::Run, run_error.mrkdwn(locale)),
                (FailedStep::Deliver, slack_error.mrkdwn(locale)),
            ] {
                let notice = failure_notice(step, &value, &post, &error, locale);
                let notice = std::slice::from_ref(&notice);
                assert_inert(notice, &value, "a notice")?;
            }
            let reply = Reply::Failed {
                name: value.clone(),
                error: run_error.mrkdwn(locale),
                owner: value.clone(),
                timed_out: false,
            };
            assert_inert(
                &[reply.text(locale)],
                &format!("Binder Error: {value}"),
                "a failure reply",
            )
        })
        .unwrap();
}

#[test]
fn a_broken_spec_notice_quotes_the_file_without_mentioning_anyone() {
    let source = "title = \"<!channel> ``` *x*\"\nowner = \"#data-team\"\nbogus = \"<https://x|Dashboard>\"\n";
    let file = load_source(
        Path::new("reports/<!here>.toml"),
        source.to_string(),
        &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    );
    assert!(!file.diagnostics.is_empty());
    let notice = kpibot::catalog::reload::broken_file_notice(&file, Locale::En);
    for start in CONTROL_STARTS {
        assert!(!notice.contains(start), "{notice}");
    }
    assert!(notice.contains("&lt;https://x|Dashboard&gt;"), "{notice}");
    // One code block: the file's own backticks cannot close it.
    assert_eq!(notice.matches("```").count(), 2, "{notice}");
    assert!(notice.trim_end().ends_with("```"), "{notice}");
}

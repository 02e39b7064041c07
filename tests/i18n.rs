//! Every word in the reader's language. A Japanese report read in English and in Japanese
//! (chart goldens and message snapshots), and nothing kpibot itself shows a Japanese
//! reader is English: `/kpi` replies of every kind, chart answers, every example report's
//! message and the owners' notices, with only code spans, names and data left in Latin
//! letters.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use kpibot::adhoc::{self, Answer, Asker, Reply};
use kpibot::catalog::Catalog;
use kpibot::cli;
use kpibot::deliver::{DeliveryError, FailedStep, PostIdentity, failure_notice};
use kpibot::i18n::Locale;
use kpibot::i18n::Message;
use kpibot::i18n::mrkdwn::Mrkdwn;
use kpibot::slack::calls::unconfirmed_lookup;
use kpibot::slack::failure::{Detail, timed_out};
use kpibot::slack::{SlackError, advice, failure_error};
use serde_json::Value;
use std::time::Duration;

/// Words in Latin letters a Japanese text may carry outside code spans: the product's
/// name, a timezone, and setting names (`limits.earliest_date`).
const ALLOWED_WORDS: [&str; 7] = ["kpibot", "Asia", "Tokyo", "NaN", "YYYY", "DD", "SQL"];

/// Every English word in `text` that is not code, a name from the catalog, data, or an
/// allowed word: what a Japanese reader would find untranslated.
fn english_words(text: &str, names: &BTreeSet<String>) -> Vec<String> {
    // Code spans (`…`, ```…```) hold names and commands, not prose.
    let mut prose = String::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 0 {
            prose.push_str(piece);
            prose.push(' ');
        }
    }
    // Author-written text (titles, descriptions) and data values are not kpibot's words:
    // phrases are taken out of the text, single names match whole words only.
    let is_word = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut phrases: Vec<&String> = names.iter().filter(|n| !is_word(n)).collect();
    phrases.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    for phrase in phrases {
        prose = prose.replace(phrase.as_str(), " ");
    }
    prose
        .split(|c: char| !(c.is_ascii_alphabetic() || c == '.' || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        // Slack emoji (`:warning:`) and setting names (`limits.max_window_days`).
        .filter(|w| {
            let emoji = w.starts_with(':') && w.ends_with(':');
            let setting = w.contains(['.', '_']);
            !emoji && !setting
        })
        .map(|w| w.trim_matches(':'))
        .filter(|w| !names.contains(*w))
        .filter(|w| w.chars().filter(char::is_ascii_alphabetic).count() >= 2)
        .filter(|w| !ALLOWED_WORDS.contains(w))
        .map(str::to_string)
        .collect()
}

/// Everything authors wrote in the catalog: names, titles, descriptions, labels, owners.
fn author_words(catalog: &Catalog) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for r in catalog.reports() {
        words.extend([
            r.id.clone(),
            r.title.clone(),
            r.description.clone(),
            r.owner.clone(),
            r.definition.source.clone(),
            r.definition.refreshed.clone(),
            r.definition.purpose.clone(),
        ]);
        words.extend(r.tags.iter().cloned());
    }
    for m in catalog.metrics() {
        words.extend([
            m.name.clone(),
            m.label.clone(),
            m.description.clone(),
            m.owner.clone(),
            m.table.clone(),
            m.refreshed.clone(),
        ]);
        words.extend(m.tags.iter().cloned());
        for (name, label) in &m.dimensions {
            words.extend([name.clone(), label.clone()]);
        }
    }
    words.retain(|w| !w.trim().is_empty());
    words
}

/// Every text a person reads in a `chat.postMessage` body.
fn message_texts(message: &Value, out: &mut Vec<String>) {
    match message {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    // Metadata is for machines; ids are not words.
                    ("metadata" | "channel" | "type" | "id", _) => {}
                    ("text" | "alt_text", Value::String(text)) => out.push(text.clone()),
                    (_, nested) => message_texts(nested, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| message_texts(v, out)),
        _ => {}
    }
}

/// Data values of a chart answer (series names, categories), from its CSV.
fn data_words(csv: &str) -> BTreeSet<String> {
    csv.lines()
        .flat_map(|line| line.split(','))
        .map(|cell| cell.trim_matches('"').to_string())
        .filter(|cell| !cell.is_empty())
        .collect()
}

fn settings(dir: &Path, reports: &Path, locale: &str) -> kpibot::settings::Settings {
    let mut settings = common::settings_in(dir, reports);
    settings.locale = locale.into();
    settings
}

/// The message JSON files a demo run wrote, by report id.
fn written_messages(out: &Path) -> Vec<(String, Value, String)> {
    let mut found: Vec<(String, Value, String)> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            let message = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let csv = std::fs::read_to_string(p.with_extension("csv")).unwrap_or_default();
            (id, message, csv)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[tokio::test]
async fn a_japanese_report_reads_in_english_and_in_japanese() {
    // Two example reports with Japanese titles, without their own `locale`: the bot's
    // language decides every word.
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    for id in ["daily_active_users", "active_users_card"] {
        let spec = std::fs::read_to_string(common::repo_path(&format!("reports/{id}.toml")))
            .unwrap()
            .replace("locale = \"ja\"\n", "");
        std::fs::write(reports.join(format!("{id}.toml")), spec).unwrap();
    }
    let mut failures = Vec::new();
    for locale in ["en", "ja"] {
        let out = dir.path().join(format!("out-{locale}"));
        let app = common::app(&settings(dir.path(), &reports, locale));
        let failed = cli::run::demo(&app, &out, common::fixed_now(), &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(failed, 0);
        for (id, message, _) in written_messages(&out) {
            let png = std::fs::read(out.join(format!("{id}.png"))).unwrap();
            failures.extend(common::golden::differs_from_golden(
                &format!("i18n_{id}_{locale}"),
                &png,
            ));
            insta::assert_snapshot!(
                format!("i18n_{id}_{locale}"),
                serde_json::to_string_pretty(&message).unwrap()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "charts differ from their goldens:\n{}",
        failures.join("\n")
    );
    // The words that differ, checked here too, not only in the snapshots.
    let read = |locale: &str, id: &str| -> String {
        std::fs::read_to_string(dir.path().join(format!("out-{locale}/{id}.json"))).unwrap()
    };
    let (en, ja) = (
        read("en", "active_users_card"),
        read("ja", "active_users_card"),
    );
    assert!(
        en.contains("Latest (2026-11-25)") && en.contains("vs 2026-11-18"),
        "{en}"
    );
    assert!(
        ja.contains("最新（2026年11月25日）") && ja.contains("2026年11月18日比"),
        "{ja}"
    );
    assert!(ja.contains("2026年10月29日〜11月25日 (Asia/Tokyo)"), "{ja}");
    // The card image carries the words too.
    let card = |locale: &str| {
        std::fs::read(
            dir.path()
                .join(format!("out-{locale}/active_users_card.png")),
        )
    };
    assert_ne!(card("en").unwrap(), card("ja").unwrap());
}

/// What `kpibot ask` prints for each command, in the bot's language `ja`.
async fn ask_all(dir: &Path, reports: &str, commands: &[&str]) -> Vec<(String, String)> {
    let app = common::app(&settings(dir, &common::repo_path(reports), "ja"));
    let mut printed = Vec::new();
    for command in commands {
        let mut out = Vec::new();
        cli::ask::ask(&app, command, common::fixed_now(), &mut out)
            .await
            .unwrap();
        let text: String = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("built the demo mart"))
            .collect::<Vec<_>>()
            .join("\n");
        printed.push((command.to_string(), text));
    }
    printed
}

#[tokio::test]
async fn nothing_kpibot_shows_a_japanese_reader_is_in_english() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::app(&settings(dir.path(), &common::repo_path("reports"), "ja"));
    let catalog = app.load_catalog().unwrap();
    let names = author_words(&catalog);
    let mut problems = Vec::new();
    let mut check = |what: &str, text: &str, names: &BTreeSet<String>| {
        assert!(!text.trim().is_empty(), "{what}: nothing was written");
        let english = english_words(text, names);
        if !english.is_empty() {
            problems.push(format!("{what}: {english:?} in\n{text}\n"));
        }
    };

    // Every kind of text reply `/kpi` gives.
    let too_long = format!("active_users {}", "x".repeat(1001));
    let commands = [
        "help",
        "一覧",
        "list engagement",
        "list no_such_tag",
        "describe active_users",
        "describe daily_active_users",
        "describe",
        "list a b",
        "activ_users",
        "zzzzzzzz",
        "active_users by rol",
        "active_users by nothing_like_it",
        "daily_active_users by role",
        "active_users where school=\"unclosed",
        "active_users by",
        "active_users by role by role",
        "active_users 昨日 今日",
        "active_users bogus",
        "active_users 日次 週次",
        "active_users where",
        "active_users where role",
        "active_users where role=",
        too_long.as_str(),
        "active_users since 1900-01-01",
        "daily_active_users 2026-01-01..2099-01-01",
        "active_users 2020-01-01..2026-01-01",
        "active_users 2026-02-01..2026-01-01",
    ];
    for (command, printed) in ask_all(dir.path(), "reports", &commands).await {
        check(&format!("/kpi {command}"), &printed, &names);
    }

    // Chart answers: the message, with the answer's own data allowed.
    for command in [
        "active_users 先週 週次 by role",
        "daily_active_users 昨日",
        "なぜ active_users 先週",
        "なぜ minutes_per_submission 先週",
    ] {
        let out = dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        ask_all(dir.path(), "reports", &[command]).await;
        let written = written_messages(&out);
        assert!(!written.is_empty(), "`{command}` answered with a chart");
        for (id, message, csv) in written {
            let mut allowed = names.clone();
            allowed.extend(data_words(&csv));
            let mut texts = Vec::new();
            message_texts(&message, &mut texts);
            for text in texts {
                check(&format!("/kpi {command} ({id})"), &text, &allowed);
            }
        }
    }

    // Every example report's scheduled message, in the bot's language.
    let out = dir.path().join("demo");
    cli::run::demo(&app, &out, common::fixed_now(), &mut Vec::new())
        .await
        .unwrap();
    let messages = written_messages(&out);
    // Ten reports and the explanation of the demo's incident.
    assert_eq!(messages.len(), 11);
    for (id, message, csv) in messages {
        let mut allowed = names.clone();
        allowed.extend(data_words(&csv));
        let mut texts = Vec::new();
        message_texts(&message, &mut texts);
        for text in texts {
            check(&format!("report {id}"), &text, &allowed);
        }
    }

    // Replies that need a person, a broken file or a failure to happen.
    for reply in [
        Reply::TooManyQuestions { per_minute: 10 },
        Reply::PoliciesUnreadable,
        Reply::NotPosted {
            error: Mrkdwn::formatted("`channel_not_found`"),
        },
        Reply::Refused {
            name: "prefecture_active_users".into(),
            owner: "#data-team".into(),
        },
    ] {
        check(&format!("{reply:?}"), &reply.text(Locale::Ja), &names);
    }

    // A refusal and a private answer's reason, as an asker in #general gets them.
    let warehouse = app
        .open_warehouse(common::fixed_now(), &mut Vec::new())
        .await
        .unwrap();
    let context = common::cli_context(
        &app,
        &catalog,
        warehouse.as_ref(),
        common::fixed_now(),
        Locale::Ja,
    );
    let asker = |user: &str| Asker {
        user_id: user.into(),
        channel_id: "C0GENERAL".into(),
        channel_name: "general".into(),
        usergroups: Vec::new(),
        operator: false,
    };
    match adhoc::answer(
        &context,
        "prefecture_active_users by prefecture",
        &asker("U0SALES01"),
    )
    .await
    {
        Answer::Text(reply) => check("refusal", &reply.text(Locale::Ja), &names),
        Answer::Chart { .. } => panic!("a restricted metric was answered in #general"),
    }

    // Owners' notices, with Slack's failure and what to do about it.
    let post = PostIdentity {
        report_id: "daily_active_users".into(),
        channel: Some("#kpi-daily".into()),
        slot: "2026-11-26T09:00:00+09:00".into(),
        thread: false,
        summary_ts: None,
    };
    // Every kind of Slack failure, with the detail kpibot gives it: Slack's own words
    // (quoted as code), the scope it needs, and kpibot's words for a timeout, a channel
    // name nobody has, a lookup that could not finish or failed, a Retry-After.
    let call = |code: &str, detail: Option<Detail>| SlackError::Call {
        method: "chat.postMessage",
        code: code.into(),
        advice: advice(code, "#kpi-daily", detail.as_ref()),
        detail: detail.map(Box::new),
        attempts: 3,
    };
    let said = |key: &'static str, name: &'static str, value: &str| {
        Some(Detail::Said(Message::new(key).with(name, value)))
    };
    let failures = [
        call("not_in_channel", None),
        call("channel_not_found", None),
        kpibot::slack::calls::no_channel_named("kpi-daily", "#kpi-daily"),
        call(
            "missing_scope",
            Some(Detail::NeedsScope("chat:write".into())),
        ),
        call(
            "ratelimited",
            Some(Detail::Said(
                Message::new("slack-detail-retry-after").with_number("seconds", 30.0),
            )),
        ),
        call("http_503", None),
        call(
            "invalid_blocks",
            Some(Detail::Quoted(
                "must be more than 0 characters [json-pointer:/blocks/0/text]".into(),
            )),
        ),
        call("is_archived", None),
        call("invalid_auth", None),
        call("some_code_slack_adds_later", None),
        failure_error(
            timed_out("chat.postMessage", Duration::from_secs(30)),
            3,
            "#kpi-daily",
        ),
        unconfirmed_lookup("#kpi-daily", 10),
        call(
            "unconfirmed",
            said("slack-detail-lookup-failed", "code", "ratelimited"),
        ),
    ];
    for slack_error in failures {
        let code = slack_error.code().to_string();
        let error = DeliveryError::Slack(slack_error);
        for step in [FailedStep::Run, FailedStep::Deliver] {
            let notice = failure_notice(
                step,
                "日次アクティブユーザー",
                &post,
                &error.mrkdwn(Locale::Ja),
                Locale::Ja,
            );
            // Slack's API names (`chat.postMessage`, scopes) are code, not prose.
            let mut allowed = names.clone();
            allowed.extend(
                [
                    "Slack",
                    "OAuth",
                    "Permissions",
                    "https",
                    "api",
                    "slack",
                    "com",
                    "methods",
                    "status",
                ]
                .map(String::from),
            );
            check(&format!("notice {step:?} {code}"), &notice, &allowed);
            // The slot is written as a Japanese reader writes a time, not in ISO.
            assert!(
                notice.contains("2026年11月26日 09:00") && !notice.contains("T09:00"),
                "{notice}"
            );
        }
    }

    // A chart kpibot itself could not draw: its own words, the internal error as code.
    for error in [
        kpibot::pipeline::PipelineError::Render {
            report: "daily_active_users".into(),
            source: kpibot::render::RenderError::Draw("Font error: glyph missing".into()),
        },
        kpibot::pipeline::PipelineError::Stopped {
            report: "daily_active_users".into(),
            why: "the shaping task panicked".into(),
        },
    ] {
        let notice = failure_notice(
            FailedStep::Run,
            "日次アクティブユーザー",
            &post,
            &error.mrkdwn(Locale::Ja),
            Locale::Ja,
        );
        check("notice for a chart kpibot could not draw", &notice, &names);
        check("the same failure as text", &error.text(Locale::Ja), &names);
    }

    // Why a run waited and did not post: the dates of the data, in Japanese.
    for reason in [
        Message::new("freshness-stale")
            .with_date(
                "newest",
                chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            )
            .with_date(
                "wanted",
                chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            ),
        Message::new("freshness-missing").with_date(
            "wanted",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        ),
    ] {
        let text = reason.text(Locale::Ja);
        check(&format!("freshness {}", reason.key), &text, &names);
        assert!(
            text.contains("2026年11月25日") && !text.contains("2026-11-25"),
            "{text}"
        );
    }

    assert!(
        problems.is_empty(),
        "English shown to a Japanese reader:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_finds_english_it_is_meant_to_find() {
    let names = BTreeSet::from(["daily_active_users".to_string()]);
    assert_eq!(
        english_words("Sorry, `x` failed", &names),
        vec!["Sorry", "failed"]
    );
    assert!(english_words("`daily_active_users` は見つかりません。", &names).is_empty());
    assert!(english_words(":warning: 期間 (limits.max_window_days) Asia/Tokyo", &names).is_empty());
}

//! Alert messages as Slack receives them, snapshot-tested in English and Japanese: the
//! firing digest, a reminder, a resolution, the edited root and a mute summary. A
//! Japanese reader sees no English word of kpibot's.

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use kpibot::alerts::engine::{Item, Kind, Notice, NoticeRef};
use kpibot::alerts::judge::Reference;
use kpibot::alerts::message::{Facts, notice_message, resolved_root};
use kpibot::i18n::Locale;
use kpibot::render::format::NumberStyle;
use kpibot::spec::{AlertSpec, SpecDefaults, load_source};

fn alert() -> AlertSpec {
    let source = r##"
[[alert]]
name = "active_users_prefecture_drop"
metric = "active_users"
by = "prefecture"
change = { percent = -40 }
for = 2
channel = "#data-team"
owner = "#data-team"
mention = ["S0ONCALL01", "U0ALICE01"]
timezone = "Asia/Tokyo"
"##;
    let file = load_source(
        Path::new("alerts.toml"),
        source.to_string(),
        &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    );
    assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    file.alerts.into_iter().next().unwrap()
}

fn item(instance: &str, kind: Kind, value: f64, earlier: f64) -> Item {
    Item {
        instance: instance.into(),
        kind,
        value: Some(value),
        reference: Some(Reference::Earlier {
            day: NaiveDate::from_ymd_opt(2026, 10, 29).unwrap(),
            value: earlier,
            change: (value - earlier) / earlier * 100.0,
            percent: true,
        }),
        at: Utc.with_ymd_and_hms(2026, 11, 6, 0, 0, 0).unwrap(),
        detail: None,
    }
}

fn notices() -> (Notice, Vec<(&'static str, Notice)>) {
    let fired = Notice {
        index: 0,
        kind: Kind::Fired,
        root: None,
        items: vec![
            item("福岡県", Kind::Fired, 1_787.0, 4_856.0),
            item("佐賀県", Kind::Fired, 410.0, 760.0),
        ],
        still_firing: Vec::new(),
        dropped: 0,
    };
    let root = Some(NoticeRef {
        evaluated_at: Utc.with_ymd_and_hms(2026, 11, 6, 0, 0, 0).unwrap(),
        index: 0,
    });
    let reminder = Notice {
        index: 0,
        kind: Kind::Reminder,
        root: root.clone(),
        items: vec![item("福岡県", Kind::Reminder, 1_700.0, 4_900.0)],
        still_firing: Vec::new(),
        dropped: 0,
    };
    let resolved = Notice {
        index: 0,
        kind: Kind::Resolved,
        root,
        items: vec![Item {
            reference: None,
            ..item("佐賀県", Kind::Resolved, 790.0, 780.0)
        }],
        still_firing: vec!["福岡県".into()],
        dropped: 0,
    };
    let summary = Notice {
        index: 0,
        kind: Kind::MuteSummary,
        root: None,
        items: vec![
            item("福岡県", Kind::Fired, 1_787.0, 4_856.0),
            item("福岡県", Kind::Reminder, 1_700.0, 4_900.0),
        ],
        still_firing: Vec::new(),
        dropped: 0,
    };
    (
        fired.clone(),
        vec![
            ("fired", fired),
            ("reminder", reminder),
            ("resolved", resolved),
            ("mute_summary", summary),
        ],
    )
}

fn facts(alert: &AlertSpec, locale: Locale) -> Facts<'_> {
    let mut style = NumberStyle::integer();
    style.locale = locale;
    Facts {
        alert,
        title: match locale {
            Locale::Ja => "都道府県のアクティブユーザー減少",
            Locale::En => "Active users fell in a prefecture",
        },
        style,
        locale,
        evaluated_at: Utc.with_ymd_and_hms(2026, 11, 7, 0, 0, 0).unwrap(),
        day: NaiveDate::from_ymd_opt(2026, 11, 6).unwrap(),
    }
}

/// The text a reader sees: every text field of every block, and the fallback.
fn visible_text(message: &serde_json::Value) -> String {
    let mut parts = vec![message["text"].as_str().unwrap_or_default().to_string()];
    for block in message["blocks"].as_array().unwrap() {
        for text in [&block["text"]["text"], &block["alt_text"]] {
            if let Some(t) = text.as_str() {
                parts.push(t.to_string());
            }
        }
        for element in block["elements"].as_array().into_iter().flatten() {
            parts.push(element["text"].as_str().unwrap_or_default().to_string());
        }
    }
    parts.join("\n")
}

#[test]
fn alert_messages_read_right_in_english_and_japanese() {
    let alert = alert();
    let (root, all) = notices();
    for locale in [Locale::En, Locale::Ja] {
        let tag = match locale {
            Locale::En => "en",
            Locale::Ja => "ja",
        };
        let facts = facts(&alert, locale);
        for (name, notice) in &all {
            let chart = (notice.kind == Kind::Fired).then_some("F0CHART01");
            let message = notice_message(&facts, notice, chart);
            insta::assert_snapshot!(
                format!("alert_{name}_{tag}"),
                serde_json::to_string_pretty(&message).unwrap()
            );
            if locale == Locale::Ja {
                let text = visible_text(&message);
                for english in [
                    "firing",
                    "against",
                    "evaluated",
                    "Resolved",
                    "Still",
                    "Worse",
                    "while",
                    "or more",
                    "day judged",
                    "mute",
                ] {
                    assert!(
                        !text.contains(english),
                        "English `{english}` shown to a Japanese reader in {name}:\n{text}"
                    );
                }
            }
        }
        // The root once 佐賀県 resolved and 福岡県 still fires, and once both resolved.
        let (_, resolved) = &all[2];
        let partly = resolved_root(
            &facts,
            &root,
            &facts,
            &resolved.still_firing,
            Some("F0CHART01"),
        );
        insta::assert_snapshot!(
            format!("alert_root_partly_resolved_{tag}"),
            serde_json::to_string_pretty(&partly).unwrap()
        );
        let done = resolved_root(&facts, &root, &facts, &[], Some("F0CHART01"));
        assert_eq!(done["metadata"]["event_payload"]["state"], "resolved");
        assert!(
            done["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["type"] == "image"),
            "the edit keeps the chart"
        );
    }
}

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
    alert_from(source)
}

/// The one alert `source` declares, checked.
fn alert_from(source: &str) -> AlertSpec {
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

/// A digest's chart: two panels (a threshold dashed, a band shaded), the judged points
/// marked, a gap kept; and a backtest's shaded firing days.
#[test]
fn alert_charts_match_their_golden_images() {
    use kpibot::render::alert_chart::{AlertChart, AlertPanel, render_alert_png};
    #[path = "common/golden.rs"]
    mod golden;
    let first = NaiveDate::from_ymd_opt(2026, 10, 10).unwrap();
    let days = |values: &dyn Fn(usize) -> Option<f64>| -> Vec<(NaiveDate, Option<f64>)> {
        (0..28)
            .map(|i| (first + chrono::Days::new(i as u64), values(i)))
            .collect()
    };
    let weekly =
        |i: usize| 4_800.0 - if i % 7 >= 5 { 2_500.0 } else { 0.0 } + (i % 3) as f64 * 60.0;
    let last = first + chrono::Days::new(27);
    let digest = [
        AlertPanel {
            name: "福岡県".into(),
            days: days(&|i| {
                if i == 12 {
                    None
                } else if i == 27 {
                    Some(900.0)
                } else {
                    Some(weekly(i))
                }
            }),
            threshold: Some(1_500.0),
            band: None,
            breach: Some((last, 900.0)),
            firing: Vec::new(),
        },
        AlertPanel {
            name: "佐賀県".into(),
            days: days(&|i| Some(if i == 27 { 300.0 } else { weekly(i) / 6.0 })),
            threshold: None,
            band: Some((650.0, 820.0)),
            breach: Some((last, 300.0)),
            firing: Vec::new(),
        },
    ];
    let backtest = [AlertPanel {
        name: "福岡県".into(),
        days: days(&|i| {
            Some(if (18..24).contains(&i) {
                weekly(i) / 3.0
            } else {
                weekly(i)
            })
        }),
        threshold: None,
        band: None,
        breach: None,
        firing: vec![(first + chrono::Days::new(18), first + chrono::Days::new(23))],
    }];
    let mut failures = Vec::new();
    for (name, panels) in [
        ("alert_digest", &digest[..]),
        ("alert_backtest", &backtest[..]),
    ] {
        let png = render_alert_png(&AlertChart {
            title: "都道府県のアクティブユーザー減少",
            subtitle: "2026-10-10 – 2026-11-06 (Asia/Tokyo)",
            panels,
            style: NumberStyle::integer(),
        })
        .unwrap();
        if let Some(why) = golden::differs_from_golden(name, &png) {
            failures.push(why);
        }
    }
    assert!(
        failures.is_empty(),
        "alert charts differ from their goldens:\n{}",
        failures.join("\n")
    );
}

/// A pace alert's message names the projection, the target and its period, and the value
/// to date, in the reader's language; its small print says what it watches.
#[test]
fn a_pace_alert_reads_its_projection_in_both_languages() {
    let source = r##"
[[alert]]
name = "signups_behind_target"
metric = "signups"
pace = { below = 90 }
channel = "#growth"
owner = "#growth"
timezone = "Asia/Tokyo"
"##;
    let alert = alert_from(source);
    let notice = Notice {
        index: 0,
        kind: Kind::Fired,
        root: None,
        items: vec![Item {
            instance: String::new(),
            kind: Kind::Fired,
            value: Some(21_000.0),
            reference: Some(Reference::Pace {
                target: 24_000.0,
                to_date: 10_500.0,
                projected: 21_000.0,
                pace: 0.875,
                period_start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                period_end: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                last_year: false,
            }),
            at: Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap(),
            detail: None,
        }],
        still_firing: Vec::new(),
        dropped: 0,
    };
    for (locale, words) in [
        (
            Locale::En,
            vec![
                "*21,000* (on pace for 87.5% of the target 24,000",
                "10,500 so far",
                "projected to land below 90% of its target",
            ],
        ),
        (
            Locale::Ja,
            vec![
                "*21,000*（目標 24,000",
                "着地見込み 87.5%",
                "現在 10,500",
                "着地見込みが目標の90%を下回る",
            ],
        ),
    ] {
        let text = visible_text(&notice_message(&facts(&alert, locale), &notice, None));
        for word in words {
            assert!(text.contains(word), "`{word}` missing:\n{text}");
        }
        if locale == Locale::Ja {
            for english in ["on pace", "the target", "so far", "projected"] {
                assert!(!text.contains(english), "`{english}` in:\n{text}");
            }
        }
    }
}

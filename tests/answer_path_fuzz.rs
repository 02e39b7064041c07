//! The whole answer path under generated input, not only the grammar: parse → resolve →
//! window (inside the limits) → comparison window → SQL parameters, for 100,000 commands
//! mixing real names, extreme and malformed dates, Japanese forms, full-width digits and
//! junk; then a sample of them all the way through the demo mart and the renderer. No
//! input may panic, and every window that runs lies inside the limits.

mod common;

use chrono::{DateTime, Days, TimeZone, Utc};
use kpibot::adhoc::access::{Asker, Viewer};
use kpibot::adhoc::{self, AccessPolicy, Answer, Context, Resolved};
use kpibot::catalog::Catalog;
use kpibot::i18n::Locale;
use kpibot::pipeline::{self, RunLimits};
use kpibot::spec::{self, SpecDefaults};
use kpibot::warehouse::Dialect;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const NAMES: [&str; 10] = [
    "active_users",
    "active_users",
    "signups",
    "signups",
    "daily_active_users",
    "minutes_per_submission",
    "prefecture_breakdown",
    "activ_users",
    "ＡＣＴＩＶＥ＿ＵＳＥＲＳ",
    "",
];

fn period() -> impl Strategy<Value = String> {
    let date = prop_oneof![
        4 => (1995i32..2028, 1u32..13, 1u32..29),
        1 => (-300_000i32..300_000, 0u32..14, 0u32..33),
    ]
    .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"));
    prop_oneof![
        Just("yesterday".to_string()),
        Just("last 7 days".to_string()),
        Just("last month".to_string()),
        Just("昨日".to_string()),
        Just("今週".to_string()),
        Just("先月".to_string()),
        Just("month to date".to_string()),
        (0u32..5000).prop_map(|n| format!("last {n} days")),
        (0u32..5000).prop_map(|n| format!("過去{n}日")),
        (0u32..400).prop_map(|n| format!("過去{n}ヶ月")),
        (0u32..99).prop_map(|n| format!("last {n} weeks")),
        date.clone().prop_map(|d| format!("since {d}")),
        (date.clone(), date).prop_map(|(a, b)| format!("{a}..{b}")),
        Just("2026-11-01..2026-11-30".to_string()),
        Just("since 2026-0１-01".to_string()),
        Just(String::new()),
    ]
}

fn command() -> impl Strategy<Value = String> {
    (
        prop::sample::select(NAMES.to_vec()),
        period(),
        prop::sample::select(vec!["", "daily", "weekly", "monthly", "週次", "月次"]),
        prop::sample::select(vec!["", "", "by role", "by prefecture", "by nothing", "by"]),
        prop::sample::select(vec![
            "",
            "",
            "",
            "where role=student",
            "where role=student,teacher and school_type=高校",
            "where role=\"' OR 1=1 --\"",
            "where =",
        ]),
        any::<bool>(),
        prop_oneof![3 => Just(String::new()), 1 => "\\PC{0,8}"],
    )
        .prop_map(|(name, period, grain, by, filter, private, junk)| {
            format!(
                "{name} {period} {grain} {by} {filter} {} {junk}",
                if private { "private" } else { "" }
            )
        })
}

fn catalog(dialect: Dialect) -> Catalog {
    let defaults = SpecDefaults {
        timezone: chrono_tz::Asia::Tokyo,
        dialect,
    };
    let files = spec::load_dir(&common::repo_path("reports"), &defaults).unwrap();
    Catalog::from_loaded(&files)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 16, 30, 0).unwrap()
}

/// Checks one command up to the SQL parameters; returns whether it would run a query.
fn check_path(catalog: &Catalog, text: &str, dialect: Dialect, locale: Locale) -> bool {
    let limits = RunLimits::default();
    let asker = Asker {
        operator: true,
        ..Asker::default()
    };
    let viewer = Viewer {
        catalog,
        asker: &asker,
        policy: AccessPolicy::Allow,
    };
    let Resolved::Run { spec, .. } = adhoc::resolve(
        catalog,
        text,
        dialect,
        chrono_tz::Asia::Tokyo,
        &viewer,
        locale,
    ) else {
        return false;
    };
    let Ok(window) = pipeline::window_for(&spec, None, now(), &limits.window) else {
        return false;
    };
    let today = pipeline::today_in(spec.timezone, now());
    assert!(window.start >= limits.window.earliest, "`{text}`: {window}");
    assert!(
        window.end <= today + Days::new(u64::from(limits.window.latest_days_ahead)),
        "`{text}`: {window}"
    );
    assert!(
        window.days() <= i64::from(limits.window.max_days),
        "`{text}`: {window}"
    );
    let _ = pipeline::comparison_window(window, spec.chart.compare);
    let params = pipeline::params_for(window, today);
    assert_eq!(params.len(), 3);
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_command_panics_and_every_window_is_inside_the_limits(text in command()) {
        thread_local! {
            static CATALOGS: (Catalog, Catalog) = (catalog(Dialect::DuckDb), catalog(Dialect::BigQuery));
        }
        CATALOGS.with(|(duck, bq)| {
            check_path(duck, &text, Dialect::DuckDb, Locale::En);
            check_path(bq, &text, Dialect::BigQuery, Locale::Ja);
        });
    }
}

#[test]
fn the_generated_commands_reach_the_window_often_enough_to_mean_something() {
    let catalog = catalog(Dialect::DuckDb);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = command();
    let ran = (0..2000)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).unwrap().current();
            check_path(&catalog, &text, Dialect::DuckDb, Locale::Ja)
        })
        .count();
    assert!(ran > 200, "only {ran} of 2000 commands reached a window");
}

#[tokio::test]
async fn a_sample_goes_all_the_way_through_the_demo_mart_and_the_renderer() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_in(dir.path(), &common::repo_path("reports"));
    let app = common::app(&settings);
    let catalog = app.load_catalog().unwrap();
    let warehouse = app.open_warehouse(now(), &mut Vec::new()).await.unwrap();
    let context = Context {
        limits: app.limits,
        ..common::cli_context(&app, &catalog, warehouse.as_ref(), now(), Locale::Ja)
    };
    let asker = Asker {
        operator: true,
        ..Asker::default()
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = command();
    let (mut charts, mut texts) = (0, 0);
    for _ in 0..150 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        match adhoc::answer(&context, &text, &asker).await {
            Answer::Chart { rendered, .. } => {
                charts += 1;
                assert!(rendered.png.starts_with(b"\x89PNG"), "`{text}`");
            }
            Answer::Text(reply) => {
                texts += 1;
                assert!(!reply.text(Locale::Ja).is_empty(), "`{text}`");
                assert!(!reply.text(Locale::En).is_empty(), "`{text}`");
            }
        }
    }
    assert!(charts > 10 && texts > 10, "{charts} charts, {texts} texts");
}

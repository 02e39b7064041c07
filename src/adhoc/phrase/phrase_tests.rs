//! Phrases read against a small catalog: word order, particles, aliases, prefixes and the
//! questions that must be asked back.

use super::*;
use crate::spec::{self, SpecDefaults};

const METRICS: &str = r##"
[[metric]]
name = "active_users"
label = "Active users"
aliases = ["アクティブユーザー", "DAU"]
table = "mart.daily_active_users"
time_column = "activity_date"
measure = "sum"
column = "active_users"
owner = "#data-team"
[metric.dimensions]
role = { label = "Role", aliases = ["ロール", "役割"] }
prefecture = "Prefecture"

[[metric]]
name = "active_minutes"
label = "Active minutes"
aliases = ["アクティブ時間"]
table = "mart.daily_study"
time_column = "activity_date"
measure = "sum"
column = "study_minutes"
owner = "#data-team"

[[metric]]
name = "payroll"
label = "Payroll"
aliases = ["給与総額"]
table = "mart.payroll"
time_column = "paid_on"
measure = "sum"
column = "amount"
owner = "#hr"
restricted = true
allowed_channels = ["C0HR"]
"##;

fn catalog() -> Catalog {
    let defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
    let file = spec::load_source(
        std::path::Path::new("reports/metrics.toml"),
        METRICS.to_string(),
        &defaults,
    );
    assert!(file.is_valid(), "{:?}", file.diagnostics);
    Catalog::from_loaded(&[file])
}

fn calendar() -> Calendar {
    Calendar {
        today: "2026-12-06".parse().unwrap(),
        fiscal_year_start_month: 4,
    }
}

fn read_all(text: &str) -> Reading {
    read(&catalog(), text, &calendar(), &|_, _| true)
}

fn question(text: &str) -> (Query, Called) {
    match read_all(text) {
        Reading::Question { query, called } => (query, called),
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn any_word_order_reads_the_same_question() {
    let expected = question("active_users last month by role");
    for text in [
        "ロール別の先月のアクティブユーザー",
        "先月のアクティブユーザー ロール別",
        "アクティブユーザー（先月）ロールごと",
        "アクティブユーザー数 先月 役割別",
        "ＤＡＵ　先月　ロール別",
        "active users last month by role",
    ] {
        let (query, _) = question(text);
        assert_eq!(query, expected.0, "{text}");
    }
    // `where` in full-width letters is `where`; the filter's dimension by its alias.
    let (query, _) = question("ＤＡＵ　先月　ｗｈｅｒｅ　ロール＝student　ロール別");
    assert_eq!(query.filters.len(), 1);
    assert_eq!(
        (
            query.filters[0].dimension.as_str(),
            query.filters[0].values.clone()
        ),
        ("role", vec!["student".to_string()])
    );
    let (_, called) = question("ロール別の先月のアクティブユーザー");
    assert_eq!(called.entry.as_deref(), Some("アクティブユーザー"));
    assert_eq!(called.by.as_deref(), Some("ロール"));
}

#[test]
fn a_shared_start_and_a_current_month_are_asked_back() {
    match read_all("アクティブ 先月") {
        Reading::Choose(choices) => {
            let names: Vec<&str> = choices.iter().map(|(q, _)| q.name.as_str()).collect();
            assert_eq!(names, ["active_minutes", "active_users"]);
        }
        other => panic!("{other:?}"),
    }
    match read_all("DAU 12月") {
        Reading::Choose(choices) => assert_eq!(choices.len(), 2),
        other => panic!("{other:?}"),
    }
    // An entry the asker may not see is no choice.
    match read(
        &catalog(),
        "アクティブ 先月",
        &calendar(),
        &|_, id| id != "active_minutes",
    ) {
        Reading::Question { query, .. } => assert_eq!(query.name, "active_users"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mistakes_name_the_word() {
    for (text, says) in [
        ("DAU 先月 ほげ", "ほげ"),
        // As typed, not as compared.
        ("DAU 先月 HOGE", "`HOGE`"),
        ("DAU active_minutes", "two names"),
        ("DAU ロール", "`by ロール`"),
        ("先月", "`先月` names no report or metric: which one?"),
        // `by` splits by what follows it: the word before it is not taken for a dimension.
        ("DAU xyz by role", "`xyz`"),
    ] {
        match read_all(text) {
            Reading::Mistake(error) => assert!(error.to_string().contains(says), "{text}: {error}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(
        read_all("nothing_here 先月"),
        Reading::Unknown("nothing_here".into())
    );
    // A lone dimension or separators name no entry: the reply echoes what was typed.
    assert_eq!(
        read_all("<!prefecture>"),
        Reading::Unknown("<!prefecture>".into())
    );
    assert_eq!(read_all("~"), Reading::Unknown("~".into()));
}

#[test]
fn a_reading_writes_back_as_a_command_the_strict_grammar_reads_alike() {
    for text in [
        "DAU 2026年11月 ロール別 前年同月比",
        "アクティブユーザー 今年度 週次 where ロール=student",
    ] {
        let (query, _) = question(text);
        let again = match grammar::parse(&command(&query)).unwrap() {
            Request::Query(q) => q,
            other => panic!("{other:?}"),
        };
        assert_eq!(again, query, "{text} → {}", command(&query));
    }
}

#[test]
fn entries_the_asker_may_not_see_are_neither_read_from_a_start_nor_suggested() {
    use crate::adhoc::access::{AccessPolicy, Asker, Viewer};
    let catalog = catalog();
    let asker = |channel: &str| Asker {
        user_id: "U0ALICE".into(),
        channel_id: channel.into(),
        channel_name: String::new(),
        usergroups: Vec::new(),
        operator: false,
    };
    for (channel, may_see) in [("C0GENERAL", false), ("C0HR", true)] {
        let asker = asker(channel);
        let viewer = Viewer {
            catalog: &catalog,
            asker: &asker,
            policy: AccessPolicy::Allow,
        };
        let sees =
            |_: EntryKind, id: &str| catalog.metric(id).is_some_and(|m| viewer.sees_metric(m));
        let reading = read(&catalog, "給与 先月", &calendar(), &sees);
        let suggestion =
            crate::adhoc::reply::unknown_name(&viewer, "給与総", crate::i18n::Locale::En);
        if may_see {
            assert!(
                matches!(&reading, Reading::Question { query, .. } if query.name == "payroll"),
                "{reading:?}"
            );
            assert!(
                suggestion.contains("Did you mean `給与総額`?"),
                "{suggestion}"
            );
        } else {
            // Not "payroll" read from its start, and its alias never offered.
            assert_eq!(reading, Reading::Unknown("給与".into()), "{channel}");
            assert!(!suggestion.contains("給与総額"), "{suggestion}");
        }
    }
    // Aliases the asker may see are suggested.
    let asker = asker("C0GENERAL");
    let viewer = Viewer {
        catalog: &catalog,
        asker: &asker,
        policy: AccessPolicy::Allow,
    };
    let suggestion =
        crate::adhoc::reply::unknown_name(&viewer, "アクティブユーザ", crate::i18n::Locale::En);
    assert!(
        suggestion.contains("Did you mean `アクティブユーザー`?"),
        "{suggestion}"
    );
}

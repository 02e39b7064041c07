//! The catalogs agree: every message in one language exists in the other with the same
//! variables, both parse cleanly, and dates read the way each language writes them.

use std::collections::{BTreeMap, BTreeSet};

use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};

use super::*;

fn variables_in_inline(expression: &InlineExpression<&str>, out: &mut BTreeSet<String>) {
    match expression {
        InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_string());
        }
        InlineExpression::Placeable { expression } => variables_in(expression, out),
        InlineExpression::FunctionReference { arguments, .. } => {
            for a in &arguments.positional {
                variables_in_inline(a, out);
            }
        }
        _ => {}
    }
}

fn variables_in(expression: &Expression<&str>, out: &mut BTreeSet<String>) {
    match expression {
        Expression::Inline(inline) => variables_in_inline(inline, out),
        Expression::Select { selector, variants } => {
            variables_in_inline(selector, out);
            for v in variants {
                variables_in_pattern(&v.value, out);
            }
        }
    }
}

fn variables_in_pattern(pattern: &Pattern<&str>, out: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let PatternElement::Placeable { expression } = element {
            variables_in(expression, out);
        }
    }
}

/// Every message of a catalog and the variables it uses.
fn messages(source: &'static str) -> BTreeMap<String, BTreeSet<String>> {
    let resource = fluent_syntax::parser::parse(source)
        .unwrap_or_else(|(_, errors)| panic!("the catalog does not parse: {errors:?}"));
    let mut out = BTreeMap::new();
    for entry in &resource.body {
        match entry {
            Entry::Message(m) => {
                let mut vars = BTreeSet::new();
                if let Some(value) = &m.value {
                    variables_in_pattern(value, &mut vars);
                }
                assert!(
                    out.insert(m.id.name.to_string(), vars).is_none(),
                    "`{}` is defined twice",
                    m.id.name
                );
            }
            Entry::Junk { content } => panic!("unreadable catalog entry: {content}"),
            _ => {}
        }
    }
    out
}

#[test]
fn both_catalogs_have_the_same_messages_with_the_same_variables() {
    let en = messages(EN_CATALOG);
    let ja = messages(JA_CATALOG);
    let only_en: Vec<_> = en.keys().filter(|k| !ja.contains_key(*k)).collect();
    let only_ja: Vec<_> = ja.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(only_en.is_empty(), "missing from ja.ftl: {only_en:?}");
    assert!(only_ja.is_empty(), "missing from en.ftl: {only_ja:?}");
    for (key, vars) in &en {
        assert_eq!(vars, &ja[key], "`{key}` uses different variables in ja.ftl");
    }
    assert!(en.len() > 50, "the catalogs hold every text: {}", en.len());
}

/// Every Rust file under `src/` but this one.
fn source_files() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.retain(|f| !f.ends_with("i18n/tests.rs"));
    files
}

#[test]
fn every_message_key_named_in_the_code_exists() {
    // Keys are string literals next to `tr!(`, `tr_mrkdwn!(` or `Message::new(`: a typo would print the
    // key itself to a person.
    let en = messages(EN_CATALOG);
    let mut missing = Vec::new();
    let files = source_files();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in ["tr!(", "tr_mrkdwn!(", "Message::new(", "GrammarError::new("] {
            let mut pieces = text.split(marker);
            let mut before = pieces.next().unwrap_or_default();
            for piece in pieces {
                // `include_str!(` is not `tr!(`.
                let is_call = !before
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                before = piece;
                if !is_call {
                    continue;
                }
                let Some(start) = piece.find('"') else {
                    continue;
                };
                // Only a literal key right after the marker (`tr!(locale, "key"`).
                if piece[..start].contains(['(', ')', ';']) {
                    continue;
                }
                let rest = &piece[start + 1..];
                let key = &rest[..rest.find('"').unwrap_or(0)];
                if key.is_empty() || key.contains(' ') {
                    continue;
                }
                seen += 1;
                if !en.contains_key(key) {
                    missing.push(format!("{}: {key}", file.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "keys with no message: {missing:#?}");
    assert!(seen > 50, "found only {seen} keys in the code");
}

#[test]
fn keys_chosen_at_run_time_exist_too() {
    // Keys picked by a `match` (`"period-last-days"`, `"history-state-failed"`) are string
    // literals shaped like a key, starting with a word the catalog's keys start with.
    let en = messages(EN_CATALOG);
    let prefixes: BTreeSet<&str> = en.keys().filter_map(|k| k.split('-').next()).collect();
    let is_key_shaped = |text: &str| {
        let mut parts = text.split('-');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        !rest.is_empty()
            && prefixes.contains(first)
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && rest.iter().all(|p| !p.is_empty())
    };
    let files = source_files();
    let (mut seen, mut missing) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests name channels like `#kpi-daily`: only the code a person's text comes
        // from.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for literal in code.split('"').skip(1).step_by(2) {
            if is_key_shaped(literal) {
                seen += 1;
                if !en.contains_key(literal) {
                    missing.push(format!("{}: {literal}", file.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "keys with no message: {missing:#?}");
    assert!(seen > 80, "found only {seen} key-shaped literals");
}

#[test]
fn a_missing_key_reads_as_the_key_not_a_panic() {
    assert_eq!(
        format(Locale::Ja, "no-such-message", &Args::new()),
        "no-such-message"
    );
}

#[test]
fn windows_and_dates_follow_the_language() {
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(
        date_range(Locale::Ja, day("2026-11-02"), day("2026-11-29")),
        "2026年11月2日〜11月29日"
    );
    assert_eq!(
        date_range(Locale::Ja, day("2025-12-30"), day("2026-01-02")),
        "2025年12月30日〜2026年1月2日"
    );
    assert_eq!(
        date_range(Locale::En, day("2026-11-02"), day("2026-11-29")),
        "2026-11-02 – 2026-11-29"
    );
    assert_eq!(date(Locale::Ja, day("2026-11-29")), "2026年11月29日");
    assert_eq!(axis_day(Locale::Ja, day("2026-11-29"), true), "11/29(日)");
    assert_eq!(axis_day(Locale::Ja, day("2026-11-30"), true), "11/30(月)");
    assert_eq!(axis_day(Locale::En, day("2026-11-29"), true), "11/29");
}

#[test]
fn slack_locales_pick_a_catalog() {
    assert_eq!(Locale::from_slack("ja-JP"), Locale::Ja);
    assert_eq!(Locale::from_slack("en-US"), Locale::En);
    assert_eq!(Locale::from_slack("fr-FR"), Locale::En);
    assert!(looks_japanese("/kpi 先週"));
    assert!(!looks_japanese("/kpi last week"));
}

#[test]
fn plurals_and_variables_are_filled_in() {
    let en = crate::tr!(Locale::En, "chart-more-rows", count = 1);
    let en_many = crate::tr!(Locale::En, "chart-more-rows", count = 3);
    assert_ne!(en, en_many, "English says row / rows");
    assert!(en_many.contains('3'), "{en_many}");
    let ja = crate::tr!(Locale::Ja, "chart-more-rows", count = 3);
    assert!(ja.contains('3') && looks_japanese(&ja), "{ja}");
}

//! The phrase corpus (`tests/fixtures/phrases.tsv`): `/kpi` questions as Japanese and
//! English staff type them, each read as the same question as its canonical strict
//! command, or asked back with exactly the listed readings, on a fixed day.

use std::path::Path;

use chrono::{NaiveDate, Weekday};
use kpibot::adhoc::grammar::{self, Filter, Grain, Query, Request};
use kpibot::adhoc::phrase::{Calendar, Reading, command, read};
use kpibot::catalog::Catalog;
use kpibot::spec::{Compare, SpecDefaults, Window};

const CORPUS: &str = include_str!("fixtures/phrases.tsv");

/// 2026-12-06, a Sunday: December is under way; fiscal year 2026 began in April.
fn calendar() -> Calendar {
    Calendar {
        today: NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
        fiscal_year_start_month: 4,
    }
}

/// The demo catalog: every report and metric in `reports/`.
fn catalog() -> Catalog {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
    let files = kpibot::spec::load_dir(&reports, &defaults).unwrap();
    Catalog::from_loaded(&files)
}

/// What the asker may see: everything.
fn reading(catalog: &Catalog, text: &str) -> Reading {
    read(catalog, text, &calendar(), &|_, _| true)
}

/// One corpus line: a phrase and its canonical command, or (`? a | b`) the readings the
/// bot must ask back with, in order.
struct Line {
    number: usize,
    phrase: String,
    expected: Vec<String>,
    ask_back: bool,
}

fn corpus() -> Vec<Line> {
    CORPUS
        .lines()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty() && !text.starts_with('#'))
        .map(|(i, text)| {
            let (phrase, expected) = text
                .split_once('\t')
                .unwrap_or_else(|| panic!("phrases.tsv:{}: no tab in {text:?}", i + 1));
            // `? a | b` in the second column, or `?` and `a | b` in a second and a third.
            let expected = expected.trim();
            let choices = expected.strip_prefix('?');
            let commands = choices.unwrap_or(expected).split('|');
            Line {
                number: i + 1,
                phrase: phrase.to_string(),
                expected: commands.map(|c| c.trim().to_string()).collect(),
                ask_back: choices.is_some(),
            }
        })
        .collect()
}

/// What a query asks, its period resolved to dates on the corpus's day (weeks from Monday):
/// `11月` and `2026-11-01..2026-11-30` ask the same.
#[derive(Debug, PartialEq)]
struct Asked {
    name: String,
    window: Option<Result<Window, String>>,
    grain: Option<Grain>,
    by: Option<String>,
    compare: Option<Compare>,
    filters: Vec<Filter>,
    private: bool,
}

fn asked(query: &Query) -> Asked {
    let today = calendar().today;
    Asked {
        name: query.name.clone(),
        window: query
            .period
            .map(|p| p.resolve(today, Weekday::Mon).map_err(|e| e.to_string())),
        grain: query.grain,
        by: query.by.clone(),
        compare: query.compare,
        filters: query.filters.clone(),
        private: query.private,
    }
}

/// A reading as the commands it stands for (`? a | b` for an ask-back).
fn shown(reading: &Reading) -> String {
    match reading {
        Reading::Question { query, .. } => command(query),
        Reading::Choose(choices) => {
            let commands: Vec<String> = choices.iter().map(|(q, _)| command(q)).collect();
            format!("? {}", commands.join(" | "))
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn every_phrase_reads_as_its_canonical_command() {
    let catalog = catalog();
    let lines = corpus();
    let count = lines.len();
    assert!(count >= 200, "the corpus has only {count} phrases");
    let mut failures = Vec::new();
    for line in &lines {
        let mut expected = Vec::new();
        for canonical in &line.expected {
            match reading(&catalog, canonical) {
                Reading::Question { query, .. } => expected.push(asked(&query)),
                other => failures.push(format!(
                    "line {}: the canonical `{canonical}` is no question: {other:?}",
                    line.number
                )),
            }
        }
        if expected.len() != line.expected.len() {
            continue;
        }
        let got = reading(&catalog, &line.phrase);
        let same = match &got {
            Reading::Question { query, .. } if !line.ask_back => vec![asked(query)] == expected,
            Reading::Choose(choices) if line.ask_back => {
                choices.iter().map(|(q, _)| asked(q)).collect::<Vec<_>>() == expected
            }
            _ => false,
        };
        if !same {
            failures.push(format!(
                "line {}: `{}`\n    expected: {}{}\n    got:      {}",
                line.number,
                line.phrase,
                if line.ask_back { "? " } else { "" },
                line.expected.join(" | "),
                shown(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} phrases misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_reading_writes_back_as_a_command_the_strict_grammar_reads_alike() {
    let catalog = catalog();
    let mut failures = Vec::new();
    for line in corpus() {
        let queries: Vec<Query> = match reading(&catalog, &line.phrase) {
            Reading::Question { query, .. } => vec![query],
            Reading::Choose(choices) => choices.into_iter().map(|(q, _)| q).collect(),
            // A phrase not read as a question is the first test's to report.
            _ => continue,
        };
        for query in queries {
            let text = command(&query);
            match grammar::parse(&text) {
                Ok(Request::Query(again)) if again == query => {}
                other => failures.push(format!(
                    "line {}: `{}` → `{text}` → {other:?}",
                    line.number, line.phrase
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} readings do not read back alike:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

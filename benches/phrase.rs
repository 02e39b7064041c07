//! The phrase reader at catalog scale: 1,000 entries (800 metrics in 8 files and 200
//! reports) answering to 5,000 aliases, Japanese and ASCII, every metric split two or three
//! ways by dimensions with aliases of their own. Times the first read, which builds the
//! catalog's name index, then each question of a mix — exact ids, aliases in Japanese word
//! order with months, fiscal years and comparisons, typed starts of names, misspellings —
//! and prints p50/p99/max per question in microseconds.
//!
//! The budget is Slack's: a slash command must be acknowledged within 3 seconds, and the
//! reader runs before that (inside `resolve`, with the access check and the reply), as
//! does the index build the first question after a start or a catalog reload pays. Both
//! must be a small fraction of it. No time is asserted (speed targets are not tests); the
//! readings of most questions are, so the figures are of real work.
//!
//! `cargo bench --bench phrase` (`KPIBOT_BENCH_PHRASE_READS=N` times each question N times)

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use kpibot::adhoc::grammar::{Filter, Grain, Query};
use kpibot::adhoc::phrase::{self, Calendar, MAX_CHOICES, Reading};
use kpibot::catalog::Catalog;
use kpibot::spec::period::Unit;
use kpibot::spec::{self, Compare, Period, SpecDefaults};

const METRIC_FILES: usize = 8;
const METRICS_PER_FILE: usize = 100;
const REPORTS: usize = 200;
/// Aliases each entry answers to: 1,000 entries, 5,000 aliases.
const ALIASES_PER_ENTRY: usize = 5;
const DEFAULT_READS: usize = 2_000;
/// Slack's limit for acknowledging a slash command: everything before the ack fits in it.
const SLACK_ACK_BUDGET: Duration = Duration::from_secs(3);

const WORDS: [&str; 8] = [
    "売上",
    "利用者数",
    "継続率",
    "解約数",
    "学習時間",
    "提出数",
    "閲覧数",
    "会員数",
];
const KANA: [&str; 4] = ["アクティブ", "サインアップ", "セッション", "ページビュー"];

fn metric_aliases(i: usize) -> [String; ALIASES_PER_ENTRY] {
    [
        format!("指標{i}"),
        format!("kpi{i} alias"),
        format!("{}{i}", WORDS[i % WORDS.len()]),
        format!("{}{i}", KANA[i % KANA.len()]),
        format!("KPI-{i}"),
    ]
}

fn report_aliases(i: usize) -> [String; ALIASES_PER_ENTRY] {
    [
        format!("レポート{i}"),
        format!("report{i} alias"),
        format!("週報{i}"),
        format!("報告{i}"),
        format!("R-{i}"),
    ]
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    quoted.join(", ")
}

/// Metric `i`: split by role and by channel, prefecture or both (two or three ways).
fn metric_entry(i: usize) -> String {
    let mut dimensions =
        String::from("role = { label = \"Role\", aliases = [\"ロール\", \"役割\"] }\n");
    if i % 3 != 1 {
        dimensions.push_str(
            "channel = { label = \"Channel\", aliases = [\"チャネル\", \"流入経路\"] }\n",
        );
    }
    if !i.is_multiple_of(3) {
        dimensions.push_str(
            "prefecture = { label = \"Prefecture\", aliases = [\"都道府県\", \"県\"] }\n",
        );
    }
    format!(
        "[[metric]]\nname = \"metric_{i:04}\"\nlabel = \"Metric {i:04}\"\naliases = [{}]\n\
         table = \"mart.daily_active_users\"\ntime_column = \"activity_date\"\nmeasure = \"sum\"\n\
         column = \"active_users\"\nowner = \"#data-team\"\n[metric.dimensions]\n{dimensions}\n",
        toml_list(&metric_aliases(i))
    )
}

/// Report `i`, shaped like `reports/signups_by_channel.toml` (without a schedule).
fn report_file(i: usize) -> String {
    format!(
        r##"title = "Report {i:04}"
aliases = [{aliases}]
description = "Accounts created per day, stacked by acquisition channel."
owner = "#growth"
tags = ["growth", "daily"]

[definition]
source = "mart.daily_signups"
refreshed = "daily by 06:00 JST"
purpose = "See which channels bring new schools, teachers and families."

[query]
sql = """
SELECT signup_date AS day, channel, SUM(signups) AS signups
FROM mart.daily_signups
WHERE signup_date BETWEEN @start_date AND @end_date
GROUP BY signup_date, channel
ORDER BY day, channel
"""
period = "last 14 days"

[chart]
kind = "stacked_bar"
x = "day"
y = "signups"
series = "channel"
headline = "total"
"##,
        aliases = toml_list(&report_aliases(i))
    )
}

/// What a question must read as.
enum Expect {
    Question(Query),
    /// Readings to choose from: the entries, in order.
    Choose(Vec<String>),
    Unknown(String),
    /// Timed only; what it reads as is printed.
    Any,
}

fn query(name: &str) -> Query {
    Query {
        name: name.into(),
        ..Query::default()
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn questions() -> Vec<(String, Expect)> {
    let last_month = Some(Period::Last(1, Unit::Month));
    let by = |dimension: &str| Some(dimension.to_string());
    vec![
        ("metric_0123".into(), Expect::Question(query("metric_0123"))),
        (
            "metric_0123 last 30 days weekly by role".into(),
            Expect::Question(Query {
                period: Some(Period::Last(30, Unit::Day)),
                grain: Some(Grain::Week),
                by: by("role"),
                ..query("metric_0123")
            }),
        ),
        (
            "report_0042 yesterday".into(),
            Expect::Question(Query {
                period: Some(Period::Yesterday),
                ..query("report_0042")
            }),
        ),
        (
            "先月の指標123 ロール別".into(),
            Expect::Question(Query {
                period: last_month,
                by: by("role"),
                ..query("metric_0123")
            }),
        ),
        (
            format!("2026年11月の{}", metric_aliases(45)[2]),
            Expect::Question(Query {
                period: Some(Period::Between(date("2026-11-01"), date("2026-11-30"))),
                ..query("metric_0045")
            }),
        ),
        (
            "今年度 kpi456 alias チャネルごと".into(),
            Expect::Question(Query {
                period: Some(Period::Since(date("2026-04-01"))),
                by: by("channel"),
                ..query("metric_0456")
            }),
        ),
        (
            format!("過去30日 {} 前年同月比", metric_aliases(7)[3]),
            Expect::Question(Query {
                period: Some(Period::Last(30, Unit::Day)),
                compare: Some(Compare::PreviousYear),
                ..query("metric_0007")
            }),
        ),
        (
            format!("{}の先週", report_aliases(42)[0]),
            Expect::Question(Query {
                period: Some(Period::Last(1, Unit::Week)),
                ..query("report_0042")
            }),
        ),
        (
            format!("FY2025 第2四半期の{}", report_aliases(42)[3]),
            Expect::Question(Query {
                period: Some(Period::Between(date("2025-07-01"), date("2025-09-30"))),
                ..query("report_0042")
            }),
        ),
        (
            "ＫＰＩ－７　先月　ロール別".into(),
            Expect::Question(Query {
                period: last_month,
                by: by("role"),
                ..query("metric_0007")
            }),
        ),
        (
            "先月の指標123をロール別に where ロール=student,teacher".into(),
            Expect::Question(Query {
                period: last_month,
                by: by("role"),
                filters: vec![Filter {
                    dimension: "role".into(),
                    values: vec!["student".into(), "teacher".into()],
                }],
                ..query("metric_0123")
            }),
        ),
        (
            "show me the kpi456 alias for last month by channel please".into(),
            Expect::Question(Query {
                period: last_month,
                by: by("channel"),
                ..query("metric_0456")
            }),
        ),
        // The month under way: this December so far, or last December.
        (
            "12月の指標5".into(),
            Expect::Choose(vec!["metric_0005".into(), "metric_0005".into()]),
        ),
        // Typed starts of names, looked up as prefixes: all 800 metrics, and 11.
        (
            "指標".into(),
            Expect::Choose((0..MAX_CHOICES).map(|i| format!("metric_{i:04}")).collect()),
        ),
        (
            "kpi12".into(),
            Expect::Choose(
                [
                    "metric_0012",
                    "metric_0120",
                    "metric_0121",
                    "metric_0122",
                    "metric_0123",
                ]
                .map(String::from)
                .to_vec(),
            ),
        ),
        ("metrik_0123".into(), Expect::Unknown("metrik_0123".into())),
        ("ほげほげ 先月".into(), Expect::Unknown("ほげほげ".into())),
        // A name that is no alias, whose start is every metric's.
        ("指標9999 先月".into(), Expect::Any),
    ]
}

fn summary(reading: &Reading) -> String {
    match reading {
        Reading::Command(request) => format!("command {request:?}"),
        Reading::Question { query, .. } => format!("question {}", phrase::command(query)),
        Reading::Choose(choices) => {
            let names: Vec<&str> = choices.iter().map(|(q, _)| q.name.as_str()).collect();
            format!("choose {}: {}", choices.len(), names.join(", "))
        }
        Reading::Mistake(error) => format!("mistake: {error}"),
        Reading::Unknown(name) => format!("unknown `{name}`"),
    }
}

fn check(text: &str, reading: &Reading, expect: &Expect) {
    match (expect, reading) {
        (Expect::Question(expected), Reading::Question { query, .. }) => {
            assert_eq!(query, expected, "`{text}`");
        }
        (Expect::Choose(names), Reading::Choose(choices)) => {
            let got: Vec<&str> = choices.iter().map(|(q, _)| q.name.as_str()).collect();
            assert_eq!(got, *names, "`{text}`");
        }
        (Expect::Unknown(name), Reading::Unknown(got)) => assert_eq!(got, name, "`{text}`"),
        (Expect::Any, _) => {}
        _ => panic!("`{text}` read as {}", summary(reading)),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let reads: usize = std::env::var("KPIBOT_BENCH_PHRASE_READS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_READS);
    let dir = tempfile::tempdir().unwrap();
    for f in 0..METRIC_FILES {
        let text: String = (f * METRICS_PER_FILE..(f + 1) * METRICS_PER_FILE)
            .map(metric_entry)
            .collect();
        std::fs::write(dir.path().join(format!("metrics_{f}.toml")), text).unwrap();
    }
    for i in 0..REPORTS {
        let path = dir.path().join(format!("report_{i:04}.toml"));
        std::fs::write(path, report_file(i)).unwrap();
    }

    let started = Instant::now();
    let files = spec::load_dir(dir.path(), &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo)).unwrap();
    let loaded = started.elapsed();
    assert_eq!(files.len(), METRIC_FILES + REPORTS);
    for file in &files {
        assert!(
            file.is_valid(),
            "{}:\n{}",
            file.path.display(),
            file.render_diagnostics()
        );
    }
    let catalog = Catalog::from_loaded(&files);
    let metrics = catalog.metrics().count();
    assert_eq!(metrics, METRIC_FILES * METRICS_PER_FILE);
    assert_eq!(catalog.len(), REPORTS);
    let aliases: usize = catalog.metrics().map(|m| m.aliases.len()).sum::<usize>()
        + catalog.reports().map(|r| r.aliases.len()).sum::<usize>();
    assert_eq!(aliases, (metrics + REPORTS) * ALIASES_PER_ENTRY);
    let dimensions: usize = catalog.metrics().map(|m| m.dimensions.len()).sum();
    let dimension_aliases: usize = catalog
        .metrics()
        .flat_map(|m| m.dimension_aliases.values())
        .map(Vec::len)
        .sum();

    // Fixed, so the readings checked below do not move with the date.
    let calendar = Calendar {
        today: date("2026-12-06"),
        fiscal_year_start_month: 4,
    };
    // The first phrase read builds the name index (an exact id would not: it is read by
    // the strict grammar without it).
    let started = Instant::now();
    let first = phrase::read(&catalog, "先月の指標1", &calendar, &|_, _| true);
    let index_build = started.elapsed();
    assert!(
        matches!(&first, Reading::Question { query, .. } if query.name == "metric_0001"),
        "{}",
        summary(&first)
    );
    let index = catalog.name_index();

    println!(
        "phrase benchmark: {} entries ({metrics} metrics in {METRIC_FILES} files, {REPORTS} reports), \
         {aliases} aliases; {dimensions} dimensions with {dimension_aliases} aliases; {reads} reads per question",
        metrics + REPORTS
    );
    println!(
        "  loading and checking the {} spec files: {:.1} ms",
        files.len(),
        loaded.as_secs_f64() * 1e3
    );
    println!(
        "  name index, built by the first read: {:.2} ms ({} entry names, {} dimension names, longest {} bytes)",
        index_build.as_secs_f64() * 1e3,
        index.entries.len(),
        index.dimensions.len(),
        index.longest
    );
    println!(
        "  {:>9} {:>9} {:>9}  question → reading",
        "p50 µs", "p99 µs", "max µs"
    );
    let mut slowest = Duration::ZERO;
    for (text, expect) in questions() {
        let reading = phrase::read(&catalog, &text, &calendar, &|_, _| true);
        check(&text, &reading, &expect);
        let mut times = Vec::with_capacity(reads);
        for _ in 0..reads {
            let started = Instant::now();
            black_box(phrase::read(
                black_box(&catalog),
                black_box(&text),
                &calendar,
                &|_, _| true,
            ));
            times.push(started.elapsed());
        }
        times.sort();
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        slowest = slowest.max(at(0.99));
        println!(
            "  {:>9.1} {:>9.1} {:>9.1}  {text} → {}",
            micros(at(0.5)),
            micros(at(0.99)),
            micros(times[times.len() - 1]),
            summary(&reading)
        );
    }
    println!(
        "  budget: Slack's {} s acknowledgement; the slowest p99 read is {:.4}% of it, the index build {:.3}%",
        SLACK_ACK_BUDGET.as_secs(),
        slowest.as_secs_f64() * 100.0 / SLACK_ACK_BUDGET.as_secs_f64(),
        index_build.as_secs_f64() * 100.0 / SLACK_ACK_BUDGET.as_secs_f64()
    );
}

//! Report specs: `reports/*.toml` loaded, validated (every problem, with line and column)
//! and turned into checked types the rest of the bot can trust.

pub mod diagnostic;
pub mod period;
mod reader;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::Weekday;
use chrono_tz::Tz;

pub use diagnostic::Diagnostic;
pub use period::{Period, Window};

/// Query parameters the bot binds for every report query.
pub const PROVIDED_PARAMETERS: [&str; 3] = ["start_date", "end_date", "run_date"];

/// A validated report spec. Past this type, every field is known to be usable.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    /// The file stem, e.g. `daily_active_users`.
    pub id: String,
    pub path: PathBuf,
    /// The file's text, kept so warehouse errors can point into the SQL.
    pub source: String,
    pub title: String,
    pub description: String,
    /// Who hears about failures: a `#channel`, a channel ID or a user.
    pub owner: String,
    pub tags: Vec<String>,
    /// The timezone the report's dates are computed in (defaults to the bot's setting).
    pub timezone: Tz,
    pub definition: Definition,
    pub query: QuerySpec,
    pub chart: ChartSpec,
    pub schedules: Vec<ScheduleSpec>,
    /// Checked before a scheduled run: is the source refreshed?
    pub freshness: Option<FreshnessSpec>,
    /// Who may ask for this report with `/kpi` (scheduled posts are not affected).
    pub access: Access,
}

/// A freshness gate: `sql` returns the newest date in the source (one row, one column);
/// it must be at least the slot's date minus `expect_days_ago` in the report's timezone.
#[derive(Debug, Clone)]
pub struct FreshnessSpec {
    pub sql: String,
    pub expect_days_ago: u32,
    /// How long to wait between checks while the data is stale.
    pub recheck: std::time::Duration,
    /// How long after the slot to keep waiting before telling the owner.
    pub deadline: std::time::Duration,
}

/// The data definition shown to readers: where the numbers come from.
#[derive(Debug, Clone)]
pub struct Definition {
    pub source: String,
    pub refreshed: String,
    pub purpose: String,
}

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub sql: String,
    /// Byte offset in the spec file where the SQL text starts, when every character of the
    /// SQL maps one-to-one onto the file (no escapes), so errors can point at a SQL line.
    pub sql_offset: Option<usize>,
    /// Byte range of the whole `sql = …` value in the file.
    pub sql_span: Range<usize>,
    pub period: Period,
    pub week_start: Weekday,
    /// Seconds the warehouse may spend on one run of this query (overrides the setting).
    pub timeout_seconds: Option<u64>,
    /// Bytes one run may bill on BigQuery (overrides the setting).
    pub maximum_bytes_billed: Option<u64>,
    /// The report's own parameters (`[query.params]`), bound by name with their types.
    pub params: crate::warehouse::Params,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Line,
    Bar,
    StackedBar,
    Area,
    Number,
    Table,
}

impl ChartKind {
    pub const NAMES: [&'static str; 6] = ["line", "bar", "stacked_bar", "area", "number", "table"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "line" => Self::Line,
            "bar" => Self::Bar,
            "stacked_bar" => Self::StackedBar,
            "area" => Self::Area,
            "number" => Self::Number,
            "table" => Self::Table,
            _ => return None,
        })
    }
}

/// How numbers are written on axes, labels and in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberFormat {
    Integer,
    Decimal,
    Percent,
    Currency,
    Duration,
}

impl NumberFormat {
    pub const NAMES: [&'static str; 5] = ["integer", "decimal", "percent", "currency", "duration"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "integer" => Self::Integer,
            "decimal" => Self::Decimal,
            "percent" => Self::Percent,
            "currency" => Self::Currency,
            "duration" => Self::Duration,
            _ => return None,
        })
    }
}

/// Which single number summarises the window in the message headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    /// The value at the latest x (all series added up). The default.
    Last,
    /// The sum over the whole window.
    Total,
    /// The mean of the per-x totals over the window.
    Average,
}

impl Headline {
    pub const NAMES: [&'static str; 3] = ["last", "total", "average"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "last" => Self::Last,
            "total" => Self::Total,
            "average" => Self::Average,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ChartSpec {
    pub kind: ChartKind,
    pub x: Column,
    pub y: Column,
    pub series: Option<Column>,
    pub format: NumberFormat,
    pub headline: Headline,
    /// Which window the headline is compared with.
    pub compare: Compare,
    /// `ja` writes compact numbers as 万 / 億; `en` as K / M / B.
    pub locale: Locale,
    /// Currency symbol for `format = "currency"`.
    pub currency: Currency,
    /// A horizontal target line and its label.
    pub goal: Option<Goal>,
    /// Write the value next to the last point of each line.
    pub label_last: bool,
    /// Rows shown by `kind = "table"`.
    pub max_rows: usize,
    /// Whether a rise is good news (green) or bad news (orange), e.g. false for churn.
    pub higher_is_better: bool,
}

/// The window the headline is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// The window of the same length just before (the default).
    PreviousPeriod,
    /// The same days one week earlier (same weekdays).
    PreviousWeek,
    /// The same dates one year earlier.
    PreviousYear,
    /// No comparison.
    None,
}

impl Compare {
    pub const NAMES: [&'static str; 4] =
        ["previous_period", "previous_week", "previous_year", "none"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "previous_period" => Self::PreviousPeriod,
            "previous_week" => Self::PreviousWeek,
            "previous_year" => Self::PreviousYear,
            "none" => Self::None,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    Ja,
}

impl Locale {
    pub const NAMES: [&'static str; 2] = ["en", "ja"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "en" => Self::En,
            "ja" => Self::Ja,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Currency {
    Jpy,
    Usd,
}

impl Currency {
    pub const NAMES: [&'static str; 2] = ["JPY", "USD"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "JPY" => Self::Jpy,
            "USD" => Self::Usd,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub value: f64,
    pub label: String,
}

/// A column name from the spec and where it was written, for `check --dry-run` messages.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub cron: cron::Schedule,
    pub timezone: Tz,
    pub channel: String,
    /// Post a one-line summary in the channel and the chart as a thread reply.
    pub thread: bool,
    /// Missed slots younger than this run after downtime (default: the setting, 6 h).
    pub catch_up: Option<std::time::Duration>,
    /// Where the `[[schedule]]` entry is written.
    pub span: Range<usize>,
}

/// Settings that fill in what a spec leaves out.
#[derive(Debug, Clone)]
pub struct SpecDefaults {
    pub timezone: Tz,
}

/// One spec file after loading: its text, the spec if it is valid, and every problem.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub source: String,
    /// The report, if the file defines one (a file may hold only `[[metric]]`s).
    pub spec: Option<ReportSpec>,
    /// The `[[metric]]` entries of the file.
    pub metrics: Vec<MetricSpec>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedFile {
    /// Valid, and defines a report or at least one metric.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty() && (self.spec.is_some() || !self.metrics.is_empty())
    }
}

/// How a metric adds up its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    Sum(String),
    /// `COUNT(*)` without a column, `COUNT(column)` with one.
    Count(Option<String>),
    CountDistinct(String),
    Avg(String),
    Min(String),
    Max(String),
    /// One measure divided by another (e.g. submissions per active user).
    Ratio(Box<Measure>, Box<Measure>),
}

impl Measure {
    pub const NAMES: [&'static str; 7] = [
        "sum",
        "count",
        "count_distinct",
        "avg",
        "min",
        "max",
        "ratio",
    ];
}

/// An ad-hoc metric: SQL is generated from this definition; identifiers come only from
/// here, never from what a user typed.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub label: String,
    pub description: String,
    /// The mart table, e.g. `mart.daily_active_users`.
    pub table: String,
    /// The DATE column the period filters and the grain buckets.
    pub time_column: String,
    pub measure: Measure,
    /// Allowed dimensions: column name → label.
    pub dimensions: BTreeMap<String, String>,
    pub format: NumberFormat,
    pub owner: String,
    pub refreshed: String,
    pub tags: Vec<String>,
    pub access: Access,
    pub path: PathBuf,
    /// Byte range of the `table = …` value in the file: where a warehouse's complaint
    /// about the metric's query points.
    pub table_span: Range<usize>,
}

/// Who may ask for a report or metric in Slack. Empty lists mean the default policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Answers only ephemerally (to the person who asked).
    pub restricted: bool,
    pub allowed_channels: Vec<String>,
    pub allowed_users: Vec<String>,
    pub allowed_usergroups: Vec<String>,
}

impl Access {
    /// Whether any allow-list is set (otherwise the default policy decides).
    pub fn has_lists(&self) -> bool {
        !(self.allowed_channels.is_empty()
            && self.allowed_users.is_empty()
            && self.allowed_usergroups.is_empty())
    }
}

impl LoadedFile {
    /// Every diagnostic rendered rustc-style, in source order.
    pub fn render_diagnostics(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.source))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the reports folder {path}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the report spec {path}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The set of valid reports, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    reports: BTreeMap<String, ReportSpec>,
    metrics: BTreeMap<String, MetricSpec>,
}

impl Catalog {
    /// Keeps the valid specs of `files`.
    pub fn from_loaded(files: &[LoadedFile]) -> Self {
        let valid = files.iter().filter(|f| f.is_valid());
        Self::from_specs(
            valid.clone().filter_map(|f| f.spec.clone()),
            valid.flat_map(|f| f.metrics.clone()),
        )
    }

    /// A catalog of these reports and metrics, by name.
    pub fn from_specs(
        specs: impl IntoIterator<Item = ReportSpec>,
        metrics: impl IntoIterator<Item = MetricSpec>,
    ) -> Self {
        Self {
            reports: specs.into_iter().map(|s| (s.id.clone(), s)).collect(),
            metrics: metrics.into_iter().map(|m| (m.name.clone(), m)).collect(),
        }
    }

    pub fn metric(&self, name: &str) -> Option<&MetricSpec> {
        self.metrics.get(name)
    }

    pub fn metrics(&self) -> impl Iterator<Item = &MetricSpec> {
        self.metrics.values()
    }

    pub fn get(&self, id: &str) -> Option<&ReportSpec> {
        self.reports.get(id)
    }

    pub fn reports(&self) -> impl Iterator<Item = &ReportSpec> {
        self.reports.values()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.reports.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }
}

/// Loads every `*.toml` under `dir` (recursively, in path order). Problems in the files are
/// diagnostics on each [`LoadedFile`]; only an unreadable folder or file is an `Err`.
pub fn load_dir(dir: &Path, defaults: &SpecDefaults) -> Result<Vec<LoadedFile>, LoadError> {
    let paths = spec_paths(dir)?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let source = std::fs::read_to_string(&path).map_err(|source| LoadError::ReadFile {
            path: path.clone(),
            source,
        })?;
        files.push(load_source(&path, source, defaults));
    }
    flag_duplicate_ids(&mut files);
    flag_metric_name_clashes(&mut files);
    Ok(files)
}

/// Every spec file (`*.toml`, any case) under `dir`, recursively, in path order.
pub fn spec_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut paths = Vec::new();
    collect_toml_files(dir, &mut paths)?;
    paths.sort();
    Ok(paths)
}

fn collect_toml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_toml_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Report ids are compared case-insensitively: `/kpi DAU` and `/kpi dau` must not be two
/// reports.
fn flag_duplicate_ids(files: &mut [LoadedFile]) {
    let mut first_seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files.iter_mut() {
        let id = report_id(&file.path).to_lowercase();
        if let Some(first) = first_seen.get(&id) {
            file.spec = None;
            file.diagnostics.insert(
                0,
                Diagnostic::new(&file.path, 0..0, format!("duplicate report id `{id}`"))
                    .with_label("this file's name is its report id")
                    .with_hint(format!(
                        "{} already defines report `{id}`; rename one of the files",
                        first.display()
                    )),
            );
        } else {
            first_seen.insert(id, file.path.clone());
        }
    }
}

/// A metric and a report (or two metrics) with one name would make `/kpi <name>`
/// ambiguous: the later file is flagged.
fn flag_metric_name_clashes(files: &mut [LoadedFile]) {
    let mut taken: BTreeMap<String, PathBuf> = files
        .iter()
        .filter(|f| f.spec.is_some())
        .map(|f| (report_id(&f.path).to_lowercase(), f.path.clone()))
        .collect();
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for metric in &file.metrics {
            let key = metric.name.to_lowercase();
            match taken.get(&key) {
                Some(other) => problems.push(
                    Diagnostic::new(
                        &file.path,
                        0..0,
                        format!("metric name `{}` is already taken", metric.name),
                    )
                    .with_hint(format!(
                        "{} already uses `{}`; `/kpi {}` must mean one thing, so rename the metric",
                        other.display(),
                        metric.name,
                        metric.name
                    )),
                ),
                None => {
                    taken.insert(key, file.path.clone());
                }
            }
        }
        if !problems.is_empty() {
            file.diagnostics.extend(problems);
            file.spec = None;
            file.metrics.clear();
        }
    }
}

/// The report id of a spec file: its stem.
pub fn report_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parses and validates one spec file's text.
pub fn load_source(path: &Path, source: String, defaults: &SpecDefaults) -> LoadedFile {
    let (spec, metrics, mut diagnostics) = reader::read_spec(path, &source, defaults);
    diagnostics.sort_by_key(|d| d.span.start);
    let valid = diagnostics.is_empty();
    LoadedFile {
        path: path.to_path_buf(),
        spec: if valid { spec } else { None },
        metrics: if valid { metrics } else { Vec::new() },
        diagnostics,
        source,
    }
}

impl ReportSpec {
    /// Byte offset in the spec file of the start of the SQL's 1-based `sql_line`, when the
    /// SQL is written without escapes (so offsets map one-to-one).
    pub fn sql_line_offset(&self, sql_line: usize) -> Option<usize> {
        self.sql_position(sql_line, None)
    }

    /// Byte offset in the spec file of the SQL's 1-based `sql_line` and, if given, its
    /// 1-based character `column` (where BigQuery points); without a column, the line's
    /// first non-blank character. `None` when the SQL cannot be mapped onto the file.
    pub fn sql_position(&self, sql_line: usize, column: Option<usize>) -> Option<usize> {
        let start = self.query.sql_offset?;
        let lines: Vec<&str> = self.query.sql.split_inclusive('\n').collect();
        if sql_line == 0 || sql_line > lines.len().max(1) {
            return None;
        }
        let before: usize = lines.iter().take(sql_line - 1).map(|l| l.len()).sum();
        let text = lines.get(sql_line - 1).copied().unwrap_or("");
        let within = match column {
            Some(column) if column >= 1 => text
                .char_indices()
                .nth(column - 1)
                .map_or(text.trim_end_matches('\n').len(), |(at, _)| at),
            _ => text.len() - text.trim_start().len(),
        };
        Some(start + before + within)
    }

    /// `path:line:col` of the SQL's 1-based `sql_line` (and character `column`, if known) in
    /// the spec file (the start of the `sql` value when the line cannot be mapped).
    pub fn sql_location(&self, sql_line: usize, column: Option<usize>) -> String {
        let offset = self
            .sql_position(sql_line, column)
            .unwrap_or(self.query.sql_span.start);
        let (line, col) = diagnostic::line_col(&self.source, offset);
        format!("{}:{line}:{col}", self.path.display())
    }
}

//! `[[metric]]`: what a metric computes — a mart table's time column, one measure and
//! the dimensions `/kpi` may split or filter it by — and, as dbt's MetricFlow defines
//! them, `cumulative` metrics (a rolling window or grain-to-date, re-aggregated from the
//! rows) and `derived` ones (an expression over other metrics, an input optionally
//! offset in time). The TOML is read in `metric_read`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::access::Access;
use super::alias::Alias;
use super::chart::NumberFormat;
use super::expr::Expr;

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

/// A filter: `dimension = one of values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: String,
    pub values: Vec<String>,
}

/// An ad-hoc metric: SQL is generated from this definition; identifiers come only from
/// here, never from what a user typed.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub label: String,
    pub description: String,
    /// Simple, cumulative or derived.
    pub kind: MetricKind,
    /// Filters always applied to the rows (a dbt metric's `filter`), as bound values.
    pub fixed_filters: Vec<Filter>,
    /// What the data team wrote about the table and its columns (dbt's `manifest.json`):
    /// (table or column, description).
    pub documentation: Vec<(String, String)>,
    /// The mart table, e.g. `mart.daily_active_users`. Empty for a derived metric, which
    /// reads its inputs' tables (see [`MetricSpec::sources`]).
    pub table: String,
    /// The DATE column the period filters and the grain buckets (empty when derived).
    pub time_column: String,
    /// What is added up per bucket (`Count(None)` for a derived metric, never used).
    pub measure: Measure,
    /// Allowed dimensions: column name → label.
    pub dimensions: BTreeMap<String, String>,
    /// Other names people use for the metric (`aliases = ["アクティブユーザー", "DAU"]`).
    pub aliases: Vec<Alias>,
    /// Other names of a dimension (`role = { label = "Role", aliases = ["ロール"] }`).
    pub dimension_aliases: BTreeMap<String, Vec<Alias>>,
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

impl MetricSpec {
    /// The metrics over a table this one reads: itself, or a derived metric's inputs.
    pub fn sources(&self) -> Vec<&MetricSpec> {
        match &self.kind {
            MetricKind::Derived(d) => d.linked().flat_map(MetricSpec::sources).collect(),
            _ => vec![self],
        }
    }

    /// The own allow-lists of the metrics a derived metric reads, with each one's owner and
    /// name: a derived metric shows its inputs' numbers, so each input's lists guard it
    /// too (empty for a metric over a table).
    pub fn input_access(&self) -> Vec<(&super::Access, &str, &str)> {
        match &self.kind {
            MetricKind::Derived(d) => d
                .linked()
                .filter(|m| m.access.has_lists())
                .map(|m| (&m.access, m.owner.as_str(), m.name.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether a bucket's value is a total over the bucket (so a window's headline adds
    /// them up): a simple sum or count.
    pub fn is_additive(&self) -> bool {
        matches!(self.kind, MetricKind::Simple)
            && matches!(self.measure, Measure::Sum(_) | Measure::Count(_))
    }
}

/// The columns a measure reads.
pub fn measure_columns(measure: &Measure) -> Vec<&str> {
    match measure {
        Measure::Sum(c)
        | Measure::CountDistinct(c)
        | Measure::Avg(c)
        | Measure::Min(c)
        | Measure::Max(c) => vec![c.as_str()],
        Measure::Count(c) => c.iter().map(String::as_str).collect(),
        Measure::Ratio(a, b) => {
            let mut columns = measure_columns(a);
            columns.extend(measure_columns(b));
            columns
        }
    }
}

/// A metric's type (`type = "simple" | "cumulative" | "derived"` in TOML).
#[derive(Debug, Clone, Default)]
pub enum MetricKind {
    /// The measure per bucket (a `ratio` measure is simple too).
    #[default]
    Simple,
    Cumulative(Cumulative),
    Derived(Derived),
}

impl MetricKind {
    pub const NAMES: [&'static str; 3] = ["simple", "cumulative", "derived"];
}

/// A length of time: `7 days`, `1 month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub count: u32,
    pub unit: IntervalUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl IntervalUnit {
    /// The unit as SQL's `INTERVAL n <unit>` spells it (the same in DuckDB and BigQuery).
    pub fn sql(self) -> &'static str {
        match self {
            IntervalUnit::Day => "DAY",
            IntervalUnit::Week => "WEEK",
            IntervalUnit::Month => "MONTH",
            IntervalUnit::Quarter => "QUARTER",
            IntervalUnit::Year => "YEAR",
        }
    }

    /// A unit's name as written in a spec or in dbt (`day`, `days`, `month`…).
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().trim_end_matches('s') {
            "day" => IntervalUnit::Day,
            "week" => IntervalUnit::Week,
            "month" => IntervalUnit::Month,
            "quarter" => IntervalUnit::Quarter,
            "year" => IntervalUnit::Year,
            _ => return None,
        })
    }
}

impl Interval {
    /// `7 days`, `1 month`, `2 weeks`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let count: u32 = words.next()?.parse().ok().filter(|n| *n > 0)?;
        let unit = IntervalUnit::parse(words.next()?)?;
        words.next().is_none().then_some(Interval { count, unit })
    }

    /// `7 days`, as the spec would write it.
    pub fn words(&self) -> String {
        let unit = format!("{:?}", self.unit).to_lowercase();
        if self.count == 1 {
            format!("1 {unit}")
        } else {
            format!("{} {unit}s", self.count)
        }
    }
}

/// How a cumulative metric accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulate {
    /// The rows of the last `window` up to and including each day.
    Window(Interval),
    /// The rows from the start of the day's week, month, quarter or year to the day.
    ToDate(IntervalUnit),
}

/// Which day's value stands for a week or a month of a cumulative metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodAgg {
    First,
    Last,
    Average,
}

impl PeriodAgg {
    pub const NAMES: [&'static str; 3] = ["first", "last", "average"];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "first" => PeriodAgg::First,
            "last" => PeriodAgg::Last,
            "average" => PeriodAgg::Average,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cumulative {
    pub accumulate: Accumulate,
    pub period_agg: PeriodAgg,
}

/// An expression over other metrics.
#[derive(Debug, Clone)]
pub struct Derived {
    pub expr: Expr,
    /// As written, for `/kpi describe`.
    pub text: String,
    /// Where the expression's characters start in the file, when it can be pointed into.
    pub text_offset: Option<usize>,
    pub span: Range<usize>,
    /// One per name in the expression, in order of first appearance.
    pub inputs: Vec<DerivedInput>,
}

/// One name of a derived metric's expression: the metric it stands for, shifted by
/// `offset` (the value at a date is the metric's value `offset` earlier).
#[derive(Debug, Clone)]
pub struct DerivedInput {
    /// The name as the expression writes it (a metric's name, or an `alias`).
    pub name: String,
    pub metric: String,
    pub offset: Option<Interval>,
    /// Filters on this input only (a dbt input's `filter`), added to the linked metric's.
    pub filters: Vec<super::metric::Filter>,
    /// The input metric itself, filled in once every file is read
    /// ([`super::derived::link_derived`]).
    pub linked: Option<Box<MetricSpec>>,
}

impl Derived {
    /// The input metrics, once linked.
    pub fn linked(&self) -> impl Iterator<Item = &MetricSpec> {
        self.inputs.iter().filter_map(|i| i.linked.as_deref())
    }
}

/// The period a target (and a pace alert) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPeriod {
    Month,
    /// Monday to Sunday.
    Week,
}

impl TargetPeriod {
    pub const NAMES: [&'static str; 2] = ["month", "week"];

    /// The period as specs and targets tables write it.
    pub fn name(self) -> &'static str {
        match self {
            TargetPeriod::Month => "month",
            TargetPeriod::Week => "week",
        }
    }

    /// The period [`TargetPeriod::name`] writes as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "month" => Some(TargetPeriod::Month),
            "week" => Some(TargetPeriod::Week),
            _ => None,
        }
    }

    /// The period containing `day`: its first and last day.
    pub fn around(self, day: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
        match self {
            TargetPeriod::Month => {
                let first = chrono::Datelike::with_day(&day, 1).expect("day 1 exists");
                let last = first + chrono::Months::new(1) - chrono::Days::new(1);
                (first, last)
            }
            TargetPeriod::Week => {
                let first = day
                    - chrono::Days::new(u64::from(
                        chrono::Datelike::weekday(&day).num_days_from_monday(),
                    ));
                (first, first + chrono::Days::new(6))
            }
        }
    }
}

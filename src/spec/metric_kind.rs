//! What a metric computes beyond one measure per bucket, as dbt's MetricFlow defines it:
//! `cumulative` (a rolling window or grain-to-date, re-aggregated from the rows, so a
//! distinct count stays distinct) and `derived` (an expression over other metrics, each
//! input optionally offset in time).

use std::ops::Range;

use super::MetricSpec;
use super::expr::{self, Expr};
use super::walk::{Reader, Tbl, is_identifier, string_content_offset};

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

impl Reader<'_> {
    fn interval(&mut self, t: &Tbl, key: &str) -> Option<Option<Interval>> {
        let Some(text) = self.string(t, key, false) else {
            return if Self::lookup(t, key).is_some() {
                None
            } else {
                Some(None)
            };
        };
        match Interval::parse(text.get_ref()) {
            Some(i) => Some(Some(i)),
            None => {
                self.error(
                    text.span(),
                    format!("`{}` is not a length of time", text.get_ref()),
                )
                .hint = Some(
                    "write a count and a unit: `7 days`, `4 weeks`, `1 month`, `1 year`".into(),
                );
                None
            }
        }
    }

    /// `window = "7 days"` or `grain_to_date = "month"`, and `period_agg`.
    pub(super) fn cumulative(&mut self, t: &Tbl) -> Option<Cumulative> {
        let window = self.interval(t, "window");
        let to_date = self.choice(
            t,
            "grain_to_date",
            &["week", "month", "quarter", "year"],
            |s| IntervalUnit::parse(s).filter(|u| *u != IntervalUnit::Day),
            Some(IntervalUnit::Day),
        );
        let period_agg = self.choice(
            t,
            "period_agg",
            &PeriodAgg::NAMES,
            PeriodAgg::parse,
            Some(PeriodAgg::Last),
        );
        let accumulate = match (window?, to_date?) {
            (Some(w), IntervalUnit::Day) => Accumulate::Window(w),
            (None, unit) if unit != IntervalUnit::Day => Accumulate::ToDate(unit),
            (None, _) => {
                self.error(
                    t.anchor.clone(),
                    "a cumulative metric needs `window` or `grain_to_date`",
                )
                .hint = Some(
                    "write `window = \"7 days\"` for a rolling total, or `grain_to_date = \"month\"` for month to date".into(),
                );
                return None;
            }
            (Some(_), _) => {
                self.error(
                    t.anchor.clone(),
                    "a cumulative metric has `window` or `grain_to_date`, not both",
                );
                return None;
            }
        };
        Some(Cumulative {
            accumulate,
            period_agg: period_agg?,
        })
    }

    /// `expr = "a / b"` and `inputs = [{ metric = "signups", alias = "…", offset_window = "7 days" }]`.
    pub(super) fn derived(&mut self, t: &Tbl) -> Option<Derived> {
        let text = self.string(t, "expr", true)?;
        let text_offset = string_content_offset(self.source, text.span(), text.get_ref());
        let expr = match expr::parse(text.get_ref()) {
            Ok(e) => e,
            Err(e) => {
                let span = match text_offset {
                    Some(at) => at + e.at.start..at + e.at.end,
                    None => text.span(),
                };
                self.error(span, format!("cannot read the expression: {}", e.message))
                    .hint = Some(
                    "write metric names (or input aliases), numbers, + - * / and parentheses"
                        .into(),
                );
                return None;
            }
        };
        let mut declared = Vec::new();
        if let Some(list) = Self::lookup(t, "inputs") {
            let Some(items) = list.get_ref().as_array() else {
                self.wrong_type(t, "inputs", list, "a list of tables");
                return None;
            };
            for (index, item) in items.iter().enumerate() {
                let Some(table) = item.get_ref().as_table() else {
                    self.error(item.span(), format!("input #{} must be a table", index + 1));
                    return None;
                };
                let it = Tbl {
                    table,
                    name: format!("{}.inputs[{index}]", t.name),
                    anchor: item.span(),
                };
                self.check_keys(&it, &["metric", "alias", "offset_window"]);
                let metric = self.string(&it, "metric", true)?;
                let alias = self.string(&it, "alias", false);
                let offset = self.interval(&it, "offset_window")?;
                let name = alias.as_ref().unwrap_or(&metric);
                if !is_identifier(name.get_ref()) {
                    self.error(
                        name.span(),
                        format!("`{}` cannot be a name in an expression", name.get_ref()),
                    );
                    return None;
                }
                declared.push(DerivedInput {
                    name: name.get_ref().clone(),
                    metric: metric.into_inner(),
                    offset,
                    linked: None,
                });
            }
        }
        let mut inputs: Vec<DerivedInput> = Vec::new();
        for (name, _) in expr.names() {
            if inputs.iter().any(|i| i.name == name) {
                continue;
            }
            inputs.push(match declared.iter().find(|d| d.name == name) {
                Some(d) => d.clone(),
                None => DerivedInput {
                    name: name.to_string(),
                    metric: name.to_string(),
                    offset: None,
                    linked: None,
                },
            });
        }
        if inputs.is_empty() {
            self.error(text.span(), "the expression names no metric")
                .hint = Some(
                "a derived metric computes from other metrics, e.g. `signups / active_users`"
                    .into(),
            );
            return None;
        }
        Some(Derived {
            expr,
            text_offset,
            span: text.span(),
            text: text.into_inner(),
            inputs,
        })
    }
}

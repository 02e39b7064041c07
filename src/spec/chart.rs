//! `[chart]`: what is drawn (kind, columns, number format, headline, comparison, goal) and
//! how numbers read (locale, currency).

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Reader, Tbl};

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

    pub(super) fn parse(name: &str) -> Option<Self> {
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

    pub(super) fn parse(name: &str) -> Option<Self> {
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

    pub(super) fn parse(name: &str) -> Option<Self> {
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
    /// The language of every word on the chart and in the message, and how numbers read
    /// (`ja`: 万 / 億; `en`: K / M / B). `None`: the reader's (the bot's setting, or the
    /// asker's Slack language for `/kpi`).
    pub locale: Option<Locale>,
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
    /// In Slack: Slack's own chart or table block where the data fits it, or always the
    /// PNG. Unset, a `stacked_bar` is the PNG (Slack's bars are grouped, without the
    /// stack's total) and every other kind native.
    pub slack_chart: SlackChart,
    /// The catalog metric whose total the headline is, for a report written in SQL
    /// (`metric = "signups"`, with `headline = "total"`): its posts offer Why? (where the
    /// windows it compares are separate), explaining that metric over the same windows.
    pub metric: Option<HeadlineMetric>,
}

/// `[chart] metric = …`: which catalog metric the headline is.
#[derive(Debug, Clone)]
pub struct HeadlineMetric {
    pub name: String,
    pub span: std::ops::Range<usize>,
    /// Its change splits into members' parts (set when linked).
    pub explainable: bool,
}

/// How a chart goes to Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlackChart {
    /// Slack's `data_visualization` / `data_table` block when the data fits, else the PNG
    /// (for a stacked bar only when asked for by name: Slack draws its bars grouped).
    #[default]
    Native,
    /// Always the uploaded PNG.
    Image,
}

impl SlackChart {
    pub const NAMES: [&'static str; 2] = ["native", "image"];

    pub(super) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "native" => Self::Native,
            "image" => Self::Image,
            _ => return None,
        })
    }
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
    /// The month before: a whole month for a whole month, else the same days a month
    /// earlier.
    PreviousMonth,
    /// No comparison.
    None,
}

impl Compare {
    /// The name a spec and `/kpi … compare <name>` write.
    pub fn name(self) -> &'static str {
        match self {
            Self::PreviousPeriod => "previous_period",
            Self::PreviousWeek => "previous_week",
            Self::PreviousMonth => "previous_month",
            Self::PreviousYear => "previous_year",
            Self::None => "none",
        }
    }

    pub const NAMES: [&'static str; 5] = [
        "previous_period",
        "previous_week",
        "previous_month",
        "previous_year",
        "none",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "previous_period" => Self::PreviousPeriod,
            "previous_week" => Self::PreviousWeek,
            "previous_month" => Self::PreviousMonth,
            "previous_year" => Self::PreviousYear,
            "none" => Self::None,
            _ => return None,
        })
    }
}

pub use crate::i18n::Locale;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Currency {
    Jpy,
    Usd,
}

impl Currency {
    pub const NAMES: [&'static str; 2] = ["JPY", "USD"];

    pub(super) fn parse(name: &str) -> Option<Self> {
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
    /// The line's label; `None`: the catalog's word for a goal, in the chart's language.
    pub label: Option<String>,
}

/// A column name from the spec and where it was written, for `check --dry-run` messages.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub span: Range<usize>,
}

const CHART_KEYS: [&str; 16] = [
    "kind",
    "x",
    "y",
    "series",
    "format",
    "headline",
    "compare",
    "locale",
    "currency",
    "goal",
    "goal_label",
    "label_last",
    "max_rows",
    "higher_is_better",
    "slack_chart",
    "metric",
];

/// Rows a `table` chart shows unless `max_rows` says otherwise.
pub const DEFAULT_TABLE_ROWS: usize = 20;

impl Reader<'_> {
    pub(super) fn column(&mut self, t: &Tbl, key: &str, required: bool) -> Option<Column> {
        self.string(t, key, required).map(|v| Column {
            span: v.span(),
            name: v.into_inner(),
        })
    }

    pub(super) fn chart(&mut self, t: &Tbl) -> Option<ChartSpec> {
        self.check_keys(t, &CHART_KEYS);
        let kind = self.choice(t, "kind", &ChartKind::NAMES, ChartKind::parse, None);
        let x = self.column(t, "x", true);
        let y = self.column(t, "y", true);
        let series_ok = Self::lookup(t, "series").is_none_or(|v| v.get_ref().is_str());
        let series = self.column(t, "series", false);
        let format = self.choice(
            t,
            "format",
            &NumberFormat::NAMES,
            NumberFormat::parse,
            Some(NumberFormat::Integer),
        );
        let headline = self.choice(
            t,
            "headline",
            &Headline::NAMES,
            Headline::parse,
            Some(Headline::Last),
        );
        let compare = self.choice(
            t,
            "compare",
            &Compare::NAMES,
            Compare::parse,
            Some(Compare::PreviousPeriod),
        );
        let locale = self.choice(
            t,
            "locale",
            &Locale::NAMES,
            |name| Locale::parse(name).map(Some),
            Some(None),
        );
        let currency = self.choice(
            t,
            "currency",
            &Currency::NAMES,
            Currency::parse,
            Some(Currency::Jpy),
        );
        let goal = match Self::lookup(t, "goal") {
            None => Some(None),
            Some(v) => match v.get_ref() {
                DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok().map(Some),
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok().map(Some),
                _ => None,
            }
            .or_else(|| {
                self.wrong_type(t, "goal", v, "a number");
                None
            }),
        };
        let goal_label = self.string(t, "goal_label", false).map(Spanned::into_inner);
        let label_last = self.flag(t, "label_last", false);
        let higher_is_better = self.flag(t, "higher_is_better", true);
        // Slack's bar chart cannot stack: a stacked bar keeps the picture unless its author
        // writes `slack_chart = "native"`, accepting grouped bars without the total.
        let slack_chart = self.choice(
            t,
            "slack_chart",
            &SlackChart::NAMES,
            SlackChart::parse,
            Some(if kind == Some(ChartKind::StackedBar) {
                SlackChart::Image
            } else {
                SlackChart::Native
            }),
        );
        let max_rows = self
            .whole_number(t, "max_rows", 1..=100, "a whole number from 1 to 100")
            .map(|n| n.map_or(DEFAULT_TABLE_ROWS, |n| n as usize));
        let metric = self.string(t, "metric", false).map(|name| HeadlineMetric {
            span: name.span(),
            name: name.into_inner(),
            explainable: false,
        });
        if !series_ok {
            return None;
        }
        let goal = goal?.map(|value| Goal {
            value,
            label: goal_label,
        });
        Some(ChartSpec {
            kind: kind?,
            x: x?,
            y: y?,
            series,
            format: format?,
            headline: headline?,
            compare: compare?,
            locale: locale?,
            currency: currency?,
            goal,
            label_last: label_last?,
            max_rows: max_rows?,
            higher_is_better: higher_is_better?,
            slack_chart: slack_chart?,
            metric,
        })
    }
}

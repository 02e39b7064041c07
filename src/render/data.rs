//! Shapes a query result into what a chart draws: an x axis, named series, gaps kept.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{Locale, Message};
use crate::spec::{ChartSpec, Headline};
use crate::warehouse::{Cell, Table};

/// The x axis: calendar days (missing days become gaps) or categories in query order.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    Dates(Vec<NaiveDate>),
    Categories(Vec<String>),
}

impl XAxis {
    pub fn len(&self) -> usize {
        match self {
            XAxis::Dates(d) => d.len(),
            XAxis::Categories(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The x value at `index` as the message states it: an ISO date or the category.
    pub fn full_label(&self, index: usize) -> String {
        match self {
            XAxis::Dates(d) => d.get(index).map(|d| d.to_string()),
            XAxis::Categories(c) => c.get(index).cloned(),
        }
        .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// One value per x; `None` is a gap (no row, or NULL), never drawn as zero.
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub x: XAxis,
    pub series: Vec<Series>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShapeError {
    #[error("{}", self.text(Locale::En))]
    MissingColumn {
        key: &'static str,
        column: String,
        available: String,
    },
    #[error("{}", self.text(Locale::En))]
    NotNumeric { column: String, found: String },
}

impl ShapeError {
    /// Why the query's result cannot be charted, in `locale`.
    pub fn text(&self, locale: Locale) -> String {
        self.message().text(locale)
    }

    /// [`ShapeError::text`] as Slack mrkdwn (the query's column names escaped).
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        Mrkdwn::formatted(self.message().mrkdwn(locale))
    }

    fn message(&self) -> Message {
        match self {
            ShapeError::MissingColumn {
                key,
                column,
                available,
            } => Message::new("shape-missing-column")
                .with("column", column)
                .with("key", key)
                .with("available", available),
            ShapeError::NotNumeric { column, found } => Message::new("shape-not-numbers")
                .with("column", column)
                .with("found", found),
        }
    }
}

/// NaN or ±∞: a float the warehouse returned that is not a number to draw.
fn is_not_a_number(cell: &Cell) -> bool {
    matches!(cell, Cell::Float(f) if !f.is_finite())
}

/// How many values of `column` are NaN or ±∞ (shown as gaps, and said so in the message).
pub fn not_a_number_count(table: &Table, column: &str) -> usize {
    table.column_index(column).map_or(0, |i| {
        table.rows.iter().filter(|r| is_not_a_number(&r[i])).count()
    })
}

impl ChartData {
    pub fn from_table(table: &Table, chart: &ChartSpec) -> Result<Self, ShapeError> {
        let find = |key: &'static str, name: &str| {
            table
                .column_index(name)
                .ok_or_else(|| ShapeError::MissingColumn {
                    key,
                    column: name.to_string(),
                    available: table.column_names().join(", "),
                })
        };
        let x_index = find("x", &chart.x.name)?;
        let y_index = find("y", &chart.y.name)?;
        let series_index = match &chart.series {
            Some(s) => Some(find("series", &s.name)?),
            None => None,
        };

        let mut dates = Vec::new();
        let mut categories: Vec<String> = Vec::new();
        let all_dates = table
            .rows
            .iter()
            .all(|r| matches!(r[x_index], Cell::Date(_) | Cell::Null));
        let mut values: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut series_names: Vec<String> = Vec::new();
        for row in &table.rows {
            let x_key = match &row[x_index] {
                Cell::Date(d) => {
                    dates.push(*d);
                    d.to_string()
                }
                Cell::Null => continue,
                other => other.to_string(),
            };
            if !all_dates && !categories.contains(&x_key) {
                categories.push(x_key.clone());
            }
            let series_name = match series_index {
                Some(i) if row[i].is_null() => "(none)".to_string(),
                Some(i) => row[i].to_string(),
                None => chart.y.name.clone(),
            };
            if !series_names.contains(&series_name) {
                series_names.push(series_name.clone());
            }
            let y = &row[y_index];
            if y.is_null() || is_not_a_number(y) {
                // NULL, NaN and ±∞ are gaps: never drawn as a value, never a failed report.
                continue;
            }
            let y = y.as_f64().ok_or_else(|| ShapeError::NotNumeric {
                column: chart.y.name.clone(),
                found: format!("`{y}`"),
            })?;
            *values.entry((x_key, series_name)).or_insert(0.0) += y;
        }

        let x = if all_dates {
            dates.sort();
            dates.dedup();
            XAxis::Dates(fill_daily_gaps(dates))
        } else {
            XAxis::Categories(categories)
        };
        let keys: Vec<String> = (0..x.len()).map(|i| x.full_label(i)).collect();
        let mut series: Vec<Series> = series_names
            .into_iter()
            .map(|name| Series {
                values: keys
                    .iter()
                    .map(|k| values.get(&(k.clone(), name.clone())).copied())
                    .collect(),
                name,
            })
            .collect();
        // Biggest series first: legend order matches visual weight.
        series.sort_by(|a, b| total(b).total_cmp(&total(a)));
        Ok(ChartData {
            x,
            series: fold_small_series(series, chart.locale.unwrap_or_default()),
        })
    }

    /// Sum across series at each x; `None` where no series has a value.
    pub fn totals(&self) -> Vec<Option<f64>> {
        sum_present(&self.series, self.x.len())
    }

    /// The single number summarising the window, and the x it belongs to (for `last`).
    pub fn headline(&self, headline: Headline) -> Option<(f64, Option<String>)> {
        let totals = self.totals();
        let present: Vec<(usize, f64)> = totals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        match headline {
            Headline::Last => last_present(&totals).map(|(i, v)| (v, Some(self.x.full_label(i)))),
            Headline::Total => {
                (!present.is_empty()).then(|| (present.iter().map(|(_, v)| v).sum(), None))
            }
            Headline::Average => (!present.is_empty()).then(|| {
                let sum: f64 = present.iter().map(|(_, v)| v).sum();
                (sum / present.len() as f64, None)
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.values.iter().all(Option::is_none))
    }
}

/// More series than a chart can tell apart.
pub const MAX_SERIES: usize = 8;
/// Keeps the 7 biggest series and adds the rest up as "other" (gaps stay gaps: "other" has
/// a value wherever any folded series has one).
fn fold_small_series(mut series: Vec<Series>, locale: Locale) -> Vec<Series> {
    if series.len() <= MAX_SERIES {
        return series;
    }
    let rest = series.split_off(MAX_SERIES - 1);
    series.push(Series {
        name: crate::tr!(locale, "chart-other-series", count = rest.len()),
        values: sum_present(&rest, rest[0].values.len()),
    });
    series
}

/// At each of `len` positions, the sum of the series that have a value there; `None`
/// where none has (a gap stays a gap).
fn sum_present(series: &[Series], len: usize) -> Vec<Option<f64>> {
    (0..len)
        .map(|i| {
            let mut present = series.iter().filter_map(|s| s.values[i]).peekable();
            present.peek().is_some().then(|| present.sum())
        })
        .collect()
}

/// The last position that has a value, and the value.
pub fn last_present(values: &[Option<f64>]) -> Option<(usize, f64)> {
    values
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, v)| v.map(|v| (i, v)))
}

fn total(series: &Series) -> f64 {
    series.values.iter().flatten().sum()
}

/// Daily data with missing days gets those days back, as gaps.
fn fill_daily_gaps(dates: Vec<NaiveDate>) -> Vec<NaiveDate> {
    let daily = dates.windows(2).any(|w| (w[1] - w[0]).num_days() == 1);
    match (daily, dates.first(), dates.last()) {
        (true, Some(first), Some(last)) => first.iter_days().take_while(|d| d <= last).collect(),
        _ => dates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, values: &[Option<f64>]) -> Series {
        Series {
            name: name.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn more_than_eight_series_fold_into_other() {
        let many: Vec<Series> = (0..12)
            .map(|i| {
                series(
                    &format!("s{i}"),
                    &[
                        Some(100.0 - i as f64),
                        if i == 11 { None } else { Some(1.0) },
                    ],
                )
            })
            .collect();
        let folded = fold_small_series(many, Locale::En);
        assert_eq!(folded.len(), 8);
        assert_eq!(folded[7].name, "other (5)");
        assert_eq!(
            folded[7].values,
            vec![Some(93.0 + 92.0 + 91.0 + 90.0 + 89.0), Some(4.0)]
        );
        let total_before: f64 = (0..12).map(|i| 100.0 - i as f64).sum();
        let total_after: f64 = folded.iter().map(|s| s.values[0].unwrap()).sum();
        assert_eq!(
            total_before, total_after,
            "folding never changes the numbers"
        );
    }

    #[test]
    fn missing_days_become_gaps() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let filled = fill_daily_gaps(vec![d("2026-01-01"), d("2026-01-02"), d("2026-01-04")]);
        assert_eq!(filled.len(), 4);
        assert_eq!(filled[2], d("2026-01-03"));
    }
}

//! Slack's own chart and table blocks (`data_visualization`, `data_table`) for a run whose
//! data fits their limits; a run that does not fit keeps the PNG. Nothing here bends the
//! data to fit: a gap, a seventh series or a 21st day means the picture.

use serde_json::{Number, Value, json};

use super::data::{ChartData, XAxis};
use super::format::{NumberStyle, cell_text, truncate_chars};
use crate::i18n::{self, Locale};
use crate::spec::ChartKind;
use crate::warehouse::{Cell, Table};

/// Series a `data_visualization` chart may hold.
pub const NATIVE_MAX_SERIES: usize = 6;
/// Categories (x values) a `data_visualization` chart may hold.
pub const NATIVE_MAX_CATEGORIES: usize = 20;
/// Characters in a category label or series name.
pub const NATIVE_LABEL_MAX_CHARS: usize = 20;
/// Characters in a `data_visualization` block's title.
pub const NATIVE_TITLE_MAX_CHARS: usize = 50;
/// `data_visualization` blocks one message may hold.
pub const NATIVE_CHARTS_PER_MESSAGE: usize = 2;
/// Columns a `data_table` block may hold.
pub const DATA_TABLE_MAX_COLUMNS: usize = 20;
/// Rows a `data_table` block may hold, the header row included.
pub const DATA_TABLE_MAX_ROWS: usize = 101;
/// Characters in all of a `data_table` block's cells together.
pub const DATA_TABLE_MAX_CHARS: usize = 10_000;
/// Rows a `data_table` shows per page.
pub const DATA_TABLE_PAGE_SIZE: u32 = 10;

/// Labels shortened to `max` characters, or `None` when shortening would make two equal
/// or one is blank (Slack refuses an empty label, and a refused block turns its own charts
/// off for every later post).
fn fitted_labels(labels: impl Iterator<Item = String>) -> Option<Vec<String>> {
    let fitted: Vec<String> = labels
        .map(|l| truncate_chars(&l, NATIVE_LABEL_MAX_CHARS))
        .collect();
    let mut seen = std::collections::HashSet::new();
    fitted
        .iter()
        .all(|l| !l.trim().is_empty() && seen.insert(l.as_str()))
        .then_some(fitted)
}

/// A value as JSON: whole numbers without a fraction (`96722`, not `96722.0`).
pub(crate) fn number(value: f64) -> Option<Number> {
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_LIMIT {
        return Some(Number::from(value as i64));
    }
    Number::from_f64(value)
}

/// The x labels: `11/29` for days (the full date when the window spans years and two
/// would read alike), categories as they are, each fitted to Slack's label limit.
fn categories(x: &XAxis, locale: Locale) -> Option<Vec<String>> {
    match x {
        XAxis::Dates(days) => fitted_labels(days.iter().map(|d| i18n::axis_day(locale, *d, false)))
            .or_else(|| fitted_labels(days.iter().map(|d| i18n::date(locale, *d)))),
        XAxis::Categories(names) => fitted_labels(names.iter().cloned()),
    }
}

/// A `data_visualization` block for a line, area or bar chart that fits Slack's limits;
/// `None` otherwise (the PNG is posted instead).
pub fn chart_block(
    kind: ChartKind,
    data: &ChartData,
    title: &str,
    locale: Locale,
) -> Option<Value> {
    let chart_type = match kind {
        ChartKind::Line => "line",
        ChartKind::Area => "area",
        ChartKind::Bar | ChartKind::StackedBar => "bar",
        ChartKind::Number | ChartKind::Table => return None,
    };
    let points = data.x.len();
    if data.series.is_empty()
        || data.series.len() > NATIVE_MAX_SERIES
        || points == 0
        || points > NATIVE_MAX_CATEGORIES
    {
        return None;
    }
    let labels = categories(&data.x, locale)?;
    let names = fitted_labels(data.series.iter().map(|s| s.name.clone()))?;
    let mut series = Vec::with_capacity(data.series.len());
    for (name, s) in names.iter().zip(&data.series) {
        // A gap stays a gap: Slack's charts need a value at every category.
        let values: Option<Vec<Number>> = s.values.iter().map(|v| v.and_then(number)).collect();
        let data: Vec<Value> = labels
            .iter()
            .zip(values?)
            .map(|(label, value)| json!({"label": label, "value": value}))
            .collect();
        series.push(json!({"name": name, "data": data}));
    }
    Some(json!({
        "type": "data_visualization",
        "title": truncate_chars(title, NATIVE_TITLE_MAX_CHARS),
        "chart": {
            "type": chart_type,
            "series": series,
            "axis_config": {"categories": labels},
        },
    }))
}

/// A `data_table` block for a `table` report that fits Slack's limits and shows every row
/// the picture would (`max_rows`): a header row, then each row, numbers sortable
/// (`raw_number`) and written as the report writes them.
pub fn table_block(
    table: &Table,
    title: &str,
    y_column: &str,
    style: NumberStyle,
    max_rows: usize,
) -> Option<Value> {
    let columns = table.columns.len();
    if columns == 0
        || columns > DATA_TABLE_MAX_COLUMNS
        || table.rows.len() + 1 > DATA_TABLE_MAX_ROWS
        || table.rows.len() > max_rows
    {
        return None;
    }
    let mut chars = 0;
    let mut text_of = |text: String| {
        // Slack refuses an empty cell; an empty value reads as a dash, like NULL.
        let text = if text.is_empty() {
            "–".to_string()
        } else {
            text
        };
        chars += text.chars().count();
        text
    };
    let mut rows = vec![
        table
            .columns
            .iter()
            .map(|c| json!({"type": "raw_text", "text": text_of(c.name.clone())}))
            .collect::<Vec<_>>(),
    ];
    for row in &table.rows {
        let mut cells = Vec::with_capacity(columns);
        for (cell, column) in row.iter().zip(&table.columns) {
            let text = text_of(cell_text(cell, column.name == y_column, style));
            cells.push(match (cell, cell.as_f64().and_then(number)) {
                (Cell::Integer(_) | Cell::Float(_) | Cell::Decimal { .. }, Some(value)) => {
                    json!({"type": "raw_number", "value": value, "text": text})
                }
                _ => json!({"type": "raw_text", "text": text}),
            });
        }
        rows.push(cells);
    }
    if chars > DATA_TABLE_MAX_CHARS {
        return None;
    }
    Some(json!({
        "type": "data_table",
        "caption": title,
        "rows": rows,
        "page_size": DATA_TABLE_PAGE_SIZE,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::data::Series;

    fn days(n: usize) -> XAxis {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        XAxis::Dates(start.iter_days().take(n).collect())
    }

    fn data(x: XAxis, series: usize) -> ChartData {
        let len = x.len();
        ChartData {
            x,
            series: (0..series)
                .map(|i| Series {
                    name: format!("s{i}"),
                    values: (0..len).map(|j| Some((i * 10 + j) as f64)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_chart_within_the_limits_is_native_and_one_past_them_is_not() {
        let fits = chart_block(ChartKind::Line, &data(days(20), 6), "t", Locale::En).unwrap();
        assert_eq!(fits["chart"]["type"], "line");
        assert_eq!(fits["chart"]["series"].as_array().unwrap().len(), 6);
        assert_eq!(fits["chart"]["axis_config"]["categories"][0], "11/01");
        assert!(chart_block(ChartKind::Line, &data(days(21), 1), "t", Locale::En).is_none());
        assert!(chart_block(ChartKind::Line, &data(days(7), 7), "t", Locale::En).is_none());
        assert!(chart_block(ChartKind::Number, &data(days(7), 1), "t", Locale::En).is_none());
        assert_eq!(
            chart_block(ChartKind::StackedBar, &data(days(7), 2), "t", Locale::En).unwrap()["chart"]
                ["type"],
            "bar"
        );
    }

    #[test]
    fn a_gap_keeps_the_picture() {
        let mut d = data(days(7), 1);
        d.series[0].values[3] = None;
        assert!(chart_block(ChartKind::Line, &d, "t", Locale::En).is_none());
    }

    #[test]
    fn long_labels_are_shortened_unless_two_would_read_alike() {
        // Slack's limit is 20 characters (not bytes): labels of 19, 20 and 21 characters,
        // in kanji so a byte count would be far over.
        let under = "都".repeat(19);
        let at = "道".repeat(20);
        let over = "府".repeat(21);
        let names = XAxis::Categories(vec![under.clone(), at.clone(), over]);
        let mut long_series = data(names, 2);
        long_series.series[0].name = "s".repeat(20);
        long_series.series[1].name = "t".repeat(21);
        let block = chart_block(ChartKind::Bar, &long_series, "t", Locale::Ja).unwrap();
        let expected = [under, at, format!("{}…", "府".repeat(19))];
        assert_eq!(block["chart"]["axis_config"]["categories"], json!(expected));
        let labels: Vec<Value> = block["chart"]["series"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|point| point["label"].clone())
            .collect();
        assert_eq!(json!(labels), json!(expected));
        assert_eq!(block["chart"]["series"][0]["name"], "s".repeat(20));
        assert_eq!(
            block["chart"]["series"][1]["name"],
            format!("{}…", "t".repeat(19))
        );
        // Two labels alike in their first 19 characters would both read as the same
        // shortened label: the picture instead.
        let long = |suffix: &str| format!("Prefectural High School {suffix}");
        let alike = XAxis::Categories(vec![long("North"), long("South")]);
        assert!(chart_block(ChartKind::Bar, &data(alike, 1), "t", Locale::En).is_none());
        // Alike only past the 20th character but each within the limit: kept as they are.
        let differ_at_twenty = XAxis::Categories(vec![
            format!("{}A", "x".repeat(19)),
            format!("{}B", "x".repeat(19)),
        ]);
        assert!(chart_block(ChartKind::Bar, &data(differ_at_twenty, 1), "t", Locale::En).is_some());
    }
}

//! `Table`: a query result with typed columns and NULLs kept, as every warehouse returns it.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Date,
    Timestamp,
    Integer,
    Float,
    Decimal,
    Text,
    Bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    /// An exact decimal: `value / 10^scale`.
    Decimal {
        value: i128,
        scale: u8,
    },
    Date(NaiveDate),
    /// Wall-clock time as the warehouse returned it (UTC for TIMESTAMPTZ).
    Timestamp(NaiveDateTime),
    Text(String),
}

impl Cell {
    /// The cell as a number for charting; `None` for NULL and non-numeric cells.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Integer(i) => Some(*i as f64),
            Cell::Float(f) if f.is_finite() => Some(*f),
            Cell::Decimal { value, scale } => Some(*value as f64 / 10f64.powi(i32::from(*scale))),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The cell as a calendar date: a DATE, a TIMESTAMP's day, or ISO text.
    pub fn as_date(&self) -> Option<NaiveDate> {
        match self {
            Cell::Date(d) => Some(*d),
            Cell::Timestamp(t) => Some(t.date()),
            Cell::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Cells print as CSV fields: NULL is empty, dates are ISO, decimals exact.
impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Integer(i) => write!(f, "{i}"),
            // Like the warehouse prints it: `2.0`, not `2`.
            Cell::Float(x) => write!(f, "{x:?}"),
            Cell::Decimal { value, scale } => write!(f, "{}", decimal_string(*value, *scale)),
            Cell::Date(d) => write!(f, "{d}"),
            Cell::Timestamp(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.f")),
            Cell::Text(s) => write!(f, "{s}"),
        }
    }
}

fn decimal_string(value: i128, scale: u8) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = padded.split_at(padded.len() - scale);
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{whole}.{frac}")
}

/// Reads a decimal written out in full (`-12.340`, `7`) as `(digits, scale)`: the value is
/// `digits / 10^scale`. `None` for anything else, or more than 38 digits.
pub fn parse_decimal(text: &str) -> Option<(i128, u8)> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        || whole.len() + fraction.len() > 38
    {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = u8::try_from(fraction.len()).ok()?;
    Some((if negative { -digits } else { digits }, scale))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: ColumnType,
}

/// A query result: named, typed columns and rows of cells in warehouse order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<Cell>>,
    /// Bytes the warehouse scanned for this table, where it says (BigQuery); `None` on
    /// DuckDB, whose cost is its rows.
    pub bytes_processed: Option<u64>,
}

impl Table {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// RFC 4180 CSV: a header row, then every row as the warehouse returned it.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(&c.name)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(|c| csv_field(&c.to_string())).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_exactly() {
        assert_eq!(decimal_string(12345, 2), "123.45");
        assert_eq!(decimal_string(-5, 3), "-0.005");
        assert_eq!(decimal_string(7, 0), "7");
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("123.45"), Some((12345, 2)));
        assert_eq!(parse_decimal("-0.005"), Some((-5, 3)));
        assert_eq!(parse_decimal("7"), Some((7, 0)));
        assert_eq!(
            parse_decimal("99999999999999999999999999999.999999999"),
            Some((99_999_999_999_999_999_999_999_999_999_999_999_999, 9))
        );
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal("."), None);
        assert_eq!(parse_decimal(""), None);
        let (digits, scale) = parse_decimal("-12.340").unwrap();
        assert_eq!(decimal_string(digits, scale), "-12.340");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let table = Table {
            bytes_processed: None,
            columns: vec![
                ColumnInfo {
                    name: "name".into(),
                    ty: ColumnType::Text,
                },
                ColumnInfo {
                    name: "n".into(),
                    ty: ColumnType::Integer,
                },
            ],
            rows: vec![
                vec![Cell::Text("東京都, \"本店\"".into()), Cell::Integer(3)],
                vec![Cell::Null, Cell::Null],
            ],
        };
        assert_eq!(
            table.to_csv(),
            "name,n\r\n\"東京都, \"\"本店\"\"\",3\r\n,\r\n"
        );
    }
}

//! Targets kept in a mart table (`[[target]] table = "mart.kpi_targets"`): the one query
//! that reads a period's target, over fixed column names with every value bound, and what
//! its answer means.
//!
//! The table has one row per metric, period and (optionally) dimension value:
//! `metric` (the catalog name), `per` (`month` or `week`), `period_start` (a DATE: the
//! month's first day or the week's Monday), `target` (a number above 0), and `dimension`
//! and `member` (the dimension's column and value, both NULL for the metric's total).

use chrono::NaiveDate;

use super::target::TargetSpec;
use crate::warehouse::{Dialect, ParamValue, Params, Table};

/// The columns a targets table must have.
pub const TARGET_TABLE_COLUMNS: [&str; 6] = [
    "metric",
    "per",
    "period_start",
    "target",
    "dimension",
    "member",
];

/// Column names of the query's answer.
const ROWS_COLUMN: &str = "kpibot_rows";
const VALID_COLUMN: &str = "kpibot_valid";
const LOW_COLUMN: &str = "kpibot_low";
const HIGH_COLUMN: &str = "kpibot_high";

/// What the table says about one period's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TableTarget {
    /// One target (or the same target written more than once).
    Found(f64),
    /// No row for the period.
    Missing,
    /// Rows whose target is NULL, 0 or negative: a target is a number above 0.
    Invalid { rows: i64 },
    /// Rows that disagree.
    Conflicting { rows: i64, low: f64, high: f64 },
}

impl TableTarget {
    /// The target, or why the period has none, for the person who keeps the table.
    pub fn goal(self, table: &str, period_start: NaiveDate) -> Result<f64, String> {
        match self {
            TableTarget::Found(goal) => Ok(goal),
            TableTarget::Missing => Err(format!(
                "`{table}` has no row for the period starting {period_start}"
            )),
            TableTarget::Invalid { rows } => Err(format!(
                "`{table}` has {rows} row(s) for the period starting {period_start} whose target is empty, 0 or negative"
            )),
            TableTarget::Conflicting { rows, low, high } => Err(format!(
                "`{table}` has {rows} rows for the period starting {period_start} that disagree ({low} to {high})"
            )),
        }
    }
}

/// The query reading `target`'s row for the period starting `period_start` from `table`,
/// with its parameters. It returns one row: how many rows matched, their lowest and
/// highest target.
pub fn query(
    dialect: Dialect,
    target: &TargetSpec,
    table: &str,
    period_start: NaiveDate,
) -> (String, Params) {
    let mut params = Params::from([
        (
            "target_metric".to_string(),
            ParamValue::Text(target.metric.clone()),
        ),
        (
            "target_per".to_string(),
            ParamValue::Text(target.per.name().to_string()),
        ),
        (
            "target_period_start".to_string(),
            ParamValue::Date(period_start),
        ),
    ]);
    let text = match dialect {
        Dialect::DuckDb => "VARCHAR",
        Dialect::BigQuery => "STRING",
    };
    let member = match &target.filter {
        Some(filter) => {
            params.insert(
                "target_dimension".to_string(),
                ParamValue::Text(filter.dimension.clone()),
            );
            params.insert(
                "target_member".to_string(),
                ParamValue::Text(filter.values.first().cloned().unwrap_or_default()),
            );
            format!("dimension = @target_dimension AND CAST(member AS {text}) = @target_member")
        }
        None => "dimension IS NULL AND member IS NULL".to_string(),
    };
    let number = match dialect {
        Dialect::DuckDb => "DOUBLE",
        Dialect::BigQuery => "FLOAT64",
    };
    // Compared as a DATE and as text whatever the table's own types (a TIMESTAMP
    // `period_start`, an INT64 `member`): every warehouse then matches the bound values.
    let sql = format!(
        "SELECT COUNT(*) AS {ROWS_COLUMN}, \
         COUNT(CASE WHEN CAST(target AS {number}) > 0 THEN 1 END) AS {VALID_COLUMN}, \
         MIN(CAST(target AS {number})) AS {LOW_COLUMN}, \
         MAX(CAST(target AS {number})) AS {HIGH_COLUMN} FROM {} \
         WHERE metric = @target_metric AND per = @target_per \
         AND CAST(period_start AS DATE) = @target_period_start AND {member}",
        super::metric_sql::quote(dialect, table)
    );
    (sql, params)
}

/// What [`query`]'s answer says.
pub fn answer(table: &Table) -> TableTarget {
    let cell = |name: &str| {
        table
            .column_index(name)
            .and_then(|i| table.rows.first()?.get(i))
            .and_then(|c| c.as_f64())
    };
    let rows = cell(ROWS_COLUMN).unwrap_or(0.0) as i64;
    let valid = cell(VALID_COLUMN).unwrap_or(0.0) as i64;
    match (rows, cell(LOW_COLUMN), cell(HIGH_COLUMN)) {
        (0, ..) => TableTarget::Missing,
        (rows, ..) if valid < rows => TableTarget::Invalid { rows: rows - valid },
        (_, Some(low), Some(high)) if low == high => TableTarget::Found(low),
        (rows, low, high) => TableTarget::Conflicting {
            rows,
            low: low.unwrap_or(f64::NAN),
            high: high.unwrap_or(f64::NAN),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::{Cell, ColumnInfo, ColumnType};

    fn answer_of(rows: i64, valid: i64, low: Option<f64>, high: Option<f64>) -> TableTarget {
        let column = |name: &str, ty| ColumnInfo {
            name: name.into(),
            ty,
        };
        let cell = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
        answer(&Table {
            columns: vec![
                column(ROWS_COLUMN, ColumnType::Integer),
                column(VALID_COLUMN, ColumnType::Integer),
                column(LOW_COLUMN, ColumnType::Float),
                column(HIGH_COLUMN, ColumnType::Float),
            ],
            rows: vec![vec![
                Cell::Integer(rows),
                Cell::Integer(valid),
                cell(low),
                cell(high),
            ]],
            bytes_processed: None,
        })
    }

    #[test]
    fn one_target_a_missing_one_and_rows_that_disagree_or_are_no_target() {
        let found = TableTarget::Found(500.0);
        assert_eq!(answer_of(1, 1, Some(500.0), Some(500.0)), found);
        assert_eq!(answer_of(2, 2, Some(500.0), Some(500.0)), found);
        assert_eq!(answer_of(0, 0, None, None), TableTarget::Missing);
        assert!(matches!(
            answer_of(2, 2, Some(400.0), Some(500.0)),
            TableTarget::Conflicting { rows: 2, .. }
        ));
        // A NULL beside a good row, a 0, a negative one: not a target.
        assert_eq!(
            answer_of(2, 1, Some(500.0), Some(500.0)),
            TableTarget::Invalid { rows: 1 }
        );
        assert_eq!(
            answer_of(1, 0, Some(0.0), Some(0.0)),
            TableTarget::Invalid { rows: 1 }
        );
        assert_eq!(
            answer_of(1, 0, None, None),
            TableTarget::Invalid { rows: 1 }
        );
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert!(
            answer_of(0, 0, None, None)
                .goal("mart.kpi_targets", day)
                .unwrap_err()
                .contains("`mart.kpi_targets` has no row for the period starting 2026-12-01")
        );
    }
}

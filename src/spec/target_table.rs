//! Targets kept in a mart table (`[[target]] table = "mart.kpi_targets"`): the one query
//! that reads a period's target, over fixed column names with every value bound, and what
//! its answer means.
//!
//! The table has one row per metric, period and (optionally) dimension value:
//! `metric` (the catalog name), `per` (`month` or `week`), `period_start` (a DATE: the
//! month's first day or the week's Monday), `target` (a number above 0), and `dimension`
//! and `member` (the dimension's column and value, both NULL for the metric's total).

use chrono::NaiveDate;

use super::target::{TargetPeriod, TargetSpec};
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
const LOW_COLUMN: &str = "kpibot_low";
const HIGH_COLUMN: &str = "kpibot_high";

/// What the table says about one period's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TableTarget {
    /// One target (or the same target written more than once).
    Found(f64),
    /// No row for the period: it is not paced, as a period missing from `values`.
    Missing,
    /// Rows that disagree, or a target that is not a number above 0: not paced, and said.
    Conflicting { rows: i64, low: f64, high: f64 },
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
            ParamValue::Text(per_value(target.per).to_string()),
        ),
        (
            "target_period_start".to_string(),
            ParamValue::Date(period_start),
        ),
    ]);
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
            "dimension = @target_dimension AND member = @target_member"
        }
        None => "dimension IS NULL AND member IS NULL",
    };
    let number = match dialect {
        Dialect::DuckDb => "DOUBLE",
        Dialect::BigQuery => "FLOAT64",
    };
    let sql = format!(
        "SELECT COUNT(*) AS {ROWS_COLUMN}, MIN(CAST(target AS {number})) AS {LOW_COLUMN}, \
         MAX(CAST(target AS {number})) AS {HIGH_COLUMN} FROM {} \
         WHERE metric = @target_metric AND per = @target_per \
         AND period_start = @target_period_start AND {member}",
        super::metric_sql::quote(dialect, table)
    );
    (sql, params)
}

/// The value `per` is written as in the table's `per` column.
pub fn per_value(per: TargetPeriod) -> &'static str {
    match per {
        TargetPeriod::Month => "month",
        TargetPeriod::Week => "week",
    }
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
    match (rows, cell(LOW_COLUMN), cell(HIGH_COLUMN)) {
        (0, ..) => TableTarget::Missing,
        (_, Some(low), Some(high)) if low == high && low.is_finite() && low > 0.0 => {
            TableTarget::Found(low)
        }
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

    fn answer_of(rows: i64, low: Option<f64>, high: Option<f64>) -> TableTarget {
        let column = |name: &str, ty| ColumnInfo {
            name: name.into(),
            ty,
        };
        let cell = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
        answer(&Table {
            columns: vec![
                column(ROWS_COLUMN, ColumnType::Integer),
                column(LOW_COLUMN, ColumnType::Float),
                column(HIGH_COLUMN, ColumnType::Float),
            ],
            rows: vec![vec![Cell::Integer(rows), cell(low), cell(high)]],
            bytes_processed: None,
        })
    }

    #[test]
    fn one_target_a_missing_one_and_rows_that_disagree() {
        assert_eq!(
            answer_of(1, Some(500.0), Some(500.0)),
            TableTarget::Found(500.0)
        );
        assert_eq!(
            answer_of(2, Some(500.0), Some(500.0)),
            TableTarget::Found(500.0)
        );
        assert_eq!(answer_of(0, None, None), TableTarget::Missing);
        assert!(matches!(
            answer_of(2, Some(400.0), Some(500.0)),
            TableTarget::Conflicting { rows: 2, .. }
        ));
        assert!(matches!(
            answer_of(1, Some(0.0), Some(0.0)),
            TableTarget::Conflicting { .. }
        ));
        assert!(matches!(
            answer_of(1, None, None),
            TableTarget::Conflicting { .. }
        ));
    }
}

//! SQL for a metric question (a `/kpi` answer or an alert's series), generated from the
//! metric's definition. Identifiers come only from the catalog (checked as plain names
//! when the spec was read); every value a user typed becomes a bound parameter. The time
//! grain is spelled per warehouse.

use crate::spec::{Measure, MetricSpec};
use crate::warehouse::{ParamValue, Params};

pub use crate::warehouse::Dialect;

/// Column names the generated query returns (what the chart reads).
pub const PERIOD_COLUMN: &str = "period";
pub const VALUE_COLUMN: &str = "value";
pub const DIMENSION_COLUMN: &str = "dimension";

/// How finely a metric is bucketed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    Week,
    Month,
}

impl Grain {
    /// The grain a name written by [`Grain::name`] stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "daily" => Grain::Day,
            "weekly" => Grain::Week,
            "monthly" => Grain::Month,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Grain::Day => "daily",
            Grain::Week => "weekly",
            Grain::Month => "monthly",
        }
    }
}

/// A filter: `dimension = one of values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: String,
    pub values: Vec<String>,
}

/// A quoted identifier; `mart.table` keeps its dot.
fn quote(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::DuckDb => name
            .split('.')
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join("."),
        Dialect::BigQuery => format!("`{name}`"),
    }
}

fn bucket(dialect: Dialect, grain: Grain, column: &str) -> String {
    match (dialect, grain) {
        (_, Grain::Day) => column.to_string(),
        (Dialect::DuckDb, Grain::Week) => format!("CAST(DATE_TRUNC('week', {column}) AS DATE)"),
        (Dialect::DuckDb, Grain::Month) => {
            format!("CAST(DATE_TRUNC('month', {column}) AS DATE)")
        }
        (Dialect::BigQuery, Grain::Week) => format!("DATE_TRUNC({column}, WEEK(MONDAY))"),
        (Dialect::BigQuery, Grain::Month) => format!("DATE_TRUNC({column}, MONTH)"),
    }
}

fn aggregate(dialect: Dialect, measure: &Measure) -> String {
    let q = |c: &str| quote(dialect, c);
    match measure {
        Measure::Sum(c) => format!("SUM({})", q(c)),
        Measure::Count(None) => "COUNT(*)".into(),
        Measure::Count(Some(c)) => format!("COUNT({})", q(c)),
        Measure::CountDistinct(c) => format!("COUNT(DISTINCT {})", q(c)),
        Measure::Avg(c) => format!("AVG({})", q(c)),
        Measure::Min(c) => format!("MIN({})", q(c)),
        Measure::Max(c) => format!("MAX({})", q(c)),
        Measure::Ratio(a, b) => format!(
            "CAST({} AS DOUBLE) / NULLIF({}, 0)",
            aggregate(dialect, a),
            aggregate(dialect, b)
        )
        .replace(
            "AS DOUBLE",
            if dialect == Dialect::BigQuery {
                "AS FLOAT64"
            } else {
                "AS DOUBLE"
            },
        ),
    }
}

/// The query for `metric` over `@start_date..@end_date`, bucketed by `grain`, optionally
/// split by one dimension and filtered. `by` and every filter's dimension must already be
/// checked against the metric's dimensions. Returns the SQL and its filter parameters.
pub fn metric_sql(
    dialect: Dialect,
    metric: &MetricSpec,
    grain: Grain,
    by: Option<&str>,
    filters: &[Filter],
) -> (String, Params) {
    let time = quote(dialect, &metric.time_column);
    let period = bucket(dialect, grain, &time);
    let mut select = vec![format!("{period} AS {PERIOD_COLUMN}")];
    let mut group = vec!["1".to_string()];
    if let Some(dimension) = by {
        select.push(format!(
            "CAST({} AS {}) AS {DIMENSION_COLUMN}",
            quote(dialect, dimension),
            if dialect == Dialect::BigQuery {
                "STRING"
            } else {
                "VARCHAR"
            }
        ));
        group.push("2".into());
    }
    select.push(format!(
        "{} AS {VALUE_COLUMN}",
        aggregate(dialect, &metric.measure)
    ));
    let mut conditions = vec![format!("{time} BETWEEN @start_date AND @end_date")];
    let mut params = Params::new();
    for (i, filter) in filters.iter().enumerate() {
        let names: Vec<String> = filter
            .values
            .iter()
            .enumerate()
            .map(|(j, value)| {
                let name = format!("filter_{i}_{j}");
                params.insert(name.clone(), ParamValue::Text(value.clone()));
                format!("@{name}")
            })
            .collect();
        conditions.push(format!(
            "CAST({} AS {}) IN ({})",
            quote(dialect, &filter.dimension),
            if dialect == Dialect::BigQuery {
                "STRING"
            } else {
                "VARCHAR"
            },
            names.join(", ")
        ));
    }
    let sql = format!(
        "SELECT {}\nFROM {}\nWHERE {}\nGROUP BY {}\nORDER BY {}\n",
        select.join(", "),
        quote(dialect, &metric.table),
        conditions.join("\n  AND "),
        group.join(", "),
        group.join(", ")
    );
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Access, NumberFormat};

    fn metric(measure: Measure) -> MetricSpec {
        MetricSpec {
            name: "active_users".into(),
            label: "Active users".into(),
            description: String::new(),
            table: "mart.daily_active_users".into(),
            time_column: "activity_date".into(),
            measure,
            dimensions: [("role".to_string(), "Role".to_string())].into(),
            aliases: Vec::new(),
            dimension_aliases: Default::default(),
            format: NumberFormat::Integer,
            owner: "#data-team".into(),
            refreshed: String::new(),
            tags: vec![],
            access: Access::default(),
            path: "reports/metrics.toml".into(),
            table_span: 0..0,
        }
    }

    #[test]
    fn grains_are_spelled_per_warehouse_and_values_are_parameters() {
        let m = metric(Measure::Sum("active_users".into()));
        let filters = [Filter {
            dimension: "role".into(),
            values: vec!["' OR 1=1 --".into(), "teacher".into()],
        }];
        let (duck, params) = metric_sql(Dialect::DuckDb, &m, Grain::Week, Some("role"), &filters);
        assert!(
            duck.contains("DATE_TRUNC('week', \"activity_date\")"),
            "{duck}"
        );
        assert!(
            duck.contains("FROM \"mart\".\"daily_active_users\""),
            "{duck}"
        );
        assert!(duck.contains("IN (@filter_0_0, @filter_0_1)"), "{duck}");
        assert!(!duck.contains("OR 1=1"), "a value reached the SQL: {duck}");
        assert_eq!(
            params.get("filter_0_0"),
            Some(&ParamValue::Text("' OR 1=1 --".into()))
        );
        let (bq, _) = metric_sql(Dialect::BigQuery, &m, Grain::Month, None, &[]);
        assert!(bq.contains("DATE_TRUNC(`activity_date`, MONTH)"), "{bq}");
        assert!(bq.contains("FROM `mart.daily_active_users`"), "{bq}");
        let (weekly, _) = metric_sql(Dialect::BigQuery, &m, Grain::Week, None, &[]);
        assert!(weekly.contains("WEEK(MONDAY)"));
    }

    #[test]
    fn ratios_divide_safely() {
        let m = metric(Measure::Ratio(
            Box::new(Measure::Sum("submissions".into())),
            Box::new(Measure::CountDistinct("user_id".into())),
        ));
        let (sql, _) = metric_sql(Dialect::DuckDb, &m, Grain::Day, None, &[]);
        assert!(
            sql.contains(
                "CAST(SUM(\"submissions\") AS DOUBLE) / NULLIF(COUNT(DISTINCT \"user_id\"), 0)"
            ),
            "{sql}"
        );
    }
}

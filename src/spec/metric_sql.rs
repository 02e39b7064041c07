//! SQL for a metric question (a `/kpi` answer or an alert's series), generated from the
//! metric's definition. Identifiers come only from the catalog (checked as plain names
//! when the spec was read); every value a user typed becomes a bound parameter. The time
//! grain is spelled per warehouse.

use crate::spec::{
    Accumulate, Derived, Interval, IntervalUnit, Measure, MetricKind, MetricSpec, PeriodAgg,
};
use crate::warehouse::{ParamValue, Params};

pub use crate::warehouse::Dialect;

/// Column names the generated query returns (what the chart reads).
pub const PERIOD_COLUMN: &str = "period";
pub const VALUE_COLUMN: &str = "value";
pub const DIMENSION_COLUMN: &str = "dimension";
/// The day a cumulative metric's value is for, inside its query.
const DAY_COLUMN: &str = "kpibot_day";

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

pub use crate::spec::metric::Filter;

/// A quoted identifier; `mart.table` keeps its dot.
pub(crate) fn quote(dialect: Dialect, name: &str) -> String {
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

/// The question's shape, shared by a metric and each input of a derived one.
struct Shape<'a> {
    dialect: Dialect,
    grain: Grain,
    by: Option<&'a str>,
    filters: &'a [Filter],
}

pub(super) fn text_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::BigQuery => "STRING",
        Dialect::DuckDb => "VARCHAR",
    }
}

fn float_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::BigQuery => "FLOAT64",
        Dialect::DuckDb => "DOUBLE",
    }
}

/// `date` moved by `interval` (`sign` 1 later, -1 earlier), still a DATE.
fn shift_date(dialect: Dialect, date: &str, interval: Interval, sign: i8) -> String {
    let n = interval.count;
    let unit = interval.unit.sql();
    match (dialect, sign >= 0) {
        (Dialect::BigQuery, true) => format!("DATE_ADD({date}, INTERVAL {n} {unit})"),
        (Dialect::BigQuery, false) => format!("DATE_SUB({date}, INTERVAL {n} {unit})"),
        (Dialect::DuckDb, true) => format!("CAST({date} + INTERVAL {n} {unit} AS DATE)"),
        (Dialect::DuckDb, false) => format!("CAST({date} - INTERVAL {n} {unit} AS DATE)"),
    }
}

/// `column` (shifted `shift` later) between `lower` and `upper`. A shift by days or
/// weeks moves the bounds instead, so the warehouse still prunes by the column itself.
fn time_range(
    dialect: Dialect,
    column: &str,
    shift: Option<Interval>,
    lower: &str,
    upper: &str,
) -> String {
    match shift {
        Some(s) if matches!(s.unit, IntervalUnit::Day | IntervalUnit::Week) => format!(
            "{column} BETWEEN {} AND {}",
            shift_date(dialect, lower, s, -1),
            shift_date(dialect, upper, s, -1)
        ),
        Some(s) => format!(
            "{} BETWEEN {lower} AND {upper}",
            shift_date(dialect, column, s, 1)
        ),
        None => format!("{column} BETWEEN {lower} AND {upper}"),
    }
}

/// The first day of `unit` containing `date` (weeks start on Monday).
fn start_of(dialect: Dialect, unit: IntervalUnit, date: &str) -> String {
    match unit {
        IntervalUnit::Day => date.to_string(),
        IntervalUnit::Week => bucket(dialect, Grain::Week, date),
        IntervalUnit::Month => bucket(dialect, Grain::Month, date),
        IntervalUnit::Quarter | IntervalUnit::Year => {
            let unit = unit.sql();
            match dialect {
                Dialect::DuckDb => format!(
                    "CAST(DATE_TRUNC('{}', {date}) AS DATE)",
                    unit.to_lowercase()
                ),
                Dialect::BigQuery => format!("DATE_TRUNC({date}, {unit})"),
            }
        }
    }
}

/// The `dimension = one of values` conditions, each value a parameter named after
/// `prefix`.
pub(super) fn filter_conditions(
    dialect: Dialect,
    filters: &[Filter],
    prefix: &str,
    params: &mut Params,
) -> Vec<String> {
    let mut conditions = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let names: Vec<String> = filter
            .values
            .iter()
            .enumerate()
            .map(|(j, value)| {
                let name = format!("{prefix}_{i}_{j}");
                params.insert(name.clone(), ParamValue::Text(value.clone()));
                format!("@{name}")
            })
            .collect();
        conditions.push(format!(
            "CAST({} AS {}) IN ({})",
            quote(dialect, &filter.dimension),
            text_type(dialect),
            names.join(", ")
        ));
    }
    conditions
}

/// `SELECT period[, dimension], value` for a metric over a table, its time column moved
/// `shift` later (a derived metric's offset input), without ORDER BY.
fn table_select(
    shape: &Shape,
    metric: &MetricSpec,
    shift: Option<Interval>,
    input: Option<usize>,
    params: &mut Params,
) -> String {
    let dialect = shape.dialect;
    let column = quote(dialect, &metric.time_column);
    let time = match shift {
        Some(interval) => shift_date(dialect, &column, interval, 1),
        None => column.clone(),
    };
    let dimension = shape.by.map(|d| {
        format!(
            "CAST({} AS {}) AS {DIMENSION_COLUMN}",
            quote(dialect, d),
            text_type(dialect)
        )
    });
    let group = if shape.by.is_some() { "1, 2" } else { "1" };
    let mut filters = filter_conditions(dialect, shape.filters, "filter", params);
    // The metric's own filters (a dbt metric's `filter`), named apart per input.
    let fixed = match input {
        Some(k) => format!("input_{k}_fixed"),
        None => "fixed".to_string(),
    };
    filters.extend(filter_conditions(
        dialect,
        &metric.fixed_filters,
        &fixed,
        params,
    ));
    let table = quote(dialect, &metric.table);
    let value = aggregate(dialect, &metric.measure);
    let spine = match dialect {
        Dialect::DuckDb => format!(
            "SELECT CAST(d AS DATE) AS {DAY_COLUMN} FROM generate_series(CAST(@start_date AS DATE), CAST(@end_date AS DATE), INTERVAL 1 DAY) AS spine_days(d)"
        ),
        Dialect::BigQuery => format!(
            "SELECT {DAY_COLUMN} FROM UNNEST(GENERATE_DATE_ARRAY(@start_date, @end_date)) AS {DAY_COLUMN}"
        ),
    };
    let cumulative = match &metric.kind {
        MetricKind::Cumulative(c) => *c,
        // Offset by months or years, each day looks back to its own day (MetricFlow's
        // spine join): Mar 31 reads Feb 28, and Feb 28 reads Jan 28 alone — moving the
        // rows instead would pile Jan 28–31 onto Feb 28. At monthly grain both agree.
        _ if shift.is_some_and(|s| !matches!(s.unit, IntervalUnit::Day | IntervalUnit::Week))
            && shape.grain != Grain::Month =>
        {
            let offset = shift.expect("checked above");
            let day = format!("spine.{DAY_COLUMN}");
            let mut conditions = vec![format!(
                "{column} BETWEEN {} AND {}",
                shift_date(dialect, "@start_date", offset, -1),
                shift_date(dialect, "@end_date", offset, -1)
            )];
            conditions.extend(filters);
            let select = select_list(
                format!("{} AS {PERIOD_COLUMN}", bucket(dialect, shape.grain, &day)),
                dimension,
                format!("{value} AS {VALUE_COLUMN}"),
            );
            return format!(
                "SELECT {select}\nFROM ({spine}) AS spine\nJOIN {table} ON {column} = {}\nWHERE {}\nGROUP BY {group}",
                shift_date(dialect, &day, offset, -1),
                conditions.join("\n  AND ")
            );
        }
        _ => {
            let mut conditions = vec![time_range(
                dialect,
                &column,
                shift,
                "@start_date",
                "@end_date",
            )];
            conditions.extend(filters);
            let select = select_list(
                format!("{} AS {PERIOD_COLUMN}", bucket(dialect, shape.grain, &time)),
                dimension,
                format!("{value} AS {VALUE_COLUMN}"),
            );
            return format!(
                "SELECT {select}\nFROM {table}\nWHERE {}\nGROUP BY {group}",
                conditions.join("\n  AND ")
            );
        }
    };
    // Every day of the window, each with the rows it accumulates, aggregated again from
    // the rows (as MetricFlow joins its time spine), then one day's value per bucket.
    let day = format!("spine.{DAY_COLUMN}");
    let (joined, earliest) = match cumulative.accumulate {
        Accumulate::Window(window) => (
            format!(
                "{time} <= {day} AND {time} > {}",
                shift_date(dialect, &day, window, -1)
            ),
            shift_date(dialect, "@start_date", window, -1),
        ),
        Accumulate::ToDate(unit) => (
            format!("{time} BETWEEN {} AND {day}", start_of(dialect, unit, &day)),
            start_of(dialect, unit, "@start_date"),
        ),
    };
    let range = time_range(dialect, &column, shift, &earliest, "@end_date");
    // Days after the last one with rows carry no new value: the series (and its pace
    // against a target) ends where the data does.
    let mut conditions = vec![
        range.clone(),
        format!("{day} <= (SELECT MAX({time}) FROM {table} WHERE {range})"),
    ];
    conditions.extend(filters);
    let daily_select = select_list(day.clone(), dimension, format!("{value} AS {VALUE_COLUMN}"));
    let per_bucket = match cumulative.period_agg {
        PeriodAgg::First => format!("MIN_BY({VALUE_COLUMN}, {DAY_COLUMN})"),
        PeriodAgg::Last => format!("MAX_BY({VALUE_COLUMN}, {DAY_COLUMN})"),
        PeriodAgg::Average => format!("AVG({VALUE_COLUMN})"),
    };
    let outer = select_list(
        format!(
            "{} AS {PERIOD_COLUMN}",
            bucket(dialect, shape.grain, DAY_COLUMN)
        ),
        shape.by.map(|_| DIMENSION_COLUMN.to_string()),
        format!("{per_bucket} AS {VALUE_COLUMN}"),
    );
    format!(
        "SELECT {outer}\nFROM (\n  SELECT {daily_select}\n  FROM ({spine}) AS spine\n  JOIN {table} ON {joined}\n  WHERE {}\n  GROUP BY {group}\n) AS daily\nGROUP BY {group}",
        conditions.join("\n    AND ")
    )
}

/// A select list: the period (or day) first, the dimension when split, the value last.
fn select_list(first: String, dimension: Option<String>, value: String) -> String {
    std::iter::once(first)
        .chain(dimension)
        .chain(std::iter::once(value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A derived metric: each input's series as a named subquery, joined on the bucket (and
/// the dimension), the expression computed over their values.
fn derived_select(shape: &Shape, derived: &Derived, params: &mut Params) -> String {
    let dialect = shape.dialect;
    let keys = if shape.by.is_some() {
        format!("{PERIOD_COLUMN}, {DIMENSION_COLUMN}")
    } else {
        PERIOD_COLUMN.to_string()
    };
    let mut with = Vec::new();
    let mut union = Vec::new();
    let mut joins = Vec::new();
    for (k, input) in derived.inputs.iter().enumerate() {
        let Some(metric) = input.linked.as_deref() else {
            continue;
        };
        let select = table_select(shape, metric, input.offset, Some(k), params);
        with.push(format!("input_{k} AS (\n{select}\n)"));
        union.push(format!("SELECT {keys} FROM input_{k}"));
        let mut on = format!("input_{k}.{PERIOD_COLUMN} = all_keys.{PERIOD_COLUMN}");
        if shape.by.is_some() {
            on.push_str(&format!(
                " AND input_{k}.{DIMENSION_COLUMN} IS NOT DISTINCT FROM all_keys.{DIMENSION_COLUMN}"
            ));
        }
        joins.push(format!("LEFT JOIN input_{k} ON {on}"));
    }
    with.push(format!(
        "all_keys AS (\n{}\n)",
        union.join("\nUNION DISTINCT\n")
    ));
    let float = float_type(dialect);
    let value = derived.expr.to_sql(&|name| {
        let k = derived
            .inputs
            .iter()
            .position(|i| i.name == name)
            .expect("every name of the expression is an input");
        format!("CAST(input_{k}.{VALUE_COLUMN} AS {float})")
    });
    let mut select = vec![format!("all_keys.{PERIOD_COLUMN} AS {PERIOD_COLUMN}")];
    if shape.by.is_some() {
        select.push(format!("all_keys.{DIMENSION_COLUMN} AS {DIMENSION_COLUMN}"));
    }
    select.push(format!("{value} AS {VALUE_COLUMN}"));
    format!(
        "WITH {}\nSELECT {}\nFROM all_keys\n{}",
        with.join(",\n"),
        select.join(", "),
        joins.join("\n")
    )
}

/// The query for `metric` over `@start_date..@end_date`, bucketed by `grain`, optionally
/// split by one dimension and filtered. `by` and every filter's dimension must already be
/// checked against the metric's dimensions. Returns the SQL and its filter parameters.
/// One query whatever the metric's type: a derived metric's inputs are subqueries of it.
pub fn metric_sql(
    dialect: Dialect,
    metric: &MetricSpec,
    grain: Grain,
    by: Option<&str>,
    filters: &[Filter],
) -> (String, Params) {
    let shape = Shape {
        dialect,
        grain,
        by,
        filters,
    };
    let mut params = Params::new();
    let body = match &metric.kind {
        MetricKind::Derived(derived) => derived_select(&shape, derived, &mut params),
        _ => table_select(&shape, metric, None, None, &mut params),
    };
    let order = if by.is_some() { "1, 2" } else { "1" };
    (format!("{body}\nORDER BY {order}\n"), params)
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
            kind: MetricKind::Simple,
            fixed_filters: Vec::new(),
            documentation: Vec::new(),
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

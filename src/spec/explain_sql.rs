//! The one query behind an explanation: a metric's additive parts (numerator and, for a
//! ratio or an average, denominator) per member of each dimension, in the asked window and
//! its comparison, in a single scan (`GROUPING SETS`), every value a bound parameter; and
//! the members read back from its rows for [`crate::explain`].

use std::collections::BTreeMap;

use super::metric::Filter;
use super::metric_sql::{filter_conditions, quote, text_type};
use super::{Measure, MetricKind, MetricSpec, Window};
use crate::explain::{RatioMember, SumMember};
use crate::warehouse::{Dialect, ParamValue, Params, Table};

/// Column names of the query's rows.
const AFTER_COLUMN: &str = "kpibot_after";
const NUMERATOR_COLUMN: &str = "kpibot_numerator";
const DENOMINATOR_COLUMN: &str = "kpibot_denominator";

/// What an explanation splits: a sum's parts, or a ratio's numerator and denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Sum,
    Ratio,
}

/// Why a metric cannot be explained member by member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainSqlError {
    #[error(
        "`{0}` is not a sum, a count, an average or a ratio of those over one table, so its change does not split into its members' parts"
    )]
    NotAdditive(String),
    #[error("`{0}` has no dimension to explain a change by")]
    NoDimensions(String),
    #[error("the two windows overlap ({0} and {1}): a change is between separate windows")]
    Overlapping(Window, Window),
    #[error("the explanation's query returned no `{0}` column")]
    MissingColumn(&'static str),
}

/// A measure as a row-level expression that adds up: `(numerator, denominator)`.
fn additive(dialect: Dialect, measure: &Measure) -> Option<(String, Option<String>)> {
    let q = |c: &str| quote(dialect, c);
    let one_if = |c: &str| format!("CASE WHEN {} IS NULL THEN 0 ELSE 1 END", q(c));
    Some(match measure {
        Measure::Sum(c) => (q(c), None),
        Measure::Count(None) => ("1".into(), None),
        Measure::Count(Some(c)) => (one_if(c), None),
        Measure::Avg(c) => (q(c), Some(one_if(c))),
        Measure::Ratio(a, b) => match (additive(dialect, a)?, additive(dialect, b)?) {
            ((n, None), (d, None)) => (n, Some(d)),
            _ => return None,
        },
        Measure::CountDistinct(_) | Measure::Min(_) | Measure::Max(_) => return None,
    })
}

/// Whether `metric`'s change splits into its members' parts: a sum, count, average or
/// ratio of those over one table, with a dimension to split by.
pub fn explainable(metric: &MetricSpec) -> bool {
    matches!(metric.kind, MetricKind::Simple)
        && additive(Dialect::DuckDb, &metric.measure).is_some()
        && !metric.dimensions.is_empty()
}

/// The query for `metric` split by each of `dimensions`, over `asked` and `compared`,
/// filtered by `filters`; with its parameters and whether it splits a sum or a ratio.
pub fn explain_sql(
    dialect: Dialect,
    metric: &MetricSpec,
    dimensions: &[&str],
    filters: &[Filter],
    asked: Window,
    compared: Window,
) -> Result<(String, Params, Split), ExplainSqlError> {
    let not_additive = || ExplainSqlError::NotAdditive(metric.name.clone());
    if !matches!(metric.kind, MetricKind::Simple) {
        return Err(not_additive());
    }
    let (numerator, denominator) = additive(dialect, &metric.measure).ok_or_else(not_additive)?;
    if dimensions.is_empty() {
        return Err(ExplainSqlError::NoDimensions(metric.name.clone()));
    }
    if asked.start <= compared.end && compared.start <= asked.end {
        return Err(ExplainSqlError::Overlapping(asked, compared));
    }
    let mut params = Params::from([
        ("start_date".to_string(), ParamValue::Date(asked.start)),
        ("end_date".to_string(), ParamValue::Date(asked.end)),
        (
            "compare_start".to_string(),
            ParamValue::Date(compared.start),
        ),
        ("compare_end".to_string(), ParamValue::Date(compared.end)),
    ]);
    let time = quote(dialect, &metric.time_column);
    let mut conditions = vec![format!(
        "({time} BETWEEN @start_date AND @end_date OR {time} BETWEEN @compare_start AND @compare_end)"
    )];
    conditions.extend(filter_conditions(dialect, filters, "filter", &mut params));
    conditions.extend(filter_conditions(
        dialect,
        &metric.fixed_filters,
        "fixed",
        &mut params,
    ));
    let members: Vec<String> = dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "CAST({} AS {}) AS d{i}",
                quote(dialect, d),
                text_type(dialect)
            )
        })
        .collect();
    let split = if denominator.is_some() {
        Split::Ratio
    } else {
        Split::Sum
    };
    // Windows of different lengths (a month against the month before) are compared as the
    // post compares them: total against total, and the parts still add up exactly.
    let sets: Vec<String> = (0..dimensions.len())
        .map(|i| format!("({AFTER_COLUMN}, d{i})"))
        .collect();
    let groupings: Vec<String> = (0..dimensions.len())
        .map(|i| format!("GROUPING(d{i}) AS g{i}"))
        .collect();
    let keys: Vec<String> = (0..dimensions.len()).map(|i| format!("d{i}")).collect();
    let sql = format!(
        "WITH kpibot_rows AS (\n  SELECT CASE WHEN {time} BETWEEN @start_date AND @end_date THEN 1 ELSE 0 END AS {AFTER_COLUMN}, {}, {numerator} AS n, {} AS d\n  FROM {}\n  WHERE {}\n)\nSELECT {AFTER_COLUMN}, {}, {}, SUM(n) AS {NUMERATOR_COLUMN}, SUM(d) AS {DENOMINATOR_COLUMN}\nFROM kpibot_rows\nGROUP BY GROUPING SETS ({})",
        members.join(", "),
        denominator.as_deref().unwrap_or("0"),
        quote(dialect, &metric.table),
        conditions.join("\n    AND "),
        groupings.join(", "),
        keys.join(", "),
        sets.join(", ")
    );
    Ok((sql, params, split))
}

/// The members of each dimension, read from [`explain_sql`]'s rows, in the order the
/// dimensions were given: `(before, after)` per member as numerator and denominator.
pub fn members_of(
    table: &Table,
    dimensions: &[&str],
) -> Result<Vec<Vec<RatioMember>>, ExplainSqlError> {
    let at = |name: &str| table.column_index(name);
    let column = |name: &'static str| at(name).ok_or(ExplainSqlError::MissingColumn(name));
    let mut out: Vec<BTreeMap<Option<String>, RatioMember>> =
        vec![BTreeMap::new(); dimensions.len()];
    let (after, n, d) = (
        column(AFTER_COLUMN)?,
        column(NUMERATOR_COLUMN)?,
        column(DENOMINATOR_COLUMN)?,
    );
    for row in &table.rows {
        // The one grouping set this row belongs to: its dimension is not aggregated away.
        let Some(i) = (0..dimensions.len())
            .find(|i| at(&format!("g{i}")).and_then(|g| row[g].as_f64()) == Some(0.0))
        else {
            continue;
        };
        let member = at(&format!("d{i}")).and_then(|c| match &row[c] {
            crate::warehouse::Cell::Null => None,
            cell => Some(cell.to_string()),
        });
        let values = (
            row[n].as_f64().unwrap_or(0.0),
            row[d].as_f64().unwrap_or(0.0),
        );
        let entry = out[i].entry(member.clone()).or_insert(RatioMember {
            member,
            before: None,
            after: None,
        });
        if row[after].as_f64() == Some(1.0) {
            entry.after = Some(values);
        } else {
            entry.before = Some(values);
        }
    }
    Ok(out.into_iter().map(|m| m.into_values().collect()).collect())
}

/// A sum's members from [`members_of`]: the numerators.
pub fn sum_members(members: &[RatioMember]) -> Vec<SumMember> {
    members
        .iter()
        .map(|m| SumMember {
            member: m.member.clone(),
            before: m.before.map(|(n, _)| n),
            after: m.after.map(|(n, _)| n),
        })
        .collect()
}

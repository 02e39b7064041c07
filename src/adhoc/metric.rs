//! A metric question as a report: generated SQL for the asked grain, split and filters, a
//! standard chart, and a period widened to whole weeks or months where the grain needs it.

use chrono_tz::Tz;

use super::grammar::{Grain, Query};
use super::sql::{self, DIMENSION_COLUMN, PERIOD_COLUMN, VALUE_COLUMN};
use crate::i18n::{self, Locale};
use crate::spec::diagnostic::closest;
use crate::spec::{
    ChartKind, ChartSpec, Column, Compare, Currency, Definition, Headline, MetricKind, MetricSpec,
    Period, QuerySpec, ReportSpec, SlackChart, TargetSpec,
};
use crate::warehouse::reads::read_sql;
use crate::warehouse::{Dialect, Params};
use crate::{tr, tr_mrkdwn};

/// The period of a metric question that names none.
pub const DEFAULT_METRIC_PERIOD: &str = "last 28 days";

/// A day-counted period widened to whole weeks or months for a weekly or monthly chart,
/// so no bar stands for a part of a week or month (`last 30 days weekly` → the last 5
/// complete weeks). Other periods are kept as written.
fn whole_buckets(period: Period, grain: Grain) -> Period {
    use crate::spec::period::Unit;
    match (period, grain) {
        (Period::Last(days, Unit::Day), Grain::Week) => Period::Last(days.div_ceil(7), Unit::Week),
        (Period::Last(days, Unit::Day), Grain::Month) => {
            Period::Last(days.div_ceil(30), Unit::Month)
        }
        (Period::Last(weeks, Unit::Week), Grain::Month) => {
            Period::Last((weeks * 7).div_ceil(30), Unit::Month)
        }
        (period, _) => period,
    }
}

/// The period a metric question runs over: as asked, else [`DEFAULT_METRIC_PERIOD`],
/// widened to whole buckets of its grain.
pub fn asked_period(query: &Query) -> Period {
    let asked = query
        .period
        .unwrap_or_else(|| DEFAULT_METRIC_PERIOD.parse().expect("a valid period"));
    whole_buckets(asked, query.grain.unwrap_or(Grain::Day))
}

/// The report an ad-hoc metric question runs as: generated SQL, a standard chart; or what
/// is wrong with the question, as Slack mrkdwn.
pub fn metric_report(
    metric: &MetricSpec,
    query: &Query,
    dialect: Dialect,
    timezone: Tz,
    visible: &[&str],
    targets: &[&TargetSpec],
    locale: Locale,
) -> Result<(ReportSpec, Params), String> {
    // Whether a dimension exists is checked against all of them (access is decided later,
    // with the asker's groups); what a mistake suggests names only those the asker sees.
    let check = |dimension: &str| -> Result<(), String> {
        if metric.dimensions.contains_key(dimension) {
            return Ok(());
        }
        let names = visible.iter().copied();
        let valid: Vec<&str> = names.clone().collect();
        let name = metric.name.as_str();
        Err(match closest(dimension, names) {
            Some(suggestion) => tr_mrkdwn!(
                locale,
                "metric-no-dimension-hint",
                metric = name,
                dimension = dimension,
                suggestion = suggestion
            ),
            None if valid.is_empty() => tr_mrkdwn!(locale, "metric-no-dimensions", metric = name),
            None => tr_mrkdwn!(
                locale,
                "metric-no-dimension-list",
                metric = name,
                dimension = dimension,
                dimensions = i18n::list(
                    locale,
                    &valid.iter().map(|d| d.to_string()).collect::<Vec<_>>()
                )
            ),
        })
    };
    if let Some(by) = &query.by {
        check(by)?;
    }
    for filter in &query.filters {
        check(&filter.dimension)?;
    }
    let grain = query.grain.unwrap_or(Grain::Day);
    let (sql, params) =
        sql::metric_sql(dialect, metric, grain, query.by.as_deref(), &query.filters);
    let column = |name: &str| Column {
        name: name.into(),
        span: 0..0,
    };
    let mut title = match &query.by {
        Some(by) => tr!(
            locale,
            "metric-title-by",
            label = metric.label.as_str(),
            dimension = metric.dimensions[by].as_str()
        ),
        None => metric.label.clone(),
    };
    for f in &query.filters {
        title = tr!(
            locale,
            "metric-title-filter",
            title = title,
            dimension = metric.dimensions[&f.dimension].as_str(),
            values = i18n::list(locale, &f.values)
        );
    }
    let headline = if metric.is_additive() {
        Headline::Total
    } else if matches!(metric.kind, MetricKind::Cumulative(_)) {
        // A running total's latest value is the figure (month to date, last 7 days).
        Headline::Last
    } else {
        Headline::Average
    };
    let sources: Vec<&str> = metric.sources().iter().map(|m| m.table.as_str()).collect();
    let spec = ReportSpec {
        id: metric.name.clone(),
        path: metric.path.clone(),
        source: String::new(),
        title,
        aliases: metric.aliases.clone(),
        description: metric.description.clone(),
        owner: metric.owner.clone(),
        tags: metric.tags.clone(),
        timezone,
        definition: Definition {
            source: sources.join(", "),
            refreshed: metric.refreshed.clone(),
            purpose: metric.description.clone(),
        },
        query: QuerySpec {
            reads: read_sql(&sql, dialect),
            sql,
            sql_offset: None,
            sql_span: 0..0,
            period: asked_period(query),
            week_start: chrono::Weekday::Mon,
            timeout_seconds: None,
            maximum_bytes_billed: None,
            params: Params::new(),
            metric: None,
        },
        chart: ChartSpec {
            kind: if grain == Grain::Day {
                ChartKind::Line
            } else {
                ChartKind::Bar
            },
            x: column(PERIOD_COLUMN),
            y: column(VALUE_COLUMN),
            series: query.by.as_ref().map(|_| column(DIMENSION_COLUMN)),
            format: metric.format,
            headline,
            compare: Compare::PreviousPeriod,
            locale: None,
            currency: Currency::Jpy,
            goal: None,
            label_last: false,
            max_rows: 20,
            higher_is_better: true,
            slack_chart: SlackChart::Native,
            metric: None,
        },
        schedules: Vec::new(),
        freshness: None,
        access: metric.access.clone(),
        // Paced only unsplit (a target is for the total, or its one filtered value) and
        // daily, where the last day with data is known.
        targets: if query.by.is_none() && grain == Grain::Day {
            targets
                .iter()
                .filter(|t| t.applies_to(&query.filters))
                .map(|t| (*t).clone())
                .collect()
        } else {
            Vec::new()
        },
    };
    Ok((spec, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_and_monthly_charts_cover_whole_weeks_and_months() {
        use crate::spec::period::Unit;
        assert_eq!(
            whole_buckets(Period::Last(30, Unit::Day), Grain::Week),
            Period::Last(5, Unit::Week)
        );
        assert_eq!(
            whole_buckets(Period::Last(90, Unit::Day), Grain::Month),
            Period::Last(3, Unit::Month)
        );
        assert_eq!(
            whole_buckets(Period::Last(30, Unit::Day), Grain::Day),
            Period::Last(30, Unit::Day)
        );
        assert_eq!(
            whole_buckets(Period::This(Unit::Month), Grain::Week),
            Period::This(Unit::Month)
        );
    }
}

//! What an alert watches, read from the warehouse: a catalog metric per day (one series
//! per dimension value, through the same generated SQL `/kpi` uses), a report's headline
//! as each morning's run would show it, a freshness query, or a query's rows.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use super::judge::{Direction, Judged, Reference, Seen, judge};
use crate::catalog::Catalog;
use crate::pipeline::{self, PipelineError, RunLimits, RunOptions};
use crate::scheduled::cron::instant_of;
use crate::scheduled::freshness::{is_fresh, newest_date};
use crate::spec::AlertSpec;
use crate::spec::alert::{Condition, Watch};
use crate::spec::metric_sql::{
    self as sql, DIMENSION_COLUMN, Filter, Grain, PERIOD_COLUMN, VALUE_COLUMN,
};
use crate::warehouse::reads::Reads;
use crate::warehouse::{ParamValue, Params, QueryJob, Trigger, Warehouse, WarehouseError};

/// Values per instance (`""` when the alert is not split), per day.
pub type Series = BTreeMap<String, BTreeMap<NaiveDate, f64>>;

/// What an alert reads from: the warehouse, the catalog its metric or report is in, and
/// the bounds every query has.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub warehouse: &'a dyn Warehouse,
    pub catalog: &'a Catalog,
    pub timeout: Duration,
    pub limits: RunLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the catalog has no metric `{0}` (was it renamed or removed?)")]
    MissingMetric(String),
    #[error("the catalog has no report `{0}` (was it renamed or removed?)")]
    MissingReport(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl WatchError {
    /// The failure in `locale`, for the owner's note.
    pub fn text(&self, locale: crate::i18n::Locale) -> String {
        use crate::i18n::Message;
        match self {
            WatchError::MissingMetric(metric) => Message::new("alert-missing-metric")
                .with("metric", metric)
                .text(locale),
            WatchError::MissingReport(report) => Message::new("alert-missing-report")
                .with("report", report)
                .text(locale),
            WatchError::Warehouse(WarehouseError::OverBudget(over)) => over.text(locale),
            WatchError::Warehouse(error) => {
                format!("{} ({error})", pipeline::warehouse_failure(error, locale))
            }
            WatchError::Pipeline(error) => error.text(locale),
        }
    }
}

/// How many days before the evaluated day a condition reads.
pub fn lookback_days(condition: &Condition) -> u64 {
    match condition {
        Condition::Change { against, .. } => against.days() as u64,
        Condition::Band { weeks, .. } => 7 * u64::from(*weeks),
        _ => 0,
    }
}

fn job(alert: &AlertSpec, timeout: Duration) -> QueryJob {
    QueryJob::new(timeout).for_report(&alert.name, Trigger::Alert)
}

/// A metric alert's query: the metric per day over `from..=to`, split by `by` and
/// filtered as the alert says — through the same generated SQL `/kpi` uses.
fn metric_query(
    dialect: crate::warehouse::Dialect,
    spec: &crate::spec::MetricSpec,
    by: Option<&str>,
    filters: &[(String, Vec<String>)],
    from: NaiveDate,
    to: NaiveDate,
) -> (String, Params) {
    let filters: Vec<Filter> = filters
        .iter()
        .map(|(dimension, values)| Filter {
            dimension: dimension.clone(),
            values: values.clone(),
        })
        .collect();
    let (sql, mut params) = sql::metric_sql(dialect, spec, Grain::Day, by, &filters);
    params.insert("start_date".into(), ParamValue::Date(from));
    params.insert("end_date".into(), ParamValue::Date(to));
    (sql, params)
}

/// The watched series on every day of `from..=to`.
pub async fn series(
    sources: Sources<'_>,
    alert: &AlertSpec,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Series, WatchError> {
    match &alert.watch {
        Some(Watch::Metric {
            metric,
            by,
            filters,
            ..
        }) => {
            let spec = sources
                .catalog
                .metric(metric)
                .ok_or_else(|| WatchError::MissingMetric(metric.clone()))?;
            let (sql, params) = metric_query(
                sources.warehouse.dialect(),
                spec,
                by.as_deref(),
                filters,
                from,
                to,
            );
            let table = sources
                .warehouse
                .query(&sql, &params, &job(alert, sources.timeout))
                .await?;
            let at = |name: &str| table.column_index(name);
            let (Some(period), Some(value)) = (at(PERIOD_COLUMN), at(VALUE_COLUMN)) else {
                return Ok(Series::new());
            };
            let dimension = by.as_ref().and_then(|_| at(DIMENSION_COLUMN));
            let mut out = Series::new();
            for row in &table.rows {
                let (Some(day), Some(v)) = (row[period].as_date(), row[value].as_f64()) else {
                    continue;
                };
                let instance = dimension.map_or_else(String::new, |i| row[i].to_string());
                out.entry(instance).or_default().insert(day, v);
            }
            Ok(out)
        }
        Some(Watch::Report { report, .. }) => {
            let spec = sources
                .catalog
                .get(report)
                .ok_or_else(|| WatchError::MissingReport(report.clone()))?;
            // Each day's value is the headline of the run on the morning `lag_days` after it.
            let mut values = BTreeMap::new();
            let mut day = from;
            while day <= to {
                let run_day = day + Days::new(u64::from(alert.lag_days));
                let noon = run_day.and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"));
                let now = instant_of(spec.timezone, noon).unwrap_or_else(Utc::now);
                let options = RunOptions {
                    limits: sources.limits,
                    ..RunOptions::new(now, sources.timeout, Trigger::Alert)
                };
                if let Some(v) = pipeline::headline(sources.warehouse, spec, &options).await? {
                    values.insert(day, v);
                }
                day = day + Days::new(1);
            }
            Ok(Series::from([(String::new(), values)]))
        }
        None => Ok(Series::new()),
    }
}

/// What the alert's query reads on an evaluation at `at`, as the warehouse proves it (the
/// metric's generated SQL, the report's SQL, or its own `rows`/`stale` SQL): what the
/// access rule decides its posts on.
pub async fn reads(sources: Sources<'_>, alert: &AlertSpec, at: DateTime<Utc>) -> Reads {
    let today = pipeline::today_in(alert.timezone, at);
    let job = job(alert, sources.timeout);
    let run_date = Params::from([("run_date".to_string(), ParamValue::Date(today))]);
    match (&alert.condition, &alert.watch) {
        (Condition::Stale(freshness), _) => {
            sources
                .warehouse
                .reads(&freshness.sql, &run_date, &job)
                .await
        }
        (Condition::Rows { sql }, _) => sources.warehouse.reads(sql, &run_date, &job).await,
        (
            _,
            Some(Watch::Metric {
                metric,
                by,
                filters,
                ..
            }),
        ) => {
            let Some(spec) = sources.catalog.metric(metric) else {
                return Reads::Unknown {
                    why: format!("the catalog has no metric `{metric}`"),
                };
            };
            let (sql, params) = metric_query(
                sources.warehouse.dialect(),
                spec,
                by.as_deref(),
                filters,
                today,
                today,
            );
            sources.warehouse.reads(&sql, &params, &job).await
        }
        (_, Some(Watch::Report { report, .. })) => match sources.catalog.get(report) {
            Some(spec) => {
                let options = RunOptions {
                    limits: sources.limits,
                    ..RunOptions::new(at, sources.timeout, Trigger::Alert)
                };
                pipeline::reads(sources.warehouse, spec, &options).await
            }
            None => Reads::Unknown {
                why: format!("the catalog has no report `{report}`"),
            },
        },
        (_, None) => Reads::Known {
            tables: Vec::new(),
            source: crate::warehouse::reads::ReadsSource::Planner,
        },
    }
}

/// Judges every instance of `series` on `day`.
pub fn judge_all(alert: &AlertSpec, series: &Series, day: NaiveDate) -> BTreeMap<String, Seen> {
    series
        .iter()
        .map(|(name, values)| {
            (
                name.clone(),
                judge(&alert.condition, alert.recover, values, day),
            )
        })
        .collect()
}

/// What one evaluation at `at` sees, per instance. A failed query is `Seen::Error` for
/// every instance `known` (or the alert itself when none are), worded in `locale`. The
/// instances known, and the alert itself when nothing splits it, are judged even when the
/// query returned no row for them: that is what `no_data` watches for.
pub async fn observe(
    sources: Sources<'_>,
    alert: &AlertSpec,
    at: DateTime<Utc>,
    known: &[String],
    locale: crate::i18n::Locale,
) -> BTreeMap<String, Seen> {
    let day = super::evaluated_day(alert, at);
    let today = pipeline::today_in(alert.timezone, at);
    let result = match &alert.condition {
        Condition::Stale(freshness) => {
            let params = Params::from([("run_date".to_string(), ParamValue::Date(today))]);
            sources
                .warehouse
                .query(&freshness.sql, &params, &job(alert, sources.timeout))
                .await
                .map(|table| {
                    let newest = newest_date(&table);
                    let fresh = is_fresh(newest, today, freshness.expect_days_ago);
                    BTreeMap::from([(
                        String::new(),
                        Seen::Judged(Judged {
                            value: None,
                            holds: !fresh,
                            recovered: fresh,
                            worse: Direction::Down,
                            reference: Reference::Nothing,
                        }),
                    )])
                })
                .map_err(WatchError::from)
        }
        Condition::Rows { sql } => {
            let params = Params::from([("run_date".to_string(), ParamValue::Date(today))]);
            sources
                .warehouse
                .query(sql, &params, &job(alert, sources.timeout))
                .await
                .map(|table| {
                    table
                        .rows
                        .iter()
                        .map(|row| {
                            let key: Vec<String> = row.iter().map(|c| c.to_string()).collect();
                            (
                                key.join(" · "),
                                Seen::Judged(Judged {
                                    value: None,
                                    holds: true,
                                    recovered: false,
                                    worse: Direction::Up,
                                    reference: Reference::Nothing,
                                }),
                            )
                        })
                        .collect()
                })
                .map_err(WatchError::from)
        }
        condition => {
            let from = day - Days::new(lookback_days(condition));
            let split = matches!(&alert.watch, Some(Watch::Metric { by: Some(_), .. }));
            series(sources, alert, from, day).await.map(|mut series| {
                let expected = known.iter().cloned().chain((!split).then(String::new));
                for name in expected {
                    series.entry(name).or_default();
                }
                judge_all(alert, &series, day)
            })
        }
    };
    match result {
        Ok(seen) => seen,
        Err(error) => {
            let text = error.text(locale);
            let names = if known.is_empty() {
                vec![String::new()]
            } else {
                known.to_vec()
            };
            names
                .into_iter()
                .map(|name| (name, Seen::Error(text.clone())))
                .collect()
        }
    }
}

//! What an alert watches, read from the warehouse: a catalog metric per day (one series
//! per dimension value, through the same generated SQL `/kpi` uses), a report's headline
//! as each morning's run would show it, a freshness query, or a query's rows; and for a
//! pace alert its target, each judged period's target value (written in the spec or read
//! from the mart table) and last year's days where it is paced by last year's shape.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use super::judge::{Direction, Judged, PaceSetup, Reference, Seen, judge, judge_pace};
use crate::catalog::Catalog;
use crate::pipeline::pace::{read_table_target, table_target_queries, with_target_reads};
use crate::pipeline::{self, PipelineError, RunLimits, RunOptions};
use crate::scheduled::cron::instant_of;
use crate::scheduled::freshness::{is_fresh, newest_date};
use crate::spec::alert::{Condition, Watch, as_filters};
use crate::spec::metric_sql::{
    self as sql, DIMENSION_COLUMN, Filter, Grain, PERIOD_COLUMN, VALUE_COLUMN,
};
use crate::spec::target::{self, PaceMethod, TargetSpec};
use crate::spec::target_table::TableTarget;
use crate::spec::{AlertSpec, Window};
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
    #[error("{0}")]
    MissingTarget(#[from] crate::spec::target::PaceTargetError),
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
            WatchError::MissingTarget(error) => Message::new("alert-missing-target")
                .with("metric", error.metric())
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
        // From the start of the target's month (at most 30 days back) or week.
        Condition::Pace { .. } => 30,
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
    let filters: Vec<Filter> = crate::spec::alert::as_filters(filters);
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
            let reads = sources.warehouse.reads(&sql, &params, &job).await;
            // A pace alert's target kept in a mart table is read too.
            let targets = target_queries(sources, alert, today);
            with_target_reads(sources.warehouse, reads, targets, &job).await
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

/// Judges every instance of `series` on `day` (a pace condition against `pace`).
pub fn judge_all(
    alert: &AlertSpec,
    pace: Option<&PaceSetup>,
    series: &Series,
    day: NaiveDate,
) -> BTreeMap<String, Seen> {
    series
        .iter()
        .map(|(name, values)| {
            let seen = match (&alert.condition, pace) {
                (Condition::Pace { below_percent, .. }, Some(setup)) => {
                    judge_pace(*below_percent, setup, values, day)
                }
                _ => judge(&alert.condition, alert.recover, values, day),
            };
            let seen = super::judge::with_floor(seen, &alert.floor);
            (name.clone(), seen)
        })
        .collect()
}

/// What judging the days `first_judged..=to` reads: the watched series from `from`, and
/// for a pace alert its target's setup and last year's days where they are needed.
pub async fn watched(
    sources: Sources<'_>,
    alert: &AlertSpec,
    from: NaiveDate,
    first_judged: NaiveDate,
    to: NaiveDate,
    locale: crate::i18n::Locale,
) -> Result<(Series, Option<PaceSetup>), WatchError> {
    let mut values = series(sources, alert, from, to).await?;
    let pace = pace_setup(sources, alert, first_judged, to, locale).await?;
    if let Some(setup) = &pace {
        add_last_year(sources, alert, setup, first_judged, to, &mut values).await?;
    }
    Ok((values, pace))
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
            watched(sources, alert, from, day, day, locale)
                .await
                .map(|(mut series, pace)| {
                    let expected = known.iter().cloned().chain((!split).then(String::new));
                    for name in expected {
                        series.entry(name).or_default();
                    }
                    judge_all(alert, pace.as_ref(), &series, day)
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

/// The target `alert` paces against (`None` for an alert of another kind).
pub fn pace_target<'a>(
    sources: Sources<'a>,
    alert: &AlertSpec,
) -> Result<Option<&'a TargetSpec>, WatchError> {
    let (
        Condition::Pace { per, .. },
        Some(Watch::Metric {
            metric, filters, ..
        }),
    ) = (&alert.condition, &alert.watch)
    else {
        return Ok(None);
    };
    let targets = sources.catalog.targets();
    Ok(Some(target::pace_target(
        targets,
        metric,
        &as_filters(filters),
        *per,
    )?))
}

/// The first day of every period of `per` that a day of `from..=to` falls in.
fn period_starts(target: &TargetSpec, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut starts = Vec::new();
    let mut day = from;
    while day <= to {
        let (start, end) = target.per.around(day);
        starts.push(start);
        day = end + Days::new(1);
    }
    starts
}

/// How a pace alert judges the days `from..=to`: its target with each period's value, and
/// whether the metric adds up over days. `None` for an alert of another kind.
pub async fn pace_setup(
    sources: Sources<'_>,
    alert: &AlertSpec,
    from: NaiveDate,
    to: NaiveDate,
    locale: crate::i18n::Locale,
) -> Result<Option<PaceSetup>, WatchError> {
    let Some(target) = pace_target(sources, alert)? else {
        return Ok(None);
    };
    let additive = sources
        .catalog
        .metric(&target.metric)
        .ok_or_else(|| WatchError::MissingMetric(target.metric.clone()))?
        .is_additive();
    let mut goals = std::collections::BTreeMap::new();
    let job = QueryJob::new(sources.timeout).for_report(&alert.name, Trigger::Alert);
    for start in period_starts(target, from, to) {
        let end = target.per.around(start).1;
        let period = crate::i18n::date_range(locale, start, end);
        let goal = match &target.table {
            None => target.value_for(start).ok_or_else(|| {
                crate::i18n::Message::new("alert-pace-no-target")
                    .with("period", &period)
                    .with("source", target.path.display().to_string())
                    .text(locale)
            }),
            Some(table) => {
                let found =
                    read_table_target(sources.warehouse, target, table, start, &job).await?;
                found.goal(table, start).map_err(|why| {
                    tracing::warn!(alert = %alert.name, %why, "a pace alert's period has no target");
                    let key = match found {
                        TableTarget::Missing => "alert-pace-no-target",
                        _ => "alert-pace-bad-target",
                    };
                    crate::i18n::Message::new(key)
                        .with("period", &period)
                        .with("source", table)
                        .text(locale)
                })
            }
        };
        goals.insert(start, goal);
    }
    Ok(Some(PaceSetup {
        target: target.clone(),
        goals,
        additive,
    }))
}

/// The days of last year a pace by last year's shape reads for the judged days
/// `from..=to` (the same periods a year earlier, whole), merged into `values`.
pub async fn add_last_year(
    sources: Sources<'_>,
    alert: &AlertSpec,
    setup: &PaceSetup,
    from: NaiveDate,
    to: NaiveDate,
    values: &mut Series,
) -> Result<(), WatchError> {
    if setup.target.pace != PaceMethod::LastYear {
        return Ok(());
    }
    let per = setup.target.per;
    let reach = |day: NaiveDate| {
        let window = Window {
            start: per.around(day).0,
            end: day,
        };
        let (whole, so_far) = target::last_year_windows(window, per);
        (whole.start.min(so_far.start), whole.end.max(so_far.end))
    };
    let (start, _) = reach(from);
    let (_, end) = reach(to);
    for (instance, days) in series(sources, alert, start, end).await? {
        values.entry(instance).or_default().extend(days);
    }
    Ok(())
}

/// The queries reading a pace alert's target from its mart table around `day`: what the
/// access rule decides its posts on besides the metric's own query.
pub fn target_queries(
    sources: Sources<'_>,
    alert: &AlertSpec,
    day: NaiveDate,
) -> Vec<(String, Params)> {
    match pace_target(sources, alert) {
        Ok(Some(target)) => table_target_queries(
            sources.warehouse,
            std::slice::from_ref(target),
            Window {
                start: target.per.around(day).0,
                end: day,
            },
        ),
        _ => Vec::new(),
    }
}

//! The one shared path: spec + period → query → chart + message. Scheduled posts, slash
//! commands, `demo` and `preview` all run reports through [`run`], so they cannot disagree.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale};
use crate::render::actions::{Actions, Asked};
use crate::render::{self, ChartData, RenderError, Rendered, RunFacts, ShapeError};
use crate::spec::period::{PeriodError, WindowLimits};
use crate::spec::{Compare, Goal, Headline, Period, ReportSpec, Window};
use crate::warehouse::reads::Reads;
use crate::warehouse::{ParamValue, Params, QueryJob, Table, Trigger, Warehouse, WarehouseError};

/// How to run a report this time.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides the spec's default period.
    pub period: Option<Period>,
    /// "Now": decides today's date in the report's timezone. Injected so tests and
    /// catch-up runs compute the window of the slot, not of the wall clock.
    pub now: DateTime<Utc>,
    /// The channel the message is for, if known.
    pub channel: Option<String>,
    /// The scheduled slot this run is for; `None` for an ad-hoc run (the slot is `now`).
    pub slot: Option<DateTime<Utc>>,
    /// Post the chart as a thread reply under a one-line summary.
    pub thread: bool,
    /// Warehouse time limit when the spec does not set one.
    pub default_timeout: Duration,
    /// Parameters bound besides the window (e.g. an ad-hoc question's filter values).
    pub params: Params,
    /// What started the run (BigQuery cost label).
    pub trigger: Trigger,
    /// How far the window may reach and how many rows the query may return.
    pub limits: RunLimits,
    /// The reader's language, for a report that does not state its own `locale`.
    pub locale: Locale,
    /// The question the post answers, for its buttons; `None`: the report for the period
    /// run.
    pub actions: Option<Actions>,
}

/// The bounds of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    pub window: WindowLimits,
    /// Rows a query may return (`QueryJob::max_rows`).
    pub max_rows: Option<usize>,
}

impl RunOptions {
    /// A run at `now` with the report's own period, no channel, slot or extra parameters.
    pub fn new(now: DateTime<Utc>, default_timeout: Duration, trigger: Trigger) -> Self {
        Self {
            period: None,
            now,
            channel: None,
            slot: None,
            thread: false,
            default_timeout,
            params: Params::new(),
            trigger,
            limits: RunLimits::default(),
            locale: Locale::En,
            actions: None,
        }
    }
}

/// A finished run, ready to deliver.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub rendered: Rendered,
    pub window: Window,
    /// The window the headline was compared with, if the report compares.
    pub comparison: Option<Window>,
    pub table: Table,
    pub headline: Option<f64>,
    /// The query returned nothing to chart: the image and message say "no data".
    pub no_data: bool,
    pub elapsed: Duration,
}

pub mod pace;
pub mod why;
mod why_data;
pub mod why_message;

/// What went wrong at the warehouse, in words that fit the failure.
pub fn warehouse_failure(error: &WarehouseError, locale: Locale) -> String {
    let key = match error {
        WarehouseError::Query { .. } => "failure-query-rejected",
        WarehouseError::Refused { .. } => "failure-query-refused",
        WarehouseError::Timeout(_) => "failure-timeout",
        WarehouseError::Unavailable(_) => "failure-unavailable",
        WarehouseError::UnsupportedType { .. } => "failure-unsupported-type",
        WarehouseError::TooManyRows { .. } => "failure-too-many-rows",
        WarehouseError::OverBudget(_) => "failure-over-budget",
    };
    crate::tr!(locale, key)
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("report `{report}`")]
    Period { report: String, source: PeriodError },
    #[error("report `{report}` ({location}): {}", warehouse_failure(.source, Locale::En))]
    Warehouse {
        report: String,
        location: String,
        source: WarehouseError,
    },
    #[error("report `{report}` ({location})")]
    Shape {
        report: String,
        location: String,
        source: ShapeError,
    },
    #[error("report `{report}`")]
    Render { report: String, source: RenderError },
    #[error("report `{report}`: shaping or drawing the chart stopped unexpectedly ({why})")]
    Stopped { report: String, why: String },
}

impl PipelineError {
    /// What went wrong, for a person: the kind of failure in `locale`, where in the spec,
    /// then the warehouse's own words.
    pub fn text(&self, locale: Locale) -> String {
        match self {
            // The budget's own words name it and its reset; the SQL's place adds nothing.
            PipelineError::Warehouse {
                source: WarehouseError::OverBudget(over),
                ..
            } => over.text(locale),
            PipelineError::Warehouse {
                source, location, ..
            } => format!(
                "{} ({location}): {}",
                warehouse_failure(source, locale),
                i18n::error_chain(source)
            ),
            PipelineError::Period { source, .. } => source.text(locale),
            PipelineError::Shape {
                source, location, ..
            } => format!("{} ({location})", source.text(locale)),
            PipelineError::Render { report, source } => crate::tr!(
                locale,
                "pipeline-render-failed",
                report = report.as_str(),
                detail = format!("`{}`", i18n::error_chain(source).replace('`', "'"))
            ),
            PipelineError::Stopped { report, why } => crate::tr!(
                locale,
                "pipeline-stopped",
                report = report.as_str(),
                detail = format!("`{}`", why.replace('`', "'"))
            ),
        }
    }

    /// [`PipelineError::text`] as Slack mrkdwn: the warehouse's words and what was typed
    /// escaped, kpibot's own code spans kept.
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        match self {
            PipelineError::Warehouse {
                source: WarehouseError::OverBudget(over),
                ..
            } => over.mrkdwn(locale),
            PipelineError::Period { source, .. } => source.mrkdwn(locale),
            PipelineError::Shape {
                source, location, ..
            } => Mrkdwn::formatted(format!(
                "{} ({})",
                source.mrkdwn(locale),
                i18n::mrkdwn::escape(location)
            )),
            PipelineError::Render { report, source } => Mrkdwn::formatted(crate::tr_mrkdwn!(
                locale,
                "pipeline-render-failed",
                report = report.as_str(),
                detail = Mrkdwn::formatted(format!(
                    "`{}`",
                    i18n::mrkdwn::escape(&i18n::error_chain(source))
                ))
            )),
            PipelineError::Stopped { report, why } => Mrkdwn::formatted(crate::tr_mrkdwn!(
                locale,
                "pipeline-stopped",
                report = report.as_str(),
                detail = Mrkdwn::formatted(format!("`{}`", i18n::mrkdwn::escape(why)))
            )),
            other => Mrkdwn::value(&other.text(locale)),
        }
    }
}

/// Today's date in the report's timezone.
pub fn today_in(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// How a slot is written in message metadata and receipts: RFC 3339 in the report's
/// timezone, to the second.
pub fn slot_text(tz: Tz, slot: DateTime<Utc>) -> String {
    slot.with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The window a run covers, inside `limits`.
pub fn window_for(
    spec: &ReportSpec,
    period: Option<Period>,
    now: DateTime<Utc>,
    limits: &WindowLimits,
) -> Result<Window, PeriodError> {
    let today = today_in(spec.timezone, now);
    let window = period
        .unwrap_or(spec.query.period)
        .resolve(today, spec.query.week_start)?;
    limits.check(window, today)
}

/// The parameters every report query gets: its window and the run date, as DATEs.
pub fn params_for(window: Window, run_date: NaiveDate) -> Params {
    Params::from([
        ("start_date".to_string(), ParamValue::Date(window.start)),
        ("end_date".to_string(), ParamValue::Date(window.end)),
        ("run_date".to_string(), ParamValue::Date(run_date)),
    ])
}

/// How the report's query runs: the spec's time limit and bytes cap (or the defaults),
/// labelled with the report and what started it.
pub fn job_for(spec: &ReportSpec, default_timeout: Duration, trigger: Trigger) -> QueryJob {
    QueryJob::new(
        spec.query
            .timeout_seconds
            .map_or(default_timeout, Duration::from_secs),
    )
    .for_report(&spec.id, trigger)
    .with_maximum_bytes_billed(spec.query.maximum_bytes_billed)
}

/// The parameters a run's query gets: the report's own, then the run's (an ad-hoc
/// filter), then the window — the names kpibot provides always win.
fn run_params(
    spec: &ReportSpec,
    options: &RunOptions,
    window: Window,
    run_date: NaiveDate,
) -> Params {
    let mut params = spec.query.params.clone();
    params.extend(options.params.clone());
    params.extend(params_for(window, run_date));
    params
}

/// What the report's query reads on this run, as the warehouse proves it without reading
/// data (DuckDB's planner, BigQuery's dry run): asked before data may leave, so access is
/// decided on what the query really reads, through views and table functions.
pub async fn reads(warehouse: &dyn Warehouse, spec: &ReportSpec, options: &RunOptions) -> Reads {
    // A window outside the limits runs no query (`run` refuses it before the warehouse is
    // asked), so it reads nothing; the run answers the mistake.
    let Ok(window) = window_for(spec, options.period, options.now, &options.limits.window) else {
        return Reads::nothing();
    };
    let params = run_params(spec, options, window, today_in(spec.timezone, options.now));
    let job = job_for(spec, options.default_timeout, options.trigger);
    let reads = warehouse.reads(&spec.query.sql, &params, &job).await;
    // A target kept in a mart table is read with the data: the reader must be allowed it.
    let targets = pace::table_target_queries(warehouse, &spec.targets, window);
    pace::with_target_reads(warehouse, reads, targets, &job).await
}

/// Runs the report's query for `window` and shapes it for the chart.
async fn query_window(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    window: Window,
    run_date: NaiveDate,
    options: &RunOptions,
) -> Result<(Table, ChartData), PipelineError> {
    let mut job = job_for(spec, options.default_timeout, options.trigger);
    if let Some(max_rows) = options.limits.max_rows {
        job = job.with_max_rows(max_rows);
    }
    let params = run_params(spec, options, window, run_date);
    let table = warehouse
        .query(&spec.query.sql, &params, &job)
        .await
        .map_err(|source| PipelineError::Warehouse {
            report: spec.id.clone(),
            location: match &source {
                WarehouseError::Query {
                    line: Some(line),
                    column,
                    ..
                } => spec.sql_location(*line, *column),
                _ => spec.sql_location(1, None),
            },
            source,
        })?;
    // Shaping is rows × series of work: off the async workers, so acks never wait on it.
    let chart = spec.chart.clone();
    let (table, shaped) = off_runtime(spec, move || {
        let shaped = ChartData::from_table(&table, &chart);
        (table, shaped)
    })
    .await?;
    let data = shaped.map_err(|source| {
        let span = match &source {
            ShapeError::MissingColumn { key: "x", .. } => spec.chart.x.span.clone(),
            ShapeError::MissingColumn { key: "series", .. } => spec
                .chart
                .series
                .as_ref()
                .map_or(spec.chart.y.span.clone(), |s| s.span.clone()),
            _ => spec.chart.y.span.clone(),
        };
        PipelineError::Shape {
            report: spec.id.clone(),
            location: crate::spec::diagnostic::location(&spec.path, &spec.source, span.start),
            source,
        }
    })?;
    Ok((table, data))
}

/// The report's headline as a run at `options.now` would show it, without drawing
/// anything: what an alert watching the report reads.
pub async fn headline(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    options: &RunOptions,
) -> Result<Option<f64>, PipelineError> {
    let window = window_for(spec, None, options.now, &options.limits.window).map_err(|source| {
        PipelineError::Period {
            report: spec.id.clone(),
            source,
        }
    })?;
    let run_date = today_in(spec.timezone, options.now);
    let (_, data) = query_window(warehouse, spec, window, run_date, options).await?;
    Ok(data.headline(spec.chart.headline).map(|(v, _)| v))
}

/// Runs CPU-bound `work` on the blocking pool, not on the async workers.
async fn off_runtime<T: Send + 'static>(
    spec: &ReportSpec,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(|| crate::priority::background(work))
        .await
        .map_err(|error| PipelineError::Stopped {
            report: spec.id.clone(),
            why: error.to_string(),
        })
}

/// The window the headline is compared with.
pub fn comparison_window(window: Window, compare: Compare) -> Option<Window> {
    let shift = |days: i64| Window {
        start: window.start - chrono::Duration::days(days),
        end: window.end - chrono::Duration::days(days),
    };
    match compare {
        Compare::PreviousPeriod => Some(window.previous()),
        Compare::PreviousWeek => Some(shift(7)),
        Compare::PreviousMonth => {
            let month_back =
                |d: NaiveDate| d.checked_sub_months(chrono::Months::new(1)).unwrap_or(d);
            let whole_months =
                window.start.day() == 1 && window.end.succ_opt().is_some_and(|d| d.day() == 1);
            let end = if whole_months {
                // The whole month(s) before: 1–30 November → 1–31 October.
                window
                    .end
                    .with_day(1)
                    .and_then(|d| d.pred_opt())
                    .unwrap_or(window.end)
            } else {
                month_back(window.end)
            };
            Some(Window {
                start: month_back(window.start),
                end,
            })
        }
        Compare::PreviousYear => {
            let year_back =
                |d: NaiveDate| d.checked_sub_months(chrono::Months::new(12)).unwrap_or(d);
            Some(Window {
                start: year_back(window.start),
                end: year_back(window.end),
            })
        }
        Compare::None => None,
    }
}

/// Runs one report: query the window and the comparison window, render, build the message.
pub async fn run(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    options: &RunOptions,
) -> Result<RunOutcome, PipelineError> {
    let started = Instant::now();
    // The report's own language, else the reader's: every word and number follows it.
    let locale = spec.chart.locale.unwrap_or(options.locale);
    let mut localized = spec.clone();
    localized.chart.locale = Some(locale);
    let spec = &localized;
    let window = window_for(spec, options.period, options.now, &options.limits.window).map_err(
        |source| PipelineError::Period {
            report: spec.id.clone(),
            source,
        },
    )?;
    let comparison = comparison_window(window, spec.chart.compare);
    let slot = slot_text(spec.timezone, options.slot.unwrap_or(options.now));
    let run_date = today_in(spec.timezone, options.now);
    let (table, data) = query_window(warehouse, spec, window, run_date, options).await?;
    let headline = data.headline(spec.chart.headline);
    let previous = match (&headline, comparison) {
        (Some(_), Some(comparison)) => {
            let (_, previous_data) =
                query_window(warehouse, spec, comparison, run_date, options).await?;
            // For `last`, name the day compared with, not the whole window.
            previous_data.headline(spec.chart.headline).map(|(v, at)| {
                let compared = match at {
                    Some(day) => render::day_text(locale, &day),
                    None => i18n::date_range(locale, comparison.start, comparison.end),
                };
                (v, compared)
            })
        }
        _ => None,
    };
    let mut pacing = None;
    if let Some((to_date, _)) = &headline {
        for target in &spec.targets {
            pacing = pace::pace(
                warehouse, spec, target, window, &data, *to_date, run_date, options,
            )
            .await?;
            if pacing.is_some() {
                break;
            }
        }
    }
    // Drawing and encoding the PNG is CPU work too: off the async workers.
    let (mut owned_spec, channel, thread) = (spec.clone(), options.channel.clone(), options.thread);
    if let Some(p) = &pacing {
        // A to-date series climbs toward its target: draw it.
        if spec.chart.headline == Headline::Last && owned_spec.chart.goal.is_none() {
            owned_spec.chart.goal = Some(Goal {
                value: p.target,
                label: Some(crate::tr!(locale, "chart-target")),
            });
        }
    }
    let mut actions = options.actions.clone().unwrap_or_else(|| Actions {
        asked: Asked::report(&spec.id, options.period.unwrap_or(spec.query.period)),
        dimensions: Vec::new(),
        why: spec.query.metric.as_ref().is_some_and(|m| m.explainable)
            || spec.chart.metric.as_ref().is_some_and(|m| m.explainable),
    });
    // Why? explains the headline's window against its comparison: only where the two are
    // separate windows and the headline is the window's (not its last day's).
    actions.why &= spec.chart.headline != Headline::Last
        && comparison.is_some_and(|c| c.end < window.start || window.end < c.start);
    let headline_for_render = headline.clone();
    let (table, data, drawn) = off_runtime(spec, move || {
        let drawn = render::render_run(RunFacts {
            spec: &owned_spec,
            table: &table,
            data: &data,
            window,
            headline: headline_for_render,
            previous,
            channel,
            slot,
            thread,
            actions: Some(actions),
            pacing,
        });
        (table, data, drawn)
    })
    .await?;
    let rendered = drawn.map_err(|source| PipelineError::Render {
        report: spec.id.clone(),
        source,
    })?;
    Ok(RunOutcome {
        rendered,
        window,
        comparison,
        headline: headline.map(|(v, _)| v),
        no_data: data.is_empty(),
        table,
        elapsed: started.elapsed(),
    })
}

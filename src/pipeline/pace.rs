//! Pacing a run against its metric's target: the period's target (written in the spec or
//! read from a mart table), the value to date, and last year's shape where asked for.

use chrono::NaiveDate;

use super::{PipelineError, RunOptions, job_for, query_window};
use crate::render::ChartData;
use crate::spec::target::{self, PaceMethod, Pacing, TargetSpec};
use crate::spec::target_table::{self, TableTarget};
use crate::spec::{Headline, ReportSpec, Window};
use crate::warehouse::reads::Reads;
use crate::warehouse::{Params, QueryJob, Warehouse, WarehouseError};

/// The pacing of a run against its metric's target: the value to date over the days that
/// have data (a window running into today counts to the last day with data), and for
/// last year's shape the same period a year earlier, queried the same way.
#[allow(clippy::too_many_arguments)]
pub(super) async fn pace(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    target: &TargetSpec,
    window: Window,
    data: &ChartData,
    to_date: f64,
    run_date: NaiveDate,
    options: &RunOptions,
) -> Result<Option<Pacing>, PipelineError> {
    let through = data
        .headline(Headline::Last)
        .and_then(|(_, at)| at?.parse::<NaiveDate>().ok())
        .filter(|d| *d >= window.start && *d <= window.end)
        .unwrap_or(window.end);
    let paced = Window {
        start: window.start,
        end: through,
    };
    let period_start = target.per.around(window.start).0;
    if period_start != window.start {
        return Ok(None);
    }
    let goal = match &target.table {
        None => target.value_for(period_start),
        Some(table) => table_goal(warehouse, spec, target, table, period_start, options).await,
    };
    if goal.is_none() {
        return Ok(None);
    }
    let last_year = if target.pace == PaceMethod::LastYear {
        let (whole, so_far) = target::last_year_windows(paced, target.per);
        let (_, whole_data) = query_window(warehouse, spec, whole, run_date, options).await?;
        let (_, so_far_data) = query_window(warehouse, spec, so_far, run_date, options).await?;
        whole_data
            .headline(spec.chart.headline)
            .zip(so_far_data.headline(spec.chart.headline))
            .map(|((w, _), (s, _))| (w, s))
    } else {
        None
    };
    Ok(target::pacing_against(
        target, goal, paced, to_date, last_year,
    ))
}

/// The target of the period starting `period_start`, read from the mart table. A period
/// the table has no row for is not paced; rows that disagree, or a table that cannot be
/// read, are not paced either and are logged for the report's author (`kpibot check
/// --dry-run` names a table it cannot read before a post does).
async fn table_goal(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    target: &TargetSpec,
    table: &str,
    period_start: NaiveDate,
    options: &RunOptions,
) -> Option<f64> {
    let job = job_for(spec, options.default_timeout, options.trigger);
    match read_table_target(warehouse, target, table, period_start, &job).await {
        Ok(TableTarget::Missing) => None,
        Ok(found) => match found.goal(table, period_start) {
            Ok(goal) => Some(goal),
            Err(why) => {
                tracing::warn!(report = %spec.id, metric = %target.metric, %why, "not paced");
                None
            }
        },
        Err(error) => {
            tracing::warn!(
                report = %spec.id,
                metric = %target.metric,
                %table,
                error = %crate::i18n::error_chain(&error),
                "the targets table cannot be read; the period is not paced"
            );
            None
        }
    }
}

/// What `table` says `target`'s period starting `period_start` is.
pub async fn read_table_target(
    warehouse: &dyn Warehouse,
    target: &TargetSpec,
    table: &str,
    period_start: NaiveDate,
    job: &QueryJob,
) -> Result<TableTarget, WarehouseError> {
    let (sql, params) = target_table::query(warehouse.dialect(), target, table, period_start);
    let answer = warehouse.query(&sql, &params, job).await?;
    Ok(target_table::answer(&answer))
}

/// `reads` with what `targets` (the queries reading targets tables) read: what access is
/// decided on besides the query itself. A target query whose reads cannot be established
/// makes the whole unknown: fail closed.
pub async fn with_target_reads(
    warehouse: &dyn Warehouse,
    mut reads: Reads,
    targets: Vec<(String, Params)>,
    job: &QueryJob,
) -> Reads {
    for (sql, params) in targets {
        reads = reads.union(warehouse.reads(&sql, &params, job).await);
    }
    reads
}

/// The queries reading `targets` kept in mart tables for a window from the start of their
/// period (none for another window: it is not paced).
pub fn table_target_queries(
    warehouse: &dyn Warehouse,
    targets: &[TargetSpec],
    window: Window,
) -> Vec<(String, Params)> {
    targets
        .iter()
        .filter_map(|target| {
            let table = target.table.as_deref()?;
            // Read only for a window from a period's start, as `pace` reads it.
            let period_start = target.per.around(window.start).0;
            if period_start != window.start {
                return None;
            }
            Some(target_table::query(
                warehouse.dialect(),
                target,
                table,
                period_start,
            ))
        })
        .collect()
}

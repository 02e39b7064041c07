//! `kpibot check --dry-run` for targets kept in a mart table: the warehouse prepares the
//! query that reads them, so a misspelled table or a missing column is named before a
//! post goes out unpaced; and what a targets table reads, for `check`'s access proof.

use chrono::NaiveDate;

use crate::spec::target_table::{self, TARGET_TABLE_COLUMNS};
use crate::spec::{Diagnostic, TargetSpec};
use crate::warehouse::reads::Reads;
use crate::warehouse::{QueryJob, Trigger, Warehouse};

/// Problems with `targets`' tables, each at its `[[target]]`.
pub async fn dry_run_targets(
    warehouse: &dyn Warehouse,
    targets: &[TargetSpec],
    timeout: std::time::Duration,
    today: NaiveDate,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for target in targets {
        let Some(table) = &target.table else {
            continue;
        };
        let period_start = target.per.around(today).0;
        let (sql, params) = target_table::query(warehouse.dialect(), target, table, period_start);
        let job = QueryJob::new(timeout).for_report(&target.metric, Trigger::Cli);
        if let Err(error) = warehouse.dry_run(&sql, &params, &job).await {
            problems.push(
                Diagnostic::new(
                    &target.path,
                    target.span.clone(),
                    format!(
                        "the targets of `{}` cannot be read from `{table}`: {error}",
                        target.metric
                    ),
                )
                .with_hint(format!(
                    "a targets table has the columns {}; checked with {}",
                    TARGET_TABLE_COLUMNS.join(", "),
                    warehouse.describe()
                )),
            );
        }
    }
    problems
}

/// What `targets` kept in mart tables read, for the access check of a report that shows
/// them: as `planner` proves it where there is one, else each table whole.
pub async fn target_reads(
    planner: Option<&dyn Warehouse>,
    targets: &[TargetSpec],
    timeout: std::time::Duration,
    today: NaiveDate,
) -> Reads {
    let mut reads = Reads::nothing();
    for target in targets {
        let Some(table) = &target.table else {
            continue;
        };
        let one = match planner {
            Some(warehouse) => {
                let start = target.per.around(today).0;
                let (sql, params) = target_table::query(warehouse.dialect(), target, table, start);
                let job = QueryJob::new(timeout).for_report(&target.metric, Trigger::Cli);
                warehouse.reads(&sql, &params, &job).await
            }
            None => Reads::whole_table(table),
        };
        reads = reads.union(one);
    }
    reads
}

//! `kpibot check --dry-run` for targets kept in a mart table: the warehouse prepares the
//! query that reads them, so a misspelled table or a missing column is named before a
//! post goes out unpaced.

use chrono::NaiveDate;

use crate::spec::target_table::{self, TARGET_TABLE_COLUMNS};
use crate::spec::{Diagnostic, TargetSpec};
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

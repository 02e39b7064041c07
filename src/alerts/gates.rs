//! Which gates guard what an alert posts: its metric's or report's own lists and the
//! policies over what it watches (hand-written `rows`/`stale` SQL as the parser reads it);
//! `delivery` adds the policies over what the warehouse proves at posting time.

use crate::catalog::Catalog;
use crate::catalog::access::{Gate, base_columns, metric_gates, query_gates, report_gates};
use crate::spec::AlertSpec;
use crate::spec::alert::{Condition, Watch};
use crate::warehouse::reads::read_sql;

/// The watched metric's or report's own access lists.
pub(super) fn watched_access<'c>(
    catalog: &'c Catalog,
    alert: &AlertSpec,
) -> Option<&'c crate::spec::Access> {
    match &alert.watch {
        Some(Watch::Metric { metric, .. }) => catalog.metric(metric).map(|m| &m.access),
        Some(Watch::Report { report, .. }) => catalog.get(report).map(|r| &r.access),
        None => None,
    }
}

/// The gates guarding what `alert` posts; hand-written SQL is read in `dialect`.
pub fn alert_gates(
    catalog: &Catalog,
    alert: &AlertSpec,
    dialect: crate::warehouse::Dialect,
) -> Vec<Gate> {
    match &alert.watch {
        Some(Watch::Metric {
            metric,
            by,
            filters,
            ..
        }) => match catalog.metric(metric) {
            Some(m) => {
                let mut columns = base_columns(m);
                columns.extend(by.iter().map(String::as_str));
                columns.extend(filters.iter().map(|(d, _)| d.as_str()));
                metric_gates(catalog, m, &columns)
            }
            None => Vec::new(),
        },
        Some(Watch::Report { report, .. }) => catalog
            .get(report)
            .map(|r| report_gates(catalog, r))
            .unwrap_or_default(),
        None => match &alert.condition {
            Condition::Rows { sql } => query_gates(catalog, &read_sql(sql, dialect).established()),
            Condition::Stale(f) => query_gates(catalog, &read_sql(&f.sql, dialect).established()),
            _ => Vec::new(),
        },
    }
}

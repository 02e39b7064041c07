//! Which gates guard what an alert posts: its metric's or report's own lists and the
//! policies over what it watches (hand-written `rows`/`stale` SQL as the parser reads it);
//! `delivery` adds the policies over what the warehouse proves at posting time.

use crate::catalog::Catalog;
use crate::catalog::access::{Gate, gates};
use crate::spec::alert::Watch;
use crate::spec::alert_checks::alert_cover;
use crate::spec::{Access, AlertSpec};

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

/// The gates guarding what `alert` posts; hand-written SQL is read in `dialect`. The
/// same gathering `check` proves the alert's target against (`spec::alert_checks`).
pub fn alert_gates(
    catalog: &Catalog,
    alert: &AlertSpec,
    dialect: crate::warehouse::Dialect,
) -> Vec<Gate> {
    alert_cover(
        alert,
        dialect,
        |name| catalog.metric(name),
        |id| catalog.get(id),
        catalog.policies(),
        catalog.targets(),
    )
    .map_or_else(Vec::new, |cover| {
        let mut all = match cover.own {
            Some((access, owner, name)) => gates(access, owner, name, cover.policies),
            None => gates(&Access::default(), "", "", cover.policies),
        };
        for (access, owner, name) in cover.inputs {
            all.extend(gates(access, owner, name, []));
        }
        all
    })
}

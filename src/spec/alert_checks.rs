//! Checks on alerts across files: names are unique, the watched metric (with its `by` and
//! `where` dimensions) or report exists, and the alert's target may see what it posts
//! under the same access rules and data policies as everything else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::alert::{AlertSpec, Condition, Watch, is_user_target};
use super::diagnostic::did_you_mean;
use super::names::dimension_of;
use super::policy::{allows_channel, base_columns, metric_policies, reads_policies};
use super::policy_checks::report_policies;
use super::{Access, Diagnostic, LoadedFile, MetricSpec, PolicySpec, ReportSpec};
use crate::warehouse::reads::{Reads, read_sql};

/// Checks across files: alert names are unique, and every alert's metric (with its `by`
/// and `where` dimensions) or report exists. A file with a problem loses its alerts.
pub(super) fn flag_alert_problems(files: &mut [LoadedFile], dialect: crate::warehouse::Dialect) {
    let metric_specs: BTreeMap<String, MetricSpec> = files
        .iter()
        .flat_map(|f| &f.metrics)
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    let report_specs: BTreeMap<String, ReportSpec> = files
        .iter()
        .filter_map(|f| f.spec.as_ref().map(|s| (s.id.clone(), s.clone())))
        .collect();
    let reports: Vec<String> = report_specs.keys().cloned().collect();
    let policies: Vec<PolicySpec> = files.iter().flat_map(|f| f.policies.clone()).collect();
    let targets: Vec<super::TargetSpec> = files.iter().flat_map(|f| f.targets.clone()).collect();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for alert in file.alerts.iter_mut() {
            if let Some(first) = seen.get(&alert.name.to_lowercase()) {
                problems.push(Diagnostic::duplicate(
                    &file.path,
                    alert.span.clone(),
                    "alert",
                    &alert.name,
                    first,
                ));
            } else {
                seen.insert(alert.name.to_lowercase(), file.path.clone());
            }
            let alert_span = alert.span.clone();
            match &mut alert.watch {
                Some(Watch::Metric {
                    metric,
                    by,
                    filters,
                    span,
                }) => match metric_specs.get(metric.as_str()) {
                    None => problems.push(
                        Diagnostic::new(&file.path, span.clone(), format!("no metric `{metric}`"))
                            .maybe_hint(did_you_mean(
                                metric,
                                metric_specs.keys().map(String::as_str),
                            ))
                            .with_label("alerts watch a `[[metric]]` of the catalog"),
                    ),
                    Some(spec) => {
                        // Dimensions by their labels and aliases too, read as `/kpi` reads
                        // them (`where = { ロール = "student" }`): kept as their ids.
                        let asked = by.iter_mut().chain(filters.iter_mut().map(|(d, _)| d));
                        for dimension in asked {
                            if let Some((id, _)) = dimension_of(spec, dimension) {
                                *dimension = id.to_string();
                            } else {
                                let dimensions: Vec<&str> =
                                    spec.dimensions.keys().map(String::as_str).collect();
                                problems.push(
                                    Diagnostic::new(
                                        &file.path,
                                        alert_span.clone(),
                                        format!("metric `{metric}` has no dimension `{dimension}`"),
                                    )
                                    .with_hint(format!(
                                        "its dimensions: {}",
                                        if dimensions.is_empty() {
                                            "none".to_string()
                                        } else {
                                            dimensions.join(", ")
                                        }
                                    )),
                                );
                            }
                        }
                    }
                },
                Some(Watch::Report { report, span }) if !reports.contains(report) => problems.push(
                    Diagnostic::new(&file.path, span.clone(), format!("no report `{report}`"))
                        .maybe_hint(did_you_mean(report, reports.iter().map(String::as_str))),
                ),
                _ => {}
            }
            if let (
                Condition::Pace { per, .. },
                Some(Watch::Metric {
                    metric,
                    filters,
                    span,
                    ..
                }),
            ) = (&alert.condition, &alert.watch)
                && metric_specs.contains_key(metric)
                && let Err(error) = super::target::pace_target(
                    &targets,
                    metric,
                    &super::alert::as_filters(filters),
                    *per,
                )
            {
                let hint = match error {
                    super::target::PaceTargetError::None(_) => {
                        "add a `[[target]]` for this metric with the alert's `where` (none for its total)"
                    }
                    super::target::PaceTargetError::Ambiguous(_) => {
                        "write `pace = { below = 90, per = \"month\" }` (or `\"week\"`)"
                    }
                };
                problems.push(
                    Diagnostic::new(&file.path, span.clone(), error.to_string()).with_hint(hint),
                );
            }
            problems.extend(target_problems(
                &file.path,
                alert,
                dialect,
                &metric_specs,
                &report_specs,
                &policies,
                &targets,
            ));
        }
        if !problems.is_empty() {
            file.diagnostics.extend(problems);
            file.diagnostics.sort_by_key(|d| d.span.start);
            file.spec = None;
            file.metrics.clear();
            file.policies.clear();
            file.alerts.clear();
        }
    }
}

/// Access holds on alerts too: an alert may only post what its target could read. The
/// watched metric's or report's own allow-lists and every data policy covering what it
/// reads must let the target (a channel, or a person for a DM) see it.
fn target_problems(
    path: &Path,
    alert: &AlertSpec,
    dialect: crate::warehouse::Dialect,
    metrics: &BTreeMap<String, MetricSpec>,
    reports: &BTreeMap<String, ReportSpec>,
    policies: &[PolicySpec],
    targets: &[super::TargetSpec],
) -> Vec<Diagnostic> {
    let target = alert.channel.as_str();
    let person = is_user_target(target);
    let lets_see = |access: &Access| {
        if person {
            // As for a person asking: listed by name (group membership cannot be known
            // here, so a group alone does not let a direct message through).
            access
                .allowed_users
                .iter()
                .any(|u| u == target.trim_start_matches('@'))
        } else {
            allows_channel(access, target)
        }
    };
    let Some(AlertCover {
        own,
        inputs,
        policies: covering,
        what,
    }) = alert_cover(
        alert,
        dialect,
        |name| metrics.get(name),
        |id| reports.get(id),
        policies,
        targets,
    )
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let lists = own.into_iter().chain(inputs).map(|(access, ..)| access);
    if lists.filter(|a| a.has_lists()).any(|a| !lets_see(a)) {
        problems.push(
            Diagnostic::new(
                path,
                alert.span.clone(),
                format!(
                    "alert `{}` posts {what} to `{target}`, which its access does not allow",
                    alert.name
                ),
            )
            .with_hint(
                "post to a channel or person the metric's or report's `allowed_*` lists name",
            ),
        );
    }
    for policy in covering {
        if !lets_see(&policy.allowed) {
            problems.push(
                Diagnostic::new(
                    path,
                    alert.span.clone(),
                    format!(
                        "alert `{}` posts {what} to `{target}`, which policy `{}` does not allow to see {}",
                        alert.name,
                        policy.name,
                        policy.data()
                    ),
                )
                .with_hint(policy.post_elsewhere_hint()),
            );
        }
    }
    problems
}

/// What guards an alert's posts: the watched metric's or report's own lists (with its
/// owner and name) and every data policy covering what the alert reads — its metric with
/// the `by` and `where` dimensions, its report's SQL, or its own `rows`/`stale` SQL as
/// the parser reads it. Gathered here once, for `check` (over the files being loaded) and
/// for posting (over the catalog, `alerts::gates`).
pub struct AlertCover<'a> {
    /// The entry's own `[access]`, its owner and its name; `None` for hand-written SQL.
    pub own: Option<(&'a Access, &'a str, &'a str)>,
    /// A derived metric's inputs' own lists, which guard it as well.
    pub inputs: Vec<(&'a Access, &'a str, &'a str)>,
    pub policies: Vec<&'a PolicySpec>,
    /// What the alert posts, in words for `check`'s messages: "metric `x`".
    pub what: String,
}

/// The [`AlertCover`] of `alert`, with metrics and reports looked up by name; `None`
/// when what it watches does not exist (reported elsewhere) or it reads nothing.
pub fn alert_cover<'a>(
    alert: &AlertSpec,
    dialect: crate::warehouse::Dialect,
    metric: impl Fn(&str) -> Option<&'a MetricSpec>,
    report: impl Fn(&str) -> Option<&'a ReportSpec>,
    policies: &'a [PolicySpec],
    targets: &[super::TargetSpec],
) -> Option<AlertCover<'a>> {
    Some(match &alert.watch {
        Some(Watch::Metric {
            metric: name,
            by,
            filters,
            ..
        }) => {
            let m = metric(name)?;
            let mut columns = base_columns(m);
            columns.extend(by.iter().map(String::as_str));
            columns.extend(filters.iter().map(|(d, _)| d.as_str()));
            let mut covering = metric_policies(m, &columns, policies);
            // A pace alert shows its target: one kept in a mart table is read too.
            if let Condition::Pace { per, .. } = &alert.condition
                && let Ok(target) = super::target::pace_target(
                    targets,
                    name,
                    &super::alert::as_filters(filters),
                    *per,
                )
                && let Some(table) = &target.table
            {
                for policy in reads_policies(&Reads::whole_table(table), policies) {
                    if !covering.iter().any(|c| c.name == policy.name) {
                        covering.push(policy);
                    }
                }
            }
            AlertCover {
                own: Some((&m.access, m.owner.as_str(), m.name.as_str())),
                inputs: m.input_access(),
                policies: covering,
                what: format!("metric `{name}`"),
            }
        }
        Some(Watch::Report { report: id, .. }) => {
            let r = report(id)?;
            AlertCover {
                own: Some((&r.access, r.owner.as_str(), r.id.as_str())),
                inputs: Vec::new(),
                policies: report_policies(r, policies),
                what: format!("report `{id}`"),
            }
        }
        None => {
            let sql = match &alert.condition {
                Condition::Rows { sql } => sql.as_str(),
                Condition::Stale(f) => f.sql.as_str(),
                _ => return None,
            };
            AlertCover {
                own: None,
                inputs: Vec::new(),
                policies: reads_policies(&read_sql(sql, dialect).established(), policies),
                what: "its query".to_string(),
            }
        }
    })
}

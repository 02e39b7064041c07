//! Reports on a catalog metric (`[query] metric = "signups_mtd"`): linked once every file
//! is read — the metric found, `by` and `where` named as `/kpi` names them, the SQL
//! generated as for a `/kpi` answer, and the metric's targets attached, so a morning post
//! shows its pacing. A report written in SQL naming the metric its total headline is
//! (`[chart] metric`) is checked here too, so its posts can offer Why?.

use std::collections::BTreeMap;

use super::metric_sql::{Dialect, Grain, metric_sql};
use super::names::dimension_of;
use super::{Diagnostic, LoadedFile, MetricSpec, TargetSpec};
use crate::warehouse::reads::read_sql;

/// Generates the SQL of every report on a metric; a report whose metric or dimension is
/// unknown, or whose metric has access lists of its own (which a report's `[access]` would
/// have to restate), is refused with a diagnostic at its `metric = …`.
pub fn link_metric_reports(files: &mut [LoadedFile], dialect: Dialect) {
    let metrics: BTreeMap<String, MetricSpec> = files
        .iter()
        .flat_map(|f| f.metrics.iter())
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    let targets: Vec<TargetSpec> = files
        .iter()
        .flat_map(|f| f.targets.iter().cloned())
        .collect();
    for file in files.iter_mut() {
        let Some(spec) = file.spec.as_mut() else {
            continue;
        };
        // A report in SQL naming the metric its headline is: the metric must exist and
        // split into parts, or its posts would offer a Why? that could only fail.
        if let Some(headline) = spec.chart.metric.as_mut() {
            let at = |message: String, hint: &str| {
                Some(
                    Diagnostic::new(&file.path, headline.span.clone(), message)
                        .with_hint(hint.to_string()),
                )
            };
            let problem = match metrics.get(&headline.name) {
                _ if spec.query.metric.is_some() => at(
                    "`[chart] metric` is for a report written in SQL; this one is on `[query] metric` already".into(),
                    "remove `[chart] metric`: the report's own metric is the one Why? explains",
                ),
                _ if spec.chart.headline != super::Headline::Total => at(
                    format!(
                        "`metric = \"{}\"` names the metric the headline totals, but `headline` is not `total`",
                        headline.name
                    ),
                    "set `headline = \"total\"` (Why? explains the window's total), or remove `metric`",
                ),
                Some(metric) if metric.access.has_lists() || metric.access.restricted => at(
                    format!(
                        "metric `{}` has access lists of its own; a post offering to explain it would reach past them",
                        metric.name
                    ),
                    "lift the metric's lists to a policy on its table, or remove `metric`",
                ),
                Some(metric)
                    if super::explain_sql::explainable(metric) && metric.is_additive() =>
                {
                    headline.explainable = true;
                    None
                }
                Some(_) => Some(
                    Diagnostic::new(
                        &file.path,
                        headline.span.clone(),
                        format!(
                            "metric `{}` is not a sum or count that splits into its members' parts (a ratio or average, a running total, a derived metric, a distinct count, a min or max, or no dimension), so a post's total cannot be explained by it",
                            headline.name
                        ),
                    )
                    .with_hint("name a sum or count over one table, or remove `metric`"),
                ),
                None => Some(
                    Diagnostic::new(
                        &file.path,
                        headline.span.clone(),
                        format!("no metric is named `{}`", headline.name),
                    )
                    .maybe_hint(
                        super::diagnostic::closest(
                            &headline.name,
                            metrics.keys().map(String::as_str),
                        )
                        .map(|c| format!("did you mean `{c}`?")),
                    ),
                ),
            };
            if let Some(problem) = problem {
                file.diagnostics.push(problem);
                file.spec = None;
                continue;
            }
        }
        let Some(asked) = spec.query.metric.clone() else {
            continue;
        };
        let problem = |message: String| Diagnostic::new(&file.path, asked.span.clone(), message);
        let Some(metric) = metrics.get(&asked.name) else {
            let d = problem(format!("no metric is named `{}`", asked.name)).maybe_hint(
                super::diagnostic::closest(&asked.name, metrics.keys().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?")),
            );
            file.diagnostics.push(d);
            file.spec = None;
            continue;
        };
        if metric.access.has_lists()
            || metric.access.restricted
            || !metric.input_access().is_empty()
        {
            file.diagnostics.push(
                problem(format!(
                    "metric `{}` has access lists of its own; a scheduled report on it would post past them",
                    metric.name
                ))
                .with_hint("write the report's SQL and `[access]`, or lift the metric's lists to a policy on its table"),
            );
            file.spec = None;
            continue;
        }
        let column = |name: &str| dimension_of(metric, name).map(|(c, _)| c.to_string());
        let by = match &asked.by {
            None => None,
            Some(name) => match column(name) {
                Some(c) => Some(c),
                None => {
                    file.diagnostics.push(problem(format!(
                        "`{name}` is not a dimension of `{}`",
                        metric.name
                    )));
                    file.spec = None;
                    continue;
                }
            },
        };
        let mut filters = Vec::new();
        for filter in &asked.filters {
            match column(&filter.dimension) {
                Some(c) => filters.push(super::metric::Filter {
                    dimension: c,
                    values: filter.values.clone(),
                }),
                None => {
                    file.diagnostics.push(problem(format!(
                        "`{}` is not a dimension of `{}`",
                        filter.dimension, metric.name
                    )));
                }
            }
        }
        if filters.len() != asked.filters.len() {
            file.spec = None;
            continue;
        }
        let (sql, params) = metric_sql(dialect, metric, asked.grain, by.as_deref(), &filters);
        // Kept as columns, for the Why? button (which explains the metric as filtered).
        if let Some(linked) = spec.query.metric.as_mut() {
            linked.filters = filters.clone();
            linked.explainable = super::explain_sql::explainable(metric);
        }
        spec.query.reads = read_sql(&sql, dialect);
        spec.query.sql = sql;
        spec.query.params.extend(params);
        // Paced as a `/kpi` answer is: daily and unsplit.
        if by.is_none() && asked.grain == Grain::Day {
            spec.targets = targets
                .iter()
                .filter(|t| t.metric == metric.name && t.applies_to(&filters))
                .cloned()
                .collect();
        }
    }
}

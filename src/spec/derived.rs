//! Derived metrics linked to their inputs once every file is read: each name of an
//! expression must be a metric over a table (simple or cumulative), and a derived
//! metric's dimensions are the ones all its inputs share.

use std::collections::BTreeMap;

use super::diagnostic::closest;
use super::metric::MetricKind;
use super::{Diagnostic, LoadedFile, MetricSpec};

/// Fills in every derived metric's inputs; a metric whose input is unknown or itself
/// derived is refused with a diagnostic pointing at the name in its expression.
pub fn link_derived(files: &mut [LoadedFile]) {
    let bases: BTreeMap<String, MetricSpec> = files
        .iter()
        .flat_map(|f| f.metrics.iter())
        .filter(|m| !matches!(m.kind, MetricKind::Derived(_)))
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    let derived_names: Vec<String> = files
        .iter()
        .flat_map(|f| f.metrics.iter())
        .filter(|m| matches!(m.kind, MetricKind::Derived(_)))
        .map(|m| m.name.clone())
        .collect();
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for metric in file.metrics.iter_mut() {
            let MetricKind::Derived(derived) = &mut metric.kind else {
                continue;
            };
            let at = |name: &str| -> std::ops::Range<usize> {
                let found = derived
                    .expr
                    .names()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, r)| r);
                match (derived.text_offset, found) {
                    (Some(start), Some(r)) => start + r.start..start + r.end,
                    _ => derived.span.clone(),
                }
            };
            let mut spans = Vec::new();
            for input in &derived.inputs {
                spans.push(at(&input.name));
            }
            for (input, span) in derived.inputs.iter_mut().zip(spans) {
                match bases.get(&input.metric) {
                    Some(base) => {
                        let mut linked = base.clone();
                        linked.fixed_filters.extend(input.filters.iter().cloned());
                        input.linked = Some(Box::new(linked));
                    }
                    None if derived_names.contains(&input.metric) => problems.push(
                        Diagnostic::new(
                            &file.path,
                            span,
                            format!(
                                "`{}` is a derived metric; a derived metric's inputs are metrics over a table",
                                input.metric
                            ),
                        )
                        .with_hint(format!(
                            "write `{}`'s expression into this one, over its inputs",
                            input.metric
                        )),
                    ),
                    None => problems.push(
                        Diagnostic::new(
                            &file.path,
                            span,
                            format!("no metric is named `{}`", input.metric),
                        )
                        .maybe_hint(
                            closest(&input.metric, bases.keys().map(String::as_str))
                                .map(|c| format!("did you mean `{c}`?")),
                        ),
                    ),
                }
            }
            if derived.inputs.iter().any(|i| i.linked.is_none()) {
                continue;
            }
            // An input answered only privately makes the derived metric private too.
            if derived.linked().any(|m| m.access.restricted) {
                metric.access.restricted = true;
            }
            let shared = shared_dimensions(derived.linked());
            if metric.dimensions.is_empty() {
                metric.dimension_aliases = derived
                    .linked()
                    .next()
                    .map(|m| m.dimension_aliases.clone())
                    .unwrap_or_default();
                metric
                    .dimension_aliases
                    .retain(|k, _| shared.contains_key(k));
                metric.dimensions = shared;
            } else {
                for name in metric.dimensions.keys() {
                    if !shared.contains_key(name) {
                        problems.push(
                            Diagnostic::new(
                                &file.path,
                                derived.span.clone(),
                                format!(
                                    "dimension `{name}` of `{}` is not a dimension of every input",
                                    metric.name
                                ),
                            )
                            .with_hint(
                                "a derived metric splits only by dimensions all its inputs have",
                            ),
                        );
                    }
                }
            }
        }
        if !problems.is_empty() {
            // A dbt metric over one kpibot cannot compute is itself unavailable, with
            // the reason; in a spec file it is the author's error.
            if file.is_dbt() {
                file.unsupported.extend(problems);
            } else {
                file.diagnostics.extend(problems);
            }
            file.metrics.retain(
                |m| !matches!(&m.kind, MetricKind::Derived(d) if d.linked().count() < d.inputs.len()),
            );
        }
    }
}

/// The dimensions (column → label of the first input) every one of `inputs` has.
fn shared_dimensions<'m>(
    mut inputs: impl Iterator<Item = &'m MetricSpec>,
) -> BTreeMap<String, String> {
    let Some(first) = inputs.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.dimensions.clone();
    for other in inputs {
        shared.retain(|k, _| other.dimensions.contains_key(k));
    }
    shared
}

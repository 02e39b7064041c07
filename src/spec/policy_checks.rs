//! The checks between policies and what they cover, across files: a report's policies
//! from its SQL, an entry's `[access]` never wider than a policy over it, a schedule never
//! posting covered data where a policy does not allow it, and policy names unique.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::LoadedFile;
use super::access::Access;
use super::diagnostic::Diagnostic;
use super::policy::{
    PolicySpec, allows_channel, metric_columns, metric_policies, reads_policies, wider_than,
};
use super::report::ReportSpec;

/// The policies that cover a report as far as its SQL text tells (views at their word;
/// constructs the parser cannot see into count as reading everything, so every policy
/// covers them): those whose table (or, for a column policy, one of whose columns) the
/// report's SQL reads. What the warehouse proves at send time may add more.
pub fn report_policies<'p>(report: &ReportSpec, policies: &'p [PolicySpec]) -> Vec<&'p PolicySpec> {
    reads_policies(&report.query.reads.established(), policies)
}

/// Checks every file against every policy (policies may live in any file): duplicate
/// policy names, an entry's `[access]` wider than a policy that covers it, and a schedule
/// that posts covered data to a channel a policy does not allow.
pub(super) fn flag_policy_problems(files: &mut [LoadedFile]) {
    let policies: Vec<PolicySpec> = files.iter().flat_map(|f| f.policies.clone()).collect();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for policy in &policies {
        if let Some(first) = seen.get(&policy.name) {
            duplicates.push((policy.clone(), first.clone()));
        } else {
            seen.insert(policy.name.clone(), policy.path.clone());
        }
    }
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for (policy, first) in duplicates.iter().filter(|(p, _)| p.path == file.path) {
            problems.push(Diagnostic::duplicate(
                &file.path,
                policy.span.clone(),
                "policy",
                &policy.name,
                first,
            ));
        }
        // SQL the parser cannot see into is left to the warehouse: `check` asks its
        // planner (or dry run) and fails closed without it, and every post is decided
        // at send time on what the warehouse proves.
        if let Some(report) = &file.spec
            && report.query.reads.established().unknown().is_none()
        {
            problems.extend(report_policy_problems(
                &file.path,
                report,
                &report_policies(report, &policies),
            ));
        }
        for metric in &file.metrics {
            for policy in metric_policies(metric, &metric_columns(metric), &policies) {
                problems.extend(wider_problems(
                    &file.path,
                    &metric.access,
                    policy,
                    "the metric",
                ));
            }
        }
        if !problems.is_empty() {
            file.diagnostics.extend(problems);
            file.spec = None;
            file.metrics.clear();
            file.policies.clear();
        }
    }
}

/// What is wrong between a report and the policies covering it: its `[access]` wider than
/// a policy, or a schedule posting to a channel a policy does not allow.
pub fn report_policy_problems(
    path: &Path,
    report: &ReportSpec,
    covering: &[&PolicySpec],
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for policy in covering {
        problems.extend(wider_problems(path, &report.access, policy, "[access]"));
        for schedule in &report.schedules {
            if !allows_channel(&policy.allowed, &schedule.channel) {
                problems.push(
                    Diagnostic::new(
                        path,
                        schedule.span.clone(),
                        format!(
                            "this schedule posts to `{}`, which policy `{}` does not allow to see {}",
                            schedule.channel,
                            policy.name,
                            policy.data()
                        ),
                    )
                    .with_hint(policy.post_elsewhere_hint()),
                );
            }
        }
    }
    problems
}

fn wider_problems(path: &Path, own: &Access, policy: &PolicySpec, whose: &str) -> Vec<Diagnostic> {
    wider_than(own, policy)
        .into_iter()
        .map(|what| {
            Diagnostic::new(
                path,
                own.span.clone(),
                format!(
                    "{whose} allows {what}, which policy `{}` does not: an entry's access may narrow its policies, never widen them",
                    policy.name
                ),
            )
            .with_hint(format!(
                "remove it here, or ask {} to allow it in policy `{}` ({})",
                policy.owner,
                policy.name,
                policy.path.display()
            ))
        })
        .collect()
}

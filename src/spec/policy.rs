//! `[[policy]]`: who may see a warehouse table, or some of its columns — declared once, on
//! the data, in any file under `reports/`. Every catalog entry that reads the data is
//! covered: a metric on the table (for a column policy, when a question measures, filters
//! or splits by the column) and every report whose SQL reads it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::LoadedFile;
use super::access::Access;
use super::diagnostic::Diagnostic;
use super::metric::{MetricSpec, measure_columns};
use super::report::ReportSpec;
use super::walk::{Reader, Tbl, is_identifier};
use crate::warehouse::reads::{Reads, TableName};

/// A data access policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub name: String,
    pub description: String,
    /// The table, as the SQL names it: `mart.daily_active_users`.
    pub table: String,
    /// Only these columns of the table; empty: the whole table.
    pub columns: Vec<String>,
    /// Who to ask for access.
    pub owner: String,
    /// Who may see the data: channels (IDs or `#names`), users, user groups.
    pub allowed: Access,
    pub path: PathBuf,
    /// Where the `[[policy]]` entry is written.
    pub span: Range<usize>,
}

impl PolicySpec {
    /// Whether the policy governs `column` of `table` (every column, for a table policy).
    pub fn governs(&self, table: &str, column: &str) -> bool {
        self.covers_table(table)
            && (self.columns.is_empty()
                || self.columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
    }

    /// Whether the policy is about `table` (either name may leave the catalog, project or
    /// dataset open: `mart.t` is `proj.mart.t`).
    pub fn covers_table(&self, table: &str) -> bool {
        TableName::parse(&self.table).may_be(&TableName::parse(table))
    }

    /// The policy in words: `mart.t` or `mart.t (prefecture)`.
    pub fn data(&self) -> String {
        if self.columns.is_empty() {
            format!("`{}`", self.table)
        } else {
            format!("`{}` ({})", self.table, self.columns.join(", "))
        }
    }

    /// What to do about a post to a channel this policy does not allow.
    pub fn post_elsewhere_hint(&self) -> String {
        format!(
            "post to a channel the policy allows ({}), or ask {} to add this one to the policy in {}",
            self.allowed.allowed_channels.join(", "),
            self.owner,
            self.path.display()
        )
    }
}

pub(super) const POLICY_KEYS: [&str; 8] = [
    "name",
    "description",
    "table",
    "columns",
    "owner",
    "allowed_channels",
    "allowed_users",
    "allowed_usergroups",
];

impl Reader<'_> {
    pub(super) fn policies(&mut self, root: &Tbl) -> Option<Vec<PolicySpec>> {
        self.array_of_tables(
            root,
            "policy",
            "write each policy as `[[policy]]` with name, table, owner and who is allowed",
            |r, t| r.policy(t),
        )
    }

    fn policy(&mut self, t: &Tbl) -> Option<PolicySpec> {
        self.check_keys(t, &POLICY_KEYS);
        let name = self.string(t, "name", true);
        let description = self.string(t, "description", false);
        let table = self.string(t, "table", true);
        let columns = self.string_list(t, "columns");
        let owner = self.string(t, "owner", true);
        let allowed = self.access(t);
        let name = name?;
        if !is_identifier(name.get_ref()) {
            self.error(
                name.span(),
                format!("`{}` cannot be a policy name", name.get_ref()),
            )
            .hint = Some("use letters, digits and `_`, e.g. `prefecture_detail`".into());
            return None;
        }
        let table = table?;
        if !table.get_ref().split('.').all(is_identifier) {
            self.error(
                table.span(),
                format!("`{}` is not a table name", table.get_ref()),
            )
            .hint =
                Some("write the table as the SQL names it, e.g. `mart.daily_active_users`".into());
            return None;
        }
        let columns = columns?;
        if let Some(bad) = columns.iter().find(|c| !is_identifier(c)) {
            self.error(t.anchor.clone(), format!("`{bad}` is not a column name"));
            return None;
        }
        let mut allowed = allowed?;
        if allowed.restricted || !allowed.has_lists() {
            let message = if allowed.restricted {
                "`restricted` belongs in a report's [access]; a policy says who may see data"
            } else {
                "a policy must allow someone: set allowed_channels, allowed_users or allowed_usergroups"
            };
            self.error(t.anchor.clone(), message);
            return None;
        }
        allowed.span = t.anchor.clone();
        Some(PolicySpec {
            name: name.into_inner(),
            description: description.map(|d| d.into_inner()).unwrap_or_default(),
            table: table.into_inner(),
            columns,
            owner: owner?.into_inner(),
            allowed,
            path: self.path.to_path_buf(),
            span: t.anchor.clone(),
        })
    }
}

/// The policies that cover a report as far as its SQL text tells (views at their word;
/// constructs the parser cannot see into count as reading everything, so every policy
/// covers them): those whose table (or, for a column policy, one of whose columns) the
/// report's SQL reads. What the warehouse proves at send time may add more.
pub fn report_policies<'p>(report: &ReportSpec, policies: &'p [PolicySpec]) -> Vec<&'p PolicySpec> {
    reads_policies(&report.query.reads.established(), policies)
}

/// The policies covering what a query reads: a table policy when it reads the table, a
/// column policy when it reads one of the columns. Reads that are not known are covered
/// by every policy.
pub fn reads_policies<'p>(reads: &Reads, policies: &'p [PolicySpec]) -> Vec<&'p PolicySpec> {
    policies
        .iter()
        .filter(|p| {
            if p.columns.is_empty() {
                reads.reads_table(&p.table)
            } else {
                p.columns.iter().any(|c| reads.reads_column(&p.table, c))
            }
        })
        .collect()
}

/// The policies that cover a metric question touching `columns` (what it measures,
/// filters or splits by): every policy on the metric's table, and a column policy when
/// one of its columns is touched.
pub fn metric_policies<'p>(
    metric: &MetricSpec,
    columns: &[&str],
    policies: &'p [PolicySpec],
) -> Vec<&'p PolicySpec> {
    policies
        .iter()
        .filter(|p| {
            p.covers_table(&metric.table)
                && (p.columns.is_empty() || columns.iter().any(|c| p.governs(&metric.table, c)))
        })
        .collect()
}

/// The columns every question on a metric touches: its time column and its measure.
pub fn base_columns(metric: &MetricSpec) -> Vec<&str> {
    let mut columns = vec![metric.time_column.as_str()];
    columns.extend(measure_columns(&metric.measure));
    columns
}

/// Every column a metric can touch: the base columns and every dimension.
pub fn metric_columns(metric: &MetricSpec) -> Vec<&str> {
    let mut columns = base_columns(metric);
    columns.extend(metric.dimensions.keys().map(String::as_str));
    columns
}

/// Whether `policy` lets `channel` (an ID or a `#name`, as written) see the data.
pub fn allows_channel(policy: &Access, channel: &str) -> bool {
    policy
        .allowed_channels
        .iter()
        .any(|c| c.eq_ignore_ascii_case(channel))
}

/// What an entry's own `[access]` allows that `policy` does not: it may narrow its
/// policies, never widen them.
pub fn wider_than(own: &Access, policy: &PolicySpec) -> Vec<String> {
    let allowed = &policy.allowed;
    let mut wider: Vec<String> = own
        .allowed_channels
        .iter()
        .filter(|c| !allows_channel(allowed, c))
        .map(|c| format!("channel `{c}`"))
        .collect();
    wider.extend(
        own.allowed_users
            .iter()
            .filter(|u| !allowed.allowed_users.contains(u))
            .map(|u| format!("user `{u}`")),
    );
    wider.extend(
        own.allowed_usergroups
            .iter()
            .filter(|g| !allowed.allowed_usergroups.contains(g))
            .map(|g| format!("user group `{g}`")),
    );
    wider
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

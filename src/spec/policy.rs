//! `[[policy]]`: who may see a warehouse table, or some of its columns — declared once, on
//! the data, in any file under `reports/`. Every catalog entry that reads the data is
//! covered: a metric on the table (for a column policy, when a question measures, filters
//! or splits by the column) and every report whose SQL reads it.

use std::ops::Range;
use std::path::PathBuf;

use super::access::Access;
use super::metric::{MetricSpec, measure_columns};
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
/// filters or splits by): every policy on a table the metric reads (a derived metric's
/// inputs' tables), and a column policy when one of its columns is touched there.
pub fn metric_policies<'p>(
    metric: &MetricSpec,
    columns: &[&str],
    policies: &'p [PolicySpec],
) -> Vec<&'p PolicySpec> {
    let sources = metric.sources();
    policies
        .iter()
        .filter(|p| {
            sources.iter().any(|source| {
                p.covers_table(&source.table)
                    && (p.columns.is_empty() || columns.iter().any(|c| p.governs(&source.table, c)))
            })
        })
        .collect()
}

/// The columns every question on a metric touches: its time column and its measure (for
/// a derived metric, every input's).
pub fn base_columns(metric: &MetricSpec) -> Vec<&str> {
    let mut columns = Vec::new();
    for source in metric.sources() {
        columns.push(source.time_column.as_str());
        columns.extend(measure_columns(&source.measure));
        columns.extend(source.fixed_filters.iter().map(|f| f.dimension.as_str()));
    }
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

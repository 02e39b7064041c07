//! What a person is told in words: help, the catalog's lists and definitions, and every
//! mistake or refusal. [`Reply`] is the one type that decides the text a Slack user reads
//! (and `kpibot ask` prints) when the answer is not a chart.

use std::fmt;

use super::access::{Viewer, metric_gates, report_gates, who_may_see};
use crate::spec::Measure;
use crate::spec::diagnostic::did_you_mean;
use crate::spec::policy::metric_columns;

/// A text answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `/kpi help`.
    Help,
    /// A list or a definition, already written from the catalog.
    Catalog(String),
    /// The command could not be read: the grammar's words for what is wrong.
    Mistake(String),
    /// A name or dimension that does not exist, with what would (already worded).
    Unknown(String),
    /// A report was given metric-only words (`by`, `where`, a grain).
    NotAMetric { report: String },
    /// The asker may not see `name` here.
    Refused { name: String, owner: String },
    /// Running `name` failed; `error` says why.
    Failed {
        name: String,
        error: String,
        owner: String,
        /// The warehouse took longer than the time limit.
        timed_out: bool,
    },
    /// A file that declares data policies is broken: nothing is answered until it is fixed.
    PoliciesUnreadable,
    /// The answer was ready but could not be posted.
    NotPosted { error: String },
    /// The person asked more questions this minute than the limit allows.
    TooManyQuestions { per_minute: usize },
}

impl Reply {
    /// How a request that got this reply ended, for the audit log and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Reply::Help => "help",
            Reply::Catalog(_) => "catalog",
            Reply::Mistake(_) | Reply::Unknown(_) | Reply::NotAMetric { .. } => "mistake",
            Reply::Refused { .. } | Reply::PoliciesUnreadable => "refused",
            Reply::Failed {
                timed_out: true, ..
            } => "timed_out",
            Reply::Failed { .. } | Reply::NotPosted { .. } => "failed",
            Reply::TooManyQuestions { .. } => "rate_limited",
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Help => f.write_str(HELP),
            Reply::Catalog(text) | Reply::Unknown(text) => f.write_str(text),
            Reply::Mistake(message) => {
                write!(f, "{message}\nType `/kpi help` for examples.")
            }
            Reply::NotAMetric { report } => write!(
                f,
                "`{report}` is a report: it takes only a period (and `private`). Metrics take `by`, `where` and a grain; see `/kpi list`."
            ),
            Reply::Refused { name, owner } => write!(
                f,
                "You cannot see `{name}` here. Ask its owner, {owner}, for access."
            ),
            Reply::Failed {
                name, error, owner, ..
            } => {
                write!(f, "Sorry, `{name}` failed: {error}. Its owner is {owner}.")
            }
            Reply::PoliciesUnreadable => f.write_str(
                "kpibot cannot answer right now: a file with data access policies is broken, so who may see what is unknown. The data team has been told; try again once it is fixed.",
            ),
            Reply::NotPosted { error } => write!(f, "I could not post the answer here: {error}"),
            Reply::TooManyQuestions { per_minute } => write!(
                f,
                "You have asked {per_minute} questions in the last minute, the most kpibot answers per person; please wait a moment and ask again."
            ),
        }
    }
}

pub const HELP: &str = "*kpibot* answers with a chart from the same definitions the scheduled reports use.
• `/kpi list [tag]`: what you can ask for
• `/kpi describe <name>`: what a number means, where it comes from, who owns it
• `/kpi <report> [period]`: a report now, e.g. `/kpi daily_active_users last 7 days`
• `/kpi <metric> [period] [daily|weekly|monthly] [by <dimension>] [where <dimension>=<value>,… [and …]] [private]`
  e.g. `/kpi active_users last 30 days weekly by role where role=student,teacher`
Periods: `yesterday`, `today`, `last 30 days`, `last month`, `this week`, `month to date`, `2026-01-01..2026-01-31`, `since 2026-04-01`, `昨日`, `今週`, `先月`, `過去7日`, `過去3ヶ月`.
Add `private` to see the answer yourself only.";

/// Everything `viewer` may see (tagged `tag`, if given).
pub fn list(viewer: &Viewer, tag: Option<&str>) -> String {
    let matches = |tags: &[String]| tag.is_none_or(|t| tags.iter().any(|x| x == t));
    let mut lines = Vec::new();
    let reports: Vec<String> = viewer
        .catalog
        .reports()
        .filter(|r| matches(&r.tags) && viewer.sees_report(r))
        .map(|r| format!("• `{}`: {}", r.id, r.title))
        .collect();
    let metrics: Vec<String> = viewer
        .catalog
        .metrics()
        .filter(|m| matches(&m.tags) && viewer.sees_metric(m))
        .map(|m| {
            let dims = viewer.dimensions(m);
            if dims.is_empty() {
                format!("• `{}`: {}", m.name, m.label)
            } else {
                format!("• `{}`: {} (by {})", m.name, m.label, dims.join(", "))
            }
        })
        .collect();
    if !metrics.is_empty() {
        lines.push("*Metrics*".to_string());
        lines.extend(metrics);
    }
    if !reports.is_empty() {
        lines.push("*Reports*".to_string());
        lines.extend(reports);
    }
    if lines.is_empty() {
        return match tag {
            Some(t) => format!("Nothing is tagged `{t}`. Try `/kpi list`."),
            None => "No reports or metrics are defined yet.".into(),
        };
    }
    lines.join("\n")
}

fn measure_text(measure: &Measure) -> String {
    match measure {
        Measure::Sum(c) => format!("sum of `{c}`"),
        Measure::Count(None) => "number of rows".into(),
        Measure::Count(Some(c)) => format!("count of `{c}`"),
        Measure::CountDistinct(c) => format!("number of distinct `{c}`"),
        Measure::Avg(c) => format!("average of `{c}`"),
        Measure::Min(c) => format!("minimum of `{c}`"),
        Measure::Max(c) => format!("maximum of `{c}`"),
        Measure::Ratio(a, b) => format!("{} per {}", measure_text(a), measure_text(b)),
    }
}

/// What `name` means, where it comes from and who may see it, if `viewer` may see it.
pub fn describe(viewer: &Viewer, name: &str) -> Option<String> {
    let catalog = viewer.catalog;
    if let Some(m) = catalog.metric(name).filter(|m| viewer.sees_metric(m)) {
        let visible = viewer.dimensions(m);
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .filter(|(k, _)| visible.contains(&k.as_str()))
            .map(|(k, v)| format!("`{k}` ({v})"))
            .collect();
        let gates = metric_gates(catalog, m, &metric_columns(m));
        return Some(format!(
            "*{}* (`{}`, metric)\n{}\n• Measure: {}\n• Source: `{}` (time column `{}`)\n• Refreshed: {}\n• Owner: {}\n• Dimensions: {}\n• Who may see it: {}",
            m.label,
            m.name,
            m.description,
            measure_text(&m.measure),
            m.table,
            m.time_column,
            if m.refreshed.is_empty() {
                "not stated"
            } else {
                &m.refreshed
            },
            m.owner,
            if dims.is_empty() {
                "none".into()
            } else {
                dims.join(", ")
            },
            who_may_see(&gates, viewer.policy)
        ));
    }
    let r = catalog.get(name).filter(|r| viewer.sees_report(r))?;
    Some(format!(
        "*{}* (`{}`, report)\n{}\n• Purpose: {}\n• Source: `{}`\n• Refreshed: {}\n• Owner: {}\n• Default period: {}\n• Who may see it: {}",
        r.title,
        r.id,
        r.description,
        r.definition.purpose,
        r.definition.source,
        r.definition.refreshed,
        r.owner,
        r.query.period,
        who_may_see(&report_gates(catalog, r), viewer.policy)
    ))
}

pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// "I don't know" with the closest name `viewer` may see.
pub fn unknown_name(viewer: &Viewer, name: &str) -> String {
    match did_you_mean(name, viewer.names()) {
        Some(hint) => format!(
            "I don't know `{name}`. {} Type `/kpi list` to see all.",
            capitalize(&hint)
        ),
        None => format!("I don't know `{name}`. Type `/kpi list` to see what you can ask for."),
    }
}

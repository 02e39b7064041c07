//! What a person is told in words: help, the catalog's lists and definitions, and every
//! mistake or refusal. [`Reply`] is the one type that decides the text a Slack user reads
//! (and `kpibot ask` prints) when the answer is not a chart.

use super::access::{Viewer, metric_gates, report_gates, who_may_see};
use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale};
use crate::spec::Measure;
use crate::spec::diagnostic::closest;
use crate::spec::policy::metric_columns;
use crate::tr_mrkdwn;

/// A text answer to a command. What it holds are values (names, errors, owners), escaped
/// when the reply is worded; `Catalog`, `Mistake` and `Unknown` are already worded, as
/// Slack mrkdwn.
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
        error: Mrkdwn,
        owner: String,
        /// The warehouse took longer than the time limit.
        timed_out: bool,
    },
    /// A file that declares data policies is broken: nothing is answered until it is fixed.
    PoliciesUnreadable,
    /// The answer was ready but could not be posted.
    NotPosted { error: Mrkdwn },
    /// The person asked more questions this minute than the limit allows.
    TooManyQuestions { per_minute: usize },
    /// The question would take a daily warehouse budget past its limit: refused before
    /// its query ran.
    OverBudget(Box<crate::warehouse::cost::OverBudget>),
    /// The question can be read more than one way: the asker chooses (a button each).
    Choose { choices: Vec<Choice> },
}

/// One reading of a question asked back: how it reads, and the whole question as the
/// strict grammar writes it (what its button asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub label: String,
    pub command: String,
}

/// The action id of a button that asks a whole question (its value).
pub const ACTION_ASK: &str = "kpi_ask";

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
            Reply::OverBudget(_) => "over_budget",
            Reply::Choose { .. } => "asked_back",
        }
    }
}

impl Reply {
    /// The reply in the reader's language, as Slack mrkdwn (`kpibot ask` prints the same).
    pub fn text(&self, locale: Locale) -> String {
        match self {
            Reply::Help => tr_mrkdwn!(locale, "kpi-help"),
            Reply::Catalog(text) | Reply::Unknown(text) => text.clone(),
            Reply::Mistake(message) => tr_mrkdwn!(
                locale,
                "kpi-mistake",
                message = Mrkdwn::formatted(message.as_str())
            ),
            Reply::NotAMetric { report } => {
                tr_mrkdwn!(locale, "kpi-not-a-metric", report = report)
            }
            Reply::Refused { name, owner } => tr_mrkdwn!(
                locale,
                "kpi-refused",
                name = name.as_str(),
                owner = owner.as_str()
            ),
            Reply::Failed {
                name, error, owner, ..
            } => tr_mrkdwn!(
                locale,
                "kpi-failed",
                name = name.as_str(),
                error = error,
                owner = owner.as_str()
            ),
            Reply::PoliciesUnreadable => tr_mrkdwn!(locale, "kpi-policies-unreadable"),
            Reply::NotPosted { error } => tr_mrkdwn!(locale, "kpi-not-posted", error = error),
            Reply::TooManyQuestions { per_minute } => {
                tr_mrkdwn!(locale, "kpi-too-many", count = *per_minute)
            }
            Reply::OverBudget(over) => over.mrkdwn(locale).into_string(),
            Reply::Choose { choices } => {
                let mut lines = vec![tr_mrkdwn!(locale, "kpi-choose-heading")];
                lines.extend(choices.iter().map(|c| {
                    tr_mrkdwn!(
                        locale,
                        "kpi-choose-command",
                        label = c.label.as_str(),
                        command = c.command.as_str()
                    )
                }));
                lines.join("\n")
            }
        }
    }

    /// Block Kit for a reply that has buttons (a question asked back), else `None`.
    pub fn blocks(&self, locale: Locale) -> Option<serde_json::Value> {
        let Reply::Choose { choices } = self else {
            return None;
        };
        let buttons: Vec<serde_json::Value> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| {
                serde_json::json!({
                    "type": "button",
                    "action_id": format!("{ACTION_ASK}_{i}"),
                    "text": {"type": "plain_text", "text": truncate(&c.label, BUTTON_TEXT_MAX_CHARS)},
                    "value": c.command,
                })
            })
            .collect();
        Some(serde_json::json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": tr_mrkdwn!(locale, "kpi-choose-heading")}},
            {"type": "actions", "block_id": "kpi_choose", "elements": buttons},
        ]))
    }
}

/// Slack's limit on a button's text, in characters.
pub const BUTTON_TEXT_MAX_CHARS: usize = 75;

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Everything `viewer` may see (tagged `tag`, if given).
pub fn list(viewer: &Viewer, tag: Option<&str>, locale: Locale) -> String {
    let matches = |tags: &[String]| tag.is_none_or(|t| tags.iter().any(|x| x == t));
    let mut lines = Vec::new();
    let reports: Vec<String> = viewer
        .catalog
        .reports()
        .filter(|r| matches(&r.tags) && viewer.sees_report(r))
        .map(|r| {
            tr_mrkdwn!(
                locale,
                "kpi-list-item",
                name = r.id.as_str(),
                label = r.title.as_str()
            )
        })
        .collect();
    let metrics: Vec<String> = viewer
        .catalog
        .metrics()
        .filter(|m| matches(&m.tags) && viewer.sees_metric(m))
        .map(|m| {
            let dims = viewer.dimensions(m);
            let (name, label) = (m.name.as_str(), m.label.as_str());
            if dims.is_empty() {
                tr_mrkdwn!(locale, "kpi-list-item", name = name, label = label)
            } else {
                let dimensions = i18n::list(
                    locale,
                    &dims.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                );
                tr_mrkdwn!(
                    locale,
                    "kpi-list-item-by",
                    name = name,
                    label = label,
                    dimensions = dimensions
                )
            }
        })
        .collect();
    if !metrics.is_empty() {
        lines.push(tr_mrkdwn!(locale, "kpi-list-metrics"));
        lines.extend(metrics);
    }
    if !reports.is_empty() {
        lines.push(tr_mrkdwn!(locale, "kpi-list-reports"));
        lines.extend(reports);
    }
    if lines.is_empty() {
        return match tag {
            Some(t) => tr_mrkdwn!(locale, "kpi-list-no-tag", tag = t),
            None => tr_mrkdwn!(locale, "kpi-list-empty"),
        };
    }
    lines.join("\n")
}

fn measure_text(measure: &Measure, locale: Locale) -> String {
    match measure {
        Measure::Sum(c) => tr_mrkdwn!(locale, "measure-sum", column = c.as_str()),
        Measure::Count(None) => tr_mrkdwn!(locale, "measure-rows"),
        Measure::Count(Some(c)) => tr_mrkdwn!(locale, "measure-count", column = c.as_str()),
        Measure::CountDistinct(c) => tr_mrkdwn!(locale, "measure-distinct", column = c.as_str()),
        Measure::Avg(c) => tr_mrkdwn!(locale, "measure-average", column = c.as_str()),
        Measure::Min(c) => tr_mrkdwn!(locale, "measure-minimum", column = c.as_str()),
        Measure::Max(c) => tr_mrkdwn!(locale, "measure-maximum", column = c.as_str()),
        Measure::Ratio(a, b) => tr_mrkdwn!(
            locale,
            "measure-ratio",
            numerator = Mrkdwn::formatted(measure_text(a, locale)),
            denominator = Mrkdwn::formatted(measure_text(b, locale))
        ),
    }
}

/// What `name` means, where it comes from and who may see it, if `viewer` may see it.
pub fn describe(viewer: &Viewer, name: &str, locale: Locale) -> Option<String> {
    let catalog = viewer.catalog;
    let stated = |text: &str| {
        if text.trim().is_empty() {
            Mrkdwn::formatted(tr_mrkdwn!(locale, "describe-not-stated"))
        } else {
            Mrkdwn::value(text)
        }
    };
    if let Some(m) = catalog.metric(name).filter(|m| viewer.sees_metric(m)) {
        let visible = viewer.dimensions(m);
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .filter(|(k, _)| visible.contains(&k.as_str()))
            .map(|(k, v)| {
                tr_mrkdwn!(
                    locale,
                    "describe-dimension",
                    name = k.as_str(),
                    label = v.as_str()
                )
            })
            .collect();
        let gates = metric_gates(catalog, m, &metric_columns(m));
        return Some(tr_mrkdwn!(
            locale,
            "describe-metric",
            label = m.label.as_str(),
            name = m.name.as_str(),
            description = m.description.as_str(),
            measure = Mrkdwn::formatted(measure_text(&m.measure, locale)),
            table = m.table.as_str(),
            time_column = m.time_column.as_str(),
            refreshed = stated(&m.refreshed),
            owner = m.owner.as_str(),
            dimensions = Mrkdwn::formatted(if dims.is_empty() {
                tr_mrkdwn!(locale, "describe-no-dimensions")
            } else {
                i18n::list(locale, &dims)
            }),
            who = who_may_see(&gates, viewer.policy, locale)
        ));
    }
    let r = catalog.get(name).filter(|r| viewer.sees_report(r))?;
    Some(tr_mrkdwn!(
        locale,
        "describe-report",
        title = r.title.as_str(),
        name = r.id.as_str(),
        description = r.description.as_str(),
        purpose = r.definition.purpose.as_str(),
        source = r.definition.source.as_str(),
        refreshed = stated(&r.definition.refreshed),
        owner = r.owner.as_str(),
        period = r.query.period.words(locale),
        who = who_may_see(&report_gates(catalog, r), viewer.policy, locale)
    ))
}

/// "I don't know" with the closest name `viewer` may see.
pub fn unknown_name(viewer: &Viewer, name: &str, locale: Locale) -> String {
    match closest(name, viewer.names_people_use()) {
        Some(suggestion) => tr_mrkdwn!(
            locale,
            "kpi-unknown-hint",
            name = name,
            suggestion = suggestion
        ),
        None => tr_mrkdwn!(locale, "kpi-unknown", name = name),
    }
}

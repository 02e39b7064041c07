//! What a person is told in words: help, the catalog's lists and definitions, and every
//! mistake or refusal. [`Reply`] is the one type that decides the text a Slack user reads
//! (and `kpibot ask` prints) when the answer is not a chart.

use super::access::{Viewer, metric_gates, report_gates, who_may_see};
use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale};
use crate::spec::diagnostic::closest;
use crate::spec::metric_sql::{Dialect, Grain, metric_sql};
use crate::spec::policy::metric_columns;
use crate::spec::{Accumulate, Interval, IntervalUnit, Measure, MetricKind, MetricSpec, PeriodAgg};
use crate::{tr, tr_mrkdwn};

/// A text answer to a command. What it holds are values (names, errors, owners), escaped
/// when the reply is worded; `Catalog`, `Mistake` and `Unknown` are already worded, as
/// Slack mrkdwn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `/kpi help`.
    Help,
    /// A list or a definition, already written from the catalog.
    Catalog(String),
    /// What following, listing or unfollowing did: lines already worded, each with the
    /// (target, question) of the follow its Unfollow button stops, if it has one.
    Follows(Vec<(String, Option<(String, String)>)>),
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
            Reply::Follows(_) => "follows",
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
            Reply::Follows(lines) => lines
                .iter()
                .map(|(line, _)| line.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
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
        if let Reply::Follows(lines) = self {
            if lines.iter().all(|(_, button)| button.is_none()) {
                return None;
            }
            let blocks: Vec<serde_json::Value> = lines
                .iter()
                .map(|(line, button)| {
                    let mut section = serde_json::json!({
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": line},
                    });
                    if let Some((target, question)) = button {
                        section["accessory"] = unfollow_button(target, question, locale);
                    }
                    section
                })
                .collect();
            return Some(serde_json::Value::Array(blocks));
        }
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

/// The action id of an Unfollow button (its value: [`unfollow_value`]).
pub const ACTION_UNFOLLOW: &str = "kpi_unfollow";

/// An Unfollow button's value: the follow's target and question (a target never holds
/// `|`).
pub fn unfollow_value(target: &str, question: &str) -> String {
    format!("{target}|{question}")
}

/// The (target, question) an Unfollow button's value names.
pub fn unfollow_of(value: &str) -> Option<(&str, &str)> {
    value.split_once('|')
}

/// An Unfollow button for a follow.
pub fn unfollow_button(target: &str, question: &str, locale: Locale) -> serde_json::Value {
    serde_json::json!({
        "type": "button",
        "action_id": ACTION_UNFOLLOW,
        "text": {"type": "plain_text", "text": tr!(locale, "digest-unfollow"), "emoji": true},
        "value": unfollow_value(target, question),
    })
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

/// `7 days`, `1 month`, in the reader's language.
fn interval_words(locale: Locale, interval: Interval) -> String {
    let count = i64::from(interval.count);
    match interval.unit {
        IntervalUnit::Day => tr!(locale, "interval-days", count = count),
        IntervalUnit::Week => tr!(locale, "interval-weeks", count = count),
        IntervalUnit::Month => tr!(locale, "interval-months", count = count),
        IntervalUnit::Quarter => tr!(locale, "interval-quarters", count = count),
        IntervalUnit::Year => tr!(locale, "interval-years", count = count),
    }
}

/// `month`, `週`: the unit a grain-to-date metric starts again at.
fn unit_word(locale: Locale, unit: IntervalUnit) -> String {
    match unit {
        IntervalUnit::Day | IntervalUnit::Week => tr!(locale, "unit-week"),
        IntervalUnit::Month => tr!(locale, "unit-month"),
        IntervalUnit::Quarter => tr!(locale, "unit-quarter"),
        IntervalUnit::Year => tr!(locale, "unit-year"),
    }
}

/// What a metric computes, in words: its measure, how a cumulative one accumulates, or a
/// derived one's expression and what each name in it stands for.
fn definition_text(metric: &MetricSpec, locale: Locale) -> String {
    let measure = || Mrkdwn::formatted(measure_text(&metric.measure, locale));
    match &metric.kind {
        MetricKind::Simple => measure_text(&metric.measure, locale),
        MetricKind::Cumulative(c) => {
            let accumulated = match c.accumulate {
                Accumulate::Window(window) => tr_mrkdwn!(
                    locale,
                    "measure-window",
                    measure = measure(),
                    window = interval_words(locale, window)
                ),
                Accumulate::ToDate(unit) => tr_mrkdwn!(
                    locale,
                    "measure-to-date",
                    measure = measure(),
                    unit = unit_word(locale, unit)
                ),
            };
            let per_bucket = match c.period_agg {
                PeriodAgg::First => tr_mrkdwn!(locale, "period-agg-first"),
                PeriodAgg::Last => tr_mrkdwn!(locale, "period-agg-last"),
                PeriodAgg::Average => tr_mrkdwn!(locale, "period-agg-average"),
            };
            format!("{accumulated}{per_bucket}")
        }
        MetricKind::Derived(d) => {
            let inputs: Vec<String> = d
                .inputs
                .iter()
                .map(|input| {
                    let label = input
                        .linked
                        .as_deref()
                        .map_or(input.metric.as_str(), |m| m.label.as_str());
                    match input.offset {
                        Some(offset) => tr_mrkdwn!(
                            locale,
                            "measure-input-offset",
                            name = input.name.as_str(),
                            label = label,
                            offset = interval_words(locale, offset)
                        ),
                        None => tr_mrkdwn!(
                            locale,
                            "measure-input",
                            name = input.name.as_str(),
                            label = label
                        ),
                    }
                })
                .collect();
            tr_mrkdwn!(
                locale,
                "measure-derived",
                expr = d.text.as_str(),
                inputs = Mrkdwn::formatted(i18n::list(locale, &inputs))
            )
        }
    }
}

/// Where a metric's rows come from: each table it reads and its time column.
fn sources_text(metric: &MetricSpec, locale: Locale) -> String {
    let mut seen = Vec::new();
    for source in metric.sources() {
        let line = tr_mrkdwn!(
            locale,
            "describe-source",
            table = source.table.as_str(),
            time_column = source.time_column.as_str()
        );
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    i18n::list(locale, &seen)
}

/// What `name` means, where it comes from and who may see it, if `viewer` may see it.
pub fn describe(viewer: &Viewer, name: &str, dialect: Dialect, locale: Locale) -> Option<String> {
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
        // What the data team wrote in dbt, for the table and the columns this person may
        // see (a hidden dimension's column is not described either).
        let mut documented: Vec<String> = m
            .sources()
            .iter()
            .flat_map(|source| source.documentation.iter())
            .filter(|(name, _)| {
                // A dimension of any input is described only when this person sees it.
                let a_dimension = m.dimensions.contains_key(name)
                    || m.sources().iter().any(|s| s.dimensions.contains_key(name));
                !a_dimension || visible.contains(&name.as_str())
            })
            .map(|(name, description)| {
                tr_mrkdwn!(
                    locale,
                    "describe-documented",
                    name = name.as_str(),
                    description = description.as_str()
                )
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        documented.retain(|line| seen.insert(line.clone()));
        let text = tr_mrkdwn!(
            locale,
            "describe-metric",
            label = m.label.as_str(),
            name = m.name.as_str(),
            description = m.description.as_str(),
            measure = Mrkdwn::formatted(definition_text(m, locale)),
            sources = Mrkdwn::formatted(sources_text(m, locale)),
            sql = Mrkdwn::formatted(i18n::mrkdwn::code_block(
                &metric_sql(dialect, m, Grain::Day, None, &[]).0
            )),
            refreshed = stated(&m.refreshed),
            owner = m.owner.as_str(),
            dimensions = Mrkdwn::formatted(if dims.is_empty() {
                tr_mrkdwn!(locale, "describe-no-dimensions")
            } else {
                i18n::list(locale, &dims)
            }),
            who = who_may_see(&gates, viewer.policy, locale)
        );
        if documented.is_empty() {
            return Some(text);
        }
        return Some(format!(
            "{text}\n{}\n{}",
            tr_mrkdwn!(locale, "describe-documentation"),
            documented.join("\n")
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

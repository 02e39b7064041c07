//! An alert notice as a Slack message: the root of a firing (a digest of every value that
//! fired in the round, its chart, mentions and the alert's definition in one line), a
//! reply in its thread (reminder, worsening, resolution), the root edited once resolved,
//! the summary of a mute window, and the owner's note. Words come from the catalogs; every
//! value in their mrkdwn (the values that fired, the title, errors) is escaped.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::engine::{Item, Kind, Notice};
use super::judge::Reference;
use crate::i18n::mrkdwn::{self, Mrkdwn};
use crate::i18n::{Locale, Message};
use crate::render::format::NumberStyle;
use crate::spec::AlertSpec;

/// `event_type` of every alert message's metadata.
pub const ALERT_EVENT_TYPE: &str = "kpibot_alert";
/// Values listed in one message; the rest are counted.
pub const MAX_LISTED_VALUES: usize = 20;
/// Slack's limit on a section's text, in characters.
const SECTION_TEXT_MAX_CHARS: usize = 3000;

/// What every alert message is written with.
pub struct Facts<'a> {
    pub alert: &'a AlertSpec,
    /// What people read as the alert's name.
    pub title: &'a str,
    pub style: NumberStyle,
    pub locale: Locale,
    pub evaluated_at: DateTime<Utc>,
    pub day: NaiveDate,
}

/// The block_id that names one notice, so it is found again after a crash (thread replies
/// carry no metadata in `conversations.replies`).
pub fn notice_marker(alert: &str, evaluated_at: DateTime<Utc>, index: u32) -> String {
    let marker = format!(
        "kpibot-alert:{alert}:{}:{index}",
        evaluated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    marker.chars().take(255).collect()
}

fn local_time(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn instance_name(facts: &Facts, instance: &str) -> String {
    if instance.is_empty() {
        facts.title.to_string()
    } else {
        instance.to_string()
    }
}

/// "(threshold 100)", "(−63.2% against 4,856 on 2026-10-29)", "(usual range …)".
pub fn against_text(style: &NumberStyle, locale: Locale, reference: Option<&Reference>) -> String {
    match reference {
        Some(Reference::Threshold(x)) => Message::new("alert-against-threshold")
            .with("threshold", style.value(*x))
            .text(locale),
        Some(Reference::Earlier {
            day,
            value,
            change,
            percent,
        }) => Message::new("alert-against-earlier")
            .with(
                "change",
                if *percent {
                    format!("{change:+.1}%")
                } else {
                    let sign = if *change > 0.0 { "+" } else { "" };
                    format!("{sign}{}", style.value(*change))
                },
            )
            .with("earlier", style.value(*value))
            .with("day", day)
            .text(locale),
        Some(Reference::Band { low, high, weeks }) => Message::new("alert-against-band")
            .with("low", style.value(*low))
            .with("high", style.value(*high))
            .with_number("weeks", *weeks)
            .text(locale),
        Some(Reference::Pace {
            target,
            to_date,
            pace,
            projected: _,
            period_start,
            period_end,
            last_year,
        }) => Message::new(if *last_year {
            "alert-against-pace-last-year"
        } else {
            "alert-against-pace-linear"
        })
        // One decimal: a pace of 89.5 % must not read "90%" in an alert firing below 90 %.
        .with("pace", format!("{:.1}%", pace * 100.0))
        .with("target", style.value(*target))
        .with(
            "period",
            crate::i18n::date_range(locale, *period_start, *period_end),
        )
        .with("to_date", style.value(*to_date))
        .text(locale),
        Some(Reference::Nothing) | None => String::new(),
    }
}

fn value_text(facts: &Facts, value: Option<f64>) -> String {
    match value {
        Some(v) => facts.style.value(v),
        None => Message::new("alert-no-value").text(facts.locale),
    }
}

/// One line per value, at most [`MAX_LISTED_VALUES`], then "… and N more".
fn item_lines(facts: &Facts, items: &[Item]) -> String {
    let single = items.len() == 1 && items[0].instance.is_empty();
    let mut lines: Vec<String> = items
        .iter()
        .take(MAX_LISTED_VALUES)
        .map(|item| {
            let against = against_text(&facts.style, facts.locale, item.reference.as_ref());
            let key = if single {
                "alert-item-single"
            } else {
                "alert-item"
            };
            Message::new(key)
                .with("instance", instance_name(facts, &item.instance))
                .with("value", value_text(facts, item.value))
                .with("against", against)
                .mrkdwn(facts.locale)
        })
        .collect();
    if items.len() > MAX_LISTED_VALUES {
        lines.push(
            Message::new("alert-more")
                .with_number("count", (items.len() - MAX_LISTED_VALUES) as f64)
                .mrkdwn(facts.locale),
        );
    }
    lines.join("\n")
}

/// A section of mrkdwn `text`.
fn section(text: &str) -> Value {
    let text = mrkdwn::truncate(text, SECTION_TEXT_MAX_CHARS);
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn header(text: &str) -> Value {
    let text: String = text.chars().take(150).collect();
    json!({"type": "header", "text": {"type": "plain_text", "text": text, "emoji": true}})
}

/// The alert in one line, in `locale`: what it watches and when it fires (the message's
/// small print, and in English the command line's `check`, `alerts` and `backtest`).
pub fn definition(alert: &AlertSpec, style: &NumberStyle, locale: Locale) -> String {
    use crate::spec::alert::{ChangeAgainst, Condition, Watch};
    let mut watched = match &alert.watch {
        Some(Watch::Metric {
            metric, by: None, ..
        }) => Message::new("alert-def-metric")
            .with("metric", metric)
            .text(locale),
        Some(Watch::Metric {
            metric,
            by: Some(by),
            ..
        }) => Message::new("alert-def-metric-by")
            .with("metric", metric)
            .with("dimension", by)
            .text(locale),
        Some(Watch::Report { report, .. }) => Message::new("alert-def-report")
            .with("report", report)
            .text(locale),
        None => Message::new("alert-def-query").text(locale),
    };
    if let Some(Watch::Metric { filters, .. }) = &alert.watch {
        for (dimension, values) in filters {
            watched.push_str(
                &Message::new("alert-def-where")
                    .with("dimension", dimension)
                    .with("values", crate::i18n::list(locale, values))
                    .text(locale),
            );
        }
    }
    let condition = match &alert.condition {
        Condition::Above(x) => Message::new("alert-def-above").with("threshold", style.value(*x)),
        Condition::Below(x) => Message::new("alert-def-below").with("threshold", style.value(*x)),
        Condition::Change {
            against,
            percent,
            units,
        } => {
            let change = match (percent, units) {
                (Some(p), _) => format!("{p:+}%"),
                (None, Some(u)) => {
                    format!("{}{}", if *u > 0.0 { "+" } else { "" }, style.value(*u))
                }
                (None, None) => String::new(),
            };
            let key = match against {
                ChangeAgainst::PreviousDay => "alert-def-change-day",
                ChangeAgainst::PreviousWeek => "alert-def-change-week",
            };
            Message::new(key).with("change", change)
        }
        Condition::Band {
            weeks,
            sigmas,
            min_weeks,
        } => Message::new("alert-def-band")
            .with_number("weeks", *weeks)
            .with("sigmas", sigmas)
            .with_number("min_weeks", *min_weeks),
        Condition::Pace { below_percent, per } => Message::new(match per {
            Some(crate::spec::TargetPeriod::Week) => "alert-def-pace-week",
            Some(crate::spec::TargetPeriod::Month) => "alert-def-pace-month",
            None => "alert-def-pace",
        })
        .with("percent", format!("{below_percent}%")),
        Condition::NoData => Message::new("alert-def-no-data"),
        Condition::Stale(f) => {
            Message::new("alert-def-stale").with_number("days", f.expect_days_ago)
        }
        Condition::Rows { .. } => Message::new("alert-def-rows"),
    }
    .text(locale);
    let recover = alert
        .recover
        .map(|level| {
            Message::new("alert-def-recover")
                .with("level", style.value(level))
                .text(locale)
        })
        .unwrap_or_default();
    let repeated = if alert.pending_evaluations > 1 {
        Message::new("alert-def-for")
            .with_number("count", alert.pending_evaluations)
            .text(locale)
    } else {
        String::new()
    };
    Message::new("alert-def")
        .with("watched", watched)
        .with("condition", condition)
        .with("recover", recover)
        .with("for", repeated)
        .text(locale)
}

fn small_print(facts: &Facts, index: u32) -> Value {
    let text = Message::new("alert-small-print")
        .with(
            "definition",
            definition(facts.alert, &facts.style, facts.locale),
        )
        .with("time", local_time(facts.alert.timezone, facts.evaluated_at))
        .with("timezone", facts.alert.timezone.name())
        .with("day", facts.day)
        .with("alert", &facts.alert.name)
        .mrkdwn(facts.locale);
    json!({
        "type": "context",
        "block_id": notice_marker(&facts.alert.name, facts.evaluated_at, index),
        "elements": [{"type": "mrkdwn", "text": text}],
    })
}

fn mentions(alert: &AlertSpec) -> Mrkdwn {
    Mrkdwn::formatted(
        alert
            .mentions
            .iter()
            .map(|m| format!("{} ", Mrkdwn::mention(m)))
            .collect::<String>(),
    )
}

fn metadata(facts: &Facts, notice: &Notice, state: &str) -> Value {
    let instances: Vec<&str> = notice.items.iter().map(|i| i.instance.as_str()).collect();
    let instance: String = instances.join(",").chars().take(200).collect();
    json!({
        "event_type": ALERT_EVENT_TYPE,
        "event_payload": {
            "alert": facts.alert.name,
            "instance": instance,
            "state": state,
            "evaluated_at": facts.evaluated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "notice": notice.index.to_string(),
        },
    })
}

/// The message for `notice` (without `channel` / `thread_ts`, which delivery adds).
/// `chart` is the uploaded chart's file id, for a firing's root.
pub fn notice_message(facts: &Facts, notice: &Notice, chart: Option<&str>) -> Value {
    let time = local_time(facts.alert.timezone, facts.evaluated_at);
    let (lead, state) = match notice.kind {
        Kind::Fired => {
            let single = notice.items.len() == 1 && notice.items[0].instance.is_empty();
            let lead = if single {
                Message::new("alert-fired-lead-single")
                    .with_mrkdwn("mentions", mentions(facts.alert))
            } else {
                Message::new("alert-fired-lead")
                    .with_mrkdwn("mentions", mentions(facts.alert))
                    .with_number("count", notice.items.len() as f64)
            };
            (lead.mrkdwn(facts.locale), "firing")
        }
        Kind::Reminder => (
            Message::new("alert-reminder")
                .with("time", &time)
                .mrkdwn(facts.locale),
            "firing",
        ),
        Kind::Worsened => (
            Message::new("alert-worsened")
                .with("time", &time)
                .mrkdwn(facts.locale),
            "firing",
        ),
        Kind::Resolved => (
            Message::new("alert-resolved")
                .with("time", &time)
                .mrkdwn(facts.locale),
            "resolved",
        ),
        Kind::MuteSummary => (String::new(), "mute_summary"),
        Kind::Problem => (String::new(), "error"),
    };
    let mut blocks = Vec::new();
    let body = if notice.kind == Kind::MuteSummary {
        blocks.push(header(
            &Message::new("alert-mute-header")
                .with("title", facts.title)
                .text(facts.locale),
        ));
        mute_lines(facts, &notice.items)
    } else {
        if notice.kind == Kind::Fired {
            blocks.push(header(
                &Message::new("alert-fired-header")
                    .with("title", facts.title)
                    .text(facts.locale),
            ));
        }
        format!("{lead}\n{}", item_lines(facts, &notice.items))
    };
    blocks.push(section(&body));
    if let Some(file) = chart {
        blocks.push(json!({
            "type": "image",
            "slack_file": {"id": file},
            "alt_text": Message::new("alert-fallback")
                .with("title", facts.title)
                .with("summary", item_summary(facts, &notice.items))
                .text(facts.locale)
                .chars()
                .take(2000)
                .collect::<String>(),
        }));
    }
    blocks.push(small_print(facts, notice.index));
    json!({
        "text": Message::new("alert-fallback")
            .with("title", facts.title)
            .with("summary", item_summary(facts, &notice.items))
            .mrkdwn(facts.locale),
        "blocks": blocks,
        "metadata": metadata(facts, notice, state),
        "unfurl_links": false,
    })
}

/// "福岡県 1,787, 大阪府 9,120": the fallback text's short form.
fn item_summary(facts: &Facts, items: &[Item]) -> String {
    let listed: Vec<String> = items
        .iter()
        .take(5)
        .map(|i| {
            format!(
                "{} {}",
                instance_name(facts, &i.instance),
                value_text(facts, i.value)
            )
        })
        .collect();
    let mut text = listed.join(", ");
    if items.len() > 5 {
        text.push_str(" …");
    }
    text
}

fn mute_lines(facts: &Facts, items: &[Item]) -> String {
    items
        .iter()
        .take(MAX_LISTED_VALUES * 2)
        .map(|item| {
            let key = match item.kind {
                Kind::Fired => "alert-mute-fired",
                Kind::Worsened => "alert-mute-worsened",
                Kind::Resolved => "alert-mute-resolved",
                _ => "alert-mute-reminder",
            };
            Message::new(key)
                .with("instance", instance_name(facts, &item.instance))
                .with("value", value_text(facts, item.value))
                .with("time", local_time(facts.alert.timezone, item.at))
                .mrkdwn(facts.locale)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The firing's root once some or all of its values resolved: the same message, its
/// header (or a line under it) saying what resolved and when.
pub fn resolved_root(
    facts: &Facts,
    root: &Notice,
    root_facts: &Facts,
    still_firing: &[String],
    chart: Option<&str>,
) -> Value {
    let mut message = notice_message(root_facts, root, chart);
    let time = local_time(facts.alert.timezone, facts.evaluated_at);
    let blocks = message["blocks"].as_array_mut().expect("blocks");
    if still_firing.is_empty() {
        blocks[0] = header(
            &Message::new("alert-resolved-header")
                .with("title", facts.title)
                .with("time", &time)
                .text(facts.locale),
        );
        message["metadata"]["event_payload"]["state"] = json!("resolved");
    } else {
        let resolved: Vec<String> = root
            .items
            .iter()
            .map(|i| instance_name(facts, &i.instance))
            .filter(|name| !still_firing.contains(name))
            .collect();
        blocks.insert(
            1,
            section(
                &Message::new("alert-still-firing")
                    .with("resolved", resolved.join(", "))
                    .with("firing", still_firing.join(", "))
                    .mrkdwn(facts.locale),
            ),
        );
    }
    message
}

/// The owner's note for a `Problem` notice: errors and dropped values, as Slack mrkdwn.
pub fn problem_text(facts: &Facts, notice: &Notice, max_instances: usize) -> String {
    let mut lines = Vec::new();
    let mut by_detail: Vec<(String, Vec<String>)> = Vec::new();
    for item in &notice.items {
        let detail = match item.detail.as_deref() {
            Some(super::engine::NO_DATA) | None => {
                Message::new("alert-no-data-detail").text(facts.locale)
            }
            Some(detail) => detail.to_string(),
        };
        let name = instance_name(facts, &item.instance);
        match by_detail.iter_mut().find(|(d, _)| *d == detail) {
            Some((_, names)) => names.push(name),
            None => by_detail.push((detail, vec![name])),
        }
    }
    for (detail, names) in by_detail {
        let mut shown: Vec<String> = names.iter().take(10).cloned().collect();
        if names.len() > 10 {
            shown.push(format!("+{}", names.len() - 10));
        }
        lines.push(
            Message::new("alert-problem")
                .with("alert", &facts.alert.name)
                .with("instances", shown.join(", "))
                .with("detail", detail)
                .mrkdwn(facts.locale),
        );
    }
    if notice.dropped > 0 {
        lines.push(
            Message::new("alert-dropped")
                .with("alert", &facts.alert.name)
                .with_number("max", max_instances as f64)
                .with_number("dropped", notice.dropped as f64)
                .mrkdwn(facts.locale),
        );
    }
    lines.join("\n")
}

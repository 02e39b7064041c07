//! The buttons and menus under every chart: another period, another split, run it again,
//! what it means, its history. The question the post answers travels in the actions
//! block's `block_id` (Slack returns it with every click), so a click asks it again with
//! one thing changed — checked against the catalog and the clicker's access at that time.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::i18n::Locale;
use crate::spec::Period;
use crate::tr;

/// The actions block's `block_id` starts with this; what follows is the [`Asked`] JSON.
pub const ACTIONS_BLOCK_PREFIX: &str = "kpi:";
/// Slack's limit on a `block_id`, in characters.
pub const BLOCK_ID_MAX_CHARS: usize = 255;
/// Slack's limit on a select option's text, in characters.
pub const OPTION_TEXT_MAX_CHARS: usize = 75;
/// Slack's limit on a select menu's options.
pub const SELECT_MAX_OPTIONS: usize = 100;
/// The menu of periods, as the period grammar writes them.
pub const PERIOD_CHOICES: [&str; 8] = [
    "yesterday",
    "last 7 days",
    "last 28 days",
    "last 90 days",
    "this month",
    "last month",
    "this quarter",
    "this year",
];

/// What a click asks for.
pub const ACTION_PERIOD: &str = "kpi_period";
pub const ACTION_BY: &str = "kpi_by";
pub const ACTION_REFRESH: &str = "kpi_refresh";
pub const ACTION_DEFINITION: &str = "kpi_definition";
pub const ACTION_MORE: &str = "kpi_more";
pub const ACTION_WHY: &str = "kpi_why";
pub const ACTION_FOLLOW: &str = "kpi_follow";
/// The overflow menu's item that shows a report's recent runs.
pub const MORE_HISTORY: &str = "history";
/// The overflow menu's item that shows a report's definition.
pub const MORE_DEFINITION: &str = "definition";

fn is_false(value: &bool) -> bool {
    !value
}

/// The question a post answers, compact enough for a `block_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Asked {
    /// The report or metric.
    #[serde(rename = "n")]
    pub name: String,
    /// A metric question (with `by`, `where` and a grain), not a report.
    #[serde(rename = "m", default, skip_serializing_if = "is_false")]
    pub metric: bool,
    /// The period as the grammar writes it (`last 28 days`).
    #[serde(rename = "p")]
    pub period: String,
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub grain: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(rename = "w", default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<(String, Vec<String>)>,
    /// The comparison asked for (`previous_year`), when one was.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "is_false")]
    pub private: bool,
}

impl Asked {
    /// A report asked for its own period.
    pub fn report(name: &str, period: Period) -> Self {
        Self {
            name: name.to_string(),
            period: period.to_string(),
            ..Self::default()
        }
    }

    /// The `block_id` carrying this question, if it fits Slack's limit.
    pub fn block_id(&self) -> Option<String> {
        let id = format!(
            "{ACTIONS_BLOCK_PREFIX}{}",
            serde_json::to_string(self).ok()?
        );
        (id.chars().count() <= BLOCK_ID_MAX_CHARS).then_some(id)
    }

    /// The question in a `block_id` Slack sent back; `None` for anything else.
    pub fn from_block_id(block_id: &str) -> Option<Self> {
        serde_json::from_str(block_id.strip_prefix(ACTIONS_BLOCK_PREFIX)?).ok()
    }
}

/// What the actions under a post offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    pub asked: Asked,
    /// A metric's dimensions the asker may see, `(name, label)`, for the "by" menu.
    pub dimensions: Vec<(String, String)>,
    /// Offer "Why?": the post compares, and its metric's change splits into parts.
    pub why: bool,
}

fn plain(text: impl Into<String>) -> Value {
    json!({"type": "plain_text", "text": text.into(), "emoji": true})
}

fn button(action_id: &str, text: String, value: &str) -> Value {
    json!({"type": "button", "action_id": action_id, "text": plain(text), "value": value})
}

fn option(text: &str, value: &str) -> Value {
    json!({
        "text": plain(super::format::truncate_chars(text, OPTION_TEXT_MAX_CHARS)),
        "value": value,
    })
}

/// The actions block for a post; `None` when the question does not fit a `block_id`
/// (very long filters): then the post has no buttons rather than buttons that would
/// answer a different question.
pub fn actions_block(actions: &Actions, locale: Locale) -> Option<Value> {
    let asked = &actions.asked;
    let block_id = asked.block_id()?;
    let periods: Vec<Value> = PERIOD_CHOICES
        .iter()
        .filter_map(|p| {
            let period: Period = p.parse().ok()?;
            Some(option(&period.words(locale), p))
        })
        .collect();
    let mut elements = vec![json!({
        "type": "static_select",
        "action_id": ACTION_PERIOD,
        "placeholder": plain(tr!(locale, "action-period")),
        "options": periods,
    })];
    if asked.metric && !actions.dimensions.is_empty() {
        let dimensions: Vec<Value> = actions
            .dimensions
            .iter()
            .take(SELECT_MAX_OPTIONS)
            .map(|(name, label)| option(label, name))
            .collect();
        elements.push(json!({
            "type": "static_select",
            "action_id": ACTION_BY,
            "placeholder": plain(tr!(locale, "action-by")),
            "options": dimensions,
        }));
    }
    if actions.why {
        elements.push(button(ACTION_WHY, tr!(locale, "action-why"), "why"));
    }
    elements.push(button(
        ACTION_REFRESH,
        tr!(locale, "action-refresh"),
        "refresh",
    ));
    elements.push(button(
        ACTION_FOLLOW,
        tr!(locale, "action-follow"),
        "follow",
    ));
    if asked.metric {
        elements.push(button(
            ACTION_DEFINITION,
            tr!(locale, "action-definition"),
            "definition",
        ));
    } else {
        // A report's definition and its history, in the overflow menu (two items: older
        // clients want at least two).
        elements.push(json!({
            "type": "overflow",
            "action_id": ACTION_MORE,
            "options": [
                option(&tr!(locale, "action-definition"), MORE_DEFINITION),
                option(&tr!(locale, "action-history"), MORE_HISTORY),
            ],
        }));
    }
    Some(json!({"type": "actions", "block_id": block_id, "elements": elements}))
}

/// An actions block with only the Why? button, for a post whose other buttons would not
/// fit it (an alert's root); `None` when the question does not fit a `block_id`.
pub fn why_block(asked: &Asked, locale: Locale) -> Option<Value> {
    Some(json!({
        "type": "actions",
        "block_id": asked.block_id()?,
        "elements": [button(ACTION_WHY, tr!(locale, "action-why"), "why")],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_round_trips_through_the_block_id() {
        let asked = Asked {
            name: "active_users".into(),
            metric: true,
            period: "last 7 days".into(),
            grain: Some("weekly".into()),
            by: Some("role".into()),
            filters: vec![("school".into(), vec!["Sakura High".into(), "北".into()])],
            compare: Some("previous_year".into()),
            private: false,
        };
        let id = asked.block_id().unwrap();
        assert!(id.len() < 255, "{id}");
        assert_eq!(Asked::from_block_id(&id), Some(asked));
        assert_eq!(Asked::from_block_id("something_else"), None);
    }

    #[test]
    fn a_question_too_long_for_a_block_id_gets_no_buttons() {
        let asked = Asked {
            name: "active_users".into(),
            metric: true,
            period: "last 7 days".into(),
            filters: vec![(
                "school".into(),
                (0..40).map(|i| format!("school {i}")).collect(),
            )],
            ..Asked::default()
        };
        let actions = Actions {
            asked,
            dimensions: Vec::new(),
            why: false,
        };
        assert!(actions_block(&actions, Locale::En).is_none());
    }

    #[test]
    fn every_period_offered_is_one_the_grammar_reads() {
        for p in PERIOD_CHOICES {
            assert!(p.parse::<Period>().is_ok(), "{p}");
        }
    }
}

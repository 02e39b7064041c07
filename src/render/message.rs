//! The Slack message for a report run: Block Kit blocks plus message metadata, exactly the
//! `chat.postMessage` body the bot sends (the image's file id is filled in at upload).

use serde_json::{Value, json};

use super::actions::{Actions, actions_block};
use super::format::truncate_chars;
use crate::i18n::Locale;
use crate::i18n::mrkdwn::{self, escape};
use crate::tr_mrkdwn;

/// `event_type` of an explanation's metadata (`/kpi why`): with `report_id` and `slot` in
/// its payload too, so a lost answer is looked up like a report post.
pub const EXPLANATION_EVENT_TYPE: &str = "kpibot_explanation";

/// Slack's limit on a header block's text, in characters.
pub const HEADER_MAX_CHARS: usize = 150;
/// Slack's limit on a section field's text, in characters.
pub const FIELD_MAX_CHARS: usize = 2000;
/// Slack's limit on an image's alt text, in characters.
pub const ALT_TEXT_MAX_CHARS: usize = 2000;
/// Slack's limit on a context element's text, in characters.
pub const CONTEXT_MAX_CHARS: usize = 3000;
/// Slack truncates a message's top-level `text` beyond this many characters.
pub const TEXT_MAX_CHARS: usize = 4000;
/// The metadata `event_type` on every report post.
pub const METADATA_EVENT_TYPE: &str = "kpibot_report";
/// Stands in for the uploaded chart's Slack file id until the upload has happened.
pub const FILE_ID_PLACEHOLDER: &str = "<uploaded-chart-file-id>";

/// The `block_id` of a post's small print: the report and slot, so the post is found
/// again in a thread, where Slack returns blocks but not metadata.
pub fn post_marker(report_id: &str, slot: &str) -> String {
    truncate_chars(
        &format!("kpibot-post:{report_id}:{slot}"),
        BLOCK_ID_MAX_CHARS,
    )
}

/// Slack's limit on a `block_id`, in characters.
const BLOCK_ID_MAX_CHARS: usize = 255;

/// Everything the message states, already formatted.
#[derive(Debug, Clone)]
pub struct MessageFacts {
    pub report_id: String,
    pub title: String,
    /// The language every word is written in.
    pub locale: Locale,
    pub channel: Option<String>,
    /// The scheduled slot (RFC 3339) or, for an ad-hoc run, the time it ran.
    pub slot: String,
    pub window_start: String,
    pub window_end: String,
    /// e.g. `2026-10-29 – 2026-11-25 (Asia/Tokyo)`.
    pub window_text: String,
    pub timezone: String,
    /// Label for the headline field, e.g. `Latest (2026-11-25)`.
    pub headline_label: String,
    /// The headline, formatted; `None` when there is no data.
    pub headline_text: Option<String>,
    /// The raw headline value, for machines reading the metadata.
    pub headline_raw: Option<f64>,
    /// e.g. `▲ +1,234 (+3.2%) vs 2026-10-01 – 2026-10-28`.
    pub change_text: Option<String>,
    /// The image's alt text: what the chart shows and its latest values.
    pub alt_text: String,
    pub source: String,
    pub refreshed: String,
    /// Values that were NaN or ±∞ and are drawn as gaps.
    pub not_numbers: usize,
    /// Slack's own chart or table block, in place of the uploaded image, when the data
    /// fits it (see [`super::native`]).
    pub native: Option<Value>,
    /// The buttons and menus under the chart (see [`super::actions`]).
    pub actions: Option<Actions>,
}

/// The `chat.postMessage` body for a report run. Every value in its mrkdwn (labels and
/// categories from the data, the title, the definition) is escaped.
pub fn build_message(facts: &MessageFacts) -> Value {
    let locale = facts.locale;
    let window = facts.window_text.as_str();
    let headline = match &facts.headline_text {
        Some(text) => escape(text),
        None => tr_mrkdwn!(locale, "chart-no-data", window = window),
    };
    let mut fields = vec![json!({
        "type": "mrkdwn",
        "text": mrkdwn::truncate(&format!("*{}*\n{headline}", escape(&facts.headline_label)), FIELD_MAX_CHARS),
    })];
    if let Some(change) = &facts.change_text {
        fields.push(json!({
            "type": "mrkdwn",
            "text": mrkdwn::truncate(&format!("*{}*\n{}", tr_mrkdwn!(locale, "message-change"), escape(change)), FIELD_MAX_CHARS),
        }));
    }
    // The top-level text is mrkdwn in notifications: titles carry typed filter values.
    let title = facts.title.as_str();
    let fallback = match (&facts.headline_text, &facts.change_text) {
        (Some(h), Some(c)) => tr_mrkdwn!(
            locale,
            "message-fallback-change",
            title = title,
            headline = h,
            change = c,
            window = window
        ),
        (Some(h), None) => tr_mrkdwn!(
            locale,
            "message-fallback",
            title = title,
            headline = h,
            window = window
        ),
        _ => tr_mrkdwn!(
            locale,
            "message-fallback-no-data",
            title = title,
            window = window
        ),
    };
    let mut context = tr_mrkdwn!(
        locale,
        "message-context",
        window = window,
        source = &facts.source,
        refreshed = &facts.refreshed,
        report = &facts.report_id,
    );
    if facts.not_numbers > 0 {
        context.push_str(" · ");
        context.push_str(&tr_mrkdwn!(
            locale,
            "message-not-numbers",
            count = facts.not_numbers
        ));
    }
    let mut message = json!({
        "text": mrkdwn::truncate(&fallback, TEXT_MAX_CHARS),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate_chars(&facts.title, HEADER_MAX_CHARS), "emoji": true}},
            {"type": "section", "fields": fields},
            facts.native.clone().unwrap_or_else(|| json!({
                "type": "image",
                "slack_file": {"id": FILE_ID_PLACEHOLDER},
                "alt_text": truncate_chars(&format!("{} ({})", facts.alt_text, facts.window_text), ALT_TEXT_MAX_CHARS),
            })),
            {"type": "context", "block_id": post_marker(&facts.report_id, &facts.slot), "elements": [{"type": "mrkdwn", "text": mrkdwn::truncate(&context, CONTEXT_MAX_CHARS)}]},
        ],
        "metadata": {
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {
                "report_id": facts.report_id,
                "slot": facts.slot,
                "window_start": facts.window_start,
                "window_end": facts.window_end,
                "timezone": facts.timezone,
                "headline_value": facts.headline_raw.map(|v| v.to_string()).unwrap_or_default(),
            },
        },
        "unfurl_links": false,
        "unfurl_media": false,
    });
    if let Some(block) = facts
        .actions
        .as_ref()
        .and_then(|a| actions_block(a, locale))
        && let Some(blocks) = message["blocks"].as_array_mut()
    {
        // Under the chart, above the small print.
        blocks.insert(3, block);
    }
    if let Some(channel) = &facts.channel {
        message["channel"] = json!(channel);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(title: &str) -> MessageFacts {
        MessageFacts {
            report_id: "r".into(),
            title: title.into(),
            locale: Locale::En,
            channel: Some("#kpi".into()),
            slot: "2026-11-26T09:00:00+09:00".into(),
            window_start: "2026-10-29".into(),
            window_end: "2026-11-25".into(),
            window_text: "2026-10-29 – 2026-11-25 (Asia/Tokyo)".into(),
            timezone: "Asia/Tokyo".into(),
            headline_label: "Latest".into(),
            headline_text: Some("1,234".into()),
            headline_raw: Some(1234.0),
            not_numbers: 0,
            change_text: Some("▲ +1 (+0.1%) vs 2026-10-28".into()),
            alt_text: "chart".into(),
            source: "mart.x".into(),
            refreshed: "daily".into(),
            native: None,
            actions: None,
        }
    }

    #[test]
    fn block_kit_limits_are_kept_by_truncating() {
        let long_title = "日".repeat(400);
        let message = build_message(&facts(&long_title));
        let header = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), HEADER_MAX_CHARS);
        assert!(header.ends_with('…'));
        assert!(message["text"].as_str().unwrap().chars().count() <= TEXT_MAX_CHARS);
    }

    #[test]
    fn data_cannot_become_a_mention_or_link() {
        let mut f = facts("t");
        f.headline_text = Some("<!channel> & <https://evil>".into());
        let message = build_message(&f);
        let field = message["blocks"][1]["fields"][0]["text"].as_str().unwrap();
        assert!(
            field.contains("&lt;!channel&gt; &amp; &lt;https://evil&gt;"),
            "{field}"
        );
    }

    #[test]
    fn metadata_values_are_strings() {
        let message = build_message(&facts("t"));
        let payload = message["metadata"]["event_payload"].as_object().unwrap();
        assert!(payload.values().all(|v| v.is_string()), "{payload:?}");
        assert_eq!(message["metadata"]["event_type"], METADATA_EVENT_TYPE);
    }
}

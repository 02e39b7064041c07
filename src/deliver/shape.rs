//! A report message shaped for Slack: split into a summary and its thread reply (thread
//! mode), and the uploaded chart's file id put where the message has the placeholder.

use serde_json::{Value, json};

use crate::i18n::Locale;
use crate::render::message::FILE_ID_PLACEHOLDER;

/// Splits a report message for `thread = true`: the summary in the channel, the chart and
/// its details as a reply.
pub(super) fn split_for_thread(
    message: &Value,
    report_id: &str,
    slot: &str,
    locale: Locale,
) -> (Value, Value) {
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    let (details, summary): (Vec<Value>, Vec<Value>) = blocks.into_iter().partition(|b| {
        matches!(
            b["type"].as_str(),
            Some("image" | "data_visualization" | "data_table" | "context")
        )
    });
    let mut main = message.clone();
    main["blocks"] = Value::Array(summary);
    let mut reply = json!({
        "text": thread_reply_text(report_id, slot, locale),
        "blocks": details,
        "unfurl_links": false,
        "unfurl_media": false,
    });
    if let Some(metadata) = message.get("metadata") {
        reply["metadata"] = metadata.clone();
    }
    (main, reply)
}

/// The fallback text (mrkdwn) of a thread reply; also how an earlier reply is recognised
/// (in whichever language it was written).
pub(super) fn thread_reply_text(report_id: &str, slot: &str, locale: Locale) -> String {
    crate::tr_mrkdwn!(
        locale,
        "message-thread-reply",
        report = report_id,
        slot = slot
    )
}

/// Whether the message shows an uploaded chart (and so needs the upload first).
pub(super) fn needs_upload(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|block| block["slack_file"]["id"] == FILE_ID_PLACEHOLDER)
}

/// Puts the uploaded file's id where the message has the placeholder.
pub(super) fn with_file_id(mut message: Value, file_id: &str) -> Value {
    if let Some(blocks) = message["blocks"].as_array_mut() {
        for block in blocks {
            if block["slack_file"]["id"] == FILE_ID_PLACEHOLDER {
                block["slack_file"]["id"] = json!(file_id);
            }
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::message::METADATA_EVENT_TYPE;

    #[test]
    fn thread_split_keeps_the_summary_in_channel_and_the_chart_in_the_reply() {
        let message = json!({
            "text": "t",
            "blocks": [{"type": "header"}, {"type": "section"}, {"type": "image"}, {"type": "context"}],
            "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {}},
        });
        let (main, reply) =
            split_for_thread(&message, "dau", "2026-11-26T09:00:00+09:00", Locale::En);
        let kinds = |v: &Value| -> Vec<String> {
            v["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["type"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(kinds(&main), ["header", "section"]);
        assert_eq!(kinds(&reply), ["image", "context"]);
        assert_eq!(reply["metadata"], main["metadata"]);
    }
}

//! The app's Home tab: opened (`app_home_opened`, over the Events API or Socket Mode), it
//! shows the person what they follow — latest value, change, a chart, the next delivery,
//! an Unfollow button — and the reports and metrics they may see, each with its definition
//! and a Follow button; published with `views.publish`. Everything on it is decided for
//! that person by the one access rule, as `/kpi` decides it in a direct message.

use chrono::Utc;
use serde_json::{Value, json};

use super::access::{Asker, Viewer};
use super::answer::answer_resolved;
use super::context::Answer;
use super::follow::following_line;
use super::reply::unfollow_button;
use super::slash::CommandHandler;
use crate::catalog::snapshot;
use crate::i18n::Locale;
use crate::{tr, tr_mrkdwn};

/// Slack's limit on blocks in a Home tab view.
pub const VIEW_BLOCKS_MAX: usize = 100;

/// Followed questions shown with their latest value and chart (each is answered when the
/// tab opens, through the cache); the rest as a line each.
pub const HOME_CHARTS_MAX: usize = 5;

/// Follows listed on the Home tab (a person's own and the channel follows they made);
/// the rest are counted, so the view stays within Slack's 100 blocks.
pub const HOME_FOLLOWS_MAX: usize = 30;

/// The action id of a catalog entry's Follow button on the Home tab (its value: the
/// entry's name).
pub const ACTION_FOLLOW_ENTRY: &str = "kpi_follow_entry";

/// Slack's limit on a section's text, in characters.
const SECTION_TEXT_MAX_CHARS: usize = 3000;

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": crate::render::format::truncate_chars(&text, SECTION_TEXT_MAX_CHARS)}})
}

/// The person as the Home tab sees them: in a place only they see.
fn home_asker(user: &str, usergroups: Vec<String>) -> Asker {
    Asker {
        user_id: user.to_string(),
        channel_id: String::new(),
        channel_name: "directmessage".into(),
        usergroups,
        operator: false,
    }
}

impl CommandHandler {
    /// Builds and publishes `user`'s Home tab, with `notice` (what a click on it did, in
    /// mrkdwn) at its top; failures are logged (the tab keeps what it showed before).
    pub async fn publish_home(&self, user: &str, notice: Option<&str>) {
        let locale = self.asker_locale_of(user, self.locale).await;
        let view = self.home_view(user, locale, notice).await;
        if let Err(error) = self.slack.slack().publish_view(user, view).await {
            tracing::error!(user, error = %error, "could not publish the Home tab (views.publish)");
        }
    }

    /// The Home tab's view for `user`, in `locale`.
    pub async fn home_view(&self, user: &str, locale: Locale, notice: Option<&str>) -> Value {
        let asker = home_asker(user, self.usergroups_of(user).await);
        let catalog = snapshot(&self.catalog);
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": tr!(locale, "home-heading"), "emoji": true},
        })];
        // What their click did (a refusal included): the tab has no other place to say it.
        blocks.extend(notice.map(|text| section(text.to_string())));
        let follows = match &self.ledger {
            Some(ledger) => ledger.follows_by(user).await.unwrap_or_else(|error| {
                tracing::error!(error = %error, "could not read the person's follows for the Home tab");
                Vec::new()
            }),
            None => Vec::new(),
        };
        if follows.is_empty() {
            blocks.push(section(tr_mrkdwn!(locale, "home-no-follows")));
        }
        let now = Utc::now();
        let context = self.context(&catalog, locale, false);
        for (i, follow) in follows.iter().enumerate().take(HOME_FOLLOWS_MAX) {
            let mut text = following_line(i + 1, follow, now, locale);
            let mut chart = None;
            if i < HOME_CHARTS_MAX && follow.paused.is_none() {
                let started = std::time::Instant::now();
                let resolved = self.resolve(&catalog, &follow.question, &asker, locale);
                let (entries, policies) = (resolved.entries(), resolved.policies());
                let answer = answer_resolved(&context, resolved, &asker).await;
                // Data shown to someone: a line in the audit log like any answer's.
                self.record_line(
                    user,
                    "",
                    &format!("home {}", follow.question),
                    (&entries, &policies, answer.rows(), answer.bytes()),
                    answer.outcome(),
                    started,
                );
                if let Answer::Chart { rendered, .. } = answer {
                    let fields: Vec<String> = rendered.message["blocks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find_map(|b| b["fields"].as_array().cloned())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|f| f["text"].as_str().map(|t| t.replace('\n', " ")))
                        .collect();
                    text.push('\n');
                    text.push_str(&fields.join(" · "));
                    chart = self.home_chart(&rendered).await;
                }
            }
            let mut block = section(text);
            block["accessory"] = unfollow_button(&follow.target, &follow.question, locale);
            blocks.push(block);
            blocks.extend(chart);
        }
        if follows.len() > HOME_FOLLOWS_MAX {
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": tr_mrkdwn!(locale, "home-more-follows", count = follows.len() - HOME_FOLLOWS_MAX)}],
            }));
        }
        blocks.push(json!({"type": "divider"}));
        blocks.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": tr!(locale, "home-catalog-heading"), "emoji": true},
        }));
        let viewer = Viewer {
            catalog: &catalog,
            asker: &asker,
            policy: self.policy,
        };
        let mut entries: Vec<(String, Value)> = Vec::new();
        for report in catalog.reports().filter(|r| viewer.sees_report(r)) {
            let text = tr_mrkdwn!(
                locale,
                "home-entry",
                title = report.title.as_str(),
                name = report.id.as_str(),
                description = first_of(&[&report.definition.purpose, &report.description]),
                source = first_of(&[&report.definition.source, &report.source]),
                refreshed = first_of(&[&report.definition.refreshed]),
                owner = report.owner.as_str()
            );
            entries.push((report.id.clone(), section(text)));
        }
        for metric in catalog.metrics().filter(|m| viewer.sees_metric(m)) {
            let text = tr_mrkdwn!(
                locale,
                "home-entry",
                title = metric.label.as_str(),
                name = metric.name.as_str(),
                description = metric.description.as_str(),
                source = metric.table.as_str(),
                refreshed = metric.refreshed.as_str(),
                owner = metric.owner.as_str()
            );
            entries.push((metric.name.clone(), section(text)));
        }
        // Room for the "more" line at the end.
        let room = VIEW_BLOCKS_MAX.saturating_sub(blocks.len() + 1);
        let shown = entries.len().min(room);
        for (name, mut block) in entries.drain(..shown) {
            block["accessory"] = json!({
                "type": "button",
                "action_id": ACTION_FOLLOW_ENTRY,
                "text": {"type": "plain_text", "text": tr!(locale, "action-follow"), "emoji": true},
                "value": name,
            });
            blocks.push(block);
        }
        if !entries.is_empty() {
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": tr_mrkdwn!(locale, "home-more", count = entries.len())}],
            }));
        }
        json!({"type": "home", "blocks": blocks})
    }

    /// A followed question's chart on the Home tab: its PNG, uploaded.
    async fn home_chart(&self, rendered: &crate::render::Rendered) -> Option<Value> {
        let slack = self.slack.slack();
        let file = slack
            .upload_png(
                &format!("{}.png", rendered.report_id),
                &rendered.title,
                &rendered.png,
                "",
                slack.deadline(),
            )
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "could not upload a chart for the Home tab; showing the numbers only");
            })
            .ok()?;
        Some(json!({
            "type": "image",
            "slack_file": {"id": file.0},
            "alt_text": crate::render::format::truncate_chars(&rendered.title, 2000),
        }))
    }
}

/// The first of `texts` that says something; `—` when none does.
fn first_of(texts: &[&String]) -> String {
    texts
        .iter()
        .find(|t| !t.trim().is_empty())
        .map_or_else(|| "—".to_string(), |t| t.trim().to_string())
}

//! One digest: each followed question asked again as its follower (their language, their
//! groups, the direct message or channel as the place), what they may no longer see left
//! out with one line saying so, the rest in one message posted exactly once.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::{Digests, Due};
use crate::adhoc::access::Asker;
use crate::adhoc::answer::{answer_resolved, answer_shared};
use crate::adhoc::context::Answer;
use crate::adhoc::follow::slot_words;
use crate::adhoc::reply::Reply;
use crate::adhoc::resolve::Resolved;
use crate::catalog::snapshot;
use crate::i18n::Locale;
use crate::ledger::follows::{DigestClaim, DigestOutcome, Follow};
use crate::render::Rendered;
use crate::render::native::NATIVE_CHARTS_PER_MESSAGE;
use crate::slack::post_once::PostOnce;
use crate::slack::{Slack, SlackError};
use crate::{tr, tr_mrkdwn};

/// `event_type` of a digest's metadata.
pub const DIGEST_EVENT_TYPE: &str = "kpibot_digest";

use crate::adhoc::reply::unfollow_button;

/// How far before its slot a lost digest is looked for in the channel's history.
const LOOKUP_MARGIN_SECONDS: i64 = 600;

/// Slack's limit on blocks in a message.
const DIGEST_BLOCKS_MAX: usize = 50;

/// Slack's limit on a section's text, in characters.
const SECTION_TEXT_MAX_CHARS: usize = 3000;

/// History pages read looking for a digest whose post's answer was lost.
const LOOKUP_MAX_PAGES: usize = 10;

/// What one question came to in a digest.
enum Item {
    Chart(Box<Rendered>),
    /// A line instead of the chart: paused (said once), or could not be computed now.
    Line(String),
}

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether a message is the digest of `target` for `slot`.
fn is_digest(message: &SlackHistoryMessage, target: &str, slot: &str) -> bool {
    message.content.metadata.as_ref().is_some_and(|metadata| {
        metadata.event_type == DIGEST_EVENT_TYPE
            && metadata.event_payload.as_ref().is_some_and(|payload| {
                payload.get("target").map(String::as_str) == Some(target)
                    && payload.get("slot").map(String::as_str) == Some(slot)
            })
    })
}

/// The digest of `target` for `slot` in Slack, if it is there: in the channel, or in the
/// direct message with the person (opened to read it: a post to a user ID needs none).
async fn find_digest(
    slack: &Slack,
    target: &str,
    slot: DateTime<Utc>,
) -> Result<Option<SlackTs>, SlackError> {
    let channel = if is_channel(target) {
        target.to_string()
    } else {
        slack.direct_channel(target, slack.deadline()).await?
    };
    let oldest = SlackTs(format!(
        "{}.000000",
        slot.timestamp() - LOOKUP_MARGIN_SECONDS
    ));
    let slot = slot_text(slot);
    slack
        .find_message(
            &channel,
            None,
            Some(oldest),
            LOOKUP_MAX_PAGES,
            |m| is_digest(m, target, &slot),
            slack.deadline(),
        )
        .await
}

fn is_channel(target: &str) -> bool {
    target.starts_with('C') || target.starts_with('G')
}

/// Sends `due` under `claim`; returns how it ended, to record.
pub(super) async fn send(digests: &Digests, due: &Due, claim: &DigestClaim) -> DigestOutcome {
    let handler = &digests.handler;
    let slack = handler.slack.slack();
    let failed = |error: &dyn std::fmt::Display| {
        tracing::error!(target = %due.target, slot = %due.slot, error = %error, "a digest could not be sent");
        DigestOutcome::Failed {
            error: error.to_string(),
        }
    };
    // A channel, or the person's user ID: Slack posts that into the direct message with
    // them, so a morning of digests needs no `conversations.open` (Tier 3) per person.
    let channel = due.target.clone();
    if claim.may_have_posted {
        match find_digest(slack, &due.target, due.slot).await {
            Ok(Some(ts)) => {
                return DigestOutcome::Posted {
                    channel,
                    ts: ts.0,
                    questions: due.follows.len() as u32,
                };
            }
            Ok(None) => {}
            // Not known whether it was posted: not posted again (the row stays failed).
            Err(error) => return failed(&error),
        }
    }
    let Some(first) = due.follows.first() else {
        return DigestOutcome::Empty;
    };
    let person = first.person.clone();
    let guess = first
        .locale
        .as_deref()
        .and_then(Locale::parse)
        .unwrap_or(handler.locale);
    // Their Slack language as last read (a question, a click), else as it was when they
    // followed: a morning of digests asks `users.info` (Tier 4) of no one.
    let locale = match slack.cached_locale_of(&person) {
        crate::slack::replies::LocaleLookup::Known(locale) if !is_channel(&due.target) => locale,
        _ => guess,
    };
    let mut items = Vec::new();
    let lease = chrono::Duration::from_std(digests.lease).unwrap_or_default();
    for follow in &due.follows {
        // Each question may take a while: the claim is renewed before it, and a digest
        // taken over meanwhile is left to its new holder.
        let now = Utc::now();
        match digests
            .ledger
            .renew_digest(&claim.fence, now + lease, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return DigestOutcome::Failed {
                    error: "taken over by another process".into(),
                };
            }
            Err(error) => return failed(&error),
        }
        // Each question is decided for the person who followed it (in a channel, the
        // channel as its name was when they followed), in the place it goes to.
        let asker = Asker {
            user_id: follow.person.clone(),
            channel_id: channel.clone(),
            channel_name: match &follow.place {
                Some(name) => name.clone(),
                None if is_channel(&due.target) => String::new(),
                None => "directmessage".into(),
            },
            usergroups: handler.usergroups_of(&follow.person).await,
            operator: false,
        };
        if let Some(item) = ask(digests, (follow, due.slot), &asker, locale).await {
            items.push((follow, item));
        }
    }
    if items.is_empty() {
        return DigestOutcome::Empty;
    }
    // Uploading the charts may take a while too.
    let now = Utc::now();
    if let Ok(false) = digests
        .ledger
        .renew_digest(&claim.fence, now + lease, now)
        .await
    {
        return DigestOutcome::Failed {
            error: "taken over by another process".into(),
        };
    }
    let timezone =
        crate::adhoc::follow::schedule_of(first).map_or(handler.timezone, |s| s.timezone);
    let mut native = true;
    loop {
        let body = match message(slack, &channel, due, &items, (locale, timezone), native).await {
            Ok(body) => body,
            Err(error) => return failed(&error),
        };
        let used_native = body["blocks"].as_array().is_some_and(|blocks| {
            blocks.iter().any(|b| {
                matches!(
                    b["type"].as_str(),
                    Some("data_visualization" | "data_table")
                )
            })
        });
        let options = PostOnce {
            written: &channel,
            deadline: slack.deadline(),
            file_not_ready_attempts: crate::slack::post_once::FILE_READY_ATTEMPTS,
        };
        let posted: Result<(SlackTs, bool), SlackError> = slack
            .post_once_or_find(
                &body,
                options,
                || {
                    let ledger = digests.ledger.clone();
                    let fence = claim.fence.clone();
                    async move {
                        let asked = std::time::Instant::now();
                        let now = Utc::now();
                        match ledger.begin_digest_post(&fence, now + lease, now).await {
                            // The yes holds while the lease it set runs (a quarter of it,
                            // for clocks that differ between replicas).
                            Ok(true) => Ok(Some(asked + lease.to_std().unwrap_or_default() / 4)),
                            Ok(false) => Err(SlackError::Setup(
                                "the digest was taken over by another process; not posting".into(),
                            )),
                            Err(error) => Err(SlackError::Setup(format!(
                                "the ledger could not confirm the digest is still this process's: {error}"
                            ))),
                        }
                    }
                },
                || find_digest(slack, &due.target, due.slot),
            )
            .await;
        match posted {
            Ok((ts, _)) => {
                return DigestOutcome::Posted {
                    channel,
                    ts: ts.0,
                    questions: items.len() as u32,
                };
            }
            Err(error) if used_native && error.code() == "invalid_blocks" => {
                tracing::warn!(target = %due.target, error = %error, "Slack refused its own chart block in a digest; sending the charts as images");
                native = false;
            }
            Err(error) => return failed(&error),
        }
    }
}

/// One question asked again as the follower, decided by the one access rule. `None`:
/// nothing to show (paused already and still not answerable).
async fn ask(
    digests: &Digests,
    (follow, slot): (&Follow, DateTime<Utc>),
    asker: &Asker,
    locale: Locale,
) -> Option<Item> {
    let handler = &digests.handler;
    let started = std::time::Instant::now();
    let catalog = snapshot(&handler.catalog);
    let resolved = handler.resolve(&catalog, &follow.question, asker, locale);
    let entries = resolved.entries();
    let policies = resolved.policies();
    let context = handler.context(&catalog, locale, false);
    // A plain question due for many people in one slot runs once; each of them is still
    // decided alone, here.
    let plain = matches!(&resolved, Resolved::Run { query, .. } if !query.why);
    let answer = if plain {
        let cell = digests.shared_answer(slot, &follow.question, locale);
        match cell.get_or_init(|| answer_shared(&context, resolved)).await {
            Some(shared) => shared.answer_for(&catalog, asker, handler.policy),
            None => Answer::Text(Reply::Mistake(tr_mrkdwn!(locale, "grammar-follow-usage"))),
        }
    } else {
        answer_resolved(&context, resolved, asker).await
    };
    let outcome = answer.outcome().to_string();
    handler.record_line(
        &asker.user_id,
        &asker.channel_id,
        &format!("digest {}", follow.question),
        (&entries, &policies, answer.rows(), answer.bytes()),
        &outcome,
        started,
    );
    let pause = |reason: String| async move {
        if follow.paused.is_some() {
            return None;
        }
        if let Err(error) = digests
            .ledger
            .set_follow_paused(&follow.target, &follow.question, Some(&reason))
            .await
        {
            tracing::error!(error = %error, "could not record a paused follow");
        }
        Some(Item::Line(tr_mrkdwn!(
            locale,
            "digest-paused",
            question = follow.question.as_str(),
            reason = crate::i18n::mrkdwn::Mrkdwn::formatted(reason)
        )))
    };
    match answer {
        // A channel's digest shows only what everyone in the channel may see.
        Answer::Chart {
            ephemeral: true, ..
        } if is_channel(&follow.target) => pause(tr_mrkdwn!(locale, "digest-paused-channel")).await,
        Answer::Chart { rendered, .. } => {
            if follow.paused.is_some()
                && let Err(error) = digests
                    .ledger
                    .set_follow_paused(&follow.target, &follow.question, None)
                    .await
            {
                tracing::error!(error = %error, "could not record a resumed follow");
            }
            Some(Item::Chart(rendered))
        }
        Answer::Text(Reply::Refused { owner, .. }) => {
            pause(tr_mrkdwn!(
                locale,
                "digest-paused-refused",
                owner = owner.as_str()
            ))
            .await
        }
        // Unknown to them: removed or renamed — or hidden from them now (a dimension a
        // policy covers reads as unknown to those it does not allow). They followed it,
        // so saying their access changed tells them nothing new; whom to ask is the rule's.
        Answer::Text(
            Reply::Unknown(_) | Reply::NotAMetric { .. } | Reply::Mistake(_) | Reply::Choose { .. },
        ) => match withdrawn_from(digests, follow, asker, locale) {
            Some(owner) => {
                pause(tr_mrkdwn!(
                    locale,
                    "digest-paused-refused",
                    owner = owner.as_str()
                ))
                .await
            }
            None => pause(tr_mrkdwn!(locale, "digest-paused-gone")).await,
        },
        Answer::Text(reply) => Some(Item::Line(tr_mrkdwn!(
            locale,
            "digest-not-computed",
            question = follow.question.as_str(),
            reason = crate::i18n::mrkdwn::Mrkdwn::formatted(reply.text(locale))
        ))),
    }
}

/// Whether a question that does not resolve for `asker` still exists for everyone (its
/// data hidden from them): then whom they must ask, from the rule that refuses them.
fn withdrawn_from(
    digests: &Digests,
    follow: &Follow,
    asker: &Asker,
    locale: Locale,
) -> Option<String> {
    let handler = &digests.handler;
    let catalog = snapshot(&handler.catalog);
    let everyone = Asker {
        operator: true,
        ..asker.clone()
    };
    match handler.resolve(&catalog, &follow.question, &everyone, locale) {
        crate::adhoc::resolve::Resolved::Run { gates, spec, .. } => {
            match crate::adhoc::access::decide(&gates, asker, handler.policy, false, &spec.owner) {
                crate::adhoc::access::Decision::Refused { owner } => Some(owner),
                _ => Some(spec.owner.clone()),
            }
        }
        _ => None,
    }
}

/// The block a rendered answer shows its chart in: Slack's own chart or table block when
/// `native` and the answer has one, else its image (uploaded here).
async fn chart_block(
    slack: &Slack,
    rendered: &Rendered,
    channel: &str,
    native: bool,
) -> Result<Option<Value>, SlackError> {
    let is_chart = |b: &&Value| {
        matches!(
            b["type"].as_str(),
            Some("data_visualization" | "data_table" | "image")
        )
    };
    let source = if native {
        &rendered.message
    } else {
        rendered.image_message.as_ref().unwrap_or(&rendered.message)
    };
    let Some(block) = source["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(is_chart)
    else {
        return Ok(None);
    };
    let mut block = block.clone();
    if block["type"] == "image" && block.get("slack_file").is_some() {
        let file = slack
            .upload_png(
                &format!("{}.png", rendered.report_id),
                &rendered.title,
                &rendered.png,
                channel,
                slack.deadline(),
            )
            .await?;
        block["slack_file"] = json!({"id": file.0});
    }
    Ok(Some(block))
}

/// The digest's small print under everything.
const FOOTER_BLOCKS: usize = 1;

/// A chart's buttons for someone who follows it: Unfollow where Follow was.
fn with_unfollow(block: &Value, unfollow: Value) -> Value {
    let mut block = block.clone();
    if let Some(elements) = block["elements"].as_array_mut() {
        elements.retain(|e| e["action_id"] != crate::render::actions::ACTION_FOLLOW);
        elements.push(unfollow);
    }
    block
}

/// The digest message: a heading, each question's headline and chart with its buttons
/// (Unfollow in place of Follow), the lines for what is paused or failed, and the metadata that identifies it.
async fn message(
    slack: &Slack,
    channel: &str,
    due: &Due,
    items: &[(&Follow, Item)],
    (locale, timezone): (Locale, chrono_tz::Tz),
    native: bool,
) -> Result<Value, SlackError> {
    let heading = tr!(
        locale,
        "digest-heading",
        date = slot_words(due.slot, timezone)
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": heading, "emoji": true},
    })];
    let mut lines = Vec::new();
    let mut fallback = vec![heading.clone()];
    let mut questions = serde_json::Map::new();
    // The heading, two blocks a chart (three with its buttons), the lines, the footer.
    let charts = items
        .iter()
        .filter(|(_, item)| matches!(item, Item::Chart(_)))
        .count();
    let has_lines = items.iter().any(|(_, item)| matches!(item, Item::Line(_)));
    let fits = 2 + 2 * charts + usize::from(has_lines) <= DIGEST_BLOCKS_MAX;
    let mut charts_left = charts;
    // Slack refuses a message that repeats a block_id, and two follows may be one question
    // to the buttons (`active_users`, and its default period said): the second keeps only
    // Unfollow.
    let mut block_ids = std::collections::HashSet::new();
    for (i, (follow, item)) in items.iter().enumerate() {
        questions.insert(format!("question_{i}"), json!(follow.question));
        match item {
            Item::Line(line) => lines.push(line.clone()),
            Item::Chart(rendered) => {
                let fields: Vec<Value> = rendered.message["blocks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|b| b["fields"].as_array().cloned())
                    .unwrap_or_default();
                let summary = format!(
                    "{}: {}",
                    rendered.title,
                    fields
                        .iter()
                        .filter_map(|f| f["text"].as_str())
                        .collect::<Vec<_>>()
                        .join(" / ")
                );
                fallback.push(summary.clone());
                // Within Slack's 50 blocks (room kept for the lines and the footer): past
                // them a question is a line.
                if !fits && blocks.len() + 2 > DIGEST_BLOCKS_MAX - 2 {
                    lines.push(crate::i18n::mrkdwn::escape(&summary.replace('\n', " ")));
                    continue;
                }
                charts_left -= 1;
                // Its buttons where they fit beside every chart still to come; else only
                // Unfollow, beside the headline.
                let unfollow = unfollow_button(&follow.target, &follow.question, locale);
                let needed = blocks.len() + 3 + 2 * charts_left + usize::from(has_lines);
                let room = needed + FOOTER_BLOCKS <= DIGEST_BLOCKS_MAX;
                let actions = rendered
                    .actions()
                    .filter(|_| room)
                    .filter(|block| block_ids.insert(block["block_id"].to_string()))
                    .map(|block| with_unfollow(block, unfollow.clone()));
                let mut section = json!({
                    "type": "section",
                    "block_id": format!("kpi_digest_{i}"),
                    "text": {"type": "mrkdwn", "text": format!("*{}*", crate::i18n::mrkdwn::escape(&rendered.title))},
                });
                if actions.is_none() {
                    section["accessory"] = unfollow;
                }
                if !fields.is_empty() {
                    section["fields"] = json!(fields);
                }
                blocks.push(section);
                // Slack takes two of its own charts in a message; the others are images.
                let charts = blocks
                    .iter()
                    .filter(|b| b["type"] == "data_visualization")
                    .count();
                let native = native && charts < NATIVE_CHARTS_PER_MESSAGE;
                if let Some(chart) = chart_block(slack, rendered, channel, native).await? {
                    blocks.push(chart);
                }
                blocks.extend(actions);
            }
        }
    }
    if !lines.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": crate::render::format::truncate_chars(&lines.join("\n"), SECTION_TEXT_MAX_CHARS)},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": tr_mrkdwn!(locale, "digest-footer")}],
    }));
    let mut payload = json!({
        "target": due.target,
        "person": due.follows.first().map(|f| f.person.clone()).unwrap_or_default(),
        "slot": slot_text(due.slot),
        "questions": items.len().to_string(),
    });
    if let Some(map) = payload.as_object_mut() {
        map.extend(questions);
    }
    Ok(json!({
        "channel": channel,
        "text": fallback.join("\n"),
        "blocks": blocks,
        "metadata": {"event_type": DIGEST_EVENT_TYPE, "event_payload": payload},
    }))
}

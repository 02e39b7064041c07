//! Report posts to Slack, exactly once: upload the chart, post one message with it, and
//! count it as delivered only on `ok: true` with a `ts`. A post whose answer was lost is
//! looked up (by its metadata) before it is ever sent again; posts to one channel are paced.
//! The calls themselves, their retries and advice live in [`crate::slack`].

use std::sync::Arc;

use chrono::DateTime;
use serde_json::{Value, json};
use slack_morphism::prelude::*;
use tokio::time::Instant;

use super::lookup::{HistoryIndex, post_of};
use super::pacing::Pacer;
use super::shape::{needs_upload, split_for_thread, thread_reply_text, with_file_id};
use super::{Delivery, DeliveryError, PostIdentity, Receipt, check_guard};
use crate::i18n::Locale;
use crate::metrics::Metrics;
use crate::render::Rendered;
use crate::render::message::post_marker;
use crate::slack::post_once::{FILE_READY_ATTEMPTS, PostOnce};
use crate::slack::{Slack, SlackError, SlackOptions};

/// Posts are looked up from this long before their slot (clock skew between hosts).
pub const LOOKUP_MARGIN_SECONDS: i64 = 600;
/// Pages read while looking for an earlier post before giving up.
pub const LOOKUP_MAX_PAGES: usize = 10;

const METRIC_NATIVE_FALLBACKS: &str = "kpibot_native_chart_fallbacks_total";
const METRIC_NATIVE_FALLBACKS_HELP: &str =
    "Posts whose Slack chart or table block was rejected (invalid_blocks) and went out as a PNG";
const METRIC_POSTS: &str = "kpibot_slack_posts_total";
const METRIC_POSTS_HELP: &str =
    "Report posts by outcome (posted, found_existing = an earlier post was found, failed)";

/// Whether Slack's `invalid_blocks` is about the message's own chart or table block (and
/// not, say, its buttons): only then is the PNG the fix, and only then is the workspace
/// taken not to accept such blocks. Slack names the offending block in its errors
/// (`[json-pointer:/blocks/2/type]`); without that detail, the native block is blamed.
fn blames_native_block(error: &SlackError, message: &Value) -> bool {
    let SlackError::Call { code, detail, .. } = error else {
        return false;
    };
    if code != "invalid_blocks" {
        return false;
    }
    // Slack names the blocks it refused in its `errors` list.
    let detail = match detail.as_deref() {
        None => return true,
        Some(crate::slack::failure::Detail::Quoted(words)) => words,
        Some(_) => return false,
    };
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, b)| {
            matches!(
                b["type"].as_str(),
                Some("data_visualization" | "data_table")
            )
        })
        .any(|(i, _)| detail.contains(&format!("/blocks/{i}/")))
}

/// Whether a message carries the block_id naming this report and slot.
fn carries_marker(message: &SlackHistoryMessage, marker: &str) -> bool {
    message.content.blocks.iter().flatten().any(|block| {
        matches!(block, SlackBlock::Context(context)
            if context.block_id.as_ref().is_some_and(|id| id.0 == marker))
    })
}

/// Whether a message from `conversations.history` is this report's post for this slot.
fn is_post_of(message: &SlackHistoryMessage, report_id: &str, slot: &str) -> bool {
    post_of(message).is_some_and(|(report, at)| report == report_id && at == slot)
}

/// `oldest` for a lookup: a little before the slot, so a post made after it is found.
fn lookup_oldest(slot: &str) -> Option<SlackTs> {
    let slot = DateTime::parse_from_rfc3339(slot).ok()?;
    Some(SlackTs(format!(
        "{}.000000",
        slot.timestamp() - LOOKUP_MARGIN_SECONDS
    )))
}

/// Report posts through [`Slack`], each exactly once, paced per channel.
pub struct SlackDelivery {
    slack: Arc<Slack>,
    pacer: Pacer,
    metrics: Arc<Metrics>,
    /// Slack answered `invalid_blocks` to one of its own chart or table blocks: this
    /// workspace (or its plan) does not take them, so posts use the PNG from then on.
    native_rejected: std::sync::atomic::AtomicBool,
    /// What this process has read of each channel's history: one scan answers many
    /// lookups (Slack's history is Tier 1).
    history: HistoryIndex,
}

impl SlackDelivery {
    pub fn new(options: SlackOptions, metrics: Arc<Metrics>) -> Result<Self, DeliveryError> {
        let pacer = Pacer::new(options.channel_interval, options.max_concurrent_posts);
        let slack = Slack::new(options, metrics.clone())?;
        Ok(Self {
            slack: Arc::new(slack),
            pacer,
            metrics,
            native_rejected: std::sync::atomic::AtomicBool::new(false),
            history: HistoryIndex::default(),
        })
    }

    /// The Slack client the delivery posts through (slash answers use it too).
    pub fn slack(&self) -> &Arc<Slack> {
        &self.slack
    }

    /// Looks for this report's post for this slot in the channel (or, with `thread_ts`,
    /// for its reply in that thread).
    async fn find_post(
        &self,
        channel_id: &str,
        report_id: &str,
        slot: &str,
        thread_ts: Option<&SlackTs>,
        deadline: Instant,
    ) -> Result<Option<SlackTs>, SlackError> {
        let marker = post_marker(report_id, slot);
        let expected_replies: Vec<String> = Locale::ALL
            .iter()
            .map(|locale| thread_reply_text(report_id, slot, *locale))
            .collect();
        if thread_ts.is_none()
            && let Some(oldest) = lookup_oldest(slot)
        {
            return self
                .history
                .find(&self.slack, channel_id, report_id, slot, oldest, deadline)
                .await;
        }
        let oldest = thread_ts.is_none().then(|| lookup_oldest(slot)).flatten();
        self.slack
            .find_message(
                channel_id,
                thread_ts,
                oldest,
                LOOKUP_MAX_PAGES,
                |m| match thread_ts {
                    None => is_post_of(m, report_id, slot),
                    // Slack returns a reply's blocks but not its metadata: the small
                    // print's block_id names the report and slot (older replies: their text).
                    Some(_) => {
                        carries_marker(m, &marker)
                            || m.content
                                .text
                                .as_ref()
                                .is_some_and(|t| expected_replies.contains(t))
                    }
                },
                deadline,
            )
            .await
    }

    /// Posts `message` exactly once: retries what is transient, and after any attempt
    /// whose answer was lost, looks for the post before sending it again. The post's
    /// guard (a scheduled slot's fence) is asked before every attempt: a process that
    /// lost its slot while waiting out a rate limit stops there.
    #[allow(clippy::too_many_arguments)]
    async fn post_exactly_once(
        &self,
        rendered: &Rendered,
        channel_id: &str,
        channel_written: &str,
        message: &Value,
        thread_ts: Option<&SlackTs>,
        deadline: Instant,
    ) -> Result<(SlackTs, bool), DeliveryError> {
        let (report_id, slot) = (rendered.report_id.as_str(), rendered.slot.as_str());
        let mut body = message.clone();
        body["channel"] = json!(channel_id);
        if let Some(parent) = thread_ts {
            body["thread_ts"] = json!(parent.0);
        }
        let options = PostOnce {
            written: channel_written,
            deadline,
            file_not_ready_attempts: FILE_READY_ATTEMPTS,
        };
        self.slack
            .post_once_or_find(
                &body,
                options,
                || check_guard(rendered, channel_id),
                || self.find_post(channel_id, report_id, slot, thread_ts, deadline),
            )
            .await
    }

    /// Uploads the chart for `rendered`.
    async fn upload(
        &self,
        rendered: &Rendered,
        channel: &str,
        deadline: Instant,
    ) -> Result<SlackFileId, SlackError> {
        self.slack
            .upload_png(
                &format!("{}.png", rendered.report_id),
                &rendered.title,
                &rendered.png,
                channel,
                deadline,
            )
            .await
    }

    /// Posts a chart only `user` can see in `channel` (`private` answers, restricted
    /// metrics): the same upload, then `chat.postEphemeral`.
    pub async fn post_ephemeral(
        &self,
        rendered: &Rendered,
        channel: &str,
        user: &str,
    ) -> Result<(), DeliveryError> {
        let deadline = self.slack.deadline();
        let in_thread = |mut message: Value| {
            if let Some(thread) = &rendered.in_thread {
                message["thread_ts"] = json!(thread);
            }
            message
        };
        if self.uses_native(rendered) {
            match self
                .slack
                .post_ephemeral(in_thread(rendered.message.clone()), channel, user, deadline)
                .await
            {
                Err(error) if blames_native_block(&error, &rendered.message) => {
                    self.native_failed(rendered, &error)
                }
                done => return Ok(done?),
            }
        }
        let message = in_thread(self.image_message(rendered, channel, deadline).await?);
        Ok(self
            .slack
            .post_ephemeral(message, channel, user, deadline)
            .await?)
    }

    /// Whether `rendered` goes out with Slack's own chart or table block (no upload).
    fn uses_native(&self, rendered: &Rendered) -> bool {
        rendered.image_message.is_some()
            && !self
                .native_rejected
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Slack refused the native block: the PNG from now on, logged and counted once per
    /// post.
    fn native_failed(&self, rendered: &Rendered, error: &dyn std::fmt::Display) {
        self.native_rejected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .increment(METRIC_NATIVE_FALLBACKS, METRIC_NATIVE_FALLBACKS_HELP, &[]);
        tracing::warn!(report = %rendered.report_id, slot = %rendered.slot, error = %error, "Slack rejected its own chart block; posting the PNG instead, and PNGs from now on");
    }

    /// The message with the chart uploaded as a PNG (the upload happens here).
    async fn image_message(
        &self,
        rendered: &Rendered,
        channel: &str,
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        let message = rendered.image_message.as_ref().unwrap_or(&rendered.message);
        if !needs_upload(message) {
            return Ok(message.clone());
        }
        let file_id = self.upload(rendered, channel, deadline).await?;
        Ok(with_file_id(message.clone(), &file_id.0))
    }

    async fn deliver_paced(
        &self,
        rendered: &Rendered,
        channel_written: &str,
    ) -> Result<Receipt, DeliveryError> {
        let channel_id = self.slack.channel_id(channel_written).await?;
        let mut turn = self.pacer.turn(&channel_id).await;
        // The retry deadline starts when the post leaves the queue: a post late in a burst
        // gets the same retries as the first.
        let deadline = self.slack.deadline();
        let report = rendered.report_id.as_str();
        let slot = rendered.slot.as_str();
        // No lookup before a normal post: only a lost answer leads to one (post_exactly_once);
        // crash recovery asks through `find_existing`. Slack's own chart block needs no
        // upload: one call instead of three.
        let mut native = self.uses_native(rendered);
        let message = if native {
            rendered.message.clone()
        } else {
            self.image_message(rendered, channel_written, deadline)
                .await?
        };
        let split = |message: &Value| {
            if rendered.thread {
                let (main, reply) = split_for_thread(message, report, slot, rendered.locale);
                (main, Some(reply))
            } else {
                (message.clone(), None)
            }
        };
        let (mut main, mut reply) = split(&message);
        // An answer to a click goes into the post's thread.
        let in_thread = rendered.in_thread.clone().map(SlackTs);
        // Every attempt below first asks whether this process still holds the slot.
        let (ts, found_existing) = match &rendered.resume_thread {
            // The summary went out before the run stopped: only its reply is missing.
            Some(summary) if reply.is_some() => (SlackTs(summary.clone()), true),
            _ => {
                let post_main = async |main: &Value| {
                    self.post_exactly_once(
                        rendered,
                        &channel_id,
                        channel_written,
                        main,
                        in_thread.as_ref(),
                        deadline,
                    )
                    .await
                };
                let mut posted = post_main(&main).await;
                if native
                    && reply.is_none()
                    && let Err(DeliveryError::Slack(error)) = &posted
                    && blames_native_block(error, &main)
                {
                    self.native_failed(rendered, error);
                    native = false;
                    let image = self
                        .image_message(rendered, channel_written, deadline)
                        .await?;
                    (main, reply) = split(&image);
                    posted = post_main(&main).await;
                }
                turn.posted();
                let (ts, found_existing) = posted?;
                // Thread mode, step one recorded: a stop from here on posts only the reply.
                if reply.is_some()
                    && let Some(guard) = &rendered.guard
                    && !guard.record_first_step(&ts.0).await
                {
                    return Err(DeliveryError::SlotTakenOver);
                }
                (ts, found_existing)
            }
        };
        let mut thread_ts = None;
        if let Some(reply) = reply {
            let mut posted = self
                .post_exactly_once(
                    rendered,
                    &channel_id,
                    channel_written,
                    &reply,
                    Some(&ts),
                    deadline,
                )
                .await;
            if native
                && let Err(DeliveryError::Slack(error)) = &posted
                && blames_native_block(error, &reply)
            {
                // The summary is posted; only the chart's reply goes again, as a PNG.
                self.native_failed(rendered, error);
                let image = self
                    .image_message(rendered, channel_written, deadline)
                    .await?;
                if let (_, Some(image_reply)) = split(&image) {
                    posted = self
                        .post_exactly_once(
                            rendered,
                            &channel_id,
                            channel_written,
                            &image_reply,
                            Some(&ts),
                            deadline,
                        )
                        .await;
                }
            }
            posted?;
            thread_ts = Some(ts.0.clone());
        }
        drop(turn);
        self.metrics.increment(
            METRIC_POSTS,
            METRIC_POSTS_HELP,
            &[(
                "outcome",
                if found_existing {
                    "found_existing"
                } else {
                    "posted"
                },
            )],
        );
        Ok(Receipt::Slack {
            channel: channel_id,
            ts: ts.0,
            thread_ts,
            found_existing,
        })
    }
}

#[async_trait::async_trait]
impl Delivery for SlackDelivery {
    async fn deliver(&self, rendered: &Rendered) -> Result<Receipt, DeliveryError> {
        let channel = rendered.channel.as_deref().ok_or_else(|| {
            DeliveryError::Setup(format!(
                "report `{}` has no channel: add a [[schedule]] with `channel`, or pass --channel",
                rendered.report_id
            ))
        })?;
        let result = self.deliver_paced(rendered, channel).await;
        if let Err(error) = &result {
            self.metrics
                .increment(METRIC_POSTS, METRIC_POSTS_HELP, &[("outcome", "failed")]);
            tracing::error!(
                report = %rendered.report_id,
                slot = %rendered.slot,
                channel,
                code = error.code(),
                error = %error,
                "report not delivered to Slack"
            );
        }
        Ok(result?)
    }

    async fn find_existing(&self, post: &PostIdentity) -> Result<Option<Receipt>, DeliveryError> {
        let Some(channel) = post.channel.as_deref() else {
            return Ok(None);
        };
        let deadline = self.slack.deadline();
        let channel_id = self.slack.channel_id(channel).await?;
        let summary = match &post.summary_ts {
            Some(ts) => Some(SlackTs(ts.clone())),
            None => {
                self.find_post(&channel_id, &post.report_id, &post.slot, None, deadline)
                    .await?
            }
        };
        let Some(ts) = summary else {
            return Ok(None);
        };
        // Thread mode: the post is whole only with the chart's reply in its thread.
        let thread_ts = if post.thread {
            self.find_post(
                &channel_id,
                &post.report_id,
                &post.slot,
                Some(&ts),
                deadline,
            )
            .await?
            .map(|_| ts.0.clone())
        } else {
            None
        };
        Ok(Some(Receipt::Slack {
            channel: channel_id,
            ts: ts.0,
            thread_ts,
            found_existing: true,
        }))
    }

    async fn notify(&self, recipient: &str, text: &str) -> Result<(), DeliveryError> {
        let deadline = self.slack.deadline();
        let channel_id = self.slack.channel_id(recipient).await?;
        let mut turn = self.pacer.turn(&channel_id).await;
        // A duplicate notice is harmless; a lost one is not. Plain retries suffice.
        let result = self
            .slack
            .post_text(&channel_id, recipient, text, deadline)
            .await;
        turn.posted();
        Ok(result?)
    }

    async fn link(&self, receipt: &Receipt) -> Option<String> {
        match receipt {
            Receipt::Slack { channel, ts, .. } => {
                self.slack.permalink(channel, &SlackTs(ts.clone())).await
            }
            Receipt::Folder { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_start_shortly_before_the_slot() {
        assert_eq!(
            lookup_oldest("2026-11-26T09:00:00+09:00").unwrap().0,
            format!("{}.000000", 1_795_651_200 - LOOKUP_MARGIN_SECONDS)
        );
        assert_eq!(lookup_oldest("not a time"), None);
    }
}

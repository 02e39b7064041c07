//! One way to hand an answer to the person who asked, for `/kpi` and clicks alike: a text
//! reply only they see, a private chart, a chart in the channel (or the post's thread),
//! and — when a chart could not be posted — a reply saying so. The two differ only in
//! the [`AnswerTarget`] and the "asked by" line a click's chart carries.

use serde_json::json;

use super::answer::Answer;
use super::reply::Reply;
use crate::deliver::{Delivery, DeliveryError, SlackDelivery};
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::slack::inbound::{ActionRequest, CommandRequest};

/// Where an answer goes.
#[derive(Debug, Clone, Copy)]
pub enum AnswerTarget<'a> {
    /// A slash command: text through its `response_url`, charts into its channel.
    Command {
        response_url: &'a str,
        channel: &'a str,
        user: &'a str,
    },
    /// A click under a post: text to the clicker where they clicked, charts into the
    /// post's thread (`thread`) when it has one.
    Click {
        channel: &'a str,
        user: &'a str,
        thread: Option<&'a str>,
    },
}

impl<'a> AnswerTarget<'a> {
    /// Where a slash command's answer goes.
    pub fn command(request: &'a CommandRequest) -> Self {
        AnswerTarget::Command {
            response_url: &request.response_url,
            channel: &request.channel_id,
            user: &request.user_id,
        }
    }

    /// Where a click's answer goes: the clicked post's thread, if it has one.
    pub fn click(action: &'a ActionRequest) -> Self {
        AnswerTarget::Click {
            channel: &action.channel_id,
            user: &action.user_id,
            thread: action.thread_ts.as_deref(),
        }
    }

    fn channel(&self) -> &str {
        match self {
            AnswerTarget::Command { channel, .. } | AnswerTarget::Click { channel, .. } => channel,
        }
    }

    fn user(&self) -> &str {
        match self {
            AnswerTarget::Command { user, .. } | AnswerTarget::Click { user, .. } => user,
        }
    }

    fn thread(&self) -> Option<&str> {
        match self {
            AnswerTarget::Command { .. } => None,
            AnswerTarget::Click { thread, .. } => *thread,
        }
    }
}

/// Delivers `answer` to `target`; `asked_by` (a click's "… asked for …" line) heads a
/// chart's context. Returns the audit outcome: the answer's own, or `failed:<code>` when
/// it could not be delivered (the asker is then told, if Slack lets us).
pub async fn deliver_answer(
    slack: &SlackDelivery,
    answer: Answer,
    target: &AnswerTarget<'_>,
    asked_by: Option<&Mrkdwn>,
    locale: Locale,
) -> String {
    let outcome = answer.outcome();
    let delivered = match answer {
        Answer::Text(reply) => {
            return reply_privately(
                slack,
                target,
                (&reply.text(locale), reply.blocks(locale).as_ref()),
                reply.outcome(),
            )
            .await;
        }
        Answer::Chart {
            mut rendered,
            ephemeral,
            why_private,
            ..
        } => {
            if let Some(line) = asked_by {
                rendered.prepend_context(line);
            }
            if let Some(why) = why_private.filter(|_| ephemeral) {
                rendered.prepend_context(&why);
            }
            rendered.in_thread = target.thread().map(str::to_string);
            if ephemeral {
                slack
                    .post_ephemeral(&rendered, target.channel(), target.user())
                    .await
            } else {
                rendered.channel = Some(target.channel().to_string());
                slack.deliver(&rendered).await.map(|_| ())
            }
        }
    };
    match delivered {
        Ok(()) => outcome.to_string(),
        Err(error) => {
            let text = Reply::NotPosted {
                error: error.mrkdwn(locale),
            }
            .text(locale);
            reply_privately(slack, target, (&text, None), "failed").await;
            format!("failed:{}", error.code())
        }
    }
}

/// A text only the asker sees: the command's `response_url`, or an ephemeral message
/// where they clicked. Returns `outcome`, or `failed:<code>` (logged) when Slack refused.
pub async fn reply_privately(
    slack: &SlackDelivery,
    target: &AnswerTarget<'_>,
    (text, blocks): (&str, Option<&serde_json::Value>),
    outcome: &str,
) -> String {
    let client = slack.slack();
    let sent = match target {
        AnswerTarget::Command { response_url, .. } => {
            client.respond(response_url, text, blocks).await
        }
        AnswerTarget::Click {
            channel,
            user,
            thread,
        } => {
            let mut message = json!({ "text": text });
            if let Some(blocks) = blocks {
                message["blocks"] = blocks.clone();
            }
            if let Some(thread) = thread {
                message["thread_ts"] = json!(thread);
            }
            client
                .post_ephemeral(message, channel, user, client.deadline())
                .await
        }
    };
    match sent {
        Ok(()) => outcome.to_string(),
        Err(error) => {
            let error = DeliveryError::from(error);
            tracing::error!(error = %error, reply = %text, "could not answer the asker at all");
            format!("failed:{}", error.code())
        }
    }
}

//! Posting a message exactly once — the one loop behind report posts and alert notices:
//! attempt, and after any attempt whose answer was lost, look for the post before sending
//! again; wait out what is transient; give up at the deadline with one last look.

use std::future::Future;

use serde_json::Value;
use slack_morphism::prelude::*;
use tokio::time::Instant;

use super::failure::{Detail, FailureClass};
use super::{Slack, SlackError, advice, failure_error, message_request};
use crate::i18n::Message;

/// The pause before asking a guard again whose yes expired before the post was sent.
pub const GUARD_RETRY_DELAY_MS: u64 = 50;

/// Posts tried while Slack is still processing an uploaded file (`invalid slack file`).
pub const FILE_READY_ATTEMPTS: u32 = 5;

/// What differs between the callers of [`Slack::post_once_or_find`].
#[derive(Debug, Clone, Copy)]
pub struct PostOnce<'a> {
    /// The channel as the spec wrote it (`#sales`), for the error's advice.
    pub written: &'a str,
    /// When to stop retrying.
    pub deadline: Instant,
    /// How many `file_not_ready` answers (a chart uploaded a moment ago that Slack has
    /// not finished processing) are waited out before giving up; 1 where no file is
    /// shared.
    pub file_not_ready_attempts: u32,
}

impl Slack {
    /// Posts `body` (its `channel`, and `thread_ts` for a reply, already set) exactly
    /// once. `guard` is asked before every attempt, after the channel's turn, and may stop
    /// the post (a scheduled slot taken over while waiting out a rate limit); its yes
    /// carries the instant the post must be sent by (the fence's lease margin), checked
    /// again right before the request goes out: a process paused between the two
    /// (SIGSTOP, a frozen VM) asks the guard again instead of posting on a yes that may
    /// since have passed to another replica. `find` looks for the message in Slack and
    /// is called only after an attempt whose answer was lost. Returns the message's ts
    /// and whether it was found rather than posted.
    pub async fn post_once_or_find<E, G, GF, F, FF>(
        &self,
        body: &Value,
        options: PostOnce<'_>,
        mut guard: G,
        mut find: F,
    ) -> Result<(SlackTs, bool), E>
    where
        E: From<SlackError>,
        G: FnMut() -> GF,
        GF: Future<Output = Result<Option<std::time::Instant>, E>>,
        F: FnMut() -> FF,
        FF: Future<Output = Result<Option<SlackTs>, SlackError>>,
    {
        let channel = body["channel"].as_str().unwrap_or_default().to_string();
        let request: SlackApiChatPostMessageRequest =
            message_request(body.clone(), "chat.postMessage", options.written)?;
        let session = self.session();
        let mut maybe_posted = false;
        let mut attempt = 0;
        let mut file_not_ready = 0;
        loop {
            if maybe_posted {
                match find().await {
                    Ok(Some(ts)) => return Ok((ts, true)),
                    Ok(None) => {}
                    Err(lookup) => {
                        return Err(SlackError::Call {
                            method: "chat.postMessage",
                            code: "unconfirmed".into(),
                            detail: Detail::said(
                                Message::new("slack-detail-lookup-failed")
                                    .with("code", lookup.code()),
                            )
                            .map(Box::new),
                            attempts: attempt,
                            // The lookup's own advice where it has one (a scope to
                            // add, a channel to join): that is what stands in the way.
                            advice: match &lookup {
                                SlackError::Call { advice, .. } => advice.clone(),
                                SlackError::Setup(_) => {
                                    advice("unconfirmed", options.written, None)
                                }
                            },
                        }
                        .into());
                    }
                }
            }
            // The channel's turn first, so nothing waits between the guard's yes and the
            // request.
            self.turn("chat.postMessage").await;
            let send_by = guard().await?;
            if send_by.is_some_and(|by| std::time::Instant::now() >= by) {
                if Instant::now() >= options.deadline {
                    return Err(SlackError::Setup(
                        "the post's lease check kept expiring before it could be sent; not posted"
                            .into(),
                    )
                    .into());
                }
                tracing::warn!(channel = %channel, "the lease check expired before the post could be sent; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(GUARD_RETRY_DELAY_MS)).await;
                continue;
            }
            attempt += 1;
            let failure = match self
                .send("chat.postMessage", session.chat_post_message(&request))
                .await
            {
                Ok(response) => return Ok((response.ts, false)),
                Err(failure) => failure,
            };
            maybe_posted |= failure.answer_lost;
            if failure.code == "channel_not_found" {
                self.forget_channel(&channel).await;
            }
            if failure.class == FailureClass::FileNotReady {
                file_not_ready += 1;
            }
            let retry = file_not_ready < options.file_not_ready_attempts
                && self
                    .wait_to_retry(&failure, attempt, options.deadline)
                    .await;
            if !retry {
                // One last look: the final attempt itself may have gone through.
                if maybe_posted && let Ok(Some(ts)) = find().await {
                    return Ok((ts, true));
                }
                return Err(failure_error(failure, attempt, options.written).into());
            }
        }
    }
}

//! The Web API calls both flows make: channel IDs from names, file uploads, permalinks,
//! pages of a channel's history or a thread, and plain text posts.

use slack_morphism::prelude::*;
use tokio::time::Instant;

use crate::i18n::Message;

use super::failure::Detail;
use super::{CHANNEL_PAGE_SIZE, Slack, SlackError, advice, is_slack_id, message_request};

/// A lookup that read `max_pages` pages of `channel_id` without reaching the post's time:
/// not found is not the same as not posted, so it is `unconfirmed`, never `None`.
pub fn unconfirmed_lookup(channel_id: &str, max_pages: usize) -> SlackError {
    SlackError::Call {
        method: "conversations.history",
        code: "unconfirmed".into(),
        detail: Detail::said(
            Message::new("slack-detail-lookup-pages").with_number("pages", max_pages as f64),
        )
        .map(Box::new),
        attempts: 1,
        advice: advice("unconfirmed", channel_id, None),
    }
}

/// The error for a channel name no channel has (`conversations.list` read to its end).
pub fn no_channel_named(name: &str, written: &str) -> SlackError {
    SlackError::Call {
        method: "conversations.list",
        code: "channel_not_found".into(),
        detail: Detail::said(Message::new("slack-detail-no-channel").with("channel", name))
            .map(Box::new),
        attempts: 1,
        advice: advice("channel_not_found", written, None),
    }
}

/// Messages per `conversations.history` / `conversations.replies` page.
pub const MESSAGE_PAGE_SIZE: u16 = 200;

/// One page of messages and the cursor to the next, if there is one.
pub type Page = (Vec<SlackHistoryMessage>, Option<SlackCursorId>);

impl Slack {
    /// The ID of a channel written as `#name` or as an ID; names are looked up once
    /// (every page of `conversations.list`) and cached.
    pub async fn channel_id(&self, written: &str) -> Result<String, SlackError> {
        let written = written.trim();
        if is_slack_id(written) {
            return Ok(written.to_string());
        }
        let name = written.trim_start_matches('#').to_lowercase();
        let mut ids = self.channel_ids.lock().await;
        if let Some(id) = ids.get(&name) {
            return Ok(id.clone());
        }
        let deadline = self.deadline();
        let session = self.session();
        let mut cursor: Option<SlackCursorId> = None;
        loop {
            let request = SlackApiConversationsListRequest {
                cursor: cursor.clone(),
                limit: Some(CHANNEL_PAGE_SIZE),
                exclude_archived: Some(true),
                types: Some(vec![
                    SlackConversationType::Public,
                    SlackConversationType::Private,
                ]),
            };
            let page = self
                .idempotent("conversations.list", written, deadline, || {
                    session.conversations_list(&request)
                })
                .await?;
            for channel in page.channels {
                for name in [&channel.name, &channel.name_normalized]
                    .into_iter()
                    .flatten()
                {
                    ids.insert(name.to_lowercase(), channel.id.0.clone());
                }
            }
            cursor = page
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.0.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        ids.get(&name)
            .cloned()
            .ok_or_else(|| no_channel_named(&name, written))
    }

    /// Forgets a cached channel ID that Slack no longer knows (renamed, deleted).
    pub async fn forget_channel(&self, id: &str) {
        self.channel_ids.lock().await.retain(|_, v| v != id);
    }

    /// Uploads a PNG and returns its file id, completed and ready to be shared.
    pub async fn upload_png(
        &self,
        filename: &str,
        title: &str,
        png: &[u8],
        channel: &str,
        deadline: Instant,
    ) -> Result<SlackFileId, SlackError> {
        let session = self.session();
        let ticket_request = SlackApiFilesGetUploadUrlExternalRequest {
            filename: filename.to_string(),
            length: png.len(),
            alt_txt: None,
            snippet_type: None,
        };
        let ticket = self
            .idempotent("files.getUploadURLExternal", channel, deadline, || {
                session.get_upload_url_external(&ticket_request)
            })
            .await?;
        let upload_request = SlackApiFilesUploadViaUrlRequest {
            upload_url: ticket.upload_url.clone(),
            content: png.to_vec(),
            content_type: "image/png".into(),
        };
        self.idempotent("files.upload", channel, deadline, || {
            session.files_upload_via_url(&upload_request)
        })
        .await?;
        let complete_request = SlackApiFilesCompleteUploadExternalRequest {
            files: vec![SlackApiFilesComplete {
                id: ticket.file_id.clone(),
                title: Some(title.to_string()),
            }],
            channel_id: None,
            channels: None,
            initial_comment: None,
            blocks: None,
            thread_ts: None,
            username: None,
            icon_url: None,
            icon_emoji: None,
        };
        self.idempotent("files.completeUploadExternal", channel, deadline, || {
            session.files_complete_upload_external(&complete_request)
        })
        .await?;
        Ok(ticket.file_id)
    }

    /// A link to a message, or `None` (logged) when Slack gives none.
    pub async fn permalink(&self, channel_id: &str, ts: &SlackTs) -> Option<String> {
        let session = self.session();
        let request = SlackApiChatGetPermalinkRequest {
            channel: SlackChannelId(channel_id.to_string()),
            message_ts: ts.clone(),
        };
        match self
            .attempt("chat.getPermalink", session.chat_get_permalink(&request))
            .await
        {
            Ok(response) => Some(response.permalink.to_string()),
            Err(failure) => {
                tracing::warn!(%failure, "posted, but Slack gave no permalink");
                None
            }
        }
    }

    /// One page of a channel's history from `oldest` on, up to `latest` (both included;
    /// metadata included) or, with `thread`, of the replies under that message.
    pub async fn messages_page(
        &self,
        channel_id: &str,
        thread: Option<&SlackTs>,
        (oldest, latest): (Option<SlackTs>, Option<SlackTs>),
        cursor: Option<SlackCursorId>,
        deadline: Instant,
    ) -> Result<Page, SlackError> {
        let session = self.session();
        let channel = SlackChannelId(channel_id.to_string());
        let (messages, metadata) = match thread {
            None => {
                let request = SlackApiConversationsHistoryRequest::new()
                    .with_channel(channel)
                    .opt_cursor(cursor)
                    .with_limit(MESSAGE_PAGE_SIZE)
                    .opt_oldest(oldest)
                    .opt_latest(latest)
                    .with_inclusive(true)
                    .with_include_all_metadata(true);
                let page = self
                    .idempotent("conversations.history", channel_id, deadline, || {
                        session.conversations_history(&request)
                    })
                    .await?;
                (page.messages, page.response_metadata)
            }
            Some(parent) => {
                let request = SlackApiConversationsRepliesRequest::new(channel, parent.clone())
                    .opt_cursor(cursor)
                    .with_limit(MESSAGE_PAGE_SIZE)
                    .with_inclusive(true);
                let page = self
                    .idempotent("conversations.replies", channel_id, deadline, || {
                        session.conversations_replies(&request)
                    })
                    .await?;
                (page.messages, page.response_metadata)
            }
        };
        Ok((messages, metadata.and_then(|m| m.next_cursor)))
    }

    /// The first message `matches` accepts in a channel's history from `oldest` (or, with
    /// `thread`, among the replies under that message, the parent itself skipped),
    /// reading at most `max_pages` pages. After the last page, not found is `Ok(None)`;
    /// with pages left unread it is an `unconfirmed` error — not found is not the same as
    /// not posted, and a caller that would post on `None` must never guess.
    pub async fn find_message(
        &self,
        channel_id: &str,
        thread: Option<&SlackTs>,
        oldest: Option<SlackTs>,
        max_pages: usize,
        matches: impl Fn(&SlackHistoryMessage) -> bool,
        deadline: Instant,
    ) -> Result<Option<SlackTs>, SlackError> {
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..max_pages {
            let (messages, next) = self
                .messages_page(channel_id, thread, (oldest.clone(), None), cursor, deadline)
                .await?;
            if let Some(found) = messages
                .iter()
                .filter(|m| Some(&m.origin.ts) != thread)
                .find(|m| matches(m))
            {
                return Ok(Some(found.origin.ts.clone()));
            }
            cursor = next.filter(|c| !c.0.is_empty());
            if cursor.is_none() {
                return Ok(None);
            }
        }
        Err(unconfirmed_lookup(channel_id, max_pages))
    }

    /// Posts plain text to a channel ID, retrying what is transient: for notices, where a
    /// duplicate is harmless and a lost one is not.
    pub async fn post_text(
        &self,
        channel_id: &str,
        written: &str,
        text: &str,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let session = self.session();
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId(channel_id.to_string()),
            SlackMessageContent::new().with_text(text.to_string()),
        )
        .with_unfurl_links(false);
        self.idempotent("chat.postMessage", written, deadline, || {
            session.chat_post_message(&request)
        })
        .await
        .map(|_| ())
    }

    /// Replaces a message's content (`chat.update`), retrying what is transient: applying
    /// the same edit twice changes nothing.
    pub async fn update_message(
        &self,
        channel_id: &str,
        ts: &SlackTs,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let content: SlackMessageContent =
            message_request(body.clone(), "chat.update", channel_id)?;
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel_id.to_string()),
            content,
            ts.clone(),
        );
        let session = self.session();
        self.idempotent("chat.update", channel_id, deadline, || {
            session.chat_update(&request)
        })
        .await
        .map(|_| ())
    }

    /// Publishes `view` (a Home tab, as Block Kit JSON) for `user` (`views.publish`).
    pub async fn publish_view(
        &self,
        user: &str,
        view: serde_json::Value,
    ) -> Result<(), SlackError> {
        let view: SlackView = super::message_request(view, "views.publish", user)?;
        let request = SlackApiViewsPublishRequest::new(SlackUserId(user.to_string()), view);
        let session = self.session();
        self.idempotent("views.publish", user, self.deadline(), || {
            session.views_publish(&request)
        })
        .await
        .map(|_| ())
    }

    /// The direct-message channel with a user (`conversations.open`), for looking up what
    /// was posted to them.
    pub async fn direct_channel(
        &self,
        user: &str,
        deadline: Instant,
    ) -> Result<String, SlackError> {
        let request = SlackApiConversationsOpenRequest::new()
            .with_users(vec![SlackUserId(user.trim_start_matches('@').to_string())]);
        let session = self.session();
        let opened = self
            .idempotent("conversations.open", user, deadline, || {
                session.conversations_open(&request)
            })
            .await?;
        Ok(opened.channel.id.0)
    }
}

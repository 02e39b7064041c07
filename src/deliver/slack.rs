//! Slack delivery on slack-morphism: upload the chart (`files.getUploadURLExternal` →
//! upload → `files.completeUploadExternal`), post one message with it, and count it as
//! delivered only on `ok: true` with a `ts`. Transient failures are retried, permanent
//! ones stop at once with advice, and a post whose answer was lost is looked up before it
//! is ever sent again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::time::Instant;

use super::pacing::Pacer;
use super::retry::{CallFailure, FailureClass, RetryPolicy, classify, next_delay, timed_out};
use super::{Delivery, DeliveryError, PostIdentity, Receipt, Rendered};
use crate::metrics::Metrics;
use crate::render::message::{FILE_ID_PLACEHOLDER, METADATA_EVENT_TYPE};
use crate::settings::{Secret, Settings};

/// Posts are looked up from this long before their slot (clock skew between hosts).
pub const LOOKUP_MARGIN_SECONDS: i64 = 600;
/// Messages per `conversations.history` page while looking for an earlier post.
pub const LOOKUP_PAGE_SIZE: u16 = 200;
/// Pages read while looking for an earlier post before giving up.
pub const LOOKUP_MAX_PAGES: usize = 10;
/// Channels per `conversations.list` page.
pub const CHANNEL_PAGE_SIZE: u16 = 1000;
/// How long user-group memberships are reused before `usergroups.list` is read again.
pub const USERGROUPS_CACHE_SECONDS: u64 = 600;
/// Posts tried while Slack is still processing the uploaded file (`invalid slack file`).
pub const FILE_READY_ATTEMPTS: u32 = 5;

const METRIC_API_ERRORS: &str = "kpibot_slack_api_errors_total";
const METRIC_API_ERRORS_HELP: &str = "Failed Slack API calls by method and error code";
const METRIC_RETRIES: &str = "kpibot_slack_retries_total";
const METRIC_RETRIES_HELP: &str = "Slack API calls repeated after a failure, by method";
const METRIC_POSTS: &str = "kpibot_slack_posts_total";
const METRIC_POSTS_HELP: &str =
    "Report posts by outcome (posted, found_existing = an earlier post was found, failed)";

/// How the Slack delivery behaves; built from settings, or directly by tests.
#[derive(Debug, Clone)]
pub struct SlackOptions {
    /// Base URL of the Web API, e.g. `https://slack.com/api`.
    pub api_url: String,
    pub bot_token: Secret,
    pub retry: RetryPolicy,
    /// Shortest time between two posts to one channel.
    pub channel_interval: Duration,
    /// Deliveries in flight at once, across all channels.
    pub max_concurrent_posts: usize,
}

impl SlackOptions {
    pub fn from_settings(settings: &Settings) -> Result<Self, DeliveryError> {
        let slack = &settings.slack;
        let bot_token = slack.bot_token.clone().ok_or_else(|| {
            DeliveryError::Setup(
                "Slack delivery needs a bot token: set KPIBOT__SLACK__BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…)".into(),
            )
        })?;
        Ok(Self {
            api_url: slack.api_url.clone(),
            bot_token,
            retry: RetryPolicy {
                request_timeout: Duration::from_secs(slack.request_timeout_seconds),
                deadline: Duration::from_secs(slack.retry_deadline_seconds),
                ..RetryPolicy::default()
            },
            channel_interval: Duration::from_millis(slack.channel_post_interval_ms),
            max_concurrent_posts: slack.max_concurrent_posts,
        })
    }
}

type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Every user group's id and member user ids.
type UserGroups = Vec<(String, Vec<String>)>;

pub struct SlackDelivery {
    client: Client,
    token: SlackApiToken,
    options: SlackOptions,
    pacer: Pacer,
    /// Channel name (without `#`, lower case) → ID, filled from `conversations.list`.
    channel_ids: tokio::sync::Mutex<HashMap<String, String>>,
    /// Every user group's members, from `usergroups.list`, and when it was read.
    usergroups: tokio::sync::Mutex<Option<(Instant, UserGroups)>>,
    metrics: Arc<Metrics>,
}

/// Whether the Slack API URL is plain HTTP to this machine (a local fake Slack): `Ok(false)`
/// for HTTPS, `Ok(true)` for http://127.0.0.1 or localhost, and why not otherwise.
pub fn plain_http_allowed(api_url: &str) -> Result<bool, String> {
    let uri: axum::http::Uri = api_url
        .parse()
        .map_err(|e| format!("`{api_url}` is not a URL: {e}"))?;
    let loopback = matches!(
        uri.host(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    match (uri.scheme_str(), loopback) {
        (Some("https"), _) => Ok(false),
        (Some("http"), true) => Ok(true),
        _ => Err(format!(
            "`{api_url}` must be an https:// URL (plain http is only allowed to 127.0.0.1, for tests)"
        )),
    }
}

/// Plain HTTP only to this machine (a local fake Slack); anything else must be HTTPS.
pub fn connector(api_url: &str) -> Result<SlackClientHyperHttpsConnector, DeliveryError> {
    let plain_http = plain_http_allowed(api_url)
        .map_err(|why| DeliveryError::Setup(format!("KPIBOT__SLACK__API_URL {why}")))?;
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        // No system certificate store (e.g. a distroless image): use the bundled roots.
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
    };
    let https = if plain_http {
        builder.https_or_http().enable_http1().build()
    } else {
        builder.https_only().enable_http1().enable_http2().build()
    };
    Ok(SlackClientHyperConnector::with_connector(https)
        .with_slack_api_url(api_url.trim_end_matches('/')))
}

/// Whether `text` is a Slack conversation or user ID rather than a `#name`.
pub fn is_slack_id(text: &str) -> bool {
    text.len() >= 9
        && text.starts_with(['C', 'G', 'D', 'U', 'W'])
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// What the report's owner should do about a Slack error code.
pub fn advice(code: &str, channel: &str, detail: Option<&str>) -> String {
    let channel_name = if channel.starts_with('#') || is_slack_id(channel) {
        channel.to_string()
    } else {
        format!("#{channel}")
    };
    match code {
        "not_in_channel" => format!(
            "invite @kpibot to {channel_name}: type `/invite @kpibot` in {channel_name}"
        ),
        "channel_not_found" => format!(
            "check the channel `{channel}` in the report's [[schedule]]; if {channel_name} is private, invite @kpibot to it first (the bot cannot see private channels it is not in)"
        ),
        "is_archived" => format!(
            "{channel_name} is archived: unarchive it or point the schedule at another channel"
        ),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "set KPIBOT__SLACK__BOT_TOKEN to the Slack app's current Bot User OAuth Token (xoxb-…); reinstall the app if it was removed".into()
        }
        "missing_scope" => format!(
            "add the {} scope to the Slack app (OAuth & Permissions) and reinstall it",
            detail
                .and_then(|d| d.strip_prefix("needs scope "))
                .unwrap_or("missing")
        ),
        "invalid_blocks" | "msg_too_long" | "invalid_arguments" | "invalid_metadata_format"
        | "too_many_attachments" => {
            "this is a kpibot bug (the message broke Slack's rules); please report it with this error".into()
        }
        "ratelimited" => "Slack kept rate-limiting kpibot; spread the reports' schedules over more minutes".into(),
        "unconfirmed" => format!(
            "the post may have gone out: check {channel_name} before re-running the report"
        ),
        "timeout" | "connection" | "bad_response" => {
            "Slack could not be reached reliably; check the network from the bot to slack.com and Slack's status page".into()
        }
        code if code.starts_with("http_5") => {
            "Slack's servers kept failing; check status.slack.com and re-run the report".into()
        }
        _ => format!("see https://api.slack.com/methods for the meaning of `{code}`"),
    }
}

fn failure_error(failure: CallFailure, attempts: u32, channel: &str) -> DeliveryError {
    DeliveryError::Slack {
        advice: advice(&failure.code, channel, failure.detail.as_deref()),
        method: failure.method,
        code: failure.code,
        detail: failure.detail,
        attempts,
    }
}

/// Splits a report message for `thread = true`: the summary in the channel, the chart and
/// its details as a reply.
fn split_for_thread(message: &Value, report_id: &str, slot: &str) -> (Value, Value) {
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    let (details, summary): (Vec<Value>, Vec<Value>) = blocks
        .into_iter()
        .partition(|b| matches!(b["type"].as_str(), Some("image" | "context")));
    let mut main = message.clone();
    main["blocks"] = Value::Array(summary);
    let mut reply = json!({
        "text": thread_reply_text(report_id, slot),
        "blocks": details,
        "unfurl_links": false,
        "unfurl_media": false,
    });
    if let Some(metadata) = message.get("metadata") {
        reply["metadata"] = metadata.clone();
    }
    (main, reply)
}

/// The fallback text of a thread reply; also how an earlier reply is recognised.
fn thread_reply_text(report_id: &str, slot: &str) -> String {
    format!("Chart and details: {report_id} ({slot})")
}

/// Puts the uploaded file's id where the message has the placeholder.
fn with_file_id(mut message: Value, file_id: &str) -> Value {
    if let Some(blocks) = message["blocks"].as_array_mut() {
        for block in blocks {
            if block["slack_file"]["id"] == FILE_ID_PLACEHOLDER {
                block["slack_file"]["id"] = json!(file_id);
            }
        }
    }
    message
}

/// Whether a message from `conversations.history` is this report's post for this slot.
fn is_post_of(message: &SlackHistoryMessage, report_id: &str, slot: &str) -> bool {
    let Some(metadata) = &message.content.metadata else {
        return false;
    };
    let payload = metadata.event_payload.as_ref();
    let field = |name: &str| payload.and_then(|p| p.get(name)).map(String::as_str);
    metadata.event_type == METADATA_EVENT_TYPE
        && field("report_id") == Some(report_id)
        && field("slot") == Some(slot)
}

/// `oldest` for a lookup: a little before the slot, so a post made after it is found.
fn lookup_oldest(slot: &str) -> Option<SlackTs> {
    let slot = DateTime::parse_from_rfc3339(slot).ok()?;
    Some(SlackTs(format!(
        "{}.000000",
        slot.timestamp() - LOOKUP_MARGIN_SECONDS
    )))
}

impl SlackDelivery {
    pub fn new(options: SlackOptions, metrics: Arc<Metrics>) -> Result<Self, DeliveryError> {
        let client = SlackClient::new(connector(&options.api_url)?);
        let token = SlackApiToken::new(SlackApiTokenValue(options.bot_token.expose().to_string()));
        Ok(Self {
            client,
            token,
            pacer: Pacer::new(options.channel_interval, options.max_concurrent_posts),
            options,
            channel_ids: tokio::sync::Mutex::new(HashMap::new()),
            usergroups: tokio::sync::Mutex::new(None),
            metrics,
        })
    }

    /// One attempt of one call, bounded by the request timeout, classified on failure.
    async fn attempt<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, CallFailure> {
        let timeout = self.options.retry.request_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(method, &error),
            Err(_) => timed_out(method, timeout),
        };
        self.metrics.increment(
            METRIC_API_ERRORS,
            METRIC_API_ERRORS_HELP,
            &[("method", method), ("code", &result.code)],
        );
        Err(result)
    }

    /// Waits before the next attempt, if policy and deadline allow one.
    async fn wait_to_retry(&self, failure: &CallFailure, attempt: u32, deadline: Instant) -> bool {
        match next_delay(&self.options.retry, failure, attempt) {
            Some(delay) if Instant::now() + delay <= deadline => {
                tracing::warn!(
                    method = failure.method,
                    code = %failure.code,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "Slack call failed; retrying"
                );
                self.metrics.increment(
                    METRIC_RETRIES,
                    METRIC_RETRIES_HELP,
                    &[("method", failure.method)],
                );
                tokio::time::sleep(delay).await;
                true
            }
            _ => false,
        }
    }

    /// Runs a call that is safe to repeat, retrying as the failure's class allows.
    async fn idempotent<T, Fut>(
        &self,
        method: &'static str,
        channel: &str,
        deadline: Instant,
        call: impl Fn() -> Fut,
    ) -> Result<T, DeliveryError>
    where
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(method, call()).await {
                Ok(value) => return Ok(value),
                Err(failure) => {
                    if !self.wait_to_retry(&failure, attempt, deadline).await {
                        return Err(failure_error(failure, attempt, channel));
                    }
                }
            }
        }
    }

    /// The ID of a channel written as `#name` or as an ID; names are looked up once
    /// (every page of `conversations.list`) and cached.
    pub async fn channel_id(&self, written: &str) -> Result<String, DeliveryError> {
        let written = written.trim();
        if is_slack_id(written) {
            return Ok(written.to_string());
        }
        let name = written.trim_start_matches('#').to_lowercase();
        let mut ids = self.channel_ids.lock().await;
        if let Some(id) = ids.get(&name) {
            return Ok(id.clone());
        }
        let deadline = Instant::now() + self.options.retry.deadline;
        let session = self.client.open_session(&self.token);
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
        ids.get(&name).cloned().ok_or_else(|| DeliveryError::Slack {
            method: "conversations.list",
            code: "channel_not_found".into(),
            detail: Some(format!("no channel named #{name}")),
            attempts: 1,
            advice: advice("channel_not_found", written, None),
        })
    }

    async fn forget_channel(&self, id: &str) {
        self.channel_ids.lock().await.retain(|_, v| v != id);
    }

    /// Uploads the chart and returns its file id, completed and ready to be shared.
    async fn upload(
        &self,
        rendered: &Rendered,
        channel: &str,
        deadline: Instant,
    ) -> Result<SlackFileId, DeliveryError> {
        let session = self.client.open_session(&self.token);
        let ticket_request = SlackApiFilesGetUploadUrlExternalRequest {
            filename: format!("{}.png", rendered.report_id),
            length: rendered.png.len(),
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
            content: rendered.png.clone(),
            content_type: "image/png".into(),
        };
        self.idempotent("files.upload", channel, deadline, || {
            session.files_upload_via_url(&upload_request)
        })
        .await?;
        let complete_request = SlackApiFilesCompleteUploadExternalRequest {
            files: vec![SlackApiFilesComplete {
                id: ticket.file_id.clone(),
                title: Some(rendered.title.clone()),
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

    /// Looks for this report's post for this slot in the channel (or, with `thread_ts`,
    /// for its reply in that thread).
    async fn find_post(
        &self,
        channel_id: &str,
        report_id: &str,
        slot: &str,
        thread_ts: Option<&SlackTs>,
        deadline: Instant,
    ) -> Result<Option<SlackTs>, DeliveryError> {
        let session = self.client.open_session(&self.token);
        let channel = SlackChannelId(channel_id.to_string());
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..LOOKUP_MAX_PAGES {
            let (messages, next) = match thread_ts {
                None => {
                    let request = SlackApiConversationsHistoryRequest {
                        channel: Some(channel.clone()),
                        cursor: cursor.clone(),
                        latest: None,
                        limit: Some(LOOKUP_PAGE_SIZE),
                        oldest: lookup_oldest(slot),
                        inclusive: Some(true),
                        include_all_metadata: Some(true),
                    };
                    let page = self
                        .idempotent("conversations.history", channel_id, deadline, || {
                            session.conversations_history(&request)
                        })
                        .await?;
                    (page.messages, page.response_metadata)
                }
                Some(parent) => {
                    let request = SlackApiConversationsRepliesRequest {
                        channel: channel.clone(),
                        ts: parent.clone(),
                        cursor: cursor.clone(),
                        latest: None,
                        limit: Some(LOOKUP_PAGE_SIZE),
                        oldest: None,
                        inclusive: Some(true),
                    };
                    let page = self
                        .idempotent("conversations.replies", channel_id, deadline, || {
                            session.conversations_replies(&request)
                        })
                        .await?;
                    (page.messages, page.response_metadata)
                }
            };
            let expected_reply = thread_reply_text(report_id, slot);
            if let Some(found) = messages.iter().find(|m| match thread_ts {
                None => is_post_of(m, report_id, slot),
                Some(parent) => {
                    &m.origin.ts != parent
                        && m.content.text.as_deref() == Some(expected_reply.as_str())
                }
            }) {
                return Ok(Some(found.origin.ts.clone()));
            }
            cursor = next.and_then(|m| m.next_cursor).filter(|c| !c.0.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// Posts `message` exactly once: retries what is transient, and after any attempt
    /// whose answer was lost, looks for the post before sending it again.
    #[allow(clippy::too_many_arguments)]
    async fn post_exactly_once(
        &self,
        channel_id: &str,
        channel_written: &str,
        message: &Value,
        report_id: &str,
        slot: &str,
        thread_ts: Option<&SlackTs>,
        deadline: Instant,
    ) -> Result<(SlackTs, bool), DeliveryError> {
        let mut body = message.clone();
        body["channel"] = json!(channel_id);
        if let Some(parent) = thread_ts {
            body["thread_ts"] = json!(parent.0);
        }
        let request: SlackApiChatPostMessageRequest =
            serde_json::from_value(body).map_err(|e| DeliveryError::Slack {
                method: "chat.postMessage",
                code: "invalid_message".into(),
                detail: Some(e.to_string()),
                attempts: 0,
                advice: advice("invalid_blocks", channel_written, None),
            })?;
        let session = self.client.open_session(&self.token);
        let mut maybe_posted = false;
        let mut attempt = 0;
        let mut file_not_ready = 0;
        loop {
            if maybe_posted {
                match self
                    .find_post(channel_id, report_id, slot, thread_ts, deadline)
                    .await
                {
                    Ok(Some(ts)) => return Ok((ts, true)),
                    Ok(None) => {}
                    Err(lookup) => {
                        return Err(DeliveryError::Slack {
                            method: "chat.postMessage",
                            code: "unconfirmed".into(),
                            detail: Some(format!(
                                "the answer to a post was lost and looking for it failed: {lookup}"
                            )),
                            attempts: attempt,
                            advice: advice("unconfirmed", channel_written, None),
                        });
                    }
                }
            }
            attempt += 1;
            let failure = match self
                .attempt("chat.postMessage", session.chat_post_message(&request))
                .await
            {
                Ok(response) => return Ok((response.ts, false)),
                Err(failure) => failure,
            };
            maybe_posted = failure.answer_lost;
            if failure.code == "channel_not_found" {
                self.forget_channel(channel_id).await;
            }
            if failure.class == FailureClass::FileNotReady {
                file_not_ready += 1;
            }
            let retry = file_not_ready < FILE_READY_ATTEMPTS
                && self.wait_to_retry(&failure, attempt, deadline).await;
            if !retry {
                if maybe_posted {
                    // One last look: the final attempt itself may have gone through.
                    if let Ok(Some(ts)) = self
                        .find_post(channel_id, report_id, slot, thread_ts, deadline)
                        .await
                    {
                        return Ok((ts, true));
                    }
                }
                return Err(failure_error(failure, attempt, channel_written));
            }
        }
    }

    async fn permalink(&self, channel_id: &str, ts: &SlackTs) -> Option<String> {
        let session = self.client.open_session(&self.token);
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

    /// Answers a slash command through its `response_url` (text, visible to the asker only).
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), DeliveryError> {
        let url: url::Url = response_url.parse().map_err(|e| {
            DeliveryError::Setup(format!("Slack sent an unusable response_url: {e}"))
        })?;
        let request = SlackApiPostWebhookMessageRequest::new(
            SlackMessageContent::new().with_text(text.to_string()),
        );
        let deadline = Instant::now() + self.options.retry.deadline;
        self.idempotent("response_url", "", deadline, || {
            self.client.post_webhook_message(&url, &request)
        })
        .await
        .map(|_| ())
    }

    /// Posts a chart only `user` can see in `channel` (`private` answers, restricted
    /// metrics): the same upload, then `chat.postEphemeral`.
    pub async fn post_ephemeral(
        &self,
        rendered: &Rendered,
        channel: &str,
        user: &str,
    ) -> Result<(), DeliveryError> {
        let deadline = Instant::now() + self.options.retry.deadline;
        let file_id = self.upload(rendered, channel, deadline).await?;
        let mut message = with_file_id(rendered.message.clone(), &file_id.0);
        if let Some(m) = message.as_object_mut() {
            m.remove("metadata");
        }
        message["channel"] = json!(channel);
        message["user"] = json!(user);
        let request: SlackApiChatPostEphemeralRequest =
            serde_json::from_value(message).map_err(|e| DeliveryError::Slack {
                method: "chat.postEphemeral",
                code: "invalid_message".into(),
                detail: Some(e.to_string()),
                attempts: 0,
                advice: advice("invalid_blocks", channel, None),
            })?;
        let session = self.client.open_session(&self.token);
        // An ephemeral message shown twice is a nuisance, not a wrong number: plain retries.
        self.idempotent("chat.postEphemeral", channel, deadline, || {
            session.chat_post_ephemeral(&request)
        })
        .await
        .map(|_| ())
    }

    /// The user groups `user` belongs to (for `allowed_usergroups`); the membership list
    /// is read once per `USERGROUPS_CACHE_SECONDS`.
    pub async fn usergroups_of(&self, user: &str) -> Result<Vec<String>, DeliveryError> {
        let mut cache = self.usergroups.lock().await;
        let fresh = cache.as_ref().is_some_and(|(read_at, _)| {
            read_at.elapsed() < Duration::from_secs(USERGROUPS_CACHE_SECONDS)
        });
        if !fresh {
            *cache = Some((Instant::now(), self.read_usergroups().await?));
        }
        let groups = cache
            .as_ref()
            .map(|(_, g)| g.as_slice())
            .unwrap_or_default();
        Ok(groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == user))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn read_usergroups(&self) -> Result<UserGroups, DeliveryError> {
        let deadline = Instant::now() + self.options.retry.deadline;
        let session = self.client.open_session(&self.token);
        let request = SlackApiUserGroupsListRequest {
            include_count: None,
            include_disabled: Some(false),
            include_users: Some(true),
            team_id: None,
        };
        let groups = self
            .idempotent("usergroups.list", "", deadline, || {
                session.usergroups_list(&request)
            })
            .await?;
        Ok(groups
            .usergroups
            .into_iter()
            .map(|g| {
                let members = g.users.unwrap_or_default().into_iter().map(|u| u.0);
                (g.id.0, members.collect())
            })
            .collect())
    }

    async fn deliver_paced(
        &self,
        rendered: &Rendered,
        channel_written: &str,
        deadline: Instant,
    ) -> Result<Receipt, DeliveryError> {
        let channel_id = self.channel_id(channel_written).await?;
        let mut turn = self.pacer.turn(&channel_id).await;
        let report = rendered.report_id.as_str();
        let slot = rendered.slot.as_str();
        // No lookup before a normal post: only a lost answer leads to one (post_exactly_once);
        // crash recovery asks through `find_existing`.
        let file_id = self.upload(rendered, channel_written, deadline).await?;
        let message = with_file_id(rendered.message.clone(), &file_id.0);
        let (main, reply) = if rendered.thread {
            let (main, reply) = split_for_thread(&message, report, slot);
            (main, Some(reply))
        } else {
            (message, None)
        };
        let posted = self
            .post_exactly_once(
                &channel_id,
                channel_written,
                &main,
                report,
                slot,
                None,
                deadline,
            )
            .await;
        turn.posted();
        let (ts, found_existing) = posted?;
        let mut thread_ts = None;
        if let Some(reply) = reply {
            self.post_exactly_once(
                &channel_id,
                channel_written,
                &reply,
                report,
                slot,
                Some(&ts),
                deadline,
            )
            .await?;
            thread_ts = Some(ts.0.clone());
        }
        drop(turn);
        let permalink = self.permalink(&channel_id, &ts).await;
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
            permalink,
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
        let deadline = Instant::now() + self.options.retry.deadline;
        let result = self.deliver_paced(rendered, channel, deadline).await;
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
        result
    }

    async fn find_existing(&self, post: &PostIdentity) -> Result<Option<Receipt>, DeliveryError> {
        let Some(channel) = post.channel.as_deref() else {
            return Ok(None);
        };
        let deadline = Instant::now() + self.options.retry.deadline;
        let channel_id = self.channel_id(channel).await?;
        let Some(ts) = self
            .find_post(&channel_id, &post.report_id, &post.slot, None, deadline)
            .await?
        else {
            return Ok(None);
        };
        let permalink = self.permalink(&channel_id, &ts).await;
        Ok(Some(Receipt::Slack {
            channel: channel_id,
            ts: ts.0,
            permalink,
            thread_ts: None,
            found_existing: true,
        }))
    }

    async fn notify(&self, recipient: &str, text: &str) -> Result<(), DeliveryError> {
        let deadline = Instant::now() + self.options.retry.deadline;
        let channel_id = self.channel_id(recipient).await?;
        let mut turn = self.pacer.turn(&channel_id).await;
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId(channel_id.clone()),
            SlackMessageContent::new().with_text(text.to_string()),
        )
        .with_unfurl_links(false);
        // A duplicate notice is harmless; a lost one is not. Plain retries suffice.
        let result = self
            .idempotent("chat.postMessage", recipient, deadline, || {
                session.chat_post_message(&request)
            })
            .await;
        turn.posted();
        result.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_told_apart() {
        assert!(is_slack_id("C0123456789"));
        assert!(is_slack_id("U0ABCDEF12"));
        assert!(!is_slack_id("#kpi-daily"));
        assert!(!is_slack_id("kpi-daily"));
        assert!(!is_slack_id("Cat"));
    }

    #[test]
    fn advice_names_the_channel_and_the_fix() {
        assert_eq!(
            advice("not_in_channel", "#kpi-daily", None),
            "invite @kpibot to #kpi-daily: type `/invite @kpibot` in #kpi-daily"
        );
        assert!(
            advice("missing_scope", "#x", Some("needs scope files:write")).contains("files:write")
        );
        assert!(advice("invalid_auth", "#x", None).contains("KPIBOT__SLACK__BOT_TOKEN"));
    }

    #[test]
    fn thread_split_keeps_the_summary_in_channel_and_the_chart_in_the_reply() {
        let message = json!({
            "text": "t",
            "blocks": [{"type": "header"}, {"type": "section"}, {"type": "image"}, {"type": "context"}],
            "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {}},
        });
        let (main, reply) = split_for_thread(&message, "dau", "2026-11-26T09:00:00+09:00");
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

    #[test]
    fn lookups_start_shortly_before_the_slot() {
        assert_eq!(
            lookup_oldest("2026-11-26T09:00:00+09:00").unwrap().0,
            format!("{}.000000", 1_795_651_200 - LOOKUP_MARGIN_SECONDS)
        );
        assert_eq!(lookup_oldest("not a time"), None);
    }
}

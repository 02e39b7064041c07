//! Where alert notices go: Slack (posted once — a post whose answer was lost is looked
//! for before it is sent again — replies in the firing's thread, the root edited on
//! resolution, direct messages to a person) or, without a Slack token, a folder of the
//! exact message bodies. An enum, not a trait: there are these two and no others.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::message::{ALERT_EVENT_TYPE, notice_marker};
use crate::deliver::slack::{LOOKUP_MARGIN_SECONDS, LOOKUP_MAX_PAGES};
use crate::slack::post_once::{FILE_READY_ATTEMPTS, PostOnce};
use crate::slack::{Slack, SlackError};
use crate::spec::alert::is_user_target;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Slack(#[from] SlackError),
    /// Another process holds the notice now (this one paused past its lease): not posted.
    #[error("another process took this notice over; it posts it")]
    TakenOver,
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("cannot write the alert notice to {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// One notice's identity, as its message carries it.
#[derive(Debug, Clone)]
pub struct Marker {
    pub alert: String,
    pub evaluated_at: DateTime<Utc>,
    pub index: u32,
}

impl Marker {
    fn block_id(&self) -> String {
        notice_marker(&self.alert, self.evaluated_at, self.index)
    }

    fn evaluated_at_text(&self) -> String {
        self.evaluated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Whether a message from the channel's history or a thread is this notice.
    fn is_in(&self, message: &SlackHistoryMessage) -> bool {
        let marked = message.content.blocks.iter().flatten().any(|block| {
            matches!(block, SlackBlock::Context(context)
                if context.block_id.as_ref().is_some_and(|id| id.0 == self.block_id()))
        });
        let tagged = message.content.metadata.as_ref().is_some_and(|m| {
            let field = |name: &str| {
                m.event_payload
                    .as_ref()
                    .and_then(|p| p.get(name))
                    .map(|v| v.to_string())
            };
            m.event_type == ALERT_EVENT_TYPE
                && field("alert").as_deref() == Some(self.alert.as_str())
                && field("evaluated_at") == Some(self.evaluated_at_text())
                && field("notice") == Some(self.index.to_string())
        });
        marked || tagged
    }
}

/// Where alert notices go.
pub enum Notifier {
    Slack(Arc<Slack>),
    /// `<folder>/alerts/<alert>/<time>-<index>.json`: the exact `chat.postMessage` bodies.
    Folder(PathBuf),
}

impl Notifier {
    /// The channel ID a target is posted to: a channel's ID, or for a person the
    /// direct-message channel with them (so a lost post can be looked for there).
    pub async fn channel_of(&self, target: &str) -> Result<String, NotifyError> {
        match self {
            Notifier::Slack(slack) => {
                let deadline = slack.deadline();
                if is_user_target(target) {
                    Ok(slack.direct_channel(target, deadline).await?)
                } else {
                    Ok(slack.channel_id(target).await?)
                }
            }
            Notifier::Folder(_) => Ok(target.trim_start_matches('#').to_string()),
        }
    }

    /// Looks for this notice's message: in `thread` when it is a reply, else in the
    /// channel from shortly before the round.
    pub async fn find(
        &self,
        channel: &str,
        thread: Option<&str>,
        marker: &Marker,
    ) -> Result<Option<String>, NotifyError> {
        match self {
            Notifier::Folder(folder) => {
                let path = file_of(folder, marker);
                Ok(path.exists().then(|| file_ts(marker)))
            }
            Notifier::Slack(slack) => Ok(self
                .find_in_slack(slack, channel, thread, marker)
                .await?
                .map(|ts| ts.0)),
        }
    }

    /// [`Notifier::find`] in Slack: the thread's replies, or the channel's messages from
    /// shortly before the round.
    async fn find_in_slack(
        &self,
        slack: &Slack,
        channel: &str,
        thread: Option<&str>,
        marker: &Marker,
    ) -> Result<Option<SlackTs>, SlackError> {
        let parent = thread.map(|t| SlackTs(t.to_string()));
        let oldest = parent.is_none().then(|| {
            SlackTs(format!(
                "{}.000000",
                marker.evaluated_at.timestamp() - LOOKUP_MARGIN_SECONDS
            ))
        });
        slack
            .find_message(
                channel,
                parent.as_ref(),
                oldest,
                LOOKUP_MAX_PAGES,
                |m| marker.is_in(m),
                slack.deadline(),
            )
            .await
    }

    /// Posts `body` once to `channel` (in `thread` when given): transient failures are
    /// retried, and after an attempt whose answer was lost the message is looked for
    /// before it is sent again. Returns the message's ts.
    /// Posts a notice once. `guard` is asked right before each attempt (after the
    /// channel's rate-limit turn) whether the notice is still this process's, and until
    /// when; see [`crate::slack::Slack::post_once_or_find`].
    pub async fn post<G, GF>(
        &self,
        channel: &str,
        written: &str,
        thread: Option<&str>,
        body: &Value,
        marker: &Marker,
        mut guard: G,
    ) -> Result<String, NotifyError>
    where
        G: FnMut() -> GF,
        GF: std::future::Future<Output = Result<Option<std::time::Instant>, NotifyError>>,
    {
        let mut body = body.clone();
        body["channel"] = json!(channel);
        if let Some(parent) = thread {
            body["thread_ts"] = json!(parent);
        }
        match self {
            Notifier::Folder(folder) => {
                guard().await?;
                let path = file_of(folder, marker);
                write_json(&path, &body)?;
                Ok(file_ts(marker))
            }
            Notifier::Slack(slack) => {
                let options = PostOnce {
                    written,
                    deadline: slack.deadline(),
                    file_not_ready_attempts: FILE_READY_ATTEMPTS,
                };
                let (ts, _found) = slack
                    .post_once_or_find(&body, options, guard, || {
                        self.find_in_slack(slack, channel, thread, marker)
                    })
                    .await?;
                Ok(ts.0)
            }
        }
    }

    /// Uploads a chart for a message in `channel`; its file id.
    pub async fn upload_chart(
        &self,
        marker: &Marker,
        title: &str,
        png: &[u8],
        channel: &str,
    ) -> Result<String, NotifyError> {
        match self {
            Notifier::Folder(folder) => {
                let path = file_of(folder, marker).with_extension("png");
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| NotifyError::Folder {
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
                std::fs::write(&path, png).map_err(|source| NotifyError::Folder {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(path.display().to_string())
            }
            Notifier::Slack(slack) => {
                let name = format!("{}-{}.png", marker.alert, marker.evaluated_at.timestamp());
                Ok(slack
                    .upload_png(&name, title, png, channel, slack.deadline())
                    .await?
                    .0)
            }
        }
    }

    /// What a posted root shows that its edit keeps: the chart file, and the blocks
    /// `keep` picks (its drivers line and Why? button), as JSON.
    pub async fn root_parts(
        &self,
        channel: &str,
        ts: &str,
        marker: &Marker,
        keep: impl Fn(&Value) -> bool,
    ) -> (Option<String>, Vec<Value>) {
        match self {
            Notifier::Folder(folder) => {
                let path = file_of(folder, marker).with_extension("png");
                let chart = path.exists().then(|| path.display().to_string());
                let posted: Option<Value> = std::fs::read(file_of(folder, marker))
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                let kept = posted
                    .and_then(|m| m["blocks"].as_array().cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| keep(b))
                    .collect();
                (chart, kept)
            }
            Notifier::Slack(slack) => {
                let parent = SlackTs(ts.to_string());
                let Ok((messages, _)) = slack
                    .messages_page(channel, Some(&parent), (None, None), None, slack.deadline())
                    .await
                else {
                    return (None, Vec::new());
                };
                let Some(root) = messages.into_iter().find(|m| m.origin.ts == parent) else {
                    return (None, Vec::new());
                };
                let blocks = root.content.blocks.iter().flatten();
                let chart = blocks.clone().find_map(|block| match block {
                    SlackBlock::Image(image) => match &image.image_url_or_file {
                        SlackImageUrlOrFile::SlackFile {
                            slack_file: SlackFileIdOrUrl::Id { id },
                        } => Some(id.0.clone()),
                        _ => None,
                    },
                    _ => None,
                });
                let kept = blocks
                    .filter_map(|block| serde_json::to_value(block).ok())
                    .filter(|b| keep(b))
                    .collect();
                (chart, kept)
            }
        }
    }

    /// Replaces a posted message (the root of a firing, once resolved).
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        body: &Value,
        marker: &Marker,
    ) -> Result<(), NotifyError> {
        match self {
            Notifier::Folder(folder) => {
                let mut body = body.clone();
                body["channel"] = json!(channel);
                write_json(&file_of(folder, marker), &body)
            }
            Notifier::Slack(slack) => Ok(slack
                .update_message(channel, &SlackTs(ts.to_string()), body, slack.deadline())
                .await?),
        }
    }
}

fn file_of(folder: &std::path::Path, marker: &Marker) -> PathBuf {
    folder.join("alerts").join(&marker.alert).join(format!(
        "{}-{}.json",
        marker.evaluated_at.format("%Y%m%dT%H%M%SZ"),
        marker.index
    ))
}

/// A folder notice's stand-in for a Slack ts: unique per notice, stable across restarts.
fn file_ts(marker: &Marker) -> String {
    format!("{}.{:06}", marker.evaluated_at.timestamp(), marker.index)
}

fn write_json(path: &std::path::Path, body: &Value) -> Result<(), NotifyError> {
    let fail = |source| NotifyError::Folder {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let staging = path.with_extension("json.partial");
    let text = serde_json::to_string_pretty(body).unwrap_or_default();
    std::fs::write(&staging, text).map_err(fail)?;
    std::fs::rename(&staging, path).map_err(fail)
}

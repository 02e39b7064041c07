//! The delivery seam: hand a rendered report to Slack or to a folder and get a receipt,
//! ask whether a slot was already posted, and tell a report's owner what went wrong.

pub mod folder;
pub mod pacing;
pub mod retry;
pub mod slack;

use std::path::PathBuf;

pub use folder::FolderDelivery;
pub use slack::{SlackDelivery, SlackOptions};

/// A report run ready to deliver: the chart, the message and the data behind it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub report_id: String,
    pub title: String,
    /// Where it goes: `#name` or a channel ID. `None` for a run without a channel.
    pub channel: Option<String>,
    /// The scheduled slot (RFC 3339), or the time an ad-hoc run ran. With the report id,
    /// it identifies the post, so a slot is never posted twice.
    pub slot: String,
    /// Post the chart and details as a thread reply under a one-line summary.
    pub thread: bool,
    pub png: Vec<u8>,
    /// The exact `chat.postMessage` body, metadata included.
    pub message: serde_json::Value,
    /// The query result behind the chart, as CSV.
    pub csv: String,
}

/// Which post a delivery is: one per report and slot, in one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostIdentity {
    pub report_id: String,
    pub channel: Option<String>,
    /// The slot as written in the message metadata (see `pipeline::slot_text`).
    pub slot: String,
}

impl Rendered {
    /// A run's chart and data with the message built from `facts`, which also name the
    /// report, its title, channel and slot.
    pub fn from_facts(
        facts: &crate::render::MessageFacts,
        thread: bool,
        png: Vec<u8>,
        csv: String,
    ) -> Self {
        Self {
            report_id: facts.report_id.clone(),
            title: facts.title.clone(),
            channel: facts.channel.clone(),
            slot: facts.slot.clone(),
            thread,
            png,
            message: crate::render::build_message(facts),
            csv,
        }
    }

    pub fn identity(&self) -> PostIdentity {
        PostIdentity {
            report_id: self.report_id.clone(),
            channel: self.channel.clone(),
            slot: self.slot.clone(),
        }
    }
}

impl Receipt {
    /// The channel and message id the ledger records (the folder path for folder delivery).
    pub fn location(&self) -> (String, String) {
        match self {
            Receipt::Folder { png, .. } => ("folder".into(), png.display().to_string()),
            Receipt::Slack { channel, ts, .. } => (channel.clone(), ts.clone()),
        }
    }
}

/// Proof that a delivery happened, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Folder {
        png: PathBuf,
        json: PathBuf,
        csv: PathBuf,
    },
    Slack {
        /// The channel's ID.
        channel: String,
        /// The message's timestamp: its ID in the channel.
        ts: String,
        permalink: Option<String>,
        /// Set when the chart was posted as a reply in this thread.
        thread_ts: Option<String>,
        /// The post already existed (an earlier attempt got through); nothing was re-sent.
        found_existing: bool,
    },
}

impl Receipt {
    /// Where it went, in one line for logs and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Receipt::Folder { png, .. } => png.display().to_string(),
            Receipt::Slack {
                channel,
                ts,
                permalink,
                found_existing,
                ..
            } => format!(
                "{}{}",
                permalink
                    .clone()
                    .unwrap_or_else(|| format!("channel {channel}, ts {ts}")),
                if *found_existing {
                    " (already posted; not sent again)"
                } else {
                    ""
                }
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Slack {method} failed with `{code}`{} after {attempts} attempt(s); to fix: {advice}",
        detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Slack {
        method: &'static str,
        /// Slack's error code, or `timeout`, `connection`, `http_503`, `unconfirmed`.
        code: String,
        detail: Option<String>,
        attempts: u32,
        /// What the owner should do, in words.
        advice: String,
    },
    #[error("{0}")]
    Setup(String),
}

impl DeliveryError {
    /// A short machine-readable code for logs, metrics and the ledger.
    pub fn code(&self) -> &str {
        match self {
            DeliveryError::Write { .. } => "write_failed",
            DeliveryError::Slack { code, .. } => code,
            DeliveryError::Setup(_) => "setup",
        }
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The message a report's owner gets when a scheduled post failed for good.
pub fn failure_notice(
    what: &str,
    title: &str,
    post: &PostIdentity,
    error: &dyn std::error::Error,
) -> String {
    format!(
        ":warning: kpibot could not {what} *{title}* (`{}`) scheduled for {} to {}.\n{}",
        post.report_id,
        post.slot,
        post.channel.as_deref().unwrap_or("(no channel)"),
        error_chain(error)
    )
}

/// Somewhere a rendered report can go.
#[async_trait::async_trait]
pub trait Delivery: Send + Sync {
    /// Delivers the report; a receipt means it really arrived.
    async fn deliver(&self, rendered: &Rendered) -> Result<Receipt, DeliveryError>;

    /// The earlier delivery of the same report and slot, if there is one (used before
    /// re-running a slot that a crash left unfinished).
    async fn find_existing(&self, post: &PostIdentity) -> Result<Option<Receipt>, DeliveryError>;

    /// Tells a report's owner (a channel or a user) something went wrong.
    async fn notify(&self, recipient: &str, text: &str) -> Result<(), DeliveryError>;
}

/// Delivers; when that fails for good, tells the report's owner, and when even that
/// fails, says so in the log at error level. The delivery's error is returned either way.
pub async fn deliver_or_notify(
    delivery: &dyn Delivery,
    rendered: &Rendered,
    owner: &str,
) -> Result<Receipt, DeliveryError> {
    let error = match delivery.deliver(rendered).await {
        Ok(receipt) => return Ok(receipt),
        Err(error) => error,
    };
    let notice = failure_notice("deliver", &rendered.title, &rendered.identity(), &error);
    if let Err(notice_error) = delivery.notify(owner, &notice).await {
        tracing::error!(
            report = %rendered.report_id,
            slot = %rendered.slot,
            owner,
            error = %notice_error,
            notice = %notice,
            "could not tell the report's owner that delivery failed"
        );
    }
    Err(error)
}

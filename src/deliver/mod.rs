//! The delivery seam: hand a rendered report to Slack or to a folder and get a receipt,
//! ask whether a slot was already posted, and tell a report's owner what went wrong.

pub mod folder;
pub mod lookup;
pub mod pacing;
mod shape;
pub mod slack;

use std::path::PathBuf;

use crate::i18n::Locale;
pub use crate::i18n::error_chain;
use crate::i18n::mrkdwn::Mrkdwn;
pub use crate::render::Rendered;
use crate::slack::SlackError;
pub use crate::slack::SlackOptions;
pub use folder::FolderDelivery;
pub use slack::SlackDelivery;

/// Which post a delivery is: one per report and slot, in one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostIdentity {
    pub report_id: String,
    pub channel: Option<String>,
    /// The slot as written in the message metadata (see `pipeline::slot_text`).
    pub slot: String,
    /// Posted in two steps: a summary in the channel, then the chart in its thread.
    pub thread: bool,
    /// Thread mode: the summary's ts when the ledger recorded it (only the thread is
    /// searched then).
    pub summary_ts: Option<String>,
}

impl PostIdentity {
    /// The post `rendered` makes.
    pub fn of(rendered: &Rendered) -> Self {
        Self {
            report_id: rendered.report_id.clone(),
            channel: rendered.channel.clone(),
            slot: rendered.slot.clone(),
            thread: rendered.thread,
            summary_ts: rendered.resume_thread.clone(),
        }
    }
}

impl Receipt {
    /// Whether every step of the post exists: in thread mode, the reply as well as the
    /// summary. An incomplete one is finished by posting only the reply.
    pub fn is_complete(&self, post: &PostIdentity) -> bool {
        match self {
            Receipt::Folder { .. } => true,
            Receipt::Slack { thread_ts, .. } => !post.thread || thread_ts.is_some(),
        }
    }

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
        /// Set when the chart was posted as a reply in this thread.
        thread_ts: Option<String>,
        /// The post already existed (an earlier attempt got through); nothing was re-sent.
        found_existing: bool,
    },
}

impl Receipt {
    /// Where it went, in one line for logs and the CLI: `link` (a permalink, asked for
    /// only where one is shown) or else the channel and ts.
    pub fn describe(&self, link: Option<&str>) -> String {
        match self {
            Receipt::Folder { png, .. } => png.display().to_string(),
            Receipt::Slack {
                channel,
                ts,
                found_existing,
                ..
            } => format!(
                "{}{}",
                link.map_or_else(|| format!("channel {channel}, ts {ts}"), str::to_string),
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
    #[error(transparent)]
    Slack(SlackError),
    #[error("{0}")]
    Setup(String),
    /// Another process holds the slot now (this one paused past its lease): not posted.
    #[error("{}", crate::tr!(Locale::En, "delivery-taken-over"))]
    SlotTakenOver,
}

/// Asks the post's guard, if it has one, whether the post may still go out to `channel`
/// (as the delivery resolved it: Slack's channel ID): the instant it must be sent by, or
/// `None` for a post without a guard.
pub async fn check_guard(
    rendered: &Rendered,
    channel: &str,
) -> Result<Option<std::time::Instant>, DeliveryError> {
    let Some(guard) = &rendered.guard else {
        return Ok(None);
    };
    if let Some(until) = guard.allows(channel).await {
        return Ok(Some(until));
    }
    tracing::warn!(report = %rendered.report_id, slot = %rendered.slot, "the slot was taken over by another process; not posting");
    Err(DeliveryError::SlotTakenOver)
}

impl From<SlackError> for DeliveryError {
    fn from(error: SlackError) -> Self {
        match error {
            SlackError::Setup(why) => DeliveryError::Setup(why),
            call => DeliveryError::Slack(call),
        }
    }
}

impl DeliveryError {
    /// What went wrong and what to do, in `locale`, for the report's owner.
    pub fn text(&self, locale: Locale) -> String {
        match self {
            DeliveryError::Slack(error) => error.text(locale),
            DeliveryError::SlotTakenOver => crate::tr!(locale, "delivery-taken-over"),
            other => error_chain(other),
        }
    }

    /// [`DeliveryError::text`] as Slack mrkdwn, for a notice or a reply.
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        match self {
            DeliveryError::Slack(error) => error.mrkdwn(locale),
            other => Mrkdwn::value(&other.text(locale)),
        }
    }

    /// A short machine-readable code for logs, metrics and the ledger.
    pub fn code(&self) -> &str {
        match self {
            DeliveryError::Write { .. } => "write_failed",
            DeliveryError::Slack(error) => error.code(),
            DeliveryError::Setup(_) => "setup",
            DeliveryError::SlotTakenOver => "slot_taken_over",
        }
    }
}

/// What failed for good: running a report, or delivering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStep {
    Run,
    Deliver,
}

/// The message a report's owner gets when a scheduled post failed for good, in the
/// report's language, as Slack mrkdwn.
pub fn failure_notice(
    step: FailedStep,
    title: &str,
    post: &PostIdentity,
    error: &Mrkdwn,
    locale: Locale,
) -> String {
    let key = match step {
        FailedStep::Run => "notice-run-failed",
        FailedStep::Deliver => "notice-delivery-failed",
    };
    let channel = match &post.channel {
        Some(channel) => Mrkdwn::value(channel),
        None => Mrkdwn::formatted(crate::tr_mrkdwn!(locale, "notice-no-channel")),
    };
    crate::tr_mrkdwn!(
        locale,
        key,
        title = title,
        report = &post.report_id,
        slot = crate::i18n::slot_time(locale, &post.slot),
        channel = channel,
        error = error
    )
}

/// Somewhere a rendered report can go.
#[async_trait::async_trait]
pub trait Delivery: Send + Sync {
    /// Delivers the report; a receipt means it really arrived.
    async fn deliver(&self, rendered: &Rendered) -> Result<Receipt, DeliveryError>;

    /// The earlier delivery of the same report and slot, if there is one (used before
    /// re-running a slot that a crash left unfinished). In thread mode the receipt may be
    /// incomplete ([`Receipt::is_complete`]): the summary without its reply.
    async fn find_existing(&self, post: &PostIdentity) -> Result<Option<Receipt>, DeliveryError>;

    /// Tells a report's owner (a channel or a user) something went wrong.
    async fn notify(&self, recipient: &str, text: &str) -> Result<(), DeliveryError>;

    /// A link to what `receipt` names, for a person to click. Asked only where a link is
    /// shown (the CLI's one line): on Slack it costs a `chat.getPermalink` call, which a
    /// busy morning of posts cannot afford one of each.
    async fn link(&self, _receipt: &Receipt) -> Option<String> {
        None
    }
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
        // Nothing failed: the process now holding the slot posts it and tells the owner.
        Err(error @ DeliveryError::SlotTakenOver) => return Err(error),
        Err(error) => error,
    };
    let notice = failure_notice(
        FailedStep::Deliver,
        &rendered.title,
        &PostIdentity::of(rendered),
        &error.mrkdwn(rendered.locale),
        rendered.locale,
    );
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

//! Slots a stopped process left open: take one over, find out from the ledger (and only
//! where it cannot tell, from Slack) whether its post exists, then record it or run it
//! again; a post that cannot be confirmed is looked for again later, never sent blind.

use std::sync::Arc;

use chrono::Utc;

use super::Scheduler;
use super::run::lookup;
use crate::deliver::{DeliveryError, PostIdentity, error_chain};
use crate::ledger::{Fence, Outcome, RunRecord, SlotKey};
use crate::pipeline::slot_text;
use crate::retry::{RetryPolicy, backoff_delay};
use crate::spec::{ReportSpec, ScheduleSpec};
use crate::tr_mrkdwn;

/// A crashed slot is recovered at most this many times before it is marked failed.
pub const MAX_RECOVERIES: u32 = 3;

const METRIC_TAKEOVERS: &str = "kpibot_ledger_takeovers_total";

const METRIC_TAKEOVERS_HELP: &str =
    "Slots taken over from a process whose lease lapsed (it died or paused mid-run)";

impl Scheduler {
    /// Takes over a slot whose process died mid-run: if the post exists, record it;
    /// otherwise run it again (within the catch-up window).
    pub(super) async fn recover(self: Arc<Self>, record: RunRecord) {
        let Some(place) = self.place().await else {
            return;
        };
        let key = record.key.clone();
        // One takeover time for every try (a retry recognises its own applied update).
        let (ledger, taken_at) = (self.parts.ledger.clone(), Utc::now());
        let won = self
            .ledger_step(
                "take over an abandoned slot",
                &key,
                self.config.lease,
                || {
                    let (ledger, key, lease) = (&ledger, &key, self.lease());
                    Box::pin(
                        async move { ledger.reclaim(key, &lease, taken_at, record.attempts).await },
                    )
                },
            )
            .await;
        let Some(Some(fence)) = won else {
            // Another process got it first, or the ledger stayed away: the row is still
            // abandoned then, and the next lease round tries again.
            return;
        };
        let _held = self.hold(&key, &fence);
        // The row as it is now: the copy this recovery was queued with may predate a post
        // attempt of the generation before (none can begin once the row is taken over).
        // Unreadable: assume a post may exist, and look.
        let (may_have_posted, summary_ts) = match self.parts.ledger.get(&key).await {
            Ok(Some(now)) => (now.may_have_posted(), now.summary_ts),
            _ => (true, record.summary_ts.clone()),
        };
        self.parts
            .metrics
            .increment(METRIC_TAKEOVERS, METRIC_TAKEOVERS_HELP, &[]);
        tracing::warn!(report = %key.report, slot = %key.slot, attempts = record.attempts + 1, "recovering a slot a stopped process left unfinished");
        let catalog = self.catalog();
        let Some((spec, schedule)) = lookup(&catalog, &key) else {
            self.finish(
                &key,
                &fence,
                Outcome::Failed {
                    error: "the report or its schedule was removed before the slot finished".into(),
                },
            )
            .await;
            return;
        };
        let post = PostIdentity {
            report_id: spec.id.clone(),
            channel: Some(schedule.channel.clone()),
            slot: slot_text(spec.timezone, key.slot),
            thread: schedule.thread,
            summary_ts,
        };
        let mut resume = None;
        // The ledger says whether any post was ever attempted: if none was, there is
        // nothing to find, and Slack's history (Tier 1) is not asked.
        let found = if may_have_posted {
            self.parts.delivery.find_existing(&post).await
        } else {
            Ok(None)
        };
        match found {
            Ok(Some(receipt)) if receipt.is_complete(&post) => {
                let (channel, ts) = receipt.location();
                tracing::info!(report = %key.report, slot = %key.slot, %channel, %ts, "the post already exists; recorded, not re-sent");
                self.finish(
                    &key,
                    &fence,
                    Outcome::Delivered {
                        channel,
                        ts,
                        rows: 0,
                        bytes: None,
                    },
                )
                .await;
                return;
            }
            Ok(Some(summary)) => {
                // Thread mode stopped between its steps: post only the missing reply.
                let (_, ts) = summary.location();
                tracing::info!(report = %key.report, slot = %key.slot, %ts, "the summary exists without its chart reply; posting only the reply");
                resume = Some(ts);
            }
            Ok(None) => {}
            Err(error) => {
                self.unconfirmed(&key, &fence, &record, spec, schedule, &post, &error)
                    .await;
                return;
            }
        }
        let too_old = self.older_than_catch_up(&key, schedule);
        if too_old || record.attempts >= MAX_RECOVERIES {
            let error = if too_old {
                "the run stopped before it finished and the slot is now older than the catch-up window".to_string()
            } else {
                format!("the run stopped before it finished {MAX_RECOVERIES} times")
            };
            self.finish(&key, &fence, Outcome::Failed { error }).await;
            return;
        }
        self.run_claimed(&key, &fence, spec, schedule, resume, place)
            .await;
    }

    /// Whether an interrupted slot was posted cannot be told (the history lookup failed):
    /// try again later with backoff; past the attempts or the catch-up window, fail it and
    /// tell the owner to look — never leave it open, never post it blind.
    #[allow(clippy::too_many_arguments)]
    async fn unconfirmed(
        &self,
        key: &SlotKey,
        fence: &Fence,
        record: &RunRecord,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
        post: &PostIdentity,
        error: &DeliveryError,
    ) {
        let attempts = record.attempts + 1;
        if attempts < MAX_RECOVERIES && !self.older_than_catch_up(key, schedule) {
            let policy = RetryPolicy {
                base_delay: self.config.recovery_retry,
                max_delay: self.config.recovery_retry * 10,
                ..RetryPolicy::default()
            };
            let delay = backoff_delay(&policy, attempts);
            let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            tracing::warn!(report = %key.report, slot = %key.slot, attempts, retry_in_ms = delay.as_millis() as u64, error = %error_chain(error), "could not check whether a slot was already posted; will look again");
            if let Err(e) = self.parts.ledger.release(key, fence, retry_at).await {
                tracing::error!(error = %e, "could not release an unconfirmed slot for a later look");
            }
            return;
        }
        let text = tr_mrkdwn!(
            self.locale_of(spec),
            "notice-unconfirmed",
            title = spec.title.as_str(),
            report = spec.id.as_str(),
            slot = crate::i18n::slot_time(self.locale_of(spec), &post.slot),
            attempts = attempts,
            error = error.mrkdwn(self.locale_of(spec)),
            channel = schedule.channel.as_str()
        );
        self.notify_owner(spec, &text).await;
        self.finish(
            key,
            fence,
            Outcome::Failed {
                error: format!(
                    "unconfirmed: may or may not have posted; check {}",
                    schedule.channel
                ),
            },
        )
        .await;
    }
}

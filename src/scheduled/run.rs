//! One slot, start to end: claim it (or take over one a dead process left), run the report
//! through the pipeline (transient warehouse failures retried with backoff), deliver it,
//! record how it ended, and tell the owner when it failed for good.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Scheduler;
use crate::catalog::Catalog;
use crate::deliver::{DeliveryError, PostIdentity, deliver_or_notify, error_chain, failure_notice};
use crate::ledger::{Claim, Fence, Outcome, RunRecord, SlotKey};
use crate::pipeline::{self, PipelineError, RunOptions, slot_text};
use crate::render::PostGuard;
use crate::retry::{RetryPolicy, backoff_delay};
use crate::spec::{ReportSpec, ScheduleSpec};
use crate::warehouse::Trigger;

/// A crashed slot is recovered at most this many times before it is marked failed.
pub const MAX_RECOVERIES: u32 = 3;

/// The first wait before re-running a query that failed transiently.
pub const WAREHOUSE_RETRY_BASE_DELAY_MS: u64 = 2000;

const METRIC_DURATION: &str = "kpibot_run_duration_seconds";

const METRIC_DURATION_HELP: &str = "Time from claim to delivery of a scheduled run";

const METRIC_ROWS: &str = "kpibot_warehouse_rows_total";

const METRIC_ROWS_HELP: &str = "Rows returned by report queries";

const METRIC_NOTICES_LOST: &str = "kpibot_owner_notices_failed_total";

const METRIC_NOTICES_LOST_HELP: &str = "Failure notices that could not be sent to an owner";

impl Scheduler {
    /// Takes over a slot whose process died mid-run: if the post exists, record it;
    /// otherwise run it again (within the catch-up window).
    pub(super) async fn recover(self: Arc<Self>, record: RunRecord) {
        let key = record.key.clone();
        let fence = match self
            .parts
            .ledger
            .reclaim(&key, &self.lease(), Utc::now())
            .and_then(|won| {
                won.then(|| self.parts.ledger.fence(&key, &self.owner))
                    .transpose()
            }) {
            Ok(Some(fence)) => fence,
            Ok(None) => return, // another process got it first
            Err(error) => {
                tracing::error!(error = %error, "could not reclaim an abandoned slot");
                return;
            }
        };
        tracing::warn!(report = %key.report, slot = %key.slot, attempts = record.attempts + 1, "recovering a slot a stopped process left unfinished");
        let catalog = self.catalog();
        let Some((spec, schedule)) = lookup(&catalog, &key) else {
            self.finish(
                &key,
                &fence,
                Outcome::Failed {
                    error: "the report or its schedule was removed before the slot finished".into(),
                },
            );
            return;
        };
        let post = PostIdentity {
            report_id: spec.id.clone(),
            channel: Some(schedule.channel.clone()),
            slot: slot_text(spec.timezone, key.slot),
        };
        match self.parts.delivery.find_existing(&post).await {
            Ok(Some(receipt)) => {
                let (channel, ts) = receipt.location();
                tracing::info!(report = %key.report, slot = %key.slot, %channel, %ts, "the post already exists; recorded, not re-sent");
                self.finish(
                    &key,
                    &fence,
                    Outcome::Delivered {
                        channel,
                        ts,
                        rows: 0,
                    },
                );
                return;
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
            self.finish(&key, &fence, Outcome::Failed { error });
            return;
        }
        self.run_claimed(&key, &fence, spec, schedule).await;
    }

    fn older_than_catch_up(&self, key: &SlotKey, schedule: &ScheduleSpec) -> bool {
        Utc::now() - key.slot
            > chrono::Duration::from_std(self.catch_up_window(schedule)).unwrap_or_default()
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
            if let Err(e) = self.parts.ledger.release(key, retry_at) {
                tracing::error!(error = %e, "could not release an unconfirmed slot for a later look");
            }
            return;
        }
        let text = format!(
            ":warning: *{}* (`{}`) for {} may or may not have posted: kpibot could not check after {attempts} tries ({}). Check {} before re-running it.",
            spec.title,
            spec.id,
            post.slot,
            error_chain(error),
            schedule.channel
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
        );
    }

    pub(super) async fn claim_and_run(self: Arc<Self>, key: SlotKey) {
        let claimed = self
            .parts
            .ledger
            .claim(&key, &self.lease(), Utc::now())
            .and_then(|claim| match claim {
                Claim::Won => self.parts.ledger.fence(&key, &self.owner).map(Some),
                Claim::Taken(_) => Ok(None),
            });
        let fence = match claimed {
            Ok(Some(fence)) => fence,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not claim a slot; it will not run");
                return;
            }
        };
        let catalog = self.catalog();
        match lookup(&catalog, &key) {
            Some((spec, schedule)) => self.run_claimed(&key, &fence, spec, schedule).await,
            None => self.finish(
                &key,
                &fence,
                Outcome::Skipped {
                    reason: "the report was removed".into(),
                },
            ),
        }
    }

    /// Records how the run ended, if this process still holds the slot.
    pub(super) fn finish(&self, key: &SlotKey, fence: &Fence, outcome: Outcome) {
        let state = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::NoData { .. } => "no_data",
        };
        match self
            .parts
            .ledger
            .finish_fenced(key, fence, &outcome, Utc::now())
        {
            Ok(()) => self.count_run(&key.report, state),
            Err(error) => {
                tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not record how a run ended")
            }
        }
    }

    /// Whether this process may still post `key`: its fence holds the row and the lease
    /// has not run out.
    fn post_guard(&self, key: &SlotKey, fence: &Fence) -> PostGuard {
        let (ledger, key, fence) = (self.parts.ledger.clone(), key.clone(), fence.clone());
        PostGuard::new(move || {
            ledger.holds(&key, &fence, Utc::now()).unwrap_or_else(|error| {
                tracing::error!(error = %error, "could not check the slot's lease before posting; not posting");
                false
            })
        })
    }

    async fn notify_owner(&self, spec: &ReportSpec, text: &str) {
        if let Err(error) = self.parts.delivery.notify(&spec.owner, text).await {
            self.parts
                .metrics
                .increment(METRIC_NOTICES_LOST, METRIC_NOTICES_LOST_HELP, &[]);
            tracing::error!(report = %spec.id, owner = %spec.owner, error = %error, notice = %text, "could not tell the report's owner");
        }
    }

    /// Runs a claimed slot to its end and records it.
    async fn run_claimed(
        &self,
        key: &SlotKey,
        fence: &Fence,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
    ) {
        let started = std::time::Instant::now();
        if let Err(error) = self
            .parts
            .ledger
            .mark_running_fenced(key, fence, Utc::now())
        {
            tracing::error!(error = %error, "could not mark a run as running");
            return;
        }
        let outcome = self.run_to_outcome(key, fence, spec, schedule).await;
        self.finish(key, fence, outcome);
        self.parts.metrics.observe_seconds(
            METRIC_DURATION,
            METRIC_DURATION_HELP,
            &[("report", &spec.id)],
            started.elapsed().as_secs_f64(),
        );
    }

    async fn run_to_outcome(
        &self,
        key: &SlotKey,
        fence: &Fence,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
    ) -> Outcome {
        let post = PostIdentity {
            report_id: spec.id.clone(),
            channel: Some(schedule.channel.clone()),
            slot: slot_text(spec.timezone, key.slot),
        };
        if let Some(freshness) = &spec.freshness
            && let Err(reason) = self.wait_for_fresh_data(spec, freshness, key.slot).await
        {
            self.notify_owner(
                spec,
                &format!(
                    ":hourglass: *{}* (`{}`) scheduled for {} was not posted to {}: the data is not refreshed yet ({reason}).",
                    spec.title, spec.id, post.slot, schedule.channel
                ),
            )
            .await;
            return Outcome::Skipped {
                reason: format!("data not refreshed: {reason}"),
            };
        }
        let options = RunOptions {
            channel: Some(schedule.channel.clone()),
            slot: Some(key.slot),
            thread: schedule.thread,
            limits: self.config.limits,
            ..RunOptions::new(key.slot, self.config.default_timeout, Trigger::Schedule)
        };
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(WAREHOUSE_RETRY_BASE_DELAY_MS),
            max_attempts: self.config.warehouse_attempts,
            ..RetryPolicy::default()
        };
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match pipeline::run(self.parts.warehouse.as_ref(), spec, &options).await {
                Ok(outcome) => break outcome,
                Err(error) if is_transient(&error) && attempt < retry.max_attempts => {
                    let delay = backoff_delay(&retry, attempt);
                    tracing::warn!(report = %spec.id, attempt, error = %error_chain(&error), "report query failed transiently; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    tracing::error!(report = %spec.id, slot = %post.slot, error = %error_chain(&error), "report run failed");
                    self.notify_owner(spec, &failure_notice("run", &spec.title, &post, &error))
                        .await;
                    return Outcome::Failed {
                        error: error_chain(&error),
                    };
                }
            }
        };
        let rows = outcome.table.rows.len() as u64;
        self.parts.metrics.add(
            METRIC_ROWS,
            METRIC_ROWS_HELP,
            &[("report", &spec.id)],
            rows as f64,
        );
        // Asked right before the post goes out: a process that paused past its lease, whose
        // slot another process has taken over, stops here.
        let mut rendered = outcome.rendered.clone();
        rendered.guard = Some(self.post_guard(key, fence));
        match deliver_or_notify(self.parts.delivery.as_ref(), &rendered, &spec.owner).await {
            Ok(receipt) => {
                let (channel, ts) = receipt.location();
                tracing::info!(report = %spec.id, slot = %post.slot, %channel, %ts, rows, "delivered");
                if outcome.no_data {
                    Outcome::NoData { channel, ts }
                } else {
                    Outcome::Delivered { channel, ts, rows }
                }
            }
            Err(error) => {
                let code = error.code().to_string();
                Outcome::Failed {
                    error: format!("{code}: {error}"),
                }
            }
        }
    }
}

fn is_transient(error: &PipelineError) -> bool {
    matches!(error, PipelineError::Warehouse { source, .. } if source.is_transient())
}

fn lookup<'c>(catalog: &'c Catalog, key: &SlotKey) -> Option<(&'c ReportSpec, &'c ScheduleSpec)> {
    let spec = catalog.get(&key.report)?;
    let schedule = spec.schedules.get(key.schedule as usize)?;
    Some((spec, schedule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::WarehouseError;

    #[test]
    fn transient_warehouse_errors_are_retried_and_sql_errors_are_not() {
        let warehouse = |source| PipelineError::Warehouse {
            report: "r".into(),
            location: "r.toml:3:1".into(),
            source,
        };
        assert!(is_transient(&warehouse(WarehouseError::Timeout(
            Duration::from_secs(1)
        ))));
        assert!(is_transient(&warehouse(WarehouseError::Unavailable(
            "down".into()
        ))));
        assert!(!is_transient(&warehouse(WarehouseError::Query {
            message: "syntax".into(),
            line: Some(1),
            column: None,
        })));
        assert!(!is_transient(&warehouse(WarehouseError::Refused {
            reason: "accessDenied".into(),
            message: "no bigquery.jobs.create".into(),
            advice: "grant it".into(),
        })));
    }
}

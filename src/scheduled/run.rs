//! One slot, start to end: claim it (or take over one a dead process left), run the report
//! through the pipeline (a warehouse outage retried with backoff for a set time), deliver
//! it, record how it ended, and tell the owner when it failed for good. A ledger that is
//! briefly unreachable delays these steps; it never loses the slot.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Scheduler;
use crate::budget::Payer;
use crate::catalog::Catalog;
use crate::catalog::access::decide_post;
use crate::deliver::{
    DeliveryError, FailedStep, PostIdentity, deliver_or_notify, error_chain, failure_notice,
};
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::ledger::{Claim, Fence, Ledger, LedgerError, Outcome, SlotKey};
use crate::pipeline::{self, PipelineError, RunOptions, slot_text};
use crate::render::PostGuard;
use crate::render::report::{GuardAnswer, GuardVerdict};
use crate::retry::{RetryPolicy, backoff_delay};
use crate::spec::{ReportSpec, ScheduleSpec};
use crate::tr_mrkdwn;
use crate::warehouse::Trigger;

/// The longest wait between two tries of a query during a warehouse outage.
pub const WAREHOUSE_RETRY_MAX_DELAY_MS: u64 = 60_000;

/// The first wait before trying a ledger statement again while the database is away.
const LEDGER_RETRY_BASE_DELAY_MS: u64 = 200;

/// The longest wait between two tries of a ledger statement.
const LEDGER_RETRY_MAX_DELAY_MS: u64 = 5_000;

/// Added to Slack's interval between two posts to a channel when turns are handed out:
/// a post reaches Slack a little earlier or later than its turn (the guard's ledger
/// check, the request itself), and Slack measures at arrival.
const CHANNEL_TURN_MARGIN_MS: u64 = 150;

/// The longest a post waits for its channel's turn. A channel's queue across replicas is
/// a few posts (each process paces its own posts to a channel one by one); a longer wait
/// means a turn handed out by a clock that runs ahead.
const CHANNEL_TURN_MAX_WAIT_MS: u64 = 10_000;

/// A ledger statement, still running.
type LedgerFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, LedgerError>> + Send + 'a>>;

const METRIC_CLAIMS: &str = "kpibot_ledger_claims_total";

const METRIC_CLAIMS_HELP: &str =
    "Slot claims by outcome: won (this process runs it) or lost (another had it)";

const METRIC_DURATION: &str = "kpibot_run_duration_seconds";

const METRIC_DURATION_HELP: &str = "Time from claim to delivery of a scheduled run";

const METRIC_ROWS: &str = "kpibot_warehouse_rows_total";

const METRIC_ROWS_HELP: &str = "Rows returned by report queries";

const METRIC_NOTICES_LOST: &str = "kpibot_owner_notices_failed_total";

const METRIC_NOTICES_LOST_HELP: &str = "Failure notices that could not be sent to an owner";

impl Scheduler {
    /// Runs a ledger step, retrying with backoff while the database is unreachable (a
    /// restart, a failover) for up to `patience`: the slot waits, it is not lost. Steps
    /// on a claimed row wait a lease (after that it has lapsed, and the row is recovered
    /// like any other); a claim waits as long as the slot may still be caught up.
    pub(super) async fn ledger_step<'a, T>(
        &self,
        what: &str,
        key: &SlotKey,
        patience: Duration,
        step: impl Fn() -> LedgerFuture<'a, T>,
    ) -> Option<T> {
        let deadline = std::time::Instant::now() + patience;
        match retry_ledger(what, key, deadline, step).await {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not {what}");
                None
            }
        }
    }

    pub(super) fn older_than_catch_up(&self, key: &SlotKey, schedule: &ScheduleSpec) -> bool {
        Utc::now() - key.slot
            > chrono::Duration::from_std(self.catch_up_window(schedule)).unwrap_or_default()
    }

    pub(super) async fn claim_and_run(self: Arc<Self>, key: SlotKey) {
        // Claimed only with a place to run it: until then another replica may take it.
        let Some(place) = self.place().await else {
            return;
        };
        // A slot that waited for a place past its catch-up window is skipped, with the
        // reason recorded, like one missed while kpibot was down.
        if let Some((_, schedule)) = lookup(&self.catalog(), &key)
            && self.older_than_catch_up(&key, schedule)
        {
            let id = super::ScheduleId::of(&key);
            let window = self.catch_up_window(schedule);
            let why = "was busy with other slots";
            if let Err(error) = self
                .record_skipped(&id, &[key.slot], why, window, Utc::now())
                .await
            {
                tracing::error!(error = %error, "could not record a skipped slot");
            }
            return;
        }
        let ledger = self.parts.ledger.clone();
        // A slot due while the database is away is claimed when it is back, as long as it
        // is inside its catch-up window: a long outage delays it, never drops it.
        let patience = lookup(&self.catalog(), &key)
            .and_then(|(_, schedule)| {
                let window = chrono::Duration::from_std(self.catch_up_window(schedule)).ok()?;
                (key.slot + window - Utc::now()).to_std().ok()
            })
            .unwrap_or(self.config.lease);
        // One claim time for every try, so a retry recognises an insert whose answer
        // was lost; a fresh lease on every try, as one taken before a long wait lapsed.
        let claimed_at = Utc::now();
        let claim = self
            .ledger_step("claim the slot", &key, patience, || {
                let (ledger, key, lease) = (&ledger, &key, self.lease());
                Box::pin(async move { ledger.claim(key, &lease, claimed_at).await })
            })
            .await;
        let won = matches!(claim, Some(Claim::Won));
        if claim.is_some() {
            let outcome = if won { "won" } else { "lost" };
            self.parts.metrics.increment(
                METRIC_CLAIMS,
                METRIC_CLAIMS_HELP,
                &[("outcome", outcome)],
            );
        }
        if !won {
            // Lost to another process; or the ledger stayed away for the slot's whole
            // catch-up window, or failed for good (both logged by `ledger_step`).
            return;
        }
        let fence = Fence::first(&self.owner);
        let _held = self.hold(&key, &fence);
        let catalog = self.catalog();
        match lookup(&catalog, &key) {
            Some((spec, schedule)) => {
                self.run_claimed(&key, &fence, spec, schedule, None, place)
                    .await
            }
            None => {
                self.finish(
                    &key,
                    &fence,
                    Outcome::Skipped {
                        reason: "the report was removed".into(),
                    },
                )
                .await
            }
        }
    }

    /// Records how the run ended, if this process still holds the slot.
    pub(super) async fn finish(&self, key: &SlotKey, fence: &Fence, outcome: Outcome) {
        let state = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::NoData { .. } => "no_data",
        };
        let ledger = self.parts.ledger.clone();
        let recorded = self
            .ledger_step("record how a run ended", key, self.config.lease, || {
                Box::pin(ledger.finish_fenced(key, fence, &outcome, Utc::now()))
            })
            .await;
        // Not recorded: the row stays open, its lease lapses, and whoever takes it over
        // finds the post in Slack and records it.
        if recorded.is_some() {
            self.count_run(&key.report, state);
        }
    }

    /// Whether this process may still post `key`: its fence holds the row and the lease
    /// runs for a quarter of a lease more at least (room for the post itself and for
    /// clocks that differ a little between replicas). Asked before every attempt, and a
    /// yes is recorded (recovery then knows a post may exist). A busy or briefly absent
    /// ledger is asked again until the lease could have lapsed: only a "no" or a ledger
    /// gone for that long stops the post. In thread mode it also records the summary's
    /// ts (step one).
    fn post_guard(&self, key: &SlotKey, fence: &Fence) -> PostGuard {
        let (ledger, key, fence) = (self.parts.ledger.clone(), key.clone(), fence.clone());
        let (step_ledger, step_key, step_fence) = (ledger.clone(), key.clone(), fence.clone());
        let turns = self.config.channel_turns;
        let lease = self.config.lease;
        let margin = chrono::Duration::from_std(lease / 4).unwrap_or_default();
        // The turn is the channel's as Slack knows it (its ID), whatever name or ID the
        // report or an alert wrote, so every post to it shares one pace.
        PostGuard::new(move |channel: &str| -> GuardVerdict {
            let (ledger, key, fence, channel) =
                (ledger.clone(), key.clone(), fence.clone(), channel.to_string());
            Box::pin(async move {
                let give_up_at = std::time::Instant::now() + lease;
                if let Some(interval) = turns {
                    wait_for_channel_turn(&ledger, &key, &channel, interval, give_up_at).await;
                }
                // When the statement that answered was sent (retries send it again).
                let asked = std::sync::Mutex::new(std::time::Instant::now());
                loop {
                    let answer = retry_ledger("check the slot's lease before posting", &key, give_up_at, || {
                        *asked.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
                        let now = Utc::now();
                        Box::pin(ledger.begin_post(&key, &fence, now + margin, now))
                    })
                    .await;
                    let waited = asked.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
                    match answer {
                        // A yes holds only if it came back well inside the margin: one that
                        // queued long for a connection may be for a lease lapsed since.
                        Ok(true) if waited > lease / 8 => {
                            if std::time::Instant::now() >= give_up_at {
                                return None;
                            }
                            tracing::warn!(report = %key.report, slot = %key.slot, waited_ms = waited.as_millis() as u64, "the ledger answered too slowly to trust the lease; asking again");
                        }
                        // The yes holds for the margin from when it was asked, less a
                        // sixteenth of the lease for clocks that differ between replicas:
                        // the lease ran at least the margin longer then, and no other
                        // process takes the slot over before it lapses on its clock.
                        Ok(true) => {
                            let asked_at = *asked.lock().unwrap_or_else(|p| p.into_inner());
                            return Some(asked_at + lease / 4 - lease / 16);
                        }
                        Ok(false) => return None,
                        Err(error) => {
                            tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not check the slot's lease before posting; not posting (recovery finishes the slot)");
                            return None;
                        }
                    }
                }
            })
        })
        .with_first_step(move |ts| -> GuardAnswer {
            let (ledger, key, fence) = (step_ledger.clone(), step_key.clone(), step_fence.clone());
            Box::pin(async move {
                match ledger.record_summary(&key, &fence, &ts).await {
                    Ok(()) => true,
                    // Another process holds the slot now: it posts the reply.
                    Err(LedgerError::AlreadyFinished { .. } | LedgerError::NotClaimed { .. }) => false,
                    // Not recorded, but still ours: recovery finds the summary in Slack.
                    Err(error) => {
                        tracing::warn!(error = %error, "could not record the thread summary's ts; posting the reply anyway");
                        true
                    }
                }
            })
        })
    }

    /// The language a report's notices are written in: its own, else the bot's.
    pub(super) fn locale_of(&self, spec: &ReportSpec) -> Locale {
        spec.chart.locale.unwrap_or(self.config.locale)
    }

    pub(super) async fn notify_owner(&self, spec: &ReportSpec, text: &str) {
        if let Err(error) = self.parts.delivery.notify(&spec.owner, text).await {
            self.parts
                .metrics
                .increment(METRIC_NOTICES_LOST, METRIC_NOTICES_LOST_HELP, &[]);
            tracing::error!(report = %spec.id, owner = %spec.owner, error = %error, notice = %text, "could not tell the report's owner");
        }
    }

    /// Runs a claimed slot to its end and records it.
    pub(super) async fn run_claimed(
        &self,
        key: &SlotKey,
        fence: &Fence,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
        resume: Option<String>,
        place: super::Place,
    ) {
        let started = std::time::Instant::now();
        let ledger = self.parts.ledger.clone();
        let running = self
            .ledger_step("mark the run as running", key, self.config.lease, || {
                Box::pin(ledger.mark_running_fenced(key, fence, Utc::now()))
            })
            .await;
        if running.is_none() {
            // Let go at once: recovery (this process's or another's) picks it up, rather
            // than this process renewing a lease on a run it is not doing.
            let _ = self.parts.ledger.release(key, fence, Utc::now()).await;
            return;
        }
        // `None`: the slot is not this process's any more (its lease lapsed); whoever
        // recovers it looks in Slack and records it.
        if let Some(outcome) = self
            .run_to_outcome(key, fence, spec, schedule, resume, place)
            .await
        {
            self.finish(key, fence, outcome).await;
        }
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
        resume: Option<String>,
        place: super::Place,
    ) -> Option<Outcome> {
        let mut place = Some(place);
        let post = PostIdentity {
            report_id: spec.id.clone(),
            channel: Some(schedule.channel.clone()),
            slot: slot_text(spec.timezone, key.slot),
            thread: schedule.thread,
            summary_ts: resume.clone(),
        };
        let fresh = match &spec.freshness {
            Some(freshness) => {
                self.wait_for_fresh_data(spec, freshness, key.slot, &mut place)
                    .await
            }
            None => Ok(()),
        };
        // A run that waited for its data gave its place up: back in line for one (none
        // once shutting down; the row's lease lapses and the next start recovers it).
        let _place = match place.take() {
            Some(place) => place,
            None => self.place().await?,
        };
        if let Err(reason) = fresh {
            let text = tr_mrkdwn!(
                self.locale_of(spec),
                "notice-not-refreshed",
                title = spec.title.as_str(),
                report = spec.id.as_str(),
                slot = crate::i18n::slot_time(self.locale_of(spec), &post.slot),
                channel = schedule.channel.as_str(),
                reason = reason.text(self.locale_of(spec))
            );
            self.notify_owner(spec, &text).await;
            return Some(Outcome::Skipped {
                reason: format!("data not refreshed: {reason}"),
            });
        }
        let options = RunOptions {
            channel: Some(schedule.channel.clone()),
            slot: Some(key.slot),
            thread: schedule.thread,
            limits: self.config.limits,
            locale: self.config.locale,
            ..RunOptions::new(key.slot, self.config.default_timeout, Trigger::Schedule)
        };
        // Access is decided on what the warehouse proves the query reads, with the
        // catalog's policies as they are now — before the query, and again right before
        // the post — never on the version of the report that was loaded.
        let mut reads = None;
        if let Err(held) = self
            .allowed_now(key, spec, schedule, &options, &mut reads)
            .await
        {
            return Some(self.held(key, spec, schedule, &post, held).await);
        }
        // A warehouse outage is waited out, with backoff, for the configured time.
        let retry = RetryPolicy {
            base_delay: self.config.warehouse_retry_base,
            max_delay: Duration::from_millis(WAREHOUSE_RETRY_MAX_DELAY_MS),
            ..RetryPolicy::default()
        };
        let give_up_at = std::time::Instant::now() + self.config.warehouse_outage;
        let mut attempt = 0;
        // Billed to the report, within its daily budget; a budget refusal is final.
        let metered = self
            .parts
            .meter
            .bill(self.parts.warehouse.as_ref(), Payer::report(&spec.id));
        let outcome = loop {
            attempt += 1;
            let delay = backoff_delay(&retry, attempt);
            match pipeline::run(&metered, spec, &options).await {
                Ok(outcome) => break outcome,
                Err(error)
                    if is_transient(&error) && std::time::Instant::now() + delay < give_up_at =>
                {
                    tracing::warn!(report = %spec.id, attempt, retry_in_ms = delay.as_millis() as u64, error = %error_chain(&error), "report query failed transiently (warehouse unavailable?); retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    tracing::error!(report = %spec.id, slot = %post.slot, attempt, error = %error_chain(&error), "report run failed");
                    let locale = self.locale_of(spec);
                    // The warehouse's words can quote the data: the owner reads them only
                    // where the data may go.
                    let catalog = self.catalog();
                    let proven = self
                        .proven_reads(&catalog, spec, &options, &mut reads)
                        .await;
                    let detail =
                        if decide_post(&catalog, &spec.access, &proven, &spec.owner).is_ok() {
                            error.mrkdwn(locale)
                        } else {
                            Mrkdwn::formatted(tr_mrkdwn!(
                                locale,
                                "notice-detail-withheld",
                                report = spec.id.as_str()
                            ))
                        };
                    let mut notice =
                        failure_notice(FailedStep::Run, &spec.title, &post, &detail, locale);
                    if is_transient(&error) {
                        notice.push('\n');
                        notice.push_str(&tr_mrkdwn!(
                            locale,
                            "notice-warehouse-gave-up",
                            attempts = attempt,
                            seconds = self.config.warehouse_outage.as_secs(),
                            report = spec.id.as_str()
                        ));
                    }
                    self.notify_owner(spec, &notice).await;
                    return Some(Outcome::Failed {
                        error: error_chain(&error),
                    });
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
        if let Err(held) = self
            .allowed_now(key, spec, schedule, &options, &mut reads)
            .await
        {
            return Some(self.held(key, spec, schedule, &post, held).await);
        }
        // Asked right before the post goes out: a process that paused past its lease, whose
        // slot another process has taken over, stops here.
        let mut rendered = outcome.rendered.clone();
        rendered.guard = Some(self.post_guard(key, fence));
        rendered.resume_thread = resume;
        match deliver_or_notify(self.parts.delivery.as_ref(), &rendered, &spec.owner).await {
            Ok(receipt) => {
                let (channel, ts) = receipt.location();
                tracing::info!(report = %spec.id, slot = %post.slot, %channel, %ts, rows, "delivered");
                Some(if outcome.no_data {
                    Outcome::NoData {
                        channel,
                        ts,
                        bytes: metered.billed(),
                    }
                } else {
                    Outcome::Delivered {
                        channel,
                        ts,
                        rows,
                        bytes: metered.billed(),
                    }
                })
            }
            Err(DeliveryError::SlotTakenOver) => None,
            Err(error) => {
                let code = error.code().to_string();
                Some(Outcome::Failed {
                    error: format!("{code}: {error}"),
                })
            }
        }
    }
}

/// Waits for `channel`'s next turn to post, taken in the ledger so replicas posting to one
/// channel keep Slack's pace between them. A ledger that stays away until `give_up_at`
/// only costs the pacing: the post guard's own check decides whether to post.
pub async fn wait_for_channel_turn(
    ledger: &Ledger,
    key: &(dyn std::fmt::Display + Sync),
    channel: &str,
    interval: Duration,
    give_up_at: std::time::Instant,
) {
    let spacing = interval + Duration::from_millis(CHANNEL_TURN_MARGIN_MS);
    let turn = retry_ledger("take the channel's turn", key, give_up_at, || {
        Box::pin(ledger.take_channel_turn(channel, Utc::now(), spacing))
    })
    .await;
    match turn {
        Ok(turn) => {
            // Bounded: a replica whose clock runs ahead must not stall the channel.
            if let Ok(wait) = (turn - Utc::now()).to_std() {
                tokio::time::sleep(wait.min(Duration::from_millis(CHANNEL_TURN_MAX_WAIT_MS))).await;
            }
        }
        Err(error) => {
            tracing::warn!(%channel, error = %error, "could not take the channel's turn in the ledger; posting at this process's own pace");
        }
    }
}

/// Runs a ledger statement, trying it again with backoff while the database is busy or
/// away, until `deadline`; the last error once that passes or the error is not transient.
async fn retry_ledger<'a, T>(
    what: &str,
    key: &(dyn std::fmt::Display + Sync),
    deadline: std::time::Instant,
    step: impl Fn() -> LedgerFuture<'a, T>,
) -> Result<T, LedgerError> {
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(LEDGER_RETRY_BASE_DELAY_MS),
        max_delay: Duration::from_millis(LEDGER_RETRY_MAX_DELAY_MS),
        ..RetryPolicy::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match step().await {
            Err(error) if error.is_transient() && std::time::Instant::now() < deadline => {
                tracing::warn!(for = %key, attempt, error = %error, "the ledger is unavailable; will {what} when it is back");
                tokio::time::sleep(backoff_delay(&policy, attempt)).await;
            }
            done => return done,
        }
    }
}

fn is_transient(error: &PipelineError) -> bool {
    matches!(error, PipelineError::Warehouse { source, .. } if source.is_transient())
}

pub(super) fn lookup<'c>(
    catalog: &'c Catalog,
    key: &SlotKey,
) -> Option<(&'c ReportSpec, &'c ScheduleSpec)> {
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

//! The scheduler behind `kpibot serve`: fires every `[[schedule]]` at its slots (sleeping
//! until the next one), claims each slot in the ledger before running it, catches up after
//! downtime, recovers slots a dead process left open (looking for the post before
//! re-sending), gates on data freshness, and tells owners when a run fails for good.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::deliver::{Delivery, PostIdentity, deliver_or_notify, failure_notice};
use crate::ledger::{Claim, Lease, Ledger, LedgerError, Outcome, RunRecord, SlotHistory, SlotKey};
use crate::metrics::Metrics;
use crate::pipeline::{self, PipelineError, RunOptions, slot_text};
use crate::schedule::{next_slot, slots_between};
use crate::spec::{Catalog, FreshnessSpec, ReportSpec, ScheduleSpec};
use crate::warehouse::{Cell, Params, Trigger, Warehouse};

/// A crashed slot is recovered at most this many times before it is marked failed.
pub const MAX_RECOVERIES: u32 = 3;
/// At most this many missed slots per schedule are written to the ledger as skipped.
pub const MAX_SKIPPED_RECORDED: usize = 1000;
/// The first wait before re-running a query that failed transiently.
pub const WAREHOUSE_RETRY_BASE_DELAY_MS: u64 = 2000;

const METRIC_RUNS: &str = "kpibot_runs_total";
const METRIC_RUNS_HELP: &str = "Scheduled runs by report and final state";
const METRIC_DURATION: &str = "kpibot_run_duration_seconds";
const METRIC_DURATION_HELP: &str = "Time from claim to delivery of a scheduled run";
const METRIC_ROWS: &str = "kpibot_warehouse_rows_total";
const METRIC_ROWS_HELP: &str = "Rows returned by report queries";
const METRIC_NEXT: &str = "kpibot_next_run_timestamp_seconds";
const METRIC_NEXT_HELP: &str = "Unix time of each schedule's next slot";
const METRIC_NOTICES_LOST: &str = "kpibot_owner_notices_failed_total";
const METRIC_NOTICES_LOST_HELP: &str = "Failure notices that could not be sent to an owner";

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Default catch-up window (a schedule's `catch_up_hours` overrides it).
    pub catch_up: Duration,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// Attempts of a query that fails transiently.
    pub warehouse_attempts: u32,
    /// Warehouse time limit when the spec sets none.
    pub default_timeout: Duration,
    /// How long in-flight runs may take after shutdown is asked for.
    pub shutdown_grace: Duration,
}

/// The catalog the scheduler runs, replaced whole on reload.
pub type SharedCatalog = Arc<RwLock<Arc<Catalog>>>;

/// What to do about the slots a schedule missed while no process was running.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatchUp {
    /// Within the catch-up window: run once each, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// Older: recorded as skipped.
    pub skip: Vec<DateTime<Utc>>,
}

/// Decides what to do about slots no process ran: those within the catch-up window that
/// have no ledger row run (oldest first), including gaps left by a process that died
/// before claiming them; those between the newest row and the window are skipped. A
/// schedule the ledger has never seen starts from now.
pub fn plan_catch_up(
    schedule: &ScheduleSpec,
    history: &SlotHistory,
    now: DateTime<Utc>,
    window: Duration,
) -> CatchUp {
    let (Some(first), Some(last)) = (history.first, history.last) else {
        return CatchUp::default();
    };
    let window_start = now - chrono::Duration::from_std(window).unwrap_or_default();
    let skip = slots_between(&schedule.cron, schedule.timezone, last, now)
        .into_iter()
        .filter(|slot| *slot < window_start)
        .collect();
    let from = first.max(window_start - chrono::Duration::seconds(1));
    let run = slots_between(&schedule.cron, schedule.timezone, from, now)
        .into_iter()
        .filter(|slot| *slot >= window_start && !history.recorded.contains(slot))
        .collect();
    CatchUp { run, skip }
}

/// Whether the newest date in the source is recent enough for a run on `slot_date`.
pub fn is_fresh(newest: Option<NaiveDate>, slot_date: NaiveDate, expect_days_ago: u32) -> bool {
    let wanted = slot_date - chrono::Days::new(u64::from(expect_days_ago));
    newest.is_some_and(|newest| newest >= wanted)
}

/// Identifies one `[[schedule]]` entry, and whether it changed since last seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScheduleId {
    report: String,
    index: u32,
}

fn fingerprint(schedule: &ScheduleSpec) -> String {
    format!("{} {}", schedule.cron, schedule.timezone.name())
}

pub struct Scheduler {
    catalog: SharedCatalog,
    ledger: Arc<Ledger>,
    warehouse: Arc<dyn Warehouse>,
    delivery: Arc<dyn Delivery>,
    metrics: Arc<Metrics>,
    config: SchedulerConfig,
    /// This process's name in the ledger's leases.
    owner: String,
}

impl Scheduler {
    pub fn new(
        catalog: SharedCatalog,
        ledger: Arc<Ledger>,
        warehouse: Arc<dyn Warehouse>,
        delivery: Arc<dyn Delivery>,
        metrics: Arc<Metrics>,
        config: SchedulerConfig,
    ) -> Arc<Self> {
        let owner = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            Utc::now().timestamp_micros()
        );
        Arc::new(Self {
            catalog,
            ledger,
            warehouse,
            delivery,
            metrics,
            config,
            owner,
        })
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn lease(&self) -> Lease {
        Lease {
            owner: self.owner.clone(),
            until: Utc::now() + chrono::Duration::from_std(self.config.lease).unwrap_or_default(),
        }
    }

    fn catch_up_window(&self, schedule: &ScheduleSpec) -> Duration {
        schedule.catch_up.unwrap_or(self.config.catch_up)
    }

    /// Runs until `shutdown` turns true, then waits (up to the grace period) for the runs
    /// in flight. `reloaded` ticks when the catalog was replaced.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        mut reloaded: watch::Receiver<u64>,
    ) -> Result<(), LedgerError> {
        let mut tasks = JoinSet::new();
        let started = Utc::now();
        let mut cursors: HashMap<ScheduleId, (String, DateTime<Utc>)> = HashMap::new();
        self.catch_up_all(started, &mut tasks, &mut cursors)?;
        let mut lease_timer = tokio::time::interval(self.config.lease / 3);
        loop {
            let catalog = self.catalog();
            self.reconcile(&catalog, &mut cursors);
            let next = self.publish_next_slots(&catalog, &cursors);
            let sleep = match next {
                Some(at) => (at - Utc::now()).to_std().unwrap_or_default(),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                changed = reloaded.changed() => {
                    if changed.is_err() {
                        // The reloader stopped; keep running the catalog we have.
                        reloaded.mark_unchanged();
                    }
                    continue;
                }
                _ = shutdown.changed() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                _ = lease_timer.tick() => {
                    self.keep_leases(&mut tasks);
                    continue;
                }
            }
            if *shutdown.borrow() {
                break;
            }
            let now = Utc::now();
            for spec in catalog.reports() {
                for (index, schedule) in spec.schedules.iter().enumerate() {
                    let id = ScheduleId {
                        report: spec.id.clone(),
                        index: index as u32,
                    };
                    let Some((_, cursor)) = cursors.get_mut(&id) else {
                        continue;
                    };
                    for slot in slots_between(&schedule.cron, schedule.timezone, *cursor, now) {
                        let key = SlotKey {
                            report: spec.id.clone(),
                            schedule: index as u32,
                            slot,
                        };
                        tasks.spawn(self.clone().claim_and_run(key));
                        *cursor = slot;
                    }
                }
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            grace_seconds = self.config.shutdown_grace.as_secs(),
            "shutting down: no new runs; waiting for runs in flight"
        );
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = tasks.len(),
                "runs still in flight at the end of the grace period; the next start recovers them"
            );
            tasks.abort_all();
        }
        Ok(())
    }

    /// Records missed slots (skipped or queued oldest first) and starts every schedule's
    /// cursor at `now`.
    fn catch_up_all(
        self: &Arc<Self>,
        now: DateTime<Utc>,
        tasks: &mut JoinSet<()>,
        cursors: &mut HashMap<ScheduleId, (String, DateTime<Utc>)>,
    ) -> Result<(), LedgerError> {
        let catalog = self.catalog();
        for spec in catalog.reports() {
            for (index, schedule) in spec.schedules.iter().enumerate() {
                let index = index as u32;
                let window = self.catch_up_window(schedule);
                let since = now - chrono::Duration::from_std(window).unwrap_or_default();
                let history = self.ledger.slot_history(&spec.id, index, since)?;
                let plan = plan_catch_up(schedule, &history, now, window);
                let skipped = plan.skip.len();
                for slot in plan.skip.iter().rev().take(MAX_SKIPPED_RECORDED) {
                    let key = SlotKey {
                        report: spec.id.clone(),
                        schedule: index,
                        slot: *slot,
                    };
                    let reason = format!(
                        "missed while kpibot was not running; older than the catch-up window of {} h",
                        window.as_secs() / 3600
                    );
                    if self.ledger.skip(&key, &reason, now)? {
                        self.count_run(&spec.id, "skipped");
                    }
                }
                if skipped > 0 {
                    tracing::warn!(report = %spec.id, schedule = index, skipped, "missed slots older than the catch-up window were skipped");
                }
                if !plan.run.is_empty() {
                    tracing::info!(report = %spec.id, schedule = index, slots = plan.run.len(), "catching up on missed slots, oldest first");
                    let this = self.clone();
                    let report = spec.id.clone();
                    tasks.spawn(async move {
                        for slot in plan.run {
                            let key = SlotKey {
                                report: report.clone(),
                                schedule: index,
                                slot,
                            };
                            this.clone().claim_and_run(key).await;
                        }
                    });
                }
                cursors.insert(
                    ScheduleId {
                        report: spec.id.clone(),
                        index,
                    },
                    (fingerprint(schedule), now),
                );
            }
        }
        Ok(())
    }

    /// New schedules start now; changed ones restart now; removed ones are forgotten.
    fn reconcile(
        &self,
        catalog: &Catalog,
        cursors: &mut HashMap<ScheduleId, (String, DateTime<Utc>)>,
    ) {
        let now = Utc::now();
        let mut seen = Vec::new();
        for spec in catalog.reports() {
            for (index, schedule) in spec.schedules.iter().enumerate() {
                let id = ScheduleId {
                    report: spec.id.clone(),
                    index: index as u32,
                };
                let print = fingerprint(schedule);
                match cursors.get_mut(&id) {
                    Some((known, _)) if *known == print => {}
                    Some(entry) => *entry = (print, now),
                    None => {
                        cursors.insert(id.clone(), (print, now));
                    }
                }
                seen.push(id);
            }
        }
        cursors.retain(|id, _| seen.contains(id));
    }

    /// Sets the next-slot gauges and returns the earliest next slot.
    fn publish_next_slots(
        &self,
        catalog: &Catalog,
        cursors: &HashMap<ScheduleId, (String, DateTime<Utc>)>,
    ) -> Option<DateTime<Utc>> {
        let mut earliest: Option<DateTime<Utc>> = None;
        let mut series: Vec<(String, String, f64)> = Vec::new();
        for spec in catalog.reports() {
            for (index, schedule) in spec.schedules.iter().enumerate() {
                let id = ScheduleId {
                    report: spec.id.clone(),
                    index: index as u32,
                };
                let Some((_, cursor)) = cursors.get(&id) else {
                    continue;
                };
                if let Some(next) = next_slot(&schedule.cron, schedule.timezone, *cursor) {
                    series.push((spec.id.clone(), index.to_string(), next.timestamp() as f64));
                    earliest = Some(earliest.map_or(next, |e| e.min(next)));
                }
            }
        }
        let labelled: Vec<(Vec<(&str, &str)>, f64)> = series
            .iter()
            .map(|(report, index, at)| {
                (
                    vec![("report", report.as_str()), ("schedule", index.as_str())],
                    *at,
                )
            })
            .collect();
        self.metrics
            .replace_gauge(METRIC_NEXT, METRIC_NEXT_HELP, &labelled);
        earliest
    }

    /// Renews this process's leases and starts recovering abandoned slots (called every
    /// third of a lease). Recoveries join the runs in flight, so shutdown waits for them.
    fn keep_leases(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        if let Err(error) = self.ledger.renew(&self.lease()) {
            tracing::error!(error = %error, "could not renew this process's claims in the ledger");
        }
        match self.ledger.abandoned_runs(Utc::now()) {
            Ok(records) => {
                for record in records {
                    tasks.spawn(self.clone().recover(record));
                }
            }
            Err(error) => tracing::error!(error = %error, "could not read the ledger"),
        }
    }

    /// Takes over a slot whose process died mid-run: if the post exists, record it;
    /// otherwise run it again (within the catch-up window).
    async fn recover(self: Arc<Self>, record: RunRecord) {
        let key = record.key.clone();
        match self.ledger.reclaim(&key, &self.lease(), Utc::now()) {
            Ok(true) => {}
            Ok(false) => return, // another process got it first
            Err(error) => {
                tracing::error!(error = %error, "could not reclaim an abandoned slot");
                return;
            }
        }
        tracing::warn!(report = %key.report, slot = %key.slot, attempts = record.attempts + 1, "recovering a slot a stopped process left unfinished");
        let catalog = self.catalog();
        let Some((spec, schedule)) = lookup(&catalog, &key) else {
            self.finish(
                &key,
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
        match self.delivery.find_existing(&post).await {
            Ok(Some(receipt)) => {
                let (channel, ts) = receipt.location();
                tracing::info!(report = %key.report, slot = %key.slot, %channel, %ts, "the post already exists; recorded, not re-sent");
                self.finish(
                    &key,
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
                // Cannot tell whether it was posted: leave it open for a later attempt.
                tracing::error!(report = %key.report, error = %error, "could not check whether a slot was already posted");
                return;
            }
        }
        let too_old = Utc::now() - key.slot
            > chrono::Duration::from_std(self.catch_up_window(schedule)).unwrap_or_default();
        if too_old || record.attempts >= MAX_RECOVERIES {
            let error = if too_old {
                "the run stopped before it finished and the slot is now older than the catch-up window".to_string()
            } else {
                format!("the run stopped before it finished {MAX_RECOVERIES} times")
            };
            self.finish(&key, Outcome::Failed { error });
            return;
        }
        self.run_claimed(&key, spec, schedule).await;
    }

    async fn claim_and_run(self: Arc<Self>, key: SlotKey) {
        match self.ledger.claim(&key, &self.lease(), Utc::now()) {
            Ok(Claim::Won) => {}
            Ok(Claim::Taken(_)) => return,
            Err(error) => {
                tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not claim a slot; it will not run");
                return;
            }
        }
        let catalog = self.catalog();
        match lookup(&catalog, &key) {
            Some((spec, schedule)) => self.run_claimed(&key, spec, schedule).await,
            None => self.finish(
                &key,
                Outcome::Skipped {
                    reason: "the report was removed".into(),
                },
            ),
        }
    }

    fn finish(&self, key: &SlotKey, outcome: Outcome) {
        let state = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::NoData { .. } => "no_data",
        };
        match self.ledger.finish(key, &outcome, Utc::now()) {
            Ok(()) => self.count_run(&key.report, state),
            Err(error) => {
                tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not record how a run ended")
            }
        }
    }

    fn count_run(&self, report: &str, state: &str) {
        self.metrics.increment(
            METRIC_RUNS,
            METRIC_RUNS_HELP,
            &[("report", report), ("state", state)],
        );
    }

    async fn notify_owner(&self, spec: &ReportSpec, text: &str) {
        if let Err(error) = self.delivery.notify(&spec.owner, text).await {
            self.metrics
                .increment(METRIC_NOTICES_LOST, METRIC_NOTICES_LOST_HELP, &[]);
            tracing::error!(report = %spec.id, owner = %spec.owner, error = %error, notice = %text, "could not tell the report's owner");
        }
    }

    /// Runs a claimed slot to its end and records it.
    async fn run_claimed(&self, key: &SlotKey, spec: &ReportSpec, schedule: &ScheduleSpec) {
        let started = std::time::Instant::now();
        if let Err(error) = self.ledger.mark_running(key, Utc::now()) {
            tracing::error!(error = %error, "could not mark a run as running");
            return;
        }
        let outcome = self.run_to_outcome(key, spec, schedule).await;
        self.finish(key, outcome);
        self.metrics.observe_seconds(
            METRIC_DURATION,
            METRIC_DURATION_HELP,
            &[("report", &spec.id)],
            started.elapsed().as_secs_f64(),
        );
    }

    async fn run_to_outcome(
        &self,
        key: &SlotKey,
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
            period: None,
            now: key.slot,
            channel: Some(schedule.channel.clone()),
            slot: Some(key.slot),
            thread: schedule.thread,
            default_timeout: self.config.default_timeout,
            params: Default::default(),
            trigger: Trigger::Schedule,
        };
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match pipeline::run(self.warehouse.as_ref(), spec, &options).await {
                Ok(outcome) => break outcome,
                Err(error) if is_transient(&error) && attempt < self.config.warehouse_attempts => {
                    let delay =
                        Duration::from_millis(WAREHOUSE_RETRY_BASE_DELAY_MS << (attempt - 1));
                    tracing::warn!(report = %spec.id, attempt, error = %crate::deliver::error_chain(&error), "report query failed transiently; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    tracing::error!(report = %spec.id, slot = %post.slot, error = %crate::deliver::error_chain(&error), "report run failed");
                    self.notify_owner(spec, &failure_notice("run", &spec.title, &post, &error))
                        .await;
                    return Outcome::Failed {
                        error: crate::deliver::error_chain(&error),
                    };
                }
            }
        };
        let rows = outcome.table.rows.len() as u64;
        self.metrics.add(
            METRIC_ROWS,
            METRIC_ROWS_HELP,
            &[("report", &spec.id)],
            rows as f64,
        );
        match deliver_or_notify(self.delivery.as_ref(), &outcome.rendered, &spec.owner).await {
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

    /// Waits until the source holds data through the expected date; `Err` with the reason
    /// once the deadline has passed.
    async fn wait_for_fresh_data(
        &self,
        spec: &ReportSpec,
        freshness: &FreshnessSpec,
        slot: DateTime<Utc>,
    ) -> Result<(), String> {
        let slot_date = pipeline::today_in(spec.timezone, slot);
        let deadline = slot + chrono::Duration::from_std(freshness.deadline).unwrap_or_default();
        let params = Params::from([(
            "run_date".to_string(),
            crate::warehouse::ParamValue::Date(slot_date),
        )]);
        let wanted = slot_date - chrono::Days::new(u64::from(freshness.expect_days_ago));
        loop {
            let newest = match self
                .warehouse
                .query(
                    &freshness.sql,
                    &params,
                    &pipeline::job_for(spec, self.config.default_timeout, Trigger::Schedule),
                )
                .await
            {
                Ok(table) => newest_date(&table),
                Err(error) => {
                    tracing::warn!(report = %spec.id, error = %error, "freshness check failed");
                    None
                }
            };
            if is_fresh(newest, slot_date, freshness.expect_days_ago) {
                return Ok(());
            }
            let reason = format!(
                "newest data is {}, expected {wanted}",
                newest.map_or("missing".to_string(), |d| d.to_string())
            );
            if Utc::now() + chrono::Duration::from_std(freshness.recheck).unwrap_or_default()
                > deadline
            {
                return Err(reason);
            }
            tracing::info!(report = %spec.id, %reason, recheck_seconds = freshness.recheck.as_secs(), "data not refreshed yet; waiting");
            tokio::time::sleep(freshness.recheck).await;
        }
    }
}

/// The first cell of a freshness query, as a date.
fn newest_date(table: &crate::warehouse::Table) -> Option<NaiveDate> {
    match table.rows.first()?.first()? {
        Cell::Date(d) => Some(*d),
        Cell::Timestamp(t) => Some(t.date()),
        Cell::Text(s) => s.parse().ok(),
        _ => None,
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

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kpibot".into())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;
    use chrono_tz::Asia::Tokyo;

    use super::*;

    fn schedule(cron: &str) -> ScheduleSpec {
        ScheduleSpec {
            cron: cron::Schedule::from_str(cron).unwrap(),
            timezone: Tokyo,
            channel: "#kpi".into(),
            thread: false,
            catch_up: None,
            span: 0..0,
        }
    }

    fn tokyo(d: u32, h: u32) -> DateTime<Utc> {
        Tokyo
            .with_ymd_and_hms(2026, 11, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn history(slots: &[DateTime<Utc>]) -> SlotHistory {
        SlotHistory {
            first: slots.iter().min().copied(),
            last: slots.iter().max().copied(),
            recorded: slots.iter().copied().collect(),
        }
    }

    #[test]
    fn missed_slots_inside_the_window_run_oldest_first_older_ones_are_skipped() {
        // Weekdays at 09:00 Tokyo; down from Friday 20th 10:00 to Tuesday 24th 12:00.
        let s = schedule("0 0 9 * * Mon-Fri");
        let known = history(&[tokyo(19, 9), tokyo(20, 9)]);
        let plan = plan_catch_up(&s, &known, tokyo(24, 12), Duration::from_secs(6 * 3600));
        assert_eq!(plan.run, vec![tokyo(24, 9)]);
        assert_eq!(
            plan.skip,
            vec![tokyo(23, 9)],
            "Saturday and Sunday have no slot"
        );
        let wide = plan_catch_up(&s, &known, tokyo(24, 12), Duration::from_secs(72 * 3600));
        assert_eq!(wide.run, vec![tokyo(23, 9), tokyo(24, 9)]);
        assert!(wide.skip.is_empty());
    }

    #[test]
    fn a_gap_before_the_newest_row_is_caught_up_too() {
        // Hourly; 10:00 was never claimed (its process died first), 11:00 was.
        let s = schedule("0 0 * * * *");
        let known = history(&[tokyo(24, 8), tokyo(24, 9), tokyo(24, 11)]);
        let plan = plan_catch_up(&s, &known, tokyo(24, 12), Duration::from_secs(6 * 3600));
        assert_eq!(plan.run, vec![tokyo(24, 10), tokyo(24, 12)]);
        assert!(plan.skip.is_empty());
    }

    #[test]
    fn a_schedule_the_ledger_never_saw_does_not_backfill() {
        let s = schedule("0 0 * * * *");
        let none = SlotHistory::default();
        let plan = plan_catch_up(&s, &none, tokyo(24, 12), Duration::from_secs(6 * 3600));
        assert_eq!(plan, CatchUp::default());
    }

    #[test]
    fn nothing_is_missed_when_every_slot_has_a_row() {
        let s = schedule("0 0 9 * * *");
        let known = history(&[tokyo(23, 9), tokyo(24, 9)]);
        let plan = plan_catch_up(&s, &known, tokyo(24, 12), Duration::from_secs(6 * 3600));
        assert_eq!(plan, CatchUp::default());
    }

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

    #[test]
    fn freshness_compares_the_newest_date_with_the_expected_one() {
        let slot_date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d);
        assert!(is_fresh(day(25), slot_date, 1));
        assert!(is_fresh(day(26), slot_date, 1));
        assert!(!is_fresh(day(24), slot_date, 1));
        assert!(!is_fresh(None, slot_date, 1));
        assert!(!is_fresh(day(25), slot_date, 0));
    }
}

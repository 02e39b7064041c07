//! The scheduled flow — schedule → claim → run → post — behind `kpibot serve`: fires every
//! `[[schedule]]` at its slots (sleeping until the next one), claims each slot in the
//! ledger before running it ([`run`]), catches up after downtime ([`catch_up`]), recovers
//! slots a dead process left open, gates on data freshness ([`freshness`]), and tells
//! owners when a run fails for good. Slot arithmetic lives in [`cron`].

pub mod catch_up;
pub mod cron;
pub mod freshness;
mod held;
mod recover;
pub use recover::MAX_RECOVERIES;
pub mod run;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::catalog::{Catalog, SharedCatalog, snapshot};
use crate::deliver::Delivery;
use crate::ledger::{Fence, Lease, Ledger, LedgerError, SlotKey};
use crate::metrics::Metrics;
use crate::spec::{ReportSpec, ScheduleSpec};
use crate::warehouse::Warehouse;
use cron::{next_slot, slots_between};

const METRIC_RUNS: &str = "kpibot_runs_total";

const METRIC_RUNS_HELP: &str = "Scheduled runs by report and final state";

const METRIC_NEXT: &str = "kpibot_next_run_timestamp_seconds";

const METRIC_NEXT_HELP: &str = "Unix time of each schedule's next slot";

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Default catch-up window (a schedule's `catch_up_hours` overrides it).
    pub catch_up: Duration,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// How long a query that fails transiently is retried before the slot fails.
    pub warehouse_outage: Duration,
    /// First wait before such a retry.
    pub warehouse_retry_base: Duration,
    /// Warehouse time limit when the spec sets none.
    pub default_timeout: Duration,
    /// How long in-flight runs may take after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// How far windows may reach and how many rows a query may return.
    pub limits: crate::pipeline::RunLimits,
    /// The bot's language: reports that state none, and owners' notices.
    pub locale: crate::i18n::Locale,
    /// First wait before looking again for a post whose existence could not be checked.
    pub recovery_retry: Duration,
    /// Slots this process runs at once; the rest wait unclaimed for a free place.
    pub max_concurrent_runs: usize,
    /// Posting to Slack: each post first takes its channel's turn in the ledger, this far
    /// apart, so replicas keep one channel's pace between them. `None`: no such pacing.
    pub channel_turns: Option<Duration>,
}

/// Identifies one `[[schedule]]` entry, and whether it changed since last seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ScheduleId {
    report: String,
    index: u32,
}

impl ScheduleId {
    /// The schedule a slot belongs to.
    pub(crate) fn of(key: &SlotKey) -> Self {
        Self {
            report: key.report.clone(),
            index: key.schedule,
        }
    }
}

/// Every `[[schedule]]` of every report in the catalog, with its id.
pub(crate) fn all_schedules(
    catalog: &Catalog,
) -> impl Iterator<Item = (ScheduleId, &ReportSpec, &ScheduleSpec)> {
    catalog.reports().flat_map(|spec| {
        spec.schedules
            .iter()
            .enumerate()
            .map(move |(index, schedule)| {
                let id = ScheduleId {
                    report: spec.id.clone(),
                    index: index as u32,
                };
                (id, spec, schedule)
            })
    })
}

/// Splits due slots into those older than the catch-up `window` (skipped) and those to
/// run, both oldest first.
pub fn split_late(
    due: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
    window: Duration,
) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let window_start = now - chrono::Duration::from_std(window).unwrap_or_default();
    due.into_iter().partition(|slot| *slot < window_start)
}

fn fingerprint(schedule: &ScheduleSpec) -> String {
    format!("{} {}", schedule.cron, schedule.timezone.name())
}

/// What the scheduler runs with: the catalog it reads, the ledger it claims in, the
/// warehouse it queries and the delivery it posts through.
pub struct SchedulerParts {
    pub catalog: SharedCatalog,
    pub ledger: Arc<Ledger>,
    pub warehouse: Arc<dyn Warehouse>,
    pub delivery: Arc<dyn Delivery>,
    pub metrics: Arc<Metrics>,
    /// Bills each run's queries to its report, within the report's daily budget.
    pub meter: Arc<crate::budget::Meter>,
}

pub struct Scheduler {
    parts: SchedulerParts,
    config: SchedulerConfig,
    /// This process's name in the ledger's leases.
    owner: String,
    /// The slots this process is running now, with their fences: the only leases it
    /// renews. A run that ends without recording its slot lets the lease lapse.
    in_flight: Arc<std::sync::Mutex<HashMap<SlotKey, Fence>>>,
    /// The schedules held by access whose owner has been told, with the reason told: an
    /// owner hears once per reason, again only after the schedule was allowed in between.
    held_told: std::sync::Mutex<HashMap<ScheduleId, String>>,
    /// Places for runs (`max_concurrent_runs`): a slot is claimed only once it has one, so
    /// a due minute's slots spread over the replicas with room instead of queueing behind
    /// the first to wake, and the ledger pool serves a bounded number of runs.
    places: Arc<tokio::sync::Semaphore>,
    /// Abandoned rows this process is recovering or has queued for recovery.
    recovering: Arc<std::sync::Mutex<std::collections::HashSet<SlotKey>>>,
}

/// A row queued for or in recovery, until the recovery task ends (however it ends).
struct Recovering {
    recovering: Arc<std::sync::Mutex<std::collections::HashSet<SlotKey>>>,
    key: SlotKey,
}

impl Drop for Recovering {
    fn drop(&mut self) {
        self.recovering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

/// A run's place among the `max_concurrent_runs`, held until it ends.
pub(crate) type Place = tokio::sync::OwnedSemaphorePermit;

/// A slot in flight, for as long as its run task holds this (panics and aborts included).
pub(crate) struct Held {
    in_flight: Arc<std::sync::Mutex<HashMap<SlotKey, Fence>>>,
    key: SlotKey,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

impl Scheduler {
    pub fn new(parts: SchedulerParts, config: SchedulerConfig) -> Arc<Self> {
        Arc::new(Self {
            parts,
            owner: process_owner(),
            in_flight: Default::default(),
            held_told: Default::default(),
            places: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_runs.max(1),
            )),
            recovering: Default::default(),
            config,
        })
    }

    /// Waits for a place to run a slot in; `None` once shutdown has begun (the places are
    /// closed then, and a place handed out just before does not start a claim either).
    pub(crate) async fn place(&self) -> Option<Place> {
        let place = self.places.clone().acquire_owned().await.ok()?;
        (!self.places.is_closed()).then_some(place)
    }

    /// Marks `key` in flight under `fence` until the returned guard is dropped.
    pub(crate) fn hold(&self, key: &SlotKey, fence: &Fence) -> Held {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), fence.clone());
        Held {
            in_flight: self.in_flight.clone(),
            key: key.clone(),
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        snapshot(&self.parts.catalog)
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
        self.catch_up_all(started, &mut tasks, &mut cursors).await?;
        let mut lease_timer = tokio::time::interval(self.config.lease / 3);
        // The next slot is worked out (every schedule's cron) only when the catalog or the
        // cursors changed, not each time one of a due minute's thousands of runs ends.
        let mut next: Option<DateTime<Utc>> = None;
        let mut stale = true;
        loop {
            let catalog = self.catalog();
            if stale {
                self.reconcile(&catalog, &mut cursors);
                next = self.publish_next_slots(&catalog, &cursors);
                stale = false;
            }
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
                    stale = true;
                    continue;
                }
                _ = shutdown.changed() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                _ = lease_timer.tick() => {
                    self.keep_leases(&mut tasks).await;
                    continue;
                }
            }
            if *shutdown.borrow() {
                break;
            }
            stale = true;
            let now = Utc::now();
            let mut due_now: Vec<(String, SlotKey)> = Vec::new();
            for (id, _, schedule) in all_schedules(&catalog) {
                let Some((_, cursor)) = cursors.get_mut(&id) else {
                    continue;
                };
                let window = self.catch_up_window(schedule);
                let due = slots_between(&schedule.cron, schedule.timezone, *cursor, now);
                let (late, run) = split_late(due, now, window);
                if let Some(newest) = run.last().or(late.last()) {
                    *cursor = *newest;
                }
                // After a suspend or a forward clock jump: slots older than the catch-up
                // window are skipped with a reason, as at startup — never fired in a burst.
                let why = "was suspended or the clock jumped";
                if let Err(error) = self.record_skipped(&id, &late, why, window, now).await {
                    tracing::error!(error = %error, "could not record skipped slots");
                }
                for slot in run {
                    let key = SlotKey {
                        report: id.report.clone(),
                        schedule: id.index,
                        slot,
                    };
                    due_now.push((schedule.channel.clone(), key));
                }
            }
            // Each process and minute starts somewhere else in the order.
            let offset = (crate::retry::random_fraction() * due_now.len() as f64) as usize;
            for key in spread_order(due_now, offset) {
                tasks.spawn(self.clone().claim_and_run(key));
            }
        }
        // Slots still waiting for a place stay unclaimed: the next start catches them up.
        self.places.close();
        tracing::info!(
            in_flight = tasks.len(),
            grace_seconds = self.config.shutdown_grace.as_secs(),
            "shutting down: no new runs; waiting for runs in flight"
        );
        // Runs in flight keep their leases while they finish: a lease that lapsed during
        // shutdown would let another process take the slot over and post it too.
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = lease_timer.tick() => self.renew_leases().await,
                }
            }
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

    /// New schedules start now; changed ones restart now; removed ones are forgotten.
    fn reconcile(
        &self,
        catalog: &Catalog,
        cursors: &mut HashMap<ScheduleId, (String, DateTime<Utc>)>,
    ) {
        let now = Utc::now();
        let mut seen = Vec::new();
        for (id, _, schedule) in all_schedules(catalog) {
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
        for (id, _, schedule) in all_schedules(catalog) {
            let Some((_, cursor)) = cursors.get(&id) else {
                continue;
            };
            if let Some(next) = next_slot(&schedule.cron, schedule.timezone, *cursor) {
                series.push((id.report, id.index.to_string(), next.timestamp() as f64));
                earliest = Some(earliest.map_or(next, |e| e.min(next)));
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
        self.parts
            .metrics
            .replace_gauge(METRIC_NEXT, METRIC_NEXT_HELP, &labelled);
        earliest
    }

    /// Renews this process's leases and starts recovering abandoned slots (called every
    /// third of a lease). Recoveries join the runs in flight, so shutdown waits for them.
    async fn keep_leases(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        self.renew_leases().await;
        match self.parts.ledger.abandoned_runs(Utc::now()).await {
            Ok(records) => {
                for record in records {
                    // One recovery per row at a time: a copy queued behind a busy minute
                    // and a newer one could otherwise take the row over together.
                    let fresh = self
                        .recovering
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert(record.key.clone());
                    if fresh {
                        let guard = Recovering {
                            recovering: self.recovering.clone(),
                            key: record.key.clone(),
                        };
                        let scheduler = self.clone();
                        tasks.spawn(async move {
                            let _guard = guard;
                            scheduler.recover(record).await
                        });
                    }
                }
            }
            Err(error) => tracing::error!(error = %error, "could not read the ledger"),
        }
    }

    /// Extends the lease on every slot this process holds.
    async fn renew_leases(&self) {
        let held: Vec<(SlotKey, Fence)> = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(key, fence)| (key.clone(), fence.clone()))
            .collect();
        let until = self.lease().until;
        // Side by side: one slow statement (a busy pool) must not let the others lapse.
        let mut renewals = JoinSet::new();
        for (key, fence) in held {
            let ledger = self.parts.ledger.clone();
            renewals.spawn(async move {
                let renewed = ledger.renew(&key, &fence, until, Utc::now()).await;
                (key, renewed)
            });
        }
        while let Some(Ok((key, renewed))) = renewals.join_next().await {
            match renewed {
                Ok(true) => {}
                // Lapsed or taken over: the run learns it at its post guard.
                Ok(false) => {
                    tracing::warn!(report = %key.report, slot = %key.slot, "a slot in flight lost its lease")
                }
                Err(error) => {
                    tracing::error!(report = %key.report, slot = %key.slot, error = %error, "could not renew the lease of a slot in flight")
                }
            }
        }
    }

    fn count_run(&self, report: &str, state: &str) {
        self.parts.metrics.increment(
            METRIC_RUNS,
            METRIC_RUNS_HELP,
            &[("report", report), ("state", state)],
        );
    }
}

/// The order this process claims a due minute's slots in: round-robin over the channels
/// (each channel's first slot, then each one's second, …; by slot time first), started at
/// `offset` and wrapped around. A channel takes about one post a second, so the runs in
/// flight should each wait on a different one; and each replica starts somewhere else.
pub fn spread_order(mut due: Vec<(String, SlotKey)>, offset: usize) -> Vec<SlotKey> {
    due.sort_by(|(a_channel, a), (b_channel, b)| {
        (a.slot, a_channel, &a.report, a.schedule).cmp(&(b.slot, b_channel, &b.report, b.schedule))
    });
    // Each slot's rank within its (slot time, channel): 0 for the first, 1 for the next…
    let mut ranked: Vec<(usize, String, SlotKey)> = Vec::with_capacity(due.len());
    for (channel, key) in due {
        let rank = match ranked.last() {
            Some((rank, last_channel, last))
                if *last_channel == channel && last.slot == key.slot =>
            {
                rank + 1
            }
            _ => 0,
        };
        ranked.push((rank, channel, key));
    }
    ranked.sort_by(|(a_rank, a_channel, a), (b_rank, b_channel, b)| {
        (a.slot, a_rank, a_channel).cmp(&(b.slot, b_rank, b_channel))
    });
    if !ranked.is_empty() {
        let at = offset % ranked.len();
        ranked.rotate_left(at);
    }
    ranked.into_iter().map(|(_, _, key)| key).collect()
}

/// This process's name in the ledger's leases: host, process id and start time, so a
/// restarted process is a new owner.
pub fn process_owner() -> String {
    format!(
        "{}-{}-{}",
        hostname(),
        std::process::id(),
        Utc::now().timestamp_micros()
    )
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
    use chrono::TimeZone;

    use super::*;

    /// Whatever the offset, every due slot is claimed once, and as many runs in a row as
    /// there are channels each post to a different channel.
    #[test]
    fn every_due_slot_is_in_the_spread_order_once_channels_interleaved() {
        let slot = Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap();
        let channels = 5;
        let due: Vec<(String, SlotKey)> = (0..30)
            .map(|i| {
                let key = SlotKey {
                    report: format!("r{i:02}"),
                    schedule: 0,
                    slot,
                };
                (format!("#c{}", i % channels), key)
            })
            .collect();
        for offset in [0, 1, 7, 29, 30, 1_000_003] {
            let order = spread_order(due.clone(), offset);
            let mut reports: Vec<&str> = order.iter().map(|k| k.report.as_str()).collect();
            reports.sort();
            reports.dedup();
            assert_eq!(reports.len(), 30);
            let channel_of = |k: &SlotKey| due.iter().find(|(_, d)| d == k).unwrap().0.clone();
            for i in 0..order.len() {
                let mut window: Vec<String> = (0..channels)
                    .map(|j| channel_of(&order[(i + j) % order.len()]))
                    .collect();
                window.sort();
                window.dedup();
                assert_eq!(window.len(), channels, "offset {offset}, from {i}");
            }
        }
    }

    #[test]
    fn after_a_pause_only_slots_inside_the_catch_up_window_run() {
        let hour = |h: u32| Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap();
        // Hourly; the process was paused from 01:00 to 12:00; the window is 6 hours.
        let due: Vec<_> = (2..=12).map(hour).collect();
        let (late, run) = split_late(due, hour(12), Duration::from_secs(6 * 3600));
        assert_eq!(late, (2..6).map(hour).collect::<Vec<_>>());
        assert_eq!(run, (6..=12).map(hour).collect::<Vec<_>>());
    }
}

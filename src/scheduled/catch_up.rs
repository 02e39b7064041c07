//! What to do about the slots a schedule missed while no process ran: run those inside
//! the catch-up window once each (oldest first), record older ones as skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::cron::slots_between;
use super::{ScheduleId, Scheduler, all_schedules, fingerprint};
use crate::ledger::{LedgerError, SlotHistory, SlotKey};
use crate::spec::ScheduleSpec;

/// At most this many missed slots per schedule are written to the ledger as skipped.
pub const MAX_SKIPPED_RECORDED: usize = 1000;

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

impl Scheduler {
    /// Records `slots` (oldest first; at most `MAX_SKIPPED_RECORDED`, newest kept) as
    /// skipped because they are older than the catch-up `window`; `why` says what
    /// kpibot was doing meanwhile.
    pub(super) async fn record_skipped(
        &self,
        id: &ScheduleId,
        slots: &[DateTime<Utc>],
        why: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let reason = format!(
            "missed while kpibot {why}; older than the catch-up window of {} h",
            window.as_secs() / 3600
        );
        for slot in slots.iter().rev().take(MAX_SKIPPED_RECORDED) {
            let key = SlotKey {
                report: id.report.clone(),
                schedule: id.index,
                slot: *slot,
            };
            if self.parts.ledger.skip(&key, &reason, now).await? {
                self.count_run(&id.report, "skipped");
            }
        }
        if !slots.is_empty() {
            tracing::warn!(report = %id.report, schedule = id.index, skipped = slots.len(), "slots older than the catch-up window were skipped");
        }
        Ok(())
    }

    /// Records missed slots (skipped or queued oldest first) and starts every schedule's
    /// cursor at `now`.
    pub(super) async fn catch_up_all(
        self: &Arc<Self>,
        now: DateTime<Utc>,
        tasks: &mut JoinSet<()>,
        cursors: &mut HashMap<ScheduleId, (String, DateTime<Utc>)>,
    ) -> Result<(), LedgerError> {
        let catalog = self.catalog();
        for (id, spec, schedule) in all_schedules(&catalog) {
            let index = id.index;
            let window = self.catch_up_window(schedule);
            let since = now - chrono::Duration::from_std(window).unwrap_or_default();
            let history = self
                .parts
                .ledger
                .slot_history(&spec.id, index, since)
                .await?;
            let plan = plan_catch_up(schedule, &history, now, window);
            self.record_skipped(&id, &plan.skip, "was not running", window, now)
                .await?;
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
            cursors.insert(id, (fingerprint(schedule), now));
        }
        Ok(())
    }
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
}

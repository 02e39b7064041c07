//! The freshness gate: before a scheduled run, wait until the source holds data through
//! the expected date, re-checking until the spec's deadline.

use chrono::{DateTime, NaiveDate, Utc};

use super::Scheduler;
use crate::i18n::Message;
use crate::pipeline;
use crate::spec::{FreshnessSpec, ReportSpec};
use crate::warehouse::{ParamValue, Params, Table, Trigger, Warehouse};

/// Whether the newest date in the source is recent enough for a run on `slot_date`.
pub fn is_fresh(newest: Option<NaiveDate>, slot_date: NaiveDate, expect_days_ago: u32) -> bool {
    let wanted = slot_date - chrono::Days::new(u64::from(expect_days_ago));
    newest.is_some_and(|newest| newest >= wanted)
}

impl Scheduler {
    /// Waits until the source holds data through the expected date; `Err` with the reason
    /// once the deadline has passed. While it sleeps between checks, the run's `place`
    /// goes back to the others (waiting for a nightly load is not running).
    pub(super) async fn wait_for_fresh_data(
        &self,
        spec: &ReportSpec,
        freshness: &FreshnessSpec,
        slot: DateTime<Utc>,
        place: &mut Option<super::Place>,
    ) -> Result<(), Message> {
        let slot_date = pipeline::today_in(spec.timezone, slot);
        let deadline = slot + chrono::Duration::from_std(freshness.deadline).unwrap_or_default();
        let params = Params::from([("run_date".to_string(), ParamValue::Date(slot_date))]);
        let wanted = slot_date - chrono::Days::new(u64::from(freshness.expect_days_ago));
        // Billed to the report like its run, within the same daily budget.
        let metered = self.parts.meter.bill(
            self.parts.warehouse.as_ref(),
            crate::budget::Payer::report(&spec.id),
        );
        loop {
            let newest = match metered
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
            let reason = match newest {
                Some(newest) => Message::new("freshness-stale").with_date("newest", newest),
                None => Message::new("freshness-missing"),
            }
            .with_date("wanted", wanted);
            if Utc::now() + chrono::Duration::from_std(freshness.recheck).unwrap_or_default()
                > deadline
            {
                return Err(reason);
            }
            tracing::info!(report = %spec.id, %reason, recheck_seconds = freshness.recheck.as_secs(), "data not refreshed yet; waiting");
            drop(place.take());
            tokio::time::sleep(freshness.recheck).await;
        }
    }
}

/// The first cell of a freshness query, as a date.
pub fn newest_date(table: &Table) -> Option<NaiveDate> {
    table.rows.first()?.first()?.as_date()
}

#[cfg(test)]
mod tests {
    use super::*;

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

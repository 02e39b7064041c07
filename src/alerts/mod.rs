//! The alert flow, beside `scheduled` and `adhoc`: each `[[alert]]` is evaluated on its
//! cron against the warehouse, its instances (one per dimension value) step through
//! ok → pending → firing → resolved in [`engine`], and the round's notices go to Slack
//! once each. [`judge`] decides whether a condition holds on one day of a series.

pub mod backtest;
mod delivery;
mod drivers;
pub mod engine;
mod gates;
pub mod judge;
pub mod listing;
pub mod message;
pub mod notify;
mod root_edit;
pub mod run;
pub mod watch;

#[cfg(test)]
mod engine_tests;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::spec::AlertSpec;

/// The day an evaluation at `at` judges: today on the alert's wall clock, minus its lag.
pub fn evaluated_day(alert: &AlertSpec, at: DateTime<Utc>) -> NaiveDate {
    crate::pipeline::today_in(alert.timezone, at) - Duration::days(i64::from(alert.lag_days))
}

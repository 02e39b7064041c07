//! `kpibot schedule`: every report's next slots, in each schedule's timezone.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::scheduled::cron::slots_after;

/// `kpibot schedule`: every report's next `count` slots, in each schedule's timezone.
pub fn schedule(
    app: &App,
    count: usize,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let catalog = app.load_catalog()?;
    for spec in catalog.reports() {
        if spec.schedules.is_empty() {
            writeln!(out, "{}: no schedule (ad hoc only)", spec.id)?;
            continue;
        }
        for schedule in &spec.schedules {
            writeln!(
                out,
                "{}: `{}` ({}) → {}",
                spec.id,
                schedule.cron,
                schedule.timezone.name(),
                schedule.channel
            )?;
            for slot in slots_after(&schedule.cron, schedule.timezone, now).take(count) {
                writeln!(
                    out,
                    "    {}",
                    slot.with_timezone(&schedule.timezone)
                        .format("%Y-%m-%d %H:%M:%S %a %Z")
                )?;
            }
        }
    }
    Ok(())
}

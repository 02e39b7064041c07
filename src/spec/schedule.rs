//! `[[schedule]]`: when a report is posted (cron, seconds first, in a timezone), where,
//! and how far back missed slots are caught up.

use std::ops::Range;
use std::str::FromStr;

use chrono_tz::Tz;
use toml::Spanned;

use super::walk::{Reader, Tbl};

#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub cron: cron::Schedule,
    pub timezone: Tz,
    pub channel: String,
    /// Post a one-line summary in the channel and the chart as a thread reply.
    pub thread: bool,
    /// Missed slots younger than this run after downtime (default: the setting, 6 h).
    pub catch_up: Option<std::time::Duration>,
    /// Where the `[[schedule]]` entry is written.
    pub span: Range<usize>,
}

const SCHEDULE_KEYS: [&str; 5] = ["cron", "timezone", "channel", "thread", "catch_up_hours"];

impl Reader<'_> {
    pub(super) fn schedules(&mut self, root: &Tbl, report_tz: Tz) -> Option<Vec<ScheduleSpec>> {
        self.array_of_tables(
            root,
            "schedule",
            "write each schedule as `[[schedule]]` with cron, timezone and channel",
            |r, t| r.schedule(t, report_tz),
        )
    }

    pub(super) fn schedule(&mut self, t: &Tbl, report_tz: Tz) -> Option<ScheduleSpec> {
        self.check_keys(t, &SCHEDULE_KEYS);
        let cron_text = self.string(t, "cron", true);
        let timezone = match self.string(t, "timezone", false) {
            Some(tz) => self.timezone(&tz),
            None => Some(report_tz),
        };
        let channel = self.string(t, "channel", true);
        if let Some(channel) = &channel
            && channel.get_ref().trim().is_empty()
        {
            self.error(channel.span(), "`channel` is empty").hint =
                Some("write a channel as `#kpi-daily` or as its ID, e.g. `C0123456789`".into());
        }
        let thread = self.flag(t, "thread", false);
        let catch_up_hours = self.whole_number(
            t,
            "catch_up_hours",
            0..=720,
            "a whole number of hours from 0 to 720",
        );
        let cron_text = cron_text?;
        let schedule = self.cron(&cron_text, timezone);
        Some(ScheduleSpec {
            cron: schedule?,
            timezone: timezone?,
            channel: channel?.into_inner(),
            thread: thread?,
            catch_up: catch_up_hours?.map(|h| std::time::Duration::from_secs(h * 3600)),
            span: t.anchor.clone(),
        })
    }

    pub(super) fn cron(
        &mut self,
        text: &Spanned<String>,
        timezone: Option<Tz>,
    ) -> Option<cron::Schedule> {
        let expr = text.get_ref().trim();
        let fields = expr.split_whitespace().count();
        if fields == 5 {
            let d = self.error(
                text.span(),
                format!("`{expr}` is a 5-field Unix cron; kpibot's cron has a seconds field first"),
            );
            *d = d
                .clone()
                .with_label(
                    "6 or 7 fields expected: sec min hour day-of-month month day-of-week [year]",
                )
                .with_hint(format!("write `0 {expr}` to fire at second 0"));
            return None;
        }
        match cron::Schedule::from_str(expr) {
            Ok(schedule) => {
                if let Some(tz) = timezone
                    && schedule.upcoming(tz).next().is_none()
                {
                    self.error(text.span(), format!("the cron `{expr}` never fires"));
                    return None;
                }
                Some(schedule)
            }
            Err(e) => {
                // The cron crate's message repeats the expression with a caret line; keep
                // only its explanation.
                let full = e.to_string();
                let reason = full
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && *l != "^")
                    .unwrap_or("unreadable expression")
                    .to_string();
                let d = self.error(text.span(), format!("invalid cron `{expr}`: {reason}"));
                *d = d.clone().with_hint(
                    "fields are: sec min hour day-of-month month day-of-week [year], e.g. `0 0 9 * * Mon-Fri`",
                );
                None
            }
        }
    }
}

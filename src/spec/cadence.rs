//! When a followed question is due: every day, every weekday, one day of the week or of
//! the month, at a wall-clock time in the follower's timezone — as instants.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The days a follow is due on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Daily,
    /// Monday to Friday.
    Weekdays,
    Weekly(Weekday),
    /// This day of each month; in a month too short for it, its last day.
    Monthly(u32),
}

/// The days looked back over for the latest slot (more than any month).
const LOOKBACK_DAYS: i64 = 62;

/// Minutes a wall-clock time in a DST gap is moved forward, at most, to the gap's end.
const GAP_MAX_MINUTES: i64 = 180;

impl Cadence {
    /// As the ledger keeps it: `daily`, `weekdays`, `weekly:mon`, `monthly:1`.
    pub fn text(&self) -> String {
        match self {
            Cadence::Daily => "daily".into(),
            Cadence::Weekdays => "weekdays".into(),
            Cadence::Weekly(day) => format!("weekly:{}", day.to_string().to_lowercase()),
            Cadence::Monthly(day) => format!("monthly:{day}"),
        }
    }

    /// What [`Cadence::text`] wrote; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once(':') {
            None if text == "daily" => Some(Cadence::Daily),
            None if text == "weekdays" => Some(Cadence::Weekdays),
            Some(("weekly", day)) => day.parse().ok().map(Cadence::Weekly),
            Some(("monthly", day)) => day
                .parse()
                .ok()
                .filter(|d| (1..=31).contains(d))
                .map(Cadence::Monthly),
            _ => None,
        }
    }

    /// Whether a follow with this cadence is due on `date`.
    pub fn falls_on(&self, date: NaiveDate) -> bool {
        match self {
            Cadence::Daily => true,
            Cadence::Weekdays => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
            Cadence::Weekly(day) => date.weekday() == *day,
            Cadence::Monthly(day) => {
                let last = last_day_of_month(date);
                date.day() == (*day).min(last)
            }
        }
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(28, |last| last.day())
}

/// A cadence at a time of day on a timezone's wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowSchedule {
    pub cadence: Cadence,
    pub at: NaiveTime,
    pub timezone: Tz,
}

impl FollowSchedule {
    /// The instant `date` at `at` is on the wall clock: a repeated time (DST ending) its
    /// first occurrence, a skipped one (DST starting) the end of the gap.
    fn instant(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let local = date.and_time(self.at);
        (0..=GAP_MAX_MINUTES).find_map(|minutes| {
            self.timezone
                .from_local_datetime(&(local + Duration::minutes(minutes)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// The latest slot at or before `now`, if one fell in the last two months.
    pub fn latest_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.timezone).date_naive();
        (0..=LOOKBACK_DAYS)
            .filter_map(|back| today.checked_sub_signed(Duration::days(back)))
            .filter(|date| self.cadence.falls_on(*date))
            .filter_map(|date| self.instant(date))
            .find(|slot| *slot <= now)
    }

    /// The first slot after `now`.
    pub fn next_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.timezone).date_naive();
        (0..=LOOKBACK_DAYS)
            .filter_map(|ahead| today.checked_add_signed(Duration::days(ahead)))
            .filter(|date| self.cadence.falls_on(*date))
            .filter_map(|date| self.instant(date))
            .find(|slot| *slot > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_nine_oclock_in_tokyo_is_midnight_utc() {
        let schedule = FollowSchedule {
            cadence: Cadence::Daily,
            at: at(9, 0),
            timezone: chrono_tz::Asia::Tokyo,
        };
        let now = utc("2026-12-07T01:30:00Z");
        assert_eq!(schedule.latest_slot(now), Some(utc("2026-12-07T00:00:00Z")));
        assert_eq!(schedule.next_slot(now), Some(utc("2026-12-08T00:00:00Z")));
    }

    #[test]
    fn weekdays_skip_the_weekend_and_monthly_31_falls_on_a_short_months_last_day() {
        let weekdays = FollowSchedule {
            cadence: Cadence::Weekdays,
            at: at(8, 0),
            timezone: chrono_tz::Asia::Tokyo,
        };
        // Sunday 2026-12-06 in Tokyo: the latest weekday slot is Friday's.
        assert_eq!(
            weekdays.latest_slot(utc("2026-12-06T05:00:00Z")),
            Some(utc("2026-12-03T23:00:00Z"))
        );
        let monthly = FollowSchedule {
            cadence: Cadence::Monthly(31),
            at: at(9, 0),
            timezone: chrono_tz::UTC,
        };
        assert_eq!(
            monthly.next_slot(utc("2027-02-01T00:00:00Z")),
            Some(utc("2027-02-28T09:00:00Z"))
        );
    }

    #[test]
    fn a_time_the_clocks_skip_fires_at_the_gaps_end_and_a_repeated_one_once() {
        let new_york = |h, m| FollowSchedule {
            cadence: Cadence::Daily,
            at: at(h, m),
            timezone: chrono_tz::America::New_York,
        };
        // 2027-03-14: 02:30 does not exist in New York; the gap ends at 03:00 EDT.
        assert_eq!(
            new_york(2, 30).next_slot(utc("2027-03-14T05:00:00Z")),
            Some(utc("2027-03-14T07:00:00Z"))
        );
        // 2027-11-07: 01:30 happens twice; the first (EDT) is the slot.
        assert_eq!(
            new_york(1, 30).next_slot(utc("2027-11-07T04:00:00Z")),
            Some(utc("2027-11-07T05:30:00Z"))
        );
    }

    fn cadences() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            Just(Cadence::Daily),
            Just(Cadence::Weekdays),
            (0u8..7).prop_map(|d| Cadence::Weekly(Weekday::try_from(d).unwrap())),
            (1u32..=31).prop_map(Cadence::Monthly),
        ]
    }

    proptest! {
        /// The latest slot is never after now, the next never at or before it, nothing
        /// due lies between them, and both fall on a day of the cadence; the text reads back.
        #[test]
        fn slots_bracket_now_on_days_of_the_cadence(
            cadence in cadences(),
            minute in 0u32..1440,
            seconds in 1_700_000_000i64..1_900_000_000,
            zone in prop::sample::select(vec![
                chrono_tz::Asia::Tokyo, chrono_tz::America::New_York,
                chrono_tz::Europe::London, chrono_tz::Australia::Lord_Howe,
            ]),
        ) {
            prop_assert_eq!(Cadence::parse(&cadence.text()), Some(cadence));
            let schedule = FollowSchedule {
                cadence,
                at: at(minute / 60, minute % 60),
                timezone: zone,
            };
            let now = DateTime::from_timestamp(seconds, 0).unwrap();
            let latest = schedule.latest_slot(now).unwrap();
            let next = schedule.next_slot(now).unwrap();
            prop_assert!(latest <= now && now < next);
            let mut day = latest.with_timezone(&zone).date_naive();
            let last = next.with_timezone(&zone).date_naive();
            prop_assert!(cadence.falls_on(day) && cadence.falls_on(last));
            while let Some(following) = day.succ_opt().filter(|d| *d < last) {
                day = following;
                if cadence.falls_on(day) {
                    let slot = schedule.instant(day).unwrap();
                    prop_assert!(slot <= latest || slot >= next, "{slot} due between");
                }
            }
        }
    }
}

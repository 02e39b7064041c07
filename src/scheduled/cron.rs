//! Schedule slots: when a `[[schedule]]` fires, as instants, computed on the wall clock of
//! its timezone. Daylight-saving gaps and repeats never make a slot fire twice or never.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// How far back the wall-clock search starts, so a slot inside a repeated or skipped hour
/// near `after` is still considered. Longer than any daylight-saving shift.
const LOOKBACK_HOURS: i64 = 3;
/// Longest daylight-saving gap searched for its end, in minutes.
const MAX_GAP_MINUTES: i64 = 180;

/// The instant a wall-clock time means in `tz`: the earlier one when the clock repeats that
/// time (autumn), the end of the gap when the clock skips it (spring).
pub fn instant_of(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => (1..=MAX_GAP_MINUTES).find_map(|m| {
            match tz.from_local_datetime(&(local + Duration::minutes(m))) {
                LocalResult::Single(t) => {
                    // The first valid minute after the gap; the gap ends on the minute.
                    Some(t.with_timezone(&Utc))
                }
                LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        }),
    }
}

/// The slots of `cron` in `tz` strictly after `after`, in order, each instant once.
pub fn slots_after(
    cron: &cron::Schedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    // cron walks wall-clock times; UTC stands in for the naive local clock.
    let local_start = after.with_timezone(&tz).naive_local() - Duration::hours(LOOKBACK_HOURS);
    let mut last: Option<DateTime<Utc>> = None;
    cron.after_owned(Utc.from_utc_datetime(&local_start))
        .filter_map(move |wall| instant_of(tz, wall.naive_utc()))
        .filter(move |instant| *instant > after)
        .filter(move |instant| {
            // Two wall-clock times inside one spring gap land on the same instant.
            let fresh = last.is_none_or(|l| *instant > l);
            if fresh {
                last = Some(*instant);
            }
            fresh
        })
}

/// The next slot after `after`.
pub fn next_slot(cron: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    slots_after(cron, tz, after).next()
}

/// Every slot in `(from, to]`, oldest first: what a bot that was down from `from` to `to`
/// missed.
pub fn slots_between(
    cron: &cron::Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    slots_after(cron, tz, from)
        .take_while(|slot| *slot <= to)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono_tz::{America::New_York, Asia::Tokyo, Europe::London};

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn cron(expr: &str) -> cron::Schedule {
        cron::Schedule::from_str(expr).unwrap()
    }

    fn next(expr: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
        slots_after(&cron(expr), tz, utc(after))
            .take(n)
            .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
            .collect()
    }

    #[test]
    fn tokyo_has_no_daylight_saving_surprises() {
        assert_eq!(
            next("0 0 9 * * Mon-Fri", Tokyo, "2026-11-26T00:00:00Z", 3),
            vec![
                "2026-11-27T00:00Z",
                "2026-11-30T00:00Z",
                "2026-12-01T00:00Z"
            ],
            "09:00 JST is 00:00 UTC; the weekend is skipped"
        );
    }

    #[test]
    fn a_skipped_local_time_fires_once_when_the_gap_ends() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        assert_eq!(
            next("0 30 2 * * *", New_York, "2026-03-07T12:00:00Z", 3),
            vec![
                "2026-03-08T07:00Z",
                "2026-03-09T06:30Z",
                "2026-03-10T06:30Z"
            ]
        );
        // London, 2026-03-29: 01:00 GMT jumps to 02:00 BST.
        assert_eq!(
            next("0 30 1 * * *", London, "2026-03-28T12:00:00Z", 2),
            vec!["2026-03-29T01:00Z", "2026-03-30T00:30Z"]
        );
        // Two slots inside one gap are one post.
        assert_eq!(
            next("0 0,30 2 * * *", New_York, "2026-03-07T12:00:00Z", 3),
            vec![
                "2026-03-08T07:00Z",
                "2026-03-09T06:00Z",
                "2026-03-09T06:30Z"
            ]
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once_at_its_first_occurrence() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        assert_eq!(
            next("0 30 1 * * *", New_York, "2026-10-31T12:00:00Z", 2),
            vec!["2026-11-01T05:30Z", "2026-11-02T06:30Z"]
        );
        // London, 2026-10-25: 02:00 BST falls back to 01:00 GMT.
        assert_eq!(
            next("0 30 1 * * *", London, "2026-10-24T12:00:00Z", 2),
            vec!["2026-10-25T00:30Z", "2026-10-26T01:30Z"]
        );
        // Asked from inside the repeated hour, after the first 01:30: not again today.
        assert_eq!(
            next("0 30 1 * * *", New_York, "2026-11-01T06:15:00Z", 1),
            vec!["2026-11-02T06:30Z"]
        );
    }

    #[test]
    fn missed_slots_are_listed_oldest_first() {
        let missed = slots_between(
            &cron("0 0 * * * *"),
            Tokyo,
            utc("2026-11-26T00:30:00Z"),
            utc("2026-11-26T03:00:00Z"),
        );
        let missed: Vec<String> = missed
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(missed, vec!["01:00", "02:00", "03:00"]);
    }
}

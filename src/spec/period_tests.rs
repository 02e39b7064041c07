//! The period grammar's unit tests: windows for every period, limits, and periods written
//! the way they are read.

use super::*;

fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn window(period: &str, today: &str) -> (String, String) {
    let w = period
        .parse::<Period>()
        .unwrap()
        .resolve(d(today), Weekday::Mon)
        .unwrap();
    (w.start.to_string(), w.end.to_string())
}

fn pair(start: &str, end: &str) -> (String, String) {
    (start.to_string(), end.to_string())
}

// 2026-11-26 is a Thursday.
#[test]
fn relative_periods_resolve_to_complete_days() {
    assert_eq!(
        window("yesterday", "2026-11-26"),
        pair("2026-11-25", "2026-11-25")
    );
    assert_eq!(
        window("today", "2026-11-26"),
        pair("2026-11-26", "2026-11-26")
    );
    assert_eq!(
        window("last 28 days", "2026-11-26"),
        pair("2026-10-29", "2026-11-25")
    );
    assert_eq!(
        window("last 7 days", "2026-03-01"),
        pair("2026-02-22", "2026-02-28")
    );
    assert_eq!(
        window("last 2 weeks", "2026-11-26"),
        pair("2026-11-09", "2026-11-22")
    );
    assert_eq!(
        window("last week", "2026-11-26"),
        pair("2026-11-16", "2026-11-22")
    );
    assert_eq!(
        window("last month", "2026-03-31"),
        pair("2026-02-01", "2026-02-28")
    );
    assert_eq!(
        window("last 3 months", "2026-01-15"),
        pair("2025-10-01", "2025-12-31")
    );
}

#[test]
fn to_date_periods_include_today_or_stop_at_yesterday() {
    assert_eq!(
        window("this week", "2026-11-26"),
        pair("2026-11-23", "2026-11-26")
    );
    assert_eq!(
        window("this month", "2026-11-26"),
        pair("2026-11-01", "2026-11-26")
    );
    assert_eq!(
        window("this quarter", "2026-11-26"),
        pair("2026-10-01", "2026-11-26")
    );
    assert_eq!(
        window("this year", "2026-11-26"),
        pair("2026-01-01", "2026-11-26")
    );
    assert_eq!(
        window("month to date", "2026-11-26"),
        pair("2026-11-01", "2026-11-25")
    );
    // On the 1st, month to date is the whole previous month, never an empty window.
    assert_eq!(
        window("month to date", "2026-12-01"),
        pair("2026-11-01", "2026-11-30")
    );
}

#[test]
fn explicit_periods() {
    assert_eq!(
        window("2026-01-01..2026-01-31", "2026-11-26"),
        pair("2026-01-01", "2026-01-31")
    );
    assert_eq!(
        window("since 2026-04-01", "2026-11-26"),
        pair("2026-04-01", "2026-11-26")
    );
    assert_eq!(
        window("  Last   28   Days ", "2026-11-26"),
        pair("2026-10-29", "2026-11-25")
    );
}

#[test]
fn weeks_can_start_on_sunday() {
    let w = Period::This(Unit::Week)
        .resolve(d("2026-11-26"), Weekday::Sun)
        .unwrap();
    assert_eq!(w.start, d("2026-11-22"));
    let w = Period::Last(1, Unit::Week)
        .resolve(d("2026-11-22"), Weekday::Sun)
        .unwrap();
    assert_eq!((w.start, w.end), (d("2026-11-15"), d("2026-11-21")));
}

#[test]
fn bad_periods_say_what_is_wrong() {
    assert!(matches!(
        "last fortnight".parse::<Period>(),
        Err(PeriodError::Unparsable(_))
    ));
    assert!(matches!(
        "last 0 days".parse::<Period>(),
        Err(PeriodError::ZeroLength(_))
    ));
    assert!(matches!(
        "2026-02-01..2026-01-01".parse::<Period>(),
        Err(PeriodError::Backwards { .. })
    ));
    assert!(matches!(
        "since 2026-13-01".parse::<Period>(),
        Err(PeriodError::BadDate(_))
    ));
    assert!(matches!(
        "since 2027-01-01"
            .parse::<Period>()
            .unwrap()
            .resolve(d("2026-11-26"), Weekday::Mon),
        Err(PeriodError::Backwards { .. })
    ));
}

#[test]
fn display_round_trips() {
    for text in [
        "yesterday",
        "last 28 days",
        "last month",
        "this quarter",
        "month to date",
        "2026-01-01..2026-01-31",
        "since 2026-04-01",
    ] {
        assert_eq!(text.parse::<Period>().unwrap().to_string(), text);
    }
}

#[test]
fn windows_print_as_posts_state_them() {
    let w = Window {
        start: d("2026-10-29"),
        end: d("2026-11-25"),
    };
    assert_eq!(w.to_string(), "2026-10-29 – 2026-11-25");
    let day = Window {
        start: d("2026-11-25"),
        end: d("2026-11-25"),
    };
    assert_eq!(day.to_string(), "2026-11-25");
}

#[test]
fn previous_window_has_the_same_length() {
    let w = Window {
        start: d("2026-10-29"),
        end: d("2026-11-25"),
    };
    let p = w.previous();
    assert_eq!((p.start, p.end), (d("2026-10-01"), d("2026-10-28")));
    assert_eq!(p.days(), 28);
}

#[test]
fn every_period_is_written_the_way_it_is_read() {
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let mut periods = vec![
        Period::Yesterday,
        Period::Today,
        Period::MonthToDate,
        Period::Between(day("2026-01-01"), day("2026-01-31")),
        Period::Since(day("2026-04-01")),
    ];
    for unit in [Unit::Week, Unit::Month, Unit::Quarter, Unit::Year] {
        periods.push(Period::This(unit));
    }
    for n in [1, 2, 7, 28, 90] {
        for unit in [Unit::Day, Unit::Week, Unit::Month] {
            periods.push(Period::Last(n, unit));
        }
    }
    for period in periods {
        let written = period.to_string();
        assert_eq!(written.parse::<Period>(), Ok(period), "`{written}`");
    }
}

//! Months, fiscal years, halves and quarters read on fixed days, checked against the dates
//! a Japanese planner would write down.

use super::*;
use crate::spec::period::Unit;

fn d(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn read(text: &str, today: &str, fiscal_year_start_month: u32) -> Vec<Period> {
    let calendar = Calendar {
        today: d(today),
        fiscal_year_start_month,
    };
    let found = period_at(text, &calendar).unwrap_or_else(|| panic!("{text}: not a period"));
    assert_eq!(
        found.len,
        text.len(),
        "{text}: only {} bytes read",
        found.len
    );
    found.readings
}

fn between(a: &str, b: &str) -> Period {
    Period::Between(d(a), d(b))
}

#[test]
fn months_are_the_latest_that_has_begun_and_the_current_one_has_two_readings() {
    let today = "2026-12-06";
    assert_eq!(
        read("11月", today, 4),
        [between("2026-11-01", "2026-11-30")]
    );
    assert_eq!(read("1月", today, 4), [between("2026-01-01", "2026-01-31")]);
    assert_eq!(
        read("2026年11月", today, 4),
        [between("2026-11-01", "2026-11-30")]
    );
    assert_eq!(
        read("nov 2026", today, 1),
        [between("2026-11-01", "2026-11-30")]
    );
    assert_eq!(
        read("november", today, 1),
        [between("2026-11-01", "2026-11-30")]
    );
    assert_eq!(
        read("2026-02", today, 1),
        [between("2026-02-01", "2026-02-28")]
    );
    assert_eq!(
        read("12月", today, 4),
        [
            Period::Since(d("2026-12-01")),
            between("2025-12-01", "2025-12-31")
        ]
    );
    // Just after the new year, December is last year's.
    assert_eq!(
        read("12月", "2027-01-04", 4),
        [between("2026-12-01", "2026-12-31")]
    );
    assert_eq!(
        read("1月", "2027-01-04", 4),
        [
            Period::Since(d("2027-01-01")),
            between("2026-01-01", "2026-01-31")
        ]
    );
}

#[test]
fn fiscal_years_start_in_their_month_and_are_named_by_the_year_they_start_in() {
    let today = "2026-12-06";
    assert_eq!(read("今年度", today, 4), [Period::Since(d("2026-04-01"))]);
    assert_eq!(
        read("前年度", today, 4),
        [between("2025-04-01", "2026-03-31")]
    );
    assert_eq!(
        read("2025年度", today, 4),
        [between("2025-04-01", "2026-03-31")]
    );
    assert_eq!(
        read("fy2025", today, 4),
        [between("2025-04-01", "2026-03-31")]
    );
    assert_eq!(
        read("上期", today, 4),
        [between("2026-04-01", "2026-09-30")]
    );
    assert_eq!(read("下期", today, 4), [Period::Since(d("2026-10-01"))]);
    // In June the second half has not begun: the latest one is last fiscal year's.
    assert_eq!(
        read("下期", "2026-06-10", 4),
        [between("2025-10-01", "2026-03-31")]
    );
    assert_eq!(
        read("今年度", "2026-02-10", 4),
        [Period::Since(d("2025-04-01"))]
    );
    assert_eq!(
        read("2026年度第2四半期", today, 4),
        [between("2026-07-01", "2026-09-30")]
    );
    assert_eq!(
        read("fy2026 q3", today, 4),
        [Period::Since(d("2026-10-01"))]
    );
}

#[test]
fn a_quarter_alone_reads_fiscal_and_calendar_unless_the_year_starts_in_january() {
    let today = "2026-12-06";
    assert_eq!(
        read("第3四半期", today, 4),
        [
            Period::Since(d("2026-10-01")),
            between("2026-07-01", "2026-09-30")
        ]
    );
    assert_eq!(
        read("q3", today, 4),
        [
            Period::Since(d("2026-10-01")),
            between("2026-07-01", "2026-09-30")
        ]
    );
    assert_eq!(read("3q", today, 1), [between("2026-07-01", "2026-09-30")]);
    assert_eq!(
        read("2026年第3四半期", today, 4),
        [between("2026-07-01", "2026-09-30")]
    );
}

#[test]
fn words_and_counts() {
    let today = "2026-12-06";
    assert_eq!(read("過去30日", today, 4), [Period::Last(30, Unit::Day)]);
    assert_eq!(read("直近4週間", today, 4), [Period::Last(4, Unit::Week)]);
    // The strict grammar's `過去3月` reads in a phrase too: one table of counts.
    assert_eq!(read("過去3月", today, 4), [Period::Last(3, Unit::Month)]);
    assert_eq!(
        read("当年度上期", today, 4),
        [between("2026-04-01", "2026-09-30")]
    );
    assert_eq!(
        read("last 3 months", today, 4),
        [Period::Last(3, Unit::Month)]
    );
    assert_eq!(read("昨年", today, 4), [Period::Last(1, Unit::Year)]);
    assert_eq!(
        read("一昨日", today, 4),
        [between("2026-12-04", "2026-12-04")]
    );
    assert_eq!(
        read("2026-11-01..2026-11-30", today, 4),
        [between("2026-11-01", "2026-11-30")]
    );
    let calendar = Calendar {
        today: d(today),
        fiscal_year_start_month: 4,
    };
    // A word that only starts like a period is not one.
    assert!(period_at("novel", &calendar).is_none());
    assert!(period_at("過去0日", &calendar).is_none());
    assert!(period_at("13月", &calendar).is_none());
}

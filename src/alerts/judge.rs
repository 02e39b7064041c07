//! Whether an alert's condition holds on one day of a daily series: the value, what it was
//! measured against (threshold, earlier day, band), and whether it has recovered.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::spec::Window;
use crate::spec::alert::{Condition, VolumeFloor};
use crate::spec::target::{self, PaceMethod, TargetSpec};

/// Which way the value is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    Up,
    Down,
}

/// What an evaluation saw for one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Judged(Judged),
    /// The evaluated day has no value (or what it is compared with has none).
    NoData,
    /// The query failed; the text is for the owner.
    Error(String),
}

/// The condition judged on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub value: Option<f64>,
    /// The firing condition holds.
    pub holds: bool,
    /// The recovery condition holds (with hysteresis, not simply `!holds`).
    pub recovered: bool,
    /// Which way is worse, for "significant worsening".
    pub worse: Direction,
    /// What the value was measured against: the threshold, the earlier value, or the band.
    pub reference: Reference,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Reference {
    Threshold(f64),
    /// The earlier value and the change against it (percent when the condition is in
    /// percent, else units).
    Earlier {
        day: NaiveDate,
        value: f64,
        change: f64,
        percent: bool,
    },
    Band {
        low: f64,
        high: f64,
        weeks: u32,
    },
    /// Where the period stands against its target (the value judged is `projected`).
    Pace {
        target: f64,
        to_date: f64,
        projected: f64,
        /// `projected / target`.
        pace: f64,
        period_start: NaiveDate,
        period_end: NaiveDate,
        /// Projected by last year's shape of the period (else linearly).
        last_year: bool,
    },
    Nothing,
}

/// What a pace alert judges against: its metric's one target, and each period's target.
#[derive(Debug, Clone)]
pub struct PaceSetup {
    pub target: TargetSpec,
    /// The target of each period judged, by its first day, or why it has none (for the
    /// owner: a missing or broken target is an error, not a quiet day).
    pub goals: BTreeMap<NaiveDate, Result<f64, String>>,
    /// The metric adds up over days (a sum or count); else each day's value already is
    /// its period to date (a cumulative metric to date of the target's period).
    pub additive: bool,
}

/// The metric over `window` from its daily values: their sum when it adds up, else the
/// last day's value; `None` when no day of the window has one.
fn value_over(series: &BTreeMap<NaiveDate, f64>, window: Window, additive: bool) -> Option<f64> {
    let mut days = series.range(window.start..=window.end).peekable();
    days.peek()?;
    if additive {
        Some(days.map(|(_, v)| v).sum())
    } else {
        days.last().map(|(_, v)| *v)
    }
}

/// A pace condition on `day`: the period of the target containing `day`, to `day`,
/// projected by the target's method against that period's target. No value on `day` is no
/// data; a period without a target is an error saying why.
pub fn judge_pace(
    below_percent: f64,
    setup: &PaceSetup,
    series: &BTreeMap<NaiveDate, f64>,
    day: NaiveDate,
) -> Seen {
    if !series.contains_key(&day) {
        return Seen::NoData;
    }
    let target = &setup.target;
    let period_start = target.per.around(day).0;
    let window = Window {
        start: period_start,
        end: day,
    };
    let Some(to_date) = value_over(series, window, setup.additive) else {
        return Seen::NoData;
    };
    let last_year = (target.pace == PaceMethod::LastYear)
        .then(|| {
            let (whole, so_far) = target::last_year_windows(window, target.per);
            value_over(series, whole, setup.additive).zip(value_over(
                series,
                so_far,
                setup.additive,
            ))
        })
        .flatten();
    let goal = match setup.goals.get(&period_start) {
        Some(Ok(goal)) => *goal,
        Some(Err(why)) => return Seen::Error(why.clone()),
        None => return Seen::NoData,
    };
    let Some(p) = target::pacing_against(target, Some(goal), window, to_date, last_year) else {
        return Seen::NoData;
    };
    let holds = p.pace * 100.0 < below_percent;
    Seen::Judged(Judged {
        value: Some(p.projected),
        holds,
        recovered: !holds,
        worse: Direction::Down,
        reference: Reference::Pace {
            target: p.target,
            to_date: p.to_date,
            projected: p.projected,
            pace: p.pace,
            period_start: p.period_start,
            period_end: p.period_end,
            last_year: p.method == PaceMethod::LastYear,
        },
    })
}

/// The weekday values a band is built from, oldest first, and how many there are.
fn band_history(series: &BTreeMap<NaiveDate, f64>, day: NaiveDate, weeks: u32) -> Vec<f64> {
    (1..=i64::from(weeks))
        .rev()
        .filter_map(|k| series.get(&(day - Duration::days(7 * k))).copied())
        .collect()
}

/// Mean and sample standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, variance.sqrt())
}

/// `seen` held to a volume floor: a value too small, or a change too small in units, does
/// not start firing (its recovery is judged as it was).
pub fn with_floor(seen: Seen, floor: &VolumeFloor) -> Seen {
    let Seen::Judged(mut judged) = seen else {
        return seen;
    };
    let Some(value) = judged.value else {
        return Seen::Judged(judged);
    };
    let compared = match &judged.reference {
        Reference::Earlier { value, .. } => Some(*value),
        Reference::Band { low, high, .. } => Some((low + high) / 2.0),
        _ => None,
    };
    let size = compared.map_or(value.abs(), |c| value.abs().max(c.abs()));
    let small = floor.min_value.is_some_and(|min| size < min);
    let still = match (&judged.reference, floor.min_change) {
        (Reference::Earlier { value: earlier, .. }, Some(min)) => (value - earlier).abs() < min,
        _ => false,
    };
    // Too small to start firing. A value already firing stays so while its condition
    // holds (it resolves when the condition recovers, not because it got small).
    if small || still {
        judged.holds = false;
    }
    Seen::Judged(judged)
}

/// The condition (with `recover`, its hysteresis level) on `day` of `series`.
/// `Stale` and `Rows` read their own SQL and are judged where they run.
pub fn judge(
    condition: &Condition,
    recover: Option<f64>,
    series: &BTreeMap<NaiveDate, f64>,
    day: NaiveDate,
) -> Seen {
    let value = series.get(&day).copied();
    if let Condition::NoData = condition {
        return Seen::Judged(Judged {
            value,
            holds: value.is_none(),
            recovered: value.is_some(),
            worse: Direction::Down,
            reference: Reference::Nothing,
        });
    }
    let Some(v) = value else {
        return Seen::NoData;
    };
    let judged = |holds: bool, recovered: bool, worse: Direction, reference: Reference| {
        Seen::Judged(Judged {
            value: Some(v),
            holds,
            recovered,
            worse,
            reference,
        })
    };
    match condition {
        Condition::Above(x) => judged(
            v > *x,
            v <= recover.unwrap_or(*x),
            Direction::Up,
            Reference::Threshold(*x),
        ),
        Condition::Below(x) => judged(
            v < *x,
            v >= recover.unwrap_or(*x),
            Direction::Down,
            Reference::Threshold(*x),
        ),
        Condition::Change {
            against,
            percent,
            units,
        } => {
            let earlier_day = day - Duration::days(against.days());
            let Some(earlier) = series.get(&earlier_day).copied() else {
                return Seen::NoData;
            };
            let (change, limit, is_percent) = match (percent, units) {
                (Some(p), _) => {
                    if earlier == 0.0 {
                        return Seen::NoData;
                    }
                    ((v - earlier) / earlier.abs() * 100.0, *p, true)
                }
                (None, Some(u)) => (v - earlier, *u, false),
                (None, None) => return Seen::NoData,
            };
            let holds = if limit < 0.0 {
                change <= limit
            } else {
                change >= limit
            };
            judged(
                holds,
                !holds,
                if limit < 0.0 {
                    Direction::Down
                } else {
                    Direction::Up
                },
                Reference::Earlier {
                    day: earlier_day,
                    value: earlier,
                    change,
                    percent: is_percent,
                },
            )
        }
        Condition::Band {
            weeks,
            sigmas,
            min_weeks,
        } => {
            let history = band_history(series, day, *weeks);
            if history.len() < *min_weeks as usize {
                // Too little history to say what is usual: never fires.
                return judged(false, true, Direction::Down, Reference::Nothing);
            }
            let (mean, sd) = mean_sd(&history);
            let (low, high) = (mean - sigmas * sd, mean + sigmas * sd);
            let holds = v < low || v > high;
            judged(
                holds,
                !holds,
                if v < mean {
                    Direction::Down
                } else {
                    Direction::Up
                },
                Reference::Band {
                    low,
                    high,
                    weeks: history.len() as u32,
                },
            )
        }
        // Judged where they run: pace by `judge_pace`, which needs the target.
        Condition::Pace { .. }
        | Condition::NoData
        | Condition::Stale(_)
        | Condition::Rows { .. } => Seen::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::alert::ChangeAgainst;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn series(values: &[(u32, f64)]) -> BTreeMap<NaiveDate, f64> {
        values.iter().map(|(d, v)| (day(*d), *v)).collect()
    }

    fn holds(seen: &Seen) -> (bool, bool) {
        match seen {
            Seen::Judged(j) => (j.holds, j.recovered),
            other => panic!("expected a judgement, got {other:?}"),
        }
    }

    #[test]
    fn thresholds_with_hysteresis_leave_a_band_where_nothing_changes() {
        let s = series(&[(1, 90.0), (2, 105.0), (3, 125.0)]);
        let below = Condition::Below(100.0);
        assert_eq!(
            holds(&judge(&below, Some(120.0), &s, day(1))),
            (true, false)
        );
        // Between the threshold and the recovery level: neither fires nor recovers.
        assert_eq!(
            holds(&judge(&below, Some(120.0), &s, day(2))),
            (false, false)
        );
        assert_eq!(
            holds(&judge(&below, Some(120.0), &s, day(3))),
            (false, true)
        );
        // Without hysteresis, recovery is the condition not holding.
        assert_eq!(holds(&judge(&below, None, &s, day(2))), (false, true));
        assert_eq!(
            holds(&judge(&Condition::Above(100.0), None, &s, day(2))),
            (true, false)
        );
    }

    #[test]
    fn a_change_is_measured_against_the_same_weekday_a_week_before() {
        let s = series(&[(1, 200.0), (7, 100.0), (8, 150.0)]);
        let drop = Condition::Change {
            against: ChangeAgainst::PreviousWeek,
            percent: Some(-20.0),
            units: None,
        };
        // 150 against 200 a week before: -25 %.
        let Seen::Judged(j) = judge(&drop, None, &s, day(8)) else {
            panic!()
        };
        assert!(j.holds);
        assert_eq!(
            j.reference,
            Reference::Earlier {
                day: day(1),
                value: 200.0,
                change: -25.0,
                percent: true
            }
        );
        // Against the day before it is a rise of 50 %: a drop condition does not hold.
        let day_before = Condition::Change {
            against: ChangeAgainst::PreviousDay,
            percent: Some(-20.0),
            units: None,
        };
        assert_eq!(holds(&judge(&day_before, None, &s, day(8))), (false, true));
        let rise = Condition::Change {
            against: ChangeAgainst::PreviousDay,
            percent: None,
            units: Some(40.0),
        };
        assert_eq!(holds(&judge(&rise, None, &s, day(8))), (true, false));
        // Nothing a week before the 7th: no data, not "no change".
        assert_eq!(judge(&drop, None, &s, day(7)), Seen::NoData);
    }

    #[test]
    fn a_band_needs_its_minimum_history_and_uses_the_same_weekday() {
        // Four Mondays of 100, 110, 90, 100 (mean 100, sd ≈ 8.16); other days wild.
        let mut s = series(&[(2, 100.0), (9, 110.0), (16, 90.0), (23, 100.0)]);
        for d in [3, 10, 17, 24] {
            s.insert(day(d), 5000.0);
        }
        let band = Condition::Band {
            weeks: 4,
            sigmas: 3.0,
            min_weeks: 3,
        };
        s.insert(day(30), 70.0);
        let Seen::Judged(j) = judge(&band, None, &s, day(30)) else {
            panic!()
        };
        assert!(j.holds, "70 is below 100 - 3 × 8.16");
        assert_eq!(j.worse, Direction::Down);
        s.insert(day(30), 80.0);
        assert_eq!(holds(&judge(&band, None, &s, day(30))), (false, true));
        // Only two earlier Mondays: too little history to fire, however far off.
        let short = series(&[(16, 90.0), (23, 100.0), (30, 1.0)]);
        assert_eq!(holds(&judge(&band, None, &short, day(30))), (false, true));
    }

    #[test]
    fn no_data_is_its_own_condition_or_a_state_for_the_others() {
        let s = series(&[(1, 5.0)]);
        assert_eq!(
            holds(&judge(&Condition::NoData, None, &s, day(2))),
            (true, false)
        );
        assert_eq!(
            holds(&judge(&Condition::NoData, None, &s, day(1))),
            (false, true)
        );
        assert_eq!(
            judge(&Condition::Above(1.0), None, &s, day(2)),
            Seen::NoData
        );
    }

    fn pace_setup(goal: f64, pace: PaceMethod, additive: bool) -> PaceSetup {
        PaceSetup {
            target: TargetSpec {
                metric: "signups".into(),
                per: crate::spec::TargetPeriod::Month,
                value: Some(goal),
                values: Default::default(),
                filter: None,
                pace,
                table: None,
                path: "t.toml".into(),
                span: 0..0,
            },
            goals: BTreeMap::from([(day(1), Ok(goal))]),
            additive,
        }
    }

    fn pace_of(seen: &Seen) -> f64 {
        match seen {
            Seen::Judged(Judged {
                reference: Reference::Pace { pace, .. },
                ..
            }) => *pace,
            other => panic!("expected a pace, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// November has 30 days: a month to date of `sum` over `d` days is projected to
        /// `sum × 30 / d`, and fires exactly when that is under `below` % of the target.
        #[test]
        fn a_pace_fires_exactly_when_the_linear_projection_falls_short(
            values in proptest::collection::vec(0u32..1000, 30),
            d in 1u32..=30,
            goal in 1u32..100_000,
            below in 1u32..200,
        ) {
            let s: BTreeMap<NaiveDate, f64> =
                (1..=30).map(|i| (day(i), f64::from(values[i as usize - 1]))).collect();
            let sum: u64 = values[..d as usize].iter().map(|v| u64::from(*v)).sum();
            let (lhs, rhs) = (sum * 30 * 100, u64::from(goal) * u64::from(below) * u64::from(d));
            proptest::prop_assume!(lhs != rhs);
            let seen = judge_pace(f64::from(below), &pace_setup(f64::from(goal), PaceMethod::Linear, true), &s, day(d));
            proptest::prop_assert_eq!(holds(&seen), (lhs < rhs, lhs >= rhs));
        }
    }

    #[test]
    fn a_pace_by_last_years_shape_a_running_total_and_a_month_without_target() {
        // A running total (month to date): the day's value is the month so far.
        let running = series(&[(14, 1000.0), (15, 1500.0)]);
        let seen = judge_pace(
            90.0,
            &pace_setup(3000.0, PaceMethod::Linear, false),
            &running,
            day(15),
        );
        assert!((pace_of(&seen) - 1500.0 * 2.0 / 3000.0).abs() < 1e-12);
        assert_eq!(holds(&seen), (false, true));
        // Last year's November grew from 1,000 by the 15th to 4,000 by the 30th: ×4.
        let mut days = series(&[(1, 500.0), (15, 500.0)]);
        let ly = |d: u32| NaiveDate::from_ymd_opt(2025, 11, d).unwrap();
        days.extend([(ly(1), 600.0), (ly(15), 400.0), (ly(30), 3000.0)]);
        let seen = judge_pace(
            90.0,
            &pace_setup(5000.0, PaceMethod::LastYear, true),
            &days,
            day(15),
        );
        assert!(
            (pace_of(&seen) - 1000.0 * 4.0 / 5000.0).abs() < 1e-12,
            "{seen:?}"
        );
        assert_eq!(holds(&seen), (true, false));
        // December has no target: nothing is judged against one made up; the owner is told.
        let december = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let mut setup = pace_setup(3000.0, PaceMethod::Linear, true);
        let first = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        setup
            .goals
            .insert(first, Err("no target for December".into()));
        let seen = judge_pace(90.0, &setup, &BTreeMap::from([(december, 10.0)]), december);
        assert_eq!(seen, Seen::Error("no target for December".into()));
        // Nor a day without data.
        assert_eq!(
            judge_pace(
                90.0,
                &pace_setup(3000.0, PaceMethod::Linear, true),
                &running,
                day(16)
            ),
            Seen::NoData
        );
    }
    proptest::proptest! {
        /// A floor only ever quiets: what does not fire without it never fires with it;
        /// a floor of 0 changes nothing; a change at least as large as both floors fires
        /// as it did.
        #[test]
        fn a_floor_only_quiets(
            values in proptest::collection::vec(0u32..50_000, 8),
            percent in -60i32..60,
            min_value in 0u32..40_000,
            min_change in 0u32..20_000,
        ) {
            let s: BTreeMap<NaiveDate, f64> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (day(i as u32 + 1), f64::from(*v)))
                .collect();
            let change = Condition::Change {
                against: ChangeAgainst::PreviousWeek,
                percent: Some(f64::from(percent)),
                units: None,
            };
            let seen = judge(&change, None, &s, day(8));
            let floor = VolumeFloor { min_value: Some(f64::from(min_value)), min_change: Some(f64::from(min_change)) };
            let floored = with_floor(seen.clone(), &floor);
            let zero = VolumeFloor { min_value: Some(0.0), min_change: Some(0.0) };
            proptest::prop_assert_eq!(with_floor(seen.clone(), &zero), seen.clone());
            if let (Seen::Judged(before), Seen::Judged(after)) = (&seen, &floored) {
                proptest::prop_assert!(before.holds || !after.holds);
                let (v, w) = (f64::from(values[7]), f64::from(values[0]));
                let big = v.max(w) >= f64::from(min_value) && (v - w).abs() >= f64::from(min_change);
                if big {
                    proptest::prop_assert_eq!(before, after);
                }
            }
        }
    }
}

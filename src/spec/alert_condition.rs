//! An alert's one condition: above / below a threshold, a change against an earlier day,
//! outside the band history predicts, a period projected short of its target, no data, a
//! stale source, a query returning rows; its types and how `[[alert]]` spells it.

use super::FreshnessSpec;
use super::metric::TargetPeriod;
use super::walk::{Reader, Tbl, string_content_offset};
use crate::warehouse::reads::read_sql;

/// Which earlier value a change is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAgainst {
    /// The day before.
    PreviousDay,
    /// The same weekday a week before (the default: weekly rhythms cancel out).
    PreviousWeek,
}

impl ChangeAgainst {
    pub const NAMES: [&'static str; 2] = ["previous_day", "previous_week"];
    fn parse(name: &str) -> Option<Self> {
        match name {
            "previous_day" => Some(Self::PreviousDay),
            "previous_week" => Some(Self::PreviousWeek),
            _ => None,
        }
    }
    /// How many days back the compared value lies.
    pub fn days(self) -> i64 {
        match self {
            Self::PreviousDay => 1,
            Self::PreviousWeek => 7,
        }
    }
}

/// What fires an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Above(f64),
    Below(f64),
    /// The value moved by at least `percent` % or `units` against an earlier day; the sign
    /// says the direction (negative: a drop).
    Change {
        against: ChangeAgainst,
        percent: Option<f64>,
        units: Option<f64>,
    },
    /// Outside mean ± `sigmas` standard deviations of the same weekday over the last
    /// `weeks` weeks; never fires with fewer than `min_weeks` of them.
    Band {
        weeks: u32,
        sigmas: f64,
        min_weeks: u32,
    },
    /// The period to date (from the start of the target's month or week to the evaluated
    /// day) is projected to land below `below_percent` % of the metric's target, by the
    /// target's own pace method. `per` picks the target when the metric has both.
    Pace {
        below_percent: f64,
        per: Option<TargetPeriod>,
    },
    /// The evaluated day has no value.
    NoData,
    /// The source is not refreshed (the freshness check reports have).
    Stale(FreshnessSpec),
    /// A query returns rows: each new row is one instance, notified once.
    Rows {
        sql: String,
    },
}

const CONDITIONS: [&str; 8] = [
    "above", "below", "change", "band", "pace", "no_data", "stale", "rows",
];
const PACE_KEYS: [&str; 2] = ["below", "per"];
const CHANGE_KEYS: [&str; 3] = ["percent", "units", "against"];
const BAND_KEYS: [&str; 3] = ["weeks", "sigmas", "min_weeks"];
impl Reader<'_> {
    pub(super) fn condition(&mut self, t: &Tbl) -> Option<Condition> {
        let present: Vec<&str> = CONDITIONS
            .iter()
            .copied()
            .filter(|c| Self::lookup(t, c).is_some())
            .collect();
        match present.as_slice() {
            [] => {
                let d = self.error(t.anchor.clone(), "the alert has no condition");
                d.hint = Some(format!("add one of: {}", CONDITIONS.join(", ")));
                None
            }
            [one] => self.one_condition(t, one),
            [first, second, ..] => {
                let span = Self::lookup(t, second).map_or(t.anchor.clone(), |v| v.span());
                self.error(
                    span,
                    format!("an alert has one condition; `{first}` and `{second}` are both set"),
                )
                .hint = Some("write a second `[[alert]]` for the other condition".into());
                None
            }
        }
    }

    fn one_condition(&mut self, t: &Tbl, key: &str) -> Option<Condition> {
        match key {
            "above" => self
                .number(t, "above")
                .map(|x| Condition::Above(x.unwrap_or(0.0))),
            "below" => self
                .number(t, "below")
                .map(|x| Condition::Below(x.unwrap_or(0.0))),
            "change" => {
                let c = self.table(t, "change", true)?;
                self.check_keys(&c, &CHANGE_KEYS);
                let percent = self.number(&c, "percent")?;
                let units = self.number(&c, "units")?;
                let against = self.choice(
                    &c,
                    "against",
                    &ChangeAgainst::NAMES,
                    ChangeAgainst::parse,
                    Some(ChangeAgainst::PreviousWeek),
                )?;
                match (percent, units) {
                    (Some(p), None) if p != 0.0 => Some(Condition::Change {
                        against,
                        percent: Some(p),
                        units: None,
                    }),
                    (None, Some(u)) if u != 0.0 => Some(Condition::Change {
                        against,
                        percent: None,
                        units: Some(u),
                    }),
                    _ => {
                        self.error(
                            c.anchor.clone(),
                            "`change` needs one of `percent` or `units`, not zero",
                        )
                        .hint = Some(
                            "e.g. `change = { percent = -20 }` fires on a drop of 20 % or more against the same weekday a week before".into(),
                        );
                        None
                    }
                }
            }
            "band" => {
                let b = self.table(t, "band", true)?;
                self.check_keys(&b, &BAND_KEYS);
                let weeks = self.whole_number(&b, "weeks", 2..=52, "a whole number from 2 to 52");
                let min_weeks =
                    self.whole_number(&b, "min_weeks", 2..=52, "a whole number from 2 to 52");
                let sigmas = self.number(&b, "sigmas");
                let weeks = weeks?.unwrap_or(4) as u32;
                let min_weeks = min_weeks?.map_or(weeks.min(3), |n| n as u32);
                let sigmas = sigmas?.unwrap_or(3.0);
                if min_weeks > weeks || sigmas <= 0.0 {
                    self.error(
                        b.anchor.clone(),
                        "`band` needs `min_weeks` ≤ `weeks` and `sigmas` above 0",
                    );
                    return None;
                }
                Some(Condition::Band {
                    weeks,
                    sigmas,
                    min_weeks,
                })
            }
            "pace" => {
                let p = self.table(t, "pace", true)?;
                self.check_keys(&p, &PACE_KEYS);
                let below = self.number(&p, "below")?;
                let per = match Self::lookup(&p, "per") {
                    None => None,
                    Some(_) => Some(self.choice(
                        &p,
                        "per",
                        &TargetPeriod::NAMES,
                        TargetPeriod::parse,
                        None,
                    )?),
                };
                match below {
                    Some(below) if below > 0.0 && below.is_finite() => Some(Condition::Pace {
                        below_percent: below,
                        per,
                    }),
                    _ => {
                        self.error(
                            p.anchor.clone(),
                            "`pace` needs `below`, a percentage of the target above 0",
                        )
                        .hint = Some(
                            "e.g. `pace = { below = 90 }` fires while the month is projected to land under 90 % of its target".into(),
                        );
                        None
                    }
                }
            }
            "no_data" => match self.flag(t, "no_data", false)? {
                true => Some(Condition::NoData),
                false => {
                    let span = Self::lookup(t, "no_data").map_or(t.anchor.clone(), |v| v.span());
                    self.error(span, "`no_data = false` is no condition; remove it");
                    None
                }
            },
            "stale" => {
                let s = self.table(t, "stale", true)?;
                self.freshness(&s).map(Condition::Stale)
            }
            "rows" => {
                let sql = self.string(t, "rows", true)?;
                if sql.get_ref().trim().is_empty() {
                    self.error(sql.span(), "`rows` is empty");
                    return None;
                }
                let reads = read_sql(sql.get_ref(), self.dialect);
                self.forbid(&reads, sql.span());
                let offset = string_content_offset(self.source, sql.span(), sql.get_ref());
                self.forbid_clock(sql.get_ref(), offset, sql.span());
                Some(Condition::Rows {
                    sql: sql.into_inner(),
                })
            }
            _ => None,
        }
    }
}

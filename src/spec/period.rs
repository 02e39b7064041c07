//! Report periods: a small grammar (`last 28 days`, `this month`, `2026-01-01..2026-01-31`, …)
//! resolved to an inclusive date window in the report's timezone.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale, Message};
use crate::tr;

/// A period as written by a report author or a Slack user, not yet tied to a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Yesterday,
    Today,
    /// `last N days|weeks|months`: N complete units before the current one.
    Last(u32, Unit),
    /// `this week|month|quarter|year`: the current unit up to and including today.
    This(Unit),
    /// `month to date`: the first of the month through yesterday (complete days).
    MonthToDate,
    /// `2026-01-01..2026-01-31`, both ends included.
    Between(NaiveDate, NaiveDate),
    /// `since 2026-04-01`: that day through today.
    Since(NaiveDate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// An inclusive range of calendar dates in one timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Window {
    /// Number of days in the window, both ends included.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    /// The window of the same length that ends the day before this one starts.
    pub fn previous(&self) -> Window {
        let end = self.start - chrono::Duration::days(1);
        Window {
            start: end - chrono::Duration::days(self.days() - 1),
            end,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{} – {}", self.start, self.end)
        }
    }
}

/// Why a period cannot be used, in the reader's language ([`PeriodError::text`]); shown
/// in English where an operator reads it (`check`, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    Unparsable(String),
    ZeroLength(String),
    Backwards {
        start: NaiveDate,
        end: NaiveDate,
    },
    BadDate(String),
    /// The window reaches `date`, before the earliest date or (`too_late`) past the latest.
    OutOfRange {
        window: Window,
        date: NaiveDate,
        too_late: bool,
        earliest: NaiveDate,
        latest: NaiveDate,
    },
    TooLong {
        window: Window,
        days: i64,
        max_days: u32,
    },
}

impl PeriodError {
    /// The mistake in `locale`, as plain text.
    pub fn text(&self, locale: Locale) -> String {
        self.message(locale).text(locale)
    }

    /// The mistake in `locale`, as Slack mrkdwn (what was typed, escaped).
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        Mrkdwn::formatted(self.message(locale).mrkdwn(locale))
    }

    fn message(&self, locale: Locale) -> Message {
        let date = |d: &NaiveDate| i18n::date(locale, *d);
        let window = |w: &Window| i18n::date_range(locale, w.start, w.end);
        match self {
            PeriodError::Unparsable(text) => Message::new("period-unparsable").with("text", text),
            PeriodError::ZeroLength(text) => Message::new("period-zero-length").with("text", text),
            PeriodError::Backwards { start, end } => Message::new("period-backwards")
                .with("start", date(start))
                .with("end", date(end)),
            PeriodError::BadDate(text) => Message::new("period-bad-date").with("text", text),
            PeriodError::OutOfRange {
                window: w,
                date: d,
                too_late,
                earliest,
                latest,
            } => Message::new(if *too_late {
                "period-too-far-ahead"
            } else {
                "period-before-earliest"
            })
            .with("window", window(w))
            .with("date", date(d))
            .with("earliest", date(earliest))
            .with("latest", date(latest)),
            PeriodError::TooLong {
                window: w,
                days,
                max_days,
            } => Message::new("period-too-long")
                .with("window", window(w))
                .with_number("days", *days as f64)
                .with_number("max_days", *max_days),
        }
    }
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Locale::En))
    }
}

impl std::error::Error for PeriodError {}

/// How far a window may reach: no earlier than `earliest`, no later than `latest_days_ahead`
/// after today, at most `max_days` long. Dates outside are mistakes, never queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    pub earliest: NaiveDate,
    pub latest_days_ahead: u32,
    pub max_days: u32,
}

/// The earliest date a window may start on unless the settings say otherwise.
pub const DEFAULT_EARLIEST_DATE: (i32, u32, u32) = (2000, 1, 1);
/// How far past today a window may end, in days.
pub const DEFAULT_LATEST_DAYS_AHEAD: u32 = 365;
/// The longest window, in days (three years).
pub const DEFAULT_MAX_WINDOW_DAYS: u32 = 1096;

impl Default for WindowLimits {
    fn default() -> Self {
        let (y, m, d) = DEFAULT_EARLIEST_DATE;
        Self {
            earliest: NaiveDate::from_ymd_opt(y, m, d).expect("a valid date"),
            latest_days_ahead: DEFAULT_LATEST_DAYS_AHEAD,
            max_days: DEFAULT_MAX_WINDOW_DAYS,
        }
    }
}

impl WindowLimits {
    /// `window` if it lies inside the limits (today being `today`), else why not.
    pub fn check(&self, window: Window, today: NaiveDate) -> Result<Window, PeriodError> {
        let latest = today
            .checked_add_days(Days::new(u64::from(self.latest_days_ahead)))
            .unwrap_or(today);
        let out = |date, too_late| PeriodError::OutOfRange {
            window,
            date,
            too_late,
            earliest: self.earliest,
            latest,
        };
        if window.start < self.earliest {
            return Err(out(window.start, false));
        }
        if window.end > latest {
            return Err(out(window.end, true));
        }
        if window.days() > i64::from(self.max_days) {
            return Err(PeriodError::TooLong {
                window,
                days: window.days(),
                max_days: self.max_days,
            });
        }
        Ok(window)
    }
}

/// Largest N accepted in `last N …`, so a typo cannot ask for a century of data.
pub const MAX_PERIOD_COUNT: u32 = 3660;

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normalized = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let unparsable = || PeriodError::Unparsable(text.trim().to_string());
        let words: Vec<&str> = normalized.split(' ').collect();
        match words.as_slice() {
            ["yesterday"] => Ok(Period::Yesterday),
            ["today"] => Ok(Period::Today),
            ["month", "to", "date"] | ["mtd"] => Ok(Period::MonthToDate),
            ["last", "month"] => Ok(Period::Last(1, Unit::Month)),
            ["last", "week"] => Ok(Period::Last(1, Unit::Week)),
            ["last", "quarter"] => Ok(Period::Last(1, Unit::Quarter)),
            ["last", "year"] => Ok(Period::Last(1, Unit::Year)),
            ["this", unit] => match parse_unit(unit) {
                Some(Unit::Day) => Ok(Period::Today),
                Some(unit) => Ok(Period::This(unit)),
                None => Err(unparsable()),
            },
            ["last", count, unit] => {
                let count: u32 = count.parse().map_err(|_| unparsable())?;
                let unit = match parse_unit(unit) {
                    Some(unit @ (Unit::Day | Unit::Week | Unit::Month)) => unit,
                    _ => return Err(unparsable()),
                };
                if count == 0 || count > MAX_PERIOD_COUNT {
                    return Err(PeriodError::ZeroLength(text.trim().to_string()));
                }
                Ok(Period::Last(count, unit))
            }
            ["since", date] => Ok(Period::Since(parse_date(date)?)),
            [range] if range.contains("..") => {
                let (start, end) = range.split_once("..").ok_or_else(unparsable)?;
                let (start, end) = (parse_date(start)?, parse_date(end)?);
                if end < start {
                    return Err(PeriodError::Backwards { start, end });
                }
                Ok(Period::Between(start, end))
            }
            _ => Err(unparsable()),
        }
    }
}

/// Period words that need no calendar, in Japanese and English (lower case), for `/kpi`:
/// the strict grammar reads them as whole words, the phrase reader anywhere in a question.
pub const PERIOD_WORDS: [(&str, Period); 35] = [
    ("previous month", Period::Last(1, Unit::Month)),
    ("previous week", Period::Last(1, Unit::Week)),
    ("past month", Period::Last(1, Unit::Month)),
    ("past week", Period::Last(1, Unit::Week)),
    ("month to date", Period::MonthToDate),
    ("year to date", Period::This(Unit::Year)),
    ("this quarter", Period::This(Unit::Quarter)),
    ("last quarter", Period::Last(1, Unit::Quarter)),
    ("this month", Period::This(Unit::Month)),
    ("last month", Period::Last(1, Unit::Month)),
    ("this week", Period::This(Unit::Week)),
    ("last week", Period::Last(1, Unit::Week)),
    ("this year", Period::This(Unit::Year)),
    ("last year", Period::Last(1, Unit::Year)),
    ("yesterday", Period::Yesterday),
    ("today", Period::Today),
    ("mtd", Period::MonthToDate),
    ("ytd", Period::This(Unit::Year)),
    ("今四半期", Period::This(Unit::Quarter)),
    ("前四半期", Period::Last(1, Unit::Quarter)),
    ("先四半期", Period::Last(1, Unit::Quarter)),
    ("昨日", Period::Yesterday),
    ("今日", Period::Today),
    ("本日", Period::Today),
    ("今週", Period::This(Unit::Week)),
    ("先週", Period::Last(1, Unit::Week)),
    ("前週", Period::Last(1, Unit::Week)),
    ("今月", Period::This(Unit::Month)),
    ("当月", Period::This(Unit::Month)),
    ("先月", Period::Last(1, Unit::Month)),
    ("前月", Period::Last(1, Unit::Month)),
    ("今年", Period::This(Unit::Year)),
    ("本年", Period::This(Unit::Year)),
    ("昨年", Period::Last(1, Unit::Year)),
    ("去年", Period::Last(1, Unit::Year)),
];

/// Units after a count (`過去30日`, `last 3 months`), each before any it starts with.
const COUNTED_UNITS: [(&str, Unit); 17] = [
    ("日間", Unit::Day),
    ("日", Unit::Day),
    ("週間", Unit::Week),
    ("週", Unit::Week),
    ("ヶ月", Unit::Month),
    ("か月", Unit::Month),
    ("カ月", Unit::Month),
    ("ケ月", Unit::Month),
    ("ヵ月", Unit::Month),
    ("月間", Unit::Month),
    ("月", Unit::Month),
    ("days", Unit::Day),
    ("day", Unit::Day),
    ("weeks", Unit::Week),
    ("week", Unit::Week),
    ("months", Unit::Month),
    ("month", Unit::Month),
];

/// `過去30日`, `直近4週間`, `過去3ヶ月`, `last 30 days`, `past 3 months` at the start of `text`
/// (lower case, ASCII digits): the period and its length in bytes. A count of 0 or over
/// [`MAX_PERIOD_COUNT`] is none.
pub fn counted_at(text: &str) -> Option<(Period, usize)> {
    let (rest, prefix) = ["過去", "直近", "last ", "past "]
        .iter()
        .find_map(|p| text.strip_prefix(p).map(|r| (r, p.len())))?;
    let spaced = rest.trim_start();
    let prefix = prefix + (rest.len() - spaced.len());
    let digits = spaced.bytes().take_while(u8::is_ascii_digit).count();
    let n: u32 = spaced[..digits].parse().ok()?;
    let after = &spaced[digits..];
    let trimmed = after.trim_start();
    let blank = after.len() - trimmed.len();
    let (word, unit) = COUNTED_UNITS.iter().find(|(w, _)| trimmed.starts_with(w))?;
    if n == 0 || n > MAX_PERIOD_COUNT {
        return None;
    }
    Some((Period::Last(n, *unit), prefix + digits + blank + word.len()))
}

/// A whole word that is a period without a calendar: one of [`PERIOD_WORDS`] or a count.
pub fn period_word(word: &str) -> Option<Period> {
    let word = word.to_lowercase();
    PERIOD_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, p)| *p)
        .or_else(|| {
            counted_at(&word)
                .filter(|(_, len)| *len == word.len())
                .map(|(p, _)| p)
        })
}

fn parse_unit(word: &str) -> Option<Unit> {
    match word {
        "day" | "days" => Some(Unit::Day),
        "week" | "weeks" => Some(Unit::Week),
        "month" | "months" => Some(Unit::Month),
        "quarter" | "quarters" => Some(Unit::Quarter),
        "year" | "years" => Some(Unit::Year),
        _ => None,
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| PeriodError::BadDate(text.to_string()))
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit_name = |unit: Unit, plural: bool| {
            let name = match unit {
                Unit::Day => "day",
                Unit::Week => "week",
                Unit::Month => "month",
                Unit::Quarter => "quarter",
                Unit::Year => "year",
            };
            if plural {
                format!("{name}s")
            } else {
                name.to_string()
            }
        };
        match self {
            Period::Yesterday => write!(f, "yesterday"),
            Period::Today => write!(f, "today"),
            // `last week`, `last year`; but `last 1 day` (`last day` is not read back).
            Period::Last(1, unit @ (Unit::Week | Unit::Month | Unit::Quarter | Unit::Year)) => {
                write!(f, "last {}", unit_name(*unit, false))
            }
            Period::Last(n, unit) => write!(f, "last {n} {}", unit_name(*unit, *n != 1)),
            Period::This(unit) => write!(f, "this {}", unit_name(*unit, false)),
            Period::MonthToDate => write!(f, "month to date"),
            Period::Between(start, end) => write!(f, "{start}..{end}"),
            Period::Since(date) => write!(f, "since {date}"),
        }
    }
}

impl Period {
    /// The period in the reader's words: `last 28 days`, `過去28日`, `先月`.
    pub fn words(&self, locale: Locale) -> String {
        let unit_key = |unit: Unit, this: bool| match (unit, this) {
            (Unit::Day, false) => "period-last-days",
            (Unit::Week, false) => "period-last-weeks",
            (Unit::Month, false) => "period-last-months",
            (Unit::Quarter, false) => "period-last-quarters",
            (Unit::Year, false) => "period-last-years",
            (Unit::Day, true) => "period-today",
            (Unit::Week, true) => "period-this-week",
            (Unit::Month, true) => "period-this-month",
            (Unit::Quarter, true) => "period-this-quarter",
            (Unit::Year, true) => "period-this-year",
        };
        match *self {
            Period::Yesterday => tr!(locale, "period-yesterday"),
            Period::Today => tr!(locale, "period-today"),
            Period::Last(n, unit) => tr!(locale, unit_key(unit, false), count = n),
            Period::This(unit) => tr!(locale, unit_key(unit, true)),
            Period::MonthToDate => tr!(locale, "period-month-to-date"),
            Period::Between(start, end) => i18n::date_range(locale, start, end),
            Period::Since(start) => {
                tr!(locale, "period-since", start = i18n::date(locale, start))
            }
        }
    }

    /// The inclusive window this period covers when "today" is `today` in the report's
    /// timezone; weeks start on `week_start`.
    pub fn resolve(&self, today: NaiveDate, week_start: Weekday) -> Result<Window, PeriodError> {
        let yesterday = today - Days::new(1);
        let window = match *self {
            Period::Yesterday => Window {
                start: yesterday,
                end: yesterday,
            },
            Period::Today => Window {
                start: today,
                end: today,
            },
            Period::Last(n, Unit::Day) => Window {
                start: today - Days::new(u64::from(n)),
                end: yesterday,
            },
            Period::Last(n, Unit::Week) => {
                let this_week = start_of_week(today, week_start);
                Window {
                    start: this_week - Days::new(7 * u64::from(n)),
                    end: this_week - Days::new(1),
                }
            }
            Period::Last(n, unit) => {
                let months_per_unit = months_in(unit);
                let this_unit = start_of_unit(today, unit, week_start);
                Window {
                    start: this_unit - Months::new(n * months_per_unit),
                    end: this_unit - Days::new(1),
                }
            }
            Period::This(unit) => Window {
                start: start_of_unit(today, unit, week_start),
                end: today,
            },
            Period::MonthToDate => Window {
                start: start_of_unit(yesterday, Unit::Month, week_start),
                end: yesterday,
            },
            Period::Between(start, end) => Window { start, end },
            Period::Since(start) => Window { start, end: today },
        };
        if window.end < window.start {
            return Err(PeriodError::Backwards {
                start: window.start,
                end: window.end,
            });
        }
        Ok(window)
    }
}

fn months_in(unit: Unit) -> u32 {
    match unit {
        Unit::Quarter => 3,
        Unit::Year => 12,
        _ => 1,
    }
}

fn start_of_week(day: NaiveDate, week_start: Weekday) -> NaiveDate {
    let back = (7 + day.weekday().num_days_from_monday() - week_start.num_days_from_monday()) % 7;
    day - Days::new(u64::from(back))
}

fn start_of_unit(day: NaiveDate, unit: Unit, week_start: Weekday) -> NaiveDate {
    let first_of = |month: u32| NaiveDate::from_ymd_opt(day.year(), month, 1).unwrap_or(day);
    match unit {
        Unit::Day => day,
        Unit::Week => start_of_week(day, week_start),
        Unit::Month => first_of(day.month()),
        Unit::Quarter => first_of((day.month0() / 3) * 3 + 1),
        Unit::Year => first_of(1),
    }
}

#[cfg(test)]
#[path = "period_tests.rs"]
mod tests;

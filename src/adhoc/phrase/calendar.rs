//! Periods as people say them, read at a position in a normalized question: the period
//! grammar's words, months (`11月`, `2026年11月`, `Nov 2026`), calendar and fiscal years
//! (`今年`, `前年度`, `FY2026`), halves (`上期`) and quarters (`第3四半期`, `Q3`). Each
//! becomes a [`Period`] on fixed dates; a phrase with two sensible readings gives both.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};

use crate::spec::Period;
use crate::spec::period::{PERIOD_WORDS, counted_at};

/// What a period phrase is read against: today in the bot's timezone and the company's
/// fiscal year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    pub today: NaiveDate,
    /// 1–12: the month a fiscal year starts in. A fiscal year is named by the calendar
    /// year it starts in (`2026年度` / `FY2026` starts in April 2026 when this is 4).
    pub fiscal_year_start_month: u32,
}

/// A period phrase found at the start of a text: its readings (one, or two when it is
/// ambiguous) and its length in bytes.
pub struct Found {
    pub readings: Vec<Period>,
    pub len: usize,
}

fn first_of(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// `[start, start + months)`, ending today when it is under way.
fn span(calendar: &Calendar, start: NaiveDate, months: u32) -> Option<Period> {
    let end = start.checked_add_months(Months::new(months))? - Days::new(1);
    Some(if start <= calendar.today && calendar.today <= end {
        Period::Since(start)
    } else {
        Period::Between(start, end)
    })
}

impl Calendar {
    /// The calendar at `now` in `timezone`, with the fiscal year starting in that month.
    pub fn at(timezone: chrono_tz::Tz, now: DateTime<Utc>, fiscal_year_start_month: u32) -> Self {
        Self {
            today: crate::pipeline::today_in(timezone, now),
            fiscal_year_start_month,
        }
    }

    /// The first day of the fiscal year named `year`.
    fn fiscal_start(&self, year: i32) -> Option<NaiveDate> {
        first_of(year, self.fiscal_year_start_month.clamp(1, 12))
    }

    /// The name (start year) of the fiscal year today is in.
    fn this_fiscal_year(&self) -> i32 {
        let year = self.today.year();
        if self.today.month() >= self.fiscal_year_start_month {
            year
        } else {
            year - 1
        }
    }

    /// Months `offset..offset + months` of a fiscal year: the latest that has begun when
    /// `year` is not given.
    fn fiscal_part(&self, year: Option<i32>, offset: u32, months: u32) -> Option<Period> {
        let start_in = |y: i32| {
            self.fiscal_start(y)?
                .checked_add_months(Months::new(offset))
        };
        let start = match year {
            Some(y) => start_in(y)?,
            None => {
                let this = start_in(self.this_fiscal_year())?;
                if this <= self.today {
                    this
                } else {
                    start_in(self.this_fiscal_year() - 1)?
                }
            }
        };
        span(self, start, months)
    }

    /// Calendar quarter `q` (1–4) of `year`, or the latest that has begun.
    fn calendar_quarter(&self, year: Option<i32>, q: u32) -> Option<Period> {
        let month = (q - 1) * 3 + 1;
        let year = year.unwrap_or_else(|| {
            let this = self.today.year();
            if month <= self.today.month() {
                this
            } else {
                this - 1
            }
        });
        span(self, first_of(year, month)?, 3)
    }

    /// Month `m` of `year`; without a year the latest such month that has begun, and for
    /// the month under way also the same month a year before (two readings).
    fn month(&self, year: Option<i32>, m: u32) -> Option<Vec<Period>> {
        if let Some(year) = year {
            return Some(vec![span(self, first_of(year, m)?, 1)?]);
        }
        let this = self.today.year();
        if m < self.today.month() {
            return Some(vec![span(self, first_of(this, m)?, 1)?]);
        }
        if m > self.today.month() {
            return Some(vec![span(self, first_of(this - 1, m)?, 1)?]);
        }
        Some(vec![
            span(self, first_of(this, m)?, 1)?,
            span(self, first_of(this - 1, m)?, 1)?,
        ])
    }

    /// A quarter without a fiscal year named: the fiscal reading and, when the fiscal
    /// year does not start in January, the calendar one.
    fn quarter(&self, q: u32) -> Option<Vec<Period>> {
        let fiscal = self.fiscal_part(None, (q - 1) * 3, 3)?;
        let calendar = self.calendar_quarter(None, q)?;
        Some(if fiscal == calendar {
            vec![fiscal]
        } else {
            vec![fiscal, calendar]
        })
    }
}

/// Leading ASCII digits of `text` and their length in bytes.
fn number(text: &str) -> Option<(u32, usize)> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > 6 {
        return None;
    }
    Some((text[..len].parse().ok()?, len))
}

/// A four-digit year at the start of `text`.
fn year(text: &str) -> Option<(i32, usize)> {
    match number(text)? {
        (y, 4) if (1900..=2999).contains(&y) => Some((y as i32, 4)),
        _ => None,
    }
}

const ENGLISH_MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `november`, `nov`, `sept`: the month's number and the word's length.
fn english_month(text: &str) -> Option<(u32, usize)> {
    let word: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
    let found = ENGLISH_MONTHS.iter().position(|m| {
        *m == word || (word.len() >= 3 && m.starts_with(word.as_str()) && word.len() <= 4)
    })?;
    // `mar`/`may`/`jun`/`jul` are fine; `marc` is not a month.
    if word.len() == 4 && word != "sept" && ENGLISH_MONTHS[found] != word {
        return None;
    }
    Some((found as u32 + 1, word.len()))
}

/// Days counted back from today: `一昨日` is the day before yesterday.
const DAYS_AGO_WORDS: [(&str, u64); 2] = [("一昨日", 2), ("おととい", 2)];

/// Whether `text[len..]` does not continue an ASCII word (`nov` in `novel` is no month).
fn ends_word(text: &str, len: usize) -> bool {
    let last = text[..len].chars().next_back();
    let next = text[len..].chars().next();
    !(last.is_some_and(|c| c.is_ascii_alphanumeric())
        && next.is_some_and(|c| c.is_ascii_alphanumeric()))
}

/// The period phrase at the start of `text` (normalized: see `spec::names::normalize`),
/// the longest one there is.
pub fn period_at(text: &str, calendar: &Calendar) -> Option<Found> {
    let found = [
        fixed(text, calendar),
        counted(text),
        dates(text),
        months(text, calendar),
        fiscal(text, calendar),
    ]
    .into_iter()
    .flatten()
    .filter(|(readings, len)| !readings.is_empty() && ends_word(text, *len))
    .max_by_key(|(_, len)| *len)?;
    Some(Found {
        readings: found.0,
        len: found.1,
    })
}

fn fixed(text: &str, calendar: &Calendar) -> Option<(Vec<Period>, usize)> {
    let days_ago = DAYS_AGO_WORDS.iter().map(|(w, days)| {
        let day = calendar.today - Days::new(*days);
        (*w, Period::Between(day, day))
    });
    let (word, period) = PERIOD_WORDS
        .iter()
        .copied()
        .chain(days_ago)
        .filter(|(w, _)| text.starts_with(w) && ends_word(text, w.len()))
        .max_by_key(|(w, _)| w.len())?;
    Some((vec![period], word.len()))
}

/// `過去30日`, `直近4週間`, `last 30 days`, `past 3 months`.
fn counted(text: &str) -> Option<(Vec<Period>, usize)> {
    counted_at(text).map(|(period, len)| (vec![period], len))
}

/// `2026-01-01..2026-01-31`, `since 2026-04-01`, `2026-11-05`.
fn dates(text: &str) -> Option<(Vec<Period>, usize)> {
    let date = |t: &str| -> Option<(NaiveDate, usize)> {
        let len = t
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'-')
            .count();
        NaiveDate::parse_from_str(&t[..len], "%Y-%m-%d")
            .ok()
            .map(|d| (d, len))
    };
    if let Some(rest) = text.strip_prefix("since ") {
        let (d, len) = date(rest)?;
        return Some((vec![Period::Since(d)], 6 + len));
    }
    let (start, len) = date(text)?;
    if let Some(rest) = text[len..].strip_prefix("..") {
        let (end, more) = date(rest)?;
        let readings = if end < start {
            Vec::new()
        } else {
            vec![Period::Between(start, end)]
        };
        return Some((readings, len + 2 + more));
    }
    Some((vec![Period::Between(start, start)], len))
}

/// `11月`, `2026年11月`, `2026年`, `2026-11`, `november`, `nov 2026`, `2026年第3四半期`.
fn months(text: &str, calendar: &Calendar) -> Option<(Vec<Period>, usize)> {
    if let Some((y, len)) = year(text) {
        let rest = &text[len..];
        if let Some(after) = rest.strip_prefix('年') {
            let used = len + '年'.len_utf8();
            if let Some((m, more)) = number(after).filter(|(m, _)| (1..=12).contains(m))
                && after[more..].starts_with('月')
            {
                let readings = calendar.month(Some(y), m)?;
                return Some((readings, used + more + '月'.len_utf8()));
            }
            if let Some((q, more)) = japanese_quarter(after) {
                return Some((vec![calendar.calendar_quarter(Some(y), q)?], used + more));
            }
            if after.starts_with('度') {
                return None;
            }
            return Some((vec![span(calendar, first_of(y, 1)?, 12)?], used));
        }
        if let Some(after) = rest.strip_prefix('-') {
            let (m, more) = number(after).filter(|(m, l)| (1..=12).contains(m) && *l == 2)?;
            if after[more..].starts_with('-') {
                return None;
            }
            return Some((calendar.month(Some(y), m)?, len + 1 + more));
        }
        return None;
    }
    if let Some((m, len)) = number(text).filter(|(m, _)| (1..=12).contains(m)) {
        if text[len..].starts_with('月') {
            return Some((calendar.month(None, m)?, len + '月'.len_utf8()));
        }
        return None;
    }
    let (m, len) = english_month(text)?;
    let rest = &text[len..];
    if let Some((y, more)) = rest.strip_prefix(' ').and_then(year) {
        return Some((calendar.month(Some(y), m)?, len + 1 + more));
    }
    Some((calendar.month(None, m)?, len))
}

/// `第3四半期` or `3q` / `q3` after a year: the quarter's number and the length.
fn japanese_quarter(text: &str) -> Option<(u32, usize)> {
    if let Some(rest) = text.strip_prefix('第') {
        let (q, len) = number(rest).filter(|(q, _)| (1..=4).contains(q))?;
        let tail = rest[len..].strip_prefix("四半期")?;
        return Some((q, text.len() - tail.len()));
    }
    quarter_code(text)
}

/// `3q`, `q3`: a quarter's number and the length.
fn quarter_code(text: &str) -> Option<(u32, usize)> {
    if let Some(rest) = text.strip_prefix('q') {
        let (q, len) = number(rest).filter(|(q, l)| (1..=4).contains(q) && *l == 1)?;
        return Some((q, 1 + len));
    }
    let (q, len) = number(text).filter(|(q, l)| (1..=4).contains(q) && *l == 1)?;
    text[len..].starts_with('q').then_some((q, len + 1))
}

/// `2026年度`, `fy2026`, `今年度`, `last fiscal year`, each alone or followed by a half
/// (`上期`, `h1`) or a quarter (`第3四半期`, `q3`); and a half or a quarter alone: the
/// latest that has begun. A quarter alone reads as fiscal and calendar both unless the
/// year starts in January.
fn fiscal(text: &str, calendar: &Calendar) -> Option<(Vec<Period>, usize)> {
    let this = calendar.this_fiscal_year();
    let relative = [
        ("this fiscal year", this),
        ("last fiscal year", this - 1),
        ("今年度", this),
        ("本年度", this),
        ("当年度", this),
        ("前年度", this - 1),
        ("昨年度", this - 1),
    ]
    .into_iter()
    .find(|(w, _)| text.starts_with(w))
    .map(|(w, y)| (y, w.len()));
    let named = year(text)
        .and_then(|(y, len)| {
            text[len..]
                .starts_with("年度")
                .then_some((y, len + "年度".len()))
        })
        .or(relative)
        .or_else(|| {
            let rest = text.strip_prefix("fy")?;
            let rest_trim = rest.trim_start();
            let (y, len) = year(rest_trim)?;
            Some((y, 2 + (rest.len() - rest_trim.len()) + len))
        });
    let (year, len) = match named {
        Some((y, len)) => (Some(y), len),
        None => (None, 0),
    };
    let rest = &text[len..];
    let trimmed = rest.trim_start();
    let blank = rest.len() - trimmed.len();
    // `h1`/`h2` only after a fiscal year: alone they are no period.
    let codes = [("h1", 0), ("h2", 1)]
        .into_iter()
        .filter(|_| year.is_some());
    let halves = [("上半期", 0), ("下半期", 1), ("上期", 0), ("下期", 1)];
    for (word, half) in halves.into_iter().chain(codes) {
        if trimmed.starts_with(word) && ends_word(trimmed, word.len()) {
            let period = calendar.fiscal_part(year, half * 6, 6)?;
            return Some((vec![period], len + blank + word.len()));
        }
    }
    if let Some((q, more)) = japanese_quarter(trimmed).filter(|(_, l)| ends_word(trimmed, *l)) {
        let readings = match year {
            Some(y) => vec![calendar.fiscal_part(Some(y), (q - 1) * 3, 3)?],
            None => calendar.quarter(q)?,
        };
        return Some((readings, len + blank + more));
    }
    Some((vec![calendar.fiscal_part(Some(year?), 0, 12)?], len))
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;

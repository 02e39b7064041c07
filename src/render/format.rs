//! Numbers and changes written the same way on axes, labels, the KPI card and the message;
//! table cells as text, and labels shortened to a limit with "…" (the chart, the native
//! block, the buttons and the message all share these, so they live below all of them).

use crate::spec::{ChartSpec, Currency, Locale, NumberFormat};
use crate::warehouse::Cell;

/// How a report writes its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberStyle {
    pub format: NumberFormat,
    pub locale: Locale,
    pub currency: Currency,
}

impl NumberStyle {
    pub fn of(chart: &ChartSpec) -> Self {
        Self {
            format: chart.format,
            locale: chart.locale.unwrap_or_default(),
            currency: chart.currency,
        }
    }

    /// Plain integers in English: the default style.
    pub fn integer() -> Self {
        Self {
            format: NumberFormat::Integer,
            locale: Locale::En,
            currency: Currency::Jpy,
        }
    }

    fn currency_symbol(&self) -> &'static str {
        match self.currency {
            Currency::Jpy => "¥",
            Currency::Usd => "$",
        }
    }

    /// The full value: `1,234,568` (integer), `1,234,567.80` (decimal), `12.3%`, `¥98,000`,
    /// `$1,234.50`, `2h 05m` (duration, from minutes).
    pub fn value(&self, value: f64) -> String {
        match self.format {
            NumberFormat::Integer => group_thousands(value, 0),
            NumberFormat::Decimal => group_thousands(value, 2),
            NumberFormat::Percent => format!("{}%", group_thousands(value * 100.0, 1)),
            NumberFormat::Currency => {
                let decimals = if self.currency == Currency::Usd { 2 } else { 0 };
                let sign = if is_negative(value, decimals) {
                    "-"
                } else {
                    ""
                };
                format!(
                    "{sign}{}{}",
                    self.currency_symbol(),
                    group_thousands(value.abs(), decimals)
                )
            }
            NumberFormat::Duration => format_duration_minutes(value, self.locale),
        }
    }

    /// The short form for axis ticks and labels: `12.5K`, `3.4M`, `1.2B`; with locale `ja`,
    /// `1.2万`, `3.4億`.
    pub fn compact(&self, value: f64) -> String {
        match self.format {
            NumberFormat::Percent => format!("{}%", trim_decimal(value * 100.0, 1)),
            NumberFormat::Duration => format_duration_minutes(value, self.locale),
            NumberFormat::Currency => {
                let sign = if value < 0.0 { "-" } else { "" };
                format!(
                    "{sign}{}{}",
                    self.currency_symbol(),
                    compact(value.abs(), self.locale)
                )
            }
            NumberFormat::Integer | NumberFormat::Decimal => compact(value, self.locale),
        }
    }

    /// An axis tick: every tick on one axis uses the unit of the axis' largest value, so
    /// an axis reads `0, 5K, 10K`, never `0, 5000, 10K`.
    pub fn axis(&self, value: f64, axis_max: f64) -> String {
        if !matches!(
            self.format,
            NumberFormat::Integer | NumberFormat::Decimal | NumberFormat::Currency
        ) {
            return self.compact(value);
        }
        let units: &[(f64, &str)] = match self.locale {
            Locale::En => &[(1e9, "B"), (1e6, "M"), (1e3, "K")],
            Locale::Ja => &[(1e12, "兆"), (1e8, "億"), (1e4, "万")],
        };
        let reference = axis_max.abs();
        let symbol = if self.format == NumberFormat::Currency {
            self.currency_symbol()
        } else {
            ""
        };
        let sign = if value < 0.0 { "-" } else { "" };
        match units.iter().find(|(size, _)| {
            reference >= *size && (self.locale == Locale::Ja || *size > 1e3 || reference >= 1e4)
        }) {
            Some((size, suffix)) if value != 0.0 => {
                format!(
                    "{sign}{symbol}{}{suffix}",
                    trim_decimal(value.abs() / size, 1)
                )
            }
            _ => format!(
                "{sign}{symbol}{}",
                group_thousands(value.abs(), if reference < 10.0 { 1 } else { 0 })
            ),
        }
    }

    /// The change from `previous` to `current`: `▲ +1,234 (+3.2%)`. The percent is left
    /// out when the previous value is zero (or the values are percentages: then the
    /// absolute change is in percentage points).
    pub fn change(&self, current: f64, previous: f64) -> String {
        let delta = current - previous;
        let arrow = direction_arrow(delta);
        let sign = if delta > 0.0 { "+" } else { "" };
        let absolute = if self.format == NumberFormat::Percent {
            format!("{sign}{} pt", trim_decimal(delta * 100.0, 1))
        } else {
            format!("{sign}{}", self.value(delta))
        };
        if previous == 0.0 || self.format == NumberFormat::Percent {
            return format!("{arrow} {absolute}");
        }
        let percent = delta / previous.abs() * 100.0;
        let percent_sign = if percent > 0.0 { "+" } else { "" };
        format!("{arrow} {absolute} ({percent_sign}{percent:.1}%)")
    }
}

/// ▲ for up, ▼ for down, → for no change.
pub fn direction_arrow(delta: f64) -> &'static str {
    if delta > 0.0 {
        "▲"
    } else if delta < 0.0 {
        "▼"
    } else {
        "→"
    }
}

fn compact(value: f64, locale: Locale) -> String {
    let abs = value.abs();
    let units: &[(f64, &str)] = match locale {
        Locale::En => &[(1e9, "B"), (1e6, "M"), (1e3, "K")],
        Locale::Ja => &[(1e12, "兆"), (1e8, "億"), (1e4, "万")],
    };
    // Below 10,000 the plain number is short enough.
    if abs < 1e4 {
        return trim_decimal(value, if abs < 10.0 { 2 } else { 0 });
    }
    for (i, (size, suffix)) in units.iter().enumerate() {
        if abs >= *size {
            let scaled = trim_decimal(value / size, 1);
            // 999,950 rounds to "1000K": promote it to the next unit instead.
            if i > 0 && (value / size).abs() >= 999.95 {
                let (bigger, bigger_suffix) = units[i - 1];
                return format!("{}{bigger_suffix}", trim_decimal(value / bigger, 1));
            }
            return format!("{scaled}{suffix}");
        }
    }
    trim_decimal(value, 0)
}

fn trim_decimal(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}

/// Minutes as `1h 05m` (or `42m`).
/// Minutes as hours and minutes: `2h 05m`, `2時間05分`.
fn format_duration_minutes(minutes: f64, locale: Locale) -> String {
    let total = minutes.round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.abs();
    let text = if total >= 60 {
        crate::tr!(
            locale,
            "duration-hours-minutes",
            hours = group_thousands((total / 60) as f64, 0),
            minutes = format!("{:02}", total % 60)
        )
    } else {
        crate::tr!(locale, "duration-minutes", minutes = total.to_string())
    };
    format!("{sign}{text}")
}

fn is_negative(value: f64, decimals: usize) -> bool {
    value < 0.0
        && format!("{:.decimals$}", value.abs())
            .chars()
            .any(|c| c.is_ascii_digit() && c != '0')
}

fn group_thousands(value: f64, decimals: usize) -> String {
    let text = format!("{:.decimals$}", value.abs());
    let (whole, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if is_negative(value, decimals) {
        "-"
    } else {
        ""
    };
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `text` cut to at most `max` characters, the last one "…" when anything was cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A table cell as text: the `y` column in the report's style, other numbers plain.
pub fn cell_text(cell: &Cell, is_y: bool, style: NumberStyle) -> String {
    match cell {
        Cell::Null => "–".to_string(),
        _ if is_y => cell
            .as_f64()
            .map_or_else(|| cell.to_string(), |v| style.value(v)),
        Cell::Integer(_) | Cell::Decimal { .. } | Cell::Float(_) => {
            let plain = NumberStyle {
                format: if matches!(cell, Cell::Integer(_)) {
                    NumberFormat::Integer
                } else {
                    NumberFormat::Decimal
                },
                ..style
            };
            cell.as_f64()
                .map_or_else(|| cell.to_string(), |v| plain.value(v))
        }
        _ => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(format: NumberFormat, locale: Locale, currency: Currency) -> NumberStyle {
        NumberStyle {
            format,
            locale,
            currency,
        }
    }

    fn en(format: NumberFormat) -> NumberStyle {
        style(format, Locale::En, Currency::Jpy)
    }

    #[test]
    fn values_in_each_format() {
        assert_eq!(en(NumberFormat::Integer).value(1234567.4), "1,234,567");
        assert_eq!(en(NumberFormat::Integer).value(999.5), "1,000");
        assert_eq!(en(NumberFormat::Decimal).value(-1234.5), "-1,234.50");
        assert_eq!(en(NumberFormat::Percent).value(0.1234), "12.3%");
        assert_eq!(en(NumberFormat::Currency).value(98000.0), "¥98,000");
        assert_eq!(
            style(NumberFormat::Currency, Locale::En, Currency::Usd).value(-1234.5),
            "-$1,234.50"
        );
        assert_eq!(en(NumberFormat::Duration).value(125.0), "2h 05m");
        assert_eq!(en(NumberFormat::Duration).value(59.4), "59m");
        assert_eq!(en(NumberFormat::Integer).value(-0.2), "0");
    }

    #[test]
    fn compact_in_english() {
        let s = en(NumberFormat::Integer);
        assert_eq!(s.compact(12_500.0), "12.5K");
        assert_eq!(s.compact(3_400_000.0), "3.4M");
        assert_eq!(s.compact(2_000_000_000.0), "2B");
        assert_eq!(s.compact(999_960.0), "1M");
        assert_eq!(s.compact(9_999.0), "9999");
        assert_eq!(s.compact(950.0), "950");
        assert_eq!(s.compact(0.0), "0");
        assert_eq!(s.compact(-45_000.0), "-45K");
        assert_eq!(s.compact(1.5), "1.5");
    }

    #[test]
    fn compact_in_japanese_uses_man_and_oku() {
        let s = style(NumberFormat::Integer, Locale::Ja, Currency::Jpy);
        assert_eq!(s.compact(12_000.0), "1.2万");
        assert_eq!(s.compact(340_000_000.0), "3.4億");
        assert_eq!(s.compact(99_995_000.0), "1億");
        assert_eq!(s.compact(5_000.0), "5000");
        assert_eq!(s.compact(2e12), "2兆");
        let yen = style(NumberFormat::Currency, Locale::Ja, Currency::Jpy);
        assert_eq!(yen.compact(150_000_000.0), "¥1.5億");
    }

    #[test]
    fn axis_ticks_share_one_unit() {
        let s = en(NumberFormat::Integer);
        let ticks: Vec<String> = [0.0, 5_000.0, 10_000.0, 15_000.0]
            .iter()
            .map(|v| s.axis(*v, 15_000.0))
            .collect();
        assert_eq!(ticks, vec!["0", "5K", "10K", "15K"]);
        assert_eq!(s.axis(2_500.0, 3_000.0), "2,500");
        assert_eq!(s.axis(1_500_000_000.0, 3e9), "1.5B");
        let ja = style(NumberFormat::Integer, Locale::Ja, Currency::Jpy);
        assert_eq!(ja.axis(50_000.0, 150_000.0), "5万");
        assert_eq!(ja.axis(300_000_000.0, 4e8), "3億");
    }

    #[test]
    fn changes_name_direction_and_percent() {
        let s = en(NumberFormat::Integer);
        assert_eq!(s.change(110.0, 100.0), "▲ +10 (+10.0%)");
        assert_eq!(s.change(90.0, 100.0), "▼ -10 (-10.0%)");
        assert_eq!(s.change(100.0, 100.0), "→ 0 (0.0%)");
        assert_eq!(s.change(5.0, 0.0), "▲ +5");
        assert_eq!(en(NumberFormat::Percent).change(0.125, 0.1), "▲ +2.5 pt");
    }
}

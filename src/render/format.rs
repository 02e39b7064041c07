//! Numbers and changes written the same way on axes, labels and in the message.

use crate::spec::NumberFormat;

/// `1234567.8` → `1,234,568` (integer), `1,234,567.80` (decimal), `¥1,234,568`, …
pub fn format_value(value: f64, format: NumberFormat) -> String {
    match format {
        NumberFormat::Integer => group_thousands(value, 0),
        NumberFormat::Decimal => group_thousands(value, 2),
        NumberFormat::Percent => format!("{}%", group_thousands(value * 100.0, 1)),
        NumberFormat::Currency => {
            let sign = if value < 0.0 { "-" } else { "" };
            format!("{sign}¥{}", group_thousands(value.abs(), 0))
        }
        NumberFormat::Duration => format_duration_minutes(value),
    }
}

/// Short form for axis ticks: `12K`, `3.4M`, `1.2B`; percent and durations stay readable.
pub fn format_compact(value: f64, format: NumberFormat) -> String {
    match format {
        NumberFormat::Percent => format!("{}%", trim_decimal(value * 100.0, 1)),
        NumberFormat::Duration => format_duration_minutes(value),
        NumberFormat::Currency => {
            let sign = if value < 0.0 { "-" } else { "" };
            format!("{sign}¥{}", compact(value.abs()))
        }
        NumberFormat::Integer | NumberFormat::Decimal => compact(value),
    }
}

fn compact(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e9 {
        (value / 1e9, "B")
    } else if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e4 {
        (value / 1e3, "K")
    } else {
        return trim_decimal(value, if abs < 10.0 { 2 } else { 0 });
    };
    format!("{}{suffix}", trim_decimal(scaled, 1))
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
fn format_duration_minutes(minutes: f64) -> String {
    let total = minutes.round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.abs();
    if total >= 60 {
        format!(
            "{sign}{}h {:02}m",
            group_thousands((total / 60) as f64, 0),
            total % 60
        )
    } else {
        format!("{sign}{total}m")
    }
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
    let negative = value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let sign = if negative { "-" } else { "" };
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The change from `previous` to `current`, e.g. `▲ +1,234 (+3.2%)`; percent is left out
/// when the previous value is zero.
pub fn format_change(current: f64, previous: f64, format: NumberFormat) -> String {
    let delta = current - previous;
    let arrow = if delta > 0.0 {
        "▲"
    } else if delta < 0.0 {
        "▼"
    } else {
        "→"
    };
    let sign = if delta > 0.0 { "+" } else { "" };
    let absolute = format!("{sign}{}", format_value(delta, format));
    if previous == 0.0 || format == NumberFormat::Percent {
        return format!("{arrow} {absolute}");
    }
    let percent = delta / previous.abs() * 100.0;
    let percent_sign = if percent > 0.0 { "+" } else { "" };
    format!("{arrow} {absolute} ({percent_sign}{:.1}%)", percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_each_format() {
        assert_eq!(format_value(1234567.4, NumberFormat::Integer), "1,234,567");
        assert_eq!(format_value(-1234.5, NumberFormat::Decimal), "-1,234.50");
        assert_eq!(format_value(0.1234, NumberFormat::Percent), "12.3%");
        assert_eq!(format_value(98000.0, NumberFormat::Currency), "¥98,000");
        assert_eq!(format_value(125.0, NumberFormat::Duration), "2h 05m");
        assert_eq!(format_value(-0.2, NumberFormat::Integer), "0");
    }

    #[test]
    fn compact_axis_labels() {
        assert_eq!(format_compact(12_500.0, NumberFormat::Integer), "12.5K");
        assert_eq!(format_compact(3_400_000.0, NumberFormat::Integer), "3.4M");
        assert_eq!(format_compact(2_000_000_000.0, NumberFormat::Integer), "2B");
        assert_eq!(format_compact(950.0, NumberFormat::Integer), "950");
        assert_eq!(format_compact(0.0, NumberFormat::Integer), "0");
    }

    #[test]
    fn changes_name_direction_and_percent() {
        assert_eq!(
            format_change(110.0, 100.0, NumberFormat::Integer),
            "▲ +10 (+10.0%)"
        );
        assert_eq!(
            format_change(90.0, 100.0, NumberFormat::Integer),
            "▼ -10 (-10.0%)"
        );
        assert_eq!(format_change(5.0, 0.0, NumberFormat::Integer), "▲ +5");
    }
}

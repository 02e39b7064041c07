//! What a query costs, in words a person reads: bytes scanned, their estimated price, and a
//! daily warehouse budget that a query would exceed (which one, how much is left, when it
//! resets).

use chrono::{DateTime, FixedOffset};

use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale, Message};

/// Bytes in a tebibyte, the unit BigQuery's on-demand price is quoted in.
pub const BYTES_PER_TIB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;

pub use crate::settings::DEFAULT_PRICE_PER_TIB_USD;

/// `bytes` in binary units as BigQuery's console shows them, e.g. `1.5 GiB`, `820.0 MiB`,
/// `512 B` (the same in every language).
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The estimated price of scanning `bytes` at `price_per_tib_usd`, e.g. `$0.0073`.
pub fn price_text(bytes: u64, price_per_tib_usd: f64) -> String {
    let dollars = bytes as f64 / BYTES_PER_TIB * price_per_tib_usd;
    if dollars == 0.0 {
        "$0".into()
    } else if dollars < 0.01 {
        format!("${dollars:.4}")
    } else {
        format!("${dollars:.2}")
    }
}

/// `1.5 GiB (≈ $0.0092)`: bytes and their estimated price.
pub fn cost_text(bytes: u64, price_per_tib_usd: f64) -> String {
    format!(
        "{} (≈ {})",
        bytes_text(bytes),
        price_text(bytes, price_per_tib_usd)
    )
}

/// Whose daily budget a query is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetKind {
    /// A report's scheduled runs (`cost.report_bytes_per_day`).
    Report,
    /// One person's `/kpi` questions and clicks (`cost.person_bytes_per_day`).
    Person,
    /// One alert's evaluations (`cost.alert_bytes_per_day`).
    Alert,
}

impl BudgetKind {
    /// The setting that sets this budget.
    pub fn setting(self) -> &'static str {
        match self {
            BudgetKind::Report => "cost.report_bytes_per_day",
            BudgetKind::Person => "cost.person_bytes_per_day",
            BudgetKind::Alert => "cost.alert_bytes_per_day",
        }
    }

    /// The label `/metrics` and the ledger use: `run`, `answer`, `alert`.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Report => "run",
            BudgetKind::Person => "answer",
            BudgetKind::Alert => "alert",
        }
    }
}

/// A query refused before it ran: it would take a daily budget past its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "over budget: this query would scan {} and {} {} has used {} of {} a day (`{}`); it resets at {}",
    bytes_text(*.estimate_bytes),
    .kind.as_str(),
    .subject,
    bytes_text(*.spent_bytes),
    bytes_text(*.limit_bytes),
    .kind.setting(),
    .resets_at.to_rfc3339()
)]
pub struct OverBudget {
    pub kind: BudgetKind,
    /// The report, person (Slack user ID) or alert the budget is for.
    pub subject: String,
    pub limit_bytes: u64,
    /// Bytes already scanned today.
    pub spent_bytes: u64,
    /// Bytes the dry run says this query would scan.
    pub estimate_bytes: u64,
    /// The next midnight in the bot's timezone.
    pub resets_at: DateTime<FixedOffset>,
}

impl OverBudget {
    fn key(&self) -> &'static str {
        // A query larger than the whole budget will not fit tomorrow either: say so.
        let alone = self.estimate_bytes > self.limit_bytes;
        match (self.kind, alone) {
            (BudgetKind::Report, false) => "budget-over-report",
            (BudgetKind::Person, false) => "budget-over-person",
            (BudgetKind::Alert, false) => "budget-over-alert",
            (BudgetKind::Report, true) => "budget-alone-report",
            (BudgetKind::Person, true) => "budget-alone-person",
            (BudgetKind::Alert, true) => "budget-alone-alert",
        }
    }

    /// When the budget resets, in `locale`: `2026年12月6日 00:00 (UTC+09:00)`.
    fn resets(&self, locale: Locale) -> String {
        format!(
            "{} {}",
            i18n::date(locale, self.resets_at.date_naive()),
            self.resets_at.format("%H:%M (UTC%:z)")
        )
    }

    /// The refusal as a catalog message for `locale` (the reset time is worded in it).
    fn message(&self, locale: Locale) -> Message {
        Message::new(self.key())
            .with("subject", &self.subject)
            .with("estimate", bytes_text(self.estimate_bytes))
            .with("spent", bytes_text(self.spent_bytes))
            .with("limit", bytes_text(self.limit_bytes))
            .with("setting", self.kind.setting())
            .with("resets", self.resets(locale))
    }

    /// The refusal in `locale`, as plain text (logs, the terminal).
    pub fn text(&self, locale: Locale) -> String {
        self.message(locale).text(locale)
    }

    /// The refusal in `locale` as Slack mrkdwn, the report or alert name escaped.
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        Mrkdwn::formatted(self.message(locale).mrkdwn(locale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_written_in_binary_units_with_sensible_precision() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1024), "1.0 KiB");
        assert_eq!(bytes_text(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(bytes_text(820 * 1024 * 1024), "820.0 MiB");
        assert_eq!(bytes_text(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn a_tebibyte_costs_the_price_per_tebibyte() {
        assert_eq!(price_text(1 << 40, 6.25), "$6.25");
        assert_eq!(price_text(1 << 30, 6.25), "$0.0061");
        assert_eq!(price_text(0, 6.25), "$0");
        assert_eq!(cost_text(1 << 40, 5.0), "1.0 TiB (≈ $5.00)");
    }
}

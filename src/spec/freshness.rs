//! `[freshness]`: the gate a scheduled run waits at until its source is refreshed.

use super::walk::{Reader, Tbl, string_content_offset};
use crate::warehouse::reads::read_sql;

/// A freshness gate: `sql` returns the newest date in the source (one row, one column);
/// it must be at least the slot's date minus `expect_days_ago` in the report's timezone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessSpec {
    pub sql: String,
    pub expect_days_ago: u32,
    /// How long to wait between checks while the data is stale.
    pub recheck: std::time::Duration,
    /// How long after the slot to keep waiting before telling the owner.
    pub deadline: std::time::Duration,
}

const FRESHNESS_KEYS: [&str; 4] = ["sql", "expect", "recheck_minutes", "deadline_minutes"];

/// `today` → 0, `yesterday` → 1, `N days ago` → N.
fn parse_days_ago(text: &str) -> Option<u32> {
    match text.trim() {
        "today" => Some(0),
        "yesterday" => Some(1),
        other => other
            .strip_suffix("days ago")
            .or_else(|| other.strip_suffix("day ago"))?
            .trim()
            .parse()
            .ok(),
    }
}

impl Reader<'_> {
    pub(super) fn freshness(&mut self, t: &Tbl) -> Option<FreshnessSpec> {
        self.check_keys(t, &FRESHNESS_KEYS);
        let sql = self.string(t, "sql", true);
        let expect = self.string(t, "expect", true);
        let recheck = self.whole_number(
            t,
            "recheck_minutes",
            1..=1440,
            "a whole number of minutes from 1 to 1440",
        );
        let deadline = self.whole_number(
            t,
            "deadline_minutes",
            0..=1440,
            "a whole number of minutes from 0 to 1440",
        );
        let expect = expect.and_then(|e| match parse_days_ago(e.get_ref()) {
            Some(days) => Some(days),
            None => {
                let d = self.error(
                    e.span(),
                    format!("`{}` is not a freshness expectation", e.get_ref()),
                );
                *d = d.clone().with_hint(
                    "write `today`, `yesterday` or `N days ago`: the newest date the source must hold",
                );
                None
            }
        });
        let sql = sql?;
        if sql.get_ref().trim().is_empty() {
            self.error(sql.span(), "`freshness.sql` is empty");
            return None;
        }
        let reads = read_sql(sql.get_ref(), self.dialect);
        self.forbid(&reads, sql.span());
        let offset = string_content_offset(self.source, sql.span(), sql.get_ref());
        self.forbid_clock(sql.get_ref(), offset, sql.span());
        Some(FreshnessSpec {
            sql: sql.into_inner(),
            expect_days_ago: expect?,
            recheck: std::time::Duration::from_secs(60 * recheck?.unwrap_or(10)),
            deadline: std::time::Duration::from_secs(60 * deadline?.unwrap_or(180)),
        })
    }
}

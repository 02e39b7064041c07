//! The one line that says how a question was read — "アクティブユーザー · 2026年11月1日〜30日
//! · ロール別" — in the reader's language, so a misunderstanding shows at once. Also the
//! label of each button when a question is asked back.

use chrono::{NaiveDate, Weekday};

use super::{Calendar, Called};
use crate::adhoc::grammar::Query;
use crate::adhoc::metric::asked_period;
use crate::catalog::Catalog;
use crate::i18n::{self, Locale};
use crate::spec::{Compare, Period};
use crate::tr;

/// How `query` was read, when it runs over `period` on `today` (weeks from `week_start`):
/// `アクティブユーザー · 2026年11月1日〜11月30日 · ロール別`. An answer heads it "Read as:";
/// a choice's button is labelled with it alone.
pub fn read_back_line(
    catalog: &Catalog,
    query: &Query,
    called: &Called,
    (period, today, week_start): (Period, NaiveDate, Weekday),
    locale: Locale,
) -> String {
    let metric = catalog.metric(&query.name);
    let name = called.entry.clone().unwrap_or_else(|| {
        metric
            .map(|m| m.label.clone())
            .or_else(|| catalog.get(&query.name).map(|r| r.title.clone()))
            .unwrap_or_else(|| query.name.clone())
    });
    let mut parts = vec![name];
    parts.push(match period.resolve(today, week_start) {
        Ok(window) => i18n::date_range(locale, window.start, window.end),
        Err(_) => period.words(locale),
    });
    if let Some(grain) = query.grain {
        parts.push(tr!(locale, &format!("readback-{}", grain.name())));
    }
    let label_of = |dimension: &str| {
        metric
            .and_then(|m| m.dimensions.get(dimension).cloned())
            .unwrap_or_else(|| dimension.to_string())
    };
    if let Some(by) = &query.by {
        let dimension = called.by.clone().unwrap_or_else(|| label_of(by));
        parts.push(tr!(locale, "readback-by", dimension = dimension));
    }
    if let Some(compare) = query.compare.filter(|c| *c != Compare::None) {
        parts.push(tr!(locale, &format!("readback-{}", compare.name())));
    }
    for filter in &query.filters {
        parts.push(format!(
            "{} = {}",
            label_of(&filter.dimension),
            i18n::list(locale, &filter.values)
        ));
    }
    if query.private {
        parts.push(tr!(locale, "readback-private"));
    }
    parts.join(" · ")
}

/// How `query` would be read today: a choice's label when a question is asked back.
pub fn read_back(
    catalog: &Catalog,
    query: &Query,
    called: &Called,
    calendar: &Calendar,
    locale: Locale,
) -> String {
    // What the answer will run over: a metric's period widened to its grain, a report's
    // own period unless another is asked.
    let report = catalog
        .get(&query.name)
        .filter(|_| catalog.metric(&query.name).is_none());
    let period = match report {
        Some(report) => query.period.unwrap_or(report.query.period),
        None => asked_period(query),
    };
    let week_start = report.map_or(Weekday::Mon, |r| r.query.week_start);
    read_back_line(
        catalog,
        query,
        called,
        (period, calendar.today, week_start),
        locale,
    )
}

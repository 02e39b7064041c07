//! A report's run history for the people who may see it (`/kpi history`, the "History"
//! item, `kpibot history`'s scanned column), with Slack's own links to the posts.

use crate::adhoc::access::Viewer;
use crate::adhoc::reply;
use crate::deliver::error_chain;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale};
use crate::ledger::{Ledger, RunRecord, RunState};
use crate::slack::Slack;
use crate::warehouse::cost::cost_text;
use crate::{tr, tr_mrkdwn};

/// Runs `/kpi history` lists.
pub const HISTORY_RUNS: usize = 10;

/// What a run read, for its history line (`/kpi history`, `kpibot history`):
/// `1.2 GiB (≈ $0.0073)` where the warehouse bills bytes, `412 rows` where it does not
/// (DuckDB), nothing before a query ran.
pub fn scanned_text(
    bytes: Option<u64>,
    rows: Option<u64>,
    locale: Locale,
    price_per_tib_usd: f64,
) -> Option<String> {
    match (bytes, rows) {
        (Some(bytes), _) => Some(cost_text(bytes, price_per_tib_usd)),
        (None, Some(rows)) => Some(tr!(locale, "history-rows", rows = rows)),
        (None, None) => None,
    }
}

/// `/kpi history <report>` and the "History" item: a report's last runs with links, for
/// those who may see the report, as Slack mrkdwn. Links are Slack's own permalinks
/// ([`permalink`]); without Slack (the CLI), only those already stored.
pub async fn history_text(
    ledger: Option<&Ledger>,
    slack: Option<&Slack>,
    viewer: &Viewer<'_>,
    name: &str,
    locale: Locale,
    price_per_tib_usd: f64,
) -> String {
    let Some(report) = viewer.catalog.get(name).filter(|r| viewer.sees_report(r)) else {
        return reply::unknown_name(viewer, name, locale);
    };
    let Some(ledger) = ledger else {
        return tr_mrkdwn!(locale, "history-needs-ledger");
    };
    let runs = match ledger.history(Some(&report.id), HISTORY_RUNS).await {
        Ok(runs) => runs,
        Err(error) => {
            return tr_mrkdwn!(locale, "history-unavailable", error = error_chain(&error));
        }
    };
    if runs.is_empty() {
        return tr_mrkdwn!(locale, "history-none", report = report.id.as_str());
    }
    let mut lines = vec![tr_mrkdwn!(
        locale,
        "history-heading",
        title = report.title.as_str(),
        report = report.id.as_str(),
        count = runs.len()
    )];
    for run in runs {
        let state = state_key(run.state);
        let link = Mrkdwn::formatted(match permalink(ledger, slack, &run).await {
            Some(url) => tr_mrkdwn!(locale, "history-link", url = url),
            None => String::new(),
        });
        let slot = run.key.slot.with_timezone(&report.timezone);
        lines.push(tr_mrkdwn!(
            locale,
            "history-run",
            slot = format!(
                "{} {}",
                i18n::date(locale, slot.date_naive()),
                slot.format("%H:%M")
            ),
            state = Mrkdwn::formatted(tr_mrkdwn!(locale, state)),
            scanned = scanned_text(run.bytes, run.rows, locale, price_per_tib_usd)
                .map_or(String::new(), |scanned| format!(" · {scanned}")),
            link = link
        ));
    }
    lines.join("\n")
}

/// The link to a run's post: the one stored in the ledger, else Slack's permalink, asked
/// for once (`chat.getPermalink` is Tier 4, so never per post: only when a link is first
/// shown) and stored for every later listing. `None` for a run with no post, or when
/// neither the ledger nor Slack has one.
async fn permalink(ledger: &Ledger, slack: Option<&Slack>, run: &RunRecord) -> Option<String> {
    if let Some(stored) = &run.permalink {
        return Some(stored.clone());
    }
    let (Some(channel), Some(ts)) = (&run.channel, &run.ts) else {
        return None;
    };
    let url = slack?
        .permalink(channel, &slack_morphism::prelude::SlackTs(ts.clone()))
        .await?;
    if let Err(error) = ledger.set_permalink(&run.key, &url).await {
        tracing::warn!(error = %error, key = %run.key, "could not store a post's permalink; it will be asked for again");
    }
    Some(url)
}

/// The message key that names a run's state for its reader (`/kpi history`, the studio).
pub fn state_key(state: RunState) -> &'static str {
    match state {
        RunState::Delivered => "history-state-delivered",
        RunState::Failed => "history-state-failed",
        RunState::Skipped => "history-state-skipped",
        RunState::NoData => "history-state-no-data",
        RunState::Running => "history-state-running",
        RunState::Claimed => "history-state-claimed",
    }
}

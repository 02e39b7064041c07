//! `kpibot history [report|alert]`: recent runs and alert evaluations from the ledger,
//! newest first.

use std::io::Write;

use anyhow::bail;

use crate::adhoc::history::scanned_text;
use crate::app::App;
use crate::i18n::Locale;
use crate::ledger::Ledger;
use crate::warehouse::cost::{bytes_text, cost_text};

/// `kpibot history [report] [--limit N]`: recent runs from the ledger, newest first.
pub async fn history(
    app: &App,
    report: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = &app.settings.ledger.path;
    if app.settings.ledger.url.is_none() && !path.exists() {
        bail!(
            "no run ledger at {} yet: `kpibot serve` creates it (KPIBOT__LEDGER__PATH)",
            path.display()
        );
    }
    let ledger = Ledger::from_settings(&app.settings.ledger).await?;
    let runs = ledger.history(report, limit).await?;
    let rounds = ledger.alert_history(report, limit).await?;
    let price = app.settings.cost.price_per_tib_usd;
    if runs.is_empty() && rounds.is_empty() {
        writeln!(out, "no runs recorded")?;
        return Ok(());
    }
    if !rounds.is_empty() {
        alert_rounds(&rounds, price, out)?;
        if runs.is_empty() {
            return spend_today(app, &ledger, report, out).await;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{:<28} {:>3} {:<20} {:<10} {:>3} {:>7} {:<22} {:<12} {:<18} error",
        "report", "#", "slot (UTC)", "state", "try", "secs", "scanned", "channel", "ts"
    )?;
    for run in runs {
        let seconds = match (run.claimed_at, run.finished_at) {
            (Some(a), Some(b)) => format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<28} {:>3} {:<20} {:<10} {:>3} {:>7} {:<22} {:<12} {:<18} {}",
            run.key.report,
            run.key.schedule,
            run.key.slot.format("%Y-%m-%d %H:%M:%S"),
            format!("{:?}", run.state).to_lowercase(),
            run.attempts,
            seconds,
            scanned(run.bytes, run.rows, price),
            run.channel.unwrap_or_default(),
            run.ts.unwrap_or_default(),
            run.error.unwrap_or_default()
        )?;
    }
    spend_today(app, &ledger, report, out).await
}

/// A run's or round's cost, as `/kpi history` words it: bytes and price where the
/// warehouse bills bytes, else rows; `-` before a query ran.
fn scanned(bytes: Option<u64>, rows: Option<u64>, price_per_tib_usd: f64) -> String {
    scanned_text(bytes, rows, Locale::En, price_per_tib_usd).unwrap_or_else(|| "-".into())
}

/// What each payer's queries scanned today (the day the daily budgets count), for
/// `report` alone if given.
async fn spend_today(
    app: &App,
    ledger: &Ledger,
    report: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let today = chrono::Utc::now().with_timezone(&app.timezone).date_naive();
    let spend: Vec<_> = ledger
        .spend_on(today)
        .await?
        .into_iter()
        .filter(|(payer, _, _)| {
            report.is_none_or(|r| payer.split_once(':').is_some_and(|(_, s)| s == r))
        })
        .collect();
    if spend.is_empty() {
        return Ok(());
    }
    let cost = &app.settings.cost;
    writeln!(out)?;
    writeln!(out, "scanned today ({today}, {}):", app.timezone)?;
    writeln!(
        out,
        "{:<40} {:>7} {:<22} budget a day",
        "billed to", "queries", "scanned"
    )?;
    for (payer, bytes, queries) in spend {
        let budget = match payer.split_once(':').map(|(kind, _)| kind) {
            Some("run") => cost.report_bytes_per_day,
            Some("answer") => cost.person_bytes_per_day,
            Some("alert") => cost.alert_bytes_per_day,
            _ => 0,
        };
        let budget = if budget == 0 {
            "none".to_string()
        } else {
            bytes_text(budget)
        };
        writeln!(
            out,
            "{payer:<40} {queries:>7} {:<22} {budget}",
            cost_text(bytes, cost.price_per_tib_usd)
        )?;
    }
    Ok(())
}

/// Alert evaluations, newest first: when, how many instances fire, and each notice sent.
fn alert_rounds(
    rounds: &[crate::ledger::alerts::StoredRound],
    price_per_tib_usd: f64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<36} {:<20} {:>6} {:>7} {:<6} {:<22} notices",
        "alert", "evaluated (UTC)", "firing", "notices", "sent", "scanned"
    )?;
    for stored in rounds {
        let round: crate::alerts::engine::Round = serde_json::from_str(&stored.round)?;
        let notices: Vec<String> = round
            .notices
            .iter()
            .map(|n| format!("{} ({})", n.kind.as_str(), n.items.len()))
            .collect();
        writeln!(
            out,
            "{:<36} {:<20} {:>6} {:>7} {:<6} {:<22} {}",
            stored.alert,
            stored.evaluated_at.format("%Y-%m-%d %H:%M:%S"),
            stored.firing,
            stored.notices,
            if stored.done { "yes" } else { "open" },
            scanned(stored.bytes, None, price_per_tib_usd),
            notices.join(", ")
        )?;
    }
    Ok(())
}

//! `kpibot history [report|alert]`: recent runs and alert evaluations from the ledger,
//! newest first.

use std::io::Write;

use anyhow::bail;

use crate::app::App;
use crate::ledger::Ledger;

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
    if runs.is_empty() && rounds.is_empty() {
        writeln!(out, "no runs recorded")?;
        return Ok(());
    }
    if !rounds.is_empty() {
        alert_rounds(&rounds, out)?;
        if runs.is_empty() {
            return Ok(());
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{:<28} {:>3} {:<20} {:<10} {:>3} {:>7} {:<12} {:<18} error",
        "report", "#", "slot (UTC)", "state", "try", "secs", "channel", "ts"
    )?;
    for run in runs {
        let seconds = match (run.claimed_at, run.finished_at) {
            (Some(a), Some(b)) => format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<28} {:>3} {:<20} {:<10} {:>3} {:>7} {:<12} {:<18} {}",
            run.key.report,
            run.key.schedule,
            run.key.slot.format("%Y-%m-%d %H:%M:%S"),
            format!("{:?}", run.state).to_lowercase(),
            run.attempts,
            seconds,
            run.channel.unwrap_or_default(),
            run.ts.unwrap_or_default(),
            run.error.unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Alert evaluations, newest first: when, how many instances fire, and each notice sent.
fn alert_rounds(
    rounds: &[crate::ledger::alerts::StoredRound],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<36} {:<20} {:>6} {:>7} {:<6} notices",
        "alert", "evaluated (UTC)", "firing", "notices", "sent"
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
            "{:<36} {:<20} {:>6} {:>7} {:<6} {}",
            stored.alert,
            stored.evaluated_at.format("%Y-%m-%d %H:%M:%S"),
            stored.firing,
            stored.notices,
            if stored.done { "yes" } else { "open" },
            notices.join(", ")
        )?;
    }
    Ok(())
}

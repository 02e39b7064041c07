//! `kpibot history [report|alert]`: recent runs and alert evaluations from the ledger,
//! newest first.

use std::io::Write;

use anyhow::bail;

use crate::adhoc::history::scanned_text;
use crate::app::App;
use crate::i18n::Locale;
use crate::ledger::Ledger;
use crate::warehouse::cost::{bytes_text, cost_text};

/// The ledger the settings name, for a verb that only reads it: a SQLite file that is not
/// there yet is an error saying who creates it, never an empty ledger made here.
pub async fn existing_ledger(app: &App) -> anyhow::Result<Ledger> {
    let path = &app.settings.ledger.path;
    if app.settings.ledger.url.is_none() && !path.exists() {
        bail!(
            "no run ledger at {} yet: `kpibot serve` creates it (KPIBOT__LEDGER__PATH)",
            path.display()
        );
    }
    Ok(Ledger::from_settings(&app.settings.ledger).await?)
}

/// `kpibot history [report] [--limit N]`: recent runs from the ledger, newest first.
pub async fn history(
    app: &App,
    report: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ledger = existing_ledger(app).await?;
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
        // One unreadable round (written by another version, or damaged) is named and
        // skipped: the rest of the history is still worth reading.
        let round: crate::alerts::engine::Round = match serde_json::from_str(&stored.round) {
            Ok(round) => round,
            Err(error) => {
                writeln!(
                    out,
                    "(skipped: alert {} evaluated at {} — its recorded round cannot be read: {error})",
                    stored.alert,
                    stored.evaluated_at.format("%Y-%m-%d %H:%M:%S"),
                )?;
                continue;
            }
        };
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::alerts::engine::Round;
    use crate::ledger::alerts::StoredRound;

    fn stored(alert: &str, minute: u32, round: String) -> StoredRound {
        StoredRound {
            alert: alert.into(),
            evaluated_at: chrono::Utc
                .with_ymd_and_hms(2026, 12, 1, 0, minute, 0)
                .unwrap(),
            round,
            firing: 0,
            notices: 0,
            done: true,
            bytes: None,
        }
    }

    #[test]
    fn an_unreadable_alert_round_is_named_and_skipped_not_the_end_of_the_history() {
        let readable = |minute| {
            serde_json::to_string(&Round {
                evaluated_at: chrono::Utc
                    .with_ymd_and_hms(2026, 12, 1, 0, minute, 0)
                    .unwrap(),
                state: Default::default(),
                notices: Vec::new(),
            })
            .unwrap()
        };
        let rounds = [
            stored("sales_drop", 10, readable(10)),
            stored("signups_flat", 5, "{\"evaluated_at\": 12".into()),
            stored("sales_drop", 0, readable(0)),
        ];
        let mut out = Vec::new();
        alert_rounds(&rounds, 6.25, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[1].starts_with("sales_drop") && lines[1].contains("00:10:00"),
            "{out}"
        );
        assert!(
            lines[2].contains("skipped: alert signups_flat evaluated at 2026-12-01 00:05:00")
                && lines[2].contains("cannot be read"),
            "{out}"
        );
        assert!(
            lines[3].starts_with("sales_drop") && lines[3].contains("00:00:00"),
            "{out}"
        );
    }
}

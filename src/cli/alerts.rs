//! `kpibot alerts`: every alert instance's state, and `kpibot alerts backtest <alert>`:
//! an alert replayed over history against the warehouse, printed and drawn, so an author
//! sees when it would have fired and resolved before turning it on.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};

use crate::alerts::backtest::{Backtest, backtest};
use crate::alerts::engine::{Kind, Phase, Round};
use crate::alerts::message::against_text;
use crate::alerts::watch::Sources;
use crate::app::App;
use crate::render::format::NumberStyle;
use crate::spec::AlertSpec;
use crate::spec::diagnostic::did_you_mean;

/// How a value of the alert's metric is written at the terminal.
fn style_of(catalog: &crate::catalog::Catalog, alert: &AlertSpec) -> NumberStyle {
    crate::alerts::run::style_of(catalog, alert, crate::i18n::Locale::En)
}

/// The alert in one line, in English: the words its messages use.
pub fn definition_line(catalog: &crate::catalog::Catalog, alert: &AlertSpec) -> String {
    crate::alerts::message::definition(alert, &style_of(catalog, alert), crate::i18n::Locale::En)
}

/// `kpibot alerts backtest <alert> [--since DATE] [--until DATE]`.
pub async fn backtest_command(
    app: &App,
    name: &str,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<Backtest> {
    let catalog = app.load_catalog()?;
    let Some(alert) = catalog.alert(name) else {
        let hint = did_you_mean(name, catalog.alerts().map(|a| a.name.as_str()))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        bail!(
            "no alert `{name}`{hint}; `kpibot check` lists every alert under reports/ ({})",
            app.reports_dir().display()
        );
    };
    let warehouse = app.open_warehouse(now, &mut std::io::stderr()).await?;
    let (since, until) = crate::alerts::backtest::range_or_default(
        alert,
        (since, until),
        app.settings.alerts.backtest_days,
        now,
    );
    let sources = Sources {
        warehouse: warehouse.as_ref(),
        catalog: &catalog,
        timeout: app.query_timeout,
        limits: app.limits,
    };
    let max_instances =
        crate::alerts::backtest::instances_max(alert, app.settings.alerts.max_instances);
    let result = backtest(sources, alert, since, until, max_instances)
        .await
        .map_err(|e| anyhow!("alert `{name}`: {e}"))?;
    print_backtest(&catalog, alert, &result, out)?;
    Ok(result)
}

fn print_backtest(
    catalog: &crate::catalog::Catalog,
    alert: &AlertSpec,
    result: &Backtest,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let style = style_of(catalog, alert);
    writeln!(
        out,
        "backtest of `{}` ({})\n  days {} to {}, {} evaluation(s) on its cron in {}, against the warehouse as it is now",
        alert.name,
        definition_line(catalog, alert),
        result.from,
        result.to,
        result.evaluations,
        alert.timezone.name()
    )?;
    if result.transitions.is_empty() {
        writeln!(out, "  it would not have fired")?;
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "  {:<17} {:<10} {:<9} {:<14} {:>12}  against",
        "evaluated", "day", "change", "instance", "value"
    )?;
    for t in &result.transitions {
        let local = t.at.with_timezone(&alert.timezone);
        let instance = if t.instance.is_empty() {
            "-".to_string()
        } else {
            t.instance.clone()
        };
        writeln!(
            out,
            "  {:<17} {:<10} {:<9} {:<14} {:>12}  {}",
            local.format("%Y-%m-%d %H:%M"),
            t.day,
            match t.kind {
                Kind::Fired => "fired",
                _ => "resolved",
            },
            instance,
            t.value
                .map(|v| style.value(v))
                .unwrap_or_else(|| "-".into()),
            t.reference
                .as_ref()
                .map(|r| against_text(&style, crate::i18n::Locale::En, Some(r))
                    .trim()
                    .to_string())
                .unwrap_or_default()
        )?;
    }
    writeln!(out)?;
    for (instance, spans) in result.firing_days() {
        let name = if instance.is_empty() {
            alert.name.clone()
        } else {
            instance
        };
        let spans: Vec<String> = spans
            .iter()
            .map(|(from, to)| match to {
                Some(to) if to == from => from.to_string(),
                Some(to) => format!("{from} to {to}"),
                None => format!("{from} onwards (still firing)"),
            })
            .collect();
        writeln!(out, "  {name}: firing for the days {}", spans.join(", "))?;
    }
    let fired = result
        .transitions
        .iter()
        .filter(|t| t.kind == Kind::Fired)
        .count();
    writeln!(
        out,
        "  {fired} firing(s), {} resolved, {} still firing at the end",
        result.transitions.len() - fired,
        result.firing_at_end.len()
    )?;
    Ok(())
}

/// Draws the backtest into `path` (nothing when it never fired): see
/// [`crate::alerts::backtest::draw`].
pub fn draw_backtest(
    app: &App,
    alert_name: &str,
    result: &Backtest,
    path: &Path,
) -> anyhow::Result<()> {
    let catalog = app.load_catalog()?;
    let Some(alert) = catalog.alert(alert_name) else {
        return Ok(());
    };
    let limit = app.settings.alerts.digest_charts as usize;
    let drawn = crate::alerts::backtest::draw(
        &catalog,
        alert,
        result,
        limit,
        crate::i18n::Locale::En,
        false,
    )?;
    if let Some(png) = drawn {
        std::fs::write(path, png)?;
    }
    Ok(())
}

/// Writes the backtest's transitions as CSV (for a spreadsheet next to the chart).
pub fn write_csv(result: &Backtest, path: &Path) -> anyhow::Result<()> {
    let mut text = String::from("evaluated_at,day,change,instance,value\n");
    for t in &result.transitions {
        text.push_str(&format!(
            "{},{},{},\"{}\",{}\n",
            t.at.to_rfc3339(),
            t.day,
            t.kind.as_str(),
            t.instance.replace('"', "\"\""),
            t.value.map(|v| v.to_string()).unwrap_or_default()
        ));
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// `kpibot alerts`: every alert, its next evaluation, and each instance's state as the
/// last evaluation `serve` recorded left it.
pub async fn list(app: &App, now: DateTime<Utc>, out: &mut dyn Write) -> anyhow::Result<()> {
    let catalog = app.load_catalog()?;
    let ledger_exists = app.settings.ledger.url.is_some() || app.settings.ledger.path.exists();
    let rounds = if ledger_exists {
        crate::ledger::Ledger::from_settings(&app.settings.ledger)
            .await?
            .latest_alert_rounds(None)
            .await?
    } else {
        Vec::new()
    };
    if catalog.alerts().next().is_none() {
        writeln!(out, "no alerts under {}", app.reports_dir().display())?;
        return Ok(());
    }
    for alert in catalog.alerts() {
        let next = crate::scheduled::cron::next_slot(&alert.cron, alert.timezone, now)
            .map(|t| {
                t.with_timezone(&alert.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{}  → {}  next evaluation {next} ({})\n  {}",
            alert.name,
            alert.channel,
            alert.timezone.name(),
            definition_line(&catalog, alert)
        )?;
        let style = style_of(&catalog, alert);
        let Some(stored) = rounds.iter().find(|r| r.alert == alert.name) else {
            writeln!(out, "  never evaluated\n")?;
            continue;
        };
        let round: Round = serde_json::from_str(&stored.round)?;
        let local = |t: DateTime<Utc>| {
            t.with_timezone(&alert.timezone)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        };
        writeln!(
            out,
            "  last evaluated {}: {} instance(s), {} firing",
            local(stored.evaluated_at),
            round.state.instances.len(),
            stored.firing
        )?;
        // Firing first, then pending and error, then a count of the ok ones.
        let mut quiet = 0;
        for phase in [Phase::Firing, Phase::Pending, Phase::Error] {
            for (name, instance) in round
                .state
                .instances
                .iter()
                .filter(|(_, s)| s.phase == phase)
            {
                writeln!(
                    out,
                    "    {:<8} {:<16} {:>12}  since {}{}",
                    phase.as_str(),
                    if name.is_empty() { "-" } else { name },
                    instance
                        .value
                        .map(|v| style.value(v))
                        .unwrap_or_else(|| "-".into()),
                    local(instance.since),
                    instance
                        .problem
                        .as_ref()
                        .map(|p| format!("  ({p})"))
                        .unwrap_or_default()
                )?;
            }
        }
        quiet += round
            .state
            .instances
            .values()
            .filter(|s| s.phase == Phase::Ok)
            .count();
        writeln!(out, "    ok: {quiet}\n")?;
    }
    Ok(())
}

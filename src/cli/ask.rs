//! `kpibot ask "<text>"`: a `/kpi` command answered here, as Slack would answer it; a chart
//! and its message go to the output folder.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::adhoc::{self, AccessPolicy, Answer, Asker, Context};
use crate::app::App;
use crate::catalog::Catalog;
use crate::deliver::{Delivery, FolderDelivery};
use crate::ledger::Ledger;
use crate::warehouse::{Trigger, Warehouse};

/// `kpibot ask "<command text>"`: answers a `/kpi` command as Slack would, writing a chart
/// and its message to the output folder and printing text answers.
pub async fn ask(
    app: &App,
    text: &str,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let catalog = app.load_catalog()?;
    let warehouse = app.open_warehouse(now, out).await?;
    // `history <report>` reads the run ledger `serve` keeps, if there is one.
    let asks_history = text
        .split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("history") || w == "履歴");
    let ledger_exists = app.settings.ledger.url.is_some() || app.settings.ledger.path.exists();
    let ledger = if asks_history && ledger_exists {
        Some(Ledger::from_settings(&app.settings.ledger).await?)
    } else {
        None
    };
    let context = operator_context(app, &catalog, warehouse.as_ref(), ledger.as_ref(), now);
    let delivery = FolderDelivery::new(app.out_dir());
    answer_into(&context, text, &delivery, out).await?;
    Ok(true)
}

/// How the operator at the bot's own command line asks: every gate open, the settings'
/// limits, language and calendar.
pub fn operator_context<'a>(
    app: &App,
    catalog: &'a Catalog,
    warehouse: &'a dyn Warehouse,
    ledger: Option<&'a Ledger>,
    now: DateTime<Utc>,
) -> Context<'a> {
    Context {
        catalog,
        warehouse,
        trigger: Trigger::Cli,
        timezone: app.timezone,
        now,
        timeout: app.slash_timeout,
        policy: AccessPolicy::Allow,
        limits: app.limits,
        cache: None,
        ledger,
        slack: None,
        meter: None,
        fresh: false,
        locale: app.locale,
        fiscal_year_start_month: app.fiscal_year_start_month,
        follows: None,
    }
}

/// Answers `text` as the operator: a chart and its message into `delivery`'s folder, a
/// text answer printed; the line printed either way.
pub async fn answer_into(
    context: &Context<'_>,
    text: &str,
    delivery: &FolderDelivery,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // The operator at the bot's own command line: no Slack person to check.
    let asker = Asker {
        operator: true,
        ..Asker::default()
    };
    match adhoc::answer(context, text, &asker).await {
        Answer::Text(reply) => writeln!(out, "{}", reply.text(context.locale))?,
        Answer::Chart { rendered, rows, .. } => {
            let receipt = delivery.deliver(&rendered).await?;
            writeln!(
                out,
                "{}: {rows} rows → {}",
                rendered.title,
                receipt.describe(None)
            )?;
        }
    }
    Ok(())
}

//! `kpibot demo`, `preview` and `run`: one report or all of them through the pipeline, into
//! the output folder or through the configured delivery, a result line each.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::catalog::Catalog;
use crate::catalog::access::decide_post;
use crate::deliver::{Delivery, FolderDelivery};
use crate::metrics::Metrics;
use crate::pipeline::{self, RunOptions};
use crate::render::format::NumberStyle;
use crate::spec::diagnostic::did_you_mean;
use crate::spec::{Period, ReportSpec};
use crate::warehouse::{Trigger, Warehouse};

/// How one CLI run of a report is asked for.
struct RunRequest<'a> {
    period: Option<Period>,
    /// Overrides the channel of the report's first schedule.
    channel: Option<&'a str>,
    now: DateTime<Utc>,
    /// The catalog the report came from, as loaded now (its policies decide posts).
    catalog: &'a Catalog,
    /// Decide the post against the access rule (a post to a channel, not a folder preview).
    decide: bool,
}

/// Runs one report and delivers it; returns the line the CLI prints for it.
async fn run_and_deliver(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    request: RunRequest<'_>,
    app: &App,
    delivery: &dyn Delivery,
) -> anyhow::Result<String> {
    let schedule = spec.schedules.first();
    let options = RunOptions {
        period: request.period,
        channel: request
            .channel
            .map(str::to_string)
            .or_else(|| schedule.map(|s| s.channel.clone())),
        thread: schedule.is_some_and(|s| s.thread),
        limits: app.limits,
        locale: app.locale,
        ..RunOptions::new(request.now, app.query_timeout, Trigger::Cli)
    };
    // A post to a channel is decided like a scheduled one: on what the warehouse proves
    // the query reads and the policies as they are now.
    if request.decide
        && let Some(channel) = &options.channel
    {
        let reads = pipeline::reads(warehouse, spec, &options).await;
        if let Err(held) = decide_post(request.catalog, &spec.access, &reads, channel) {
            bail!(
                "not posted to {channel}: {}",
                held.text(crate::i18n::Locale::En, channel)
            );
        }
    }
    let outcome = pipeline::run(warehouse, spec, &options).await?;
    let receipt = delivery.deliver(&outcome.rendered).await?;
    let link = delivery.link(&receipt).await;
    let latest = match outcome.headline {
        Some(v) => NumberStyle::of(&spec.chart).value(v),
        None => "no data".to_string(),
    };
    Ok(format!(
        "{:<28} {:>5} rows  {:<14} {} ({})  {:>6.2} s  → {}",
        spec.id,
        outcome.table.rows.len(),
        latest,
        outcome.window,
        spec.timezone.name(),
        outcome.elapsed.as_secs_f64(),
        receipt.describe(link.as_deref())
    ))
}

fn parse_period(period: Option<&str>) -> anyhow::Result<Option<Period>> {
    period
        .map(|p| p.parse::<Period>().map_err(|e| anyhow!("--period: {e}")))
        .transpose()
}

/// The metric whose change over the demo's incident `kpibot demo` explains.
pub const DEMO_EXPLAINED_METRIC: &str = "active_users";

/// `kpibot demo`: build the demo mart if needed and run every report into the folder, then
/// explain the demo's incident. A failing report is reported and the others still run;
/// the result says how many failed.
pub async fn demo(
    app: &App,
    out_dir: &Path,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let catalog = app.load_catalog()?;
    if catalog.is_empty() {
        bail!("no report specs found in {}", app.reports_dir().display());
    }
    let warehouse = app.open_warehouse(now, out).await?;
    let delivery = FolderDelivery::new(out_dir);
    let mut failed = 0;
    for spec in catalog.reports() {
        let request = RunRequest {
            period: None,
            channel: None,
            now,
            catalog: &catalog,
            decide: false,
        };
        match run_and_deliver(warehouse.as_ref(), spec, request, app, &delivery).await {
            Ok(line) => writeln!(out, "{line}")?,
            Err(e) => {
                failed += 1;
                writeln!(out, "✗ {:<26} {e:#}", spec.id)?;
            }
        }
    }
    // The demo's incident, explained: why active users fell that week.
    if catalog
        .metric(DEMO_EXPLAINED_METRIC)
        .is_some_and(crate::spec::explain_sql::explainable)
    {
        let through = crate::pipeline::today_in(app.timezone, now) - chrono::Days::new(1);
        let (first, last) = crate::warehouse::demo::incident_days(through);
        let text = format!("why {DEMO_EXPLAINED_METRIC} {first}..{last}");
        let context = super::ask::operator_context(app, &catalog, warehouse.as_ref(), None, now);
        super::ask::answer_into(&context, &text, &delivery, out).await?;
    }
    writeln!(
        out,
        "{} report(s) written to {}{}",
        catalog.len() - failed,
        out_dir.display(),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    )?;
    Ok(failed)
}

/// Loads the catalog, runs one report and delivers it; prints the result line.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    app: &App,
    report: &str,
    period: Option<Period>,
    channel: Option<&str>,
    now: DateTime<Utc>,
    delivery: &dyn Delivery,
    verb: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let catalog = app.load_catalog()?;
    let spec = find_report(&catalog, report)?;
    let request = RunRequest {
        period,
        channel,
        now,
        catalog: &catalog,
        decide: verb == "run",
    };
    let warehouse = app.open_warehouse(request.now, out).await?;
    let line = run_and_deliver(warehouse.as_ref(), spec, request, app, delivery)
        .await
        .with_context(|| format!("{verb} of `{report}` failed"))?;
    writeln!(out, "{line}")?;
    Ok(())
}

/// `kpibot preview <report>`: run one report into a folder; post nothing.
pub async fn preview(
    app: &App,
    report: &str,
    period: Option<&str>,
    out_dir: &Path,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let delivery = FolderDelivery::new(out_dir);
    let period = parse_period(period)?;
    run_one(app, report, period, None, now, &delivery, "preview", out).await
}

/// `kpibot run <report>`: run one report now and deliver it through the configured
/// delivery (Slack with a token, else the folder). Errors say what to fix.
pub async fn run(
    app: &App,
    report: &str,
    channel: Option<&str>,
    period: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let delivery = app.open_delivery(Arc::new(Metrics::new()))?;
    run_one(
        app,
        report,
        period,
        channel,
        now,
        delivery.as_ref(),
        "run",
        out,
    )
    .await
}

/// The report named `name`, or an error that lists the valid names.
pub fn find_report<'a>(catalog: &'a Catalog, name: &str) -> anyhow::Result<&'a ReportSpec> {
    if let Some(spec) = catalog
        .get(name)
        .or_else(|| catalog.reports().find(|r| r.id.eq_ignore_ascii_case(name)))
    {
        return Ok(spec);
    }
    let suggestion = did_you_mean(name, catalog.ids())
        .map(|s| format!("{s} "))
        .unwrap_or_default();
    let valid: Vec<&str> = catalog.ids().collect();
    bail!(
        "no report named `{name}`. {suggestion}Reports: {}",
        valid.join(", ")
    )
}

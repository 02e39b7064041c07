//! The CLI's verbs (`demo`, `check`, `preview`, `run`, `config`) as functions over settings, so
//! tests run exactly what a user runs.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Days, Utc};

use crate::deliver::{Delivery, FolderDelivery, SlackDelivery, SlackOptions};
use crate::demo::{MartStatus, ensure_demo_mart};
use crate::metrics::Metrics;
use crate::pipeline::{self, RunOptions};
use crate::render::format::NumberStyle;
use crate::settings::{DeliveryKind, Settings, WarehouseKind};
use crate::spec::diagnostic::{Diagnostic, did_you_mean};
use crate::spec::{self, Catalog, LoadedFile, Period, ReportSpec, SpecDefaults};
use crate::warehouse::bigquery::BigQueryWarehouse;
use crate::warehouse::duckdb::DuckDbWarehouse;
use crate::warehouse::{QueryJob, Trigger, Warehouse, WarehouseError};

/// Opens the configured warehouse; for the embedded demo, builds or refreshes the demo
/// mart first so it holds data through yesterday in the bot's timezone.
pub async fn open_warehouse(
    settings: &Settings,
    now: DateTime<Utc>,
    log: &mut dyn Write,
) -> anyhow::Result<Box<dyn Warehouse>> {
    match settings.warehouse.kind {
        WarehouseKind::Duckdb => Ok(Box::new(open_duckdb(settings, now, log)?)),
        WarehouseKind::Bigquery => {
            let bigquery = &settings.warehouse.bigquery;
            // Checked here so no job is ever sent to an empty project.
            if bigquery.project.trim().is_empty() {
                bail!(
                    "KPIBOT__WAREHOUSE__BIGQUERY__PROJECT is not set: name the Google Cloud project BigQuery jobs run in"
                );
            }
            Ok(Box::new(BigQueryWarehouse::open(bigquery).await?))
        }
    }
}

/// The embedded DuckDB warehouse, with the demo mart built or refreshed when it is in use.
pub fn open_duckdb(
    settings: &Settings,
    now: DateTime<Utc>,
    log: &mut dyn Write,
) -> anyhow::Result<DuckDbWarehouse> {
    let duck = &settings.warehouse.duckdb;
    if duck.demo_mart {
        let yesterday = pipeline::today_in(settings.timezone()?, now) - Days::new(1);
        // Check through the connection the bot keeps, not a second instance.
        if let Ok(current) = DuckDbWarehouse::open(&duck.path)
            && current.demo_data_through() >= Some(yesterday)
        {
            return Ok(current);
        }
        if ensure_demo_mart(&duck.path, yesterday)? == MartStatus::Built {
            writeln!(
                log,
                "built the demo mart {} (data through {yesterday})",
                duck.path.display()
            )?;
        }
    }
    Ok(DuckDbWarehouse::open(&duck.path)?)
}

fn spec_defaults(settings: &Settings) -> anyhow::Result<SpecDefaults> {
    Ok(SpecDefaults {
        timezone: settings.timezone()?,
    })
}

/// Loads every spec under `dir`; a folder with invalid specs is an error that shows them.
pub fn load_catalog(dir: &Path, settings: &Settings) -> anyhow::Result<Catalog> {
    let files = spec::load_dir(dir, &spec_defaults(settings)?)?;
    let broken: Vec<&LoadedFile> = files.iter().filter(|f| !f.diagnostics.is_empty()).collect();
    if !broken.is_empty() {
        let rendered: Vec<String> = broken.iter().map(|f| f.render_diagnostics()).collect();
        bail!(
            "{} report spec(s) are invalid; fix them or run `kpibot check {}`:\n\n{}",
            broken.len(),
            dir.display(),
            rendered.join("\n")
        );
    }
    Ok(Catalog::from_loaded(&files))
}

/// What `check` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSummary {
    pub files: usize,
    pub invalid: usize,
    pub problems: usize,
}

/// Validates every spec under `dir`, printing ✓/✗ per file and every problem at once.
/// With a warehouse, also prepares each query and checks the chart's columns exist.
pub async fn check(
    dir: &Path,
    settings: &Settings,
    warehouse: Option<&dyn Warehouse>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<CheckSummary> {
    let defaults = spec_defaults(settings)?;
    let mut files = spec::load_dir(dir, &defaults)?;
    // What each file's dry runs would scan, printed under its ✓ line.
    let mut scans: std::collections::HashMap<std::path::PathBuf, Vec<String>> = Default::default();
    if let Some(warehouse) = warehouse {
        let today = pipeline::today_in(defaults.timezone, now);
        for file in files.iter_mut() {
            let mut problems = Vec::new();
            let mut notes = Vec::new();
            if let Some(spec) = &file.spec {
                let checked = dry_run(warehouse, spec, settings, now).await;
                problems.extend(checked.problems);
                notes.extend(checked.bytes.map(|bytes| {
                    scan_note(
                        "the query",
                        bytes,
                        spec_limit(settings, spec.query.maximum_bytes_billed),
                    )
                }));
            }
            for metric in &file.metrics {
                let checked = dry_run_metric(warehouse, metric, settings, today).await;
                problems.extend(checked.problems);
                notes.extend(checked.bytes.map(|bytes| {
                    scan_note(
                        &format!("metric `{}`", metric.name),
                        bytes,
                        spec_limit(settings, None),
                    )
                }));
            }
            scans.insert(file.path.clone(), notes);
            if !problems.is_empty() {
                file.diagnostics.extend(problems);
                file.spec = None;
                file.metrics.clear();
            }
        }
    }
    let mut summary = CheckSummary {
        files: files.len(),
        invalid: 0,
        problems: 0,
    };
    for file in &files {
        if file.spec.is_none() && file.is_valid() {
            let names: Vec<&str> = file.metrics.iter().map(|m| m.name.as_str()).collect();
            writeln!(
                out,
                "✓ {}  ({} metric(s): {})",
                file.path.display(),
                names.len(),
                names.join(", ")
            )?;
            for note in scans.get(&file.path).into_iter().flatten() {
                writeln!(out, "    {note}")?;
            }
            continue;
        }
        match &file.spec {
            Some(spec) => {
                writeln!(out, "✓ {}  ({})", file.path.display(), spec.title)?;
                for note in scans.get(&file.path).into_iter().flatten() {
                    writeln!(out, "    {note}")?;
                }
                for schedule in &spec.schedules {
                    if let Some(slot) =
                        crate::schedule::next_slot(&schedule.cron, schedule.timezone, now)
                    {
                        let local = slot.with_timezone(&schedule.timezone);
                        writeln!(
                            out,
                            "    next post {} ({}) → {}",
                            local.format("%Y-%m-%d %H:%M %a"),
                            schedule.timezone.name(),
                            schedule.channel
                        )?;
                    }
                }
            }
            None => {
                summary.invalid += 1;
                summary.problems += file.diagnostics.len();
                writeln!(out, "✗ {}", file.path.display())?;
                writeln!(out, "{}", file.render_diagnostics())?;
            }
        }
    }
    let checked = if warehouse.is_some() {
        "checked with dry runs"
    } else {
        "checked"
    };
    if summary.files == 0 {
        writeln!(out, "no report specs (*.toml) found in {}", dir.display())?;
    } else if summary.invalid == 0 {
        writeln!(out, "{} report(s) {checked}: all valid", summary.files)?;
    } else {
        writeln!(
            out,
            "{} report(s) {checked}: {} invalid, {} problem(s)",
            summary.files, summary.invalid, summary.problems
        )?;
    }
    Ok(summary)
}

/// What the dry runs of one report or metric found.
struct DryRun {
    problems: Vec<Diagnostic>,
    /// Bytes the query would scan, where the warehouse says (BigQuery).
    bytes: Option<u64>,
}

impl DryRun {
    fn problem(diagnostic: Diagnostic) -> Self {
        Self {
            problems: vec![diagnostic],
            bytes: None,
        }
    }
}

/// The bytes-billed cap a query runs under: the spec's, else the BigQuery setting.
fn spec_limit(settings: &Settings, report_cap: Option<u64>) -> u64 {
    report_cap.unwrap_or(settings.warehouse.bigquery.maximum_bytes_billed)
}

fn scan_note(what: &str, bytes: u64, limit: u64) -> String {
    format!(
        "{what} would scan {} (limit {})",
        human_bytes(bytes),
        human_bytes(limit)
    )
}

/// Bytes in binary units, as BigQuery's console shows them: `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The problem when a dry run would scan more than the query may bill.
fn over_limit(bytes: u64, limit: u64) -> Option<String> {
    (bytes > limit).then(|| {
        format!(
            "the query would scan {} but may bill at most {}; BigQuery would refuse to run it",
            human_bytes(bytes),
            human_bytes(limit)
        )
    })
}

/// Prepares a metric's generated query, split by each of its dimensions in turn, so a
/// misspelled table, column or dimension is caught before anyone asks.
async fn dry_run_metric(
    warehouse: &dyn Warehouse,
    metric: &crate::spec::MetricSpec,
    settings: &Settings,
    today: chrono::NaiveDate,
) -> DryRun {
    let mut params = pipeline::params_for(
        spec::Window {
            start: today,
            end: today,
        },
        today,
    );
    let mut splits: Vec<Option<&str>> = vec![None];
    splits.extend(metric.dimensions.keys().map(|d| Some(d.as_str())));
    let mut most: Option<u64> = None;
    for by in splits {
        let (sql, extra) = crate::ask::sql::metric_sql(
            warehouse.dialect(),
            metric,
            crate::ask::grammar::Grain::Day,
            by,
            &[],
        );
        params.extend(extra);
        let job = QueryJob::new(settings.query_timeout()).for_report(&metric.name, Trigger::Cli);
        let what = by.map_or(String::new(), |d| format!(" split by `{d}`"));
        let problem = |message: String| {
            DryRun::problem(
                Diagnostic::new(
                    &metric.path,
                    metric.table_span.clone(),
                    format!("metric `{}`{what}: {message}", metric.name),
                )
                    .with_hint(format!(
                        "check `table`, `time_column`, the measure's columns and the dimensions; checked with {}",
                        warehouse.describe()
                    )),
            )
        };
        match warehouse.dry_run(&sql, &params, &job).await {
            Ok(estimate) => {
                if let Some(bytes) = estimate.bytes_processed {
                    if let Some(message) = over_limit(bytes, spec_limit(settings, None)) {
                        return problem(message);
                    }
                    most = Some(most.map_or(bytes, |m| m.max(bytes)));
                }
            }
            Err(error) => return problem(format!("the warehouse rejected its query: {error}")),
        }
    }
    DryRun {
        problems: Vec::new(),
        bytes: most,
    }
}

/// Prepares the report's query for its default window, checks the chart's columns and,
/// where the warehouse says, that the scan fits the report's bytes-billed cap.
async fn dry_run(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    settings: &Settings,
    now: DateTime<Utc>,
) -> DryRun {
    let at_sql = |message: String| {
        DryRun::problem(Diagnostic::new(
            &spec.path,
            spec.query.sql_span.clone(),
            message,
        ))
    };
    let window = match pipeline::window_for(spec, None, now) {
        Ok(window) => window,
        Err(e) => return at_sql(e.to_string()),
    };
    let mut params = spec.query.params.clone();
    params.extend(pipeline::params_for(
        window,
        pipeline::today_in(spec.timezone, now),
    ));
    let job = pipeline::job_for(spec, settings.query_timeout(), Trigger::Cli);
    let estimate = match warehouse.dry_run(&spec.query.sql, &params, &job).await {
        Ok(estimate) => estimate,
        Err(WarehouseError::Query {
            message,
            line,
            column,
        }) => {
            let at = line
                .and_then(|l| spec.sql_position(l, column))
                .unwrap_or(spec.query.sql_span.start);
            let end = spec.source[at..]
                .find('\n')
                .map_or(spec.source.len(), |n| at + n)
                .max(at + 1)
                .min(spec.source.len());
            return DryRun::problem(
                Diagnostic::new(
                    &spec.path,
                    at..end,
                    format!("the warehouse rejected the query: {message}"),
                )
                .with_hint(format!("checked with {}", warehouse.describe())),
            );
        }
        Err(other) => return at_sql(other.to_string()),
    };
    if let Some(bytes) = estimate.bytes_processed {
        let limit = spec_limit(settings, spec.query.maximum_bytes_billed);
        if let Some(message) = over_limit(bytes, limit) {
            return DryRun::problem(
                Diagnostic::new(&spec.path, spec.query.sql_span.clone(), message).with_hint(
                    "filter on the table's partition column, or raise `maximum_bytes_billed` under [query]",
                ),
            );
        }
    }
    let names: Vec<&str> = estimate.columns.iter().map(|c| c.name.as_str()).collect();
    let chart = &spec.chart;
    let mut wanted = vec![("x", &chart.x), ("y", &chart.y)];
    if let Some(series) = &chart.series {
        wanted.push(("series", series));
    }
    let problems = wanted
        .into_iter()
        .filter(|(_, column)| !names.contains(&column.name.as_str()))
        .map(|(key, column)| {
            let label = did_you_mean(&column.name, names.iter().copied())
                .unwrap_or_else(|| format!("the query returns: {}", names.join(", ")));
            Diagnostic::new(
                &spec.path,
                column.span.clone(),
                format!(
                    "`chart.{key}` names column `{}`, which the query does not return",
                    column.name
                ),
            )
            .with_label(label)
        })
        .collect();
    DryRun {
        problems,
        bytes: estimate.bytes_processed,
    }
}

/// The configured delivery: Slack when it is chosen (or a bot token is set), else the
/// folder.
pub fn open_delivery(
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<dyn Delivery>> {
    Ok(match open_slack(settings, metrics)? {
        Some(slack) => slack,
        None => Arc::new(FolderDelivery::new(settings.delivery.folder.clone())),
    })
}

/// The Slack delivery itself when Slack is the delivery (slash commands need more of it
/// than the `Delivery` seam offers), `None` for the folder.
pub fn open_slack(
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Arc<SlackDelivery>>> {
    Ok(match settings.effective_delivery() {
        DeliveryKind::Slack => Some(Arc::new(SlackDelivery::new(
            SlackOptions::from_settings(settings)?,
            metrics,
        )?)),
        DeliveryKind::Folder | DeliveryKind::Auto => None,
    })
}

/// How one CLI run of a report is asked for.
struct RunRequest<'a> {
    period: Option<Period>,
    /// Overrides the channel of the report's first schedule.
    channel: Option<&'a str>,
    now: DateTime<Utc>,
}

/// Runs one report and delivers it; returns the line the CLI prints for it.
async fn run_and_deliver(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    request: RunRequest<'_>,
    settings: &Settings,
    delivery: &dyn Delivery,
) -> anyhow::Result<String> {
    let schedule = spec.schedules.first();
    let options = RunOptions {
        period: request.period,
        now: request.now,
        channel: request
            .channel
            .map(str::to_string)
            .or_else(|| schedule.map(|s| s.channel.clone())),
        slot: None,
        thread: schedule.is_some_and(|s| s.thread),
        default_timeout: settings.query_timeout(),
        params: Default::default(),
        trigger: Trigger::Cli,
    };
    let outcome = pipeline::run(warehouse, spec, &options).await?;
    let receipt = delivery.deliver(&outcome.rendered).await?;
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
        receipt.describe()
    ))
}

fn parse_period(period: Option<&str>) -> anyhow::Result<Option<Period>> {
    period
        .map(|p| p.parse::<Period>().map_err(|e| anyhow!("--period: {e}")))
        .transpose()
}

/// `kpibot demo`: build the demo mart if needed and run every report into the folder.
/// A failing report is reported and the others still run; the result says how many failed.
pub async fn demo(
    settings: &Settings,
    out_dir: &Path,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let catalog = load_catalog(&settings.reports.dir, settings)?;
    if catalog.is_empty() {
        bail!(
            "no report specs found in {}",
            settings.reports.dir.display()
        );
    }
    let warehouse = open_warehouse(settings, now, out).await?;
    let delivery = FolderDelivery::new(out_dir);
    let mut failed = 0;
    for spec in catalog.reports() {
        let request = RunRequest {
            period: None,
            channel: None,
            now,
        };
        match run_and_deliver(warehouse.as_ref(), spec, request, settings, &delivery).await {
            Ok(line) => writeln!(out, "{line}")?,
            Err(e) => {
                failed += 1;
                writeln!(out, "✗ {:<26} {e:#}", spec.id)?;
            }
        }
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
async fn run_one(
    settings: &Settings,
    report: &str,
    request: RunRequest<'_>,
    delivery: &dyn Delivery,
    verb: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let catalog = load_catalog(&settings.reports.dir, settings)?;
    let spec = find_report(&catalog, report)?;
    let warehouse = open_warehouse(settings, request.now, out).await?;
    let line = run_and_deliver(warehouse.as_ref(), spec, request, settings, delivery)
        .await
        .with_context(|| format!("{verb} of `{report}` failed"))?;
    writeln!(out, "{line}")?;
    Ok(())
}

/// `kpibot preview <report>`: run one report into a folder; post nothing.
pub async fn preview(
    settings: &Settings,
    report: &str,
    period: Option<&str>,
    out_dir: &Path,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let request = RunRequest {
        period: parse_period(period)?,
        channel: None,
        now,
    };
    let delivery = FolderDelivery::new(out_dir);
    run_one(settings, report, request, &delivery, "preview", out).await
}

/// `kpibot run <report>`: run one report now and deliver it through the configured
/// delivery (Slack with a token, else the folder). Errors say what to fix.
pub async fn run(
    settings: &Settings,
    report: &str,
    channel: Option<&str>,
    period: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let request = RunRequest {
        period: parse_period(period)?,
        channel,
        now,
    };
    let delivery = open_delivery(settings, Arc::new(Metrics::new()))?;
    run_one(settings, report, request, delivery.as_ref(), "run", out).await
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

/// `kpibot schedule`: every report's next `count` slots, in each schedule's timezone.
pub fn schedule(
    settings: &Settings,
    count: usize,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let catalog = load_catalog(&settings.reports.dir, settings)?;
    for spec in catalog.reports() {
        if spec.schedules.is_empty() {
            writeln!(out, "{}: no schedule (ad hoc only)", spec.id)?;
            continue;
        }
        for schedule in &spec.schedules {
            writeln!(
                out,
                "{}: `{}` ({}) → {}",
                spec.id,
                schedule.cron,
                schedule.timezone.name(),
                schedule.channel
            )?;
            for slot in
                crate::schedule::slots_after(&schedule.cron, schedule.timezone, now).take(count)
            {
                writeln!(
                    out,
                    "    {}",
                    slot.with_timezone(&schedule.timezone)
                        .format("%Y-%m-%d %H:%M:%S %a %Z")
                )?;
            }
        }
    }
    Ok(())
}

/// `kpibot history [report] [--limit N]`: recent runs from the ledger, newest first.
pub fn history(
    settings: &Settings,
    report: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = &settings.ledger.path;
    if !path.exists() {
        bail!(
            "no run ledger at {} yet: `kpibot serve` creates it (KPIBOT__LEDGER__PATH)",
            path.display()
        );
    }
    let ledger = crate::ledger::Ledger::open(path)?;
    let runs = ledger.history(report, limit)?;
    if runs.is_empty() {
        writeln!(out, "no runs recorded")?;
        return Ok(());
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

/// `kpibot ask "<command text>"`: answers a `/kpi` command as Slack would, writing a chart
/// and its message to the output folder and printing text answers.
pub async fn ask(
    settings: &Settings,
    text: &str,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let catalog = load_catalog(&settings.reports.dir, settings)?;
    let warehouse = open_warehouse(settings, now, out).await?;
    let context = crate::ask::Context {
        catalog: &catalog,
        warehouse: warehouse.as_ref(),
        trigger: Trigger::Cli,
        timezone: settings.timezone()?,
        now,
        timeout: std::time::Duration::from_secs(settings.slash.query_timeout_seconds),
        policy: crate::ask::DefaultPolicy::Allow,
        cache: None,
    };
    let asker = crate::ask::Asker::default();
    match crate::ask::answer(&context, text, &asker).await {
        crate::ask::Answer::Text(reply) => {
            writeln!(out, "{reply}")?;
            Ok(true)
        }
        crate::ask::Answer::Chart { rendered, rows, .. } => {
            let delivery = FolderDelivery::new(&settings.delivery.folder);
            let receipt = delivery.deliver(&rendered).await?;
            writeln!(
                out,
                "{}: {rows} rows → {}",
                rendered.title,
                receipt.describe()
            )?;
            Ok(true)
        }
    }
}

/// `kpibot config --check`: every finding, then whether `serve` would start.
pub fn config_check(settings: &Settings, out: &mut dyn Write) -> anyhow::Result<bool> {
    let findings = crate::preflight::check(settings);
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    let errors = findings
        .iter()
        .filter(|f| f.level == crate::preflight::Level::Error)
        .count();
    if errors == 0 {
        writeln!(
            out,
            "settings OK for `kpibot serve` (delivery: {:?}, slash commands: {})",
            settings.effective_delivery(),
            match (&settings.slack.signing_secret, settings.slash.transport) {
                (_, crate::settings::SlashTransport::Socket) => "Socket Mode",
                (Some(_), _) => "HTTP",
                (None, _) => "off",
            }
        )?;
    } else {
        writeln!(
            out,
            "{errors} error(s): `kpibot serve` would refuse to start"
        )?;
    }
    Ok(errors == 0)
}

/// `kpibot health`: asks a running `serve` for `/healthz` (for container health checks,
/// where there is no curl).
pub async fn health(settings: &Settings) -> anyhow::Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut address: std::net::SocketAddr = settings
        .http
        .listen
        .parse()
        .with_context(|| format!("KPIBOT__HTTP__LISTEN `{}`", settings.http.listen))?;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(
                format!(
                    "GET {} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
                    crate::serve::HEALTH_PATH
                )
                .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    })
    .await
    .with_context(|| format!("no answer from {address} within 5 s"))?
    .with_context(|| format!("cannot reach kpibot at {address}"))?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

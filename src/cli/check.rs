//! `kpibot check [dir] [--dry-run]`: every spec validated with every problem at once, a
//! ✓/✗ line per file and each schedule's next post; with `--dry-run`, every query and
//! metric prepared on the warehouse (columns checked, bytes a scan would bill).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::adhoc::access::base_columns;
use crate::adhoc::grammar::Grain;
use crate::adhoc::sql::metric_sql;
use crate::app::App;
use crate::catalog::Catalog;
use crate::pipeline;
use crate::scheduled::cron::next_slot;
use crate::spec::diagnostic::{Diagnostic, did_you_mean};
use crate::spec::{self, MetricSpec, ReportSpec, Window};
use crate::warehouse::cost::{bytes_text, cost_text};
use crate::warehouse::{QueryJob, Trigger, Warehouse, WarehouseError};

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
    app: &App,
    warehouse: Option<&dyn Warehouse>,
    planner: Option<&dyn Warehouse>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<CheckSummary> {
    let defaults = app.spec_defaults();
    let mut files = spec::load_dir(dir, &defaults)?;
    prove_reads(&mut files, planner, app, now).await;
    // What each file's dry runs would scan, printed under its ✓ line.
    let mut scans: HashMap<PathBuf, Vec<String>> = Default::default();
    if let Some(warehouse) = warehouse {
        let today = pipeline::today_in(defaults.timezone, now);
        for file in files.iter_mut() {
            let mut problems = Vec::new();
            let mut notes = Vec::new();
            if let Some(spec) = &file.spec {
                let checked = dry_run(warehouse, spec, app, now).await;
                problems.extend(checked.problems);
                notes.extend(checked.bytes.map(|bytes| {
                    scan_note(
                        "the query",
                        bytes,
                        spec_limit(app, spec.query.maximum_bytes_billed),
                    )
                }));
                notes.extend(
                    checked
                        .bytes
                        .map(|bytes| monthly_note(spec, bytes, app, now)),
                );
            }
            // An alert's own SQL (`rows`, `stale`); metric alerts ride on the metric's dry run.
            for alert in &file.alerts {
                let sql = match &alert.condition {
                    crate::spec::alert::Condition::Rows { sql } => sql,
                    crate::spec::alert::Condition::Stale(freshness) => &freshness.sql,
                    _ => continue,
                };
                let params = crate::warehouse::Params::from([(
                    "run_date".to_string(),
                    crate::warehouse::ParamValue::Date(today),
                )]);
                let job = QueryJob::new(app.query_timeout).for_report(&alert.name, Trigger::Cli);
                if let Err(error) = warehouse.dry_run(sql, &params, &job).await {
                    problems.push(
                        Diagnostic::new(
                            &file.path,
                            alert.span.clone(),
                            format!(
                                "alert `{}`: the warehouse rejected its query: {error}",
                                alert.name
                            ),
                        )
                        .with_hint(format!("checked with {}", warehouse.describe())),
                    );
                }
            }
            for metric in &file.metrics {
                let checked = dry_run_metric(warehouse, metric, app, today).await;
                problems.extend(checked.problems);
                notes.extend(checked.bytes.map(|bytes| {
                    scan_note(
                        &format!("metric `{}`", metric.name),
                        bytes,
                        spec_limit(app, None),
                    )
                }));
            }
            let timeout = app.query_timeout;
            let targets =
                super::check_targets::dry_run_targets(warehouse, &file.targets, timeout, today);
            problems.extend(targets.await);
            scans.insert(file.path.clone(), notes);
            if !problems.is_empty() {
                file.diagnostics.extend(problems);
                file.spec = None;
                file.metrics.clear();
                file.alerts.clear();
                file.targets.clear();
            }
        }
    }
    let mut summary = CheckSummary {
        files: files.len(),
        invalid: 0,
        problems: 0,
    };
    // The valid specs, for writing alerts' thresholds in their metric's number format.
    let catalog = crate::catalog::Catalog::from_loaded(&files);
    for file in &files {
        if file.spec.is_none() && file.is_valid() {
            let names: Vec<&str> = file.metrics.iter().map(|m| m.name.as_str()).collect();
            let policies: Vec<&str> = file.policies.iter().map(|p| p.name.as_str()).collect();
            let alerts: Vec<&str> = file.alerts.iter().map(|a| a.name.as_str()).collect();
            let mut parts = Vec::new();
            if !names.is_empty() {
                parts.push(format!("{} metric(s): {}", names.len(), names.join(", ")));
            }
            if !policies.is_empty() {
                parts.push(format!(
                    "{} polic(ies): {}",
                    policies.len(),
                    policies.join(", ")
                ));
            }
            if !alerts.is_empty() {
                parts.push(format!("{} alert(s): {}", alerts.len(), alerts.join(", ")));
            }
            if !file.targets.is_empty() {
                let targets: Vec<&str> = file.targets.iter().map(|t| t.metric.as_str()).collect();
                parts.push(format!(
                    "{} target(s): {}",
                    targets.len(),
                    targets.join(", ")
                ));
            }
            writeln!(out, "✓ {}  ({})", file.path.display(), parts.join("; "))?;
            for note in scans.get(&file.path).into_iter().flatten() {
                writeln!(out, "    {note}")?;
            }
            for skipped in &file.unsupported {
                let (line, column) = skipped.line_col(&file.source);
                writeln!(
                    out,
                    "    not available ({}:{line}:{column}): {}",
                    file.path.display(),
                    skipped.message
                )?;
            }
            for alert in &file.alerts {
                if let Some(slot) = next_slot(&alert.cron, alert.timezone, now) {
                    let definition = super::alerts::definition_line(&catalog, alert);
                    let local = slot.with_timezone(&alert.timezone);
                    writeln!(
                        out,
                        "    alert {}: {} — next evaluation {} ({}) → {}",
                        alert.name,
                        definition,
                        local.format("%Y-%m-%d %H:%M %a"),
                        alert.timezone.name(),
                        alert.channel
                    )?;
                }
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
                    if let Some(slot) = next_slot(&schedule.cron, schedule.timezone, now) {
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
    print_coverage(&Catalog::from_loaded(&files), out)?;
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

/// Per policy, the catalog entries it covers: every report whose SQL reads its data, and
/// every metric on its table (for a column policy, when a question touches the column).
fn print_coverage(catalog: &Catalog, out: &mut dyn Write) -> std::io::Result<()> {
    for policy in catalog.policies() {
        let allowed = &policy.allowed;
        let who: Vec<&str> = [
            &allowed.allowed_channels,
            &allowed.allowed_users,
            &allowed.allowed_usergroups,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        writeln!(
            out,
            "policy `{}` on {} (may see it: {}) covers:",
            policy.name,
            policy.data(),
            who.join(", ")
        )?;
        let covers =
            |gates: Vec<&crate::spec::PolicySpec>| gates.iter().any(|p| p.name == policy.name);
        let reports: Vec<&str> = catalog
            .reports()
            .filter(|r| covers(catalog.report_policies(r)))
            .map(|r| r.id.as_str())
            .collect();
        let mut metrics = Vec::new();
        for metric in catalog.metrics() {
            let base = base_columns(metric);
            if covers(catalog.metric_policies(metric, &base)) {
                metrics.push(format!("`{}`", metric.name));
                continue;
            }
            let by: Vec<&str> = metric
                .dimensions
                .keys()
                .map(String::as_str)
                .filter(|d| {
                    let mut columns = base.clone();
                    columns.push(d);
                    covers(catalog.metric_policies(metric, &columns))
                })
                .collect();
            if !by.is_empty() {
                metrics.push(format!(
                    "`{}` (split or filtered by {})",
                    metric.name,
                    by.join(", ")
                ));
            }
        }
        let list = |names: Vec<String>| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        writeln!(
            out,
            "    reports: {}",
            list(reports.iter().map(|r| format!("`{r}`")).collect())
        )?;
        writeln!(out, "    metrics: {}", list(metrics))?;
    }
    Ok(())
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
fn spec_limit(app: &App, report_cap: Option<u64>) -> u64 {
    report_cap.unwrap_or(app.settings.warehouse.bigquery.maximum_bytes_billed)
}

fn scan_note(what: &str, bytes: u64, limit: u64) -> String {
    format!(
        "{what} would scan {} (limit {})",
        bytes_text(bytes),
        bytes_text(limit)
    )
}

/// Days ahead that `check --dry-run` counts a report's scheduled runs over for "a month".
const MONTH_DAYS: i64 = 30;

/// What a report costs on its schedules: a run scans its window and, when it compares,
/// the window before (estimated alike), times the slots of the next 30 days.
fn monthly_note(
    spec: &crate::spec::ReportSpec,
    bytes: u64,
    app: &App,
    now: DateTime<Utc>,
) -> String {
    let per_run = if spec.chart.compare == crate::spec::Compare::None {
        bytes
    } else {
        bytes.saturating_mul(2)
    };
    let until = now + chrono::Duration::days(MONTH_DAYS);
    let runs: u64 = spec
        .schedules
        .iter()
        .map(|s| {
            crate::scheduled::cron::slots_between(&s.cron, s.timezone, now, until).len() as u64
        })
        .sum();
    let price = app.settings.cost.price_per_tib_usd;
    if runs == 0 {
        return format!(
            "a run scans about {}; it has no schedule, so only `/kpi` and alerts run it",
            cost_text(per_run, price)
        );
    }
    format!(
        "a run scans about {}; its schedules run it {runs} times in {MONTH_DAYS} days: about {} a month",
        cost_text(per_run, price),
        cost_text(per_run.saturating_mul(runs), price)
    )
}

/// The problem when a dry run would scan more than the query may bill.
fn over_limit(bytes: u64, limit: u64) -> Option<String> {
    (bytes > limit).then(|| {
        format!(
            "the query would scan {} but may bill at most {}; BigQuery would refuse to run it",
            bytes_text(bytes),
            bytes_text(limit)
        )
    })
}

/// Prepares a metric's generated query, split by each of its dimensions in turn, so a
/// misspelled table, column or dimension is caught before anyone asks.
async fn dry_run_metric(
    warehouse: &dyn Warehouse,
    metric: &MetricSpec,
    app: &App,
    today: NaiveDate,
) -> DryRun {
    let mut params = pipeline::params_for(
        Window {
            start: today,
            end: today,
        },
        today,
    );
    let mut splits: Vec<Option<&str>> = vec![None];
    splits.extend(metric.dimensions.keys().map(|d| Some(d.as_str())));
    let mut most: Option<u64> = None;
    for by in splits {
        let (sql, extra) = metric_sql(warehouse.dialect(), metric, Grain::Day, by, &[]);
        params.extend(extra);
        let job = QueryJob::new(app.query_timeout).for_report(&metric.name, Trigger::Cli);
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
                    if let Some(message) = over_limit(bytes, spec_limit(app, None)) {
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
/// What each report reads, as the warehouse proves it (`planner`: DuckDB's planner, or
/// BigQuery's dry run) or, without one, as the parser can tell: a report whose reads cannot
/// be established is an error while any policy exists, and the policies covering what it
/// is proven to read are held against its schedules and `[access]`.
async fn prove_reads(
    files: &mut [spec::LoadedFile],
    planner: Option<&dyn Warehouse>,
    app: &App,
    now: DateTime<Utc>,
) {
    let policies: Vec<spec::PolicySpec> = files.iter().flat_map(|f| f.policies.clone()).collect();
    if policies.is_empty() {
        return;
    }
    for file in files.iter_mut() {
        let Some(report) = &file.spec else { continue };
        let reads = match planner {
            Some(warehouse) => {
                let (params, job) = report_params(report, app, now);
                warehouse.reads(&report.query.sql, &params, &job).await
            }
            None => report.query.reads.established(),
        };
        // A target kept in a mart table is shown with the data: its table counts too.
        let today = pipeline::today_in(report.timezone, now);
        let more =
            super::check_targets::target_reads(planner, &report.targets, app.query_timeout, today);
        let reads = reads.union(more.await);
        let problems = match reads.unknown() {
            Some(why) => vec![
                Diagnostic::new(
                    &file.path,
                    report.query.sql_span.clone(),
                    format!(
                        "kpibot cannot establish what this query reads: {why}; data policies apply to it, so it is refused rather than assumed harmless"
                    ),
                )
                .with_hint(match planner {
                    Some(warehouse) => format!(
                        "name the tables directly (no opaque table functions); checked with {}",
                        warehouse.describe()
                    ),
                    None => "name the tables directly, or run `kpibot check --dry-run` so the warehouse can prove what it reads".to_string(),
                }),
            ],
            None => spec::policy_checks::report_policy_problems(
                &file.path,
                report,
                &spec::policy::reads_policies(&reads, &policies),
            ),
        };
        if !problems.is_empty() {
            file.diagnostics.extend(problems);
            file.spec = None;
        }
    }
}

/// The parameters and job a report's query runs with today, for dry runs and plans.
fn report_params(
    spec: &ReportSpec,
    app: &App,
    now: DateTime<Utc>,
) -> (crate::warehouse::Params, QueryJob) {
    let today = pipeline::today_in(spec.timezone, now);
    let window = pipeline::window_for(spec, None, now, &Default::default()).unwrap_or(Window {
        start: today,
        end: today,
    });
    let mut params = spec.query.params.clone();
    params.extend(pipeline::params_for(
        window,
        pipeline::today_in(spec.timezone, now),
    ));
    (
        params,
        pipeline::job_for(spec, app.query_timeout, Trigger::Cli),
    )
}

async fn dry_run(
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    app: &App,
    now: DateTime<Utc>,
) -> DryRun {
    let at_sql = |message: String| {
        DryRun::problem(Diagnostic::new(
            &spec.path,
            spec.query.sql_span.clone(),
            message,
        ))
    };
    let window = match pipeline::window_for(spec, None, now, &Default::default()) {
        Ok(window) => window,
        Err(e) => return at_sql(e.to_string()),
    };
    let mut params = spec.query.params.clone();
    params.extend(pipeline::params_for(
        window,
        pipeline::today_in(spec.timezone, now),
    ));
    let job = pipeline::job_for(spec, app.query_timeout, Trigger::Cli);
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
        let limit = spec_limit(app, spec.query.maximum_bytes_billed);
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

//! Report specs: `reports/*.toml` loaded, validated (every problem, with line and column)
//! and turned into checked types the rest of the bot can trust. [`walk`] is the general
//! spanned-TOML reader; each section's rules sit beside its types (`report`, `query`,
//! `chart`, `schedule`, `freshness`, `metric`, `access`); [`files`] says which files under
//! the folder are specs (a Kubernetes ConfigMap volume's bookkeeping skipped).

pub mod access;
pub mod alert;
pub mod alert_checks;
mod alert_condition;
pub mod alias;
pub mod cadence;
pub mod chart;
pub mod dbt;
mod dbt_json;
pub mod derived;
pub mod diagnostic;
pub mod explain_sql;
pub mod expr;
pub mod files;
pub mod freshness;
pub mod metric;
mod metric_read;
pub mod metric_report;
pub mod metric_sql;
pub mod names;
pub mod period;
pub mod policy;
pub mod policy_checks;
pub mod query;
pub mod report;
pub mod schedule;
pub mod target;
pub mod target_table;
mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::warehouse::Dialect;

pub use access::Access;
pub use alert::AlertSpec;
pub use chart::{
    ChartKind, ChartSpec, Column, Compare, Currency, Goal, Headline, Locale, NumberFormat,
    SlackChart,
};
pub use diagnostic::Diagnostic;
pub use files::{SpecFile, spec_files, spec_paths};
pub use freshness::FreshnessSpec;
pub use metric::{Accumulate, Cumulative, Derived, Interval, IntervalUnit, MetricKind, PeriodAgg};
pub use metric::{Measure, MetricSpec, measure_columns};
pub use period::{Period, Window};
pub use policy::PolicySpec;
pub use query::{DEFAULT_PERIOD, PROVIDED_PARAMETERS, QuerySpec};
pub use report::{Definition, ReportSpec};
pub use schedule::ScheduleSpec;
pub use target::{PaceMethod, Pacing, TargetPeriod, TargetSpec};
pub use walk::is_identifier;

/// Settings that fill in what a spec leaves out.
#[derive(Debug, Clone)]
pub struct SpecDefaults {
    pub timezone: Tz,
    /// The warehouse's SQL dialect, in which report SQL is read.
    pub dialect: Dialect,
    /// dbt's artifacts, whose metrics join the catalog.
    pub dbt: dbt::DbtFiles,
}

impl SpecDefaults {
    /// Defaults for reports in `timezone` on the embedded DuckDB warehouse.
    pub fn duckdb(timezone: Tz) -> Self {
        Self {
            timezone,
            dialect: Dialect::DuckDb,
            dbt: dbt::DbtFiles::default(),
        }
    }
}

/// One spec file after loading: its text, the spec if it is valid, and every problem.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub source: String,
    /// The report, if the file defines one (a file may hold only `[[metric]]`s).
    pub spec: Option<ReportSpec>,
    /// The `[[metric]]` entries of the file.
    pub metrics: Vec<MetricSpec>,
    /// The `[[policy]]` entries of the file.
    pub policies: Vec<PolicySpec>,
    /// The `[[alert]]` entries of the file.
    pub alerts: Vec<AlertSpec>,
    /// The `[[target]]` entries of the file.
    pub targets: Vec<target::TargetSpec>,
    pub diagnostics: Vec<Diagnostic>,
    /// What the file defines that kpibot cannot compute (a dbt manifest's conversion
    /// metrics…), each with its reason: listed by `check`, not an error in the file.
    pub unsupported: Vec<Diagnostic>,
}

impl LoadedFile {
    /// Valid, and defines a report, a metric, a policy or an alert.
    /// Whether this is dbt's semantic manifest rather than a spec file: what it cannot
    /// give is listed per metric (`unsupported`), never an error that drops the others.
    pub fn is_dbt(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "json")
    }

    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
            && (self.is_dbt()
                || self.spec.is_some()
                || !self.metrics.is_empty()
                || !self.policies.is_empty()
                || !self.alerts.is_empty()
                || !self.targets.is_empty())
    }
}

impl LoadedFile {
    /// Every diagnostic rendered rustc-style, in source order.
    pub fn render_diagnostics(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.source))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the reports folder {path}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the report spec {path}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Loads every `*.toml` under `dir` (recursively, in path order, each file once: see
/// [`spec_files`]). Problems in the files are diagnostics on each [`LoadedFile`]; only an
/// unreadable folder or file is an `Err`.
pub fn load_dir(dir: &Path, defaults: &SpecDefaults) -> Result<Vec<LoadedFile>, LoadError> {
    let found = spec_files(dir)?;
    let mut files = Vec::with_capacity(found.len());
    for SpecFile { path, target } in found {
        // The resolved file: what the reloader fingerprinted, even if a ConfigMap update
        // swaps `..data` meanwhile.
        let bytes = std::fs::read(&target).map_err(|source| LoadError::ReadFile {
            path: path.clone(),
            source,
        })?;
        files.push(match String::from_utf8(bytes) {
            Ok(source) => load_source(&path, source, defaults),
            // One file in another encoding (Shift-JIS is likely here) is that file's
            // problem; every other report still loads.
            Err(error) => not_utf8(&path, &error),
        });
    }
    files.extend(dbt::load(&defaults.dbt));
    flag_duplicate_ids(&mut files);
    flag_metric_name_clashes(&mut files);
    derived::link_derived(&mut files);
    target::link_targets(&mut files);
    metric_report::link_metric_reports(&mut files, defaults.dialect);
    names::flag_alias_clashes(&mut files);
    policy_checks::flag_policy_problems(&mut files);
    alert_checks::flag_alert_problems(&mut files, defaults.dialect);
    Ok(files)
}

/// Report ids are compared case-insensitively: `/kpi DAU` and `/kpi dau` must not be two
/// reports.
fn flag_duplicate_ids(files: &mut [LoadedFile]) {
    let mut first_seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files.iter_mut() {
        let id = report_id(&file.path).to_lowercase();
        if let Some(first) = first_seen.get(&id) {
            file.spec = None;
            file.diagnostics.insert(
                0,
                Diagnostic::new(&file.path, 0..0, format!("duplicate report id `{id}`"))
                    .with_label("this file's name is its report id")
                    .with_hint(format!(
                        "{} already defines report `{id}`; rename one of the files",
                        first.display()
                    )),
            );
        } else {
            first_seen.insert(id, file.path.clone());
        }
    }
}

/// A metric and a report (or two metrics) with one name would make `/kpi <name>`
/// ambiguous: the later file is flagged.
fn flag_metric_name_clashes(files: &mut [LoadedFile]) {
    let mut taken: BTreeMap<String, PathBuf> = files
        .iter()
        .filter(|f| f.spec.is_some())
        .map(|f| (report_id(&f.path).to_lowercase(), f.path.clone()))
        .collect();
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for metric in &file.metrics {
            let key = metric.name.to_lowercase();
            match taken.get(&key) {
                Some(other) => problems.push(
                    Diagnostic::new(
                        &file.path,
                        0..0,
                        format!("metric name `{}` is already taken", metric.name),
                    )
                    .with_hint(format!(
                        "{} already uses `{}`; `/kpi {}` must mean one thing, so rename the metric",
                        other.display(),
                        metric.name,
                        metric.name
                    )),
                ),
                None => {
                    taken.insert(key, file.path.clone());
                }
            }
        }
        if problems.is_empty() {
            continue;
        }
        if file.is_dbt() {
            // One dbt metric named like a report or a metric here is unavailable; the
            // manifest's other metrics still are.
            let clashing: Vec<String> = problems
                .iter()
                .filter_map(|p| p.message.split('`').nth(1).map(str::to_string))
                .collect();
            file.metrics.retain(|m| !clashing.contains(&m.name));
            file.unsupported.extend(problems);
        } else {
            file.diagnostics.extend(problems);
            file.spec = None;
            file.metrics.clear();
        }
    }
}

/// A spec file that is not UTF-8: its error names the byte offset and what to do.
fn not_utf8(path: &Path, error: &std::string::FromUtf8Error) -> LoadedFile {
    let at = error.utf8_error().valid_up_to();
    let bytes = error.as_bytes();
    let shown: Vec<String> = bytes[at..bytes.len().min(at + 4)]
        .iter()
        .map(|b| format!("{b:#04x}"))
        .collect();
    // Everything before the bad byte is readable: show it so the line number is right.
    let source = String::from_utf8_lossy(&bytes[..at]).into_owned();
    let diagnostic = Diagnostic::new(
        path,
        at..at,
        format!(
            "this file is not UTF-8: byte {at} ({}) does not start a UTF-8 character",
            shown.join(" ")
        ),
    )
    .with_hint(
        "save the file as UTF-8 (a file written as Shift-JIS needs converting, e.g. `iconv -f SHIFT_JIS -t UTF-8`)",
    );
    LoadedFile {
        path: path.to_path_buf(),
        source,
        spec: None,
        metrics: Vec::new(),
        policies: Vec::new(),
        alerts: Vec::new(),
        targets: Vec::new(),
        diagnostics: vec![diagnostic],
        unsupported: Vec::new(),
    }
}

/// The report id of a spec file: its stem.
pub fn report_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parses and validates one spec file's text.
pub fn load_source(path: &Path, source: String, defaults: &SpecDefaults) -> LoadedFile {
    let read = report::read_spec(path, &source, defaults);
    let mut diagnostics = read.errors;
    diagnostics.sort_by_key(|d| d.span.start);
    let valid = diagnostics.is_empty();
    LoadedFile {
        path: path.to_path_buf(),
        spec: if valid { read.spec } else { None },
        metrics: if valid { read.metrics } else { Vec::new() },
        policies: if valid { read.policies } else { Vec::new() },
        alerts: if valid { read.alerts } else { Vec::new() },
        targets: if valid { read.targets } else { Vec::new() },
        diagnostics,
        unsupported: Vec::new(),
        source,
    }
}

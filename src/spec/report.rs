//! A report file's root: its keys, `[definition]`, and the whole [`ReportSpec`] assembled
//! from every section's reader.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use toml::de::DeTable;

use super::access::ACCESS_KEYS;
use super::alias::Alias;
use super::diagnostic::{self, Diagnostic};
use super::walk::{Reader, Tbl};
use super::{
    Access, AlertSpec, ChartSpec, FreshnessSpec, MetricSpec, PolicySpec, QuerySpec, ScheduleSpec,
    SpecDefaults, report_id,
};

/// A validated report spec. Past this type, every field is known to be usable.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    /// The file stem, e.g. `daily_active_users`.
    pub id: String,
    pub path: PathBuf,
    /// The file's text, kept so warehouse errors can point into the SQL.
    pub source: String,
    pub title: String,
    /// Other names people use for the report (`aliases = ["日次アクティブユーザー"]`).
    pub aliases: Vec<Alias>,
    pub description: String,
    /// Who hears about failures: a `#channel`, a channel ID or a user.
    pub owner: String,
    pub tags: Vec<String>,
    /// The timezone the report's dates are computed in (defaults to the bot's setting).
    pub timezone: Tz,
    pub definition: Definition,
    pub query: QuerySpec,
    pub chart: ChartSpec,
    pub schedules: Vec<ScheduleSpec>,
    /// Checked before a scheduled run: is the source refreshed?
    pub freshness: Option<FreshnessSpec>,
    /// Who may ask for this report with `/kpi` (scheduled posts are not affected).
    pub access: Access,
    /// The metric's targets (an answer on a metric, unsplit, daily): a run whose window is
    /// one's period to date shows its pacing, and a to-date series the target as its goal.
    pub targets: Vec<super::target::TargetSpec>,
}

/// The data definition shown to readers: where the numbers come from.
#[derive(Debug, Clone)]
pub struct Definition {
    pub source: String,
    pub refreshed: String,
    pub purpose: String,
}

const ROOT_KEYS: [&str; 15] = [
    "title",
    "aliases",
    "description",
    "owner",
    "tags",
    "timezone",
    "definition",
    "query",
    "chart",
    "schedule",
    "freshness",
    "metric",
    "policy",
    "access",
    "alert",
];

const DEFINITION_KEYS: [&str; 3] = ["source", "refreshed", "purpose"];

/// Everything one file defines, and its problems.
#[derive(Default)]
pub(super) struct FileSpecs {
    pub spec: Option<ReportSpec>,
    pub metrics: Vec<MetricSpec>,
    pub policies: Vec<PolicySpec>,
    pub alerts: Vec<AlertSpec>,
    pub targets: Vec<super::target::TargetSpec>,
    pub errors: Vec<Diagnostic>,
}

pub(super) fn read_spec(path: &Path, source: &str, defaults: &SpecDefaults) -> FileSpecs {
    let mut r = Reader {
        path,
        source,
        errors: Vec::new(),
        suggested: Vec::new(),
        dialect: defaults.dialect,
    };
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    for error in &syntax_errors {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().trim_end_matches('.').to_string();
        r.errors.push(Diagnostic::new(
            path,
            span,
            format!("TOML syntax error: {message}"),
        ));
    }
    if !syntax_errors.is_empty() {
        // The rest of the document may be misread after a syntax error; don't pile on.
        return FileSpecs {
            errors: r.errors,
            ..FileSpecs::default()
        };
    }
    let id = report_id(path);
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        r.errors.push(
            Diagnostic::new(path, 0..0, format!("`{id}` cannot be a report id"))
                .with_hint("name the file with letters, digits, `_` or `-` only, e.g. `daily_active_users.toml`; the file name is what people type after /kpi"),
        );
    }
    let root = Tbl {
        table: document.get_ref(),
        name: String::new(),
        anchor: 0..0,
    };
    let metrics = r.metrics(&root).unwrap_or_default();
    let policies = r.policies(&root).unwrap_or_default();
    let has = |key: &str| root.table.iter().any(|(k, _)| k.get_ref().as_ref() == key);
    if (has("metric") || has("policy") || has("alert") || has("target")) && !has("query") {
        // A file of metrics, policies, alerts and targets only.
        r.check_keys(&root, &["metric", "policy", "alert", "target"]);
        let alerts = r.alerts(&root, defaults.timezone).unwrap_or_default();
        let targets = r.targets(&root).unwrap_or_default();
        return FileSpecs {
            spec: None,
            metrics,
            policies,
            alerts,
            targets,
            errors: r.errors,
        };
    }
    r.check_keys(&root, &ROOT_KEYS);
    let title = r.string(&root, "title", true);
    let aliases = r.aliases(&root);
    let description = r.string(&root, "description", true);
    let owner = r.string(&root, "owner", true);
    let tags = r.string_list(&root, "tags");
    let timezone = match r.string(&root, "timezone", false) {
        Some(tz) => r.timezone(&tz),
        None => Some(defaults.timezone),
    };

    let definition = r.table(&root, "definition", true).map(|t| {
        r.check_keys(&t, &DEFINITION_KEYS);
        (
            r.string(&t, "source", true),
            r.string(&t, "refreshed", true),
            r.string(&t, "purpose", true),
        )
    });
    let query = r.table(&root, "query", true).map(|t| r.query(&t));
    let chart = r.table(&root, "chart", true).map(|t| r.chart(&t));
    let schedules = r.schedules(&root, timezone.unwrap_or(defaults.timezone));
    let alerts = r
        .alerts(&root, timezone.unwrap_or(defaults.timezone))
        .unwrap_or_default();
    let access = match r.table(&root, "access", false) {
        Some(t) => {
            r.check_keys(&t, &ACCESS_KEYS);
            r.access(&t)
        }
        None if Reader::lookup(&root, "access").is_some() => None,
        None => Some(Access::default()),
    };
    let freshness = match r.table(&root, "freshness", false) {
        Some(t) => r.freshness(&t).map(Some),
        None if Reader::lookup(&root, "freshness").is_some() => None,
        None => Some(None),
    };

    let spec = (|| {
        let (source_table, refreshed, purpose) = definition?;
        Some(ReportSpec {
            id,
            path: path.to_path_buf(),
            source: source.to_string(),
            title: title?.into_inner(),
            aliases: aliases?,
            description: description?.into_inner(),
            owner: owner?.into_inner(),
            tags: tags?,
            timezone: timezone?,
            definition: Definition {
                source: source_table?.into_inner(),
                refreshed: refreshed?.into_inner(),
                purpose: purpose?.into_inner(),
            },
            query: query??,
            chart: chart??,
            schedules: schedules?,
            freshness: freshness?,
            access: access?,
            targets: Vec::new(),
        })
    })();
    FileSpecs {
        spec,
        metrics,
        policies,
        alerts,
        targets: Vec::new(),
        errors: r.errors,
    }
}

impl ReportSpec {
    /// Byte offset in the spec file of the start of the SQL's 1-based `sql_line`, when the
    /// SQL is written without escapes (so offsets map one-to-one).
    pub fn sql_line_offset(&self, sql_line: usize) -> Option<usize> {
        self.sql_position(sql_line, None)
    }

    /// Byte offset in the spec file of the SQL's 1-based `sql_line` and, if given, its
    /// 1-based character `column` (where BigQuery points); without a column, the line's
    /// first non-blank character. `None` when the SQL cannot be mapped onto the file.
    pub fn sql_position(&self, sql_line: usize, column: Option<usize>) -> Option<usize> {
        let start = self.query.sql_offset?;
        let lines: Vec<&str> = self.query.sql.split_inclusive('\n').collect();
        if sql_line == 0 || sql_line > lines.len().max(1) {
            return None;
        }
        let before: usize = lines.iter().take(sql_line - 1).map(|l| l.len()).sum();
        let text = lines.get(sql_line - 1).copied().unwrap_or("");
        let within = match column {
            Some(column) if column >= 1 => text
                .char_indices()
                .nth(column - 1)
                .map_or(text.trim_end_matches('\n').len(), |(at, _)| at),
            _ => text.len() - text.trim_start().len(),
        };
        Some(start + before + within)
    }

    /// `path:line:col` of the SQL's 1-based `sql_line` (and character `column`, if known) in
    /// the spec file (the start of the `sql` value when the line cannot be mapped).
    pub fn sql_location(&self, sql_line: usize, column: Option<usize>) -> String {
        let offset = self
            .sql_position(sql_line, column)
            .unwrap_or(self.query.sql_span.start);
        diagnostic::location(&self.path, &self.source, offset)
    }
}

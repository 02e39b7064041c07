//! One report as it will be posted, for the studio: run through the same pipeline as a
//! scheduled post (nothing delivered), with the data behind it, what the query cost, and
//! every diagnostic of its file with the lines around it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::i18n::Locale;
use crate::pipeline::{self, RunOptions};
use crate::spec::{LoadedFile, Period, ReportSpec};
use crate::warehouse::{Trigger, Warehouse};

/// Rows of the data table shown under a preview; the rest are counted.
pub const PREVIEW_TABLE_ROWS_MAX: usize = 200;
/// Lines of the file shown either side of a diagnostic.
pub const DIAGNOSTIC_CONTEXT_LINES: usize = 2;

/// A report run for the page.
#[derive(Debug, Clone)]
pub struct Preview {
    pub png: Vec<u8>,
    /// The Slack message as the pipeline built it (`chat.postMessage`'s body).
    pub message: serde_json::Value,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub row_count: usize,
    pub window: String,
    pub elapsed_ms: u128,
    /// Bytes the warehouse scanned (BigQuery says; DuckDB does not).
    pub bytes: Option<u64>,
    pub alt_text: String,
}

/// Runs `spec` over `period` (its own if `None`) in `locale`; the error in words for the
/// author.
pub async fn run(
    app: &super::Parts,
    warehouse: &dyn Warehouse,
    spec: &ReportSpec,
    (period, locale): (Option<Period>, Locale),
    now: DateTime<Utc>,
) -> Result<Preview, String> {
    let schedule = spec.schedules.first();
    let options = RunOptions {
        period,
        channel: schedule.map(|s| s.channel.clone()),
        thread: false,
        limits: app.limits,
        locale,
        ..RunOptions::new(now, app.query_timeout, Trigger::Cli)
    };
    let outcome = pipeline::run(warehouse, spec, &options)
        .await
        .map_err(|error| format!("{error:#}"))?;
    let rendered = outcome.rendered;
    let alt_text = rendered.message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|b| b["alt_text"].as_str().map(str::to_string))
        .unwrap_or_else(|| rendered.title.clone());
    let table = outcome.table;
    Ok(Preview {
        png: rendered.png,
        message: rendered.message,
        columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        rows: table
            .rows
            .iter()
            .take(PREVIEW_TABLE_ROWS_MAX)
            .map(|row| row.iter().map(ToString::to_string).collect())
            .collect(),
        row_count: table.rows.len(),
        window: outcome.window.to_string(),
        elapsed_ms: outcome.elapsed.as_millis(),
        bytes: table.bytes_processed,
        alt_text,
    })
}

/// One diagnostic as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// `reports/x.toml:12:5`.
    pub at: String,
    pub message: String,
    pub hint: Option<String>,
    /// The lines around it: (number, text, is the line it points at).
    pub lines: Vec<(usize, String, bool)>,
}

/// Every diagnostic of `file`, with the lines around each.
pub fn diagnostics(file: &LoadedFile) -> Vec<Shown> {
    let lines: Vec<&str> = file.source.lines().collect();
    file.diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.line_col(&file.source);
            let first = line.saturating_sub(DIAGNOSTIC_CONTEXT_LINES).max(1);
            let last = (line + DIAGNOSTIC_CONTEXT_LINES).min(lines.len());
            Shown {
                at: format!("{}:{line}:{column}", file.path.display()),
                message: match &d.label {
                    Some(label) => format!("{} ({label})", d.message),
                    None => d.message.clone(),
                },
                hint: d.hint.clone(),
                lines: (first..=last)
                    .filter_map(|n| Some((n, lines.get(n - 1)?.to_string(), n == line)))
                    .collect(),
            }
        })
        .collect()
}

//! The warehouse seam: run a report's SQL with bound parameters and get a typed [`Table`].

pub mod bigquery;
pub mod cache;
pub mod cost;
pub mod demo;
pub mod duckdb;
pub mod plan;
pub mod reads;
pub mod shared;
pub mod sql;
pub mod table;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

pub use table::{Cell, ColumnInfo, ColumnType, Table};

/// A value bound to a named query parameter; never spliced into SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Date(NaiveDate),
    /// A UTC instant.
    Timestamp(NaiveDateTime),
    Text(String),
    Integer(i64),
    Float(f64),
    /// An exact decimal written out, e.g. `"1234.5678"` (BigQuery NUMERIC).
    Numeric(String),
    Bool(bool),
    /// A list of values of one type, for `IN UNNEST(@values)`.
    Array(Vec<ParamValue>),
}

/// BigQuery bills at least this much for every table a query reads, so a smaller
/// `maximumBytesBilled` fails every real query.
pub const MIN_BILLED_BYTES_PER_TABLE: u64 = 10 * 1024 * 1024;

/// Named parameters by name, without the `@`.
pub type Params = BTreeMap<String, ParamValue>;

/// The SQL dialect a warehouse speaks (report authors write for theirs; generated metric
/// SQL is spelled for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    BigQuery,
}

/// What started a query, for cost attribution (BigQuery label `kpibot_trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    Schedule,
    Slash,
    /// An alert's evaluation or backtest.
    Alert,
    #[default]
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Slash => "slash",
            Trigger::Alert => "alert",
            Trigger::Cli => "cli",
        }
    }
}

/// How one query runs: its time limit and, where the warehouse bills by bytes, its cap
/// and the labels that attribute its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryJob {
    /// The whole job, polling and every page of results included.
    pub timeout: Duration,
    /// The report or metric the query is for (label `kpibot_report`); empty for internal
    /// checks.
    pub report: String,
    pub trigger: Trigger,
    /// Bytes-billed cap for this query; `None` uses the warehouse's default.
    pub maximum_bytes_billed: Option<u64>,
    /// Most rows a query may return; past it the query fails (and stops reading) rather
    /// than hold an answer too large to chart in memory.
    pub max_rows: usize,
}

/// Rows a query may return unless the settings say otherwise (`warehouse.max_rows`).
pub const DEFAULT_MAX_ROWS: usize = 100_000;

impl QueryJob {
    /// An unattributed job (health checks, tests) with the warehouse's default cap.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            report: String::new(),
            trigger: Trigger::Cli,
            maximum_bytes_billed: None,
            max_rows: DEFAULT_MAX_ROWS,
        }
    }

    pub fn with_max_rows(mut self, max_rows: usize) -> Self {
        self.max_rows = max_rows;
        self
    }

    pub fn for_report(mut self, report: &str, trigger: Trigger) -> Self {
        self.report = report.to_string();
        self.trigger = trigger;
        self
    }

    pub fn with_maximum_bytes_billed(mut self, bytes: Option<u64>) -> Self {
        self.maximum_bytes_billed = bytes;
        self
    }
}

/// What a dry run learned about a query without running it for real.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub columns: Vec<ColumnInfo>,
    /// Bytes the warehouse would scan, where it can say.
    pub bytes_processed: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WarehouseError {
    /// The SQL is wrong: fix the report. `line` and `column` are 1-based positions in the
    /// SQL, if the warehouse said.
    #[error("{message}")]
    Query {
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("the query did not finish within {} s and was cancelled", .0.as_secs())]
    Timeout(Duration),
    /// The warehouse itself cannot be used (missing file, cannot connect, …).
    #[error("the warehouse is unavailable: {0}")]
    Unavailable(String),
    #[error("column `{column}` has type {type_name}, which kpibot cannot chart")]
    UnsupportedType { column: String, type_name: String },
    /// The query returned more rows than a chart can use; it was stopped.
    #[error(
        "the query returned more than {max_rows} rows (the limit, limits.max_rows); aggregate it in SQL (GROUP BY) or narrow its period"
    )]
    TooManyRows { max_rows: usize },
    /// The warehouse refused to run the query for a reason the report's SQL does not
    /// decide: a permission, a quota, the bytes-billed cap. Retrying will not help.
    #[error("{message} ({reason}); {advice}")]
    Refused {
        reason: String,
        message: String,
        advice: String,
    },
    /// A daily budget this query would exceed: refused after a dry run, before it ran.
    #[error(transparent)]
    OverBudget(Box<cost::OverBudget>),
}

impl WarehouseError {
    /// Worth trying again later: the warehouse was slow or unreachable, not wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WarehouseError::Timeout(_) | WarehouseError::Unavailable(_)
        )
    }
}

/// A place report SQL runs: the embedded DuckDB mart or BigQuery.
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// Runs `sql` with `params` bound by name and returns every row.
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError>;

    /// Prepares `sql` without reading its data: the columns it returns and, where the
    /// warehouse can say, the bytes it would scan.
    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError>;

    /// What `sql` reads, as the warehouse establishes it without reading data: DuckDB's
    /// planner, BigQuery's dry run. Anything it cannot establish (the SQL does not plan,
    /// the plan reads through something opaque, the warehouse is away) is
    /// [`Reads::Unknown`], which counts as reading everything.
    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> reads::Reads;

    /// A short description for logs and `kpibot config`, e.g. `duckdb data/demo.duckdb`.
    fn describe(&self) -> String;

    /// The SQL this warehouse speaks.
    fn dialect(&self) -> Dialect;
}

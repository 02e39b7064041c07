//! The warehouse seam: run a report's SQL with bound parameters and get a typed [`Table`].

pub mod duckdb;
pub mod sql;
pub mod table;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;

pub use table::{Cell, ColumnInfo, ColumnType, Table};

/// A value bound to a named query parameter; never spliced into SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Date(NaiveDate),
    Text(String),
    Integer(i64),
}

/// Named parameters by name, without the `@`.
pub type Params = BTreeMap<String, ParamValue>;

/// What a dry run learned about a query without running it for real.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub columns: Vec<ColumnInfo>,
    /// Bytes the warehouse would scan, where it can say.
    pub bytes_processed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The SQL is wrong: fix the report. `line` is the 1-based line in the SQL, if known.
    #[error("{message}")]
    Query {
        message: String,
        line: Option<usize>,
    },
    #[error("the query did not finish within {} s and was cancelled", .0.as_secs())]
    Timeout(Duration),
    /// The warehouse itself cannot be used (missing file, cannot connect, …).
    #[error("the warehouse is unavailable: {0}")]
    Unavailable(String),
    #[error("column `{column}` has type {type_name}, which kpibot cannot chart")]
    UnsupportedType { column: String, type_name: String },
}

/// A place report SQL runs: the embedded DuckDB mart or BigQuery.
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// Runs `sql` with `params` bound by name and returns every row.
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        timeout: Duration,
    ) -> Result<Table, WarehouseError>;

    /// Prepares `sql` without reading its data: the columns it returns and, where the
    /// warehouse can say, the bytes it would scan.
    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        timeout: Duration,
    ) -> Result<Estimate, WarehouseError>;

    /// A short description for logs and `kpibot config`, e.g. `duckdb data/demo.duckdb`.
    fn describe(&self) -> String;
}

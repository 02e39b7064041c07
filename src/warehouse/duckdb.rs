//! The embedded warehouse: a DuckDB database file, queried read-only off the async runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate};
use duckdb::arrow::datatypes::DataType;
use duckdb::types::{TimeUnit, Value};
use duckdb::{AccessMode, Config, Connection};

use super::plan::{plan_reads, plan_table_name};
use super::reads::{Reads, TableName};
use super::sql::with_dollar_parameters;
use super::table::parse_decimal;
use super::{
    Cell, ColumnInfo, ColumnType, Dialect, Estimate, ParamValue, Params, QueryJob, Table,
    WarehouseError,
};

/// A DuckDB database opened read-only and locked down: report SQL can read the mart,
/// never change it, and never reach the host — no file functions, no `ATTACH`, no `COPY`,
/// no extension installs or loads, and a configuration no statement can change.
pub struct DuckDbWarehouse {
    path: PathBuf,
    /// Files attached as tables (`extracts.<name>`) before the lock.
    extracts: BTreeMap<String, PathBuf>,
    connection: Arc<Mutex<Connection>>,
    /// A second instance of the same database for `EXPLAIN` only (see [`PLANNER_SETUP`]).
    planner: Arc<Mutex<Connection>>,
}

/// Temporary objects a plan created: a PIVOT without an IN list builds an enum type from
/// the data while it is planned.
const PLAN_TIME_READS_SQL: &str =
    "SELECT count(*) FROM duckdb_types() WHERE database_name = 'temp' AND NOT internal";

/// The tables that have generated columns, as `database.schema.table`.
const GENERATED_SQL: &str = "SELECT DISTINCT database_name, schema_name, table_name FROM duckdb_columns() WHERE is_generated";

/// Rows `EXPLAIN` may return (it returns one).
const EXPLAIN_MAX_ROWS: usize = 4;

/// Threads DuckDB uses for one query (the calling thread only).
const DUCKDB_THREADS_PER_QUERY: i64 = 1;

/// How often a timed-out query is interrupted again until its thread returns.
const INTERRUPT_REPEAT_MS: u64 = 20;

/// The schema extracts are attached in: `extracts.<name>`.
pub const EXTRACTS_SCHEMA: &str = "extracts";

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Running report queries.
    Query,
    /// Planning them, to prove what they read.
    Plan,
}

/// The planner's connection answers `max(column)` and the like from the table's stored
/// statistics at plan time (`statistics_propagation`), which shows in the plan as a
/// constant with no scan of the column it came from. With that pass off, every column a
/// query can take a value from appears in a scan; queries themselves keep it.
const PLANNER_SETUP: &str = "SET disabled_optimizers = 'statistics_propagation';\n";

/// Opens the database, attaches the extracts, then locks everything else out.
/// With extracts, the database file is attached read-only to an in-memory one (which can
/// hold the extracts); without, it is opened read-only itself.
fn open_locked(
    path: &Path,
    extracts: &BTreeMap<String, PathBuf>,
    purpose: Purpose,
) -> Result<Connection, String> {
    let config = Config::default()
        // One thread per query, the caller's: the blocking-pool thread at background
        // priority (see `priority`), not DuckDB workers at normal priority beside the
        // async runtime. Queries run side by side, one per blocking thread.
        .threads(DUCKDB_THREADS_PER_QUERY)
        .and_then(|c| c.enable_autoload_extension(false))
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .map_err(|e| e.to_string())?;
    let mut setup = String::new();
    let connection = if extracts.is_empty() {
        let config = config
            .access_mode(AccessMode::ReadOnly)
            .map_err(|e| e.to_string())?;
        Connection::open_with_flags(path, config)
    } else {
        let file = path.display().to_string().replace('\'', "''");
        setup.push_str(&format!(
            "ATTACH '{file}' AS warehouse (READ_ONLY);\nUSE warehouse;\nATTACH ':memory:' AS {EXTRACTS_SCHEMA};\n"
        ));
        Connection::open_in_memory_with_flags(config)
    }
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if !extracts.is_empty() {
        for (name, file) in extracts {
            let file = file.display().to_string().replace('\'', "''");
            let reader = if file.ends_with(".parquet") {
                "read_parquet"
            } else {
                "read_csv_auto"
            };
            setup.push_str(&format!(
                "CREATE TABLE {EXTRACTS_SCHEMA}.\"{name}\" AS SELECT * FROM {reader}('{file}');\n"
            ));
        }
    }
    if purpose == Purpose::Plan {
        setup.push_str(PLANNER_SETUP);
    }
    setup.push_str(
        "SET enable_external_access = false;\nSET allow_community_extensions = false;\nSET lock_configuration = true;",
    );
    connection
        .execute_batch(&setup)
        .map_err(|e| format!("cannot lock down {}: {e}", path.display()))?;
    Ok(connection)
}

impl DuckDbWarehouse {
    /// Opens `path` read-only and locked down.
    pub fn open(path: &Path) -> Result<Self, WarehouseError> {
        Self::open_with_extracts(path, &BTreeMap::new())
    }

    /// Opens `path` with `extracts` (name → Parquet or CSV file) attached as tables
    /// `extracts.<name>`, read once at open; report SQL itself can read no file.
    pub fn open_with_extracts(
        path: &Path,
        extracts: &BTreeMap<String, PathBuf>,
    ) -> Result<Self, WarehouseError> {
        if !path.exists() {
            return Err(WarehouseError::Unavailable(format!(
                "the DuckDB database {} does not exist (run `kpibot demo` to build the demo mart)",
                path.display()
            )));
        }
        let connection =
            open_locked(path, extracts, Purpose::Query).map_err(WarehouseError::Unavailable)?;
        let planner =
            open_locked(path, extracts, Purpose::Plan).map_err(WarehouseError::Unavailable)?;
        Ok(Self {
            path: path.to_path_buf(),
            extracts: extracts.clone(),
            connection: Arc::new(Mutex::new(connection)),
            planner: Arc::new(Mutex::new(planner)),
        })
    }

    /// Opens the file again, for a database replaced on disk (the demo mart after its
    /// daily refresh). Queries in flight finish on the connection they started with.
    pub fn reopen(&self) -> Result<(), WarehouseError> {
        let fresh = Self::open_with_extracts(&self.path, &self.extracts)?;
        let unwrap = |shared: Arc<Mutex<Connection>>| {
            Arc::try_unwrap(shared)
                .map_err(|_| WarehouseError::Unavailable("the new connection is shared".into()))?
                .into_inner()
                .map_err(|_| WarehouseError::Unavailable("the new connection was poisoned".into()))
        };
        let (connection, planner) = (unwrap(fresh.connection)?, unwrap(fresh.planner)?);
        let poisoned = |_| WarehouseError::Unavailable("the DuckDB connection was poisoned".into());
        *self.connection.lock().map_err(poisoned)? = connection;
        *self.planner.lock().map_err(poisoned)? = planner;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last day of data, if this is the demo mart (it records when it was built).
    pub fn demo_data_through(&self) -> Option<NaiveDate> {
        let connection = self.connection.lock().ok()?;
        super::demo::data_through(&connection)
    }

    /// Runs `work` on its own connection in a blocking thread; interrupts DuckDB when the
    /// timeout passes, so a runaway query does not keep a core busy.
    async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    ) -> Result<T, WarehouseError> {
        self.run_on(&self.connection, timeout, work).await
    }

    /// [`Self::run`] on `shared`: the query connection or the planner's.
    async fn run_on<T: Send + 'static>(
        &self,
        shared: &Mutex<Connection>,
        timeout: Duration,
        work: impl FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    ) -> Result<T, WarehouseError> {
        let connection = shared
            .lock()
            .map_err(|_| WarehouseError::Unavailable("the DuckDB connection was poisoned".into()))?
            .try_clone()
            .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
        let interrupt = connection.interrupt_handle();
        let mut task =
            tokio::task::spawn_blocking(move || crate::priority::background(|| work(&connection)));
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(WarehouseError::Unavailable(format!(
                "the query thread failed: {join_error}"
            ))),
            Err(_) => {
                // DuckDB forgets an interrupt that lands before it starts a statement (it
                // clears the flag as each one begins: preparing, then executing), so one
                // interrupt can miss and leave the query running for ever. Keep
                // interrupting until the query thread has returned.
                // A blocking thread of its own, so a runtime shutting down waits for it too.
                tokio::task::spawn_blocking(move || {
                    while !task.is_finished() {
                        interrupt.interrupt();
                        std::thread::sleep(Duration::from_millis(INTERRUPT_REPEAT_MS));
                    }
                });
                Err(WarehouseError::Timeout(timeout))
            }
        }
    }
}

#[async_trait::async_trait]
impl super::Warehouse for DuckDbWarehouse {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        let bound = bind(sql, params)?;
        let sql = with_dollar_parameters(sql);
        let max_rows = job.max_rows;
        self.run(job.timeout, move |conn| {
            read_table(conn, &sql, &bound, max_rows)
        })
        .await
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        let body = sql.trim().trim_end_matches(';');
        let wrapped = format!("SELECT * FROM (\n{body}\n) AS kpibot_dry_run LIMIT 0");
        let bound = bind(&wrapped, params)?;
        let sql = with_dollar_parameters(&wrapped);
        let table = self
            .run(job.timeout, move |conn| read_table(conn, &sql, &bound, 0))
            .await
            .map_err(|e| match e {
                // The wrapper adds one line above the report's SQL.
                WarehouseError::Query {
                    message,
                    line,
                    column,
                } => WarehouseError::Query {
                    message,
                    line: line.map(|l| l.saturating_sub(1).max(1)),
                    column,
                },
                other => other,
            })?;
        Ok(Estimate {
            columns: table.columns,
            bytes_processed: None,
        })
    }

    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> Reads {
        let unknown = |why: String| Reads::Unknown { why };
        // Wrapped as one subquery, so DuckDB's own parser refuses a second statement: the
        // client runs every statement but the last, and an earlier one could set what the
        // last reads (`SET VARIABLE`) while only the last is explained.
        let body = sql.trim().trim_end_matches(';');
        let explain = format!("EXPLAIN (FORMAT JSON)\nSELECT * FROM (\n{body}\n) AS kpibot_reads");
        let bound = match bind(&explain, params) {
            Ok(bound) => bound,
            Err(error) => return unknown(format!("the warehouse could not plan it: {error}")),
        };
        let explain = with_dollar_parameters(&explain);
        let planned = self
            .run_on(&self.planner, job.timeout, move |conn| {
                let catalog: String = conn
                    .query_row("SELECT current_database()", [], |row| row.get(0))
                    .map_err(query_error)?;
                let table = read_table(conn, &explain, &bound, EXPLAIN_MAX_ROWS)?;
                // A PIVOT without an IN list reads the pivoted column's values while it is
                // planned (into a temporary enum): that read is not in the plan.
                let planned_reads: i64 = conn
                    .query_row(PLAN_TIME_READS_SQL, [], |row| row.get(0))
                    .map_err(query_error)?;
                let mut statement = conn.prepare(GENERATED_SQL).map_err(query_error)?;
                let generated = statement
                    .query_map([], |row| {
                        Ok(format!(
                            "{}.{}.{}",
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?
                        ))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(query_error)?;
                Ok((catalog, table, planned_reads, generated))
            })
            .await;
        let (catalog, table, planned_reads, generated) = match planned {
            Ok(planned) => planned,
            Err(error) => return unknown(format!("the warehouse could not plan it: {error}")),
        };
        if planned_reads > 0 {
            return unknown(
                "it reads data while it is planned (a PIVOT without an IN list), which the plan does not show; list the pivoted values with IN (…)".into(),
            );
        }
        // Exactly one row, the physical plan as a JSON array of operators.
        let plan = match table.rows.as_slice() {
            [row] => match (row.first(), row.last()) {
                (Some(Cell::Text(kind)), Some(Cell::Text(text))) if kind == "physical_plan" => {
                    serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .filter(|plan| plan.as_array().is_some_and(|ops| !ops.is_empty()))
                }
                _ => None,
            },
            _ => None,
        };
        let Some(plan) = plan else {
            return unknown("the warehouse's plan could not be read".into());
        };
        let mut reads = plan_reads(&plan, &catalog);
        // A generated column's scan lists the columns it is computed from, not itself:
        // every column of such a table counts as read.
        if let Reads::Known { tables, .. } = &mut reads {
            let generated: Vec<TableName> = generated
                .iter()
                .map(|name| plan_table_name(name, &catalog))
                .collect();
            for read in tables.iter_mut() {
                if generated.contains(&read.table) {
                    read.columns = None;
                }
            }
        }
        reads
    }

    fn describe(&self) -> String {
        format!("duckdb {}", self.path.display())
    }

    fn dialect(&self) -> Dialect {
        Dialect::DuckDb
    }
}

/// The values for the parameters `sql` uses (DuckDB rejects values it was not asked for).
/// A parameter without a value is left unbound, and DuckDB says which one is missing.
fn bind(sql: &str, params: &Params) -> Result<Vec<(String, Value)>, WarehouseError> {
    super::sql::parameters(sql)
        .into_iter()
        .map(|p| p.name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|name| {
            params
                .get(&name)
                .map(|v| to_value(v, &name).map(|value| (name.clone(), value)))
        })
        .collect()
}

fn read_table(
    conn: &Connection,
    sql: &str,
    used: &[(String, Value)],
    max_rows: usize,
) -> Result<Table, WarehouseError> {
    let mut statement = conn.prepare(sql).map_err(query_error)?;
    let bound: Vec<(&str, &dyn duckdb::ToSql)> = used
        .iter()
        .map(|(name, value)| (name.as_str(), value as &dyn duckdb::ToSql))
        .collect();
    let mut rows = statement.query(bound.as_slice()).map_err(query_error)?;
    let mut out_rows = Vec::new();
    let mut columns: Option<Vec<ColumnInfo>> = None;
    while let Some(row) = rows.next().map_err(query_error)? {
        if out_rows.len() == max_rows {
            return Err(WarehouseError::TooManyRows { max_rows });
        }
        if columns.is_none() {
            columns = Some(describe_columns(row.as_ref())?);
        }
        let width = columns.as_ref().map_or(0, Vec::len);
        let mut cells = Vec::with_capacity(width);
        for index in 0..width {
            let value: Value = row.get(index).map_err(query_error)?;
            cells.push(to_cell(
                value,
                &columns.as_ref().expect("set above")[index].name,
            )?);
        }
        out_rows.push(cells);
    }
    let columns = match columns {
        Some(columns) => columns,
        None => match rows.as_ref() {
            Some(statement) => describe_columns(statement)?,
            None => Vec::new(),
        },
    };
    Ok(Table {
        columns,
        rows: out_rows,
        bytes_processed: None,
    })
}

fn describe_columns(statement: &duckdb::Statement<'_>) -> Result<Vec<ColumnInfo>, WarehouseError> {
    statement
        .column_names()
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let data_type = statement.column_type(index);
            let ty = column_type(&data_type).ok_or_else(|| WarehouseError::UnsupportedType {
                column: name.clone(),
                type_name: data_type.to_string(),
            })?;
            Ok(ColumnInfo { name, ty })
        })
        .collect()
}

fn column_type(data_type: &DataType) -> Option<ColumnType> {
    Some(match data_type {
        DataType::Boolean => ColumnType::Bool,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Integer,
        DataType::Decimal128(_, 0) => ColumnType::Integer,
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => ColumnType::Decimal,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnType::Float,
        DataType::Date32 | DataType::Date64 => ColumnType::Date,
        DataType::Timestamp(_, _) => ColumnType::Timestamp,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::Text,
        DataType::Dictionary(_, value) if matches!(**value, DataType::Utf8) => ColumnType::Text,
        DataType::Null => ColumnType::Text,
        _ => return None,
    })
}

fn to_value(value: &ParamValue, name: &str) -> Result<Value, WarehouseError> {
    Ok(match value {
        ParamValue::Date(date) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
            Value::Date32((*date - epoch).num_days() as i32)
        }
        ParamValue::Timestamp(at) => {
            Value::Timestamp(TimeUnit::Microsecond, at.and_utc().timestamp_micros())
        }
        ParamValue::Text(text) => Value::Text(text.clone()),
        ParamValue::Integer(i) => Value::BigInt(*i),
        ParamValue::Float(f) => Value::Double(*f),
        ParamValue::Numeric(text) => {
            let invalid = || WarehouseError::Query {
                message: format!("parameter @{name}: `{text}` is not a decimal number"),
                line: None,
                column: None,
            };
            let (digits, scale) = parse_decimal(text).ok_or_else(invalid)?;
            Value::Decimal(duckdb::types::Decimal::new(38, scale, digits).map_err(|_| invalid())?)
        }
        ParamValue::Bool(b) => Value::Boolean(*b),
        ParamValue::Array(items) => Value::List(
            items
                .iter()
                .map(|item| to_value(item, name))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn to_cell(value: Value, column: &str) -> Result<Cell, WarehouseError> {
    let unsupported = |type_name: &str| WarehouseError::UnsupportedType {
        column: column.to_string(),
        type_name: type_name.to_string(),
    };
    Ok(match value {
        Value::Null => Cell::Null,
        Value::Boolean(b) => Cell::Bool(b),
        Value::TinyInt(i) => Cell::Integer(i.into()),
        Value::SmallInt(i) => Cell::Integer(i.into()),
        Value::Int(i) => Cell::Integer(i.into()),
        Value::BigInt(i) => Cell::Integer(i),
        Value::UTinyInt(i) => Cell::Integer(i.into()),
        Value::USmallInt(i) => Cell::Integer(i.into()),
        Value::UInt(i) => Cell::Integer(i.into()),
        Value::UBigInt(i) => i64::try_from(i).map_or(
            Cell::Decimal {
                value: i.into(),
                scale: 0,
            },
            Cell::Integer,
        ),
        Value::HugeInt(i) => {
            i64::try_from(i).map_or(Cell::Decimal { value: i, scale: 0 }, Cell::Integer)
        }
        Value::Float(f) => Cell::Float(f.into()),
        Value::Double(f) => Cell::Float(f),
        Value::Decimal(d) => Cell::Decimal {
            value: d.value(),
            scale: d.scale(),
        },
        Value::Date32(days) => Cell::Date(
            NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
                .ok_or_else(|| unsupported("DATE out of range"))?,
        ),
        Value::Timestamp(unit, amount) => {
            let micros = timestamp_micros(unit, amount);
            Cell::Timestamp(
                DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| unsupported("TIMESTAMP out of range"))?
                    .naive_utc(),
            )
        }
        Value::Text(s) | Value::Enum(s) => Cell::Text(s),
        other => {
            return Err(unsupported(
                &format!("{other:?}").chars().take(40).collect::<String>(),
            ));
        }
    })
}

/// A DuckDB timestamp in any unit as microseconds since the epoch.
pub fn timestamp_micros(unit: TimeUnit, amount: i64) -> i64 {
    match unit {
        TimeUnit::Second => amount.saturating_mul(1_000_000),
        TimeUnit::Millisecond => amount.saturating_mul(1_000),
        TimeUnit::Microsecond => amount,
        TimeUnit::Nanosecond => amount / 1_000,
    }
}

/// Turns a DuckDB error into a query error, keeping the SQL line it points at.
fn query_error(error: duckdb::Error) -> WarehouseError {
    let message = error.to_string();
    let line = message.find("LINE ").and_then(|at| {
        message[at + 5..]
            .split(':')
            .next()
            .and_then(|n| n.trim().parse::<usize>().ok())
    });
    let mut first = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&message)
        .trim()
        .to_string();
    if first.contains("exists in the") && first.contains("extension") {
        first.push_str(
            " kpibot never downloads or loads DuckDB extensions; for today's date use @run_date",
        );
    }
    WarehouseError::Query {
        message: first,
        line,
        column: None,
    }
}

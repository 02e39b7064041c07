//! The ledger in a SQLite file (WAL): the default, for one host. Carries the statements
//! of [`super::Ledger`] to SQLite on the blocking pool (a slow disk or another process's
//! lock never stalls the async workers that acknowledge Slack), and runs the shared
//! migrations through refinery.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use refinery_core::Migration;
use refinery_core::traits::sync::{Migrate, Query, Transaction};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

use super::{Cell, LedgerError, Param};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// How long to wait between tries to switch a new file to WAL while another process
/// holds it (SQLite answers "locked" at once there instead of waiting).
const WAL_SWITCH_RETRY_MS: u64 = 10;

pub struct SqliteLedger {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens (creating if needed) the ledger file in WAL mode, its schema up to date.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let fail = |source: rusqlite::Error| {
            LedgerError::Open {
            ledger: path.display().to_string(),
            detail: source.to_string(),
            advice: "Check that the directory exists and is writable by kpibot, and that the file is a SQLite database (KPIBOT__LEDGER__PATH).".into(),
        }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut connection = Connection::open(path).map_err(fail)?;
        connection
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(fail)?;
        use_wal(&connection).map_err(fail)?;
        migrate(&mut connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing ledger file read-only, its schema as it is: for pages that show
    /// the ledger and must never change it (SQLite itself refuses any write).
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        use rusqlite::OpenFlags;
        let fail = |source: rusqlite::Error| {
            LedgerError::Open {
            ledger: path.display().to_string(),
            detail: source.to_string(),
            advice: "Check that the file is a SQLite database kpibot wrote and is readable (KPIBOT__LEDGER__PATH).".into(),
        }
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(fail)?;
        connection
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(fail)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_path_buf(),
        })
    }

    pub fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    /// Runs `work` on the connection in the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&connection)
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("the ledger's thread stopped: {e}")))?
    }

    pub(crate) async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, LedgerError> {
        let (sql, params) = (sql.to_string(), params.to_vec());
        self.with(move |conn| {
            let changed =
                conn.execute(&sql, rusqlite::params_from_iter(params.iter().map(value)))?;
            Ok(changed as u64)
        })
        .await
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Vec<Cell>>, LedgerError> {
        let (sql, params) = (sql.to_string(), params.to_vec());
        self.with(move |conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let width = statement.column_count();
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(value)))?;
            let mut cells = Vec::new();
            while let Some(row) = rows.next()? {
                let mut line = Vec::with_capacity(width);
                for index in 0..width {
                    line.push(match row.get_ref(index)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(i) => Cell::Int(i),
                        ValueRef::Real(r) => Cell::Int(r as i64),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Cell::Text(String::from_utf8_lossy(t).into_owned())
                        }
                    });
                }
                cells.push(line);
            }
            Ok(cells)
        })
        .await
    }

    pub async fn check_writable(&self) -> Result<(), LedgerError> {
        self.with(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
        .await
    }
}

/// Switches the file to WAL. Several processes opening a new file at once each ask; the
/// switch needs the file to itself, and SQLite refuses it at once rather than waiting, so
/// this waits as long as any other writer would.
fn use_wal(connection: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = std::time::Instant::now() + Duration::from_millis(BUSY_TIMEOUT_MS);
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if matches!(
                    error.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(WAL_SWITCH_RETRY_MS));
            }
            other => return other,
        }
    }
}

/// Brings the schema up to date as one writer: the whole run (reading what is applied,
/// applying the rest, recording them) is one IMMEDIATE transaction, so a process starting
/// beside another waits for it and then finds everything applied, instead of both
/// reading "V2 missing" and both adding V2's column.
fn migrate(connection: &mut Connection) -> Result<(), LedgerError> {
    let failed = |error: &dyn std::fmt::Display| LedgerError::Migration(error.to_string());
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| failed(&e))?;
    super::migrations(true)
        .run(&mut Migrations(&transaction))
        .map_err(|e| failed(&e))?;
    transaction.commit().map_err(|e| failed(&e))
}

fn value(param: &Param) -> Value {
    match param {
        Param::Text(text) => text.clone().map_or(Value::Null, Value::Text),
        Param::Int(int) => int.map_or(Value::Null, |i| Value::Integer(i.into())),
        Param::BigInt(int) => int.map_or(Value::Null, Value::Integer),
    }
}

/// refinery's view of a SQLite connection, inside the one transaction [`migrate`] holds.
/// refinery's own rusqlite driver pins an older rusqlite than ours, and would open a
/// transaction per migration.
struct Migrations<'c>(&'c Connection);

impl Transaction for Migrations<'_> {
    type Error = rusqlite::Error;

    fn execute<'a, T: Iterator<Item = &'a str>>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut count = 0;
        for query in queries {
            self.0.execute_batch(query)?;
            count += 1;
        }
        Ok(count)
    }
}

impl Query<Vec<Migration>> for Migrations<'_> {
    fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let mut statement = self.0.prepare(query)?;
        let mut rows = statement.query([])?;
        let mut applied = Vec::new();
        while let Some(row) = rows.next()? {
            let version: i32 = row.get(0)?;
            let name: String = row.get(1)?;
            let applied_on: String = row.get(2)?;
            let checksum: String = row.get(3)?;
            let applied_on = time::OffsetDateTime::parse(
                &applied_on,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let checksum = checksum
                .parse::<u64>()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            applied.push(Migration::applied(version, name, applied_on, checksum));
        }
        Ok(applied)
    }
}

impl Migrate for Migrations<'_> {}

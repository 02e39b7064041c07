//! The ledger in a SQLite file (WAL): the default, for one host. Carries the statements
//! of [`super::Ledger`] to SQLite and runs the shared migrations through refinery.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use refinery_core::Migration;
use refinery_core::traits::sync::{Migrate, Query, Transaction};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

use super::{Cell, LedgerError, Param};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Two processes opening a new file at once can both try to record a migration; the
/// loser sees it applied on the next try.
const MIGRATION_ATTEMPTS: u32 = 3;

pub struct SqliteLedger {
    connection: Mutex<Connection>,
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
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match super::migrations().run(&mut Migrations(&mut connection)) {
                Ok(_) => break,
                Err(_) if attempt < MIGRATION_ATTEMPTS => continue,
                Err(error) => return Err(LedgerError::Migration(error.to_string())),
            }
        }
        Ok(Self {
            connection: Mutex::new(connection),
            path: path.to_path_buf(),
        })
    }

    pub fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&connection)
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, LedgerError> {
        self.with(|conn| {
            let changed =
                conn.execute(sql, rusqlite::params_from_iter(params.iter().map(value)))?;
            Ok(changed as u64)
        })
    }

    pub(crate) fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, LedgerError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
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
    }

    pub fn check_writable(&self) -> Result<(), LedgerError> {
        self.with(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
    }
}

fn value(param: &Param) -> Value {
    match param {
        Param::Text(text) => text.clone().map_or(Value::Null, Value::Text),
        Param::Int(int) => int.map_or(Value::Null, |i| Value::Integer(i.into())),
        Param::BigInt(int) => int.map_or(Value::Null, Value::Integer),
    }
}

/// refinery's view of a SQLite connection. refinery's own rusqlite driver pins an older
/// rusqlite than ours; this is that driver, on this crate's version.
struct Migrations<'c>(&'c mut Connection);

impl Transaction for Migrations<'_> {
    type Error = rusqlite::Error;

    fn execute<'a, T: Iterator<Item = &'a str>>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let transaction = self
            .0
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut count = 0;
        for query in queries {
            transaction.execute_batch(query)?;
            count += 1;
        }
        transaction.commit()?;
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

//! The embedded demo mart: builds `assets/demo_mart.sql` into a DuckDB file, deterministic
//! for a given last day, so a newcomer sees real charts without any account.

use std::path::Path;

use chrono::NaiveDate;
use duckdb::Connection;

/// The demo mart's definition; the data is a pure function of its last day.
pub const DEMO_MART_SQL: &str = include_str!("../../assets/demo_mart.sql");

/// The `mart_version` [`DEMO_MART_SQL`] writes; a file built by an older definition is
/// rebuilt (version 2 added the Fukuoka outage the example alerts catch, version 3 the
/// targets table `mart.kpi_targets`).
pub const DEMO_MART_VERSION: i64 = 3;

/// The demo's incident (`kp_fukuoka_outage` in [`DEMO_MART_SQL`]): Fukuoka's active
/// users fall to about a third from this many days before the mart's last day to that many.
pub const INCIDENT_DAYS_BEFORE_END: (u64, u64) = (24, 19);

/// The incident's first and last day for a mart whose last day is `data_through`.
pub fn incident_days(data_through: NaiveDate) -> (NaiveDate, NaiveDate) {
    let (from, to) = INCIDENT_DAYS_BEFORE_END;
    (
        data_through - chrono::Days::new(from),
        data_through - chrono::Days::new(to),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot build the demo mart at {path}: {message}")]
    Build { path: String, message: String },
}

/// What [`ensure_demo_mart`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MartStatus {
    /// The file already held data through the requested day.
    UpToDate,
    /// The file was (re)built.
    Built,
}

/// Makes sure `path` holds the demo mart with data through `data_through` (yesterday in
/// the bot's timezone), building it if it is absent or older. The new file is built beside
/// the old one and renamed into place, so a reader never sees half a mart.
pub fn ensure_demo_mart(path: &Path, data_through: NaiveDate) -> Result<MartStatus, DemoError> {
    if built_through(path) >= Some(data_through) {
        return Ok(MartStatus::UpToDate);
    }
    let fail = |message: String| DemoError::Build {
        path: path.display().to_string(),
        message,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    let staging = path.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let result = (|| {
        let conn = Connection::open(&staging).map_err(|e| fail(e.to_string()))?;
        conn.execute_batch(&format!(
            "SET VARIABLE mart_end = DATE '{}';\n{DEMO_MART_SQL}",
            data_through.format("%Y-%m-%d")
        ))
        .map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("CHECKPOINT;")
            .map_err(|e| fail(e.to_string()))?;
        drop(conn);
        std::fs::rename(&staging, path).map_err(|e| fail(e.to_string()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
        let _ = std::fs::remove_file(staging.with_extension("wal"));
    }
    result.map(|()| MartStatus::Built)
}

/// The last day of data in an existing demo mart file.
pub fn built_through(path: &Path) -> Option<NaiveDate> {
    if !path.exists() {
        return None;
    }
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .ok()?;
    let conn = Connection::open_with_flags(path, config).ok()?;
    data_through(&conn)
}

/// The last day of data the demo mart on `conn` records (`None` if it is not the demo, or
/// an older definition of it).
pub fn data_through(conn: &Connection) -> Option<NaiveDate> {
    let (text, version): (String, i64) = conn
        .query_row(
            "SELECT strftime(data_through, '%Y-%m-%d'), mart_version FROM mart.kpibot_demo_build",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .ok()?;
    if version < DEMO_MART_VERSION {
        return None;
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()
}

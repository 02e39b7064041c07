//! The embedded DuckDB warehouse: values are bound (never spliced), types and NULLs survive,
//! runaway queries are cancelled, and errors keep the SQL line.

use std::time::Duration;

use chrono::NaiveDate;
use kpibot::warehouse::duckdb::DuckDbWarehouse;
use kpibot::warehouse::{
    Cell, ColumnType, ParamValue, Params, QueryJob, Warehouse, WarehouseError,
};

const GENEROUS_TIMEOUT: Duration = Duration::from_secs(120);

fn warehouse_with(sql: &str) -> (tempfile::TempDir, DuckDbWarehouse) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let conn = duckdb::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let warehouse = DuckDbWarehouse::open(&path).unwrap();
    (dir, warehouse)
}

#[tokio::test]
async fn values_are_bound_not_spliced() {
    let (_dir, w) = warehouse_with(
        "CREATE TABLE people(name VARCHAR); INSERT INTO people VALUES ('O''Reilly'), ('Smith');",
    );
    let params = Params::from([("who".to_string(), ParamValue::Text("O'Reilly".into()))]);
    let table = w
        .query(
            "SELECT name FROM people WHERE name = @who",
            &params,
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert_eq!(table.rows, vec![vec![Cell::Text("O'Reilly".into())]]);

    let hostile = Params::from([("who".to_string(), ParamValue::Text("x' OR '1'='1".into()))]);
    let table = w
        .query(
            "SELECT name FROM people WHERE name = @who",
            &hostile,
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert!(
        table.rows.is_empty(),
        "an injection attempt is just a value that matches nothing"
    );
}

#[tokio::test]
async fn types_and_nulls_come_back_faithfully() {
    let (_dir, w) = warehouse_with("SELECT 1");
    let params = Params::from([(
        "d".to_string(),
        ParamValue::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
    )]);
    let table = w
        .query(
            "SELECT @d AS day, @d + 1 AS next_day, TIMESTAMP '2026-01-02 03:04:05' AS ts, 42::BIGINT AS n,
                    SUM(x) AS huge, 1.5::DOUBLE AS f, 12.34::DECIMAL(10,2) AS money, '東京都' AS pref,
                    true AS flag, NULL::INTEGER AS missing
             FROM (SELECT 1 AS x)",
            &params,
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    let types: Vec<ColumnType> = table.columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        vec![
            ColumnType::Date,
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::Integer,
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Decimal,
            ColumnType::Text,
            ColumnType::Bool,
            ColumnType::Integer
        ]
    );
    let row = &table.rows[0];
    assert_eq!(
        row[0],
        Cell::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
    );
    assert_eq!(
        row[1],
        Cell::Date(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
    );
    assert_eq!(row[2].to_string(), "2026-01-02T03:04:05");
    assert_eq!(row[3], Cell::Integer(42));
    assert_eq!(row[4], Cell::Integer(1));
    assert_eq!(row[5], Cell::Float(1.5));
    assert_eq!(row[6].to_string(), "12.34");
    assert_eq!(row[7], Cell::Text("東京都".into()));
    assert_eq!(row[8], Cell::Bool(true));
    assert_eq!(row[9], Cell::Null);
}

#[tokio::test]
async fn empty_results_keep_their_columns() {
    let (_dir, w) = warehouse_with("CREATE TABLE t(day DATE, users INTEGER);");
    let table = w
        .query(
            "SELECT day, users FROM t",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert!(table.rows.is_empty());
    assert_eq!(table.column_names(), vec!["day", "users"]);
}

#[tokio::test]
async fn a_runaway_query_is_cancelled_at_the_timeout() {
    let (_dir, w) = warehouse_with("SELECT 1");
    let err = w
        .query(
            "SELECT COUNT(*) FROM range(1000000000000) a WHERE hash(a.range) % 7 = 3",
            &Params::new(),
            &QueryJob::new(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, WarehouseError::Timeout(_)), "{err}");
    // The connection is still usable afterwards.
    let table = w
        .query(
            "SELECT 1 AS one",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert_eq!(table.rows[0][0], Cell::Integer(1));
}

/// A timeout that passes before DuckDB has even started the query (DuckDB clears an
/// interrupt as each statement begins) must still stop it: otherwise it runs for ever, keeps
/// a core busy, and a runtime shutting down waits on it.
#[test]
fn a_query_timed_out_before_it_starts_still_stops() {
    let (_dir, w) = warehouse_with("SELECT 1");
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        for _ in 0..3 {
            let err = runtime
                .block_on(w.query(
                    "SELECT COUNT(*) FROM range(1000000000000) a WHERE hash(a.range) % 7 = 3",
                    &Params::new(),
                    &QueryJob::new(Duration::ZERO),
                ))
                .unwrap_err();
            assert!(matches!(err, WarehouseError::Timeout(_)), "{err}");
        }
        // Dropping a runtime waits for its blocking threads: the queries' among them.
        drop(runtime);
        done_tx.send(()).unwrap();
    });
    assert!(
        done.recv_timeout(GENEROUS_TIMEOUT).is_ok(),
        "a query whose timeout passed before it started kept running"
    );
}

#[tokio::test]
async fn query_errors_keep_the_sql_line() {
    let (_dir, w) = warehouse_with("CREATE TABLE t(day DATE);");
    let err = w
        .query(
            "SELECT day\nFROM t\nWHERE dya > @start_date",
            &Params::from([(
                "start_date".to_string(),
                ParamValue::Date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            )]),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap_err();
    match err {
        WarehouseError::Query { message, line, .. } => {
            assert!(message.contains("dya"), "{message}");
            assert_eq!(line, Some(3));
        }
        other => panic!("expected a query error, got {other}"),
    }
}

#[tokio::test]
async fn the_mart_is_read_only_to_reports() {
    let (_dir, w) = warehouse_with("CREATE TABLE t(x INTEGER);");
    let err = w
        .query(
            "INSERT INTO t VALUES (1)",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("read-only")
            || err.to_string().to_lowercase().contains("read only"),
        "{err}"
    );
}

#[tokio::test]
async fn dry_run_reports_columns_without_reading_rows() {
    let (_dir, w) = warehouse_with("CREATE TABLE t AS SELECT range AS n FROM range(1000);");
    let estimate = w
        .dry_run(
            "SELECT n, n * 2 AS doubled FROM t ORDER BY n;",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    let names: Vec<&str> = estimate.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["n", "doubled"]);
}

#[tokio::test]
async fn a_refreshed_demo_mart_is_seen_after_reopening_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.duckdb");
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    kpibot::warehouse::demo::ensure_demo_mart(&path, day(24)).unwrap();
    let warehouse = DuckDbWarehouse::open(&path).unwrap();
    assert_eq!(warehouse.demo_data_through(), Some(day(24)));
    // The next day: the mart is rebuilt beside the open one and renamed over it.
    kpibot::warehouse::demo::ensure_demo_mart(&path, day(25)).unwrap();
    assert_eq!(
        warehouse.demo_data_through(),
        Some(day(24)),
        "the open connection still reads the old file"
    );
    warehouse.reopen().unwrap();
    assert_eq!(warehouse.demo_data_through(), Some(day(25)));
    let table = warehouse
        .query(
            "SELECT MAX(activity_date) AS newest FROM mart.daily_active_users",
            &Params::new(),
            &QueryJob::new(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(table.rows[0][0], Cell::Date(day(25)));
}

#[tokio::test]
async fn report_sql_cannot_reach_the_host() {
    let (dir, w) = warehouse_with("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "xoxb-the-bot-token").unwrap();
    let secret = secret.display().to_string();
    let out = dir.path().join("copied.csv").display().to_string();
    for sql in [
        format!("SELECT read_text('{secret}') AS x"),
        "SELECT content FROM read_text('/proc/self/environ')".to_string(),
        format!("SELECT * FROM read_csv('{secret}')"),
        format!("SELECT * FROM glob('{}/*')", dir.path().display()),
        format!("ATTACH '{}/other.duckdb' AS other", dir.path().display()),
        format!("COPY (SELECT * FROM t) TO '{out}'"),
        "INSTALL httpfs".to_string(),
        "LOAD icu".to_string(),
        "SET enable_external_access = true".to_string(),
    ] {
        let result = w
            .query(&sql, &Params::new(), &QueryJob::new(GENEROUS_TIMEOUT))
            .await;
        match result {
            Err(WarehouseError::Query { .. }) | Err(WarehouseError::Unavailable(_)) => {}
            Ok(table) => panic!("`{sql}` ran and returned {:?}", table.rows),
            Err(other) => panic!("`{sql}` failed oddly: {other}"),
        }
        assert!(
            !std::path::Path::new(&out).exists(),
            "`{sql}` wrote a file on the host"
        );
    }
    // The warehouse still answers ordinary queries after all that.
    let table = w
        .query(
            "SELECT x FROM t",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert_eq!(table.rows.len(), 1);
}

#[tokio::test]
async fn extracts_named_in_the_settings_are_tables_but_their_files_are_not_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    duckdb::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER);")
        .unwrap();
    let csv = dir.path().join("targets.csv");
    std::fs::write(&csv, "region,target\nkanto,120\nkansai,80\n").unwrap();
    let extracts = std::collections::BTreeMap::from([("targets".to_string(), csv.clone())]);
    let w = DuckDbWarehouse::open_with_extracts(&path, &extracts).unwrap();
    let table = w
        .query(
            "SELECT region, target FROM extracts.targets ORDER BY target DESC",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert_eq!(table.rows.len(), 2);
    assert_eq!(table.rows[0][0], Cell::Text("kanto".into()));
    let direct = w
        .query(
            &format!("SELECT * FROM read_csv('{}')", csv.display()),
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await;
    assert!(direct.is_err(), "the file itself is readable: {direct:?}");
}

/// Extensions are neither installed nor loaded behind a report's back: the settings say
/// so, a function that lives in an extension (ICU's `current_date`) is refused with words
/// pointing at `@run_date`, and what core DuckDB does itself still answers.
#[tokio::test]
async fn the_embedded_warehouse_never_downloads_an_extension() {
    let (_dir, w) = warehouse_with("CREATE TABLE t(x INTEGER);");
    let run = |sql: String| {
        let w = &w;
        async move {
            w.query(&sql, &Params::new(), &QueryJob::new(GENEROUS_TIMEOUT))
                .await
        }
    };
    for (setting, expected) in [
        ("autoload_known_extensions", false),
        ("autoinstall_known_extensions", false),
        ("allow_community_extensions", false),
        ("enable_external_access", false),
        ("lock_configuration", true),
    ] {
        let table = run(format!("SELECT current_setting('{setting}') AS v"))
            .await
            .unwrap();
        assert_eq!(table.rows, vec![vec![Cell::Bool(expected)]], "{setting}");
    }

    // `current_date` is ICU's: not loaded, so refused, and the reply says what to write.
    match run("SELECT CURRENT_DATE AS d".into()).await {
        Err(WarehouseError::Query { message, .. }) => {
            assert!(message.contains("icu extension"), "{message}");
            assert!(
                message.contains("never downloads") && message.contains("@run_date"),
                "{message}"
            );
            assert!(!message.contains("http"), "{message}");
        }
        other => panic!("`CURRENT_DATE` should be refused (ICU is not loaded): {other:?}"),
    }

    // `now()` is core DuckDB: the current time, as a timestamp.
    let before = chrono::Utc::now().naive_utc();
    let table = run("SELECT now() AS t".into()).await.unwrap();
    let after = chrono::Utc::now().naive_utc();
    match &table.rows[..] {
        [row] => match &row[..] {
            [Cell::Timestamp(t)] => assert!(
                *t >= before - chrono::Duration::seconds(1) && *t <= after,
                "now() = {t}, not between {before} and {after}"
            ),
            other => panic!("now(): {other:?}"),
        },
        other => panic!("now(): {other:?}"),
    }

    // Without ICU a TIMESTAMPTZ is read in UTC: Tokyo's New Year midnight is still 2025.
    let table = run("SELECT strftime(TIMESTAMPTZ '2026-01-01 00:00:00+09', '%Y') AS y".into())
        .await
        .unwrap();
    assert_eq!(table.rows, vec![vec![Cell::Text("2025".into())]]);
}

#[tokio::test]
async fn each_query_runs_on_its_calling_thread_only() {
    // DuckDB's own worker threads would run at normal priority beside the async runtime;
    // with one thread per query, the work stays on the low-priority blocking thread.
    let (_dir, w) = warehouse_with("SELECT 1");
    let table = w
        .query(
            "SELECT current_setting('threads') AS threads",
            &Params::new(),
            &QueryJob::new(GENEROUS_TIMEOUT),
        )
        .await
        .unwrap();
    assert_eq!(table.rows, vec![vec![Cell::Integer(1)]]);
}

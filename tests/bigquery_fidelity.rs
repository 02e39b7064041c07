//! Is the fake BigQuery faithful? Google's official Python client (google-cloud-bigquery,
//! anonymous credentials, the fake's endpoint) reads the same queries as kpibot's Rust
//! client, and both must parse the same columns and values — types, NULLs, exact integers
//! and decimals, timestamps on every page, pages and polling included.
//!
//! Ignored by default (it needs the Python package); `.ci/run` installs the package and
//! runs it with `cargo test --test bigquery_fidelity -- --ignored`.

mod common;

use std::time::Duration;

use common::fake_bigquery::FakeBigQuery;
use kpibot::settings::BigQuerySettings;
use kpibot::warehouse::bigquery::BigQueryWarehouse;
use kpibot::warehouse::{Cell, ColumnType, ParamValue, Params, QueryJob, Warehouse};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    sql: &'static str,
    /// (name, BigQuery type, value or values)
    params: Vec<(&'static str, &'static str, Vec<&'static str>, bool)>,
    page_rows: usize,
    pending_polls: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "every parameter type",
            sql: "SELECT @d AS d, @ts AS ts, @i AS i, @f AS f, @n AS n, @s AS s, @b AS b,\n\
                  (SELECT COUNT(*) FROM (SELECT 'kanto' AS r UNION ALL SELECT 'kansai') AS x WHERE r IN UNNEST(@regions)) AS matched,\n\
                  CAST(NULL AS INT64) AS missing",
            params: vec![
                ("d", "DATE", vec!["2026-11-26"], false),
                ("ts", "TIMESTAMP", vec!["2026-11-25T23:59:58.123456"], false),
                ("i", "INT64", vec!["9007199254740993"], false),
                ("f", "FLOAT64", vec!["0.1"], false),
                ("n", "NUMERIC", vec!["12345.678901234"], false),
                ("s", "STRING", vec!["東京都 'quoted'"], false),
                ("b", "BOOL", vec!["true"], false),
                ("regions", "STRING", vec!["kanto", "tohoku"], true),
            ],
            page_rows: 100,
            pending_polls: 0,
        },
        Case {
            name: "pages of timestamps, decimals, big floats and NULLs",
            sql: "SELECT n, happened_at, CAST(n AS DECIMAL(10, 2)) + 0.25 AS amount,\n\
                  n * 1.5e10 AS big, IF(n % 2 = 0, NULL, n) AS odd, DATE '2026-11-01' + n AS day\n\
                  FROM mart.events ORDER BY n",
            params: vec![],
            page_rows: 2,
            pending_polls: 0,
        },
        Case {
            name: "a slow job",
            sql: "SELECT COUNT(*) AS events, MAX(happened_at) AS latest FROM mart.events",
            params: vec![],
            page_rows: 100,
            pending_polls: 2,
        },
    ]
}

fn param_value(ty: &str, text: &str) -> ParamValue {
    match ty {
        "DATE" => ParamValue::Date(text.parse().unwrap()),
        "TIMESTAMP" => ParamValue::Timestamp(text.parse().unwrap()),
        "INT64" => ParamValue::Integer(text.parse().unwrap()),
        "FLOAT64" => ParamValue::Float(text.parse().unwrap()),
        "NUMERIC" => ParamValue::Numeric(text.into()),
        "BOOL" => ParamValue::Bool(text == "true"),
        _ => ParamValue::Text(text.into()),
    }
}

/// A cell as the Python script prints values.
fn normalized(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => json!(b),
        Cell::Integer(i) => json!({"int": i.to_string()}),
        Cell::Float(f) => json!({"float": f}),
        Cell::Decimal { .. } => json!({"decimal": cell.to_string()}),
        Cell::Date(d) => json!({"date": d.to_string()}),
        Cell::Timestamp(t) => json!({"timestamp": t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()}),
        Cell::Text(s) => json!({"text": s}),
    }
}

/// Python's field type as kpibot's column type.
fn column_type(bigquery: &str) -> ColumnType {
    match bigquery {
        "INTEGER" | "INT64" => ColumnType::Integer,
        "FLOAT" | "FLOAT64" => ColumnType::Float,
        "NUMERIC" | "BIGNUMERIC" => ColumnType::Decimal,
        "BOOLEAN" | "BOOL" => ColumnType::Bool,
        "TIMESTAMP" | "DATETIME" => ColumnType::Timestamp,
        "DATE" => ColumnType::Date,
        _ => ColumnType::Text,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs google-cloud-bigquery from PyPI; .ci/run installs it and runs this test"]
async fn googles_python_client_parses_what_kpibot_parses() {
    let fake = FakeBigQuery::with_events().await;
    let warehouse = BigQueryWarehouse::open(&BigQuerySettings {
        project: "kpibot-test".into(),
        dataset: String::new(),
        location: None,
        endpoint: Some(fake.endpoint.clone()),
        credentials_file: None,
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let script = common::repo_path("tests/fidelity/bigquery_read.py");
    for case in cases() {
        fake.set_page_rows(case.page_rows);
        fake.set_pending_polls(case.pending_polls);
        let params: Params = case
            .params
            .iter()
            .map(|(name, ty, values, array)| {
                let value = if *array {
                    ParamValue::Array(values.iter().map(|v| param_value(ty, v)).collect())
                } else {
                    param_value(ty, values[0])
                };
                (name.to_string(), value)
            })
            .collect();
        let table = warehouse
            .query(case.sql, &params, &QueryJob::new(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));

        let case_file = scratch.path().join("case.json");
        let python_params: Vec<Value> = case
            .params
            .iter()
            .map(|(name, ty, values, array)| {
                if *array {
                    json!({"name": name, "type": ty, "values": values})
                } else {
                    json!({"name": name, "type": ty, "value": values[0]})
                }
            })
            .collect();
        std::fs::write(
            &case_file,
            json!({"sql": case.sql, "params": python_params, "page_size": case.page_rows})
                .to_string(),
        )
        .unwrap();
        let output = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(&fake.endpoint)
            .arg(&case_file)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}: the Python client failed:\n{}",
            case.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let python: Value = serde_json::from_slice(&output.stdout).unwrap();

        let python_columns: Vec<(String, ColumnType)> = python["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let (name, ty) = c.as_str().unwrap().split_once(':').unwrap();
                (name.to_string(), column_type(ty))
            })
            .collect();
        let rust_columns: Vec<(String, ColumnType)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty))
            .collect();
        assert_eq!(rust_columns, python_columns, "{}: columns", case.name);
        let rust_rows: Vec<Vec<Value>> = table
            .rows
            .iter()
            .map(|row| row.iter().map(normalized).collect())
            .collect();
        let python_rows: Vec<Vec<Value>> = serde_json::from_value(python["rows"].clone()).unwrap();
        assert!(!rust_rows.is_empty(), "{}: no rows", case.name);
        assert_eq!(rust_rows, python_rows, "{}: values", case.name);
    }
    // The pages really were pages.
    assert!(
        fake.calls_of("jobs.getQueryResults")
            .iter()
            .any(|c| c.query.contains_key("pageToken"))
    );
}

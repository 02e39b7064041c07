//! The BigQuery warehouse through the real gcp-bigquery-client against the local fake
//! BigQuery: typed parameters, pages, polling, timeouts, retries, cost caps and errors.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::fake_bigquery::{FakeBigQuery, Fault, MIN_BILLED_BYTES_PER_TABLE};
use kpibot::settings::BigQuerySettings;
use kpibot::warehouse::bigquery::BigQueryWarehouse;
use kpibot::warehouse::shared::SharedWarehouse;
use kpibot::warehouse::{
    Cell, ColumnType, ParamValue, Params, QueryJob, Trigger, Warehouse, WarehouseError,
};

const GENEROUS_TIMEOUT: Duration = Duration::from_secs(60);
const PROJECT: &str = "kpibot-test";

async fn warehouse_for(fake: &FakeBigQuery) -> BigQueryWarehouse {
    BigQueryWarehouse::open(&BigQuerySettings {
        project: PROJECT.into(),
        dataset: "mart".into(),
        location: Some(common::fake_bigquery::LOCATION.into()),
        endpoint: Some(fake.endpoint.clone()),
        credentials_file: None,
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap()
}

fn job() -> QueryJob {
    QueryJob::new(GENEROUS_TIMEOUT)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn every_parameter_type_round_trips_with_its_bigquery_type() {
    let fake = FakeBigQuery::start(None).await;
    let warehouse = warehouse_for(&fake).await;
    let at = date(2026, 11, 25)
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    let params = Params::from([
        ("d".to_string(), ParamValue::Date(date(2026, 11, 26))),
        ("ts".to_string(), ParamValue::Timestamp(at)),
        // Beyond 2^53: exact only if INT64 travels as a string both ways.
        ("i".to_string(), ParamValue::Integer(9_007_199_254_740_993)),
        ("f".to_string(), ParamValue::Float(0.1)),
        (
            "n".to_string(),
            ParamValue::Numeric("12345.678901234".into()),
        ),
        ("s".to_string(), ParamValue::Text("東京都 'quoted'".into())),
        ("b".to_string(), ParamValue::Bool(true)),
        (
            "regions".to_string(),
            ParamValue::Array(vec![
                ParamValue::Text("kanto".into()),
                ParamValue::Text("tohoku".into()),
            ]),
        ),
    ]);
    let table = warehouse
        .query(
            "SELECT @d AS d, @ts AS ts, @i AS i, @f AS f, @n AS n, @s AS s, @b AS b,\n\
             (SELECT COUNT(*) FROM (SELECT 'kanto' AS r UNION ALL SELECT 'kansai' UNION ALL SELECT 'tohoku') AS x\n\
              WHERE r IN UNNEST(@regions)) AS matched,\n\
             CAST(NULL AS INT64) AS missing",
            &params,
            &job().for_report("Round Trip", Trigger::Slash),
        )
        .await
        .unwrap();
    let types: Vec<ColumnType> = table.columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        vec![
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Decimal,
            ColumnType::Text,
            ColumnType::Bool,
            ColumnType::Integer,
            ColumnType::Integer,
        ]
    );
    assert_eq!(
        table.rows,
        vec![vec![
            Cell::Date(date(2026, 11, 26)),
            Cell::Timestamp(at),
            Cell::Integer(9_007_199_254_740_993),
            Cell::Float(0.1),
            Cell::Decimal {
                value: 12_345_678_901_234,
                scale: 9
            },
            Cell::Text("東京都 'quoted'".into()),
            Cell::Bool(true),
            Cell::Integer(2),
            Cell::Null,
        ]]
    );

    // What went over the wire: standard SQL, named typed parameters, labels, the cap.
    let call = &fake.calls_of("jobs.query")[0];
    let request = &call.body;
    assert_eq!(request["useLegacySql"], false);
    assert_eq!(request["parameterMode"], "NAMED");
    assert_eq!(request["maximumBytesBilled"], (1u64 << 30).to_string());
    assert_eq!(request["labels"]["kpibot_report"], "round_trip");
    assert_eq!(request["labels"]["kpibot_trigger"], "slash");
    assert_eq!(request["defaultDataset"]["datasetId"], "mart");
    assert_eq!(request["location"], common::fake_bigquery::LOCATION);
    let types = call.parameter_types();
    assert_eq!(
        types,
        [
            ("b", "BOOL"),
            ("d", "DATE"),
            ("f", "FLOAT64"),
            ("i", "INT64"),
            ("n", "NUMERIC"),
            ("regions", "ARRAY<STRING>"),
            ("s", "STRING"),
            ("ts", "TIMESTAMP"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .to_vec()
    );
}

#[tokio::test]
async fn every_page_is_read_and_timestamps_agree_across_page_formats() {
    let fake = FakeBigQuery::with_events().await;
    fake.set_page_rows(2);
    let warehouse = warehouse_for(&fake).await;
    let table = warehouse
        .query(
            "SELECT n, happened_at FROM mart.events ORDER BY n",
            &Params::new(),
            &job(),
        )
        .await
        .unwrap();
    let first = date(2026, 11, 1)
        .and_hms_micro_opt(0, 0, 0, 123_456)
        .unwrap();
    let expected: Vec<Vec<Cell>> = (1..=7)
        .map(|n| {
            vec![
                Cell::Integer(n),
                Cell::Timestamp(first + chrono::Duration::hours(n)),
            ]
        })
        .collect();
    assert_eq!(table.rows, expected);
    // 2 rows on the first answer, then three more pages; later pages cannot ask for
    // int64 timestamps, so they arrived as float seconds and still read the same.
    let pages = fake.calls_of("jobs.getQueryResults");
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| p.query.contains_key("pageToken")
        && !p.query.contains_key("formatOptions.useInt64Timestamp")));
}

#[tokio::test]
async fn an_empty_result_is_an_empty_table_not_a_panic() {
    let fake = FakeBigQuery::with_events().await;
    let warehouse = warehouse_for(&fake).await;
    let table = warehouse
        .query(
            "SELECT n, happened_at FROM mart.events WHERE n > @above",
            &Params::from([("above".to_string(), ParamValue::Integer(100))]),
            &job(),
        )
        .await
        .unwrap();
    assert_eq!(table.column_names(), vec!["n", "happened_at"]);
    assert!(table.rows.is_empty());
}

#[tokio::test]
async fn a_slow_job_is_polled_until_complete() {
    let fake = FakeBigQuery::with_events().await;
    fake.set_pending_polls(3);
    let warehouse = warehouse_for(&fake).await;
    let table = warehouse
        .query(
            "SELECT COUNT(*) AS events FROM mart.events",
            &Params::new(),
            &job(),
        )
        .await
        .unwrap();
    assert_eq!(table.rows, vec![vec![Cell::Integer(7)]]);
    // Three answers of "not yet", then the result.
    assert_eq!(fake.calls_of("jobs.getQueryResults").len(), 4);
}

/// A due minute's queries through the process's shared warehouse: 40 asked at once, 10
/// of them distinct, with the project's concurrency at 3 and its queue off. Each distinct
/// query runs once, never more than 3 run at once, none is refused, and every caller gets
/// its own query's answer.
#[tokio::test]
async fn a_burst_of_queries_runs_each_distinct_one_once_within_the_bound() {
    let fake = FakeBigQuery::with_events().await;
    fake.set_pending_polls(3);
    fake.set_max_running_jobs(3);
    let shared = std::sync::Arc::new(SharedWarehouse::new(
        std::sync::Arc::new(warehouse_for(&fake).await),
        3,
    ));
    let asks: Vec<_> = (0..40)
        .map(|i| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let sql = format!("SELECT COUNT(*) + {} AS events FROM mart.events", i % 10);
                shared.query(&sql, &Params::new(), &job()).await
            })
        })
        .collect();
    for (i, ask) in asks.into_iter().enumerate() {
        let table = ask.await.unwrap().unwrap();
        assert_eq!(table.rows, vec![vec![Cell::Integer(7 + (i % 10) as i64)]]);
    }
    assert_eq!(fake.calls_of("jobs.query").len(), 10);
    assert!(
        fake.most_running_jobs() <= 3,
        "{}",
        fake.most_running_jobs()
    );
}

#[tokio::test]
async fn a_job_past_its_timeout_is_cancelled_and_reported_as_a_timeout() {
    let fake = FakeBigQuery::with_events().await;
    fake.set_pending_polls(usize::MAX);
    let warehouse = warehouse_for(&fake).await;
    let error = warehouse
        .query(
            "SELECT COUNT(*) AS events FROM mart.events",
            &Params::new(),
            &QueryJob::new(Duration::from_millis(1500)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, WarehouseError::Timeout(_)), "{error:?}");
    assert_eq!(fake.cancelled_jobs(), 1);
}

#[tokio::test]
async fn transient_errors_are_retried_with_the_same_request_id() {
    let fake = FakeBigQuery::with_events().await;
    fake.fail_next(
        "jobs.query",
        [
            Fault::new(500, "backendError", "Backend error. Please try again."),
            Fault::new(403, "rateLimitExceeded", "Exceeded rate limits: too many api requests per user per method for this user_method."),
        ],
    );
    fake.fail_next(
        "jobs.getQueryResults",
        [Fault::new(
            503,
            "backendError",
            "The service is currently unavailable.",
        )],
    );
    fake.set_page_rows(4);
    let warehouse = warehouse_for(&fake).await;
    let table = warehouse
        .query(
            "SELECT n FROM mart.events ORDER BY n",
            &Params::new(),
            &job(),
        )
        .await
        .unwrap();
    assert_eq!(table.rows.len(), 7);
    let attempts = fake.calls_of("jobs.query");
    assert_eq!(attempts.len(), 3);
    let ids: Vec<&serde_json::Value> = attempts.iter().map(|c| &c.body["requestId"]).collect();
    assert!(ids[0].is_string() && ids.iter().all(|id| *id == ids[0]));
    assert_eq!(fake.calls_of("jobs.getQueryResults").len(), 2);
}

#[tokio::test]
async fn permanent_errors_are_not_retried_and_say_what_to_do() {
    let fake = FakeBigQuery::with_events().await;
    fake.fail_next(
        "jobs.query",
        [Fault::new(
            403,
            "accessDenied",
            "Access Denied: Project kpibot-test: User does not have bigquery.jobs.create permission in project kpibot-test.",
        )],
    );
    let warehouse = warehouse_for(&fake).await;
    let error = warehouse
        .query("SELECT 1 AS one", &Params::new(), &job())
        .await
        .unwrap_err();
    assert_eq!(fake.calls_of("jobs.query").len(), 1);
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains("bigquery.jobs.create"), "{text}");
    assert!(text.contains("roles/bigquery.jobUser"), "{text}");

    let error = warehouse
        .query(
            "SELECT n\nFROM mart.events\nWHERE n >\nGROUP BY n",
            &Params::new(),
            &job(),
        )
        .await
        .unwrap_err();
    assert_eq!(fake.calls_of("jobs.query").len(), 2);
    match error {
        WarehouseError::Query {
            message,
            line,
            column,
        } => {
            assert!(message.starts_with("Syntax error"), "{message}");
            assert_eq!((line, column), (Some(4), Some(1)));
        }
        other => panic!("expected a query error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_bytes_billed_cap_refuses_a_big_scan() {
    let fake = FakeBigQuery::with_events().await;
    // 7 rows × 2 columns × 1 MiB per cell = 14 MiB processed.
    fake.set_bytes_per_cell(1024 * 1024);
    let warehouse = warehouse_for(&fake).await;
    let error = warehouse
        .query(
            "SELECT n FROM mart.events",
            &Params::new(),
            &job().with_maximum_bytes_billed(Some(MIN_BILLED_BYTES_PER_TABLE)),
        )
        .await
        .unwrap_err();
    match &error {
        WarehouseError::Refused { reason, advice, .. } => {
            assert_eq!(reason, "bytesBilledLimitExceeded");
            assert!(advice.contains("maximum_bytes_billed"), "{advice}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(fake.calls_of("jobs.query").len(), 1);
    let estimate = warehouse
        .dry_run("SELECT n FROM mart.events", &Params::new(), &job())
        .await
        .unwrap();
    assert_eq!(estimate.bytes_processed, Some(14 * 1024 * 1024));
    assert_eq!(estimate.columns[0].name, "n");
    assert_eq!(fake.calls_of("jobs.query")[1].body["dryRun"], true);
}

#[tokio::test]
async fn nested_and_repeated_columns_are_refused_by_name() {
    let fake = FakeBigQuery::start(None).await;
    let warehouse = warehouse_for(&fake).await;
    for (sql, column) in [
        ("SELECT 1 AS n, [1, 2] AS tags", "tags"),
        ("SELECT {'a': 1} AS detail", "detail"),
    ] {
        match warehouse.query(sql, &Params::new(), &job()).await {
            Err(WarehouseError::UnsupportedType {
                column: named,
                type_name,
            }) => {
                assert_eq!(named, column);
                assert!(
                    type_name.contains("UNNEST") || type_name.contains("fields"),
                    "{type_name}"
                );
            }
            other => panic!("expected an unsupported column for {sql}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_service_account_key_file_signs_in_and_every_call_carries_its_token() {
    let fake = FakeBigQuery::with_events().await;
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::read_to_string(common::repo_path(
        "tests/fixtures/test-only-service-account-key.pem",
    ))
    .unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-only",
            "private_key": key,
            "client_email": "kpibot@kpibot-test.iam.gserviceaccount.com",
            "client_id": "1",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{}/token", fake.endpoint),
        })
        .to_string(),
    )
    .unwrap();
    let warehouse = BigQueryWarehouse::open(&BigQuerySettings {
        project: PROJECT.into(),
        dataset: String::new(),
        location: None,
        endpoint: Some(fake.endpoint.clone()),
        credentials_file: Some(key_file),
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap();
    fake.set_page_rows(3);
    let table = warehouse
        .query("SELECT n FROM mart.events", &Params::new(), &job())
        .await
        .unwrap();
    assert_eq!(table.rows.len(), 7);
    // One signed JWT grant for the service account, asking for BigQuery…
    let grants = fake.calls_of("oauth.token");
    assert_eq!(grants.len(), 1);
    let assertion = grants[0].body["assertion"].as_str().unwrap();
    let claims = assertion.split('.').nth(1).unwrap().trim_end_matches('=');
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "kpibot@kpibot-test.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/bigquery");
    // …and its token on every BigQuery call, pages included.
    let calls: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method.starts_with("jobs."))
        .collect();
    assert_eq!(calls.len(), 3);
    let expected = format!("Bearer {}", common::fake_bigquery::ACCESS_TOKEN);
    assert!(
        calls
            .iter()
            .all(|c| c.authorization.as_deref() == Some(expected.as_str()))
    );
}

#[tokio::test]
async fn an_emulator_endpoint_gets_no_credentials() {
    let fake = FakeBigQuery::with_events().await;
    let warehouse = warehouse_for(&fake).await;
    warehouse
        .query("SELECT 1 AS one", &Params::new(), &job())
        .await
        .unwrap();
    let authorization = fake.calls_of("jobs.query")[0].authorization.clone();
    assert!(
        authorization
            .as_deref()
            .is_none_or(|a| a.trim() == "Bearer"),
        "{authorization:?}"
    );
    assert!(fake.calls_of("oauth.token").is_empty());
}

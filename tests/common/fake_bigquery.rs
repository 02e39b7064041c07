//! A local BigQuery REST API for the tests: axum on 127.0.0.1, running the SQL on DuckDB
//! and answering in BigQuery's wire format — schema with BigQuery type names, rows as
//! `f`/`v` with every value a string, `pageToken` pages, `jobComplete: false` while a job
//! is "running", `totalBytesProcessed` for dry runs, `maximumBytesBilled` enforced with
//! BigQuery's 10 MiB minimum per table, and BigQuery's error bodies. Faults (5xx,
//! `rateLimitExceeded`, `accessDenied`, …) are injected per method on request.
//!
//! It serves what both kpibot's client and Google's Python client call: `jobs.query`,
//! `jobs.getQueryResults`, `jobs.get` and `jobs.cancel`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use duckdb::arrow::datatypes::DataType;
use duckdb::types::Value;
use regex::Regex;
use serde_json::{Value as Json, json};

/// BigQuery bills at least this much for each table a query reads.
pub const MIN_BILLED_BYTES_PER_TABLE: u64 = 10 * 1024 * 1024;
/// The location jobs run in, as BigQuery reports it.
pub const LOCATION: &str = "asia-northeast1";

/// A failure to answer with instead of doing the work.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub reason: String,
    pub message: String,
}

impl Fault {
    pub fn new(status: u16, reason: &str, message: &str) -> Self {
        Self {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The access token the fake's OAuth token endpoint (`/token`) hands out.
pub const ACCESS_TOKEN: &str = "ya29.fake-access-token";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `jobs.query`, `jobs.getQueryResults`, `jobs.get` or `jobs.cancel`.
    pub method: String,
    pub body: Json,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
}

impl Call {
    /// The query parameters the request sent, in its order, as (name, type); an array is
    /// spelled `ARRAY<ELEMENT>`.
    pub fn parameter_types(&self) -> Vec<(String, String)> {
        self.body["queryParameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let ty = &p["parameterType"];
                let element = ty["arrayType"]["type"]
                    .as_str()
                    .map_or(String::new(), |e| format!("<{e}>"));
                (
                    p["name"].as_str().unwrap_or_default().to_string(),
                    format!("{}{element}", ty["type"].as_str().unwrap_or_default()),
                )
            })
            .collect()
    }
}

struct StoredJob {
    sql: String,
    schema: Json,
    columns: Vec<ColumnKind>,
    rows: Vec<Vec<Value>>,
    bytes_processed: u64,
    /// Polls still to answer with `jobComplete: false`.
    pending_polls: usize,
    cancelled: bool,
}

struct Inner {
    db: duckdb::Connection,
    jobs: HashMap<String, StoredJob>,
    calls: Vec<Call>,
    faults: HashMap<String, VecDeque<Fault>>,
    next_job: u64,
    /// Rows per page when the request does not say.
    page_rows: usize,
    /// Polls each new job answers with `jobComplete: false` before it is done.
    pending_polls: usize,
    /// Bytes one cell of a table counts for when estimating a scan.
    bytes_per_cell: u64,
    /// Jobs that may run at once (the project's concurrency with its queue turned off);
    /// past it a new query is refused with ADMISSION_DENIED. `None`: no cap.
    max_running_jobs: Option<usize>,
    /// The most jobs that were running at once (not yet complete, not cancelled).
    most_running_jobs: usize,
    /// Queries refused with ADMISSION_DENIED so far.
    admission_denied: usize,
}

#[derive(Clone)]
pub struct FakeBigQuery {
    /// The endpoint to configure (`KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT`).
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeBigQuery {
    /// Starts the fake over the DuckDB database at `database` (read-only), or over an empty
    /// in-memory database.
    pub async fn start(database: Option<&std::path::Path>) -> Self {
        let db = match database {
            Some(path) => duckdb::Connection::open_with_flags(
                path,
                duckdb::Config::default()
                    .access_mode(duckdb::AccessMode::ReadOnly)
                    .unwrap(),
            )
            .unwrap(),
            None => duckdb::Connection::open_in_memory().unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            db,
            jobs: HashMap::new(),
            calls: Vec::new(),
            faults: HashMap::new(),
            next_job: 1,
            page_rows: 100_000,
            pending_polls: 0,
            max_running_jobs: None,
            admission_denied: 0,
            most_running_jobs: 0,
            bytes_per_cell: 8,
        }));
        let app = Router::new()
            .route("/bigquery/v2/projects/{project}/queries", post(jobs_query))
            .route(
                "/bigquery/v2/projects/{project}/queries/{job}",
                get(get_query_results),
            )
            .route("/bigquery/v2/projects/{project}/jobs", post(jobs_insert))
            .route("/bigquery/v2/projects/{project}/jobs/{job}", get(jobs_get))
            .route(
                "/bigquery/v2/projects/{project}/jobs/{job}/cancel",
                post(jobs_cancel),
            )
            .route("/token", post(token))
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { endpoint, inner }
    }

    /// Starts the fake on its own thread and runtime, for tests that run the real binary
    /// from synchronous code.
    pub fn start_in_background(database: Option<std::path::PathBuf>) -> Self {
        super::start_in_background(
            move || async move { FakeBigQuery::start(database.as_deref()).await },
        )
    }

    /// A fake over an empty database holding `mart.events`: `n` 1..=7 and `happened_at`
    /// (TIMESTAMP) one hour apart from 2026-11-01 00:00:00.123456 UTC.
    pub async fn with_events() -> Self {
        let fake = Self::start(None).await;
        fake.setup(
            "CREATE SCHEMA mart;
             CREATE TABLE mart.events AS
             SELECT n::INTEGER AS n,
                    CAST(TIMESTAMP '2026-11-01 00:00:00.123456' + n * INTERVAL 1 HOUR AS TIMESTAMPTZ) AS happened_at
             FROM range(1, 8) AS t(n);",
        );
        fake
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }

    /// Runs setup SQL (tables for a test) on the fake's own database.
    pub fn setup(&self, sql: &str) {
        self.with(|s| s.db.execute_batch(sql).unwrap());
    }

    /// Rows per page when a request does not ask for fewer.
    pub fn set_page_rows(&self, rows: usize) {
        self.with(|s| s.page_rows = rows);
    }

    /// At most `jobs` jobs run at once; a query past that is refused (ADMISSION_DENIED).
    pub fn set_max_running_jobs(&self, jobs: usize) {
        self.with(|s| s.max_running_jobs = Some(jobs));
    }

    /// The most jobs that were running at once so far.
    pub fn most_running_jobs(&self) -> usize {
        self.with(|s| s.most_running_jobs)
    }

    /// Queries refused with ADMISSION_DENIED (past the running-jobs cap) so far.
    pub fn admission_denied(&self) -> usize {
        self.with(|s| s.admission_denied)
    }

    /// Every new job answers `jobComplete: false` this many times before it is done.
    pub fn set_pending_polls(&self, polls: usize) {
        self.with(|s| s.pending_polls = polls);
    }

    /// Bytes each cell of a table counts for in scan estimates (8 by default).
    pub fn set_bytes_per_cell(&self, bytes: u64) {
        self.with(|s| s.bytes_per_cell = bytes);
    }

    /// Queues faults for the next calls of `method` (`jobs.query`, `jobs.getQueryResults`).
    pub fn fail_next(&self, method: &str, faults: impl IntoIterator<Item = Fault>) {
        self.with(|s| {
            s.faults
                .entry(method.to_string())
                .or_default()
                .extend(faults)
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.method == method)
                .cloned()
                .collect()
        })
    }

    /// Jobs cancelled through `jobs.cancel`.
    pub fn cancelled_jobs(&self) -> usize {
        self.with(|s| s.jobs.values().filter(|j| j.cancelled).count())
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Google's OAuth token endpoint for service accounts: a JWT bearer grant in, an access
/// token out. The signed assertion is recorded (method `oauth.token`, body `assertion`).
async fn token(State(inner): Shared, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let mut inner = inner.lock().unwrap();
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    record(
        &mut inner,
        "oauth.token",
        json!({"grant_type": form.get("grant_type"), "assertion": assertion}),
        &HashMap::new(),
        &headers,
    );
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        || assertion.split('.').count() != 3
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "Invalid JWT."})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// BigQuery's error body.
fn error_response(fault: &Fault) -> Response {
    let body = json!({
        "error": {
            "code": fault.status,
            "message": fault.message,
            "errors": [{
                "message": fault.message,
                "domain": "global",
                "reason": fault.reason,
            }],
            "status": status_name(fault.status),
        }
    });
    (
        StatusCode::from_u16(fault.status).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

fn record(
    inner: &mut Inner,
    method: &str,
    body: Json,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Option<Fault> {
    inner.calls.push(Call {
        method: method.into(),
        body,
        query: query.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    inner.faults.get_mut(method).and_then(VecDeque::pop_front)
}

async fn jobs_query(
    State(inner): Shared,
    Path(project): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Json>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(fault) = record(
        &mut inner,
        "jobs.query",
        body.clone(),
        &HashMap::new(),
        &headers,
    ) {
        return error_response(&fault);
    }
    if body.get("useLegacySql") != Some(&Json::Bool(false)) {
        // What BigQuery says when standard SQL meets the legacy parser.
        return error_response(&Fault::new(
            400,
            "invalidQuery",
            "Encountered \" \"@\" \"@ \"\" at line 1, column 1. Legacy SQL was used because useLegacySql was not false.",
        ));
    }
    let sql = body["query"].as_str().unwrap_or_default().to_string();
    let parameters = body
        .get("queryParameters")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let translated = match translate(&sql, &parameters) {
        Ok(sql) => sql,
        Err(fault) => return error_response(&fault),
    };
    let tables = tables_read(&inner.db, &sql, inner.bytes_per_cell);
    let bytes_processed: u64 = tables.iter().sum();
    let dry_run = body.get("dryRun").and_then(Json::as_bool) == Some(true);
    let executed = execute(&inner.db, &translated, &sql, dry_run);
    let (columns, rows) = match executed {
        Ok(result) => result,
        Err(fault) => return error_response(&fault),
    };
    let schema = schema_json(&columns);
    if dry_run {
        return axum::Json(json!({
            "kind": "bigquery#queryResponse",
            "schema": schema,
            "jobReference": {"projectId": project, "location": LOCATION},
            "totalBytesProcessed": bytes_processed.to_string(),
            "jobComplete": true,
            "cacheHit": false,
        }))
        .into_response();
    }
    let billed = bytes_processed
        .div_ceil(1024 * 1024)
        .saturating_mul(1024 * 1024)
        .max(MIN_BILLED_BYTES_PER_TABLE * tables.len() as u64);
    if let Some(cap) = body
        .get("maximumBytesBilled")
        .and_then(Json::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        && billed > cap
    {
        return error_response(&Fault::new(
            400,
            "bytesBilledLimitExceeded",
            &format!("Query exceeded limit for bytes billed: {cap}. {billed} or higher required."),
        ));
    }
    let running = inner
        .jobs
        .values()
        .filter(|j| j.pending_polls > 0 && !j.cancelled)
        .count();
    if inner.max_running_jobs.is_some_and(|cap| running >= cap) {
        inner.admission_denied += 1;
        // What BigQuery answers past its concurrency when the queue is off or full.
        return error_response(&Fault::new(
            400,
            "invalid",
            "ADMISSION_DENIED: the maximum number of concurrently running queries has been reached",
        ));
    }
    let job_id = format!("job_{:08}", inner.next_job);
    inner.next_job += 1;
    let pending_polls = inner.pending_polls;
    if pending_polls > 0 {
        inner.most_running_jobs = inner.most_running_jobs.max(running + 1);
    }
    inner.jobs.insert(
        job_id.clone(),
        StoredJob {
            sql,
            schema,
            columns,
            rows,
            bytes_processed,
            pending_polls,
            cancelled: false,
        },
    );
    let reference = json!({"projectId": project, "jobId": job_id, "location": LOCATION});
    if pending_polls > 0 {
        return axum::Json(json!({
            "kind": "bigquery#queryResponse",
            "jobReference": reference,
            "jobComplete": false,
        }))
        .into_response();
    }
    let max_results = body
        .get("maxResults")
        .and_then(Json::as_u64)
        .map(|n| n as usize);
    let int64_timestamps = body
        .pointer("/formatOptions/useInt64Timestamp")
        .and_then(Json::as_bool)
        == Some(true);
    let page_rows = inner.page_rows;
    let job = &inner.jobs[&job_id];
    let mut answer = page(
        job,
        0,
        max_results.unwrap_or(page_rows).min(page_rows),
        int64_timestamps,
    );
    answer["kind"] = json!("bigquery#queryResponse");
    answer["jobReference"] = reference;
    axum::Json(answer).into_response()
}

/// One page of a finished job, from row `start`.
fn page(job: &StoredJob, start: usize, rows: usize, int64_timestamps: bool) -> Json {
    let end = (start + rows).min(job.rows.len());
    let mut answer = json!({
        "schema": job.schema,
        "totalRows": job.rows.len().to_string(),
        "rows": job.rows[start.min(end)..end]
            .iter()
            .map(|row| row_json(row, &job.columns, int64_timestamps))
            .collect::<Vec<_>>(),
        "totalBytesProcessed": job.bytes_processed.to_string(),
        "jobComplete": true,
        "cacheHit": false,
    });
    if end < job.rows.len() {
        answer["pageToken"] = json!(format!("page-{end}"));
    }
    if end == start {
        answer.as_object_mut().unwrap().remove("rows");
    }
    answer
}

async fn get_query_results(
    State(inner): Shared,
    Path((project, job_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(fault) = record(
        &mut inner,
        "jobs.getQueryResults",
        Json::Null,
        &query,
        &headers,
    ) {
        return error_response(&fault);
    }
    let page_rows = inner.page_rows;
    let Some(job) = inner.jobs.get_mut(&job_id) else {
        return error_response(&Fault::new(
            404,
            "notFound",
            &format!("Not found: Job {project}:{LOCATION}.{job_id}"),
        ));
    };
    let reference = json!({"projectId": project, "jobId": job_id, "location": LOCATION});
    if job.cancelled {
        return error_response(&Fault::new(
            400,
            "stopped",
            "Job execution was cancelled: User requested cancellation",
        ));
    }
    if job.pending_polls > 0 {
        job.pending_polls -= 1;
        return axum::Json(json!({
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": reference,
            "jobComplete": false,
        }))
        .into_response();
    }
    let start = match query.get("pageToken") {
        Some(token) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(start) => start,
            None => return error_response(&Fault::new(400, "invalid", "Invalid page token")),
        },
        None => query
            .get("startIndex")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    };
    let rows = query
        .get("maxResults")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(page_rows)
        .min(page_rows);
    // Google's Python client sends `True`; BigQuery reads booleans in any case.
    let int64_timestamps = query
        .get("formatOptions.useInt64Timestamp")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut answer = page(job, start, rows, int64_timestamps);
    answer["kind"] = json!("bigquery#getQueryResultsResponse");
    answer["etag"] = json!("\"fake-etag\"");
    answer["jobReference"] = reference;
    axum::Json(answer).into_response()
}

/// `jobs.insert` with `dryRun`: what BigQuery's dry run answers — the job with its
/// statistics, `referencedTables` listing the tables the query reads once views are
/// resolved (the fake asks DuckDB's planner, as BigQuery resolves them itself) and the
/// default dataset applied. Jobs that are not dry runs are not part of the fake.
async fn jobs_insert(
    State(inner): Shared,
    Path(project): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Json>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(fault) = record(
        &mut inner,
        "jobs.insert",
        body.clone(),
        &HashMap::new(),
        &headers,
    ) {
        return error_response(&fault);
    }
    let configuration = &body["configuration"];
    if configuration["dryRun"].as_bool() != Some(true) {
        return error_response(&Fault::new(
            400,
            "invalid",
            "the fake answers jobs.insert only for dry runs",
        ));
    }
    let query = &configuration["query"];
    let sql = query["query"].as_str().unwrap_or_default().to_string();
    let parameters = query["queryParameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let translated = match translate(&sql, &parameters) {
        Ok(sql) => sql,
        Err(fault) => return error_response(&fault),
    };
    let dataset = query["defaultDataset"]["datasetId"]
        .as_str()
        .map(str::to_string);
    // More than one statement is a script: BigQuery says so and lists no tables per
    // statement. One statement plans as a subquery; a script does not.
    let single = referenced_tables(
        &inner.db,
        &format!(
            "SELECT * FROM (\n{}\n) AS fake_single",
            translated.trim().trim_end_matches(';')
        ),
        dataset.as_deref(),
    );
    let (statement_type, referenced) = match single {
        Ok(tables) => ("SELECT", tables),
        Err(_) if translated.trim().trim_end_matches(';').contains(';') => ("SCRIPT", Vec::new()),
        Err(message) => return error_response(&Fault::new(400, "invalidQuery", &message)),
    };
    let bytes_processed: u64 = tables_read(&inner.db, &sql, inner.bytes_per_cell)
        .iter()
        .sum();
    let tables: Vec<Json> = referenced
        .into_iter()
        .map(|(dataset, table)| json!({"projectId": project, "datasetId": dataset, "tableId": table}))
        .collect();
    axum::Json(json!({
        "kind": "bigquery#job",
        "jobReference": {"projectId": project, "location": LOCATION},
        "configuration": configuration,
        "status": {"state": "DONE"},
        "statistics": {
            "totalBytesProcessed": bytes_processed.to_string(),
            "query": {
                "totalBytesProcessed": bytes_processed.to_string(),
                "statementType": statement_type,
                "referencedTables": tables,
            },
        },
    }))
    .into_response()
}

/// The (dataset, table) pairs DuckDB's plan scans for `sql`, unqualified names read in
/// `dataset` first.
fn referenced_tables(
    db: &duckdb::Connection,
    sql: &str,
    dataset: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    if let Some(dataset) = dataset {
        db.execute_batch(&format!("SET search_path = '{dataset},main'"))
            .map_err(|e| e.to_string())?;
    }
    // BigQuery lists every table a query references; DuckDB's optimizer would answer
    // `max(col)` from stored statistics and drop the scan from the plan.
    db.execute_batch("SET disabled_optimizers = 'statistics_propagation'")
        .map_err(|e| e.to_string())?;
    let planned = db
        .prepare(&format!("EXPLAIN (FORMAT JSON) {sql}"))
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, String>(1)));
    if dataset.is_some() {
        db.execute_batch("RESET search_path")
            .map_err(|e| e.to_string())?;
    }
    db.execute_batch("RESET disabled_optimizers")
        .map_err(|e| e.to_string())?;
    let plan: Json =
        serde_json::from_str(&planned.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![&plan];
    while let Some(node) = stack.pop() {
        match node {
            Json::Array(items) => stack.extend(items),
            Json::Object(map) => {
                if let Some(table) = map
                    .get("extra_info")
                    .and_then(|i| i.get("Table"))
                    .and_then(Json::as_str)
                {
                    // DuckDB quotes names that are keywords (`"secret"`); BigQuery's ids
                    // come bare.
                    let parts: Vec<&str> = table.split('.').map(|p| p.trim_matches('"')).collect();
                    if parts.len() >= 2 {
                        found.insert((
                            parts[parts.len() - 2].to_string(),
                            parts[parts.len() - 1].to_string(),
                        ));
                    }
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    Ok(found.into_iter().collect())
}

async fn jobs_get(
    State(inner): Shared,
    Path((project, job_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(fault) = record(&mut inner, "jobs.get", Json::Null, &query, &headers) {
        return error_response(&fault);
    }
    let Some(job) = inner.jobs.get(&job_id) else {
        return error_response(&Fault::new(
            404,
            "notFound",
            &format!("Not found: Job {project}:{LOCATION}.{job_id}"),
        ));
    };
    let state = if job.pending_polls > 0 {
        "RUNNING"
    } else {
        "DONE"
    };
    axum::Json(json!({
        "kind": "bigquery#job",
        "id": format!("{project}:{LOCATION}.{job_id}"),
        "jobReference": {"projectId": project, "jobId": job_id, "location": LOCATION},
        "configuration": {
            "jobType": "QUERY",
            "query": {
                "query": job.sql,
                "useLegacySql": false,
                "destinationTable": {"projectId": project, "datasetId": "_fake_anon", "tableId": format!("anon_{job_id}")},
            },
        },
        "status": {"state": state},
        "statistics": {
            "creationTime": "1700000000000",
            "startTime": "1700000000100",
            "endTime": "1700000000200",
            "totalBytesProcessed": job.bytes_processed.to_string(),
            "query": {"totalBytesProcessed": job.bytes_processed.to_string(), "statementType": "SELECT"},
        },
    }))
    .into_response()
}

async fn jobs_cancel(
    State(inner): Shared,
    Path((project, job_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(fault) = record(&mut inner, "jobs.cancel", Json::Null, &query, &headers) {
        return error_response(&fault);
    }
    match inner.jobs.get_mut(&job_id) {
        Some(job) => {
            job.cancelled = true;
            axum::Json(json!({
                "kind": "bigquery#jobCancelResponse",
                "job": {"jobReference": {"projectId": project, "jobId": job_id, "location": LOCATION}, "status": {"state": "DONE"}},
            }))
            .into_response()
        }
        None => error_response(&Fault::new(
            404,
            "notFound",
            &format!("Not found: Job {project}:{job_id}"),
        )),
    }
}

/// Bytes a query would scan: every table of the database it names, each at least
/// BigQuery's 10 MiB minimum when billed (the caller applies that).
fn tables_read(db: &duckdb::Connection, sql: &str, bytes_per_cell: u64) -> Vec<u64> {
    let lower = sql.to_lowercase().replace('`', "");
    let mut statement = db
        .prepare(
            "SELECT schema_name, table_name, estimated_size, column_count FROM duckdb_tables()",
        )
        .unwrap();
    let tables: Vec<(String, String, i64, i64)> = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .filter(|(schema, table, _, _)| {
            let qualified = format!("{schema}.{table}").to_lowercase();
            lower.contains(&qualified)
                || Regex::new(&format!(r"\b{}\b", regex::escape(&table.to_lowercase())))
                    .unwrap()
                    .is_match(&lower)
        })
        .map(|(_, _, rows, columns)| rows.max(0) as u64 * columns.max(0) as u64 * bytes_per_cell)
        .collect()
}

/// BigQuery SQL as DuckDB runs it: parameters as typed literals, backquoted paths as
/// quoted identifiers, and the few BigQuery-only spellings kpibot generates.
fn translate(sql: &str, parameters: &[Json]) -> Result<String, Fault> {
    let by_name: HashMap<String, &Json> = parameters
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), p)))
        .collect();
    let mut out = String::new();
    let mut last = 0;
    for reference in kpibot::warehouse::sql::parameters(sql) {
        out.push_str(&sql[last..reference.span.start]);
        let Some(parameter) = by_name.get(&reference.name) else {
            let (line, column) = line_column(sql, reference.span.start);
            return Err(Fault::new(
                400,
                "invalidQuery",
                &format!(
                    "Query parameter '{}' not found at [{line}:{column}]",
                    reference.name
                ),
            ));
        };
        out.push_str(&literal(
            &parameter["parameterType"],
            &parameter["parameterValue"],
        )?);
        last = reference.span.end;
    }
    out.push_str(&sql[last..]);
    let backquoted = Regex::new(r"`([^`]*)`").unwrap();
    let out = backquoted.replace_all(&out, |c: &regex::Captures| {
        c[1].split('.')
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join(".")
    });
    // A day list in FROM: BigQuery's array of dates as DuckDB's series of them.
    let days = Regex::new(
        r"(?i)UNNEST\(GENERATE_DATE_ARRAY\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\)\s+AS\s+(\w+)",
    )
    .unwrap();
    let out = days.replace_all(
        &out,
        "(SELECT CAST(g AS DATE) AS $3 FROM generate_series(CAST($1 AS DATE), CAST($2 AS DATE), INTERVAL 1 DAY) AS days_g(g)) AS days_list",
    );
    // A truncated date may itself be a shifted one: one level of parentheses inside.
    let argument = r"((?:[^,()]|\([^()]*\))+?)";
    let week = Regex::new(&format!(
        r"(?i)DATE_TRUNC\(\s*{argument}\s*,\s*WEEK\(MONDAY\)\s*\)"
    ))
    .unwrap();
    let out = week.replace_all(&out, "CAST(DATE_TRUNC('week', $1) AS DATE)");
    let part = Regex::new(&format!(
        r"(?i)DATE_TRUNC\(\s*{argument}\s*,\s*(DAY|MONTH|QUARTER|YEAR)\s*\)"
    ))
    .unwrap();
    let out = part.replace_all(&out, "CAST(DATE_TRUNC('$2', $1) AS DATE)");
    let shifted = Regex::new(
        r"(?i)DATE_(ADD|SUB)\(\s*([^,()]+?)\s*,\s*INTERVAL\s+(\d+)\s+(DAY|WEEK|MONTH|QUARTER|YEAR)\s*\)",
    )
    .unwrap();
    let out = shifted.replace_all(&out, |c: &regex::Captures| {
        let sign = if c[1].eq_ignore_ascii_case("ADD") {
            "+"
        } else {
            "-"
        };
        format!(
            "CAST({} {sign} INTERVAL {} {} AS DATE)",
            &c[2], &c[3], &c[4]
        )
    });
    let out = Regex::new(r"(?i)\bFLOAT64\b")
        .unwrap()
        .replace_all(&out, "DOUBLE");
    let out = Regex::new(r"(?i)\bINT64\b")
        .unwrap()
        .replace_all(&out, "BIGINT");
    let out = Regex::new(r"(?i)\bIN\s+UNNEST\s*\(([^()]*)\)")
        .unwrap()
        .replace_all(&out, "IN (SELECT UNNEST($1))");
    Ok(out.into_owned())
}

fn line_column(sql: &str, offset: usize) -> (usize, usize) {
    let before = &sql[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A query parameter as a DuckDB literal of the matching type.
fn literal(ty: &Json, value: &Json) -> Result<String, Fault> {
    let type_name = ty["type"].as_str().unwrap_or("STRING");
    if type_name == "ARRAY" {
        let items = value["arrayValues"].as_array().cloned().unwrap_or_default();
        let element = &ty["arrayType"];
        if items.is_empty() {
            return Ok(format!(
                "CAST([] AS {}[])",
                duck_type(element["type"].as_str().unwrap_or("STRING"))
            ));
        }
        let rendered = items
            .iter()
            .map(|item| literal(element, item))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(format!("[{}]", rendered.join(", ")));
    }
    // Google's clients send some scalars as JSON numbers or booleans, which BigQuery takes.
    let text = match &value["value"] {
        Json::String(text) => text.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return Ok(format!("CAST(NULL AS {})", duck_type(type_name))),
    };
    let text = text.as_str();
    let invalid = || {
        Fault::new(
            400,
            "invalidQuery",
            &format!("Invalid {type_name} value: {text}"),
        )
    };
    Ok(match type_name {
        "STRING" => quoted(text),
        "BOOL" | "BOOLEAN" => match text.to_lowercase().as_str() {
            "true" => "TRUE".into(),
            "false" => "FALSE".into(),
            _ => return Err(invalid()),
        },
        "INT64" | "INTEGER" => {
            text.parse::<i64>().map_err(|_| invalid())?;
            format!("CAST({text} AS BIGINT)")
        }
        "FLOAT64" | "FLOAT" => {
            if text.parse::<f64>().is_err()
                && !["NaN", "Infinity", "-Infinity", "inf", "-inf", "nan"].contains(&text)
            {
                return Err(invalid());
            }
            format!("CAST({} AS DOUBLE)", quoted(text))
        }
        "NUMERIC" | "BIGNUMERIC" => {
            let scale = text.split_once('.').map_or(0, |(_, f)| f.len());
            format!(
                "CAST({} AS DECIMAL(38, {}))",
                quoted(text),
                scale
                    .max(if type_name == "NUMERIC" { 9 } else { 0 })
                    .min(37)
            )
        }
        "DATE" => format!("DATE {}", quoted(text)),
        "DATETIME" => format!("TIMESTAMP {}", quoted(text)),
        "TIMESTAMP" => format!(
            "CAST({} AS TIMESTAMPTZ)",
            quoted(&text.replace(" UTC", "+00:00"))
        ),
        other => {
            return Err(Fault::new(
                400,
                "invalidQuery",
                &format!("Unsupported query parameter type {other}"),
            ));
        }
    })
}

fn duck_type(bigquery: &str) -> &'static str {
    match bigquery {
        "INT64" | "INTEGER" => "BIGINT",
        "FLOAT64" | "FLOAT" => "DOUBLE",
        "NUMERIC" => "DECIMAL(38, 9)",
        "BOOL" | "BOOLEAN" => "BOOLEAN",
        "DATE" => "DATE",
        "TIMESTAMP" => "TIMESTAMPTZ",
        _ => "VARCHAR",
    }
}

/// How a DuckDB column is presented in BigQuery's terms.
#[derive(Debug, Clone)]
enum ColumnKind {
    Scalar {
        name: String,
        bq_type: &'static str,
    },
    Repeated {
        name: String,
        element: &'static str,
    },
    Record {
        name: String,
        fields: Vec<(String, &'static str)>,
    },
}

fn bq_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "BOOLEAN",
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Null => "INTEGER",
        DataType::Decimal128(_, 0) => "INTEGER",
        DataType::Decimal128(_, scale) if *scale > 9 => "BIGNUMERIC",
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => "NUMERIC",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "FLOAT",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP",
        DataType::Timestamp(_, None) => "DATETIME",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        _ => "STRING",
    }
}

fn column_kind(name: String, data_type: &DataType) -> ColumnKind {
    match data_type {
        DataType::List(field) | DataType::LargeList(field) | DataType::FixedSizeList(field, _) => {
            ColumnKind::Repeated {
                name,
                element: bq_type(field.data_type()),
            }
        }
        DataType::Struct(fields) => ColumnKind::Record {
            name,
            fields: fields
                .iter()
                .map(|f| (f.name().clone(), bq_type(f.data_type())))
                .collect(),
        },
        other => ColumnKind::Scalar {
            name,
            bq_type: bq_type(other),
        },
    }
}

fn schema_json(columns: &[ColumnKind]) -> Json {
    let fields: Vec<Json> = columns
        .iter()
        .map(|c| match c {
            ColumnKind::Scalar { name, bq_type } => json!({"name": name, "type": bq_type, "mode": "NULLABLE"}),
            ColumnKind::Repeated { name, element } => json!({"name": name, "type": element, "mode": "REPEATED"}),
            ColumnKind::Record { name, fields } => json!({
                "name": name, "type": "RECORD", "mode": "NULLABLE",
                "fields": fields.iter().map(|(n, t)| json!({"name": n, "type": t, "mode": "NULLABLE"})).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({ "fields": fields })
}

/// Runs the translated SQL (`LIMIT 0` for a dry run); errors come back as BigQuery's.
fn execute(
    db: &duckdb::Connection,
    translated: &str,
    original: &str,
    dry_run: bool,
) -> Result<(Vec<ColumnKind>, Vec<Vec<Value>>), Fault> {
    let sql = if dry_run {
        format!(
            "SELECT * FROM (\n{}\n) AS fake_dry_run LIMIT 0",
            translated.trim().trim_end_matches(';')
        )
    } else {
        translated.to_string()
    };
    let mut statement = db
        .prepare(&sql)
        .map_err(|e| duck_error(&e, original, dry_run))?;
    let mut rows_out = Vec::new();
    let mut rows = statement
        .query([])
        .map_err(|e| duck_error(&e, original, dry_run))?;
    let mut columns: Option<Vec<ColumnKind>> = None;
    while let Some(row) = rows.next().map_err(|e| duck_error(&e, original, dry_run))? {
        let statement = row.as_ref();
        if columns.is_none() {
            columns = Some(describe(statement));
        }
        let width = statement.column_count();
        rows_out.push(
            (0..width)
                .map(|i| row.get::<_, Value>(i).unwrap())
                .collect(),
        );
    }
    let columns = match columns {
        Some(c) => c,
        None => rows.as_ref().map(describe).unwrap_or_default(),
    };
    Ok((columns, rows_out))
}

fn describe(statement: &duckdb::Statement<'_>) -> Vec<ColumnKind> {
    statement
        .column_names()
        .into_iter()
        .enumerate()
        .map(|(i, name)| column_kind(name, &statement.column_type(i)))
        .collect()
}

/// A DuckDB error as the BigQuery error a report author would see, positions mapped back
/// onto the SQL as sent (`at [line:column]`).
fn duck_error(error: &duckdb::Error, original: &str, dry_run: bool) -> Fault {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("").to_string();
    let mut line: Option<usize> = text
        .find("LINE ")
        .and_then(|at| text[at + 5..].split(':').next())
        .and_then(|n| n.trim().parse().ok());
    if dry_run {
        line = line.map(|l: usize| l.saturating_sub(1).max(1));
    }
    let near = Regex::new(r#"at or near "([^"]+)""#)
        .unwrap()
        .captures(&first)
        .map(|c| c[1].to_string());
    let column = match (line, &near) {
        (Some(l), Some(token)) => original
            .lines()
            .nth(l - 1)
            .and_then(|t| t.find(token.as_str()).map(|at| t[..at].chars().count() + 1)),
        _ => None,
    };
    let position = match (line, column) {
        (Some(l), Some(c)) => format!(" at [{l}:{c}]"),
        (Some(l), None) => format!(" at [{l}:1]"),
        _ => String::new(),
    };
    if first.starts_with("Catalog Error") && first.contains("Table with name") {
        let name = Regex::new(r"Table with name ([^ ]+) does not exist")
            .unwrap()
            .captures(&first)
            .map_or("?".to_string(), |c| c[1].to_string());
        return Fault::new(
            404,
            "notFound",
            &format!("Not found: Table fake-project:{name} was not found in location {LOCATION}"),
        );
    }
    let message = if first.starts_with("Parser Error") {
        match near {
            Some(token) => format!(
                "Syntax error: Unexpected keyword {}{position}",
                token.to_uppercase()
            ),
            None => format!(
                "Syntax error: {}{position}",
                first.trim_start_matches("Parser Error: ")
            ),
        }
    } else if let Some(name) = Regex::new(r#"column "([^"]+)" not found"#)
        .unwrap()
        .captures(&first)
    {
        format!("Unrecognized name: {}{position}", &name[1])
    } else {
        format!(
            "{}{position}",
            first.split_once(": ").map_or(first.as_str(), |(_, m)| m)
        )
    };
    Fault::new(400, "invalidQuery", &message)
}

/// Java's `Double.toString`, which BigQuery uses for FLOAT64 in JSON: plain between 1e-3
/// and 1e7, scientific (`1.0E10`) outside.
/// The fake serving the demo mart through yesterday in Tokyo, from a file in `dir` (not
/// `mart.duckdb`: DuckDB names the catalog after the file, and `mart.table` would be
/// ambiguous).
pub fn on_demo_mart(dir: &std::path::Path) -> FakeBigQuery {
    let mart = dir.join("warehouse.duckdb");
    let yesterday = super::tokyo_yesterday(chrono::Utc::now());
    kpibot::warehouse::demo::ensure_demo_mart(&mart, yesterday).unwrap();
    FakeBigQuery::start_in_background(Some(mart))
}

/// The settings that point a bot at `bigquery`.
pub fn settings_for(bigquery: &FakeBigQuery) -> [(&'static str, &str); 3] {
    [
        ("KPIBOT__WAREHOUSE__KIND", "bigquery"),
        ("KPIBOT__WAREHOUSE__BIGQUERY__PROJECT", "kpibot-test"),
        (
            "KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT",
            bigquery.endpoint.as_str(),
        ),
    ]
}

pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = x.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = format!("{x:?}");
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap();
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

fn decimal_text(value: i128, scale: u32) -> String {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let fraction = fraction.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// One value as BigQuery writes it: a string, or null.
fn scalar_json(value: &Value, bq_type: &str, int64_timestamps: bool) -> Json {
    let text = match value {
        Value::Null => return Json::Null,
        Value::Boolean(b) => b.to_string(),
        Value::TinyInt(i) => i.to_string(),
        Value::SmallInt(i) => i.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::HugeInt(i) => i.to_string(),
        Value::UTinyInt(i) => i.to_string(),
        Value::USmallInt(i) => i.to_string(),
        Value::UInt(i) => i.to_string(),
        Value::UBigInt(i) => i.to_string(),
        Value::Float(f) => java_double(f64::from(*f)),
        Value::Double(f) => java_double(*f),
        Value::Decimal(d) => decimal_text(d.value(), d.scale().into()),
        Value::Date32(days) => (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days((*days).into()))
        .to_string(),
        Value::Timestamp(unit, amount) => {
            let micros = kpibot::warehouse::duckdb::timestamp_micros(*unit, *amount);
            if bq_type == "DATETIME" {
                let at = chrono::DateTime::from_timestamp_micros(micros)
                    .unwrap()
                    .naive_utc();
                at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
            } else if int64_timestamps {
                micros.to_string()
            } else {
                java_double(micros as f64 / 1e6)
            }
        }
        Value::Time64(_, micros) => {
            let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (*micros / 1_000_000) as u32,
                ((*micros % 1_000_000) * 1000) as u32,
            )
            .unwrap();
            time.format("%H:%M:%S%.f").to_string()
        }
        Value::Text(s) | Value::Enum(s) => s.clone(),
        other => format!("{other:?}"),
    };
    Json::String(text)
}

fn row_json(row: &[Value], columns: &[ColumnKind], int64_timestamps: bool) -> Json {
    let cells: Vec<Json> = row
        .iter()
        .zip(columns)
        .map(|(value, column)| match (column, value) {
            (_, Value::Null) => json!({"v": null}),
            (ColumnKind::Scalar { bq_type, .. }, v) => json!({"v": scalar_json(v, bq_type, int64_timestamps)}),
            (ColumnKind::Repeated { element, .. }, Value::List(items) | Value::Array(items)) => json!({
                "v": items.iter().map(|i| json!({"v": scalar_json(i, element, int64_timestamps)})).collect::<Vec<_>>()
            }),
            (ColumnKind::Record { fields, .. }, Value::Struct(map)) => json!({
                "v": {"f": map.iter().zip(fields).map(|((_, v), (_, t))| json!({"v": scalar_json(v, t, int64_timestamps)})).collect::<Vec<_>>()}
            }),
            (_, other) => json!({"v": format!("{other:?}")}),
        })
        .collect();
    json!({ "f": cells })
}

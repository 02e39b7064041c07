//! The production warehouse: BigQuery through gcp-bigquery-client — standard SQL, typed
//! named parameters, a bytes-billed cap and cost labels on every job, polling until the
//! job is complete, every page read, and errors turned into something a report author or
//! operator can act on. One cohesive thing: one client's requests, polling, paging, cell
//! decoding and error classification, which only make sense together.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::data_format_options::DataFormatOptions;
use gcp_bigquery_client::model::dataset_reference::DatasetReference;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_row::TableRow;
use gcp_bigquery_client::model::table_schema::TableSchema;

use super::plan::{narrow_by_parser, referenced_reads};
use super::reads::Reads;
use super::table::parse_decimal;
use super::{
    Cell, ColumnInfo, ColumnType, Dialect, Estimate, ParamValue, Params, QueryJob, Table,
    WarehouseError,
};
use crate::retry::{RetryPolicy, backoff_delay};
use crate::settings::BigQuerySettings;

/// The REST path under an endpoint (Google's, or an emulator's `http://host:port`).
pub const API_PATH: &str = "/bigquery/v2";
/// How long BigQuery may hold one `jobs.query` / `getQueryResults` call open waiting for
/// the job (BigQuery's own limit is 10 s); the job's own timeout bounds the whole.
const SERVER_WAIT_MS: u64 = 10_000;
/// Pause between polls of an unfinished job, on top of BigQuery's own wait.
const POLL_INTERVAL_MS: u64 = 200;
/// How long a best-effort cancel of a timed-out job may take.
const CANCEL_TIMEOUT_MS: u64 = 3_000;
/// Attempts per API call when BigQuery answers with a transient error.
const CALL_ATTEMPTS: u32 = 4;
const RETRY_BASE_DELAY_MS: u64 = 500;
const RETRY_MAX_DELAY_MS: u64 = 8_000;
/// BigQuery label values: at most 63 characters.
const LABEL_MAX_CHARS: usize = 63;

/// Sends no credentials: for an emulator endpoint, which wants none.
#[derive(Clone)]
struct NoAuthentication;

#[async_trait::async_trait]
impl Authenticator for NoAuthentication {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok(String::new())
    }
}

pub struct BigQueryWarehouse {
    client: Client,
    /// The settings, blanks trimmed and empty optional values as `None`.
    options: BigQuerySettings,
    retry: RetryPolicy,
}

/// What one finished job returned.
struct Collected {
    schema: Option<TableSchema>,
    rows: Vec<TableRow>,
    bytes_processed: Option<u64>,
}

impl BigQueryWarehouse {
    /// Builds the client. Credentials are read here; tokens are fetched on the first query.
    pub async fn open(settings: &BigQuerySettings) -> Result<Self, WarehouseError> {
        let options = normalized(settings);
        let mut builder = ClientBuilder::new();
        if let Some(endpoint) = &options.endpoint {
            builder.with_v2_base_url(format!("{}{API_PATH}", endpoint.trim_end_matches('/')));
        }
        let client = match (&options.credentials_file, &options.endpoint) {
            (Some(file), _) => builder
                .build_from_service_account_key_file(&file.to_string_lossy())
                .await
                .map_err(|e| {
                    WarehouseError::Unavailable(format!(
                        "cannot use the service-account key file {}: {e}",
                        file.display()
                    ))
                })?,
            (None, Some(_)) => builder
                .build_from_authenticator(Arc::new(NoAuthentication))
                .await
                .map_err(|e| WarehouseError::Unavailable(e.to_string()))?,
            (None, None) => builder
                .build_from_application_default_credentials()
                .await
                .map_err(|e| {
                    WarehouseError::Unavailable(format!(
                        "no Google credentials found ({e}); set GOOGLE_APPLICATION_CREDENTIALS to a \
                         service-account key file, run `gcloud auth application-default login`, or \
                         run where a metadata server provides them (Cloud Run, GKE)"
                    ))
                })?,
        };
        Ok(Self {
            client,
            options,
            retry: RetryPolicy {
                base_delay: Duration::from_millis(RETRY_BASE_DELAY_MS),
                max_delay: Duration::from_millis(RETRY_MAX_DELAY_MS),
                deadline: Duration::MAX,
                max_attempts: CALL_ATTEMPTS,
                request_timeout: Duration::from_millis(SERVER_WAIT_MS),
            },
        })
    }

    fn request(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
        dry_run: bool,
    ) -> Result<QueryRequest, WarehouseError> {
        let mut request = QueryRequest::new(sql);
        // Left unset, BigQuery reads the SQL as legacy SQL.
        request.use_legacy_sql = false;
        request.parameter_mode = Some("NAMED".into());
        request.query_parameters = Some(query_parameters(sql, params)?);
        request.dry_run = dry_run.then_some(true);
        request.location = self.options.location.clone();
        if !self.options.dataset.is_empty() {
            request.default_dataset = Some(DatasetReference {
                dataset_id: self.options.dataset.clone(),
                project_id: self.options.project.clone(),
            });
        }
        request.maximum_bytes_billed = Some(
            job.maximum_bytes_billed
                .unwrap_or(self.options.maximum_bytes_billed)
                .to_string(),
        );
        request.labels = Some(labels(job));
        request.timeout_ms = Some(server_wait_ms(job.timeout));
        request.request_id = Some(request_id());
        request.format_options = Some(DataFormatOptions {
            use_int64_timestamp: Some(true),
        });
        Ok(request)
    }

    /// Calls BigQuery, retrying transient failures with backoff.
    async fn call<T, F, Fut>(&self, method: &str, mut send: F) -> Result<T, WarehouseError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BQError>>,
    {
        let mut attempt = 1;
        loop {
            let failure = match send().await {
                Ok(answer) => return Ok(answer),
                Err(error) => classify(error),
            };
            match failure {
                Failure::Transient(detail) if attempt < self.retry.max_attempts => {
                    let delay = backoff_delay(&self.retry, attempt);
                    tracing::warn!(method, attempt, %detail, delay_ms = delay.as_millis() as u64, "BigQuery call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Failure::Transient(detail) => {
                    return Err(WarehouseError::Unavailable(format!(
                        "BigQuery {method} failed {attempt} times: {detail}"
                    )));
                }
                Failure::Final(error) => return Err(error),
            }
        }
    }

    /// Runs one job to the end: the query, polls while it is unfinished, every page.
    /// Records the job's id in `started` as soon as BigQuery gives one, so a timed-out job
    /// can be cancelled.
    async fn collect(
        &self,
        request: QueryRequest,
        dry_run: bool,
        max_rows: usize,
        started: &Mutex<Option<String>>,
    ) -> Result<Collected, WarehouseError> {
        let project = self.options.project.as_str();
        let first = self
            .call("jobs.query", || {
                self.client.job().query(project, request.clone())
            })
            .await?;
        let mut bytes_processed = first
            .total_bytes_processed
            .as_deref()
            .and_then(|b| b.parse().ok());
        if dry_run {
            return Ok(Collected {
                schema: first.schema,
                rows: Vec::new(),
                bytes_processed,
            });
        }
        let job_id = first.job_reference.as_ref().and_then(|r| r.job_id.clone());
        let location = first
            .job_reference
            .as_ref()
            .and_then(|r| r.location.clone())
            .or_else(|| self.options.location.clone());
        if let Some(id) = &job_id {
            *started.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
        }
        let mut complete = first.job_complete == Some(true);
        let mut schema = first.schema;
        let mut rows = first.rows.unwrap_or_default();
        let mut page_token = first.page_token;
        let need_job_id = || {
            job_id.clone().ok_or_else(|| {
                WarehouseError::Unavailable(
                    "BigQuery did not return a job reference for an unfinished query".into(),
                )
            })
        };
        while !complete {
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
            let answer = self
                .results(&need_job_id()?, location.clone(), None, request.timeout_ms)
                .await?;
            complete = answer.job_complete == Some(true);
            if complete {
                // A job unfinished at `jobs.query` has its statistics only once done.
                bytes_processed = bytes_processed.or_else(|| {
                    answer
                        .total_bytes_processed
                        .as_deref()
                        .and_then(|b| b.parse().ok())
                });
                schema = answer.schema;
                rows = answer.rows.unwrap_or_default();
                page_token = answer.page_token;
            }
        }
        while let Some(token) = page_token.take() {
            if rows.len() > max_rows {
                // No more pages: the answer is too large to chart anyway.
                break;
            }
            // The crate cannot send `formatOptions` here, so later pages carry timestamps
            // as float seconds; `cell` reads both.
            let answer = self
                .results(
                    &need_job_id()?,
                    location.clone(),
                    Some(token),
                    request.timeout_ms,
                )
                .await?;
            rows.extend(answer.rows.unwrap_or_default());
            page_token = answer.page_token;
        }
        if rows.len() > max_rows {
            return Err(WarehouseError::TooManyRows { max_rows });
        }
        Ok(Collected {
            schema,
            rows,
            bytes_processed,
        })
    }

    /// `jobs.getQueryResults`: the job's state, or the page after `page_token`.
    async fn results(
        &self,
        job_id: &str,
        location: Option<String>,
        page_token: Option<String>,
        timeout_ms: Option<i32>,
    ) -> Result<GetQueryResultsResponse, WarehouseError> {
        let parameters = GetQueryResultsParameters {
            location,
            page_token,
            timeout_ms,
            ..Default::default()
        };
        self.call("jobs.getQueryResults", || {
            self.client
                .job()
                .get_query_results(&self.options.project, job_id, parameters.clone())
        })
        .await
    }

    /// Runs the job within its timeout; on timeout, asks BigQuery to cancel it so it stops
    /// billing.
    async fn run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
        dry_run: bool,
    ) -> Result<Collected, WarehouseError> {
        let request = self.request(sql, params, job, dry_run)?;
        let started = Mutex::new(None);
        match tokio::time::timeout(
            job.timeout,
            self.collect(request, dry_run, job.max_rows, &started),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                let job_id = started.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(id) = job_id {
                    let cancel = self.client.job().cancel_job(
                        &self.options.project,
                        &id,
                        self.options.location.as_deref(),
                    );
                    if let Err(e) =
                        tokio::time::timeout(Duration::from_millis(CANCEL_TIMEOUT_MS), cancel).await
                    {
                        tracing::warn!(job = %id, error = %e, "could not cancel a timed-out BigQuery job");
                    }
                }
                Err(WarehouseError::Timeout(job.timeout))
            }
        }
    }
}

#[async_trait::async_trait]
impl super::Warehouse for BigQueryWarehouse {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        let collected = self.run(sql, params, job, false).await?;
        let fields = collected.schema.and_then(|s| s.fields).unwrap_or_default();
        let columns = columns(&fields)?;
        let rows = collected
            .rows
            .into_iter()
            .map(|row| {
                let cells = row.columns.unwrap_or_default();
                columns
                    .iter()
                    .enumerate()
                    .map(|(index, column)| {
                        let value = cells.get(index).and_then(|c| c.value.as_ref());
                        cell(value, column)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table {
            columns,
            rows,
            bytes_processed: collected.bytes_processed,
        })
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        let collected = self.run(sql, params, job, true).await?;
        let fields = collected.schema.and_then(|s| s.fields).unwrap_or_default();
        Ok(Estimate {
            columns: columns(&fields)?,
            bytes_processed: collected.bytes_processed,
        })
    }

    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> Reads {
        let request = match self.request(sql, params, job, true) {
            Ok(request) => request,
            Err(error) => {
                return Reads::Unknown {
                    why: format!("BigQuery could not dry-run it: {error}"),
                };
            }
        };
        // `jobs.query` answers a dry run without statistics; `jobs.insert` returns the job,
        // whose statistics list the tables the query references (views and wildcard
        // tables resolved, the default dataset applied).
        let insert = Job {
            configuration: Some(JobConfiguration {
                dry_run: Some(true),
                labels: request.labels.clone(),
                query: Some(JobConfigurationQuery {
                    query: request.query.clone(),
                    use_legacy_sql: Some(false),
                    parameter_mode: request.parameter_mode.clone(),
                    query_parameters: request.query_parameters.clone(),
                    default_dataset: request.default_dataset.clone(),
                    maximum_bytes_billed: request.maximum_bytes_billed.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let project = self.options.project.as_str();
        let answered = tokio::time::timeout(
            job.timeout,
            self.call("jobs.insert", || {
                self.client.job().insert(project, insert.clone())
            }),
        )
        .await;
        let job = match answered {
            Ok(Ok(job)) => job,
            Ok(Err(error)) => {
                return Reads::Unknown {
                    why: format!("BigQuery could not dry-run it: {error}"),
                };
            }
            Err(_) => {
                return Reads::Unknown {
                    why: format!(
                        "BigQuery's dry run did not answer within {} s",
                        job.timeout.as_secs()
                    ),
                };
            }
        };
        let statistics = job.statistics.and_then(|s| s.query);
        // A script (several statements) is dry-run as a whole; what each statement reads,
        // and what one sets for the next, is not listed per statement.
        if let Some(kind) = statistics
            .as_ref()
            .and_then(|q| q.statement_type.as_deref())
            && kind != "SELECT"
        {
            return Reads::Unknown {
                why: format!(
                    "BigQuery dry-runs it as a {kind} statement, not one SELECT; report SQL is one query"
                ),
            };
        }
        let tables: Vec<(String, String, String)> = statistics
            .and_then(|q| q.referenced_tables)
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.project_id, t.dataset_id, t.table_id))
            .collect();
        let parsed = super::reads::read_sql(sql, super::Dialect::BigQuery).established();
        narrow_by_parser(referenced_reads(&tables), &parsed)
    }

    fn describe(&self) -> String {
        let mut text = format!("bigquery project {}", self.options.project);
        if !self.options.dataset.is_empty() {
            text.push_str(&format!(", dataset {}", self.options.dataset));
        }
        if let Some(location) = &self.options.location {
            text.push_str(&format!(", location {location}"));
        }
        if let Some(endpoint) = &self.options.endpoint {
            text.push_str(&format!(" at {endpoint}"));
        }
        text
    }

    fn dialect(&self) -> Dialect {
        Dialect::BigQuery
    }
}

fn normalized(settings: &BigQuerySettings) -> BigQuerySettings {
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    BigQuerySettings {
        project: settings.project.trim().to_string(),
        dataset: settings.dataset.trim().to_string(),
        location: text(&settings.location),
        endpoint: text(&settings.endpoint),
        credentials_file: settings
            .credentials_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        maximum_bytes_billed: settings.maximum_bytes_billed,
    }
}

fn server_wait_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis().min(u128::from(SERVER_WAIT_MS))).unwrap_or(i32::MAX)
}

/// A fresh `requestId`: BigQuery runs a retried `jobs.query` with the same id only once.
fn request_id() -> String {
    let state = RandomState::new();
    let now = std::time::SystemTime::now();
    format!(
        "kpibot-{:016x}{:016x}",
        state.hash_one(now),
        state.hash_one((now, std::process::id()))
    )
}

/// `kpibot_report` and `kpibot_trigger`, spelled as BigQuery label values must be.
fn labels(job: &QueryJob) -> HashMap<String, String> {
    let mut labels = HashMap::from([(
        "kpibot_trigger".to_string(),
        job.trigger.as_str().to_string(),
    )]);
    if !job.report.is_empty() {
        labels.insert("kpibot_report".into(), label_value(&job.report));
    }
    labels
}

/// Lowercase letters (any script), digits, `_` and `-`, at most 63 characters.
pub fn label_value(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_alphanumeric() && !c.is_uppercase() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(LABEL_MAX_CHARS)
        .collect()
}

/// The parameters `sql` uses, typed. A parameter the SQL uses without a value is left out,
/// and BigQuery says which one is missing.
fn query_parameters(sql: &str, params: &Params) -> Result<Vec<QueryParameter>, WarehouseError> {
    let used: std::collections::BTreeSet<String> = super::sql::parameters(sql)
        .into_iter()
        .map(|p| p.name)
        .collect();
    used.into_iter()
        .filter_map(|name| params.get(&name).map(|value| (name, value)))
        .map(|(name, value)| {
            let (parameter_type, parameter_value) = typed(value, &name)?;
            Ok(QueryParameter {
                name: Some(name),
                parameter_type: Some(parameter_type),
                parameter_value: Some(parameter_value),
            })
        })
        .collect()
}

fn scalar(type_name: &str, value: String) -> (QueryParameterType, QueryParameterValue) {
    (
        QueryParameterType {
            r#type: type_name.into(),
            ..Default::default()
        },
        QueryParameterValue {
            value: Some(value),
            ..Default::default()
        },
    )
}

/// NUMERIC holds 29 digits before the point and 9 after; beyond that, BIGNUMERIC.
fn numeric_type(text: &str) -> &'static str {
    let unsigned = text.trim().trim_start_matches(['-', '+']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.trim_start_matches('0').len() > 29 || fraction.len() > 9 {
        "BIGNUMERIC"
    } else {
        "NUMERIC"
    }
}

/// Digits with an optional sign and point, of any length (BIGNUMERIC holds 76 digits).
fn is_decimal_text(text: &str) -> bool {
    let unsigned = text.trim().trim_start_matches(['-', '+']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    !(whole.is_empty() && fraction.is_empty())
        && whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
}

fn typed(
    value: &ParamValue,
    name: &str,
) -> Result<(QueryParameterType, QueryParameterValue), WarehouseError> {
    Ok(match value {
        ParamValue::Date(date) => scalar("DATE", date.format("%Y-%m-%d").to_string()),
        ParamValue::Timestamp(at) => scalar(
            "TIMESTAMP",
            at.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string(),
        ),
        ParamValue::Text(text) => scalar("STRING", text.clone()),
        ParamValue::Integer(i) => scalar("INT64", i.to_string()),
        ParamValue::Float(f) => scalar(
            "FLOAT64",
            if f.is_nan() {
                "NaN".into()
            } else if f.is_infinite() {
                if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
            } else {
                format!("{f:?}")
            },
        ),
        ParamValue::Numeric(text) => {
            if !is_decimal_text(text) {
                return Err(WarehouseError::Query {
                    message: format!("parameter @{name}: `{text}` is not a decimal number"),
                    line: None,
                    column: None,
                });
            }
            scalar(numeric_type(text), text.trim().to_string())
        }
        ParamValue::Bool(b) => scalar("BOOL", b.to_string()),
        ParamValue::Array(items) => {
            let elements = items
                .iter()
                .map(|item| typed(item, name))
                .collect::<Result<Vec<_>, _>>()?;
            let element_type = match elements.first() {
                Some((first, _)) => {
                    if let Some((other, _)) =
                        elements.iter().find(|(t, _)| t.r#type != first.r#type)
                    {
                        return Err(WarehouseError::Query {
                            message: format!(
                                "parameter @{name}: an array holds one type, not both {} and {}",
                                first.r#type, other.r#type
                            ),
                            line: None,
                            column: None,
                        });
                    }
                    first.clone()
                }
                // An empty list still needs an element type; STRING matches most uses.
                None => QueryParameterType {
                    r#type: "STRING".into(),
                    ..Default::default()
                },
            };
            (
                QueryParameterType {
                    r#type: "ARRAY".into(),
                    array_type: Some(Box::new(element_type)),
                    ..Default::default()
                },
                QueryParameterValue {
                    array_values: Some(elements.into_iter().map(|(_, v)| v).collect()),
                    ..Default::default()
                },
            )
        }
    })
}

/// How a result column is read: its `Table` type, or the reason it cannot be charted.
fn columns(fields: &[TableFieldSchema]) -> Result<Vec<ColumnInfo>, WarehouseError> {
    fields
        .iter()
        .map(|field| {
            let unsupported = |type_name: String| WarehouseError::UnsupportedType {
                column: field.name.clone(),
                type_name,
            };
            let type_name = format!("{:?}", field.r#type).to_uppercase();
            if field.mode.as_deref() == Some("REPEATED") {
                return Err(unsupported(format!(
                    "ARRAY<{type_name}> (a repeated column: UNNEST it, or aggregate it with ARRAY_LENGTH or STRING_AGG)"
                )));
            }
            let ty = match field.r#type {
                FieldType::String
                | FieldType::Time
                | FieldType::Json
                | FieldType::Geography
                | FieldType::Interval => ColumnType::Text,
                FieldType::Integer | FieldType::Int64 => ColumnType::Integer,
                FieldType::Float | FieldType::Float64 => ColumnType::Float,
                FieldType::Numeric | FieldType::Bignumeric => ColumnType::Decimal,
                FieldType::Boolean | FieldType::Bool => ColumnType::Bool,
                FieldType::Timestamp | FieldType::Datetime => ColumnType::Timestamp,
                FieldType::Date => ColumnType::Date,
                FieldType::Record | FieldType::Struct => {
                    return Err(unsupported(
                        "STRUCT (a nested column: select its fields, e.g. `col.field AS field`)"
                            .into(),
                    ));
                }
                FieldType::Bytes => return Err(unsupported("BYTES".into())),
            };
            Ok(ColumnInfo {
                name: field.name.clone(),
                ty,
            })
        })
        .collect()
}

/// One value as BigQuery's REST API writes it (every value a string; NULL as null).
fn cell(value: Option<&serde_json::Value>, column: &ColumnInfo) -> Result<Cell, WarehouseError> {
    let text = match value {
        None | Some(serde_json::Value::Null) => return Ok(Cell::Null),
        Some(serde_json::Value::String(text)) => text.as_str(),
        Some(other) => {
            return Err(WarehouseError::UnsupportedType {
                column: column.name.clone(),
                type_name: format!("a nested value ({})", truncate(&other.to_string(), 40)),
            });
        }
    };
    let bad = || {
        WarehouseError::Unavailable(format!(
            "BigQuery returned `{}` in column `{}`, which is not a valid {:?}",
            truncate(text, 40),
            column.name,
            column.ty
        ))
    };
    Ok(match column.ty {
        ColumnType::Text => Cell::Text(text.to_string()),
        ColumnType::Integer => Cell::Integer(text.parse().map_err(|_| bad())?),
        ColumnType::Float => Cell::Float(parse_float(text).ok_or_else(bad)?),
        ColumnType::Decimal => match parse_decimal(text) {
            Some((value, scale)) => Cell::Decimal { value, scale },
            // BIGNUMERIC beyond 38 digits: as close as a float gets.
            None => Cell::Float(parse_float(text).ok_or_else(bad)?),
        },
        ColumnType::Bool => match text {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return Err(bad()),
        },
        ColumnType::Date => {
            Cell::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?)
        }
        ColumnType::Timestamp => Cell::Timestamp(parse_timestamp(text).ok_or_else(bad)?),
    })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// A TIMESTAMP as integer microseconds (`useInt64Timestamp`), as float seconds
/// (`1.7040672E9`, the default and what later pages carry), or a DATETIME
/// (`2026-01-01T09:30:00.123`).
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    if text.contains(['T', '-']) && text.len() >= 10 && text.as_bytes()[4] == b'-' {
        return NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok();
    }
    let micros = if text.contains(['.', 'E', 'e']) {
        let seconds: f64 = text.parse().ok()?;
        (seconds * 1e6).round() as i64
    } else {
        text.parse().ok()?
    };
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max_chars).collect::<String>())
    }
}

enum Failure {
    Transient(String),
    Final(WarehouseError),
}

/// BigQuery's reasons that mean "try again later".
const TRANSIENT_REASONS: [&str; 5] = [
    "backendError",
    "internalError",
    "rateLimitExceeded",
    "jobRateLimitExceeded",
    "jobBackendError",
];

fn classify(error: BQError) -> Failure {
    let response = match error {
        BQError::ResponseError { error } => error.error,
        BQError::RequestError(e) => return Failure::Transient(format!("no usable answer: {e}")),
        BQError::AuthError(_) | BQError::YupAuthError(_) | BQError::NoToken => {
            return Failure::Final(WarehouseError::Refused {
                reason: "authentication".into(),
                message: format!("could not get a Google access token: {error}"),
                advice: "check GOOGLE_APPLICATION_CREDENTIALS (a service-account key file) or the \
                         workload identity of the service account"
                    .into(),
            });
        }
        other => return Failure::Transient(other.to_string()),
    };
    let reason = response
        .errors
        .first()
        .and_then(|e| e.get("reason"))
        .cloned()
        .unwrap_or_default();
    let message = response.message;
    if TRANSIENT_REASONS.contains(&reason.as_str()) || response.code >= 500 || response.code == 429
    {
        return Failure::Transient(format!("{message} ({reason}, HTTP {})", response.code));
    }
    let refused = |advice: &str| {
        Failure::Final(WarehouseError::Refused {
            reason: reason.clone(),
            message: message.clone(),
            advice: advice.to_string(),
        })
    };
    match reason.as_str() {
        "accessDenied" => refused(
            "grant the service account the permission named above: usually roles/bigquery.jobUser \
             on the project and roles/bigquery.dataViewer on the mart dataset",
        ),
        "bytesBilledLimitExceeded" => refused(
            "the query would bill more than its cap: filter on the table's partition column, or \
             raise `maximum_bytes_billed` under [query] in the report (or \
             KPIBOT__WAREHOUSE__BIGQUERY__MAXIMUM_BYTES_BILLED)",
        ),
        "quotaExceeded" => refused(
            "a BigQuery quota named above is used up; it resets on its own schedule, or ask for more in the Cloud console",
        ),
        "billingNotEnabled" => refused("enable billing on the project, or use one that has it"),
        "responseTooLarge" | "resourcesExceeded" => {
            refused("aggregate in SQL so the result is a chart's worth of rows")
        }
        _ if response.code == 401 => {
            refused("the credentials were rejected; check GOOGLE_APPLICATION_CREDENTIALS")
        }
        _ if response.code == 403 => {
            refused("check the service account's roles on the project and dataset")
        }
        _ => {
            let (line, column) = error_position(&message);
            Failure::Final(WarehouseError::Query {
                message,
                line,
                column,
            })
        }
    }
}

/// The `[line:column]` BigQuery appends to a SQL error, e.g. `… at [3:15]`.
pub fn error_position(message: &str) -> (Option<usize>, Option<usize>) {
    let Some(open) = message.rfind('[') else {
        return (None, None);
    };
    let Some(close) = message[open..].find(']') else {
        return (None, None);
    };
    let inner = &message[open + 1..open + close];
    match inner.split_once(':') {
        Some((line, column)) => match (line.parse().ok(), column.parse().ok()) {
            (Some(line), Some(column)) => (Some(line), Some(column)),
            _ => (None, None),
        },
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_in_every_spelling_bigquery_uses() {
        let expected = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_micro_opt(0, 0, 0, 0)
            .unwrap();
        assert_eq!(parse_timestamp("1704067200000000"), Some(expected));
        assert_eq!(parse_timestamp("1.7040672E9"), Some(expected));
        let with_micros = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_micro_opt(0, 0, 1, 250_000)
            .unwrap();
        assert_eq!(parse_timestamp("1.70406720125E9"), Some(with_micros));
        assert_eq!(parse_timestamp("2024-01-01T00:00:01.25"), Some(with_micros));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn error_positions_come_from_the_last_bracket() {
        assert_eq!(
            error_position("Syntax error: Unexpected keyword FROM at [3:15]"),
            (Some(3), Some(15))
        );
        assert_eq!(
            error_position("Unrecognized name: x; Did you mean y? at [12:1]"),
            (Some(12), Some(1))
        );
        assert_eq!(
            error_position("Not found: Table p:mart.x was not found"),
            (None, None)
        );
    }

    #[test]
    fn label_values_are_what_bigquery_accepts() {
        assert_eq!(label_value("Daily-Active_Users"), "daily-active_users");
        assert_eq!(label_value("売上 週次"), "売上_週次");
        assert_eq!(
            label_value(&"x".repeat(80)).chars().count(),
            LABEL_MAX_CHARS
        );
    }

    #[test]
    fn numeric_parameters_pick_the_type_that_holds_them() {
        assert_eq!(numeric_type("123.456789012"), "NUMERIC");
        assert_eq!(numeric_type("0.1234567890"), "BIGNUMERIC");
        assert_eq!(numeric_type(&"9".repeat(30)), "BIGNUMERIC");
    }
}

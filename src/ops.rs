//! The operations endpoints of `kpibot serve`: `/healthz` (the process is up), `/readyz`
//! (the ledger takes writes and the warehouse answers; the warehouse is asked at most once
//! per `READY_WAREHOUSE_CHECK_SECONDS`) and `/metrics` (Prometheus text). They listen on
//! an address of their own (`http.ops_listen`); the public listener has only `/healthz`
//! beside `/slack/…`, unless `http.ops_on_public_listener` says otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::warehouse::{Params, QueryJob, Warehouse};

/// The paths `serve` answers, shared with the deploy manifests' probes.
pub const HEALTH_PATH: &str = "/healthz";
pub const READY_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";
/// Longest a readiness check waits for the warehouse.
pub const READY_WAREHOUSE_TIMEOUT_MS: u64 = 2000;
/// A warehouse answer to a readiness check is reused this long, so probes every few
/// seconds from several replicas do not spend the warehouse's API quota.
pub const READY_WAREHOUSE_CHECK_SECONDS: u64 = 10;

/// When the warehouse was last asked, and whether it answered (or why not).
pub type WarehouseCheck = (Instant, Result<(), String>);

/// What the HTTP handlers can see.
#[derive(Clone)]
pub struct OpsState {
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<Ledger>,
    pub warehouse: Arc<dyn Warehouse>,
    /// The last warehouse check: when, and what it found.
    pub last_check: Arc<tokio::sync::Mutex<Option<WarehouseCheck>>>,
    /// Set on SIGTERM: the process is draining and wants no new requests.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The running catalog, for what readiness says about unreadable policies.
    pub catalog: Option<crate::catalog::SharedCatalog>,
}

impl OpsState {
    pub fn new(metrics: Arc<Metrics>, ledger: Arc<Ledger>, warehouse: Arc<dyn Warehouse>) -> Self {
        Self {
            metrics,
            ledger,
            warehouse,
            last_check: Default::default(),
            draining: Default::default(),
            catalog: None,
        }
    }

    /// Readiness also names spec files whose policies cannot be read.
    pub fn with_catalog(mut self, catalog: crate::catalog::SharedCatalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Whether the warehouse answers, asked at most once per check interval.
    async fn warehouse_answers(&self) -> Result<(), String> {
        let mut last = self.last_check.lock().await;
        if let Some((at, found)) = last.as_ref()
            && at.elapsed() < Duration::from_secs(READY_WAREHOUSE_CHECK_SECONDS)
        {
            return found.clone();
        }
        // A dry run: it proves the warehouse answers and lets us in, and on BigQuery it
        // creates no job and bills nothing.
        let found = self
            .warehouse
            .dry_run(
                "SELECT 1 AS ready",
                &Params::new(),
                &QueryJob::new(Duration::from_millis(READY_WAREHOUSE_TIMEOUT_MS)),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        *last = Some((Instant::now(), found.clone()));
        found
    }
}

/// `/healthz` alone, for the public listener: it says nothing but "ok", and single-port
/// platforms (Cloud Run) probe it there.
pub fn health_router() -> Router {
    Router::new().route(HEALTH_PATH, get(|| async { "ok\n" }))
}

/// Every operations route: `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(ready))
        .route(METRICS_PATH, get(metrics))
        .with_state(state)
}

/// Ready when the ledger takes writes and the warehouse answers. The catalog needs no
/// check: `serve` loads it before the router exists.
async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down (draining)\n".to_string(),
        );
    }
    let mut problems = Vec::new();
    if let Err(e) = state.ledger.check_writable().await {
        problems.push(format!("the ledger is not writable: {e}"));
    }
    if let Err(e) = state.warehouse_answers().await {
        problems.push(format!("the warehouse is not reachable: {e}"));
    }
    // Unreadable policies do not stop the process from serving (it refuses what they
    // could cover), so they are said, not failed on.
    let unreadable: Vec<String> = state
        .catalog
        .as_ref()
        .map(|c| {
            crate::catalog::snapshot(c)
                .unreadable_policy_files()
                .to_vec()
        })
        .unwrap_or_default()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let note = if unreadable.is_empty() {
        String::new()
    } else {
        format!(
            "- data policies unreadable in {}: every answer and post they could cover is refused or held until fixed (kpibot check)\n",
            unreadable.join(", ")
        )
    };
    if problems.is_empty() {
        (StatusCode::OK, format!("ready\n{note}"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n- {}\n", problems.join("\n- ")),
        )
    }
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

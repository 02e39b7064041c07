//! `kpibot serve`: the long-running bot. Wires the catalog (reloaded when `reports/`
//! changes), the ledger, the warehouse and the delivery into the scheduler, serves
//! `/healthz`, `/readyz` and `/metrics`, and stops cleanly on SIGTERM or Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use tokio::sync::watch;

use crate::commands::{open_delivery, open_warehouse};
use crate::deliver::Delivery;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::scheduler::{Scheduler, SchedulerConfig, SharedCatalog};
use crate::settings::Settings;
use crate::spec::{self, Catalog, LoadedFile, ReportSpec, SpecDefaults};
use crate::warehouse::duckdb::DuckDbWarehouse;
use crate::warehouse::{Params, QueryJob, Warehouse};

/// The paths `serve` answers, shared with the deploy manifests' probes.
pub const HEALTH_PATH: &str = "/healthz";
pub const READY_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";
/// Longest a readiness check waits for the warehouse.
pub const READY_WAREHOUSE_TIMEOUT_MS: u64 = 2000;

const METRIC_SPEC_ERRORS: &str = "kpibot_invalid_specs";
const METRIC_SPEC_ERRORS_HELP: &str =
    "Spec files that failed validation at the last load (their last good version keeps running)";
const METRIC_REPORTS: &str = "kpibot_reports";
const METRIC_REPORTS_HELP: &str = "Reports in the running catalog";

/// What the HTTP handlers can see.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<Ledger>,
    pub warehouse: Arc<dyn Warehouse>,
}

/// The HTTP routes of `serve`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(ready))
        .route(METRICS_PATH, get(metrics))
        .with_state(state)
}

/// Ready when the ledger takes writes and the warehouse answers. The catalog needs no
/// check: `serve` loads it before the router exists.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if let Err(e) = state.ledger.check_writable() {
        problems.push(format!("the ledger is not writable: {e}"));
    }
    // A dry run: it proves the warehouse answers and lets us in, and on BigQuery it
    // creates no job and bills nothing, however often the probe asks.
    if let Err(e) = state
        .warehouse
        .dry_run(
            "SELECT 1 AS ready",
            &Params::new(),
            &QueryJob::new(Duration::from_millis(READY_WAREHOUSE_TIMEOUT_MS)),
        )
        .await
    {
        problems.push(format!("the warehouse is not reachable: {e}"));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n- {}\n", problems.join("\n- ")),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Size and modification time of every spec file: changes when any file does.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    // An unreadable folder fingerprints as empty; the reload that follows says why.
    spec::spec_paths(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, (meta.len(), meta.modified().ok())))
        })
        .collect()
}

/// Builds the next catalog: valid files replace their report; an invalid file keeps its
/// report's last good version. Returns the catalog and the files that failed.
pub fn merge_catalog<'f>(
    previous: &Catalog,
    files: &'f [LoadedFile],
) -> (Catalog, Vec<&'f LoadedFile>) {
    let mut reports: Vec<ReportSpec> = Vec::new();
    let mut metrics = Vec::new();
    let mut broken = Vec::new();
    for file in files {
        if file.is_valid() {
            reports.extend(file.spec.clone());
            metrics.extend(file.metrics.iter().cloned());
            continue;
        }
        broken.push(file);
        let id = spec::report_id(&file.path);
        if let Some(last_good) = previous.get(&id) {
            reports.push(last_good.clone());
        }
        metrics.extend(previous.metrics().filter(|m| m.path == file.path).cloned());
    }
    (Catalog::from_specs(reports, metrics), broken)
}

/// The owner to tell about a broken file: its last good version's owner, or the `owner`
/// written in the broken file if it can still be read.
fn owner_of_broken(previous: &Catalog, file: &LoadedFile) -> Option<String> {
    if let Some(spec) = previous.get(&spec::report_id(&file.path)) {
        return Some(spec.owner.clone());
    }
    let value: toml::Table = toml::from_str(&file.source).ok()?;
    value.get("owner")?.as_str().map(str::to_string)
}

/// Loads the catalog now; returns it with the files that failed validation.
fn load(
    dir: &Path,
    defaults: &SpecDefaults,
    previous: &Catalog,
) -> anyhow::Result<(Catalog, Vec<LoadedFile>)> {
    let files = spec::load_dir(dir, defaults)?;
    let (catalog, broken) = merge_catalog(previous, &files);
    let broken = broken.into_iter().cloned().collect();
    Ok((catalog, broken))
}

/// Watches `reports/` and swaps the catalog when it changes.
struct Reloader {
    dir: PathBuf,
    defaults: SpecDefaults,
    catalog: SharedCatalog,
    delivery: Arc<dyn Delivery>,
    metrics: Arc<Metrics>,
    /// How often the folder is checked.
    interval: Duration,
}

/// Reloads whenever a spec file changes; tells owners about files that fail validation
/// (once per version of the file).
async fn reload_loop(
    reloader: Reloader,
    reloaded: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Reloader {
        dir,
        defaults,
        catalog,
        delivery,
        metrics,
        interval,
    } = reloader;
    let mut seen = fingerprint(&dir);
    let mut told: HashMap<PathBuf, String> = HashMap::new();
    let mut generation = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let previous = catalog.read().unwrap_or_else(|p| p.into_inner()).clone();
        let (next, broken) = match load(&dir, &defaults, &previous) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(dir = %dir.display(), error = %format!("{error:#}"), "cannot reload the reports; keeping the running ones");
                continue;
            }
        };
        for file in &broken {
            let diagnostics = file.render_diagnostics();
            tracing::error!(file = %file.path.display(), "invalid report spec; its last good version keeps running:\n{diagnostics}");
            if told.get(&file.path) == Some(&file.source) {
                continue;
            }
            told.insert(file.path.clone(), file.source.clone());
            if let Some(owner) = owner_of_broken(&previous, file) {
                let text = format!(
                    ":x: `{}` has problems; kpibot keeps running its last good version until it is fixed:\n```\n{}```",
                    file.path.display(),
                    diagnostics
                );
                if let Err(error) = delivery.notify(&owner, &text).await {
                    tracing::error!(owner, error = %error, "could not tell the owner about an invalid spec");
                }
            }
        }
        told.retain(|path, _| broken.iter().any(|f| &f.path == path));
        metrics.set(
            METRIC_SPEC_ERRORS,
            METRIC_SPEC_ERRORS_HELP,
            &[],
            broken.len() as f64,
        );
        metrics.set(METRIC_REPORTS, METRIC_REPORTS_HELP, &[], next.len() as f64);
        tracing::info!(
            reports = next.len(),
            invalid = broken.len(),
            "reports reloaded"
        );
        *catalog.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        generation += 1;
        let _ = reloaded.send(generation);
    }
}

/// How often a running bot checks whether the demo mart needs yesterday's data.
pub const DEMO_REFRESH_CHECK_SECONDS: u64 = 600;

/// Keeps the demo mart current while `serve` runs for days: after midnight in the bot's
/// timezone it is rebuilt with yesterday's data and the warehouse reopens it.
async fn refresh_demo_mart(
    duck: Arc<DuckDbWarehouse>,
    timezone: chrono_tz::Tz,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(DEMO_REFRESH_CHECK_SECONDS)) => {}
            _ = shutdown.changed() => return,
        }
        let yesterday = crate::pipeline::today_in(timezone, Utc::now()) - chrono::Days::new(1);
        if duck.demo_data_through() >= Some(yesterday) {
            continue;
        }
        let path = duck.path().to_path_buf();
        let built =
            tokio::task::spawn_blocking(move || crate::demo::ensure_demo_mart(&path, yesterday))
                .await;
        match built {
            Ok(Ok(_)) => match duck.reopen() {
                Ok(()) => tracing::info!(%yesterday, "demo mart refreshed"),
                Err(error) => {
                    tracing::error!(error = %error, "could not reopen the refreshed demo mart")
                }
            },
            Ok(Err(error)) => tracing::error!(error = %error, "could not refresh the demo mart"),
            Err(error) => tracing::error!(error = %error, "the demo mart refresh stopped"),
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the bot until SIGTERM/SIGINT.
pub async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let findings = crate::preflight::check(settings);
    if let Some(errors) = crate::preflight::errors(&findings) {
        anyhow::bail!(errors);
    }
    for finding in &findings {
        tracing::warn!("{finding}");
    }
    let metrics = Arc::new(Metrics::new());
    let defaults = SpecDefaults {
        timezone: settings.timezone()?,
    };
    let dir = settings.reports.dir.clone();
    let (initial, broken) = load(&dir, &defaults, &Catalog::default())
        .with_context(|| format!("cannot load the reports in {}", dir.display()))?;
    for file in &broken {
        tracing::error!(file = %file.path.display(), "invalid report spec; it will not run until fixed:\n{}", file.render_diagnostics());
    }
    metrics.set(
        METRIC_SPEC_ERRORS,
        METRIC_SPEC_ERRORS_HELP,
        &[],
        broken.len() as f64,
    );
    metrics.set(
        METRIC_REPORTS,
        METRIC_REPORTS_HELP,
        &[],
        initial.len() as f64,
    );
    let ledger = Arc::new(Ledger::open(&settings.ledger.path)?);
    let (warehouse, demo): (Arc<dyn Warehouse>, Option<Arc<DuckDbWarehouse>>) =
        match settings.warehouse.kind {
            crate::settings::WarehouseKind::Duckdb if settings.warehouse.duckdb.demo_mart => {
                let duck = Arc::new(crate::commands::open_duckdb(
                    settings,
                    Utc::now(),
                    &mut std::io::stderr(),
                )?);
                (duck.clone(), Some(duck))
            }
            _ => (
                Arc::from(open_warehouse(settings, Utc::now(), &mut std::io::stderr()).await?),
                None,
            ),
        };
    // Slash commands need Slack itself: the concrete delivery, not just the seam.
    let slack = crate::commands::open_slack(settings, metrics.clone())?;
    let delivery: Arc<dyn Delivery> = match &slack {
        Some(slack) => slack.clone(),
        None => open_delivery(settings, metrics.clone())?,
    };
    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (KPIBOT__HTTP__LISTEN)",
                settings.http.listen
            )
        })?;
    let address = listener.local_addr()?;
    let reports = initial.len();
    let catalog: SharedCatalog = Arc::new(RwLock::new(Arc::new(initial)));

    let (shutdown_tx, shutdown) = watch::channel(false);
    let (reloaded_tx, reloaded) = watch::channel(0u64);
    let mut app = router(AppState {
        metrics: metrics.clone(),
        ledger: ledger.clone(),
        warehouse: warehouse.clone(),
    });
    let handler = slack.as_ref().map(|slack| {
        Arc::new(crate::slash::CommandHandler {
            catalog: catalog.clone(),
            warehouse: warehouse.clone(),
            slack: slack.clone(),
            metrics: metrics.clone(),
            timezone: defaults.timezone,
            timeout: Duration::from_secs(settings.slash.query_timeout_seconds),
            policy: match settings.slash.default_policy {
                crate::settings::AccessPolicy::Allow => crate::ask::DefaultPolicy::Allow,
                crate::settings::AccessPolicy::Deny => crate::ask::DefaultPolicy::Deny,
            },
            cache: crate::ask::QueryCache::default(),
            audit_log: settings.slash.audit_log.clone(),
            audit_file: Default::default(),
        })
    });
    match (handler, settings.slash.transport) {
        (Some(handler), crate::settings::SlashTransport::Http) => {
            match &settings.slack.signing_secret {
                Some(secret) => {
                    app = app.merge(crate::slash::router(secret.expose(), handler));
                    tracing::info!(path = crate::slash::COMMANDS_PATH, "slash commands enabled");
                }
                None => tracing::info!(
                    "slash commands disabled: HTTP slash commands need KPIBOT__SLACK__SIGNING_SECRET"
                ),
            }
        }
        (Some(handler), crate::settings::SlashTransport::Socket) => {
            let app_token = settings.slack.app_token.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "KPIBOT__SLASH__TRANSPORT=socket needs KPIBOT__SLACK__APP_TOKEN (an app-level token, xapp-…, with connections:write)"
                )
            })?;
            let api_url = settings.slack.api_url.clone();
            let app_token = app_token.expose().to_string();
            let socket_shutdown = shutdown.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    crate::slash::run_socket_mode(handler, &api_url, &app_token, socket_shutdown)
                        .await
                {
                    tracing::error!(error = %error, "Socket Mode stopped; slash commands are not being received");
                }
            });
        }
        (None, _) => tracing::info!(
            "slash commands disabled: they need Slack delivery (KPIBOT__SLACK__BOT_TOKEN)"
        ),
    }
    let mut http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await
    });
    if let Some(duck) = demo {
        tokio::spawn(refresh_demo_mart(duck, defaults.timezone, shutdown.clone()));
    }
    let reloader = Reloader {
        dir: dir.clone(),
        defaults,
        catalog: catalog.clone(),
        delivery: delivery.clone(),
        metrics: metrics.clone(),
        interval: Duration::from_millis(settings.scheduler.reload_interval_ms),
    };
    tokio::spawn(reload_loop(reloader, reloaded_tx, shutdown.clone()));
    tokio::spawn(async move {
        termination().await;
        tracing::info!("stop requested");
        let _ = shutdown_tx.send(true);
    });
    tracing::info!(
        %address,
        reports,
        delivery = ?settings.effective_delivery(),
        ledger = %settings.ledger.path.display(),
        "kpibot serve: listening on http://{address}"
    );
    let scheduler = Scheduler::new(
        catalog,
        ledger,
        warehouse,
        delivery,
        metrics,
        SchedulerConfig {
            catch_up: Duration::from_secs(settings.scheduler.catch_up_hours * 3600),
            lease: Duration::from_secs(settings.scheduler.lease_seconds.max(1)),
            warehouse_attempts: settings.scheduler.warehouse_attempts.max(1),
            default_timeout: settings.query_timeout(),
            shutdown_grace: Duration::from_secs(settings.scheduler.shutdown_grace_seconds),
        },
    );
    scheduler.run(shutdown, reloaded).await?;
    http.await??;
    tracing::info!("kpibot serve stopped");
    Ok(())
}

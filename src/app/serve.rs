//! `kpibot serve`, the long-running bot: from what [`App`] builds, it starts the
//! operations endpoints, `/kpi` (HTTP or Socket Mode), the catalog reloader, the demo mart's
//! nightly refresh, the scheduler and the alert flow, and stops cleanly on SIGTERM or
//! Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Days, Utc};
use tokio::sync::watch;

use super::{App, preflight};
use crate::adhoc::interact;
use crate::adhoc::slash;
use crate::alerts::notify::Notifier;
use crate::alerts::run::{AlertParts, AlertRunner};
use crate::catalog::reload::{self, Reloader, publish_counts, reload_loop};
use crate::catalog::{self, Catalog};
use crate::deliver::Delivery;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::ops::{self, OpsState};
use crate::pipeline::today_in;
use crate::scheduled::{Scheduler, SchedulerParts, process_owner};
use crate::settings::{SlashTransport, WarehouseKind};
use crate::slack::inbound::{Verifier, run_socket_mode};
use crate::warehouse::Warehouse;
use crate::warehouse::demo::ensure_demo_mart;
use crate::warehouse::duckdb::DuckDbWarehouse;
use crate::warehouse::shared::SharedWarehouse;

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
        let yesterday = today_in(timezone, Utc::now()) - Days::new(1);
        if duck.demo_data_through() >= Some(yesterday) {
            continue;
        }
        let path = duck.path().to_path_buf();
        let built = tokio::task::spawn_blocking(move || ensure_demo_mart(&path, yesterday)).await;
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
pub async fn serve(app: &App) -> anyhow::Result<()> {
    let settings = &app.settings;
    let findings = preflight::check(settings);
    if let Some(errors) = preflight::errors(&findings) {
        anyhow::bail!(errors);
    }
    for finding in &findings {
        tracing::warn!("{finding}");
    }
    let metrics = Arc::new(Metrics::new());
    let dir = app.reports_dir().to_path_buf();
    // Before the load: a change while loading is picked up by the first reload.
    let loaded_from = reload::fingerprint(&dir, &app.spec_defaults());
    let (initial, broken) = catalog::load(&dir, &app.spec_defaults(), &Catalog::default())
        .with_context(|| format!("cannot load the reports in {}", dir.display()))?;
    for file in &broken {
        tracing::error!(file = %file.path.display(), "invalid report spec; it will not run until fixed:\n{}", file.render_diagnostics());
    }
    publish_counts(&metrics, &initial, broken.len());
    let ledger = Arc::new(Ledger::from_settings(&settings.ledger).await?);
    let ledger_name = ledger.describe();
    let (warehouse, demo): (Arc<dyn Warehouse>, Option<Arc<DuckDbWarehouse>>) =
        match settings.warehouse.kind {
            WarehouseKind::Duckdb if settings.warehouse.duckdb.demo_mart => {
                let duck = Arc::new(app.open_duckdb(Utc::now(), &mut std::io::stderr())?);
                (duck.clone(), Some(duck))
            }
            _ => (
                Arc::from(
                    app.open_warehouse(Utc::now(), &mut std::io::stderr())
                        .await?,
                ),
                None,
            ),
        };
    // Every flow's queries share one bound, and identical ones running together run once.
    let warehouse: Arc<dyn Warehouse> = Arc::new(SharedWarehouse::new(
        warehouse,
        settings.warehouse.max_concurrent_queries,
    ));
    // Slash commands need Slack itself: the concrete delivery, not just the seam.
    let slack = app.open_slack(metrics.clone())?;
    let delivery: Arc<dyn Delivery> = match &slack {
        Some(slack) => slack.clone(),
        None => app.open_delivery(metrics.clone())?,
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
    let catalog = catalog::shared(initial);

    let (shutdown_tx, shutdown) = watch::channel(false);
    // The listeners close after the drain period, later than everything else stops.
    let (listeners_stop_tx, listeners_stop) = watch::channel(false);
    let (reloaded_tx, reloaded) = watch::channel(0u64);
    let ops_state = OpsState::new(metrics.clone(), ledger.clone(), warehouse.clone())
        .with_catalog(catalog.clone());
    let draining = ops_state.draining.clone();
    let ops_router = ops::router(ops_state);
    let ops_address = &settings.http.ops_listen;
    let ops_listener = tokio::net::TcpListener::bind(ops_address)
        .await
        .with_context(|| format!("cannot listen on {ops_address} (KPIBOT__HTTP__OPS_LISTEN)"))?;
    if let Some(path) = &settings.http.address_file {
        write_addresses(path, address, ops_listener.local_addr()?)?;
    }
    // `/readyz` (warehouse and ledger errors) and `/metrics` stay off the public listener
    // unless a setting asks for them there; `/healthz` is on both.
    let mut router = if settings.http.ops_on_public_listener {
        ops_router.clone()
    } else {
        ops::health_router()
    };
    let handler = slack.as_ref().map(|slack| {
        Arc::new(app.command_handler(
            catalog.clone(),
            warehouse.clone(),
            slack.clone(),
            metrics.clone(),
            Some(ledger.clone()),
        ))
    });
    let answers = handler.as_ref().map(|handler| handler.answers.clone());
    // Digests of followed questions go through the same answer path as `/kpi`.
    let digests = handler.as_ref().map(|handler| {
        let lease = app.scheduler_config().lease;
        let digests = Arc::new(crate::follow::Digests::new(
            handler.clone(),
            ledger.clone(),
            process_owner(),
            lease,
        ));
        tokio::spawn(digests.run(shutdown.clone()))
    });
    match (handler, settings.slash.transport) {
        (Some(handler), SlashTransport::Http) => match &settings.slack.signing_secret {
            Some(secret) => {
                // One verifier for both: a signed request is taken once, by either.
                let verifier = Arc::new(Verifier::new(secret.expose()));
                router = router.merge(slash::router(verifier.clone(), handler.clone()));
                router = router.merge(crate::adhoc::events::router(
                    verifier.clone(),
                    handler.clone(),
                ));
                router = router.merge(interact::router(verifier, handler));
                tracing::info!(
                    path = slash::COMMANDS_PATH,
                    interactions = interact::INTERACTIONS_PATH,
                    "slash commands and buttons enabled"
                );
            }
            None => tracing::info!(
                "slash commands disabled: HTTP slash commands need KPIBOT__SLACK__SIGNING_SECRET"
            ),
        },
        (Some(handler), SlashTransport::Socket) => {
            let app_token = settings.slack.app_token.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "KPIBOT__SLASH__TRANSPORT=socket needs KPIBOT__SLACK__APP_TOKEN (an app-level token, xapp-…, with connections:write)"
                )
            })?;
            let api_url = settings.slack.api_url.clone();
            let app_token = app_token.expose().to_string();
            let socket_shutdown = shutdown.clone();
            tokio::spawn(async move {
                if let Err(error) = run_socket_mode(
                    (
                        slash::on_command(handler.clone()),
                        crate::adhoc::events::on_home_opened(handler.clone()),
                    ),
                    (interact::actions_in, interact::on_action(handler)),
                    &api_url,
                    &app_token,
                    socket_shutdown,
                )
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
    {
        let mut ops_shutdown = listeners_stop.clone();
        tracing::info!(address = %ops_listener.local_addr()?, "operations endpoints on their own listener");
        tokio::spawn(async move {
            let served = axum::serve(ops_listener, ops_router)
                .with_graceful_shutdown(async move {
                    let _ = ops_shutdown.changed().await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(error = %error, "the operations listener stopped");
            }
        });
    }
    let mut http_shutdown = listeners_stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await
    });
    if let Some(duck) = demo {
        tokio::spawn(refresh_demo_mart(duck, app.timezone, shutdown.clone()));
    }
    let reloader = Reloader {
        dir,
        defaults: app.spec_defaults(),
        catalog: catalog.clone(),
        delivery: delivery.clone(),
        metrics: metrics.clone(),
        interval: Duration::from_millis(settings.scheduler.reload_interval_ms),
        locale: app.locale,
        loaded_from,
    };
    tokio::spawn(reload_loop(reloader, reloaded_tx, shutdown.clone()));
    let drain = Duration::from_secs(settings.http.drain_seconds);
    tokio::spawn(async move {
        termination().await;
        tracing::info!(
            drain_seconds = drain.as_secs(),
            "stop requested: /readyz now says not ready; the listeners answer while the load balancer catches up"
        );
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = shutdown_tx.send(true);
        tokio::time::sleep(drain).await;
        let _ = listeners_stop_tx.send(true);
    });
    tracing::info!(
        %address,
        reports,
        delivery = ?settings.effective_delivery(),
        ledger = %ledger_name,
        "kpibot serve: listening on http://{address}"
    );
    let notifier = match &slack {
        Some(slack) => Notifier::Slack(slack.slack().clone()),
        None => Notifier::Folder(app.out_dir().clone()),
    };
    let meter = app.meter(ledger.clone(), metrics.clone());
    // Slack's pace per channel holds across replicas: the ledger hands out the turns, to
    // report posts and alert notices alike.
    let channel_turns = slack
        .is_some()
        .then(|| Duration::from_millis(settings.slack.channel_post_interval_ms));
    let mut alert_config = app.alert_config();
    alert_config.channel_turns = channel_turns;
    let alerts = AlertRunner::new(
        AlertParts {
            catalog: catalog.clone(),
            ledger: ledger.clone(),
            warehouse: warehouse.clone(),
            delivery: delivery.clone(),
            notifier,
            metrics: metrics.clone(),
            meter: meter.clone(),
        },
        alert_config,
        process_owner(),
    );
    let alerts = tokio::spawn(Arc::new(alerts).run(shutdown.clone()));
    let parts = SchedulerParts {
        catalog,
        ledger,
        warehouse,
        delivery,
        metrics,
        meter,
    };
    let mut scheduler_config = app.scheduler_config();
    scheduler_config.channel_turns = channel_turns;
    let scheduler = Scheduler::new(parts, scheduler_config);
    scheduler.run(shutdown, reloaded).await?;
    if let Err(error) = alerts.await {
        tracing::error!(error = %error, "the alert flow stopped");
    }
    if let Some(digests) = digests
        && let Err(error) = digests.await
    {
        tracing::error!(error = %error, "the digests of followed questions stopped");
    }
    http.await??;
    // Questions acknowledged before the listeners closed still get their answers.
    if let Some(answers) = answers {
        answers.close();
        let grace = Duration::from_secs(settings.scheduler.shutdown_grace_seconds);
        if tokio::time::timeout(grace, answers.wait()).await.is_err() {
            tracing::warn!(
                unanswered = answers.len(),
                "slash answers still in progress at the end of the grace period"
            );
        }
    }
    tracing::info!("kpibot serve stopped");
    Ok(())
}

/// Writes the bound addresses to `path` in one step (a new file renamed over it), so a
/// reader sees both lines or none.
fn write_addresses(
    path: &std::path::Path,
    public: std::net::SocketAddr,
    ops: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("listen={public}\nops_listen={ops}\n"))
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| {
            format!(
                "cannot write {} (KPIBOT__HTTP__ADDRESS_FILE)",
                path.display()
            )
        })
}

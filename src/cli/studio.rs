//! `kpibot studio [--listen ADDR]`: checks where it may listen, opens the warehouse,
//! prints the address to open and serves [`crate::studio`] until Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use chrono::Utc;

use crate::app::App;
use crate::ledger::Ledger;
use crate::studio::{Parts, Reads, StudioError, listen_address, serve};
use crate::warehouse::Warehouse;

pub async fn studio(app: &App, listen: Option<&str>, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = &app.settings.studio;
    let token = settings.token.as_ref().map(|t| t.expose().to_string());
    let addr = listen_address(listen.unwrap_or(settings.listen.as_str()), token.as_deref())?;
    let warehouse: Arc<dyn Warehouse> = Arc::from(app.open_warehouse(Utc::now(), out).await?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StudioError::Bind { addr, source })?;
    let bound = listener.local_addr()?;
    let suffix = token
        .as_ref()
        .map(|t| format!("/?token={t}"))
        .unwrap_or_default();
    writeln!(
        out,
        "kpibot studio: open http://{bound}{suffix} (reports from {}; Ctrl-C stops it)",
        app.reports_dir().display()
    )?;
    out.flush()?;
    let parts = Parts {
        reports_dir: app.reports_dir().to_path_buf(),
        defaults: app.spec_defaults(),
        limits: app.limits,
        query_timeout: app.query_timeout,
        locale: app.locale,
        alerts: app.settings.alerts.clone(),
        backtest_days_max: settings.backtest_days_max,
        runs_shown: settings.runs_shown as usize,
        slack_url: settings.slack_url.clone(),
    };
    // Recent runs come from the ledger, opened so that the studio cannot write to it.
    let ledger = Ledger::read_only(&app.settings.ledger).map_err(|e| e.to_string());
    serve(parts, Reads { warehouse, ledger }, listener, token).await?;
    Ok(())
}

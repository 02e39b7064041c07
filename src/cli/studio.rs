//! `kpibot studio [--listen ADDR]`: checks where it may listen, opens the warehouse,
//! prints the address to open and serves [`crate::studio`] until Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use chrono::Utc;

use crate::app::App;
use crate::ledger::Ledger;
use crate::settings::WarehouseKind;
use crate::studio::{Parts, Reads, Source, StudioError, listen_address, serve};
use crate::warehouse::Warehouse;

pub async fn studio(app: &App, listen: Option<&str>, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = &app.settings.studio;
    let token = settings.token.as_ref().map(|t| t.expose().to_string());
    let addr = listen_address(listen.unwrap_or(settings.listen.as_str()), token.as_deref())?;
    let warehouses = warehouses(app, out).await?;
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
    serve(parts, Reads { warehouses, ledger }, listener, token).await?;
    Ok(())
}

/// The warehouses the page offers: the configured one, and the embedded demo mart beside
/// it (built in its usual place) when the configured one is not already the demo, so an
/// author can try a report on either. The demo is never built over the configured file.
async fn warehouses(app: &App, out: &mut dyn Write) -> anyhow::Result<Vec<Source>> {
    let now = Utc::now();
    let warehouse = &app.settings.warehouse;
    let configured: Arc<dyn Warehouse> = Arc::from(app.open_warehouse(now, out).await?);
    let demo = crate::settings::WarehouseSettings::default();
    let is_demo = warehouse.kind == WarehouseKind::Duckdb && warehouse.duckdb.demo_mart;
    let demo_path_taken = warehouse.kind == WarehouseKind::Duckdb
        && same_file(&warehouse.duckdb.path, &demo.duckdb.path);
    if is_demo || demo_path_taken {
        let name = if is_demo { "demo" } else { "configured" };
        return Ok(vec![Source {
            name,
            warehouse: configured,
        }]);
    }
    let mut sources = vec![Source {
        name: "configured",
        warehouse: configured,
    }];
    let mut settings = app.settings.clone();
    settings.warehouse = demo;
    let opened = App::new(settings)
        .map_err(anyhow::Error::from)
        .and_then(|demo_app| demo_app.open_duckdb(now, out));
    match opened {
        Ok(demo) => sources.push(Source {
            name: "demo",
            warehouse: Arc::new(demo),
        }),
        Err(error) => writeln!(out, "the embedded demo mart is not offered: {error:#}")?,
    }
    Ok(sources)
}

/// Whether two paths name one file, however written (`./data/x`, `data/x`, absolute, a
/// link): the file's own canonical path when it exists, else its folder's plus its name.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let resolved = |path: &std::path::Path| {
        std::fs::canonicalize(path).ok().or_else(|| {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            let folder = std::fs::canonicalize(folder.unwrap_or(std::path::Path::new("."))).ok()?;
            Some(folder.join(path.file_name()?))
        })
    };
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        // Unresolvable (a folder that does not exist yet): compare as written.
        _ => a == b,
    }
}

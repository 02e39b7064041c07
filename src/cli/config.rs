//! `kpibot config [--check]`: the effective settings (secrets redacted), or every finding
//! of the pre-flight check and whether `serve` would start.

use std::io::Write;

use crate::app::App;
use crate::app::preflight::{self, Level};
use crate::settings::SlashTransport;

/// `kpibot config --check`: every finding, then whether `serve` would start.
pub async fn config_check(app: &App, out: &mut dyn Write) -> anyhow::Result<bool> {
    let settings = &app.settings;
    let mut findings = preflight::check(settings);
    if settings.ledger.url.is_some()
        && let Err(error) = crate::ledger::Ledger::probe(&settings.ledger).await
    {
        findings.push(preflight::Finding {
            level: Level::Error,
            setting: "KPIBOT__LEDGER__URL",
            message: error.to_string(),
        });
    }
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if errors == 0 {
        writeln!(
            out,
            "settings OK for `kpibot serve` (delivery: {:?}, slash commands: {})",
            settings.effective_delivery(),
            match (&settings.slack.signing_secret, settings.slash.transport) {
                (_, SlashTransport::Socket) => "Socket Mode",
                (Some(_), _) => "HTTP",
                (None, _) => "off",
            }
        )?;
    } else {
        writeln!(
            out,
            "{errors} error(s): `kpibot serve` would refuse to start"
        )?;
    }
    Ok(errors == 0)
}

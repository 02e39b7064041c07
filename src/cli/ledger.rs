//! `kpibot ledger migrate --from FILE`: moves a SQLite ledger's history into the ledger
//! the settings name (usually PostgreSQL), so catch-up, `history`, alerts and follows
//! carry on there.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::app::App;
use crate::ledger::Ledger;

pub async fn migrate(app: &App, from: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    if !from.exists() {
        bail!(
            "no SQLite ledger at {}: give the file `serve` wrote (KPIBOT__LEDGER__PATH, default data/ledger.sqlite)",
            from.display()
        );
    }
    let source = Ledger::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let target = Ledger::from_settings(&app.settings.ledger).await?;
    if source.describe() == target.describe() {
        bail!(
            "{} is already the ledger the settings name: set KPIBOT__LEDGER__URL to the PostgreSQL ledger to copy into",
            from.display()
        );
    }
    let (read, copied) = target.copy_from(&source).await?;
    writeln!(
        out,
        "copied {copied} of {read} runs and daily spend totals from {} into {} ({} were there already)",
        source.describe(),
        target.describe(),
        read - copied
    )?;
    let (read, copied) = target.copy_alerts_from(&source).await?;
    writeln!(
        out,
        "copied {copied} of {read} alert rounds and notices ({} were there already)",
        read - copied
    )?;
    let (read, copied) = target.copy_follows_from(&source).await?;
    writeln!(
        out,
        "copied {copied} of {read} follows and digests ({} were there already)",
        read - copied
    )?;
    Ok(())
}

//! Keeps the running catalog current: `reports/` is fingerprinted (paths, sizes, mtimes)
//! every few seconds; on a change it is loaded again, broken files keep their last good
//! version, and their owners are told once per version of the file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{Catalog, SharedCatalog, load, snapshot};
use crate::deliver::Delivery;
use crate::i18n::{Locale, mrkdwn};
use crate::metrics::Metrics;
use crate::spec::{self, LoadedFile, SpecDefaults};

const METRIC_SPEC_ERRORS: &str = "kpibot_invalid_specs";
const METRIC_SPEC_ERRORS_HELP: &str =
    "Spec files that failed validation at the last load (their last good version keeps running)";
const METRIC_REPORTS: &str = "kpibot_reports";
const METRIC_REPORTS_HELP: &str = "Reports in the running catalog";

/// Sets the gauges of how many reports run and how many files are broken.
pub fn publish_counts(metrics: &Metrics, catalog: &Catalog, broken: usize) {
    metrics.set(
        METRIC_SPEC_ERRORS,
        METRIC_SPEC_ERRORS_HELP,
        &[],
        broken as f64,
    );
    metrics.set(
        METRIC_REPORTS,
        METRIC_REPORTS_HELP,
        &[],
        catalog.len() as f64,
    );
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

/// The owner to tell about a broken file: its last good version's owner, or the `owner`
/// written in the broken file if it can still be read.
fn owner_of_broken(previous: &Catalog, file: &LoadedFile) -> Option<String> {
    if let Some(spec) = previous.get(&spec::report_id(&file.path)) {
        return Some(spec.owner.clone());
    }
    let value: toml::Table = toml::from_str(&file.source).ok()?;
    value.get("owner")?.as_str().map(str::to_string)
}

/// What a broken file's owner is told, as Slack mrkdwn: the file and its problems as
/// `check` shows them, in a code block (the file's own text cannot mention or format).
pub fn broken_file_notice(file: &LoadedFile, locale: Locale) -> String {
    format!(
        "{}\n{}",
        crate::tr_mrkdwn!(
            locale,
            "notice-spec-broken",
            file = file.path.display().to_string()
        ),
        mrkdwn::code_block(&file.render_diagnostics())
    )
}

/// Watches `reports/` and swaps the catalog when it changes.
pub struct Reloader {
    pub dir: PathBuf,
    pub defaults: SpecDefaults,
    pub catalog: SharedCatalog,
    pub delivery: Arc<dyn Delivery>,
    pub metrics: Arc<Metrics>,
    /// How often the folder is checked.
    pub interval: Duration,
    /// The language owners are told in.
    pub locale: Locale,
}

/// Reloads whenever a spec file changes; tells owners about files that fail validation
/// (once per version of the file).
pub async fn reload_loop(
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
        locale,
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
        let previous = snapshot(&catalog);
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
                let text = broken_file_notice(file, locale);
                if let Err(error) = delivery.notify(&owner, &text).await {
                    tracing::error!(owner, error = %error, "could not tell the owner about an invalid spec");
                }
            }
        }
        told.retain(|path, _| broken.iter().any(|f| &f.path == path));
        publish_counts(&metrics, &next, broken.len());
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

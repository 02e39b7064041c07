//! Keeps the running catalog current: `reports/` is fingerprinted (paths, what they resolve
//! to, sizes, mtimes) every few seconds; on a change it is loaded again, broken files keep
//! their last good version, and their owners are told once per version of the file.

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

/// Per spec file (by the path a person gave it): the file it resolves to, its size and
/// modification time. Changes when any file does, and when a ConfigMap update swaps
/// `..data` to a new folder, even if every size and time stays the same.
pub type Fingerprint = BTreeMap<PathBuf, (PathBuf, u64, Option<SystemTime>)>;

/// The fingerprint of `dir` and of dbt's artifacts (`defaults.dbt`) now. Take it before
/// loading the catalog it goes with, so a change in between is seen by the next poll.
pub fn fingerprint(dir: &Path, defaults: &SpecDefaults) -> Fingerprint {
    // An unreadable folder fingerprints as empty; the reload that follows says why.
    let dbt = [&defaults.dbt.semantic_manifest, &defaults.dbt.manifest];
    let dbt = dbt.into_iter().flatten().map(|path| spec::SpecFile {
        path: path.clone(),
        target: std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()),
    });
    spec::spec_files(dir)
        .unwrap_or_default()
        .into_iter()
        .chain(dbt)
        .filter_map(|file| {
            let meta = std::fs::metadata(&file.target).ok()?;
            Some((file.path, (file.target, meta.len(), meta.modified().ok())))
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
    /// The folder's [`fingerprint`] from before the running catalog was loaded.
    pub loaded_from: Fingerprint,
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
        loaded_from,
    } = reloader;
    let mut seen = loaded_from;
    let mut told: HashMap<PathBuf, String> = HashMap::new();
    let mut generation = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let now = fingerprint(&dir, &defaults);
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::deliver::FolderDelivery;

    /// The longest a test waits for a reload it caused.
    const RELOAD_WAIT_SECONDS: u64 = 30;

    /// Writes `files` into a new timestamped folder of the ConfigMap volume `dir`, each
    /// with the modification time `mtime`, and points `..data` at it the way the kubelet
    /// does: a new link renamed over the old one, then one link per file.
    fn configmap_version(dir: &Path, stamp: &str, files: &[(String, String)], mtime: SystemTime) {
        let folder = dir.join(format!("..{stamp}"));
        std::fs::create_dir_all(&folder).unwrap();
        for (name, text) in files {
            let file = std::fs::File::create(folder.join(name)).unwrap();
            std::io::Write::write_all(&mut &file, text.as_bytes()).unwrap();
            file.set_modified(mtime).unwrap();
        }
        symlink(format!("..{stamp}"), dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        for (name, _) in files {
            let link = dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), link).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_configmap_update_is_picked_up_even_when_sizes_and_times_match() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("reports");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&examples)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        configmap_version(&dir, "2026_12_05_10_00_00.000000001", &files, mtime);

        let defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
        let loaded_from = fingerprint(&dir, &defaults);
        let (initial, broken) = load(&dir, &defaults, &Catalog::default()).unwrap();
        assert!(broken.is_empty(), "{:?}", broken[0].diagnostics);
        let title = |catalog: &SharedCatalog| {
            snapshot(catalog)
                .get("daily_active_users")
                .map(|r| r.title.clone())
        };
        let reports = initial.len();
        let catalog = super::super::shared(initial);
        assert_eq!(
            title(&catalog).as_deref(),
            Some("日次アクティブユーザー (DAU)")
        );
        let (reloaded_tx, mut reloaded) = watch::channel(0u64);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let reloader = Reloader {
            dir: dir.clone(),
            defaults,
            catalog: catalog.clone(),
            delivery: Arc::new(FolderDelivery::new(scratch.path().join("out"))),
            metrics: Arc::new(Metrics::new()),
            interval: Duration::from_millis(20),
            locale: Locale::En,
            loaded_from,
        };
        let running = tokio::spawn(reload_loop(reloader, reloaded_tx, shutdown));

        // The next version: one title changed, same length, same times.
        for (name, text) in &mut files {
            if name == "daily_active_users.toml" {
                *text = text.replace("(DAU)", "(XYZ)");
            }
        }
        configmap_version(&dir, "2026_12_05_11_00_00.000000002", &files, mtime);
        tokio::time::timeout(Duration::from_secs(RELOAD_WAIT_SECONDS), reloaded.changed())
            .await
            .expect("the ConfigMap update was not picked up")
            .unwrap();
        assert_eq!(
            title(&catalog).as_deref(),
            Some("日次アクティブユーザー (XYZ)")
        );
        assert_eq!(snapshot(&catalog).len(), reports, "every report, once");
        shutdown_tx.send(true).unwrap();
        running.await.unwrap();
    }
}

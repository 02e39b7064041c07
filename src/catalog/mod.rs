//! The catalog: every valid report and metric, by name. Loaded from `reports/` once for a
//! CLI verb, or kept current by the [`reload`]er while `serve` runs, where a broken file
//! keeps its last good version and its owner is told. The scheduler and the ad-hoc flow
//! read it through one [`SharedCatalog`] handle.

pub mod access;
pub mod names;
pub mod reload;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::spec::policy;
use crate::spec::{
    self, AlertSpec, LoadError, LoadedFile, MetricSpec, PolicySpec, ReportSpec, SpecDefaults,
};

/// The running catalog, replaced whole on reload; readers take a snapshot.
pub type SharedCatalog = Arc<RwLock<Arc<Catalog>>>;

/// The set of valid reports and metrics, by name, and the data policies over them.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    reports: BTreeMap<String, ReportSpec>,
    metrics: BTreeMap<String, MetricSpec>,
    policies: Vec<PolicySpec>,
    alerts: BTreeMap<String, AlertSpec>,
    /// Every metric's targets.
    targets: Vec<spec::TargetSpec>,
    /// Files that may declare policies but cannot be loaded, with no last good version of
    /// their policies: who may see what cannot be told, so every flow fails closed until
    /// they are fixed.
    unreadable_policy_files: Vec<std::path::PathBuf>,
    /// Every name the entries answer to, built on first use.
    names: std::sync::OnceLock<names::NameIndex>,
}

impl Catalog {
    /// Keeps the valid specs of `files`.
    pub fn from_loaded(files: &[LoadedFile]) -> Self {
        let valid = files.iter().filter(|f| f.is_valid());
        Self::from_specs(
            valid.clone().filter_map(|f| f.spec.clone()),
            valid.clone().flat_map(|f| f.metrics.clone()),
            valid.clone().flat_map(|f| f.policies.clone()),
        )
        .with_alerts(valid.clone().flat_map(|f| f.alerts.clone()))
        .with_targets(valid.flat_map(|f| f.targets.clone()))
    }

    /// This catalog with these targets.
    pub fn with_targets(mut self, targets: impl IntoIterator<Item = spec::TargetSpec>) -> Self {
        self.targets = targets.into_iter().collect();
        self
    }

    /// Every metric's targets.
    pub fn targets(&self) -> &[spec::TargetSpec] {
        &self.targets
    }

    /// The targets a question on `metric` with these filters (and no split) may be paced
    /// against (a month's and a week's, say): the run uses the one whose period its
    /// window starts.
    pub fn targets_for(
        &self,
        metric: &str,
        filters: &[spec::metric::Filter],
    ) -> Vec<&spec::TargetSpec> {
        self.targets
            .iter()
            .filter(|t| t.metric == metric && t.applies_to(filters))
            .collect()
    }

    /// This catalog with these alerts.
    pub fn with_alerts(mut self, alerts: impl IntoIterator<Item = AlertSpec>) -> Self {
        self.alerts = alerts.into_iter().map(|a| (a.name.clone(), a)).collect();
        self
    }

    /// The alert of this name.
    pub fn alert(&self, name: &str) -> Option<&AlertSpec> {
        self.alerts.get(name)
    }

    /// Every alert, by name.
    pub fn alerts(&self) -> impl Iterator<Item = &AlertSpec> {
        self.alerts.values()
    }

    /// A catalog of these reports, metrics and policies.
    pub fn from_specs(
        specs: impl IntoIterator<Item = ReportSpec>,
        metrics: impl IntoIterator<Item = MetricSpec>,
        policies: impl IntoIterator<Item = PolicySpec>,
    ) -> Self {
        Self {
            reports: specs.into_iter().map(|s| (s.id.clone(), s)).collect(),
            metrics: metrics.into_iter().map(|m| (m.name.clone(), m)).collect(),
            policies: policies.into_iter().collect(),
            alerts: BTreeMap::new(),
            targets: Vec::new(),
            unreadable_policy_files: Vec::new(),
            names: std::sync::OnceLock::new(),
        }
    }

    /// Every data policy.
    pub fn policies(&self) -> &[PolicySpec] {
        &self.policies
    }

    /// Whether a broken file may hold policies kpibot does not know (fail closed).
    pub fn policies_incomplete(&self) -> bool {
        !self.unreadable_policy_files.is_empty()
    }

    /// Whether any policy may apply: one is declared, or a broken file may declare one.
    pub fn has_policies(&self) -> bool {
        !self.policies.is_empty() || self.policies_incomplete()
    }

    /// The broken files that may hold policies kpibot does not know.
    pub fn unreadable_policy_files(&self) -> &[std::path::PathBuf] {
        &self.unreadable_policy_files
    }

    /// The policies that cover a report (its SQL reads their data).
    pub fn report_policies(&self, report: &ReportSpec) -> Vec<&PolicySpec> {
        crate::spec::policy_checks::report_policies(report, &self.policies)
    }

    /// The policies that cover a metric question touching `columns`.
    pub fn metric_policies(&self, metric: &MetricSpec, columns: &[&str]) -> Vec<&PolicySpec> {
        policy::metric_policies(metric, columns, &self.policies)
    }

    /// Every name the reports and metrics answer to (ids, titles, labels, aliases).
    pub fn name_index(&self) -> &names::NameIndex {
        self.names.get_or_init(|| names::NameIndex::build(self))
    }

    pub fn metric(&self, name: &str) -> Option<&MetricSpec> {
        self.metrics.get(name)
    }

    pub fn metrics(&self) -> impl Iterator<Item = &MetricSpec> {
        self.metrics.values()
    }

    pub fn get(&self, id: &str) -> Option<&ReportSpec> {
        self.reports.get(id)
    }

    pub fn reports(&self) -> impl Iterator<Item = &ReportSpec> {
        self.reports.values()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.reports.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }
}

/// A handle on `catalog` for the flows that read it while `serve` runs.
pub fn shared(catalog: Catalog) -> SharedCatalog {
    Arc::new(RwLock::new(Arc::new(catalog)))
}

/// The catalog as it is now: a snapshot that later reloads do not change.
pub fn snapshot(catalog: &SharedCatalog) -> Arc<Catalog> {
    catalog
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Builds the next catalog: valid files replace their report; an invalid file keeps its
/// report's last good version. Returns the catalog and the files that failed.
pub fn merge_catalog<'f>(
    previous: &Catalog,
    files: &'f [LoadedFile],
) -> (Catalog, Vec<&'f LoadedFile>) {
    let mut reports: Vec<ReportSpec> = Vec::new();
    let mut metrics = Vec::new();
    let mut policies = Vec::new();
    let mut alerts = Vec::new();
    let mut targets = Vec::new();
    let mut broken = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        if file.is_valid() {
            reports.extend(file.spec.clone());
            metrics.extend(file.metrics.iter().cloned());
            policies.extend(file.policies.iter().cloned());
            alerts.extend(file.alerts.iter().cloned());
            targets.extend(file.targets.iter().cloned());
            continue;
        }
        broken.push(file);
        let id = spec::report_id(&file.path);
        if let Some(last_good) = previous.get(&id) {
            reports.push(last_good.clone());
        }
        metrics.extend(previous.metrics().filter(|m| m.path == file.path).cloned());
        alerts.extend(previous.alerts().filter(|a| a.path == file.path).cloned());
        targets.extend(
            previous
                .targets
                .iter()
                .filter(|t| t.path == file.path)
                .cloned(),
        );
        let kept: Vec<PolicySpec> = previous
            .policies()
            .iter()
            .filter(|p| p.path == file.path)
            .cloned()
            .collect();
        if kept.is_empty() && !file.is_dbt() && may_hold_policies(&file.source) {
            unreadable.push(file.path.clone());
        }
        policies.extend(kept);
    }
    let mut catalog = Catalog::from_specs(reports, metrics, policies)
        .with_alerts(alerts)
        .with_targets(targets);
    catalog.unreadable_policy_files = unreadable;
    (catalog, broken)
}

/// Whether a file that failed to load may declare data policies: decided on the parsed
/// TOML (a `policy` key at the top, in any form), and when the TOML itself does not parse,
/// it may.
pub fn may_hold_policies(source: &str) -> bool {
    match toml::from_str::<toml::Table>(source) {
        Ok(table) => table.contains_key("policy"),
        Err(_) => true,
    }
}

/// Loads `dir` against the previous catalog: valid files replace their entries, broken
/// ones keep their last good version. Returns the catalog and the files that failed.
pub fn load(
    dir: &Path,
    defaults: &SpecDefaults,
    previous: &Catalog,
) -> Result<(Catalog, Vec<LoadedFile>), LoadError> {
    let files = spec::load_dir(dir, defaults)?;
    let (catalog, broken) = merge_catalog(previous, &files);
    let broken = broken.into_iter().cloned().collect();
    Ok((catalog, broken))
}

/// Why a folder of specs cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "{count} report spec(s) are invalid; fix them or run `kpibot check {dir}`:\n\n{rendered}"
    )]
    Invalid {
        count: usize,
        dir: String,
        rendered: String,
    },
}

/// Loads every spec under `dir` for a one-shot verb; a folder with invalid specs is an
/// error that shows them all.
pub fn load_strict(dir: &Path, defaults: &SpecDefaults) -> Result<Catalog, CatalogError> {
    let (catalog, broken) = load(dir, defaults, &Catalog::default())?;
    if !broken.is_empty() {
        let rendered: Vec<String> = broken.iter().map(|f| f.render_diagnostics()).collect();
        return Err(CatalogError::Invalid {
            count: broken.len(),
            dir: dir.display().to_string(),
            rendered: rendered.join("\n"),
        });
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "[[policy]]\nname = \"p\"\ntable = \"mart.t\"\nowner = \"#o\"\nallowed_channels = [\"#a\"]\n";

    /// Every form of a broken file that may declare policies marks the catalog's policies
    /// unreadable; a broken file that cannot hold any does not.
    #[test]
    fn a_broken_file_that_may_hold_policies_fails_closed_whatever_its_spelling() {
        let may = [
            // Spelled with spaces: a text search for `[[policy]]` missed it.
            "[[ policy ]]\nname = \"p\"\ntable = \"mart.t\"\n",
            // Inline, with a key policies do not have.
            "policy = [{ name = \"p\", table = \"mart.t\", owner = \"#o\", colour = \"red\" }]\n",
            // TOML that does not parse at all: anything may be in it.
            "policy = [{ name = \"p\"\n[[",
            // A valid policy beside a broken report in the same file.
            "title = 3\n[[policy]]\nname = \"p\"\n",
        ];
        for source in may {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("broken.toml"), source).unwrap();
            std::fs::write(dir.path().join("ok.toml"), POLICY).unwrap();
            let (catalog, broken) = load(
                dir.path(),
                &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
                &Catalog::default(),
            )
            .unwrap();
            assert_eq!(broken.len(), 1, "{source}");
            assert!(catalog.policies_incomplete(), "{source}");
            assert_eq!(
                catalog.unreadable_policy_files(),
                [dir.path().join("broken.toml")],
                "{source}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.toml"), "title = 3\n").unwrap();
        let (catalog, broken) = load(
            dir.path(),
            &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
            &Catalog::default(),
        )
        .unwrap();
        assert_eq!(broken.len(), 1);
        assert!(!catalog.policies_incomplete());
    }

    /// With a last good version of its policies, a broken file keeps them in force.
    #[test]
    fn a_broken_policy_file_with_a_last_good_version_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policies.toml"), POLICY).unwrap();
        let defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
        let (good, _) = load(dir.path(), &defaults, &Catalog::default()).unwrap();
        assert_eq!(good.policies().len(), 1);
        std::fs::write(
            dir.path().join("policies.toml"),
            format!("{POLICY}colour = 1\n"),
        )
        .unwrap();
        let (next, broken) = load(dir.path(), &defaults, &good).unwrap();
        assert_eq!(broken.len(), 1);
        assert_eq!(next.policies().len(), 1);
        assert!(!next.policies_incomplete());
    }
}

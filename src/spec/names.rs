//! The check that no alias means two things: an alias another entry (or, for a
//! dimension, another of the metric's dimensions) also answers to is refused, naming both.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::alias::{Alias, normalize};
use super::diagnostic::{self, Diagnostic};
use super::{LoadedFile, MetricSpec};

/// The dimension of `metric` that `name` names — its id, the id as words (`school type`),
/// its label or an alias, compared as `/kpi` compares names — and the name as written.
/// One rule for `/kpi` questions and alerts' `by` and `where`.
pub fn dimension_of<'m>(metric: &'m MetricSpec, name: &str) -> Option<(&'m str, String)> {
    let key = normalize(name);
    metric.dimensions.keys().find_map(|dimension| {
        dimension_names(metric, dimension)
            .find(|written| normalize(written) == key)
            .map(|written| (dimension.as_str(), written))
    })
}

/// Every name `dimension` of `metric` answers to, as written: its id, the id as words,
/// its label and its aliases.
pub fn dimension_names(metric: &MetricSpec, dimension: &str) -> impl Iterator<Item = String> {
    let label = metric.dimensions.get(dimension).cloned();
    let aliases = metric
        .dimension_aliases
        .get(dimension)
        .into_iter()
        .flatten();
    [
        Some(dimension.to_string()),
        Some(dimension.replace('_', " ")),
        label,
    ]
    .into_iter()
    .flatten()
    .chain(aliases.map(|a| a.text.clone()))
}

/// One name of one entry, where it is written.
struct Named {
    /// `report `x`` or `metric `y``.
    entry: String,
    what: &'static str,
    written: String,
    path: PathBuf,
    span: Range<usize>,
}

/// Flags every alias that another entry also answers to (its id, label, title or one of
/// its aliases): `/kpi <alias>` must mean one thing. The later file is flagged, naming
/// where the other entry writes the name; a metric's dimensions are checked the same way
/// among themselves.
pub fn flag_alias_clashes(files: &mut [LoadedFile]) {
    let mut names: BTreeMap<String, Vec<Named>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.is_valid()) {
        let mut add = |name: &str, entry: String, what, span: Range<usize>| {
            names.entry(normalize(name)).or_default().push(Named {
                entry,
                what,
                written: name.to_string(),
                path: file.path.clone(),
                span,
            });
        };
        if let Some(report) = &file.spec {
            let entry = format!("report `{}`", report.id);
            add(&report.id, entry.clone(), "id", 0..0);
            add(&report.title, entry.clone(), "title", 0..0);
            for alias in &report.aliases {
                add(&alias.text, entry.clone(), "alias", alias.span.clone());
            }
        }
        for metric in &file.metrics {
            let entry = format!("metric `{}`", metric.name);
            add(&metric.name, entry.clone(), "name", 0..0);
            add(&metric.label, entry.clone(), "label", 0..0);
            for alias in &metric.aliases {
                add(&alias.text, entry.clone(), "alias", alias.span.clone());
            }
        }
    }
    let sources: BTreeMap<&Path, &str> = files
        .iter()
        .map(|f| (f.path.as_path(), f.source.as_str()))
        .collect();
    let mut problems: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
    for holders in names.values() {
        for (i, alias) in holders.iter().enumerate() {
            if alias.what != "alias" {
                continue;
            }
            let Some(j) = holders.iter().position(|o| o.entry != alias.entry) else {
                continue;
            };
            let other = &holders[j];
            // Two aliases: reported once, on the later (which names the earlier).
            if other.what == "alias" && j > i {
                continue;
            }
            let at = where_written(&sources, &other.path, &other.span);
            problems.entry(alias.path.clone()).or_default().push(
                Diagnostic::new(
                    &alias.path,
                    alias.span.clone(),
                    format!(
                        "alias `{}` of {} is also the {} of {}",
                        alias.written, alias.entry, other.what, other.entry
                    ),
                )
                .with_label("two entries answer to this name")
                .with_hint(format!(
                    "{at} gives {} the name `{}`; `/kpi {}` must mean one thing, so remove or change one",
                    other.entry, other.written, alias.written
                )),
            );
        }
    }
    for file in files.iter_mut() {
        let mut found = problems.remove(&file.path).unwrap_or_default();
        for metric in &file.metrics {
            found.extend(dimension_clashes(&file.path, &file.source, metric));
        }
        if !found.is_empty() {
            file.diagnostics.extend(found);
            file.spec = None;
            file.metrics.clear();
            file.alerts.clear();
            file.policies.clear();
        }
    }
}

/// `path:line:col` of a name, or the path alone for a name with no place of its own (an
/// id is the file's name).
fn where_written(sources: &BTreeMap<&Path, &str>, path: &Path, span: &Range<usize>) -> String {
    match sources.get(path) {
        Some(source) if !span.is_empty() => diagnostic::location(path, source, span.start),
        _ => path.display().to_string(),
    }
}

/// A metric's dimension aliases that another of its dimensions answers to.
fn dimension_clashes(path: &Path, source: &str, metric: &MetricSpec) -> Vec<Diagnostic> {
    let mut taken: BTreeMap<String, (&str, Option<&Alias>)> = BTreeMap::new();
    for (dimension, label) in &metric.dimensions {
        taken.insert(normalize(dimension), (dimension, None));
        taken.entry(normalize(label)).or_insert((dimension, None));
    }
    let mut out = Vec::new();
    for (dimension, aliases) in &metric.dimension_aliases {
        for alias in aliases {
            let key = normalize(&alias.text);
            match taken.get(&key) {
                Some((other, written)) if other != dimension => {
                    let at = match written {
                        Some(first) => diagnostic::location(path, source, first.span.start),
                        None => format!("its name or label in {}", path.display()),
                    };
                    out.push(
                        Diagnostic::new(
                            path,
                            alias.span.clone(),
                            format!(
                                "alias `{}` of dimension `{dimension}` is also a name of dimension `{other}` in metric `{}`",
                                alias.text, metric.name
                            ),
                        )
                        .with_hint(format!("`{other}` answers to it ({at}); `by {}` must mean one thing", alias.text)),
                    );
                }
                _ => {
                    taken.insert(key, (dimension, Some(alias)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, aliases: &str, dimensions: &str) -> String {
        format!(
            "[[metric]]\nname = \"{name}\"\nlabel = \"{name} label\"\naliases = {aliases}\ntable = \"mart.t\"\ntime_column = \"d\"\nmeasure = \"count\"\nowner = \"#data\"\n[metric.dimensions]\n{dimensions}\n"
        )
    }

    fn load(files: &[(&str, String)]) -> Vec<LoadedFile> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let defaults = crate::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
        crate::spec::load_dir(dir.path(), &defaults).unwrap()
    }

    #[test]
    fn an_alerts_by_and_where_name_dimensions_as_kpi_reads_them() {
        let dims =
            "role = { label = \"Role\", aliases = [\"ロール\"] }\nschool_type = \"School type\"";
        let alert = |by: &str, key: &str| {
            format!(
                "{}[[alert]]\nname = \"low\"\ntitle = \"Low\"\nmetric = \"active_users\"\nby = \"{by}\"\nwhere = {{ \"{key}\" = \"student\" }}\nbelow = 10\nchannel = \"#data\"\nowner = \"#data\"\n",
                metric("active_users", "[]", dims)
            )
        };
        let files = load(&[("a.toml", alert("ＳＣＨＯＯＬ ＴＹＰＥ", "ロール"))]);
        assert!(files[0].is_valid(), "{:?}", files[0].diagnostics);
        match &files[0].alerts[0].watch {
            Some(crate::spec::alert::Watch::Metric { by, filters, .. }) => {
                assert_eq!(by.as_deref(), Some("school_type"));
                assert_eq!(
                    filters,
                    &[("role".to_string(), vec!["student".to_string()])]
                );
            }
            other => panic!("{other:?}"),
        }
        // A name no dimension has is still refused, naming it.
        let files = load(&[("a.toml", alert("役職", "role"))]);
        let rendered = files[0].diagnostics[0].render(&files[0].source);
        assert!(
            rendered.contains("metric `active_users` has no dimension `役職`"),
            "{rendered}"
        );
    }

    #[test]
    fn an_alias_two_entries_answer_to_is_refused_naming_both_places() {
        let files = load(&[
            (
                "a.toml",
                metric("active_users", r#"["アクティブユーザー", "DAU"]"#, ""),
            ),
            (
                "b.toml",
                metric("daily_users", r#"["users", "ＤＡＵ"]"#, ""),
            ),
        ]);
        assert!(files[0].is_valid());
        let problem = &files[1].diagnostics[0];
        let rendered = problem.render(&files[1].source);
        assert!(rendered.contains("b.toml:4:21"), "{rendered}");
        assert!(
            rendered.contains("alias `ＤＡＵ` of metric `daily_users`"),
            "{rendered}"
        );
        assert!(
            rendered.contains("a.toml:4:25 gives metric `active_users` the name `DAU`"),
            "{rendered}"
        );
        // An alias equal to another entry's label is refused too.
        let files = load(&[
            ("a.toml", metric("active_users", "[]", "")),
            (
                "b.toml",
                metric("daily_users", r#"["Active_users label"]"#, ""),
            ),
        ]);
        assert!(!files[1].is_valid());
        // A dimension's alias that another dimension answers to.
        let dims = "role = { label = \"Role\", aliases = [\"区分\"] }\nkind = { label = \"Kind\", aliases = [\"区分\"] }";
        let files = load(&[("a.toml", metric("active_users", "[]", dims))]);
        let rendered = files[0].diagnostics[0].render(&files[0].source);
        assert!(
            rendered.contains("is also a name of dimension"),
            "{rendered}"
        );
    }
}

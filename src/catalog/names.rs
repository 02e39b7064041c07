//! Every name the catalog answers to — ids, titles, labels and aliases of reports and
//! metrics, and of each metric's dimensions — normalized once per catalog, so a question
//! is matched against thousands of names in microseconds.

use std::collections::HashMap;

use super::Catalog;
use crate::spec::alias::normalize;

/// What kind of entry a name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Report,
    Metric,
}

/// One entry a name stands for, and the name as the spec writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEntry {
    pub kind: EntryKind,
    pub id: String,
    pub written: String,
}

/// One dimension a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedDimension {
    pub metric: String,
    pub dimension: String,
    pub written: String,
}

/// The catalog's names, normalized (see [`normalize`]).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    pub entries: HashMap<String, Vec<NamedEntry>>,
    pub dimensions: HashMap<String, Vec<NamedDimension>>,
    /// The longest name, in bytes: how far a match is looked for.
    pub longest: usize,
}

impl NameIndex {
    pub fn build(catalog: &Catalog) -> Self {
        let mut index = NameIndex::default();
        let reports = catalog.reports().map(|r| {
            let names = [&r.id, &r.title].into_iter().cloned();
            let aliases = r.aliases.iter().map(|a| a.text.clone());
            (
                EntryKind::Report,
                &r.id,
                names.chain(aliases).collect::<Vec<_>>(),
            )
        });
        let metrics = catalog.metrics().map(|m| {
            let names = [&m.name, &m.label].into_iter().cloned();
            let aliases = m.aliases.iter().map(|a| a.text.clone());
            (EntryKind::Metric, &m.name, names.chain(aliases).collect())
        });
        for (kind, id, names) in reports.chain(metrics) {
            // `active users` for `active_users`: the id as words.
            let spaced = id.replace('_', " ");
            for written in names.into_iter().chain([spaced]) {
                index.add_entry(&written, kind, id);
            }
        }
        for metric in catalog.metrics() {
            for (dimension, label) in &metric.dimensions {
                let aliases = metric
                    .dimension_aliases
                    .get(dimension)
                    .into_iter()
                    .flatten();
                let names = [
                    dimension.clone(),
                    label.clone(),
                    dimension.replace('_', " "),
                ];
                for written in names.into_iter().chain(aliases.map(|a| a.text.clone())) {
                    let key = normalize(&written);
                    index.longest = index.longest.max(key.len());
                    let list = index.dimensions.entry(key).or_default();
                    if !list
                        .iter()
                        .any(|d| d.metric == metric.name && d.dimension == *dimension)
                    {
                        list.push(NamedDimension {
                            metric: metric.name.clone(),
                            dimension: dimension.clone(),
                            written,
                        });
                    }
                }
            }
        }
        index
    }

    fn add_entry(&mut self, written: &str, kind: EntryKind, id: &str) {
        let key = normalize(written);
        if key.is_empty() {
            return;
        }
        self.longest = self.longest.max(key.len());
        let list = self.entries.entry(key).or_default();
        if !list.iter().any(|e| e.kind == kind && e.id == id) {
            list.push(NamedEntry {
                kind,
                id: id.to_string(),
                written: written.to_string(),
            });
        }
    }

    /// The entries whose names start with `prefix` (normalized), each once.
    pub fn entries_starting(&self, prefix: &str) -> Vec<&NamedEntry> {
        let mut out: Vec<&NamedEntry> = Vec::new();
        for (name, entries) in &self.entries {
            if name.starts_with(prefix) {
                for entry in entries {
                    if !out.iter().any(|e| e.kind == entry.kind && e.id == entry.id) {
                        out.push(entry);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

//! Every name the catalog answers to — ids, titles, labels and aliases of reports and
//! metrics, and of each metric's dimensions — normalized once per catalog, so a question
//! is matched against thousands of names in microseconds.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Catalog;
use crate::spec::alias::normalize;
use crate::spec::names::dimension_names;

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

/// The catalog's names, normalized (see [`normalize`]).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    pub entries: HashMap<String, Vec<NamedEntry>>,
    /// Names some metric's dimension answers to (which metric's is decided once the
    /// entry is known: `spec::names::dimension_of`).
    pub dimensions: HashSet<String>,
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
                index.add_entry(written, kind, id);
            }
        }
        for metric in catalog.metrics() {
            for dimension in metric.dimensions.keys() {
                for written in dimension_names(metric, dimension) {
                    let key = normalize(&written);
                    index.longest = index.longest.max(key.len());
                    index.dimensions.insert(key);
                }
            }
        }
        index
    }

    /// Files `written` as a name of entry `id` (once per entry).
    fn add_entry(&mut self, written: String, kind: EntryKind, id: &str) {
        let key = normalize(&written);
        if key.is_empty() {
            return;
        }
        self.longest = self.longest.max(key.len());
        let list = self.entries.entry(key).or_default();
        if !list.iter().any(|e| e.kind == kind && e.id == id) {
            list.push(NamedEntry {
                kind,
                id: id.to_string(),
                written,
            });
        }
    }

    /// The entries whose names start with `prefix` (normalized), each once.
    pub fn entries_starting(&self, prefix: &str) -> Vec<&NamedEntry> {
        // Each entry once, by the shortest of its names that starts so (then the first in
        // order): the same answer whatever order the names are stored in.
        let mut found: BTreeMap<(&str, bool), (&str, &NamedEntry)> = BTreeMap::new();
        for (name, entries) in self.entries.iter().filter(|(n, _)| n.starts_with(prefix)) {
            for entry in entries {
                let key = (entry.id.as_str(), entry.kind == EntryKind::Report);
                let better = |(kept, _): &(&str, &NamedEntry)| {
                    (name.len(), name.as_str()) < (kept.len(), *kept)
                };
                if found.get(&key).is_none_or(better) {
                    found.insert(key, (name, entry));
                }
            }
        }
        found.into_values().map(|(_, entry)| entry).collect()
    }
}

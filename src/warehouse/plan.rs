//! What the warehouse itself says a query reads, turned into [`Reads`]: DuckDB's plan
//! (`EXPLAIN (FORMAT JSON)`) and BigQuery's dry-run referenced tables.

use std::collections::BTreeSet;

use super::reads::{Reads, ReadsSource, TableName, TableRead};

/// DuckDB plan operators that read no table: their rows come from constants, from other
/// operators of the same plan, or from a data-free table function.
const DATA_FREE_PLAN_SOURCES: [&str; 12] = [
    "DUMMY_SCAN",
    "EMPTY_RESULT",
    "COLUMN_DATA_SCAN",
    "EXPRESSION_SCAN",
    "CTE_SCAN",
    "REC_CTE_SCAN",
    "DELIM_SCAN",
    "CHUNK_SCAN",
    "RANGE",
    "GENERATE_SERIES",
    "UNNEST",
    "REPEAT",
];

/// What DuckDB's plan (`EXPLAIN (FORMAT JSON)`) says a query reads. `default_catalog` is
/// the database's own name, left open in the names (so `mart.t` in a policy matches it);
/// the schema `main` is left open too. Every scan's projected columns count as read, and
/// so does every identifier in its filters; any source the plan shows that is neither a
/// table scan nor a data-free operator makes the reads unknown.
pub fn plan_reads(plan: &serde_json::Value, default_catalog: &str) -> Reads {
    let mut tables = Vec::new();
    let mut stack = vec![plan];
    while let Some(node) = stack.pop() {
        match node {
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => {
                let name = map
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .trim();
                let info = map.get("extra_info");
                let children = map.get("children").and_then(|c| c.as_array());
                if let Some(table) = info.and_then(|i| i.get("Table")).and_then(|t| t.as_str()) {
                    let mut columns = BTreeSet::new();
                    if let Some(serde_json::Value::Object(info)) = info {
                        for (key, value) in info {
                            if matches!(key.as_str(), "Table" | "Type" | "Estimated Cardinality") {
                                continue;
                            }
                            collect_words(value, &mut columns);
                        }
                    }
                    tables.push(TableRead {
                        table: plan_table_name(table, default_catalog),
                        columns: Some(columns),
                    });
                } else {
                    let function = info
                        .and_then(|i| i.get("Function"))
                        .and_then(|f| f.as_str());
                    let leaf = children.is_none_or(|c| c.is_empty());
                    let source = function.unwrap_or(name);
                    if (leaf || function.is_some())
                        && !DATA_FREE_PLAN_SOURCES.contains(&source.to_uppercase().as_str())
                    {
                        return Reads::Unknown {
                            why: format!(
                                "the warehouse's plan reads through `{}`, which kpibot cannot see into",
                                source.to_lowercase()
                            ),
                        };
                    }
                }
                if let Some(children) = children {
                    stack.extend(children);
                }
            }
            _ => {}
        }
    }
    Reads::Known {
        tables,
        source: ReadsSource::Planner,
    }
}

/// A table as DuckDB names it (`demo.mart.t`), with the database's own catalog and the
/// `main` schema left open, so `mart.t` in a policy matches it.
pub fn plan_table_name(table: &str, default_catalog: &str) -> TableName {
    let mut parts: Vec<&str> = table.split('.').collect();
    if parts.len() == 3
        && parts[0]
            .trim_matches('"')
            .eq_ignore_ascii_case(default_catalog)
    {
        parts.remove(0);
    }
    TableName::parse(&parts.join("."))
}

/// Every identifier-like word in a plan's text (projections, filters), lower case.
fn collect_words(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(text) => {
            for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !word.is_empty() {
                    out.insert(word.to_lowercase());
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_words(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_words(v, out)),
        _ => {}
    }
}

/// BigQuery's dry run lists at most this many referenced tables; a longer list may be
/// incomplete.
pub const BIGQUERY_REFERENCED_TABLES_MAX: usize = 50;

/// What a BigQuery dry run's referenced tables say a query reads (every column of each).
pub fn referenced_reads(tables: &[(String, String, String)]) -> Reads {
    if tables.len() >= BIGQUERY_REFERENCED_TABLES_MAX {
        return Reads::Unknown {
            why: format!(
                "the query reads {} tables or more, past which BigQuery's dry run does not list them all",
                BIGQUERY_REFERENCED_TABLES_MAX
            ),
        };
    }
    Reads::Known {
        tables: tables
            .iter()
            .map(|(project, dataset, table)| TableRead {
                table: TableName::parse(&format!("{project}.{dataset}.{table}")),
                columns: None,
            })
            .collect(),
        source: ReadsSource::DryRun,
    }
}

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

/// BigQuery's dry run names tables, not columns. Where the SQL names every table the dry
/// run lists, and nothing else (no view, CTE or table function between them), the parser's
/// columns for each table are a safe superset (every identifier, or every column under a
/// `*`), so they narrow the dry run's "every column". Otherwise the dry run stands.
pub fn narrow_by_parser(dry_run: Reads, parsed: &Reads) -> Reads {
    let (
        Reads::Known {
            tables: listed,
            source,
        },
        Reads::Known { tables: named, .. },
    ) = (&dry_run, parsed)
    else {
        return dry_run;
    };
    let matches = |a: &TableName, b: &TableName| a.may_be(b);
    let every_listed_named = listed
        .iter()
        .all(|l| named.iter().filter(|n| matches(&n.table, &l.table)).count() >= 1);
    let every_named_listed = named.iter().all(|n| {
        listed
            .iter()
            .filter(|l| matches(&n.table, &l.table))
            .count()
            == 1
    });
    if !every_listed_named || !every_named_listed {
        return dry_run;
    }
    let tables = listed
        .iter()
        .map(|l| {
            let mut columns = Some(BTreeSet::new());
            for n in named.iter().filter(|n| matches(&n.table, &l.table)) {
                columns = match (columns, &n.columns) {
                    (Some(mut have), Some(more)) => {
                        have.extend(more.iter().cloned());
                        Some(have)
                    }
                    _ => None,
                };
            }
            TableRead {
                table: l.table.clone(),
                columns,
            }
        })
        .collect();
    Reads::Known {
        tables,
        source: *source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Dialect;
    use crate::warehouse::reads::read_sql;

    fn dry(tables: &[(&str, &str, &str)]) -> Reads {
        let owned: Vec<(String, String, String)> = tables
            .iter()
            .map(|(p, d, t)| (p.to_string(), d.to_string(), t.to_string()))
            .collect();
        referenced_reads(&owned)
    }

    #[test]
    fn the_parser_narrows_a_dry_run_only_where_it_names_every_table_itself() {
        let parsed = |sql| read_sql(sql, Dialect::BigQuery).established();
        let plain = narrow_by_parser(
            dry(&[("p", "mart", "t")]),
            &parsed("SELECT role, SUM(users) FROM mart.t GROUP BY role"),
        );
        assert!(plain.reads_table("mart.t"));
        assert!(!plain.reads_column("mart.t", "prefecture"), "{plain:?}");
        // A view the SQL names resolves to a table it does not: every column counts.
        let view = narrow_by_parser(
            dry(&[("p", "mart", "t")]),
            &parsed("SELECT role FROM mart.v"),
        );
        assert!(view.reads_column("mart.t", "prefecture"), "{view:?}");
        // The table named directly and again through a view: every column counts.
        let both = narrow_by_parser(
            dry(&[("p", "mart", "t"), ("p", "mart", "u")]),
            &parsed("SELECT t.role FROM mart.t JOIN mart.v ON true"),
        );
        assert!(both.reads_column("mart.t", "prefecture"), "{both:?}");
        // `*` reads every column; a table function is unknown to the parser.
        let star = narrow_by_parser(dry(&[("p", "mart", "t")]), &parsed("SELECT * FROM mart.t"));
        assert!(star.reads_column("mart.t", "prefecture"));
        let script = narrow_by_parser(Reads::Unknown { why: "x".into() }, &parsed("SELECT 1"));
        assert!(script.unknown().is_some());
    }
}

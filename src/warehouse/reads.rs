//! What a report's SQL reads, found by parsing it (sqlparser, in the warehouse's dialect):
//! the tables, every identifier (as the columns it may read), whether it selects `*`,
//! the functions it calls and any statement that is not a query. SQL that cannot be parsed
//! is kept as text and treated as reading everything it names — never as reading nothing.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart, Select, SelectItem, Statement};
use sqlparser::ast::{Visit, Visitor};
use sqlparser::dialect::{BigQueryDialect, DuckDbDialect};
use sqlparser::parser::Parser;

use super::Dialect;
use super::sql::with_dollar_parameters;

/// DuckDB functions that read the host's files or the network. Report SQL reads the
/// warehouse only; the embedded warehouse also refuses them at run time.
pub const FILE_FUNCTIONS: [&str; 17] = [
    "read_text",
    "read_blob",
    "read_csv",
    "read_csv_auto",
    "sniff_csv",
    "read_parquet",
    "parquet_scan",
    "parquet_metadata",
    "parquet_schema",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_ndjson",
    "read_ndjson_objects",
    "glob",
    "read_xlsx",
    "iceberg_scan",
];

/// What one piece of SQL reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlReads {
    Parsed {
        /// Every relation named, lower case, as written (`mart.daily_active_users`).
        tables: BTreeSet<String>,
        /// Every identifier, lower case: a superset of the columns read.
        names: BTreeSet<String>,
        /// Some query selects `*` (every column of what it reads).
        wildcard: bool,
        /// Every function called, lower case, table functions included.
        functions: BTreeSet<String>,
        /// Statements that are not queries (`ATTACH`, `COPY`, `INSTALL`, …), by keyword.
        not_queries: Vec<String>,
    },
    /// The parser could not read it: the text, lower case.
    Unparsed { text: String, error: String },
}

#[derive(Default)]
struct Collector {
    tables: BTreeSet<String>,
    names: BTreeSet<String>,
    wildcard: bool,
    functions: BTreeSet<String>,
    not_queries: Vec<String>,
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
            ObjectNamePart::Function(f) => f.name.value.to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The last part of a dotted name: `main.read_csv` → `read_csv`.
fn last_part(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !matches!(statement, Statement::Query(_)) {
            let text = statement.to_string();
            let keyword = text.split_whitespace().next().unwrap_or("?").to_uppercase();
            self.not_queries.push(keyword);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let name = object_name(relation);
        self.functions.insert(last_part(&name).to_string());
        self.tables.insert(name);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        }) {
            self.wildcard = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.functions
                .insert(last_part(&object_name(&function.name)).to_string());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_ident(&mut self, ident: &Ident) -> ControlFlow<()> {
        self.names.insert(ident.value.to_lowercase());
        ControlFlow::Continue(())
    }
}

/// Parses `sql` (with kpibot's `@name` parameters) in `dialect` and says what it reads.
pub fn read_sql(sql: &str, dialect: Dialect) -> SqlReads {
    let parsed = match dialect {
        Dialect::DuckDb => Parser::parse_sql(&DuckDbDialect {}, &with_dollar_parameters(sql)),
        Dialect::BigQuery => Parser::parse_sql(&BigQueryDialect {}, sql),
    };
    let statements = match parsed {
        Ok(statements) => statements,
        Err(error) => {
            return SqlReads::Unparsed {
                text: sql.to_lowercase(),
                error: error.to_string(),
            };
        }
    };
    let mut collector = Collector::default();
    let _ = statements.visit(&mut collector);
    SqlReads::Parsed {
        tables: collector.tables,
        names: collector.names,
        wildcard: collector.wildcard,
        functions: collector.functions,
        not_queries: collector.not_queries,
    }
}

/// Whether `written` (a relation as the SQL names it) is `table` (as a policy names it):
/// equal, or ending in it after a dot (`project.mart.t` is `mart.t`), case-insensitively.
fn same_table(written: &str, table: &str) -> bool {
    let table = table.to_lowercase().replace('`', "");
    let written = written.replace('`', "");
    written == table || written.ends_with(&format!(".{table}"))
}

/// Whether `text` names `word` as a whole word.
fn names_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

impl SqlReads {
    /// Whether the SQL reads `table` at all.
    pub fn reads_table(&self, table: &str) -> bool {
        match self {
            SqlReads::Parsed { tables, .. } => tables.iter().any(|t| same_table(t, table)),
            SqlReads::Unparsed { text, .. } => {
                let table = table.to_lowercase();
                let bare = last_part(&table);
                names_word(text, &table) || names_word(text, bare)
            }
        }
    }

    /// Whether the SQL may read `column` of `table`: it reads the table and names the
    /// column or selects `*`. Unparsed SQL that names the table reads every column.
    pub fn reads_column(&self, table: &str, column: &str) -> bool {
        if !self.reads_table(table) {
            return false;
        }
        match self {
            SqlReads::Parsed {
                names, wildcard, ..
            } => *wildcard || names.contains(&column.to_lowercase()),
            SqlReads::Unparsed { .. } => true,
        }
    }

    /// What the SQL does that report SQL may not: reading files or the network, or a
    /// statement that is not a query. Each is named as the author wrote it.
    pub fn forbidden(&self) -> Vec<String> {
        let SqlReads::Parsed {
            functions,
            not_queries,
            ..
        } = self
        else {
            return Vec::new();
        };
        let mut found: Vec<String> = not_queries
            .iter()
            .map(|keyword| format!("`{keyword}` (a statement that is not a query)"))
            .collect();
        found.extend(
            functions
                .iter()
                .filter(|f| FILE_FUNCTIONS.contains(&f.as_str()))
                .map(|f| format!("`{f}` (reads files on the bot's host)")),
        );
        found
    }
}

/// Functions that read the warehouse's clock, not the report's day.
pub const CLOCK_FUNCTIONS: [&str; 11] = [
    "current_date",
    "current_timestamp",
    "current_time",
    "current_datetime",
    "localtimestamp",
    "localtime",
    "now",
    "today",
    "get_current_timestamp",
    "get_current_time",
    "transaction_timestamp",
];

/// Byte ranges in `sql` where it reads the warehouse's clock (`CURRENT_DATE`, `NOW()`, …),
/// with the word as written. Found in the text as whole words outside strings and
/// comments, so they can be pointed at. The names are ASCII and matched ASCII
/// case-insensitively on `sql` itself: lowercasing the text first would move every offset
/// after a character whose lowercase is longer (`İ`, 2 bytes, lowercases to 3).
pub fn clock_reads(sql: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let bytes = sql.as_bytes();
    let code = super::sql::code_mask(sql);
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for name in CLOCK_FUNCTIONS {
        for (at, window) in bytes.windows(name.len()).enumerate() {
            if !window.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            // The match is ASCII, so both ends are character boundaries.
            let end = at + name.len();
            let before = sql[..at].chars().next_back();
            let after = sql[end..].chars().next();
            let whole =
                !before.is_some_and(|c| is_word(c) || c == '.') && !after.is_some_and(is_word);
            if whole && code.get(at).copied().unwrap_or(false) {
                found.push((at..end, sql[at..end].to_string()));
            }
        }
    }
    found.sort_by_key(|(range, _)| range.start);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_columns_and_stars_are_found_in_both_dialects() {
        let sql = "SELECT prefecture, SUM(active_users) AS users FROM mart.daily_active_users \
                   WHERE activity_date BETWEEN @start_date AND @end_date GROUP BY prefecture";
        for dialect in [Dialect::DuckDb, Dialect::BigQuery] {
            let reads = read_sql(sql, dialect);
            assert!(reads.reads_table("mart.daily_active_users"), "{reads:?}");
            assert!(reads.reads_column("mart.daily_active_users", "prefecture"));
            assert!(!reads.reads_column("mart.daily_active_users", "school_type"));
            assert!(!reads.reads_table("mart.daily_signups"));
        }
        let star = read_sql("SELECT * FROM mart.daily_active_users", Dialect::DuckDb);
        assert!(star.reads_column("mart.daily_active_users", "prefecture"));
        let sub = read_sql(
            "WITH t AS (SELECT * FROM `proj.mart.daily_active_users`) SELECT 1 FROM t",
            Dialect::BigQuery,
        );
        assert!(sub.reads_column("mart.daily_active_users", "prefecture"));
    }

    #[test]
    fn sql_that_cannot_be_parsed_reads_everything_it_names() {
        let reads = read_sql(
            "SELECT FROM WHERE mart.daily_active_users ???",
            Dialect::DuckDb,
        );
        assert!(matches!(reads, SqlReads::Unparsed { .. }));
        assert!(reads.reads_column("mart.daily_active_users", "prefecture"));
        assert!(!reads.reads_table("mart.daily_signups"));
    }

    #[test]
    fn file_functions_and_statements_are_forbidden() {
        let reads = read_sql(
            "SELECT read_text('/proc/self/environ') AS x FROM read_csv('/etc/passwd')",
            Dialect::DuckDb,
        );
        let forbidden = reads.forbidden().join(" ");
        assert!(forbidden.contains("read_text") && forbidden.contains("read_csv"));
        let attach = read_sql("ATTACH '/tmp/x.db' AS x", Dialect::DuckDb);
        assert!(attach.forbidden()[0].contains("ATTACH"), "{attach:?}");
        let copy = read_sql("COPY (SELECT 1) TO '/tmp/out.csv'", Dialect::DuckDb);
        assert!(copy.forbidden()[0].contains("COPY"), "{copy:?}");
        assert!(read_sql("SELECT 1", Dialect::DuckDb).forbidden().is_empty());
    }

    #[test]
    fn a_clock_after_a_string_whose_lowercase_is_longer_is_found_where_it_is() {
        // `İ` is 2 bytes; its lowercase `i̇` is 3.
        let sql = "SELECT 'İİİ' AS label, NOW() AS t";
        let found = clock_reads(sql);
        assert_eq!(found.len(), 1, "{found:?}");
        let (range, word) = &found[0];
        assert_eq!((&sql[range.clone()], word.as_str()), ("NOW", "NOW"));
    }

    /// Characters whose lowercase has another length in UTF-8, or that are not ASCII.
    const AWKWARD: [char; 10] = ['İ', 'ẞ', 'Ω', 'K', 'Σ', 'ﬁ', 'Å', '東', 'a', 'Z'];

    proptest::proptest! {
        #[test]
        fn clock_reads_slice_the_original_text_to_the_function_name(
            prefix in proptest::collection::vec(proptest::sample::select(&AWKWARD[..]), 0..12),
            comment in proptest::collection::vec(proptest::sample::select(&AWKWARD[..]), 0..6),
            which in 0..CLOCK_FUNCTIONS.len(),
            upper in proptest::collection::vec(proptest::bool::ANY, 32),
        ) {
            let name: String = CLOCK_FUNCTIONS[which]
                .chars()
                .zip(&upper)
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            let prefix: String = prefix.into_iter().collect();
            let comment: String = comment.into_iter().collect();
            let head = format!("SELECT '{prefix}' AS label, /* {comment} */ ");
            let sql = format!("{head}{name}() AS t");
            let found = clock_reads(&sql);
            proptest::prop_assert_eq!(found.len(), 1, "{:?} in {}", found, sql);
            let (range, word) = &found[0];
            proptest::prop_assert_eq!(range.clone(), head.len()..head.len() + name.len());
            proptest::prop_assert_eq!(&sql[range.clone()], name.as_str());
            proptest::prop_assert_eq!(word, &name);
        }
    }
}

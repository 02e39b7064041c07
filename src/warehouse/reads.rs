//! What a query reads, as far as it can be established: [`Reads`] — the tables (and, where
//! known, the columns) a query reads, or `Unknown`, which counts as reading everything.
//! Established by the warehouse where it can tell (`warehouse::plan` reads DuckDB's plan;
//! BigQuery's dry run lists referenced tables) and otherwise by parsing the SQL
//! ([`read_sql`], sqlparser in the warehouse's dialect), which fails closed on every
//! construct it cannot resolve (table functions, unparsable SQL). One cohesive thing: the
//! one answer to what a query reads, the SQL walk that establishes it, and their tests.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Select, SelectItem, Statement, TableFactor,
};
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
        /// Constructs whose reads the parser cannot resolve (table functions, `COLUMNS(…)`
        /// over a pattern, …), as written.
        unresolved: Vec<String>,
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
    unresolved: Vec<String>,
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

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let function = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => Some(object_name(name)),
            TableFactor::Function { name, .. } => Some(object_name(name)),
            TableFactor::TableFunction { expr, .. } => Some(expr.to_string()),
            TableFactor::JsonTable { .. }
            | TableFactor::OpenJsonTable { .. }
            | TableFactor::XmlTable { .. }
            | TableFactor::SemanticView { .. } => Some(factor.to_string()),
            _ => None,
        };
        if let Some(function) = function
            && !DATA_FREE_TABLE_FUNCTIONS.contains(&last_part(&function.to_lowercase()))
        {
            self.unresolved.push(format!(
                "the table function `{}`",
                truncate(&factor.to_string())
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // FROM-first without a select list (`FROM t`) selects every column.
        if select.projection.is_empty() && !select.from.is_empty() {
            self.wildcard = true;
        }
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
            let name = last_part(&object_name(&function.name)).to_string();
            // `COLUMNS('^pref')` picks columns by a pattern the parser cannot match
            // against tables it cannot see: every column counts as read.
            if name == "columns" {
                self.wildcard = true;
            }
            self.functions.insert(name);
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
        unresolved: collector.unresolved,
    }
}

/// Table functions that produce values without reading any table.
pub const DATA_FREE_TABLE_FUNCTIONS: [&str; 5] = [
    "range",
    "generate_series",
    "unnest",
    "repeat",
    "generate_date_array",
];

/// At most this many characters of a construct are quoted in a message.
const QUOTED_CONSTRUCT_MAX_CHARS: usize = 80;

fn truncate(text: &str) -> String {
    if text.chars().count() <= QUOTED_CONSTRUCT_MAX_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(QUOTED_CONSTRUCT_MAX_CHARS).collect();
    format!("{cut}…")
}

/// A table's name in parts, lower case, without quotes: `["mart", "daily_active_users"]`.
/// A name with fewer parts leaves the catalog, project or dataset open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableName(pub Vec<String>);

impl TableName {
    /// `proj.mart.t`, `` `proj.mart.t` ``, `"mart"."t"` → parts.
    /// DuckDB's default schema `main` is left open, as the planner's names leave it (a
    /// policy on `extracts.main.t` is one on `extracts.t`).
    pub fn parse(text: &str) -> Self {
        let mut parts: Vec<String> = text
            .split('.')
            .map(|part| part.trim_matches(['`', '"', ' ']).to_lowercase())
            .filter(|part| !part.is_empty())
            .collect();
        if parts.len() >= 2 && parts[parts.len() - 2] == "main" {
            parts.remove(parts.len() - 2);
        }
        TableName(parts)
    }

    /// Whether the two names may be the same table once the parts either leaves open are
    /// filled in: the shorter name's parts end the longer's. A last part ending in `*`
    /// (a BigQuery wildcard table) matches every name it prefixes. Errs towards "yes".
    pub fn may_be(&self, other: &TableName) -> bool {
        let (short, long) = if self.0.len() <= other.0.len() {
            (&self.0, &other.0)
        } else {
            (&other.0, &self.0)
        };
        if short.is_empty() {
            return false;
        }
        let tail = &long[long.len() - short.len()..];
        let last = short.len() - 1;
        short.iter().zip(tail).enumerate().all(|(at, (a, b))| {
            a == b
                || (at == last
                    && (a.strip_suffix('*').is_some_and(|p| b.starts_with(p))
                        || b.strip_suffix('*').is_some_and(|p| a.starts_with(p))))
        })
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// One table a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    pub table: TableName,
    /// The columns read, lower case; `None`: every column (they cannot be told apart).
    pub columns: Option<BTreeSet<String>>,
}

/// Who established what a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadsSource {
    /// sqlparser, from the text alone: views are taken at their names.
    Parser,
    /// DuckDB's planner: the tables each scan binds, through views, CTEs, subqueries and
    /// table functions, and the columns each scan projects or filters on.
    Planner,
    /// BigQuery's dry run: the referenced tables (views and wildcards resolved).
    DryRun,
}

/// What a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    Known {
        tables: Vec<TableRead>,
        source: ReadsSource,
    },
    /// It cannot be established: counts as reading every column of every table. `why`
    /// names the construct, for the author.
    Unknown { why: String },
}

impl Reads {
    /// Whether the query may read `table` (as a policy names it).
    pub fn reads_table(&self, table: &str) -> bool {
        let wanted = TableName::parse(table);
        match self {
            Reads::Known { tables, .. } => tables.iter().any(|t| t.table.may_be(&wanted)),
            Reads::Unknown { .. } => true,
        }
    }

    /// Whether the query may read `column` of `table`.
    pub fn reads_column(&self, table: &str, column: &str) -> bool {
        let wanted = TableName::parse(table);
        let column = column.to_lowercase();
        match self {
            Reads::Known { tables, .. } => tables.iter().any(|t| {
                t.table.may_be(&wanted) && t.columns.as_ref().is_none_or(|c| c.contains(&column))
            }),
            Reads::Unknown { .. } => true,
        }
    }

    /// Reads of nothing: what a query counts as when no policy exists to hold it against
    /// (the warehouse is not asked then).
    pub fn nothing() -> Self {
        Reads::Known {
            tables: Vec::new(),
            source: ReadsSource::Parser,
        }
    }

    /// Every column of `table`, as the parser takes a name it cannot see into.
    pub fn whole_table(table: &str) -> Self {
        Reads::Known {
            tables: vec![TableRead {
                table: TableName::parse(table),
                columns: None,
            }],
            source: ReadsSource::Parser,
        }
    }

    /// What two queries read together: unknown if either is, and established by the
    /// weaker of the two proofs (the parser's, if either is).
    pub fn union(self, other: Reads) -> Reads {
        match (self, other) {
            (
                Reads::Known { mut tables, source },
                Reads::Known {
                    tables: more,
                    source: s,
                },
            ) => {
                tables.extend(more);
                let parser = source == ReadsSource::Parser || s == ReadsSource::Parser;
                let source = if parser { ReadsSource::Parser } else { source };
                Reads::Known { tables, source }
            }
            (unknown @ Reads::Unknown { .. }, _) | (_, unknown) => unknown,
        }
    }

    /// Why the reads are not known, if they are not.
    pub fn unknown(&self) -> Option<&str> {
        match self {
            Reads::Unknown { why } => Some(why),
            Reads::Known { .. } => None,
        }
    }
}

impl SqlReads {
    /// What the parser can establish: the tables as named (views taken at their word),
    /// with every identifier as a column they may read, or every column where the query
    /// selects `*`, `COLUMNS(…)` or has no select list. Unparsable SQL and table functions
    /// the parser cannot see into make it unknown.
    pub fn established(&self) -> Reads {
        match self {
            SqlReads::Unparsed { error, .. } => Reads::Unknown {
                why: format!("kpibot cannot parse this SQL to tell what it reads ({error})"),
            },
            SqlReads::Parsed { unresolved, .. } if !unresolved.is_empty() => Reads::Unknown {
                why: format!(
                    "kpibot cannot tell from the SQL alone what {} reads",
                    unresolved.join(", ")
                ),
            },
            SqlReads::Parsed {
                tables,
                names,
                wildcard,
                ..
            } => Reads::Known {
                tables: tables
                    .iter()
                    .map(|t| TableRead {
                        table: TableName::parse(t),
                        columns: (!wildcard).then(|| names.clone()),
                    })
                    .collect(),
                source: ReadsSource::Parser,
            },
        }
    }

    /// Whether the SQL may read `table` at all (see [`SqlReads::established`]).
    pub fn reads_table(&self, table: &str) -> bool {
        self.established().reads_table(table)
    }

    /// Whether the SQL may read `column` of `table`.
    pub fn reads_column(&self, table: &str, column: &str) -> bool {
        self.established().reads_column(table, column)
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
    fn names_match_when_the_parts_either_leaves_open_could_fill_in() {
        let name = TableName::parse;
        assert!(name("mart.t").may_be(&name("proj.mart.t")));
        assert!(name("`proj.mart.t`").may_be(&name("mart.t")));
        assert!(name("t").may_be(&name("proj.mart.t")));
        assert!(name("\"Mart\".\"T\"").may_be(&name("mart.t")));
        assert!(!name("other.mart.t").may_be(&name("proj.mart.t")));
        assert!(!name("mart.t").may_be(&name("mart.t2")));
        assert!(!name("other.t").may_be(&name("mart.t")));
        assert!(name("mart.daily_*").may_be(&name("proj.mart.daily_active_users")));
        assert!(!name("mart.weekly_*").may_be(&name("mart.daily_active_users")));
        // DuckDB's default schema is left open on both sides.
        assert!(name("extracts.main.t").may_be(&name("extracts.t")));
        assert!(name("main.t").may_be(&name("demo.mart.t")));
    }

    #[test]
    fn what_the_parser_cannot_see_into_is_unknown_and_covered_by_every_policy() {
        for sql in [
            "FROM query_table('mart.t')",
            "SELECT * FROM query('SELECT prefecture FROM mart.t')",
            "SELECT * FROM some_macro(1)",
        ] {
            let reads = read_sql(sql, Dialect::DuckDb).established();
            assert!(reads.unknown().is_some(), "{sql}: {reads:?}");
            assert!(reads.reads_column("mart.anything", "secret"));
        }
        let columns = read_sql(
            "SELECT COLUMNS('^pref'), SUM(users) FROM mart.t GROUP BY ALL",
            Dialect::DuckDb,
        )
        .established();
        assert!(columns.reads_column("mart.t", "prefecture"), "{columns:?}");
        let from_first = read_sql("FROM mart.t", Dialect::DuckDb).established();
        assert!(
            from_first.reads_column("mart.t", "prefecture"),
            "{from_first:?}"
        );
        let series = read_sql("SELECT * FROM range(3)", Dialect::DuckDb).established();
        assert!(series.unknown().is_none(), "{series:?}");
    }

    #[test]
    fn sql_that_cannot_be_parsed_reads_everything() {
        let reads = read_sql(
            "SELECT FROM WHERE mart.daily_active_users ???",
            Dialect::DuckDb,
        );
        assert!(matches!(reads, SqlReads::Unparsed { .. }));
        assert!(reads.reads_column("mart.daily_active_users", "prefecture"));
        // It cannot be told what it reads: every table counts.
        assert!(reads.reads_table("mart.daily_signups"));
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

//! `[query]`: the SQL, its default period, time and cost limits, and the report's own typed
//! parameters under `[query.params]`.

use std::ops::Range;

use chrono::Weekday;
use toml::de::DeValue;

use super::Period;
use super::diagnostic::closest;
use super::walk::{Reader, Tbl, is_identifier, string_content_offset};
use crate::warehouse::reads::{SqlReads, clock_reads, read_sql};
use crate::warehouse::{MIN_BILLED_BYTES_PER_TABLE, ParamValue, Params, sql};

/// Query parameters the bot binds for every report query.
pub const PROVIDED_PARAMETERS: [&str; 3] = ["start_date", "end_date", "run_date"];

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub sql: String,
    /// Byte offset in the spec file where the SQL text starts, when every character of the
    /// SQL maps one-to-one onto the file (no escapes), so errors can point at a SQL line.
    pub sql_offset: Option<usize>,
    /// Byte range of the whole `sql = …` value in the file.
    pub sql_span: Range<usize>,
    pub period: Period,
    pub week_start: Weekday,
    /// Seconds the warehouse may spend on one run of this query (overrides the setting).
    pub timeout_seconds: Option<u64>,
    /// Bytes one run may bill on BigQuery (overrides the setting).
    pub maximum_bytes_billed: Option<u64>,
    /// The report's own parameters (`[query.params]`), bound by name with their types.
    pub params: crate::warehouse::Params,
    /// What the SQL reads (tables, columns), for the data policies that cover it.
    pub reads: SqlReads,
    /// A report on a catalog metric (`metric = …` instead of `sql`): its SQL is generated
    /// from the metric once every file is read ([`super::metric_report::link_metric_reports`]).
    pub metric: Option<MetricQuery>,
}

/// `[query] metric = "signups_mtd"`, optionally `by`, `where` and `grain`.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub name: String,
    pub by: Option<String>,
    /// Dimension (as written, mapped to its column when linked) → values.
    pub filters: Vec<super::metric::Filter>,
    pub grain: crate::spec::metric_sql::Grain,
    pub span: Range<usize>,
    /// Its change splits into its members' parts (set when linked): posts offer Why?.
    pub explainable: bool,
}

const QUERY_KEYS: [&str; 10] = [
    "sql",
    "metric",
    "by",
    "where",
    "grain",
    "period",
    "week_start",
    "timeout_seconds",
    "maximum_bytes_billed",
    "params",
];

/// The default period of a report that does not name one.
pub const DEFAULT_PERIOD: &str = "last 28 days";

/// A TOML value as a typed query parameter, or why it cannot be one.
fn param_value(value: &DeValue) -> Result<ParamValue, String> {
    Ok(match value {
        DeValue::String(text) => ParamValue::Text(text.to_string()),
        DeValue::Integer(i) => ParamValue::Integer(
            i.as_str()
                .replace('_', "")
                .parse()
                .map_err(|_| "is too large for a 64-bit integer".to_string())?,
        ),
        DeValue::Float(f) => ParamValue::Float(
            f.as_str()
                .replace('_', "")
                .parse()
                .map_err(|_| "is not a number".to_string())?,
        ),
        DeValue::Boolean(b) => ParamValue::Bool(*b),
        DeValue::Datetime(at) => {
            let text = at.to_string();
            match (at.date.is_some(), at.time.is_some(), at.offset.is_some()) {
                (true, false, _) => ParamValue::Date(
                    text.parse()
                        .map_err(|_| format!("`{text}` is not a valid date"))?,
                ),
                (true, true, true) => ParamValue::Timestamp(
                    chrono::DateTime::parse_from_rfc3339(&text)
                        .map_err(|_| format!("`{text}` is not a valid date and time"))?
                        .naive_utc(),
                ),
                _ => {
                    return Err(format!(
                        "`{text}` needs a date and, with a time, a UTC offset (e.g. {text}Z or +09:00)"
                    ));
                }
            }
        }
        DeValue::Array(items) => {
            let values = items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::Array(_) | DeValue::Table(_) => Err(
                        "is a list of lists or tables; a parameter list holds plain values"
                            .to_string(),
                    ),
                    other => param_value(other),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if values
                .windows(2)
                .any(|pair| std::mem::discriminant(&pair[0]) != std::mem::discriminant(&pair[1]))
            {
                return Err("mixes types; a list holds values of one type".into());
            }
            ParamValue::Array(values)
        }
        DeValue::Table(_) => return Err("is a table; a parameter is a value or a list".into()),
    })
}

impl Reader<'_> {
    /// One error per use of the warehouse's clock in SQL written at `offset` (mapped onto
    /// the file) or, where it cannot be mapped, at `span`.
    pub(super) fn forbid_clock(&mut self, sql: &str, offset: Option<usize>, span: Range<usize>) {
        for (at, word) in clock_reads(sql) {
            let span = offset.map_or(span.clone(), |start| start + at.start..start + at.end);
            let d = self.error(
                span,
                format!(
                    "`{word}` is the warehouse's clock, not the report's day: on BigQuery it is the UTC date (before 09:00 in Tokyo, yesterday) and a catch-up run would read the wrong day"
                ),
            );
            *d = d.clone().with_hint(
                "use @run_date (the slot's date in the report's timezone) or the window, @start_date and @end_date",
            );
        }
    }

    /// One error per thing the SQL may not do (read files, run other statements).
    pub(super) fn forbid(&mut self, reads: &SqlReads, span: Range<usize>) {
        for what in reads.forbidden() {
            let d = self.error(
                span.clone(),
                format!("report SQL may not use {what}: kpibot only reads the warehouse"),
            );
            *d = d.clone().with_hint(
                "to chart a file, name it under KPIBOT__WAREHOUSE__DUCKDB__EXTRACTS and query the table kpibot attaches",
            );
        }
    }

    /// An optional whole number within `range`: `Some(None)` when absent, `None`
    /// (reported as `expected`) when it is not such a number.
    /// `[query.params]`: the report's own named parameters, typed from their TOML values —
    /// string, integer, float, boolean, date, date-time with an offset (a UTC TIMESTAMP), or
    /// a list of one of those (for `IN (SELECT * FROM UNNEST(@name))`).
    pub(super) fn query_params(&mut self, table: &Tbl) -> Option<Params> {
        let mut params = Params::new();
        let mut ok = true;
        for (key, value) in table.table.iter() {
            let name = key.get_ref().to_string();
            if !is_identifier(&name) || PROVIDED_PARAMETERS.contains(&name.as_str()) {
                let d = self.error(key.span(), format!("`{name}` cannot be a parameter name"));
                d.hint = Some(format!(
                    "use letters, digits and `_`; {} are bound by kpibot",
                    PROVIDED_PARAMETERS.map(|p| format!("@{p}")).join(", ")
                ));
                ok = false;
                continue;
            }
            match param_value(value.get_ref()) {
                Ok(parsed) => {
                    params.insert(name, parsed);
                }
                Err(why) => {
                    self.error(value.span(), format!("`query.params.{name}` {why}"));
                    ok = false;
                }
            }
        }
        ok.then_some(params)
    }

    /// `metric`, `by`, `where` and `grain`: a report on a catalog metric.
    fn metric_query(&mut self, t: &Tbl) -> Option<Option<MetricQuery>> {
        let Some(name) = self.string(t, "metric", false) else {
            for key in ["by", "where", "grain"] {
                if let Some(v) = Self::lookup(t, key) {
                    self.error(
                        v.span(),
                        format!("`query.{key}` belongs to a report on a metric"),
                    )
                    .hint = Some("write `metric = \"<name>\"` instead of `sql`".into());
                }
            }
            return Some(None);
        };
        let by = self.string(t, "by", false).map(|b| b.into_inner());
        let grain = self.choice(
            t,
            "grain",
            &["daily", "weekly", "monthly"],
            crate::spec::metric_sql::Grain::from_name,
            Some(crate::spec::metric_sql::Grain::Day),
        )?;
        let mut filters = Vec::new();
        if let Some(table) = self.table(t, "where", false) {
            for (key, value) in table.table.iter() {
                let values = match value.get_ref() {
                    DeValue::String(s) => vec![s.to_string()],
                    DeValue::Array(items) => items
                        .iter()
                        .filter_map(|i| i.get_ref().as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                if values.is_empty() {
                    self.error(
                        value.span(),
                        "a filter's value is a string or a list of strings",
                    );
                    return None;
                }
                filters.push(super::metric::Filter {
                    dimension: key.get_ref().to_string(),
                    values,
                });
            }
        }
        Some(Some(MetricQuery {
            span: name.span(),
            name: name.into_inner(),
            by,
            filters,
            grain,
            explainable: false,
        }))
    }

    pub(super) fn query(&mut self, t: &Tbl) -> Option<QuerySpec> {
        self.check_keys(t, &QUERY_KEYS);
        let metric = self.metric_query(t)?;
        if let (Some(m), Some(sql)) = (&metric, Self::lookup(t, "sql")) {
            self.error(
                sql.span(),
                format!(
                    "a report on metric `{}` has no `sql`: it is generated",
                    m.name
                ),
            );
            return None;
        }
        let sql_value = if metric.is_some() {
            None
        } else {
            self.string(t, "sql", true)
        };
        let period = match self.string(t, "period", false) {
            Some(p) => match p.get_ref().parse::<Period>() {
                Ok(period) => Some(period),
                Err(e) => {
                    self.error(p.span(), format!("unparsable period: {e}"));
                    None
                }
            },
            None => DEFAULT_PERIOD.parse().ok(),
        };
        let week_start = self.choice(
            t,
            "week_start",
            &["monday", "sunday"],
            |s| match s {
                "monday" => Some(Weekday::Mon),
                "sunday" => Some(Weekday::Sun),
                _ => None,
            },
            Some(Weekday::Mon),
        );
        let timeout_seconds = self.whole_number(
            t,
            "timeout_seconds",
            1..=u64::MAX,
            "a positive whole number of seconds",
        );
        let maximum_bytes_billed = self.whole_number(
            t,
            "maximum_bytes_billed",
            MIN_BILLED_BYTES_PER_TABLE..=u64::MAX,
            "a whole number of bytes, at least 10485760 (BigQuery bills at least 10 MiB for each table a query reads)",
        );
        let params_table = self.table(t, "params", false);
        // Names declared under [query.params], valid or not: the SQL may use them.
        let declared: Vec<String> = params_table.as_ref().map_or(Vec::new(), |table| {
            table
                .table
                .iter()
                .map(|(key, _)| key.get_ref().to_string())
                .collect()
        });
        let params = match &params_table {
            Some(table) => self.query_params(table),
            None => Some(Params::new()),
        };
        if let Some(metric) = metric {
            return Some(QuerySpec {
                reads: read_sql("", self.dialect),
                sql: String::new(),
                sql_offset: None,
                sql_span: metric.span.clone(),
                period: period?,
                week_start: week_start?,
                timeout_seconds: timeout_seconds?,
                maximum_bytes_billed: maximum_bytes_billed?,
                params: params?,
                metric: Some(metric),
            });
        }
        let sql_value = sql_value?;
        let sql_text = sql_value.get_ref().clone();
        let sql_offset = string_content_offset(self.source, sql_value.span(), &sql_text);
        if sql_text.trim().is_empty() {
            let d = self.error(sql_value.span(), "`query.sql` is empty");
            *d = d
                .clone()
                .with_hint("write the SELECT that produces the chart's columns");
            return None;
        }
        let mut params_ok = true;
        for param in sql::parameters(&sql_text) {
            if PROVIDED_PARAMETERS.contains(&param.name.as_str()) || declared.contains(&param.name)
            {
                continue;
            }
            params_ok = false;
            let span = match sql_offset {
                Some(start) => start + param.span.start..start + param.span.end,
                None => sql_value.span(),
            };
            let provided = PROVIDED_PARAMETERS.map(|p| format!("@{p}")).join(", ");
            let known = PROVIDED_PARAMETERS
                .into_iter()
                .chain(declared.iter().map(String::as_str));
            let label = closest(&param.name, known)
                .map(|c| format!("did you mean `@{c}`?"))
                .unwrap_or_else(|| format!("the bot provides {provided}"));
            let d = self.error(
                span,
                format!(
                    "query parameter `@{}` is not one the bot provides",
                    param.name
                ),
            );
            *d = d.clone().with_label(label).with_hint(format!(
                "kpibot binds {provided} (dates in the report's timezone); declare your own under [query.params]"
            ));
        }
        let reads = read_sql(&sql_text, self.dialect);
        self.forbid(&reads, sql_value.span());
        self.forbid_clock(&sql_text, sql_offset, sql_value.span());
        Some(QuerySpec {
            reads,
            sql: sql_text,
            sql_offset,
            sql_span: sql_value.span(),
            period: period?,
            week_start: week_start?,
            timeout_seconds: timeout_seconds?,
            maximum_bytes_billed: maximum_bytes_billed?,
            params: params?,
            metric: None,
        })
        .filter(|_| params_ok)
    }
}

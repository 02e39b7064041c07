//! Walks a parsed TOML document and builds a [`ReportSpec`], collecting every problem
//! instead of stopping at the first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use crate::warehouse::{ParamValue, Params};
use chrono::Weekday;
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, closest, did_you_mean};
use super::{
    Access, ChartKind, ChartSpec, Column, Compare, Currency, Definition, FreshnessSpec, Goal,
    Headline, Locale, Measure, MetricSpec, NumberFormat, PROVIDED_PARAMETERS, Period, QuerySpec,
    ReportSpec, ScheduleSpec, SpecDefaults, report_id,
};
use crate::warehouse::sql;

const ROOT_KEYS: [&str; 12] = [
    "title",
    "description",
    "owner",
    "tags",
    "timezone",
    "definition",
    "query",
    "chart",
    "schedule",
    "freshness",
    "metric",
    "access",
];
const METRIC_KEYS: [&str; 18] = [
    "name",
    "label",
    "description",
    "table",
    "time_column",
    "measure",
    "column",
    "numerator",
    "denominator",
    "dimensions",
    "format",
    "owner",
    "refreshed",
    "tags",
    "restricted",
    "allowed_channels",
    "allowed_users",
    "allowed_usergroups",
];
const ACCESS_KEYS: [&str; 4] = [
    "restricted",
    "allowed_channels",
    "allowed_users",
    "allowed_usergroups",
];
const FRESHNESS_KEYS: [&str; 4] = ["sql", "expect", "recheck_minutes", "deadline_minutes"];
const DEFINITION_KEYS: [&str; 3] = ["source", "refreshed", "purpose"];
const QUERY_KEYS: [&str; 6] = [
    "sql",
    "period",
    "week_start",
    "timeout_seconds",
    "maximum_bytes_billed",
    "params",
];
const CHART_KEYS: [&str; 14] = [
    "kind",
    "x",
    "y",
    "series",
    "format",
    "headline",
    "compare",
    "locale",
    "currency",
    "goal",
    "goal_label",
    "label_last",
    "max_rows",
    "higher_is_better",
];
/// Rows a `table` chart shows unless `max_rows` says otherwise.
pub const DEFAULT_TABLE_ROWS: usize = 20;
const SCHEDULE_KEYS: [&str; 5] = ["cron", "timezone", "channel", "thread", "catch_up_hours"];

/// The default period of a report that does not name one.
pub const DEFAULT_PERIOD: &str = "last 28 days";

struct Reader<'a> {
    path: &'a Path,
    source: &'a str,
    errors: Vec<Diagnostic>,
    /// Full key names already suggested for a misspelled key: not reported missing too.
    suggested: Vec<String>,
}

/// A table and where to point when something is missing from it.
struct Tbl<'t, 'i> {
    table: &'t DeTable<'i>,
    name: String,
    anchor: Range<usize>,
}

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

pub(super) fn read_spec(
    path: &Path,
    source: &str,
    defaults: &SpecDefaults,
) -> (Option<ReportSpec>, Vec<MetricSpec>, Vec<Diagnostic>) {
    let mut r = Reader {
        path,
        source,
        errors: Vec::new(),
        suggested: Vec::new(),
    };
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    for error in &syntax_errors {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().trim_end_matches('.').to_string();
        r.errors.push(Diagnostic::new(
            path,
            span,
            format!("TOML syntax error: {message}"),
        ));
    }
    if !syntax_errors.is_empty() {
        // The rest of the document may be misread after a syntax error; don't pile on.
        return (None, Vec::new(), r.errors);
    }
    let id = report_id(path);
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        r.errors.push(
            Diagnostic::new(path, 0..0, format!("`{id}` cannot be a report id"))
                .with_hint("name the file with letters, digits, `_` or `-` only, e.g. `daily_active_users.toml`; the file name is what people type after /kpi"),
        );
    }
    let root = Tbl {
        table: document.get_ref(),
        name: String::new(),
        anchor: 0..0,
    };
    let metrics = r.metrics(&root);
    let has = |key: &str| root.table.iter().any(|(k, _)| k.get_ref().as_ref() == key);
    if has("metric") && !has("query") {
        // A file of metrics only.
        r.check_keys(&root, &["metric"]);
        return (None, metrics.unwrap_or_default(), r.errors);
    }
    r.check_keys(&root, &ROOT_KEYS);
    let title = r.string(&root, "title", true);
    let description = r.string(&root, "description", true);
    let owner = r.string(&root, "owner", true);
    let tags = r.string_list(&root, "tags");
    let timezone = match r.string(&root, "timezone", false) {
        Some(tz) => r.timezone(&tz),
        None => Some(defaults.timezone),
    };

    let definition = r.table(&root, "definition", true).map(|t| {
        r.check_keys(&t, &DEFINITION_KEYS);
        (
            r.string(&t, "source", true),
            r.string(&t, "refreshed", true),
            r.string(&t, "purpose", true),
        )
    });
    let query = r.table(&root, "query", true).map(|t| r.query(&t));
    let chart = r.table(&root, "chart", true).map(|t| r.chart(&t));
    let schedules = r.schedules(&root, timezone.unwrap_or(defaults.timezone));
    let access = match r.table(&root, "access", false) {
        Some(t) => {
            r.check_keys(&t, &ACCESS_KEYS);
            r.access(&t)
        }
        None if Reader::lookup(&root, "access").is_some() => None,
        None => Some(Access::default()),
    };
    let freshness = match r.table(&root, "freshness", false) {
        Some(t) => r.freshness(&t).map(Some),
        None if Reader::lookup(&root, "freshness").is_some() => None,
        None => Some(None),
    };

    let spec = (|| {
        let (source_table, refreshed, purpose) = definition?;
        Some(ReportSpec {
            id,
            path: path.to_path_buf(),
            source: source.to_string(),
            title: title?.into_inner(),
            description: description?.into_inner(),
            owner: owner?.into_inner(),
            tags: tags?,
            timezone: timezone?,
            definition: Definition {
                source: source_table?.into_inner(),
                refreshed: refreshed?.into_inner(),
                purpose: purpose?.into_inner(),
            },
            query: query??,
            chart: chart??,
            schedules: schedules?,
            freshness: freshness?,
            access: access?,
        })
    })();
    (spec, metrics.unwrap_or_default(), r.errors)
}

/// A plain SQL identifier: ASCII letters, digits and `_`, not starting with a digit.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The columns a measure reads.
pub fn measure_columns(measure: &Measure) -> Vec<&str> {
    match measure {
        Measure::Sum(c)
        | Measure::CountDistinct(c)
        | Measure::Avg(c)
        | Measure::Min(c)
        | Measure::Max(c) => vec![c.as_str()],
        Measure::Count(c) => c.iter().map(String::as_str).collect(),
        Measure::Ratio(a, b) => {
            let mut columns = measure_columns(a);
            columns.extend(measure_columns(b));
            columns
        }
    }
}

/// `today` → 0, `yesterday` → 1, `N days ago` → N.
fn parse_days_ago(text: &str) -> Option<u32> {
    match text.trim() {
        "today" => Some(0),
        "yesterday" => Some(1),
        other => other
            .strip_suffix("days ago")
            .or_else(|| other.strip_suffix("day ago"))?
            .trim()
            .parse()
            .ok(),
    }
}

impl<'a> Reader<'a> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(self.path, span, message));
        self.errors.last_mut().expect("just pushed")
    }

    fn key_name(&self, table: &Tbl, key: &str) -> String {
        if table.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", table.name)
        }
    }

    fn check_keys(&mut self, table: &Tbl, allowed: &[&str]) {
        for (key, _) in table.table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let name = self.key_name(table, key.get_ref());
                let suggestion = closest(key.get_ref(), allowed.iter().copied());
                if let Some(suggestion) = suggestion {
                    self.suggested.push(self.key_name(table, suggestion));
                }
                let hint = suggestion.map_or_else(
                    || format!("valid keys here: {}", allowed.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                let d = self.error(key.span(), format!("unknown key `{name}`"));
                *d = d.clone().with_label(hint);
            }
        }
    }

    fn lookup<'t, 'i>(table: &'t Tbl<'t, 'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        table
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn missing(&mut self, table: &Tbl, key: &str, expected: &str) {
        let name = self.key_name(table, key);
        if self.suggested.contains(&name) {
            return;
        }
        let where_ = if table.name.is_empty() {
            "the report".to_string()
        } else {
            format!("[{}]", table.name)
        };
        let d = self.error(
            table.anchor.clone(),
            format!("missing required key `{name}` ({expected})"),
        );
        *d = d.clone().with_hint(format!("add `{key} = …` to {where_}"));
    }

    fn wrong_type(&mut self, table: &Tbl, key: &str, value: &Spanned<DeValue>, expected: &str) {
        let name = self.key_name(table, key);
        let found = value.get_ref().type_str();
        self.error(
            value.span(),
            format!("`{name}` must be {expected}, found {found}"),
        );
    }

    fn string(&mut self, table: &Tbl, key: &str, required: bool) -> Option<Spanned<String>> {
        let Some(value) = Self::lookup(table, key) else {
            if required {
                self.missing(table, key, "a string");
            }
            return None;
        };
        match value.get_ref().as_str() {
            Some(s) => Some(Spanned::new(value.span(), s.to_string())),
            None => {
                self.wrong_type(table, key, value, "a string");
                None
            }
        }
    }

    /// An optional list of strings; `Some(vec![])` when absent, `None` when invalid.
    fn string_list(&mut self, table: &Tbl, key: &str) -> Option<Vec<String>> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(Vec::new());
        };
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(table, key, value, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref().as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    self.wrong_type(table, key, item, "a list of strings");
                    return None;
                }
            }
        }
        Some(out)
    }

    fn table<'t, 'i>(
        &mut self,
        parent: &Tbl<'t, 'i>,
        key: &str,
        required: bool,
    ) -> Option<Tbl<'t, 'i>> {
        let entry = parent
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key);
        let Some((k, value)) = entry else {
            if required {
                let d = self.error(
                    parent.anchor.clone(),
                    format!("missing required table `[{}]`", self.key_name(parent, key)),
                );
                *d = d.clone().with_hint(format!("add a `[{key}]` section"));
            }
            return None;
        };
        match value.get_ref().as_table() {
            Some(table) => Some(Tbl {
                table,
                name: self.key_name(parent, key),
                anchor: k.span(),
            }),
            None => {
                self.wrong_type(parent, key, value, "a table");
                None
            }
        }
    }

    fn timezone(&mut self, value: &Spanned<String>) -> Option<Tz> {
        match Tz::from_str(value.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = match value.get_ref().to_uppercase().as_str() {
                    "JST" => "abbreviations are ambiguous; write `Asia/Tokyo`".to_string(),
                    "KST" => "abbreviations are ambiguous; write `Asia/Seoul`".to_string(),
                    _ => {
                        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
                        did_you_mean(value.get_ref(), names).unwrap_or_else(|| {
                            "use an IANA name such as `Asia/Tokyo` or `UTC`".into()
                        })
                    }
                };
                let d = self.error(
                    value.span(),
                    format!("unknown timezone `{}`", value.get_ref()),
                );
                *d = d.clone().with_label(hint);
                None
            }
        }
    }

    /// An optional `true`/`false`; `None` (reported) when it is something else.
    fn flag(&mut self, table: &Tbl, key: &str, default: bool) -> Option<bool> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(default);
        };
        let flag = value.get_ref().as_bool();
        if flag.is_none() {
            self.wrong_type(table, key, value, "true or false");
        }
        flag
    }

    /// An optional whole number within `range`: `Some(None)` when absent, `None`
    /// (reported as `expected`) when it is not such a number.
    /// `[query.params]`: the report's own named parameters, typed from their TOML values —
    /// string, integer, float, boolean, date, date-time with an offset (a UTC TIMESTAMP), or
    /// a list of one of those (for `IN (SELECT * FROM UNNEST(@name))`).
    fn query_params(&mut self, table: &Tbl) -> Option<Params> {
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

    fn whole_number(
        &mut self,
        table: &Tbl,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        expected: &str,
    ) -> Option<Option<u64>> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(None);
        };
        let whole = value.get_ref().as_integer();
        let number = whole
            .and_then(|i| i.as_str().parse::<u64>().ok())
            .filter(|n| range.contains(n));
        match (number, whole) {
            (Some(_), _) => {}
            // A whole number out of range: say which number, not just its type.
            (None, Some(written)) => {
                let name = self.key_name(table, key);
                self.error(
                    value.span(),
                    format!("`{name}` must be {expected}, not {}", written.as_str()),
                );
            }
            (None, None) => self.wrong_type(table, key, value, expected),
        }
        number.map(Some)
    }

    /// A string value that must be one of `names`.
    fn choice<T>(
        &mut self,
        table: &Tbl,
        key: &str,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        let Some(value) = self.string(table, key, default.is_none()) else {
            return if Self::lookup(table, key).is_some() {
                None
            } else {
                default
            };
        };
        if let Some(parsed) = parse(value.get_ref()) {
            return Some(parsed);
        }
        let label = did_you_mean(value.get_ref(), names.iter().copied())
            .unwrap_or_else(|| format!("expected one of: {}", names.join(", ")));
        let name = self.key_name(table, key);
        let d = self.error(
            value.span(),
            format!("`{}` is not a valid `{name}`", value.get_ref()),
        );
        *d = d.clone().with_label(label);
        None
    }

    fn query(&mut self, t: &Tbl) -> Option<QuerySpec> {
        self.check_keys(t, &QUERY_KEYS);
        let sql_value = self.string(t, "sql", true);
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
            crate::warehouse::bigquery::MIN_BILLED_BYTES_PER_TABLE..=u64::MAX,
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
        Some(QuerySpec {
            sql: sql_text,
            sql_offset,
            sql_span: sql_value.span(),
            period: period?,
            week_start: week_start?,
            timeout_seconds: timeout_seconds?,
            maximum_bytes_billed: maximum_bytes_billed?,
            params: params?,
        })
        .filter(|_| params_ok)
    }

    fn column(&mut self, t: &Tbl, key: &str, required: bool) -> Option<Column> {
        self.string(t, key, required).map(|v| Column {
            span: v.span(),
            name: v.into_inner(),
        })
    }

    fn chart(&mut self, t: &Tbl) -> Option<ChartSpec> {
        self.check_keys(t, &CHART_KEYS);
        let kind = self.choice(t, "kind", &ChartKind::NAMES, ChartKind::parse, None);
        let x = self.column(t, "x", true);
        let y = self.column(t, "y", true);
        let series_ok = Self::lookup(t, "series").is_none_or(|v| v.get_ref().is_str());
        let series = self.column(t, "series", false);
        let format = self.choice(
            t,
            "format",
            &NumberFormat::NAMES,
            NumberFormat::parse,
            Some(NumberFormat::Integer),
        );
        let headline = self.choice(
            t,
            "headline",
            &Headline::NAMES,
            Headline::parse,
            Some(Headline::Last),
        );
        let compare = self.choice(
            t,
            "compare",
            &Compare::NAMES,
            Compare::parse,
            Some(Compare::PreviousPeriod),
        );
        let locale = self.choice(t, "locale", &Locale::NAMES, Locale::parse, Some(Locale::En));
        let currency = self.choice(
            t,
            "currency",
            &Currency::NAMES,
            Currency::parse,
            Some(Currency::Jpy),
        );
        let goal = match Self::lookup(t, "goal") {
            None => Some(None),
            Some(v) => match v.get_ref() {
                DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok().map(Some),
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok().map(Some),
                _ => None,
            }
            .or_else(|| {
                self.wrong_type(t, "goal", v, "a number");
                None
            }),
        };
        let goal_label = self.string(t, "goal_label", false).map(Spanned::into_inner);
        let label_last = self.flag(t, "label_last", false);
        let higher_is_better = self.flag(t, "higher_is_better", true);
        let max_rows = self
            .whole_number(t, "max_rows", 1..=100, "a whole number from 1 to 100")
            .map(|n| n.map_or(DEFAULT_TABLE_ROWS, |n| n as usize));
        if !series_ok {
            return None;
        }
        let goal = goal?.map(|value| Goal {
            value,
            label: goal_label.unwrap_or_else(|| "Goal".to_string()),
        });
        Some(ChartSpec {
            kind: kind?,
            x: x?,
            y: y?,
            series,
            format: format?,
            headline: headline?,
            compare: compare?,
            locale: locale?,
            currency: currency?,
            goal,
            label_last: label_last?,
            max_rows: max_rows?,
            higher_is_better: higher_is_better?,
        })
    }

    /// A `[[key]]` list of tables, each read by `each`; `Some(empty)` when absent.
    fn array_of_tables<T>(
        &mut self,
        root: &Tbl,
        key_name: &str,
        hint: &str,
        mut each: impl FnMut(&mut Self, &Tbl) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some((key, value)) = root
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key_name)
        else {
            return Some(Vec::new());
        };
        let Some(entries) = value.get_ref().as_array() else {
            let d = self.error(
                value.span(),
                format!("`{key_name}` must be a list of `[[{key_name}]]` tables"),
            );
            *d = d.clone().with_hint(hint);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (index, entry) in entries.iter().enumerate() {
            let Some(table) = entry.get_ref().as_table() else {
                self.error(
                    entry.span(),
                    format!("{key_name} #{} must be a table", index + 1),
                );
                ok = false;
                continue;
            };
            let anchor = if entry.span().is_empty() {
                key.span()
            } else {
                entry.span()
            };
            let t = Tbl {
                table,
                name: format!("{key_name}[{index}]"),
                anchor,
            };
            match each(self, &t) {
                Some(item) => out.push(item),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn schedules(&mut self, root: &Tbl, report_tz: Tz) -> Option<Vec<ScheduleSpec>> {
        self.array_of_tables(
            root,
            "schedule",
            "write each schedule as `[[schedule]]` with cron, timezone and channel",
            |r, t| r.schedule(t, report_tz),
        )
    }

    fn metrics(&mut self, root: &Tbl) -> Option<Vec<MetricSpec>> {
        self.array_of_tables(
            root,
            "metric",
            "write each metric as `[[metric]]` with name, label, table, time_column and measure",
            |r, t| r.metric(t),
        )
    }

    fn measure(&mut self, t: &Tbl) -> Option<Measure> {
        let kind = self.choice(
            t,
            "measure",
            &Measure::NAMES,
            |s| Measure::NAMES.iter().copied().find(|n| *n == s),
            None,
        )?;
        let column = self.string(t, "column", kind != "count" && kind != "ratio");
        let column = column.map(|c| c.into_inner());
        Some(match kind {
            "sum" => Measure::Sum(column?),
            "count" => Measure::Count(column),
            "count_distinct" => Measure::CountDistinct(column?),
            "avg" => Measure::Avg(column?),
            "min" => Measure::Min(column?),
            "max" => Measure::Max(column?),
            _ => {
                let numerator = self.table(t, "numerator", true);
                let denominator = self.table(t, "denominator", true);
                let part = |r: &mut Self, part: Option<Tbl>| -> Option<Measure> {
                    let part = part?;
                    r.check_keys(&part, &["measure", "column"]);
                    match r.measure(&part)? {
                        Measure::Ratio(..) => {
                            r.error(part.anchor.clone(), "a ratio's parts cannot be ratios");
                            None
                        }
                        m => Some(m),
                    }
                };
                let numerator = part(self, numerator);
                let denominator = part(self, denominator);
                Measure::Ratio(Box::new(numerator?), Box::new(denominator?))
            }
        })
    }

    /// `restricted` and the allow-lists, in a metric or a report's `[access]`.
    fn access(&mut self, t: &Tbl) -> Option<Access> {
        let restricted = self.flag(t, "restricted", false);
        let allowed_channels = self.string_list(t, "allowed_channels");
        let allowed_users = self.string_list(t, "allowed_users");
        let allowed_usergroups = self.string_list(t, "allowed_usergroups");
        Some(Access {
            restricted: restricted?,
            allowed_channels: allowed_channels?,
            allowed_users: allowed_users?,
            allowed_usergroups: allowed_usergroups?,
        })
    }

    fn metric(&mut self, t: &Tbl) -> Option<MetricSpec> {
        self.check_keys(t, &METRIC_KEYS);
        let name = self.string(t, "name", true);
        let label = self.string(t, "label", true);
        let description = self.string(t, "description", false);
        let table = self.string(t, "table", true);
        let time_column = self.string(t, "time_column", true);
        let measure = self.measure(t);
        let format = self.choice(
            t,
            "format",
            &NumberFormat::NAMES,
            NumberFormat::parse,
            Some(NumberFormat::Integer),
        );
        let owner = self.string(t, "owner", true);
        let refreshed = self.string(t, "refreshed", false);
        let tags = self.string_list(t, "tags");
        let access = self.access(t);
        let dimensions = match self.table(t, "dimensions", false) {
            None => Some(BTreeMap::new()),
            Some(dims) => {
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (key, value) in dims.table.iter() {
                    match value.get_ref().as_str() {
                        Some(label) if is_identifier(key.get_ref()) => {
                            out.insert(key.get_ref().to_string(), label.to_string());
                        }
                        Some(_) => {
                            self.error(
                                key.span(),
                                format!("`{}` is not a column name", key.get_ref()),
                            )
                            .hint =
                                Some("dimension names are columns: letters, digits and `_`".into());
                            ok = false;
                        }
                        None => {
                            self.error(
                                value.span(),
                                "a dimension's value is its label, a string",
                            )
                            .hint = Some("write e.g. `role = \"Role\"`".into());
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
        };
        let name = name?;
        if !is_identifier(name.get_ref()) {
            self.error(name.span(), format!("`{}` cannot be a metric name", name.get_ref()))
                .hint = Some("use letters, digits and `_`, e.g. `active_users`: it is what people type after /kpi".into());
            return None;
        }
        for column in [&table, &time_column].into_iter().flatten() {
            let ok = column.get_ref().split('.').all(is_identifier);
            if !ok {
                self.error(
                    column.span(),
                    format!("`{}` is not a table or column name", column.get_ref()),
                )
                .hint = Some(
                    "write names only (e.g. `mart.daily_active_users`); the SQL is generated"
                        .into(),
                );
                return None;
            }
        }
        let measure = measure?;
        for column in measure_columns(&measure) {
            if !is_identifier(column) {
                self.error(t.anchor.clone(), format!("`{column}` is not a column name"));
                return None;
            }
        }
        let table = table?;
        Some(MetricSpec {
            name: name.into_inner(),
            label: label?.into_inner(),
            description: description.map(|d| d.into_inner()).unwrap_or_default(),
            table_span: table.span(),
            table: table.into_inner(),
            time_column: time_column?.into_inner(),
            measure,
            dimensions: dimensions?,
            format: format?,
            owner: owner?.into_inner(),
            refreshed: refreshed.map(|r| r.into_inner()).unwrap_or_default(),
            tags: tags?,
            access: access?,
            path: self.path.to_path_buf(),
        })
    }

    fn schedule(&mut self, t: &Tbl, report_tz: Tz) -> Option<ScheduleSpec> {
        self.check_keys(t, &SCHEDULE_KEYS);
        let cron_text = self.string(t, "cron", true);
        let timezone = match self.string(t, "timezone", false) {
            Some(tz) => self.timezone(&tz),
            None => Some(report_tz),
        };
        let channel = self.string(t, "channel", true);
        if let Some(channel) = &channel
            && channel.get_ref().trim().is_empty()
        {
            self.error(channel.span(), "`channel` is empty").hint =
                Some("write a channel as `#kpi-daily` or as its ID, e.g. `C0123456789`".into());
        }
        let thread = self.flag(t, "thread", false);
        let catch_up_hours = self.whole_number(
            t,
            "catch_up_hours",
            0..=720,
            "a whole number of hours from 0 to 720",
        );
        let cron_text = cron_text?;
        let schedule = self.cron(&cron_text, timezone);
        Some(ScheduleSpec {
            cron: schedule?,
            timezone: timezone?,
            channel: channel?.into_inner(),
            thread: thread?,
            catch_up: catch_up_hours?.map(|h| std::time::Duration::from_secs(h * 3600)),
            span: t.anchor.clone(),
        })
    }

    fn freshness(&mut self, t: &Tbl) -> Option<FreshnessSpec> {
        self.check_keys(t, &FRESHNESS_KEYS);
        let sql = self.string(t, "sql", true);
        let expect = self.string(t, "expect", true);
        let recheck = self.whole_number(
            t,
            "recheck_minutes",
            1..=1440,
            "a whole number of minutes from 1 to 1440",
        );
        let deadline = self.whole_number(
            t,
            "deadline_minutes",
            0..=1440,
            "a whole number of minutes from 0 to 1440",
        );
        let expect = expect.and_then(|e| match parse_days_ago(e.get_ref()) {
            Some(days) => Some(days),
            None => {
                let d = self.error(
                    e.span(),
                    format!("`{}` is not a freshness expectation", e.get_ref()),
                );
                *d = d.clone().with_hint(
                    "write `today`, `yesterday` or `N days ago`: the newest date the source must hold",
                );
                None
            }
        });
        let sql = sql?;
        if sql.get_ref().trim().is_empty() {
            self.error(sql.span(), "`freshness.sql` is empty");
            return None;
        }
        Some(FreshnessSpec {
            sql: sql.into_inner(),
            expect_days_ago: expect?,
            recheck: std::time::Duration::from_secs(60 * recheck?.unwrap_or(10)),
            deadline: std::time::Duration::from_secs(60 * deadline?.unwrap_or(180)),
        })
    }

    fn cron(&mut self, text: &Spanned<String>, timezone: Option<Tz>) -> Option<cron::Schedule> {
        let expr = text.get_ref().trim();
        let fields = expr.split_whitespace().count();
        if fields == 5 {
            let d = self.error(
                text.span(),
                format!("`{expr}` is a 5-field Unix cron; kpibot's cron has a seconds field first"),
            );
            *d = d
                .clone()
                .with_label(
                    "6 or 7 fields expected: sec min hour day-of-month month day-of-week [year]",
                )
                .with_hint(format!("write `0 {expr}` to fire at second 0"));
            return None;
        }
        match cron::Schedule::from_str(expr) {
            Ok(schedule) => {
                if let Some(tz) = timezone
                    && schedule.upcoming(tz).next().is_none()
                {
                    self.error(text.span(), format!("the cron `{expr}` never fires"));
                    return None;
                }
                Some(schedule)
            }
            Err(e) => {
                // The cron crate's message repeats the expression with a caret line; keep
                // only its explanation.
                let full = e.to_string();
                let reason = full
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && *l != "^")
                    .unwrap_or("unreadable expression")
                    .to_string();
                let d = self.error(text.span(), format!("invalid cron `{expr}`: {reason}"));
                *d = d.clone().with_hint(
                    "fields are: sec min hour day-of-month month day-of-week [year], e.g. `0 0 9 * * Mon-Fri`",
                );
                None
            }
        }
    }
}

/// Where the characters of a string value start in the file, when the file spells them
/// one-to-one (no escape sequences), so a byte offset in the value is the same offset in
/// the file from there.
fn string_content_offset(source: &str, span: Range<usize>, value: &str) -> Option<usize> {
    let raw = source.get(span.clone())?;
    let (open, multiline) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        (3, true)
    } else {
        (1, false)
    };
    let mut start = span.start + open;
    if multiline {
        if source[start..].starts_with("\r\n") {
            start += 2;
        } else if source[start..].starts_with('\n') {
            start += 1;
        }
    }
    (source.get(start..start + value.len()) == Some(value)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_offset_of_multiline_and_plain_strings() {
        let source = "sql = \"\"\"\nSELECT 1\n\"\"\"\nx = 'a b'\n";
        let span = source.find("\"\"\"").unwrap()..source.rfind("\"\"\"").unwrap() + 3;
        let start = string_content_offset(source, span, "SELECT 1\n").unwrap();
        assert_eq!(&source[start..start + 6], "SELECT");
        let span = source.find("'a").unwrap()..source.find("b'").unwrap() + 2;
        let start = string_content_offset(source, span, "a b").unwrap();
        assert_eq!(&source[start..start + 3], "a b");
    }

    #[test]
    fn escaped_strings_have_no_one_to_one_offset() {
        let source = "sql = \"a\\tb\"";
        let span = 6..source.len();
        assert_eq!(string_content_offset(source, span, "a\tb"), None);
    }
}

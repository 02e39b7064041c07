//! `[[metric]]`: a mart table's time column, one measure and the dimensions `/kpi` may
//! split or filter it by.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::access::Access;
use super::alias::Alias;
use super::chart::NumberFormat;
use super::metric_kind::MetricKind;
use super::walk::{Reader, Tbl, is_identifier};

/// How a metric adds up its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    Sum(String),
    /// `COUNT(*)` without a column, `COUNT(column)` with one.
    Count(Option<String>),
    CountDistinct(String),
    Avg(String),
    Min(String),
    Max(String),
    /// One measure divided by another (e.g. submissions per active user).
    Ratio(Box<Measure>, Box<Measure>),
}

impl Measure {
    pub const NAMES: [&'static str; 7] = [
        "sum",
        "count",
        "count_distinct",
        "avg",
        "min",
        "max",
        "ratio",
    ];
}

/// An ad-hoc metric: SQL is generated from this definition; identifiers come only from
/// here, never from what a user typed.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub label: String,
    pub description: String,
    /// Simple, cumulative or derived.
    pub kind: MetricKind,
    /// The mart table, e.g. `mart.daily_active_users`. Empty for a derived metric, which
    /// reads its inputs' tables (see [`MetricSpec::sources`]).
    pub table: String,
    /// The DATE column the period filters and the grain buckets (empty when derived).
    pub time_column: String,
    /// What is added up per bucket (`Count(None)` for a derived metric, never used).
    pub measure: Measure,
    /// Allowed dimensions: column name → label.
    pub dimensions: BTreeMap<String, String>,
    /// Other names people use for the metric (`aliases = ["アクティブユーザー", "DAU"]`).
    pub aliases: Vec<Alias>,
    /// Other names of a dimension (`role = { label = "Role", aliases = ["ロール"] }`).
    pub dimension_aliases: BTreeMap<String, Vec<Alias>>,
    pub format: NumberFormat,
    pub owner: String,
    pub refreshed: String,
    pub tags: Vec<String>,
    pub access: Access,
    pub path: PathBuf,
    /// Byte range of the `table = …` value in the file: where a warehouse's complaint
    /// about the metric's query points.
    pub table_span: Range<usize>,
}

const METRIC_KEYS: [&str; 25] = [
    "name",
    "type",
    "window",
    "grain_to_date",
    "period_agg",
    "expr",
    "inputs",
    "label",
    "aliases",
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

/// Keys only a metric over a table has: a derived metric reads its inputs.
const TABLE_KEYS: [&str; 6] = [
    "table",
    "time_column",
    "measure",
    "column",
    "numerator",
    "denominator",
];

impl MetricSpec {
    /// The metrics over a table this one reads: itself, or a derived metric's inputs.
    pub fn sources(&self) -> Vec<&MetricSpec> {
        match &self.kind {
            MetricKind::Derived(d) => d.linked().flat_map(MetricSpec::sources).collect(),
            _ => vec![self],
        }
    }

    /// Whether a bucket's value is a total over the bucket (so a window's headline adds
    /// them up): a simple sum or count.
    pub fn is_additive(&self) -> bool {
        matches!(self.kind, MetricKind::Simple)
            && matches!(self.measure, Measure::Sum(_) | Measure::Count(_))
    }
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

impl Reader<'_> {
    pub(super) fn metrics(&mut self, root: &Tbl) -> Option<Vec<MetricSpec>> {
        self.array_of_tables(
            root,
            "metric",
            "write each metric as `[[metric]]` with name, label, table, time_column and measure",
            |r, t| r.metric(t),
        )
    }

    pub(super) fn measure(&mut self, t: &Tbl) -> Option<Measure> {
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

    /// `[metric.dimensions]`: `role = "Role"` or `role = { label = "Role", aliases = […] }`.
    #[allow(clippy::type_complexity)]
    fn dimensions(
        &mut self,
        dims: &Tbl,
    ) -> Option<(BTreeMap<String, String>, BTreeMap<String, Vec<Alias>>)> {
        let mut labels = BTreeMap::new();
        let mut aliases = BTreeMap::new();
        let mut ok = true;
        for (key, value) in dims.table.iter() {
            let name = key.get_ref().to_string();
            if !is_identifier(&name) {
                self.error(key.span(), format!("`{name}` is not a column name"))
                    .hint = Some("dimension names are columns: letters, digits and `_`".into());
                ok = false;
                continue;
            }
            if let Some(label) = value.get_ref().as_str() {
                labels.insert(name, label.to_string());
                continue;
            }
            let Some(table) = value.get_ref().as_table() else {
                self.error(
                    value.span(),
                    "a dimension's value is its label, or a table with `label` and `aliases`",
                )
                .hint = Some(
                    "write e.g. `role = \"Role\"` or `role = { label = \"Role\", aliases = [\"ロール\"] }`"
                        .into(),
                );
                ok = false;
                continue;
            };
            let t = Tbl {
                table,
                name: format!("{}.{name}", dims.name),
                anchor: key.span(),
            };
            self.check_keys(&t, &["label", "aliases"]);
            match (self.string(&t, "label", true), self.aliases(&t)) {
                (Some(label), Some(names)) => {
                    labels.insert(name.clone(), label.into_inner());
                    aliases.insert(name, names);
                }
                _ => ok = false,
            }
        }
        ok.then_some((labels, aliases))
    }

    pub(super) fn metric(&mut self, t: &Tbl) -> Option<MetricSpec> {
        self.check_keys(t, &METRIC_KEYS);
        let kind_name = self.choice(
            t,
            "type",
            &MetricKind::NAMES,
            |s| MetricKind::NAMES.iter().copied().find(|n| *n == s),
            Some("simple"),
        )?;
        let derived = kind_name == "derived";
        if derived {
            for key in TABLE_KEYS {
                if let Some(value) = Self::lookup(t, key) {
                    self.error(
                        value.span(),
                        format!("a derived metric has no `{key}`: it reads its inputs"),
                    )
                    .hint =
                        Some("name the input metrics in `expr`; each brings its own table".into());
                }
            }
        }
        if kind_name != "cumulative" {
            for key in ["window", "grain_to_date", "period_agg"] {
                if let Some(value) = Self::lookup(t, key) {
                    self.error(
                        value.span(),
                        format!("`{key}` belongs to a cumulative metric"),
                    )
                    .hint = Some("add `type = \"cumulative\"`, or remove it".into());
                }
            }
        }
        if !derived {
            for key in ["expr", "inputs"] {
                if let Some(value) = Self::lookup(t, key) {
                    self.error(value.span(), format!("`{key}` belongs to a derived metric"))
                        .hint = Some("add `type = \"derived\"`, or remove it".into());
                }
            }
        }
        let kind = match kind_name {
            "cumulative" => self.cumulative(t).map(MetricKind::Cumulative),
            "derived" => self.derived(t).map(MetricKind::Derived),
            _ => Some(MetricKind::Simple),
        };
        let name = self.string(t, "name", true);
        let label = self.string(t, "label", true);
        let description = self.string(t, "description", false);
        let (table, time_column, measure) = if derived {
            (None, None, Some(Measure::Count(None)))
        } else {
            (
                self.string(t, "table", true),
                self.string(t, "time_column", true),
                self.measure(t),
            )
        };
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
        let aliases = self.aliases(t);
        let dimensions = match self.table(t, "dimensions", false) {
            None => Some((BTreeMap::new(), BTreeMap::new())),
            Some(dims) => self.dimensions(&dims),
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
        let kind = kind?;
        if matches!(kind, MetricKind::Cumulative(_)) && matches!(measure, Measure::Ratio(..)) {
            self.error(
                t.anchor.clone(),
                "a cumulative metric accumulates one measure, not a ratio",
            )
            .hint = Some("make two cumulative metrics and a derived metric dividing them".into());
            return None;
        }
        let (table, table_span, time_column) = match &kind {
            MetricKind::Derived(d) => (String::new(), d.span.clone(), String::new()),
            _ => {
                let table = table?;
                (
                    table.get_ref().clone(),
                    table.span(),
                    time_column?.into_inner(),
                )
            }
        };
        let dimensions = dimensions?;
        Some(MetricSpec {
            name: name.into_inner(),
            label: label?.into_inner(),
            description: description.map(|d| d.into_inner()).unwrap_or_default(),
            kind,
            table_span,
            table,
            time_column,
            measure,
            dimensions: dimensions.0,
            dimension_aliases: dimensions.1,
            aliases: aliases?,
            format: format?,
            owner: owner?.into_inner(),
            refreshed: refreshed.map(|r| r.into_inner()).unwrap_or_default(),
            tags: tags?,
            access: access?,
            path: self.path.to_path_buf(),
        })
    }
}

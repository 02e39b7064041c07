//! Reading `[[metric]]` tables: every key checked, every problem with its line and
//! column, the type's own keys (`window`, `grain_to_date`, `expr`, `inputs`) only where
//! they belong.

use std::collections::BTreeMap;

use super::alias::Alias;
use super::chart::NumberFormat;
use super::expr;
use super::metric::{
    Accumulate, Cumulative, Derived, DerivedInput, Interval, IntervalUnit, Measure, MetricKind,
    MetricSpec, PeriodAgg, measure_columns,
};
use super::walk::{Reader, Tbl, is_identifier, string_content_offset};

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
            fixed_filters: Vec::new(),
            documentation: Vec::new(),
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

impl Reader<'_> {
    fn interval(&mut self, t: &Tbl, key: &str) -> Option<Option<Interval>> {
        let Some(text) = self.string(t, key, false) else {
            return if Self::lookup(t, key).is_some() {
                None
            } else {
                Some(None)
            };
        };
        match Interval::parse(text.get_ref()) {
            Some(i) => Some(Some(i)),
            None => {
                self.error(
                    text.span(),
                    format!("`{}` is not a length of time", text.get_ref()),
                )
                .hint = Some(
                    "write a count and a unit: `7 days`, `4 weeks`, `1 month`, `1 year`".into(),
                );
                None
            }
        }
    }

    /// `window = "7 days"` or `grain_to_date = "month"`, and `period_agg`.
    pub(super) fn cumulative(&mut self, t: &Tbl) -> Option<Cumulative> {
        let window = self.interval(t, "window");
        let to_date = self.choice(
            t,
            "grain_to_date",
            &["week", "month", "quarter", "year"],
            |s| IntervalUnit::parse(s).filter(|u| *u != IntervalUnit::Day),
            Some(IntervalUnit::Day),
        );
        let period_agg = self.choice(
            t,
            "period_agg",
            &PeriodAgg::NAMES,
            PeriodAgg::parse,
            Some(PeriodAgg::Last),
        );
        let accumulate = match (window?, to_date?) {
            (Some(w), IntervalUnit::Day) => Accumulate::Window(w),
            (None, unit) if unit != IntervalUnit::Day => Accumulate::ToDate(unit),
            (None, _) => {
                self.error(
                    t.anchor.clone(),
                    "a cumulative metric needs `window` or `grain_to_date`",
                )
                .hint = Some(
                    "write `window = \"7 days\"` for a rolling total, or `grain_to_date = \"month\"` for month to date".into(),
                );
                return None;
            }
            (Some(_), _) => {
                self.error(
                    t.anchor.clone(),
                    "a cumulative metric has `window` or `grain_to_date`, not both",
                );
                return None;
            }
        };
        Some(Cumulative {
            accumulate,
            period_agg: period_agg?,
        })
    }

    /// `expr = "a / b"` and `inputs = [{ metric = "signups", alias = "…", offset_window = "7 days" }]`.
    pub(super) fn derived(&mut self, t: &Tbl) -> Option<Derived> {
        let text = self.string(t, "expr", true)?;
        let text_offset = string_content_offset(self.source, text.span(), text.get_ref());
        let expr = match expr::parse(text.get_ref()) {
            Ok(e) => e,
            Err(e) => {
                let span = match text_offset {
                    Some(at) => at + e.at.start..at + e.at.end,
                    None => text.span(),
                };
                self.error(span, format!("cannot read the expression: {}", e.message))
                    .hint = Some(
                    "write metric names (or input aliases), numbers, + - * / and parentheses"
                        .into(),
                );
                return None;
            }
        };
        let mut declared = Vec::new();
        if let Some(list) = Self::lookup(t, "inputs") {
            let Some(items) = list.get_ref().as_array() else {
                self.wrong_type(t, "inputs", list, "a list of tables");
                return None;
            };
            for (index, item) in items.iter().enumerate() {
                let Some(table) = item.get_ref().as_table() else {
                    self.error(item.span(), format!("input #{} must be a table", index + 1));
                    return None;
                };
                let it = Tbl {
                    table,
                    name: format!("{}.inputs[{index}]", t.name),
                    anchor: item.span(),
                };
                self.check_keys(&it, &["metric", "alias", "offset_window"]);
                let metric = self.string(&it, "metric", true)?;
                let alias = self.string(&it, "alias", false);
                let offset = self.interval(&it, "offset_window")?;
                let name = alias.as_ref().unwrap_or(&metric);
                if !is_identifier(name.get_ref()) {
                    self.error(
                        name.span(),
                        format!("`{}` cannot be a name in an expression", name.get_ref()),
                    );
                    return None;
                }
                declared.push(DerivedInput {
                    name: name.get_ref().clone(),
                    metric: metric.into_inner(),
                    offset,
                    filters: Vec::new(),
                    linked: None,
                });
            }
        }
        let mut inputs: Vec<DerivedInput> = Vec::new();
        for (name, _) in expr.names() {
            if inputs.iter().any(|i| i.name == name) {
                continue;
            }
            inputs.push(match declared.iter().find(|d| d.name == name) {
                Some(d) => d.clone(),
                None => DerivedInput {
                    name: name.to_string(),
                    metric: name.to_string(),
                    offset: None,
                    filters: Vec::new(),
                    linked: None,
                },
            });
        }
        if inputs.is_empty() {
            self.error(text.span(), "the expression names no metric")
                .hint = Some(
                "a derived metric computes from other metrics, e.g. `signups / active_users`"
                    .into(),
            );
            return None;
        }
        Some(Derived {
            expr,
            text_offset,
            span: text.span(),
            text: text.into_inner(),
            inputs,
        })
    }
}

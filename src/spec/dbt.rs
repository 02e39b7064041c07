//! dbt's semantic layer read as it is: `target/semantic_manifest.json` (what `dbt parse`
//! writes) turned into catalog metrics under their dbt names — simple, ratio, cumulative
//! and derived — with descriptions from `manifest.json`. What kpibot cannot compute the
//! way MetricFlow would is listed with its reason, never dropped or guessed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dbt_json::{
    CumulativeParams, DbtMeasure, DbtMetric, Manifest, MetricRef, SemanticManifest, SemanticModel,
    TypeParams, WhereFilters, parse_filter,
};

use super::chart::NumberFormat;
use super::expr::{self, Expr, Op};
use super::metric::{
    Accumulate, Cumulative, Derived, DerivedInput, IntervalUnit, MetricKind, PeriodAgg,
};
use super::metric::{Filter, Measure, MetricSpec};
use super::walk::is_identifier;
use super::{Access, Diagnostic, LoadedFile, alias::Alias};

/// Where dbt's artifacts are (`dbt.semantic_manifest`, `dbt.manifest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbtFiles {
    pub semantic_manifest: Option<PathBuf>,
    pub manifest: Option<PathBuf>,
}

/// The owner shown for a dbt metric whose `meta` names none.
pub const DBT_DEFAULT_OWNER: &str = "the dbt project's owners";

/// A byte range of `"name": "<name>"` in the file, for pointing at one entry.
fn locate(source: &str, name: &str) -> Range<usize> {
    for pattern in [
        format!("\"name\": \"{name}\""),
        format!("\"name\":\"{name}\""),
    ] {
        if let Some(at) = source.find(&pattern) {
            return at..at + pattern.len();
        }
    }
    0..0
}

/// A JSON error's line and column as a byte range.
fn json_error_span(source: &str, error: &serde_json::Error) -> Range<usize> {
    let line_start: usize = source
        .split_inclusive('\n')
        .take(error.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let at = (line_start + error.column().saturating_sub(1)).min(source.len());
    at..at
}

/// Reads the semantic manifest (and the manifest's descriptions) as a loaded file: its
/// metrics, an error if it cannot be read, and a note per dbt metric kpibot cannot
/// compute.
pub fn load(files: &DbtFiles) -> Option<LoadedFile> {
    let path = files.semantic_manifest.as_ref()?;
    let mut loaded = LoadedFile {
        path: path.clone(),
        source: String::new(),
        spec: None,
        metrics: Vec::new(),
        policies: Vec::new(),
        alerts: Vec::new(),
        targets: Vec::new(),
        diagnostics: Vec::new(),
        unsupported: Vec::new(),
    };
    match std::fs::read_to_string(path) {
        Ok(source) => loaded.source = source,
        Err(error) => {
            loaded.diagnostics.push(
                Diagnostic::new(path, 0..0, format!("cannot read dbt's semantic manifest: {error}"))
                    .with_hint("run `dbt parse` in the dbt project, or fix `dbt.semantic_manifest` (KPIBOT__DBT__SEMANTIC_MANIFEST)"),
            );
            return Some(loaded);
        }
    }
    let manifest: SemanticManifest = match serde_json::from_str(&loaded.source) {
        Ok(m) => m,
        Err(error) => {
            let span = json_error_span(&loaded.source, &error);
            loaded.diagnostics.push(
                Diagnostic::new(path, span, format!("this is not a semantic manifest dbt writes: {error}"))
                    .with_hint("point `dbt.semantic_manifest` at `target/semantic_manifest.json`, as `dbt parse` leaves it"),
            );
            return Some(loaded);
        }
    };
    let docs = files
        .manifest
        .as_deref()
        .map(|p| descriptions(p, &mut loaded));
    let reader = Reader {
        manifest: &manifest,
        path,
        source: &loaded.source,
        docs: docs.flatten().unwrap_or_default(),
    };
    for model in &manifest.semantic_models {
        for dimension in model.dimensions.iter().filter(|d| d.kind == "categorical") {
            if let Err(reason) = column_of(&dimension.name, dimension.expr.as_deref(), "dimension")
            {
                loaded.unsupported.push(Diagnostic::new(
                    path,
                    locate(&loaded.source, &dimension.name),
                    format!("semantic model `{}`: {reason}; its metrics cannot be split or filtered by it", model.name),
                ));
            }
        }
    }
    for metric in &manifest.metrics {
        match reader.metric(metric) {
            Ok(spec) => loaded.metrics.push(spec),
            Err(reason) => loaded.unsupported.push(
                Diagnostic::new(
                    path,
                    locate(&loaded.source, &metric.name),
                    format!("dbt metric `{}` is not available: {reason}", metric.name),
                )
                .with_hint("kpibot computes simple, ratio, cumulative and derived metrics over one semantic model's columns"),
            ),
        }
    }
    Some(loaded)
}

/// (table → description, (table, column) → description) from dbt's `manifest.json`.
type Docs = (BTreeMap<String, String>, BTreeMap<(String, String), String>);

fn descriptions(path: &Path, loaded: &mut LoadedFile) -> Option<Docs> {
    let read = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Manifest>(&text).map_err(|e| e.to_string()));
    let manifest = match read {
        Ok(m) => m,
        Err(error) => {
            // Descriptions are extra: the metrics still load, without them.
            loaded.unsupported.push(
                Diagnostic::new(
                    path,
                    0..0,
                    format!("dbt's manifest cannot be read, so no descriptions are shown: {error}"),
                )
                .with_hint("point `dbt.manifest` at `target/manifest.json`, or remove it"),
            );
            return None;
        }
    };
    let mut tables = BTreeMap::new();
    let mut columns = BTreeMap::new();
    for node in manifest.nodes.values() {
        if node.resource_type != "model" {
            continue;
        }
        let table = format!(
            "{}.{}",
            node.schema,
            node.alias.as_ref().unwrap_or(&node.name)
        );
        if !node.description.trim().is_empty() {
            tables.insert(table.clone(), node.description.clone());
        }
        for (column, c) in &node.columns {
            if !c.description.trim().is_empty() {
                columns.insert((table.clone(), column.clone()), c.description.clone());
            }
        }
    }
    Some((tables, columns))
}

struct Reader<'m> {
    manifest: &'m SemanticManifest,
    path: &'m Path,
    source: &'m str,
    docs: Docs,
}

/// A column named by a dbt `expr` (or the element's own name): kpibot reads plain
/// columns, never SQL text from the manifest.
fn column_of(name: &str, expr: Option<&str>, what: &str) -> Result<String, String> {
    let column = expr.map(str::trim).unwrap_or(name);
    if is_identifier(column) {
        Ok(column.to_string())
    } else {
        Err(format!(
            "{what} `{name}` is the SQL expression `{column}`; kpibot reads columns, so add it as a column of the model"
        ))
    }
}

impl Reader<'_> {
    fn measure(&self, name: &str) -> Result<(&SemanticModel, &DbtMeasure), String> {
        self.manifest
            .semantic_models
            .iter()
            .find_map(|model| {
                model
                    .measures
                    .iter()
                    .find(|m| m.name == name)
                    .map(|m| (model, m))
            })
            .ok_or_else(|| format!("no semantic model has the measure `{name}`"))
    }

    fn metric(&self, metric: &DbtMetric) -> Result<MetricSpec, String> {
        let params = &metric.type_params;
        let (kind, source) = match metric.kind.as_str() {
            "simple" => (MetricKind::Simple, params.measure.as_ref()),
            "cumulative" => (
                MetricKind::Cumulative(cumulative(params)?),
                params.measure.as_ref(),
            ),
            "ratio" => {
                let (Some(num), Some(den)) = (&params.numerator, &params.denominator) else {
                    return Err("a ratio metric needs a numerator and a denominator".into());
                };
                let expr = Expr::Binary(
                    Op::Div,
                    Box::new(Expr::Name(input_name(num), 0..0)),
                    Box::new(Expr::Name(input_name(den), 0..0)),
                );
                let text = format!("{} / {}", input_name(num), input_name(den));
                let inputs = vec![self.input(num)?, self.input(den)?];
                return self.derived_spec(metric, expr, text, inputs);
            }
            "derived" => {
                let text = params.expr.clone().unwrap_or_default();
                let expr = expr::parse(&text).map_err(|e| {
                    format!("its expression `{text}` is beyond kpibot's (+ - * / and parentheses over metrics): {}", e.message)
                })?;
                let refs = params.metrics.as_deref().unwrap_or_default();
                let inputs = refs
                    .iter()
                    .map(|r| self.input(r))
                    .collect::<Result<Vec<_>, _>>()?;
                for (name, _) in expr.names() {
                    if !inputs.iter().any(|i| i.name == name) {
                        return Err(format!(
                            "its expression names `{name}`, which is not one of its metrics"
                        ));
                    }
                }
                return self.derived_spec(metric, expr, text, inputs);
            }
            "conversion" => {
                return Err(
                    "conversion metrics (one event followed by another per entity) are not computed by kpibot"
                        .into(),
                );
            }
            other => return Err(format!("the metric type `{other}` is unknown to kpibot")),
        };
        let Some(source) = source else {
            return Err("it names no measure".into());
        };
        if source
            .fill_nulls_with
            .as_ref()
            .is_some_and(|v| !v.is_null())
            || source.join_to_timespine == Some(true)
        {
            return Err("`fill_nulls_with` / `join_to_timespine` fill days without rows; kpibot draws those days as gaps".into());
        }
        let (model, measure) = self.measure(&source.name)?;
        if measure
            .non_additive_dimension
            .as_ref()
            .is_some_and(|v| !v.is_null())
        {
            return Err(format!(
                "measure `{}` is semi-additive (`non_additive_dimension`)",
                measure.name
            ));
        }
        let mut filters = self.filters(model, metric.filter.as_ref())?;
        filters.extend(self.filters(model, source.filter.as_ref())?);
        let mut spec = self.model_spec(metric, model, measure)?;
        spec.kind = kind;
        spec.fixed_filters = filters;
        Ok(spec)
    }

    fn input(&self, r: &MetricRef) -> Result<DerivedInput, String> {
        if r.offset_to_grain.is_some() {
            return Err(format!(
                "input `{}` uses `offset_to_grain`, which kpibot does not compute",
                r.name
            ));
        }
        let metric = self
            .manifest
            .metrics
            .iter()
            .find(|m| m.name == r.name)
            .ok_or_else(|| {
                format!(
                    "it reads metric `{}`, which the manifest does not define",
                    r.name
                )
            })?;
        let filters = match (&r.filter, metric.type_params.measure.as_ref()) {
            (None, _) => Vec::new(),
            (Some(f), Some(measure)) => {
                let (model, _) = self.measure(&measure.name)?;
                self.filters(model, Some(f))?
            }
            (Some(_), None) => {
                return Err(format!(
                    "input `{}` is filtered but has no measure of its own",
                    r.name
                ));
            }
        };
        Ok(DerivedInput {
            name: input_name(r),
            metric: r.name.clone(),
            offset: r.offset_window.as_ref().map(|w| w.interval()).transpose()?,
            filters,
            linked: None,
        })
    }

    fn derived_spec(
        &self,
        metric: &DbtMetric,
        expr: Expr,
        text: String,
        inputs: Vec<DerivedInput>,
    ) -> Result<MetricSpec, String> {
        if metric
            .filter
            .as_ref()
            .is_some_and(|f| !f.where_filters.is_empty())
        {
            return Err("a filter on a ratio or derived metric itself is not applied by kpibot; filter its inputs".into());
        }
        let span = locate(self.source, &metric.name);
        let mut spec = self.base_spec(metric, span.clone());
        spec.kind = MetricKind::Derived(Derived {
            expr,
            text,
            text_offset: None,
            span,
            inputs,
        });
        spec.format = NumberFormat::Decimal;
        Ok(spec)
    }

    fn base_spec(&self, metric: &DbtMetric, span: Range<usize>) -> MetricSpec {
        let meta = |key: &str| {
            metric
                .config
                .as_ref()
                .and_then(|c| c.meta.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        MetricSpec {
            name: metric.name.clone(),
            label: metric.label.clone().unwrap_or_else(|| metric.name.clone()),
            description: metric.description.clone().unwrap_or_default(),
            kind: MetricKind::Simple,
            fixed_filters: Vec::new(),
            documentation: Vec::new(),
            table: String::new(),
            time_column: String::new(),
            measure: Measure::Count(None),
            dimensions: BTreeMap::new(),
            aliases: Vec::new(),
            dimension_aliases: BTreeMap::new(),
            format: meta("format")
                .and_then(|f| NumberFormat::parse(&f))
                .unwrap_or(NumberFormat::Integer),
            owner: meta("owner").unwrap_or_else(|| DBT_DEFAULT_OWNER.to_string()),
            refreshed: meta("refreshed").unwrap_or_default(),
            tags: vec!["dbt".to_string()],
            access: Access::default(),
            path: self.path.to_path_buf(),
            table_span: span,
        }
    }

    fn model_spec(
        &self,
        metric: &DbtMetric,
        model: &SemanticModel,
        measure: &DbtMeasure,
    ) -> Result<MetricSpec, String> {
        let mut spec = self.base_spec(metric, locate(self.source, &metric.name));
        spec.table = format!(
            "{}.{}",
            model.node_relation.schema_name, model.node_relation.alias
        );
        let time = measure
            .agg_time_dimension
            .as_deref()
            .or(model
                .defaults
                .as_ref()
                .and_then(|d| d.agg_time_dimension.as_deref()))
            .ok_or_else(|| {
                format!(
                    "semantic model `{}` names no `agg_time_dimension`",
                    model.name
                )
            })?;
        let time_dimension = model
            .dimensions
            .iter()
            .find(|d| d.name == time && d.kind == "time")
            .ok_or_else(|| format!("`{time}` is not a time dimension of `{}`", model.name))?;
        spec.time_column = column_of(
            &time_dimension.name,
            time_dimension.expr.as_deref(),
            "time dimension",
        )?;
        let column = || column_of(&measure.name, measure.expr.as_deref(), "measure");
        let counts_rows = matches!(measure.expr.as_deref().map(str::trim), Some("1" | "*"));
        spec.measure = match measure.agg.as_str() {
            "sum" | "count" if counts_rows => Measure::Count(None),
            "sum" => Measure::Sum(column()?),
            "count" => Measure::Count(Some(column()?)),
            "count_distinct" => Measure::CountDistinct(column()?),
            "average" => Measure::Avg(column()?),
            "min" => Measure::Min(column()?),
            "max" => Measure::Max(column()?),
            other => {
                return Err(format!(
                    "measure `{}` aggregates with `{other}`; kpibot computes sum, count, count_distinct, average, min and max",
                    measure.name
                ));
            }
        };
        if matches!(measure.agg.as_str(), "average") {
            spec.format = NumberFormat::Decimal;
        }
        let entities = entity_names(model);
        for dimension in model.dimensions.iter().filter(|d| d.kind == "categorical") {
            // A dimension written as SQL cannot be split by; the others still can.
            let Ok(column) = column_of(&dimension.name, dimension.expr.as_deref(), "dimension")
            else {
                continue;
            };
            spec.dimensions.insert(
                column.clone(),
                dimension
                    .label
                    .clone()
                    .unwrap_or_else(|| dimension.name.clone()),
            );
            // People who know dbt write `entity__dimension`; its plain name works too.
            let mut names: Vec<String> = entities
                .iter()
                .map(|e| format!("{e}__{}", dimension.name))
                .collect();
            if dimension.name != column {
                names.push(dimension.name.clone());
            }
            spec.dimension_aliases.insert(
                column,
                names
                    .into_iter()
                    .map(|text| Alias { text, span: 0..0 })
                    .collect(),
            );
        }
        if let Some(description) = self.docs.0.get(&spec.table) {
            spec.documentation
                .push((spec.table.clone(), description.clone()));
        }
        for column in std::iter::once(spec.time_column.clone())
            .chain(
                super::measure_columns(&spec.measure)
                    .into_iter()
                    .map(str::to_string),
            )
            .chain(spec.dimensions.keys().cloned())
        {
            if let Some(description) = self.docs.1.get(&(spec.table.clone(), column.clone())) {
                spec.documentation.push((column, description.clone()));
            }
        }
        if spec.description.is_empty() {
            spec.description = model.description.clone().unwrap_or_default();
        }
        Ok(spec)
    }

    /// A metric's `where_filters`, each `{{ Dimension('entity__name') }} = 'value'` or
    /// `IN ('a', 'b')` on one of the model's own dimensions.
    fn filters(
        &self,
        model: &SemanticModel,
        filters: Option<&WhereFilters>,
    ) -> Result<Vec<Filter>, String> {
        let Some(filters) = filters else {
            return Ok(Vec::new());
        };
        filters
            .where_filters
            .iter()
            .map(|f| {
                let (reference, values) = parse_filter(&f.where_sql_template).ok_or_else(|| {
                    format!(
                        "its filter `{}` is beyond kpibot's (`{{{{ Dimension('entity__name') }}}} = 'value'` or `IN (…)`)",
                        f.where_sql_template
                    )
                })?;
                let (entity, name) = reference.rsplit_once("__").unwrap_or(("", &reference));
                let entities = entity_names(model);
                let dimension = model
                    .dimensions
                    .iter()
                    .find(|d| d.name == name && d.kind == "categorical")
                    .filter(|_| entity.is_empty() || entities.iter().any(|e| e == entity))
                    .ok_or_else(|| {
                        format!("its filter reads `{reference}`, which needs a join to another semantic model; kpibot reads one model's own columns")
                    })?;
                Ok(Filter {
                    dimension: column_of(&dimension.name, dimension.expr.as_deref(), "dimension")?,
                    values,
                })
            })
            .collect()
    }
}

/// The entities a model's own dimensions are named through (`entity__dimension`): not a
/// foreign entity, whose dimensions live in another model (a join kpibot does not make).
fn entity_names(model: &SemanticModel) -> Vec<String> {
    let mut names: Vec<String> = model
        .entities
        .iter()
        .filter(|e| e.kind != "foreign")
        .map(|e| e.name.clone())
        .collect();
    names.extend(model.primary_entity.clone());
    names
}

fn input_name(r: &MetricRef) -> String {
    r.alias.clone().unwrap_or_else(|| r.name.clone())
}

fn cumulative(params: &TypeParams) -> Result<Cumulative, String> {
    let fallback = CumulativeParams::default();
    let c = params.cumulative_type_params.as_ref().unwrap_or(&fallback);
    let window = c.window.as_ref().or(params.window.as_ref());
    let grain = c
        .grain_to_date
        .as_deref()
        .or(params.grain_to_date.as_deref());
    let accumulate = match (window, grain) {
        (Some(w), None) => Accumulate::Window(w.interval()?),
        (None, Some(g)) => Accumulate::ToDate(
            IntervalUnit::parse(g)
                .filter(|u| *u != IntervalUnit::Day)
                .ok_or_else(|| {
                    format!("`grain_to_date = {g}` is not a week, month, quarter or year")
                })?,
        ),
        (None, None) => {
            return Err("a cumulative metric over all time (no window, no grain_to_date) reads every row ever; kpibot computes windows and grain-to-date".into());
        }
        (Some(_), Some(_)) => return Err("it has both a window and a grain_to_date".into()),
    };
    // MetricFlow's default: a coarser bucket shows its first day's value.
    let period_agg = match c.period_agg.as_deref() {
        None => PeriodAgg::First,
        Some(name) => PeriodAgg::parse(name)
            .ok_or_else(|| format!("`period_agg = {name}` is not first, last or average"))?,
    };
    Ok(Cumulative {
        accumulate,
        period_agg,
    })
}

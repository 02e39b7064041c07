//! The JSON of dbt's artifacts as kpibot reads them (`semantic_manifest.json`, and
//! `manifest.json` for descriptions), only the fields it uses; and the `where` filter
//! templates written in them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::metric::{Interval, IntervalUnit};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SemanticManifest {
    pub(super) semantic_models: Vec<SemanticModel>,
    pub(super) metrics: Vec<DbtMetric>,
}

#[derive(Deserialize)]
pub(super) struct SemanticModel {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    pub(super) node_relation: NodeRelation,
    #[serde(default)]
    pub(super) defaults: Option<ModelDefaults>,
    #[serde(default)]
    pub(super) primary_entity: Option<String>,
    #[serde(default)]
    pub(super) entities: Vec<Named>,
    #[serde(default)]
    pub(super) measures: Vec<DbtMeasure>,
    #[serde(default)]
    pub(super) dimensions: Vec<DbtDimension>,
}

#[derive(Deserialize)]
pub(super) struct NodeRelation {
    pub(super) alias: String,
    pub(super) schema_name: String,
}

#[derive(Deserialize)]
pub(super) struct ModelDefaults {
    #[serde(default)]
    pub(super) agg_time_dimension: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Named {
    pub(super) name: String,
    /// `primary`, `unique`, `natural` or `foreign`.
    #[serde(rename = "type", default)]
    pub(super) kind: String,
}

#[derive(Deserialize)]
pub(super) struct DbtMeasure {
    pub(super) name: String,
    pub(super) agg: String,
    #[serde(default)]
    pub(super) expr: Option<String>,
    #[serde(default)]
    pub(super) agg_time_dimension: Option<String>,
    #[serde(default)]
    pub(super) non_additive_dimension: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct DbtDimension {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) expr: Option<String>,
    #[serde(default)]
    pub(super) label: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DbtMetric {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) type_params: TypeParams,
    #[serde(default)]
    pub(super) filter: Option<WhereFilters>,
    #[serde(default)]
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) config: Option<Config>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TypeParams {
    pub(super) measure: Option<MeasureRef>,
    pub(super) numerator: Option<MetricRef>,
    pub(super) denominator: Option<MetricRef>,
    pub(super) expr: Option<String>,
    pub(super) window: Option<Window>,
    pub(super) grain_to_date: Option<String>,
    pub(super) metrics: Option<Vec<MetricRef>>,
    pub(super) cumulative_type_params: Option<CumulativeParams>,
}

#[derive(Deserialize)]
pub(super) struct MeasureRef {
    pub(super) name: String,
    #[serde(default)]
    pub(super) filter: Option<WhereFilters>,
    #[serde(default)]
    pub(super) fill_nulls_with: Option<Value>,
    #[serde(default)]
    pub(super) join_to_timespine: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct MetricRef {
    pub(super) name: String,
    #[serde(default)]
    pub(super) filter: Option<WhereFilters>,
    #[serde(default)]
    pub(super) alias: Option<String>,
    #[serde(default)]
    pub(super) offset_window: Option<Window>,
    #[serde(default)]
    pub(super) offset_to_grain: Option<String>,
}

#[derive(Deserialize, Clone)]
pub(super) struct Window {
    pub(super) count: u32,
    pub(super) granularity: String,
}

impl Window {
    /// The window as a length of time; a granularity kpibot does not count in (an hour,
    /// a project's custom granularity) is the metric's reason to be unavailable.
    pub(super) fn interval(&self) -> Result<Interval, String> {
        IntervalUnit::parse(&self.granularity)
            .map(|unit| Interval {
                count: self.count,
                unit,
            })
            .ok_or_else(|| {
                format!(
                    "its window's granularity `{}` is not a day, week, month, quarter or year",
                    self.granularity
                )
            })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CumulativeParams {
    pub(super) window: Option<Window>,
    pub(super) grain_to_date: Option<String>,
    pub(super) period_agg: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WhereFilters {
    pub(super) where_filters: Vec<WhereFilter>,
}

#[derive(Deserialize)]
pub(super) struct WhereFilter {
    pub(super) where_sql_template: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Config {
    pub(super) meta: BTreeMap<String, Value>,
}

/// dbt's `manifest.json`, only what describes tables and columns.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Manifest {
    pub(super) nodes: BTreeMap<String, ManifestNode>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ManifestNode {
    pub(super) resource_type: String,
    pub(super) schema: String,
    pub(super) alias: Option<String>,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) columns: BTreeMap<String, ManifestColumn>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ManifestColumn {
    pub(super) description: String,
}

/// `{{ Dimension('user__role') }} = 'student'` → (`user__role`, ["student"]); `IN ('a',
/// 'b')` → both values. Anything else is `None`.
pub fn parse_filter(template: &str) -> Option<(String, Vec<String>)> {
    let text = template.trim();
    let rest = text.strip_prefix("{{")?.trim_start();
    let rest = rest.strip_prefix("Dimension(")?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    let reference = rest[..end].to_string();
    let rest = rest[end + 1..].trim_start().strip_prefix(')')?.trim_start();
    let rest = rest.strip_prefix("}}")?.trim_start();
    let values = if let Some(value) = rest.strip_prefix('=') {
        vec![literal(value.trim())?]
    } else {
        let upper = rest.get(..2)?.to_ascii_uppercase();
        if upper != "IN" {
            return None;
        }
        let list = rest[2..].trim().strip_prefix('(')?.strip_suffix(')')?;
        list.split(',')
            .map(|v| literal(v.trim()))
            .collect::<Option<Vec<_>>>()?
    };
    (!reference.is_empty() && !values.is_empty()).then_some((reference, values))
}

/// `'text'` (with `''` for a quote), a number or `true`/`false`, as the text compared.
fn literal(text: &str) -> Option<String> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        return Some(inner.replace("''", "'"));
    }
    let lower = text.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return Some(lower);
    }
    text.parse::<f64>().ok().map(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_or_refused() {
        assert_eq!(
            parse_filter("{{ Dimension('user__role') }} = 'student'"),
            Some(("user__role".into(), vec!["student".into()]))
        );
        assert_eq!(
            parse_filter("{{Dimension(\"signup__channel\")}} in ('ads', 'o''hare')"),
            Some((
                "signup__channel".into(),
                vec!["ads".into(), "o'hare".into()]
            ))
        );
        for refused in [
            "{{ Dimension('a__b') }} > 3",
            "{{ TimeDimension('metric_time', 'day') }} >= '2024-01-01'",
            "{{ Dimension('a__b') }} = 'x' OR 1=1",
            "{{ Dimension('a__b') }} = 'x'; DROP TABLE t",
            "role = 'x'",
        ] {
            assert_eq!(parse_filter(refused), None, "{refused}");
        }
    }
}

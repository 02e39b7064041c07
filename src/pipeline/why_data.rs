//! What an explanation is of, in the reader's words ([`About`]), which members it names
//! one by one, and what it carries for machines: the `kpibot_explanation` metadata (flat,
//! every value a string, as Slack's payload requires) and the CSV of every member's part.

use serde_json::{Value, json};

use std::collections::BTreeMap;

use super::why::{Explained, Explanation};
use crate::explain::{Contribution, share_of_change};
use crate::i18n::Locale;
use crate::render::format::NumberStyle;
use crate::render::message::EXPLANATION_EVENT_TYPE;
use crate::spec::NumberFormat;
use crate::spec::explain_sql::Split;
use crate::tr;
use crate::warehouse::{Cell, ColumnInfo, ColumnType, Table};

/// Members of the best dimension named one by one; the rest are folded into one part.
pub const MEMBERS_SHOWN: usize = 5;

/// What the explanation is of, in the reader's words.
pub struct About<'a> {
    /// The metric's label (the chart title people know).
    pub label: &'a str,
    /// Dimension name → its label.
    pub dimensions: &'a BTreeMap<String, String>,
    pub format: NumberFormat,
    /// A sum's parts or a ratio's.
    pub split: Split,
    pub locale: Locale,
    pub timezone: &'a str,
}

impl About<'_> {
    pub(super) fn style(&self) -> NumberStyle {
        // A ratio's values and parts are fractions: whole numbers would print them as 0.
        let format = match (self.format, self.split) {
            (NumberFormat::Integer, Split::Ratio) => NumberFormat::Decimal,
            (format, _) => format,
        };
        NumberStyle {
            format,
            locale: self.locale,
            ..NumberStyle::integer()
        }
    }

    pub(super) fn dimension(&self, name: &str) -> String {
        self.dimensions
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    pub(super) fn member(&self, member: &Option<String>) -> String {
        member
            .clone()
            .unwrap_or_else(|| tr!(self.locale, "why-null-member"))
    }
}

/// The members shown one by one (non-zero parts, largest first) and the rest folded.
pub(super) fn shown(explained: &Explained) -> (Vec<&Contribution>, Option<(usize, f64)>) {
    let members = &explained.decomposition.members;
    let moved = |m: &&Contribution| !explained.decomposition.negligible(m.change);
    let named: Vec<&Contribution> = members.iter().filter(moved).take(MEMBERS_SHOWN).collect();
    let rest = &members[named.len().min(members.len())..];
    let folded: f64 = rest.iter().map(|m| m.change).sum();
    let others = rest.iter().filter(moved).count();
    (named, (others > 0).then_some((others, folded)))
}

/// The metadata: the metric, windows and best dimension, and each member shown with its
/// part (and for a ratio its rate and mix), as numbers — flat, as Slack's payload wants.
pub(super) fn metadata(
    explanation: &Explanation,
    about: &About,
    report_id: &str,
    slot: &str,
) -> Value {
    let prepared = &explanation.prepared;
    let (before, after) = explanation.totals().unwrap_or((0.0, 0.0));
    // Slack's payload values are strings (slack-morphism's type says so too): numbers are
    // written in full, as Rust prints an f64 (`-16642`, `0.2164`).
    let mut payload = serde_json::Map::new();
    let mut put = |key: String, value: Value| {
        let text = match value {
            Value::String(text) => text,
            other => other.to_string(),
        };
        payload.insert(key, Value::String(text));
    };
    put("report_id".into(), json!(report_id));
    put("slot".into(), json!(slot));
    put("metric".into(), json!(prepared.metric));
    put(
        "asked_start".into(),
        json!(prepared.asked.start.to_string()),
    );
    put("asked_end".into(), json!(prepared.asked.end.to_string()));
    put(
        "compared_start".into(),
        json!(prepared.compared.start.to_string()),
    );
    put(
        "compared_end".into(),
        json!(prepared.compared.end.to_string()),
    );
    put("before".into(), json!(before.to_string()));
    put("after".into(), json!(after.to_string()));
    put("change".into(), json!((after - before).to_string()));
    if let Some(best) = explanation.dimensions.first() {
        put("dimension".into(), json!(best.dimension));
        put("power".into(), json!(best.power.to_string()));
        let (named, folded) = shown(best);
        put("members".into(), json!(named.len()));
        for (i, m) in named.iter().enumerate() {
            let i = i + 1;
            put(format!("member_{i}"), json!(about.member(&m.member)));
            if m.member.is_none() {
                // The rows whose value is NULL, not a member named like the placeholder.
                put(format!("member_{i}_null"), json!("true"));
            }
            put(format!("change_{i}"), json!(m.change.to_string()));
            if let (Some(rate), Some(mix)) = (m.rate, m.mix) {
                put(format!("rate_{i}"), json!(rate.to_string()));
                put(format!("mix_{i}"), json!(mix.to_string()));
            }
        }
        if let Some((count, part)) = folded {
            put("others".into(), json!(count));
            put("others_change".into(), json!(part.to_string()));
        }
    }
    json!({"event_type": EXPLANATION_EVENT_TYPE, "event_payload": payload})
}

/// Every member of every dimension, for the CSV beside the chart.
pub(super) fn csv(explanation: &Explanation) -> Table {
    let columns = [
        ("dimension", ColumnType::Text),
        ("member", ColumnType::Text),
        ("change", ColumnType::Float),
        ("share_of_change", ColumnType::Float),
        ("rate", ColumnType::Float),
        ("mix", ColumnType::Float),
        ("explanatory_power", ColumnType::Float),
    ];
    let number = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
    let rows = explanation
        .dimensions
        .iter()
        .flat_map(|d| {
            d.decomposition.members.iter().map(move |m| {
                vec![
                    Cell::Text(d.dimension.clone()),
                    m.member.clone().map_or(Cell::Null, Cell::Text),
                    Cell::Float(m.change),
                    number(share_of_change(m, &d.decomposition)),
                    number(m.rate),
                    number(m.mix),
                    Cell::Float(d.power),
                ]
            })
        })
        .collect();
    Table {
        columns: columns
            .iter()
            .map(|(name, ty)| ColumnInfo {
                name: name.to_string(),
                ty: *ty,
            })
            .collect(),
        rows,
        bytes_processed: None,
    }
}

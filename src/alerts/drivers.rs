//! The drivers line on an alert's root: the watched metric's change on the judged day
//! explained by its members (the firing values' parts and shares for a split alert, the
//! best dimension's top member otherwise), over only the dimensions the alert's channel
//! may see, by one query whose reads are proven first; and a Why? button whose answer,
//! in the root's thread, is the full explanation.

use serde_json::{Value, json};

use super::engine::Notice;
use super::judge::Reference;
use super::message::Facts;
use super::run::AlertRunner;
use crate::catalog::Catalog;
use crate::catalog::access::{
    Asker, Decision, base_columns, decide, metric_gates, with_proven_reads,
};
use crate::explain::share_of_change;
use crate::i18n::mrkdwn;
use crate::pipeline::comparison_window;
use crate::pipeline::why::{self, Explanation};
use crate::pipeline::why_message::{About, driver_line, member_share};
use crate::render::actions::{ACTION_WHY, Asked, why_block};
use crate::spec::alert::{Watch, as_filters};
use crate::spec::explain_sql::explainable;
use crate::spec::{AlertSpec, Compare, Window};
use crate::warehouse::reads::Reads;
use crate::warehouse::{QueryJob, Trigger};

/// Firing values of a split alert given their part in the drivers line.
pub const DRIVER_VALUES_MAX: usize = 3;
/// Longest the drivers query may take: the root is posted without the line past it.
pub const DRIVERS_TIMEOUT_MS: u64 = 10_000;

/// The `block_id` of a root's drivers line, so its edit keeps it.
pub const DRIVERS_BLOCK_ID: &str = "kpibot-drivers";

/// What an alert's root gains: the line and the button, as blocks.
pub(super) struct Drivers {
    line: Option<Value>,
    button: Option<Value>,
}

impl Drivers {
    fn new(line: &str, button: Option<Value>) -> Self {
        Self {
            line: Some(
                json!({"type": "context", "block_id": DRIVERS_BLOCK_ID, "elements": [{"type": "mrkdwn", "text": mrkdwn::truncate(line, 3000)}]}),
            ),
            button,
        }
    }

    fn is_why_button(block: &Value) -> bool {
        block["type"] == "actions"
            && block["elements"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["action_id"] == ACTION_WHY))
    }

    /// Whether a posted block is a drivers line or its Why? button.
    pub(super) fn is_one_of(block: &Value) -> bool {
        block["block_id"] == DRIVERS_BLOCK_ID || Self::is_why_button(block)
    }

    /// The drivers a posted root showed, from its blocks (picked by [`Self::is_one_of`]);
    /// `None` when it showed neither.
    pub(super) fn from_blocks(blocks: Vec<Value>) -> Option<Self> {
        let line = blocks
            .iter()
            .find(|b| b["block_id"] == DRIVERS_BLOCK_ID)
            .cloned();
        let button = blocks.iter().find(|b| Self::is_why_button(b)).cloned();
        (line.is_some() || button.is_some()).then_some(Self { line, button })
    }

    /// Puts the line above the root's chart (under its lead and values, however many
    /// sections an edit put above them) and the button above its small print.
    pub(super) fn add_to(&self, body: &mut Value) {
        let Some(blocks) = body["blocks"].as_array_mut() else {
            return;
        };
        let small_print = blocks.len().saturating_sub(1);
        if let Some(line) = &self.line {
            let at = blocks
                .iter()
                .position(|b| b["type"] == "image")
                .unwrap_or(small_print);
            blocks.insert(at, line.clone());
        }
        if let Some(button) = &self.button {
            let at = blocks.len().saturating_sub(1);
            blocks.insert(at, button.clone());
        }
    }
}

/// The comparison a judged day is explained against: the earlier day a change condition
/// compared it with, else the same weekday a week before.
fn compare_of(day: chrono::NaiveDate, reference: Option<&Reference>) -> Compare {
    match reference {
        Some(Reference::Earlier { day: earlier, .. }) => match (day - *earlier).num_days() {
            1 => Compare::PreviousPeriod,
            365 | 366 => Compare::PreviousYear,
            28..=31 => Compare::PreviousMonth,
            _ => Compare::PreviousWeek,
        },
        _ => Compare::PreviousWeek,
    }
}

impl AlertRunner {
    /// The drivers of a firing, for `asker` (the alert's channel or person); `None` when
    /// the alert does not watch a metric whose change splits into parts, when no dimension
    /// may be shown there, or when the explanation cannot be made (the alert still posts).
    pub(super) async fn drivers(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        notice: &Notice,
        facts: &Facts<'_>,
        asker: &Asker,
    ) -> Option<Drivers> {
        let Some(Watch::Metric {
            metric,
            by,
            filters,
            ..
        }) = &alert.watch
        else {
            return None;
        };
        let metric = catalog.metric(metric).filter(|m| explainable(m))?;
        let first = notice.items.first()?;
        let compare = compare_of(facts.day, first.reference.as_ref());
        let asked = Window {
            start: facts.day,
            end: facts.day,
        };
        let compared = comparison_window(asked, compare)?;
        let filters = as_filters(filters);
        let policy = self.config.access_policy;
        let shown_here = |dimensions: &[&str], reads: &Reads| {
            let mut columns = base_columns(metric);
            columns.extend(dimensions.iter().copied());
            columns.extend(filters.iter().map(|f| f.dimension.as_str()));
            let gates = with_proven_reads(metric_gates(catalog, metric, &columns), catalog, reads);
            match decide(&gates, asker, policy, false, &alert.owner) {
                Decision::Channel => true,
                // A direct message is the person's own: what they may see privately.
                Decision::Private { .. } => !asker.user_id.is_empty(),
                Decision::Refused { .. } => false,
            }
        };
        let dimensions: Vec<&str> = metric
            .dimensions
            .keys()
            .map(String::as_str)
            .filter(|d| shown_here(&[d], &Reads::nothing()))
            .filter(|d| {
                !filters
                    .iter()
                    .any(|f| f.dimension == *d && f.values.len() == 1)
            })
            .collect();
        let warehouse = self.parts.warehouse.as_ref();
        let prepared = why::prepare(warehouse, metric, &dimensions, &filters, asked, compared)
            .inspect_err(|error| tracing::info!(alert = %alert.name, %error, "no drivers line"))
            .ok()?;
        // Within the alert's budget and row limit, and quick: the root waits for it.
        let timeout = self
            .config
            .query_timeout
            .min(std::time::Duration::from_millis(DRIVERS_TIMEOUT_MS));
        let mut job = QueryJob::new(timeout).for_report(&alert.name, Trigger::Alert);
        if let Some(max_rows) = self.config.limits.max_rows {
            job = job.with_max_rows(max_rows);
        }
        if catalog.has_policies() {
            let proven = prepared.reads(warehouse, &job).await;
            if !shown_here(&dimensions, &proven) {
                return None;
            }
        }
        let metered = self
            .parts
            .meter
            .bill(warehouse, crate::budget::Payer::alert(&alert.name));
        let explanation = prepared
            .run(&metered, &job)
            .await
            .inspect_err(
                |error| tracing::warn!(alert = %alert.name, %error, "could not explain the firing"),
            )
            .ok()?;
        let about = About {
            label: &metric.label,
            dimensions: &metric.dimensions,
            format: metric.format,
            split: explanation.prepared.split,
            locale: facts.locale,
            timezone: alert.timezone.name(),
        };
        let driver = match by {
            None => driver_line(&explanation, &about)?,
            Some(by) => split_line(&explanation, &about, by, notice)?,
        };
        let line = crate::tr_mrkdwn!(
            facts.locale,
            "why-driver",
            driver = mrkdwn::Mrkdwn::formatted(driver)
        );
        let asked = Asked {
            name: metric.name.clone(),
            metric: true,
            period: format!("{}..{}", facts.day, facts.day),
            compare: Some(compare.name().to_string()),
            filters: filters
                .iter()
                .map(|f| (f.dimension.clone(), f.values.clone()))
                .collect(),
            ..Asked::default()
        };
        Some(Drivers::new(&line, why_block(&asked, facts.locale)))
    }
}

/// A split alert's firing values, each with its part of the total change and its share.
fn split_line(
    explanation: &Explanation,
    about: &About,
    by: &str,
    notice: &Notice,
) -> Option<String> {
    let split = explanation.dimensions.iter().find(|d| d.dimension == by)?;
    let parts: Vec<String> = notice
        .items
        .iter()
        .take(DRIVER_VALUES_MAX)
        .filter_map(|item| {
            let member = split
                .decomposition
                .members
                .iter()
                .find(|m| m.member.as_deref() == Some(item.instance.as_str()))?;
            let share = share_of_change(member, &split.decomposition)?;
            Some(member_share(
                about,
                member,
                share,
                split.decomposition.change,
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(body: &Value) -> Vec<String> {
        body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                b["block_id"]
                    .as_str()
                    .filter(|id| *id == DRIVERS_BLOCK_ID)
                    .map_or_else(|| b["type"].as_str().unwrap().to_string(), str::to_string)
            })
            .collect()
    }

    #[test]
    fn the_line_stays_above_the_chart_and_the_button_above_the_small_print() {
        let asked = Asked {
            name: "active_users".into(),
            metric: true,
            period: "2026-11-12..2026-11-12".into(),
            ..Asked::default()
        };
        let button = why_block(&asked, crate::i18n::Locale::En);
        let drivers = Drivers::new("Driver: 福岡県 -2,742, 81% of the drop", button.clone());
        // A root, and its edit once part of it resolved (a section above the values).
        let root = json!({"blocks": [{"type": "header"}, {"type": "section"}, {"type": "image"}, {"type": "context"}]});
        let edited = json!({"blocks": [{"type": "header"}, {"type": "section"}, {"type": "section"}, {"type": "image"}, {"type": "context"}]});
        for (mut body, expected) in [
            (
                root,
                vec![
                    "header",
                    "section",
                    DRIVERS_BLOCK_ID,
                    "image",
                    "actions",
                    "context",
                ],
            ),
            (
                edited,
                vec![
                    "header",
                    "section",
                    "section",
                    DRIVERS_BLOCK_ID,
                    "image",
                    "actions",
                    "context",
                ],
            ),
        ] {
            drivers.add_to(&mut body);
            assert_eq!(kinds(&body), expected);
            // What an edit reads back keeps both, and only those.
            let kept = body["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| Drivers::is_one_of(b))
                .count();
            assert_eq!(kept, 2);
        }
        // A root posted before the line had its block_id: its button is still kept.
        let button_only = Drivers::from_blocks(vec![button.unwrap()]).unwrap();
        assert!(button_only.line.is_none() && button_only.button.is_some());
        assert!(Drivers::from_blocks(Vec::new()).is_none());
        // Another actions block is not the Why? button.
        let other = json!({"type": "actions", "block_id": "kpi:{}", "elements": [{"action_id": "kpi_refresh"}]});
        assert!(!Drivers::is_one_of(&other));
    }
}

//! `/kpi why <metric> …` (`なぜ …`) and the Why? button: the metric's change between the
//! asked window and its comparison, explained member by member over the dimensions the
//! asker may see — in a channel, only those the channel may see — by one query whose reads
//! are proven and decided by the one access rule before it runs.

use chrono::SecondsFormat;

use super::access::{
    Asker, Decision, Gate, Viewer, base_columns, decide, metric_gates, with_proven_reads,
};
use super::context::{Answer, Context};
use super::grammar::Query;
use super::reply::Reply;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::pipeline::why::{self, WhyError};
use crate::pipeline::why_message::{About, render_explanation};
use crate::pipeline::{comparison_window, window_for};
use crate::spec::{MetricSpec, ReportSpec};
use crate::tr_mrkdwn;
use crate::warehouse::reads::Reads;
use crate::warehouse::{QueryJob, Warehouse, WarehouseError};

/// The dimensions an explanation may compute for `asker`: the one asked (`by`), else every
/// one they may see except those filtered to a single value (which explain nothing). In a
/// channel, those the channel may see, when there are any.
fn dimensions<'m>(
    context: &Context<'_>,
    metric: &'m MetricSpec,
    asked: &Asked,
    asker: &Asker,
) -> Vec<&'m str> {
    let query = &asked.query;
    if let Some(by) = &query.by {
        return metric
            .dimensions
            .get_key_value(by)
            .map(|(name, _)| vec![name.as_str()])
            .unwrap_or_default();
    }
    let viewer = Viewer {
        catalog: context.catalog,
        asker,
        policy: context.policy,
    };
    let seen: Vec<&str> = viewer
        .dimensions(metric)
        .into_iter()
        .filter(|d| {
            !query
                .filters
                .iter()
                .any(|f| f.dimension == *d && f.values.len() == 1)
        })
        .collect();
    if asked.private {
        return seen;
    }
    let in_channel: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|d| {
            let gates = gates_for(context, metric, asked, &[d]);
            matches!(
                decide(&gates, asker, context.policy, false, ""),
                Decision::Channel
            )
        })
        .collect();
    if in_channel.is_empty() {
        seen
    } else {
        in_channel
    }
}

/// The gates of an explanation over `dimensions`: those the question resolved to (the
/// metric's, its filters', a report's own), and each dimension's.
fn gates_for(
    context: &Context<'_>,
    metric: &MetricSpec,
    asked: &Asked,
    dimensions: &[&str],
) -> Vec<Gate> {
    let mut columns = base_columns(metric);
    columns.extend(dimensions.iter().copied());
    columns.extend(asked.query.filters.iter().map(|f| f.dimension.as_str()));
    let mut gates = asked.gates.clone();
    for gate in metric_gates(context.catalog, metric, &columns) {
        if !gates.contains(&gate) {
            gates.push(gate);
        }
    }
    gates
}

/// A why question as resolved: the question, the metric's question as a report (its
/// period and comparison), the gates it resolved to and whether it answers privately.
pub struct Asked {
    pub query: Query,
    pub spec: ReportSpec,
    pub gates: Vec<Gate>,
    pub private: bool,
}

fn mistake(text: String) -> Answer {
    Answer::Text(Reply::Mistake(text))
}

/// Answers a why question already resolved (`spec` is the metric's question as a report:
/// its period and comparison).
pub async fn answer_why(
    context: &Context<'_>,
    asked: Asked,
    asker: &Asker,
    read_back: &Mrkdwn,
) -> Answer {
    let locale = context.locale;
    let (query, spec) = (&asked.query, &asked.spec);
    let name = query.name.as_str();
    let Some(metric) = context.catalog.metric(name) else {
        return mistake(tr_mrkdwn!(locale, "why-not-a-metric", name = name));
    };
    // Who may not see the metric at all learns nothing more about it, not even why it
    // cannot be explained.
    if let Decision::Refused { owner } = decide(
        &gates_for(context, metric, &asked, &[]),
        asker,
        context.policy,
        asked.private,
        &metric.owner,
    ) {
        return Answer::Text(Reply::Refused {
            name: query.name.clone(),
            owner,
        });
    }
    let window = match window_for(spec, None, context.now, &context.limits.window) {
        Ok(window) => window,
        Err(error) => return mistake(error.mrkdwn(locale).into_string()),
    };
    let Some(compared) = comparison_window(window, spec.chart.compare) else {
        return mistake(tr_mrkdwn!(locale, "why-no-comparison", name = name));
    };
    let dimensions = dimensions(context, metric, &asked, asker);
    if dimensions.is_empty() {
        return mistake(tr_mrkdwn!(locale, "why-no-visible-dimension", name = name));
    }
    let cannot = |error: WhyError| {
        mistake(tr_mrkdwn!(
            locale,
            "why-cannot",
            name = name,
            why = error.text(locale)
        ))
    };
    let prepared = match why::prepare(
        context.warehouse,
        metric,
        &dimensions,
        &query.filters,
        window,
        compared,
    ) {
        Ok(prepared) => prepared,
        Err(error) => return cannot(error),
    };
    let mut job = QueryJob::new(context.timeout).for_report(&metric.name, context.trigger);
    if let Some(max_rows) = context.limits.max_rows {
        job = job.with_max_rows(max_rows);
    }
    // What the query really reads (a metric on a view) falls under the policies too.
    let proven = if context.catalog.has_policies() {
        prepared.reads(context.warehouse, &job).await
    } else {
        Reads::nothing()
    };
    let gates = with_proven_reads(
        gates_for(context, metric, &asked, &dimensions),
        context.catalog,
        &proven,
    );
    let why_private = match decide(&gates, asker, context.policy, asked.private, &metric.owner) {
        Decision::Refused { owner } => {
            return Answer::Text(Reply::Refused {
                name: query.name.clone(),
                owner,
            });
        }
        Decision::Private { why } => Some(why.map(|m| Mrkdwn::formatted(m.mrkdwn(locale)))),
        Decision::Channel => None,
    };
    let metered = context.metered(asker);
    let warehouse = metered
        .as_ref()
        .map_or(context.warehouse, |m| m as &dyn Warehouse);
    let explanation = match prepared.run(warehouse, &job).await {
        Ok(explanation) => explanation,
        Err(WhyError::Warehouse(WarehouseError::OverBudget(over))) => {
            return Answer::Text(Reply::OverBudget(over));
        }
        Err(WhyError::Warehouse(error)) => {
            return Answer::Text(Reply::Failed {
                name: query.name.clone(),
                error: Mrkdwn::value(&crate::pipeline::warehouse_failure(&error, locale)),
                owner: metric.owner.clone(),
                timed_out: matches!(error, WarehouseError::Timeout(_)),
            });
        }
        Err(error) => return cannot(error),
    };
    let about = About {
        label: &spec.title,
        dimensions: &metric.dimensions,
        format: metric.format,
        split: explanation.prepared.split,
        locale,
        timezone: context.timezone.name(),
    };
    let slot = context.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let channel = Some(asker.channel_id.clone()).filter(|c| !c.is_empty());
    let mut rendered = match render_explanation(&explanation, &about, channel, slot) {
        Ok(rendered) => rendered,
        Err(error) => {
            return Answer::Text(Reply::Failed {
                name: query.name.clone(),
                error: Mrkdwn::value(&error.to_string()),
                owner: metric.owner.clone(),
                timed_out: false,
            });
        }
    };
    rendered.context_under_title(read_back);
    Answer::Chart {
        bytes: match &metered {
            Some(metered) => metered.billed(),
            None => explanation.bytes,
        },
        rows: explanation.rows,
        rendered: Box::new(rendered),
        ephemeral: why_private.is_some(),
        why_private: why_private.flatten(),
    }
}

//! Answering a resolved command: check access, run the report through the same pipeline
//! as scheduled posts (through the result cache when there is one), and say what happened.

use super::access::{
    AccessPolicy, Asker, Decision, Viewer, base_columns, decide, metric_gates, with_proven_reads,
};
pub use super::context::{Answer, Context};
use super::grammar::Query;
use super::phrase::{Called, read_back_line};
use super::reply::Reply;
use super::resolve::{Resolved, resolve};
use crate::budget::Payer;
use crate::catalog::Catalog;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::pipeline::{self, PipelineError, RunOptions};
use crate::render::actions::{Actions, Asked};
use crate::spec::ReportSpec;
use crate::warehouse::cache::Cached;
use crate::warehouse::{Warehouse, WarehouseError};

/// Answers one command. Every outcome is an answer; nothing here panics or goes silent.
pub async fn answer(context: &Context<'_>, text: &str, asker: &Asker) -> Answer {
    let viewer = Viewer {
        catalog: context.catalog,
        asker,
        policy: context.policy,
    };
    let resolved = resolve(
        context.catalog,
        text,
        context.warehouse.dialect(),
        context.timezone,
        &context.calendar(),
        &viewer,
        context.locale,
    );
    answer_resolved(context, resolved, asker).await
}

/// Answers a command already resolved against the catalog: checks access, then runs it.
pub async fn answer_resolved(context: &Context<'_>, resolved: Resolved, asker: &Asker) -> Answer {
    let (query, spec, params, gates, private, called) = match resolved {
        Resolved::Reply(text) => return Answer::Text(text),
        Resolved::History { name } => {
            if context.catalog.policies_incomplete() {
                return Answer::Text(Reply::PoliciesUnreadable);
            }
            let viewer = Viewer {
                catalog: context.catalog,
                asker,
                policy: context.policy,
            };
            let price = context
                .meter
                .map_or(crate::warehouse::cost::DEFAULT_PRICE_PER_TIB_USD, |m| {
                    m.config.price_per_tib_usd
                });
            let text = super::history::history_text(
                context.ledger,
                context.slack,
                &viewer,
                &name,
                context.locale,
                price,
            )
            .await;
            return Answer::Text(Reply::Catalog(text));
        }
        Resolved::Alerts => {
            if context.catalog.policies_incomplete() {
                return Answer::Text(Reply::PoliciesUnreadable);
            }
            let text = crate::alerts::listing::firing_text(
                context.ledger,
                context.catalog,
                context.warehouse.dialect(),
                asker,
                context.policy,
                context.locale,
            )
            .await;
            return Answer::Text(Reply::Catalog(text));
        }
        Resolved::Follow(asked) => return super::follow::follow(context, *asked, asker).await,
        Resolved::Following => return super::follow::following(context, asker).await,
        Resolved::Unfollow { which } => {
            let canonical = canonical_question(context, &which, asker);
            return super::follow::unfollow(context, &which, canonical, asker).await;
        }
        Resolved::Run {
            query,
            spec,
            params,
            gates,
            private,
            called,
        } => (query, *spec, params, gates, private, called),
    };
    if context.catalog.policies_incomplete() {
        return Answer::Text(Reply::PoliciesUnreadable);
    }
    if query.why {
        let read_back = read_back_of(context, &query, &called, &spec);
        let asked = super::why::Asked {
            query,
            spec,
            gates,
            private,
        };
        return super::why::answer_why(context, asked, asker, &read_back).await;
    }
    let gates = proven_gates(context, &spec, &params, gates).await;
    let decision = decide(&gates, asker, context.policy, private, &spec.owner);
    if let Decision::Refused { owner } = decision {
        return Answer::Text(Reply::Refused {
            name: query.name,
            owner,
        });
    }
    let in_channel = matches!(decision, Decision::Channel);
    // A channel post's "Split by" menu names only what the channel may see.
    let actions = actions_for(
        context.catalog,
        &query,
        &spec,
        asker,
        context.policy,
        in_channel,
    );
    let options = RunOptions {
        actions: Some(actions),
        period: Some(spec.query.period),
        channel: Some(asker.channel_id.clone()).filter(|c| !c.is_empty()),
        params,
        limits: context.limits,
        locale: context.locale,
        ..RunOptions::new(context.now, context.timeout, context.trigger)
    };
    // Billed to the asker, inside the cache: an answer from the cache costs nothing.
    let payer = Payer::person(&asker.user_id);
    let answer = run_answer(context, payer, &spec, &options, (query, &called)).await;
    placed(answer, decision, context.locale)
}

/// A chart answered for everyone allowed, placed as `decision` (not a refusal) says: in
/// the channel, or to the asker only with the line saying why.
fn placed(answer: Answer, decision: Decision, locale: crate::i18n::Locale) -> Answer {
    let why_private = match decision {
        Decision::Private { why } => Some(why.map(|m| Mrkdwn::formatted(m.mrkdwn(locale)))),
        Decision::Channel | Decision::Refused { .. } => None,
    };
    match answer {
        Answer::Chart {
            rendered,
            rows,
            bytes,
            ..
        } => Answer::Chart {
            rendered,
            rows,
            bytes,
            ephemeral: why_private.is_some(),
            why_private: why_private.flatten(),
        },
        text => text,
    }
}

/// Besides what the question names, every policy covering what the warehouse proves the
/// query reads (a metric on a view, a report through a table function).
async fn proven_gates(
    context: &Context<'_>,
    spec: &ReportSpec,
    params: &crate::warehouse::Params,
    gates: Vec<super::access::Gate>,
) -> Vec<super::access::Gate> {
    let options = RunOptions {
        period: Some(spec.query.period),
        params: params.clone(),
        limits: context.limits,
        ..RunOptions::new(context.now, context.timeout, context.trigger)
    };
    let proven = if context.catalog.has_policies() {
        pipeline::reads(context.warehouse, spec, &options).await
    } else {
        crate::warehouse::reads::Reads::nothing()
    };
    with_proven_reads(gates, context.catalog, &proven)
}

/// Runs `spec` through the pipeline (through the cache, billed to `payer` where answers
/// are metered) into an answer for everyone allowed to see it: the chart, headed by how
/// the question was read, or the reply saying what went wrong.
async fn run_answer(
    context: &Context<'_>,
    payer: Payer,
    spec: &ReportSpec,
    options: &RunOptions,
    (query, called): (Query, &Called),
) -> Answer {
    let metered = context
        .meter
        .map(|meter| meter.bill(context.warehouse, payer));
    let warehouse = metered
        .as_ref()
        .map_or(context.warehouse, |m| m as &dyn Warehouse);
    let result = match context.cache {
        Some(cache) => {
            let cached = Cached {
                inner: warehouse,
                cache,
                fresh: context.fresh,
            };
            pipeline::run(&cached, spec, options).await
        }
        None => pipeline::run(warehouse, spec, options).await,
    };
    let read_back = read_back_of(context, &query, called, spec);
    match result {
        Ok(mut outcome) => {
            outcome.rendered.context_under_title(&read_back);
            Answer::Chart {
                bytes: match &metered {
                    Some(metered) => metered.billed(),
                    None => outcome.table.bytes_processed,
                },
                rows: outcome.table.rows.len(),
                rendered: Box::new(outcome.rendered),
                ephemeral: false,
                why_private: None,
            }
        }
        // A window outside the limits is a mistake in the question, answered as one: the
        // pipeline refuses it before any query runs.
        Err(PipelineError::Period { source, .. }) => {
            Answer::Text(Reply::Mistake(source.mrkdwn(context.locale).into_string()))
        }
        Err(PipelineError::Warehouse {
            source: WarehouseError::OverBudget(over),
            ..
        }) => Answer::Text(Reply::OverBudget(over)),
        Err(error) => Answer::Text(Reply::Failed {
            name: query.name,
            error: error.mrkdwn(context.locale),
            owner: spec.owner.clone(),
            timed_out: matches!(
                error,
                PipelineError::Warehouse {
                    source: WarehouseError::Timeout(_),
                    ..
                }
            ),
        }),
    }
}

/// How the question was read, for the line above the chart: a misreading shows at once.
fn read_back_of(
    context: &Context<'_>,
    query: &Query,
    called: &Called,
    spec: &ReportSpec,
) -> Mrkdwn {
    let how = read_back_line(
        context.catalog,
        query,
        called,
        (
            spec.query.period,
            context.calendar().today,
            spec.query.week_start,
        ),
        context.locale,
    );
    Mrkdwn::value(&crate::tr!(context.locale, "readback-line", parts = how))
}

/// The buttons for an answer: its question as asked and, for a metric, the dimensions
/// the asker may split by (in a channel post, only those the channel may see).
pub fn actions_for(
    catalog: &Catalog,
    query: &Query,
    spec: &ReportSpec,
    asker: &Asker,
    policy: AccessPolicy,
    in_channel: bool,
) -> Actions {
    let metric = catalog.metric(&query.name);
    let dimensions: Vec<(String, String)> = metric
        .map(|m| {
            let viewer = Viewer {
                catalog,
                asker,
                policy,
            };
            viewer
                .dimensions(m)
                .into_iter()
                .filter(|d| {
                    // In a channel, only what the channel itself may see is offered.
                    let mut columns = base_columns(m);
                    columns.push(d);
                    let gates = metric_gates(catalog, m, &columns);
                    !in_channel
                        || matches!(decide(&gates, asker, policy, false, ""), Decision::Channel)
                })
                .map(|d| (d.to_string(), m.dimensions[d].clone()))
                .collect()
        })
        .unwrap_or_default();
    // A report asked again offers Why? as its scheduled post does (the metric it is on,
    // or the one its headline totals); the pipeline keeps it only where it can answer.
    let report_explains = catalog.get(&query.name).is_some_and(|r| {
        r.query.metric.as_ref().is_some_and(|m| m.explainable)
            || r.chart.metric.as_ref().is_some_and(|m| m.explainable)
    });
    let why = (metric.is_some_and(crate::spec::explain_sql::explainable) && !dimensions.is_empty()
        || report_explains)
        && spec.chart.compare != crate::spec::Compare::None;
    Actions {
        why,
        asked: Asked {
            name: spec.id.clone(),
            metric: metric.is_some(),
            period: spec.query.period.to_string(),
            grain: query.grain.map(|g| g.name().to_string()),
            by: query.by.clone(),
            filters: query
                .filters
                .iter()
                .map(|f| (f.dimension.clone(), f.values.clone()))
                .collect(),
            compare: query.compare.map(|c| c.name().to_string()),
            private: query.private,
        },
        dimensions,
    }
}

/// A question as the strict grammar writes it, if `text` reads as one (what a follow
/// keeps).
fn canonical_question(context: &Context<'_>, text: &str, asker: &Asker) -> Option<String> {
    let viewer = Viewer {
        catalog: context.catalog,
        asker,
        policy: context.policy,
    };
    match super::resolve::resolve(
        context.catalog,
        text,
        context.warehouse.dialect(),
        context.timezone,
        &context.calendar(),
        &viewer,
        context.locale,
    ) {
        Resolved::Run { mut query, .. } => {
            query.private = false;
            Some(super::phrase::command(&query))
        }
        _ => None,
    }
}

/// A question answered once for everyone it is shared with (the digests of one slot):
/// its gates with what the warehouse proves it reads, and the chart as run — its buttons
/// made for each person, billed to the digests' own budget (`report` `digests`). Each person is then
/// decided by [`Shared::answer_for`] with the same rule `/kpi` uses.
#[derive(Debug, Clone)]
pub struct Shared {
    name: String,
    owner: String,
    private: bool,
    gates: Vec<super::access::Gate>,
    locale: crate::i18n::Locale,
    answer: Answer,
    /// The question and its spec, for each person's own buttons.
    query: Query,
    spec: Box<ReportSpec>,
}

impl Shared {
    /// The answer `asker` gets: refused, or the shared chart (to them only, when the
    /// place they are in may not see it).
    /// Its buttons are theirs: the splits offered are those they may see (in a channel,
    /// those the channel may), as `/kpi` would offer them.
    pub fn answer_for(&self, catalog: &Catalog, asker: &Asker, policy: AccessPolicy) -> Answer {
        // A policy file that cannot be read: nothing is answered to anyone.
        if matches!(self.answer, Answer::Text(Reply::PoliciesUnreadable)) {
            return self.answer.clone();
        }
        match decide(&self.gates, asker, policy, self.private, &self.owner) {
            Decision::Refused { owner } => Answer::Text(Reply::Refused {
                name: self.name.clone(),
                owner,
            }),
            decision => {
                let in_channel = matches!(decision, Decision::Channel);
                let mut answer = placed(self.answer.clone(), decision, self.locale);
                if let Answer::Chart { rendered, .. } = &mut answer {
                    let mut actions =
                        actions_for(catalog, &self.query, &self.spec, asker, policy, in_channel);
                    // Why? only where the run could explain (its windows allow it).
                    actions.why &= rendered.actions().is_some_and(|block| {
                        block["elements"].as_array().is_some_and(|elements| {
                            elements
                                .iter()
                                .any(|e| e["action_id"] == crate::render::actions::ACTION_WHY)
                        })
                    });
                    rendered.set_actions(&actions);
                }
                answer
            }
        }
    }
}

/// Runs a resolved question once for sharing; `None` for what is not a plain question
/// (a why, history, a reply), which each person is answered for alone.
pub async fn answer_shared(context: &Context<'_>, resolved: Resolved) -> Option<Shared> {
    let Resolved::Run {
        query,
        spec,
        params,
        gates,
        private,
        called,
    } = resolved
    else {
        return None;
    };
    if query.why {
        return None;
    }
    let mut shared = Shared {
        name: query.name.clone(),
        owner: spec.owner.clone(),
        private,
        gates: Vec::new(),
        locale: context.locale,
        answer: Answer::Text(Reply::PoliciesUnreadable),
        query: query.clone(),
        spec: spec.clone(),
    };
    let spec = *spec;
    if context.catalog.policies_incomplete() {
        return Some(shared);
    }
    shared.gates = proven_gates(context, &spec, &params, gates).await;
    // Buttons with every split, so the run decides whether Why? can answer; each person's
    // own replace them in `answer_for`.
    let everyone = Asker {
        operator: true,
        ..Asker::default()
    };
    let actions = actions_for(
        context.catalog,
        &query,
        &spec,
        &everyone,
        context.policy,
        false,
    );
    let options = RunOptions {
        actions: Some(actions),
        period: Some(spec.query.period),
        params,
        limits: context.limits,
        locale: context.locale,
        ..RunOptions::new(context.now, context.timeout, context.trigger)
    };
    let payer = Payer::report(DIGESTS_PAYER);
    shared.answer = run_answer(context, payer, &spec, &options, (query, &called)).await;
    Some(shared)
}

/// Whom the digests' shared queries are billed to: a report budget of their own.
pub const DIGESTS_PAYER: &str = "digests";

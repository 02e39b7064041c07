//! Answering a resolved command: check access, run the report through the same pipeline
//! as scheduled posts (through the result cache when there is one), and say what happened.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::access::{AccessPolicy, Asker, allowed};
use super::reply::Reply;
use super::resolve::{Resolved, resolve};
use crate::catalog::Catalog;
use crate::deliver::error_chain;
use crate::pipeline::{self, RunOptions};
use crate::render::Rendered;
use crate::warehouse::cache::{Cached, QueryCache};
use crate::warehouse::{Trigger, Warehouse};

/// A reply to a command.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Text only: help, lists, definitions, and everything that went wrong.
    Text(Reply),
    /// A chart, to post in the channel or (when `ephemeral`) to the asker only.
    Chart {
        rendered: Box<Rendered>,
        ephemeral: bool,
        rows: usize,
    },
}

/// Everything an answer needs.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub warehouse: &'a dyn Warehouse,
    /// What asked: `/kpi` in Slack or `kpibot ask` (BigQuery cost label).
    pub trigger: Trigger,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
    pub timeout: Duration,
    pub policy: AccessPolicy,
    pub cache: Option<&'a QueryCache>,
}

/// Answers one command. Every outcome is an answer; nothing here panics or goes silent.
pub async fn answer(context: &Context<'_>, text: &str, asker: &Asker) -> Answer {
    let resolved = resolve(
        context.catalog,
        text,
        context.warehouse.dialect(),
        context.timezone,
    );
    answer_resolved(context, resolved, asker).await
}

/// Answers a command already resolved against the catalog: checks access, then runs it.
pub async fn answer_resolved(context: &Context<'_>, resolved: Resolved, asker: &Asker) -> Answer {
    let (query, spec, params, access) = match resolved {
        Resolved::Reply(text) => return Answer::Text(text),
        Resolved::Run {
            query,
            spec,
            params,
            access,
        } => (query, *spec, params, access),
    };
    if !allowed(&access, asker, context.policy) {
        return Answer::Text(Reply::Refused {
            name: query.name,
            owner: spec.owner,
        });
    }
    let options = RunOptions {
        period: Some(spec.query.period),
        channel: Some(asker.channel_id.clone()).filter(|c| !c.is_empty()),
        params,
        ..RunOptions::new(context.now, context.timeout, context.trigger)
    };
    let result = match context.cache {
        Some(cache) => {
            let cached = Cached {
                inner: context.warehouse,
                cache,
            };
            pipeline::run(&cached, &spec, &options).await
        }
        None => pipeline::run(context.warehouse, &spec, &options).await,
    };
    match result {
        Ok(outcome) => Answer::Chart {
            rows: outcome.table.rows.len(),
            rendered: Box::new(outcome.rendered),
            ephemeral: query.private || access.restricted,
        },
        Err(error) => Answer::Text(Reply::Failed {
            name: query.name,
            error: error_chain(&error),
            owner: spec.owner,
        }),
    }
}

//! A command resolved against the catalog: a text reply, or a report ready to run (a
//! catalog report, or a metric question made into one). Needs neither the warehouse nor
//! Slack, so it is answered inside Slack's three seconds.

use chrono_tz::Tz;

use super::grammar::{self, GrammarError, Query, Request};
use super::metric::metric_report;
use super::reply::{self, Reply};
use crate::catalog::Catalog;
use crate::spec::{Access, ReportSpec};
use crate::warehouse::{Dialect, Params};

/// A command resolved against the catalog: a text reply, or a query ready to run.
pub enum Resolved {
    Reply(Reply),
    Run {
        query: Query,
        spec: Box<ReportSpec>,
        params: Params,
        access: Access,
    },
}

/// Everything about a command that needs neither the warehouse nor Slack: help, lists,
/// definitions, mistakes and unknown names. Cheap enough to answer inside Slack's 3
/// seconds. Access is checked by [`answer`], which may need the asker's user groups.
pub fn resolve(catalog: &Catalog, text: &str, dialect: Dialect, timezone: Tz) -> Resolved {
    let request = match grammar::parse(text) {
        Ok(request) => request,
        Err(GrammarError(message)) => {
            return Resolved::Reply(Reply::Mistake(message));
        }
    };
    let query = match request {
        Request::Help => return Resolved::Reply(Reply::Help),
        Request::List { tag } => {
            return Resolved::Reply(Reply::Catalog(reply::list(catalog, tag.as_deref())));
        }
        Request::Describe { name } => {
            return Resolved::Reply(match reply::describe(catalog, &name) {
                Some(text) => Reply::Catalog(text),
                None => Reply::Unknown(reply::unknown_name(catalog, &name)),
            });
        }
        Request::Query(query) => query,
    };
    let (spec, params, access) = if let Some(metric) = catalog.metric(&query.name) {
        match metric_report(metric, &query, dialect, timezone) {
            Ok((spec, params)) => (spec, params, metric.access.clone()),
            Err(message) => return Resolved::Reply(Reply::Unknown(message)),
        }
    } else if let Some(report) = catalog.get(&query.name) {
        if query.grain.is_some() || query.by.is_some() || !query.filters.is_empty() {
            return Resolved::Reply(Reply::NotAMetric {
                report: report.id.clone(),
            });
        }
        (report.clone(), Params::new(), report.access.clone())
    } else {
        return Resolved::Reply(Reply::Unknown(reply::unknown_name(catalog, &query.name)));
    };
    Resolved::Run {
        query,
        spec: Box::new(spec),
        params,
        access,
    }
}

//! A command resolved against the catalog: a text reply, or a report ready to run (a
//! catalog report, or a metric question made into one). Needs neither the warehouse nor
//! Slack, so it is answered inside Slack's three seconds.

use chrono_tz::Tz;

use super::access::{Gate, Viewer, base_columns, metric_gates, report_gates};
use super::grammar::{self, GrammarError, Query, Request};
use super::metric::metric_report;
use super::reply::{self, Reply};
use crate::catalog::Catalog;
use crate::i18n::Locale;
use crate::spec::ReportSpec;
use crate::warehouse::{Dialect, Params};

/// A command resolved against the catalog: a text reply, or a query ready to run.
pub enum Resolved {
    Reply(Reply),
    /// A report's last runs: read from the run ledger, in the background.
    History {
        name: String,
    },
    /// The alerts firing now that the asker may see: read from the ledger.
    Alerts,
    Run {
        query: Query,
        spec: Box<ReportSpec>,
        params: Params,
        /// Every rule the answer must satisfy: the entry's lists and its data policies.
        gates: Vec<Gate>,
        /// Answer privately whatever the channel: asked so, or the entry is `restricted`.
        private: bool,
    },
}

impl Resolved {
    /// The data policies a run falls under, by name (for the audit log).
    pub fn policies(&self) -> Vec<String> {
        match self {
            Resolved::Run { gates, .. } => gates.iter().filter_map(|g| g.policy.clone()).collect(),
            Resolved::Reply(_) | Resolved::History { .. } | Resolved::Alerts => Vec::new(),
        }
    }

    /// Whether answering needs the asker's user groups (an allow-list names groups).
    pub fn needs_usergroups(&self) -> bool {
        match self {
            Resolved::Run { gates, .. } => gates
                .iter()
                .any(|g| !g.allowed.allowed_usergroups.is_empty()),
            // Whether the asker may see the report is decided when the history is read.
            Resolved::History { .. } | Resolved::Alerts => true,
            Resolved::Reply(_) => false,
        }
    }
}

/// Everything about a command that needs neither the warehouse nor Slack: help, lists,
/// definitions, mistakes and unknown names. Cheap enough to answer inside Slack's 3
/// seconds. Access is checked by [`answer`], which may need the asker's user groups.
pub fn resolve(
    catalog: &Catalog,
    text: &str,
    dialect: Dialect,
    timezone: Tz,
    viewer: &Viewer,
    locale: Locale,
) -> Resolved {
    let request = match grammar::parse(text) {
        Ok(request) => request,
        Err(GrammarError(message)) => {
            return Resolved::Reply(Reply::Mistake(message.mrkdwn(locale)));
        }
    };
    let query = match request {
        Request::Help => return Resolved::Reply(Reply::Help),
        Request::List { tag } => {
            return Resolved::Reply(Reply::Catalog(reply::list(viewer, tag.as_deref(), locale)));
        }
        Request::Describe { name } => {
            return Resolved::Reply(match reply::describe(viewer, &name, locale) {
                Some(text) => Reply::Catalog(text),
                None => Reply::Unknown(reply::unknown_name(viewer, &name, locale)),
            });
        }
        Request::History { name } => return Resolved::History { name },
        Request::Alerts => return Resolved::Alerts,
        Request::Query(query) => query,
    };
    resolve_query(catalog, query, dialect, timezone, viewer, locale)
}

/// A question already read (typed, or rebuilt from a button under a post) resolved
/// against the catalog as it is now.
pub fn resolve_query(
    catalog: &Catalog,
    query: Query,
    dialect: Dialect,
    timezone: Tz,
    viewer: &Viewer,
    locale: Locale,
) -> Resolved {
    let (spec, params, gates) = if let Some(metric) = catalog.metric(&query.name) {
        let visible = viewer.dimensions(metric);
        match metric_report(metric, &query, dialect, timezone, &visible, locale) {
            Ok((spec, params)) => {
                let mut columns = base_columns(metric);
                columns.extend(query.by.as_deref());
                columns.extend(query.filters.iter().map(|f| f.dimension.as_str()));
                let gates = metric_gates(catalog, metric, &columns);
                (spec, params, gates)
            }
            Err(message) => return Resolved::Reply(Reply::Unknown(message)),
        }
    } else if let Some(report) = catalog.get(&query.name) {
        if query.grain.is_some() || query.by.is_some() || !query.filters.is_empty() {
            return Resolved::Reply(Reply::NotAMetric {
                report: report.id.clone(),
            });
        }
        // The period asked for is the period answered (and stated in the message).
        let mut asked = report.clone();
        if let Some(period) = query.period {
            asked.query.period = period;
        }
        (asked, Params::new(), report_gates(catalog, report))
    } else {
        return Resolved::Reply(Reply::Unknown(reply::unknown_name(
            viewer,
            &query.name,
            locale,
        )));
    };
    let private = query.private || spec.access.restricted;
    Resolved::Run {
        query,
        spec: Box::new(spec),
        params,
        gates,
        private,
    }
}

//! A command resolved against the catalog: a text reply, or a report ready to run (a
//! catalog report, or a metric question made into one). Needs neither the warehouse nor
//! Slack, so it is answered inside Slack's three seconds.

use chrono_tz::Tz;

use super::access::{Gate, Viewer, base_columns, metric_gates, report_gates};
use super::grammar::{GrammarError, Query, Request};
use super::metric::metric_report;
use super::phrase::{self, Calendar, Called, Reading};
use super::reply::{self, Choice, Reply};
use crate::catalog::Catalog;
use crate::catalog::names::EntryKind;
use crate::i18n::Locale;
use crate::spec::ReportSpec;
use crate::tr_mrkdwn;
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
    /// Follow a question the asker may ask (checked again at every digest).
    Follow(Box<FollowAsked>),
    /// What the asker follows: read from the ledger.
    Following,
    /// Stop following (a number from `following`, or the question).
    Unfollow {
        which: String,
    },
    Run {
        query: Query,
        spec: Box<ReportSpec>,
        params: Params,
        /// Every rule the answer must satisfy: the entry's lists and its data policies.
        gates: Vec<Gate>,
        /// Answer privately whatever the channel: asked so, or the entry is `restricted`.
        private: bool,
        /// The names the question used, for the line saying how it was read.
        called: Called,
    },
}

impl Resolved {
    /// The data policies a run falls under, by name (for the audit log).
    pub fn policies(&self) -> Vec<String> {
        match self {
            Resolved::Run { gates, .. } => gates.iter().filter_map(|g| g.policy.clone()).collect(),
            Resolved::Follow(follow) => follow
                .gates
                .iter()
                .filter_map(|g| g.policy.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What the command asks about, for the audit log: the entry, the report whose
    /// history is read, or `alerts`.
    pub fn entries(&self) -> Vec<String> {
        match self {
            Resolved::Run { query, .. } => vec![query.name.clone()],
            Resolved::History { name } => vec![name.clone()],
            Resolved::Alerts => vec!["alerts".to_string()],
            Resolved::Follow(follow) => vec![follow.name.clone()],
            Resolved::Reply(_) | Resolved::Following | Resolved::Unfollow { .. } => Vec::new(),
        }
    }

    /// Whether answering needs the asker's user groups (an allow-list names groups).
    pub fn needs_usergroups(&self) -> bool {
        match self {
            Resolved::Run { gates, .. } => gates
                .iter()
                .any(|g| !g.allowed.allowed_usergroups.is_empty()),
            // Whether the asker may see the report is decided when the history is read.
            Resolved::History { .. } | Resolved::Alerts | Resolved::Follow(_) => true,
            Resolved::Reply(_) | Resolved::Following | Resolved::Unfollow { .. } => false,
        }
    }
}

/// A question to follow, resolved: what the ledger keeps and what access is decided on.
pub struct FollowAsked {
    /// The entry it is about.
    pub name: String,
    /// The question as the strict grammar writes it (what the digest asks again).
    pub question: String,
    /// Whom to ask for access.
    pub owner: String,
    pub gates: Vec<Gate>,
    /// Answered privately whatever the place (the entry is `restricted`, or `private`
    /// was asked): a channel may not follow it.
    pub private: bool,
    /// When and where, as typed.
    pub request: super::grammar::FollowRequest,
}

/// Everything about a command that needs neither the warehouse nor Slack: help, lists,
/// definitions, mistakes, unknown names and the questions to ask back. Cheap enough to
/// answer inside Slack's 3 seconds. Access is checked by [`answer`], which may need the
/// asker's user groups.
pub fn resolve(
    catalog: &Catalog,
    text: &str,
    dialect: Dialect,
    timezone: Tz,
    calendar: &Calendar,
    viewer: &Viewer,
    locale: Locale,
) -> Resolved {
    let sees = |kind: EntryKind, id: &str| match kind {
        EntryKind::Report => catalog.get(id).is_some_and(|r| viewer.sees_report(r)),
        EntryKind::Metric => catalog.metric(id).is_some_and(|m| viewer.sees_metric(m)),
    };
    let (query, called) = match phrase::read(catalog, text, calendar, &sees) {
        Reading::Question { query, called } => (query, called),
        Reading::Choose(readings) => {
            let choices = readings
                .iter()
                .map(|(query, called)| Choice {
                    label: phrase::read_back(catalog, query, called, calendar, locale),
                    command: phrase::command(query),
                })
                .collect();
            return Resolved::Reply(Reply::Choose { choices });
        }
        Reading::Mistake(GrammarError(message)) => {
            return Resolved::Reply(Reply::Mistake(message.mrkdwn(locale)));
        }
        Reading::Unknown(name) => {
            return Resolved::Reply(Reply::Unknown(reply::unknown_name(viewer, &name, locale)));
        }
        Reading::Command(request) => match request {
            Request::Help => return Resolved::Reply(Reply::Help),
            Request::List { tag } => {
                return Resolved::Reply(Reply::Catalog(reply::list(
                    viewer,
                    tag.as_deref(),
                    locale,
                )));
            }
            Request::Describe { name } => {
                return Resolved::Reply(match reply::describe(viewer, &name, dialect, locale) {
                    Some(text) => Reply::Catalog(text),
                    None => Reply::Unknown(reply::unknown_name(viewer, &name, locale)),
                });
            }
            Request::History { name } => return Resolved::History { name },
            Request::Alerts => return Resolved::Alerts,
            Request::Following => return Resolved::Following,
            Request::Unfollow { which } => return Resolved::Unfollow { which },
            Request::Follow(request) => {
                let asked = resolve(
                    catalog,
                    &request.question,
                    dialect,
                    timezone,
                    calendar,
                    viewer,
                    locale,
                );
                return follow_of(asked, request, locale);
            }
            Request::Query(query) => (query, Called::default()),
        },
    };
    resolve_query(catalog, query, called, dialect, timezone, viewer, locale)
}

/// A question resolved, made into following it: what the ledger keeps is the question
/// as the strict grammar writes it; a reply (an unknown name, a mistake) stays the reply.
pub fn follow_of(
    asked: Resolved,
    request: super::grammar::FollowRequest,
    locale: Locale,
) -> Resolved {
    match asked {
        Resolved::Run {
            mut query,
            spec,
            gates,
            private,
            ..
        } => {
            query.private = false;
            Resolved::Follow(Box::new(FollowAsked {
                name: query.name.clone(),
                question: phrase::command(&query),
                owner: spec.owner.clone(),
                gates,
                private,
                request,
            }))
        }
        Resolved::Reply(reply) => Resolved::Reply(reply),
        _ => Resolved::Reply(Reply::Mistake(tr_mrkdwn!(locale, "grammar-follow-usage"))),
    }
}

/// A question already read (typed, or rebuilt from a button under a post) resolved
/// against the catalog as it is now.
pub fn resolve_query(
    catalog: &Catalog,
    query: Query,
    called: Called,
    dialect: Dialect,
    timezone: Tz,
    viewer: &Viewer,
    locale: Locale,
) -> Resolved {
    let mut query = query;
    // Why a report changed is why its metric did, over the report's period and comparison
    // — still guarded by the report's own lists and policies, and private if it is.
    let mut report_guard = None;
    if query.why
        && catalog.metric(&query.name).is_none()
        && let Some(report) = catalog.get(&query.name)
    {
        if !viewer.sees_report(report) {
            return Resolved::Reply(Reply::Unknown(reply::unknown_name(
                viewer,
                &query.name,
                locale,
            )));
        }
        if query.grain.is_some() || !query.filters.is_empty() {
            return Resolved::Reply(Reply::NotAMetric {
                report: report.id.clone(),
            });
        }
        report_guard = Some((
            report_gates(catalog, report),
            report.access.restricted,
            (report.timezone, report.query.week_start),
        ));
        // The metric it is on, filtered as it is; or the one its headline names.
        let (name, filters) = match (&report.query.metric, &report.chart.metric) {
            (Some(metric), _) => (metric.name.clone(), metric.filters.clone()),
            (None, Some(headline)) => (headline.name.clone(), Vec::new()),
            (None, None) => {
                return Resolved::Reply(Reply::Mistake(tr_mrkdwn!(
                    locale,
                    "why-not-a-metric",
                    name = report.id.as_str()
                )));
            }
        };
        query = Query {
            name,
            period: query.period.or(Some(report.query.period)),
            compare: query.compare.or(Some(report.chart.compare)),
            by: query.by.clone(),
            filters,
            ..query
        };
    }
    let (spec, params, gates) = if let Some(metric) = catalog.metric(&query.name) {
        let visible = viewer.dimensions(metric);
        let targets = catalog.targets_for(&metric.name, &query.filters);
        match metric_report(
            metric, &query, dialect, timezone, &visible, &targets, locale,
        ) {
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
    let mut gates = gates;
    let mut private = query.private || spec.access.restricted;
    let mut spec = spec;
    if let Some((report, restricted, (timezone, week_start))) = report_guard {
        for gate in report {
            if !gates.contains(&gate) {
                gates.push(gate);
            }
        }
        private |= restricted;
        // The report's own calendar: its windows are the ones its posts compare.
        spec.timezone = timezone;
        spec.query.week_start = week_start;
    }
    if let Some(compare) = query.compare {
        spec.chart.compare = compare;
    }
    Resolved::Run {
        query,
        spec: Box::new(spec),
        params,
        gates,
        private,
        called,
    }
}

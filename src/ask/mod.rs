//! Ad-hoc questions (`/kpi …` in Slack, `kpibot ask` on the command line): one grammar,
//! one resolver against the catalog, one access check, and the same pipeline the
//! scheduled reports use, so an answer and a report never disagree.

pub mod grammar;
pub mod sql;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::deliver::Rendered;
use crate::pipeline::{self, RunOptions};
use crate::spec::diagnostic::did_you_mean;
use crate::spec::{
    Access, Catalog, ChartKind, ChartSpec, Column, Compare, Currency, Definition, Headline, Locale,
    Measure, MetricSpec, Period, QuerySpec, ReportSpec,
};
use crate::warehouse::{Params, QueryJob, Table, Warehouse};

use grammar::{Grain, GrammarError, Query, Request};
use sql::{DIMENSION_COLUMN, Dialect, PERIOD_COLUMN, VALUE_COLUMN};

/// The period of a metric question that names none.
pub const DEFAULT_METRIC_PERIOD: &str = "last 28 days";
/// How long an answered query is reused for the same question.
pub const CACHE_TTL_SECONDS: u64 = 600;

/// Who is asking, and where.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub user_id: String,
    pub channel_id: String,
    /// The user's Slack user groups (resolved by the caller, cached).
    pub usergroups: Vec<String>,
}

/// What is allowed when a report or metric sets no allow-lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    Allow,
    Deny,
}

/// A reply to a command.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Text only: help, lists, definitions, and everything that went wrong.
    Text(String),
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
    pub trigger: crate::warehouse::Trigger,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
    pub timeout: Duration,
    pub policy: DefaultPolicy,
    pub cache: Option<&'a QueryCache>,
}

/// Recently answered queries by their exact SQL and parameters.
#[derive(Default)]
pub struct QueryCache {
    entries: Mutex<HashMap<String, (Instant, Table)>>,
}

impl QueryCache {
    fn key(sql: &str, params: &Params) -> String {
        format!("{sql}\u{0}{params:?}")
    }

    fn get(&self, sql: &str, params: &Params) -> Option<Table> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, table) = entries.get(&Self::key(sql, params))?;
        (at.elapsed() < Duration::from_secs(CACHE_TTL_SECONDS)).then(|| table.clone())
    }

    fn put(&self, sql: &str, params: &Params, table: &Table) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(CACHE_TTL_SECONDS));
        entries.insert(Self::key(sql, params), (Instant::now(), table.clone()));
    }
}

/// A warehouse that answers from the cache when it can.
struct Cached<'a> {
    inner: &'a dyn Warehouse,
    cache: &'a QueryCache,
}

#[async_trait::async_trait]
impl Warehouse for Cached<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, crate::warehouse::WarehouseError> {
        if let Some(table) = self.cache.get(sql, params) {
            return Ok(table);
        }
        let table = self.inner.query(sql, params, job).await?;
        self.cache.put(sql, params, &table);
        Ok(table)
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<crate::warehouse::Estimate, crate::warehouse::WarehouseError> {
        self.inner.dry_run(sql, params, job).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}

pub const HELP: &str = "*kpibot* answers with a chart from the same definitions the scheduled reports use.
• `/kpi list [tag]`: what you can ask for
• `/kpi describe <name>`: what a number means, where it comes from, who owns it
• `/kpi <report> [period]`: a report now, e.g. `/kpi daily_active_users last 7 days`
• `/kpi <metric> [period] [daily|weekly|monthly] [by <dimension>] [where <dimension>=<value>,… [and …]] [private]`
  e.g. `/kpi active_users last 30 days weekly by role where role=student,teacher`
Periods: `yesterday`, `today`, `last 30 days`, `last month`, `this week`, `month to date`, `2026-01-01..2026-01-31`, `since 2026-04-01`, `昨日`, `今週`, `先月`, `過去7日`, `過去3ヶ月`.
Add `private` to see the answer yourself only.";

/// Whether `asker` may see something with `access`.
pub fn allowed(access: &Access, asker: &Asker, policy: DefaultPolicy) -> bool {
    if !access.has_lists() {
        return policy == DefaultPolicy::Allow;
    }
    access.allowed_channels.contains(&asker.channel_id)
        || access.allowed_users.contains(&asker.user_id)
        || asker
            .usergroups
            .iter()
            .any(|g| access.allowed_usergroups.contains(g))
}

fn list(catalog: &Catalog, tag: Option<&str>) -> String {
    let matches = |tags: &[String]| tag.is_none_or(|t| tags.iter().any(|x| x == t));
    let mut lines = Vec::new();
    let reports: Vec<String> = catalog
        .reports()
        .filter(|r| matches(&r.tags))
        .map(|r| format!("• `{}`: {}", r.id, r.title))
        .collect();
    let metrics: Vec<String> = catalog
        .metrics()
        .filter(|m| matches(&m.tags))
        .map(|m| {
            let dims: Vec<&str> = m.dimensions.keys().map(String::as_str).collect();
            if dims.is_empty() {
                format!("• `{}`: {}", m.name, m.label)
            } else {
                format!("• `{}`: {} (by {})", m.name, m.label, dims.join(", "))
            }
        })
        .collect();
    if !metrics.is_empty() {
        lines.push("*Metrics*".to_string());
        lines.extend(metrics);
    }
    if !reports.is_empty() {
        lines.push("*Reports*".to_string());
        lines.extend(reports);
    }
    if lines.is_empty() {
        return match tag {
            Some(t) => format!("Nothing is tagged `{t}`. Try `/kpi list`."),
            None => "No reports or metrics are defined yet.".into(),
        };
    }
    lines.join("\n")
}

fn measure_text(measure: &Measure) -> String {
    match measure {
        Measure::Sum(c) => format!("sum of `{c}`"),
        Measure::Count(None) => "number of rows".into(),
        Measure::Count(Some(c)) => format!("count of `{c}`"),
        Measure::CountDistinct(c) => format!("number of distinct `{c}`"),
        Measure::Avg(c) => format!("average of `{c}`"),
        Measure::Min(c) => format!("minimum of `{c}`"),
        Measure::Max(c) => format!("maximum of `{c}`"),
        Measure::Ratio(a, b) => format!("{} per {}", measure_text(a), measure_text(b)),
    }
}

fn describe(catalog: &Catalog, name: &str) -> Option<String> {
    if let Some(m) = catalog.metric(name) {
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, v)| format!("`{k}` ({v})"))
            .collect();
        return Some(format!(
            "*{}* (`{}`, metric)\n{}\n• Measure: {}\n• Source: `{}` (time column `{}`)\n• Refreshed: {}\n• Owner: {}\n• Dimensions: {}",
            m.label,
            m.name,
            m.description,
            measure_text(&m.measure),
            m.table,
            m.time_column,
            if m.refreshed.is_empty() {
                "not stated"
            } else {
                &m.refreshed
            },
            m.owner,
            if dims.is_empty() {
                "none".into()
            } else {
                dims.join(", ")
            }
        ));
    }
    let r = catalog.get(name)?;
    Some(format!(
        "*{}* (`{}`, report)\n{}\n• Purpose: {}\n• Source: `{}`\n• Refreshed: {}\n• Owner: {}\n• Default period: {}",
        r.title,
        r.id,
        r.description,
        r.definition.purpose,
        r.definition.source,
        r.definition.refreshed,
        r.owner,
        r.query.period
    ))
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn unknown_name(catalog: &Catalog, name: &str) -> String {
    let names = catalog
        .ids()
        .chain(catalog.metrics().map(|m| m.name.as_str()));
    match did_you_mean(name, names) {
        Some(hint) => format!(
            "I don't know `{name}`. {} Type `/kpi list` to see all.",
            capitalize(&hint)
        ),
        None => format!("I don't know `{name}`. Type `/kpi list` to see what you can ask for."),
    }
}

/// A day-counted period widened to whole weeks or months for a weekly or monthly chart,
/// so no bar stands for a part of a week or month (`last 30 days weekly` → the last 5
/// complete weeks). Other periods are kept as written.
fn whole_buckets(period: Period, grain: Grain) -> Period {
    use crate::spec::period::Unit;
    match (period, grain) {
        (Period::Last(days, Unit::Day), Grain::Week) => Period::Last(days.div_ceil(7), Unit::Week),
        (Period::Last(days, Unit::Day), Grain::Month) => {
            Period::Last(days.div_ceil(30), Unit::Month)
        }
        (Period::Last(weeks, Unit::Week), Grain::Month) => {
            Period::Last((weeks * 7).div_ceil(30), Unit::Month)
        }
        (period, _) => period,
    }
}

/// The report an ad-hoc metric question runs as: generated SQL, a standard chart.
fn metric_report(
    metric: &MetricSpec,
    query: &Query,
    dialect: Dialect,
    timezone: Tz,
) -> Result<(ReportSpec, Params), String> {
    let check = |dimension: &str| -> Result<(), String> {
        if metric.dimensions.contains_key(dimension) {
            return Ok(());
        }
        let names = metric.dimensions.keys().map(String::as_str);
        let valid: Vec<&str> = names.clone().collect();
        Err(match did_you_mean(dimension, names) {
            Some(hint) => format!(
                "`{}` has no dimension `{dimension}`. {}",
                metric.name,
                capitalize(&hint)
            ),
            None if valid.is_empty() => format!("`{}` cannot be split or filtered", metric.name),
            None => format!(
                "`{}` has no dimension `{dimension}`; it has {}",
                metric.name,
                valid.join(", ")
            ),
        })
    };
    if let Some(by) = &query.by {
        check(by)?;
    }
    for filter in &query.filters {
        check(&filter.dimension)?;
    }
    let grain = query.grain.unwrap_or(Grain::Day);
    let (sql, params) =
        sql::metric_sql(dialect, metric, grain, query.by.as_deref(), &query.filters);
    let column = |name: &str| Column {
        name: name.into(),
        span: 0..0,
    };
    let mut title = metric.label.clone();
    if let Some(by) = &query.by {
        title.push_str(&format!(" by {}", metric.dimensions[by]));
    }
    for f in &query.filters {
        title.push_str(&format!(
            " ({} = {})",
            metric.dimensions[&f.dimension],
            f.values.join(", ")
        ));
    }
    let additive = matches!(metric.measure, Measure::Sum(_) | Measure::Count(_));
    let spec = ReportSpec {
        id: metric.name.clone(),
        path: metric.path.clone(),
        source: String::new(),
        title,
        description: metric.description.clone(),
        owner: metric.owner.clone(),
        tags: metric.tags.clone(),
        timezone,
        definition: Definition {
            source: metric.table.clone(),
            refreshed: metric.refreshed.clone(),
            purpose: metric.description.clone(),
        },
        query: QuerySpec {
            sql,
            sql_offset: None,
            sql_span: 0..0,
            period: whole_buckets(
                query
                    .period
                    .unwrap_or_else(|| DEFAULT_METRIC_PERIOD.parse().expect("a valid period")),
                grain,
            ),
            week_start: chrono::Weekday::Mon,
            timeout_seconds: None,
            maximum_bytes_billed: None,
            params: Params::new(),
        },
        chart: ChartSpec {
            kind: if grain == Grain::Day {
                ChartKind::Line
            } else {
                ChartKind::Bar
            },
            x: column(PERIOD_COLUMN),
            y: column(VALUE_COLUMN),
            series: query.by.as_ref().map(|_| column(DIMENSION_COLUMN)),
            format: metric.format,
            headline: if additive {
                Headline::Total
            } else {
                Headline::Average
            },
            compare: Compare::PreviousPeriod,
            locale: Locale::En,
            currency: Currency::Jpy,
            goal: None,
            label_last: false,
            max_rows: 20,
            higher_is_better: true,
        },
        schedules: Vec::new(),
        freshness: None,
        access: metric.access.clone(),
    };
    Ok((spec, params))
}

/// A command resolved against the catalog: a text reply, or a query ready to run.
pub enum Resolved {
    Reply(String),
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
            return Resolved::Reply(format!("{message}\nType `/kpi help` for examples."));
        }
    };
    let query = match request {
        Request::Help => return Resolved::Reply(HELP.into()),
        Request::List { tag } => return Resolved::Reply(list(catalog, tag.as_deref())),
        Request::Describe { name } => {
            return Resolved::Reply(
                describe(catalog, &name).unwrap_or_else(|| unknown_name(catalog, &name)),
            );
        }
        Request::Query(query) => query,
    };
    let (spec, params, access) = if let Some(metric) = catalog.metric(&query.name) {
        match metric_report(metric, &query, dialect, timezone) {
            Ok((spec, params)) => (spec, params, metric.access.clone()),
            Err(message) => return Resolved::Reply(message),
        }
    } else if let Some(report) = catalog.get(&query.name) {
        if query.grain.is_some() || query.by.is_some() || !query.filters.is_empty() {
            return Resolved::Reply(format!(
                "`{}` is a report: it takes only a period (and `private`). Metrics take `by`, `where` and a grain; see `/kpi list`.",
                report.id
            ));
        }
        (report.clone(), Params::new(), report.access.clone())
    } else {
        return Resolved::Reply(unknown_name(catalog, &query.name));
    };
    Resolved::Run {
        query,
        spec: Box::new(spec),
        params,
        access,
    }
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
        return Answer::Text(format!(
            "You cannot see `{}` here. Ask its owner, {}, for access.",
            query.name, spec.owner
        ));
    }
    let options = RunOptions {
        period: Some(spec.query.period),
        now: context.now,
        channel: Some(asker.channel_id.clone()).filter(|c| !c.is_empty()),
        slot: None,
        thread: false,
        default_timeout: context.timeout,
        params,
        trigger: context.trigger,
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
        Err(error) => Answer::Text(format!(
            "Sorry, `{}` failed: {}. Its owner is {}.",
            query.name,
            crate::deliver::error_chain(&error),
            spec.owner
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_and_monthly_charts_cover_whole_weeks_and_months() {
        use crate::spec::period::Unit;
        assert_eq!(
            whole_buckets(Period::Last(30, Unit::Day), Grain::Week),
            Period::Last(5, Unit::Week)
        );
        assert_eq!(
            whole_buckets(Period::Last(90, Unit::Day), Grain::Month),
            Period::Last(3, Unit::Month)
        );
        assert_eq!(
            whole_buckets(Period::Last(30, Unit::Day), Grain::Day),
            Period::Last(30, Unit::Day)
        );
        assert_eq!(
            whole_buckets(Period::This(Unit::Month), Grain::Week),
            Period::This(Unit::Month)
        );
    }

    #[test]
    fn access_lists_and_the_default_policy() {
        let asker = Asker {
            user_id: "U1".into(),
            channel_id: "C1".into(),
            usergroups: vec!["S1".into()],
        };
        let open = Access::default();
        assert!(allowed(&open, &asker, DefaultPolicy::Allow));
        assert!(!allowed(&open, &asker, DefaultPolicy::Deny));
        let by_channel = Access {
            allowed_channels: vec!["C1".into()],
            ..Access::default()
        };
        assert!(allowed(&by_channel, &asker, DefaultPolicy::Deny));
        let by_group = Access {
            allowed_usergroups: vec!["S1".into()],
            ..Access::default()
        };
        assert!(allowed(&by_group, &asker, DefaultPolicy::Deny));
        let others = Access {
            allowed_users: vec!["U2".into()],
            allowed_channels: vec!["C9".into()],
            ..Access::default()
        };
        assert!(!allowed(&others, &asker, DefaultPolicy::Allow));
    }
}

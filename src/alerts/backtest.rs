//! `kpibot alerts backtest`: an alert replayed over history, one evaluation per cron slot,
//! against the warehouse as it is now, through the same judge and state machine `serve`
//! uses. It prints when the alert would have fired and resolved, which is how an author
//! picks a threshold before turning an alert on.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use super::engine::{AlertState, Kind, evaluate};
use super::judge::Reference;
use super::watch::{Series, Sources, WatchError, judge_all, lookback_days, watched};
use crate::scheduled::cron::{instant_of, slots_after};
use crate::spec::AlertSpec;
use crate::spec::alert::Condition;

/// One change an instance went through.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When the evaluation ran.
    pub at: DateTime<Utc>,
    /// The day it judged.
    pub day: NaiveDate,
    pub instance: String,
    /// `Fired` or `Resolved` (reminders and the rest are not transitions).
    pub kind: Kind,
    pub value: Option<f64>,
    pub reference: Option<Reference>,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub evaluations: usize,
    pub transitions: Vec<Transition>,
    /// The series the replay judged (for drawing it).
    pub series: Series,
    /// Instances still firing at the end.
    pub firing_at_end: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(
        "`{0}` reads the warehouse's current state (a `rows` or `stale` condition), so it cannot be replayed over history"
    )]
    NotReplayable(String),
    #[error("--since {since} is after --until {until}")]
    EmptyRange { since: NaiveDate, until: NaiveDate },
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// The days a backtest replays when none are given: `days` days ending on the day the
/// alert judges at `now`, or the given ends.
pub fn range_or_default(
    alert: &AlertSpec,
    (since, until): (Option<NaiveDate>, Option<NaiveDate>),
    days: u32,
    now: DateTime<Utc>,
) -> (NaiveDate, NaiveDate) {
    let until = until.unwrap_or_else(|| super::evaluated_day(alert, now));
    let since = since.unwrap_or_else(|| until - Days::new(u64::from(days)));
    (since, until)
}

/// The values of one alert tracked at most: its own limit, else the settings'.
pub fn instances_max(alert: &AlertSpec, settings_max: u32) -> usize {
    alert.max_instances.unwrap_or(settings_max) as usize
}

/// Replays `alert` over the days `since..=until` (the days judged, not the evaluation
/// times). Mute windows are ignored: they hold messages, not state changes.
pub async fn backtest(
    sources: Sources<'_>,
    alert: &AlertSpec,
    since: NaiveDate,
    until: NaiveDate,
    max_instances: usize,
) -> Result<Backtest, BacktestError> {
    if matches!(
        alert.condition,
        Condition::Rows { .. } | Condition::Stale(_)
    ) {
        return Err(BacktestError::NotReplayable(alert.name.clone()));
    }
    if since > until {
        return Err(BacktestError::EmptyRange { since, until });
    }
    let lag = Days::new(u64::from(alert.lag_days));
    let start = since - Days::new(lookback_days(&alert.condition));
    // The command line speaks English (a target problem is an error on its days).
    let locale = crate::i18n::Locale::En;
    let (values, pace) = watched(sources, alert, start, since, until, locale).await?;
    let mut replayed = alert.clone();
    replayed.mutes.clear();
    let midnight = |day: NaiveDate| {
        instant_of(alert.timezone, day.and_time(NaiveTime::MIN)).unwrap_or_default()
    };
    // The evaluations whose judged day falls in the range: from the first moment of
    // `since + lag` on the alert's clock to the last of `until + lag`.
    let first = midnight(since + lag) - chrono::Duration::seconds(1);
    let end = midnight(until + lag + Days::new(1));
    let mut state = AlertState::default();
    let mut transitions = Vec::new();
    let mut evaluations = 0;
    for at in slots_after(&alert.cron, alert.timezone, first).take_while(|at| *at < end) {
        let day = super::evaluated_day(alert, at);
        let round = evaluate(
            &replayed,
            &state,
            judge_all(alert, pace.as_ref(), &values, day),
            at,
            max_instances,
        );
        evaluations += 1;
        state = round.state;
        for notice in round.notices {
            for item in notice.items {
                if matches!(item.kind, Kind::Fired | Kind::Resolved) {
                    transitions.push(Transition {
                        at,
                        day,
                        instance: item.instance,
                        kind: item.kind,
                        value: item.value,
                        reference: item.reference,
                    });
                }
            }
        }
    }
    let firing_at_end = state
        .instances
        .iter()
        .filter(|(_, s)| s.phase == super::engine::Phase::Firing)
        .map(|(name, _)| name.clone())
        .collect();
    Ok(Backtest {
        from: since,
        to: until,
        evaluations,
        transitions,
        // The days judged and what they look back on (not last year's, read for a pace).
        series: values
            .into_iter()
            .map(|(name, days)| {
                (
                    name,
                    days.into_iter().filter(|(d, _)| *d >= start).collect(),
                )
            })
            .collect(),
        firing_at_end,
    })
}

impl Backtest {
    /// Per instance, the judged days it spent firing: from each firing's day to the day
    /// before its resolution (or the end).
    pub fn firing_days(&self) -> BTreeMap<String, Vec<(NaiveDate, Option<NaiveDate>)>> {
        let mut out: BTreeMap<String, Vec<(NaiveDate, Option<NaiveDate>)>> = BTreeMap::new();
        for t in &self.transitions {
            let spans = out.entry(t.instance.clone()).or_default();
            match t.kind {
                Kind::Fired => spans.push((t.day, None)),
                Kind::Resolved => {
                    if let Some(last) = spans.last_mut() {
                        last.1 = Some(t.day - Days::new(1));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// The backtest drawn: a panel per instance that would have fired (at most
/// `panels_max`), its series over the whole range with the firing days shaded. With
/// `quiet_too`, an alert that never fired still shows its first series (an author choosing
/// a threshold wants to see how far the values stayed from it). None when there is
/// nothing to draw.
pub fn draw(
    catalog: &crate::catalog::Catalog,
    alert: &AlertSpec,
    result: &Backtest,
    panels_max: usize,
    locale: crate::i18n::Locale,
    quiet_too: bool,
) -> Result<Option<Vec<u8>>, crate::render::RenderError> {
    use crate::render::alert_chart::{AlertChart, AlertPanel, render_alert_png};
    let title = super::run::title_of(catalog, alert);
    let mut spans = result.firing_days();
    if spans.is_empty() && quiet_too {
        spans.extend(result.series.keys().map(|name| (name.clone(), Vec::new())));
    }
    let threshold = match alert.condition {
        Condition::Above(x) | Condition::Below(x) => Some(x),
        _ => None,
    };
    let panels: Vec<AlertPanel> = spans
        .into_iter()
        .take(panels_max.max(1))
        .map(|(instance, spans)| {
            let series = result.series.get(&instance);
            AlertPanel {
                name: if instance.is_empty() {
                    title.clone()
                } else {
                    instance
                },
                days: result
                    .from
                    .iter_days()
                    .take_while(|d| *d <= result.to)
                    .map(|d| (d, series.and_then(|s| s.get(&d).copied())))
                    .collect(),
                threshold,
                band: None,
                breach: None,
                firing: spans
                    .into_iter()
                    .map(|(from, to)| (from, to.unwrap_or(result.to)))
                    .collect(),
            }
        })
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let heading = crate::tr!(locale, "backtest-title", title = title.clone());
    let subtitle = crate::tr!(
        locale,
        "backtest-subtitle",
        from = crate::i18n::date(locale, result.from),
        to = crate::i18n::date(locale, result.to),
        timezone = alert.timezone.name().to_string()
    );
    render_alert_png(&AlertChart {
        title: &heading,
        subtitle: &subtitle,
        panels: &panels,
        style: super::run::style_of(catalog, alert, locale),
    })
    .map(Some)
}

//! `[[alert]]`: what an alert watches (a catalog metric, split and filtered as `/kpi`
//! takes it, or a report's headline), the condition that fires it, how it recovers, when
//! it is evaluated and where it tells people. Any file under `reports/` may hold several.

use std::ops::Range;
use std::path::PathBuf;

use chrono::Weekday;
use chrono_tz::Tz;
use toml::Spanned;

pub use super::alert_condition::{ChangeAgainst, Condition};
use super::walk::{Reader, Tbl, is_identifier};

/// When an alert is evaluated if its spec names no `cron`: every day at 09:00.
pub const DEFAULT_ALERT_CRON: &str = "0 0 9 * * *";

/// A validated alert.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    /// Unique across the catalog; what `kpibot alerts backtest <name>` takes.
    pub name: String,
    /// What people read as the alert's name (default: the metric's label).
    pub title: Option<String>,
    pub path: PathBuf,
    /// Where the `[[alert]]` entry is written.
    pub span: Range<usize>,
    /// `None` for conditions that read their own SQL (`rows`, `stale`).
    pub watch: Option<Watch>,
    pub condition: Condition,
    /// Hysteresis: the level the value must get back past before the alert resolves
    /// (only for `above` / `below`); `None`: the firing condition no longer holding.
    pub recover: Option<f64>,
    /// `#channel`, a channel ID, or a user ID for a direct message.
    pub channel: String,
    /// Who hears about evaluation errors (a channel or a user).
    pub owner: String,
    /// User IDs (`U…`) and user-group IDs (`S…`) mentioned when it fires.
    pub mentions: Vec<String>,
    pub cron: cron::Schedule,
    pub timezone: Tz,
    /// The day evaluated is today minus this many days in `timezone` (default 1:
    /// yesterday, the last complete day of a daily mart).
    pub lag_days: u32,
    /// Evaluations the condition must hold before the alert fires (pending until then).
    pub pending_evaluations: u32,
    /// Evaluations the recovery must hold before a firing alert resolves.
    pub keep_firing_evaluations: u32,
    /// Evaluations between reminders while firing; 0 never reminds.
    pub remind_every: u32,
    /// A thread reply when the value moves this many percent further past the threshold
    /// than the last notice said.
    pub worsen_percent: Option<f64>,
    pub on_no_data: OnProblem,
    pub on_error: OnProblem,
    /// At most this many instances (dimension values); the rest are dropped and the owner
    /// told. `None`: the `alerts.max_instances` setting.
    pub max_instances: Option<u32>,
    pub mutes: Vec<Mute>,
    /// What a value needs besides the condition to fire, so tiny members stay quiet.
    pub floor: VolumeFloor,
}

/// A volume floor (`min_value`, `min_change`): an instance fires only when the larger of
/// its value and the value it is compared with reaches `min_value`, and a change condition
/// only when the value moved by at least `min_change` units — "−40 % *and* at least 200".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VolumeFloor {
    pub min_value: Option<f64>,
    pub min_change: Option<f64>,
}

/// What an alert watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    /// A catalog metric per day, optionally one instance per value of `by`.
    Metric {
        metric: String,
        by: Option<String>,
        filters: Vec<(String, Vec<String>)>,
        /// Where `metric = …` is written (cross-file problems point here).
        span: Range<usize>,
    },
    /// A report's headline.
    Report { report: String, span: Range<usize> },
}

/// An alert's `where`, as the filters of a metric question.
pub fn as_filters(filters: &[(String, Vec<String>)]) -> Vec<super::metric::Filter> {
    filters
        .iter()
        .map(|(dimension, values)| super::metric::Filter {
            dimension: dimension.clone(),
            values: values.clone(),
        })
        .collect()
}

/// The state a problem (no data, a failed query) puts an instance in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnProblem {
    /// Keep whatever state it was in.
    Keep,
    Ok,
    Firing,
    /// The "error" state: the owner is told, the channel is not.
    Error,
}

impl OnProblem {
    pub const NAMES: [&'static str; 4] = ["keep", "ok", "firing", "error"];
    fn parse(name: &str) -> Option<Self> {
        match name {
            "keep" => Some(Self::Keep),
            "ok" => Some(Self::Ok),
            "firing" => Some(Self::Firing),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// A mute window on the alert's wall clock: on these weekdays (all, if none are named),
/// between these hours (all day, if none). Notices are held and summarised after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub days: Vec<Weekday>,
    /// `[from, to)` in hours 0–24; `from > to` wraps past midnight (`22-7`).
    pub hours: Option<(u32, u32)>,
}

const ALERT_KEYS: [&str; 27] = [
    "name",
    "title",
    "metric",
    "report",
    "by",
    "where",
    "above",
    "below",
    "change",
    "band",
    "pace",
    "no_data",
    "stale",
    "rows",
    "recover",
    "channel",
    "owner",
    "mention",
    "cron",
    "timezone",
    "lag_days",
    "for",
    "keep_firing_for",
    "remind_every",
    "worsen_percent",
    "on_no_data",
    "on_error",
];
/// Keys read outside [`ALERT_KEYS`]'s first screen.
const MORE_ALERT_KEYS: [&str; 4] = ["max_instances", "mute", "min_value", "min_change"];

const MUTE_KEYS: [&str; 2] = ["days", "hours"];

fn weekday(name: &str) -> Option<Weekday> {
    match name.to_ascii_lowercase().get(..3)? {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// `22-7` → (22, 7); hours 0–24, the two ends different.
fn hour_range(text: &str) -> Option<(u32, u32)> {
    let (from, to) = text.split_once('-')?;
    let (from, to): (u32, u32) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
    (from <= 24 && to <= 24 && from != to).then_some((from, to))
}

impl Reader<'_> {
    pub(super) fn alerts(&mut self, root: &Tbl, default_tz: Tz) -> Option<Vec<AlertSpec>> {
        self.array_of_tables(
            root,
            "alert",
            "write each alert as `[[alert]]` with name, metric, a condition and channel",
            |r, t| r.alert(t, default_tz),
        )
    }

    fn alert(&mut self, t: &Tbl, default_tz: Tz) -> Option<AlertSpec> {
        let keys: Vec<&str> = ALERT_KEYS.iter().chain(&MORE_ALERT_KEYS).copied().collect();
        self.check_keys(t, &keys);
        let name = self.string(t, "name", true);
        if let Some(name) = &name
            && !is_identifier(name.get_ref())
        {
            self.error(
                name.span(),
                format!("`{}` cannot be an alert name", name.get_ref()),
            )
            .hint = Some("use letters, digits and `_`, e.g. `signups_drop`".into());
        }
        let title = self.string(t, "title", false).map(Spanned::into_inner);
        let channel = self.string(t, "channel", true);
        let owner = self.string(t, "owner", true);
        let mentions = self.string_list(t, "mention");
        let timezone = match self.string(t, "timezone", false) {
            Some(tz) => self.timezone(&tz),
            None => Some(default_tz),
        };
        let cron = match self.string(t, "cron", false) {
            Some(text) => self.cron(&text, timezone),
            None => DEFAULT_ALERT_CRON.parse().ok(),
        };
        let count = |r: &mut Self, key: &str, max: u64, default: u32| {
            r.whole_number(t, key, 0..=max, &format!("a whole number from 0 to {max}"))
                .map(|n| n.map_or(default, |n| n as u32))
        };
        let lag_days = count(self, "lag_days", 31, 1);
        let pending = count(self, "for", 100, 1).map(|n| n.max(1));
        let keep_firing = count(self, "keep_firing_for", 100, 1).map(|n| n.max(1));
        let remind_every = count(self, "remind_every", 1000, 0);
        let max_instances = self
            .whole_number(
                t,
                "max_instances",
                1..=100_000,
                "a whole number from 1 to 100000",
            )
            .map(|n| n.map(|n| n as u32));
        let worsen_percent = self.number(t, "worsen_percent");
        let recover = self.number(t, "recover");
        let on_no_data = self.choice(
            t,
            "on_no_data",
            &OnProblem::NAMES,
            OnProblem::parse,
            Some(OnProblem::Error),
        );
        let on_error = self.choice(
            t,
            "on_error",
            &OnProblem::NAMES,
            OnProblem::parse,
            Some(OnProblem::Error),
        );
        let mutes = self.mutes(t);
        let condition = self.condition(t);
        let watch = self.watch(t);
        if let (Some(None), Some(c)) = (&watch, &condition)
            && !matches!(c, Condition::Rows { .. } | Condition::Stale(_))
        {
            self.missing(
                t,
                "metric",
                "the catalog metric the alert watches, or `report = …`",
            );
            return None;
        }
        // `rows` and `stale` run their own SQL: a metric or report beside it would be
        // what the access rule and `check` look at while the SQL went unchecked.
        if let (Some(Some(_)), Some(c)) = (&watch, &condition)
            && matches!(c, Condition::Rows { .. } | Condition::Stale(_))
        {
            let key = if Self::lookup(t, "metric").is_some() {
                "metric"
            } else {
                "report"
            };
            let span = Self::lookup(t, key).map_or(t.anchor.clone(), |v| v.span());
            self.error(
                span,
                format!("`{key}` cannot go with `rows` or `stale`: those run their own SQL"),
            )
            .hint = Some(format!(
                "remove `{key}`: the alert reads what its `rows` or `stale` SQL reads"
            ));
            return None;
        }
        // A pace alert watches one total against one target: a metric's, unsplit.
        if let (Some(Some(watch)), Some(Condition::Pace { .. })) = (&watch, &condition) {
            let problem = match watch {
                Watch::Report { span, .. } => Some((
                    span.clone(),
                    "`pace` needs `metric`: targets are set on catalog metrics",
                    "watch the report's metric with `metric = …`",
                )),
                Watch::Metric { by: Some(_), .. } => Some((
                    Self::lookup(t, "by").map_or(t.anchor.clone(), |v| v.span()),
                    "a pace alert watches one total against its target, not a split",
                    "remove `by`; for one dimension value's own target, write `where` as the target does",
                )),
                Watch::Metric { .. } => Self::lookup(t, "worsen_percent").map(|v| {
                    (
                        v.span(),
                        "`worsen_percent` cannot go with `pace`: each period's projection starts again, so it would compare different periods",
                        "remove it; `remind_every` repeats a notice while the period stays behind",
                    )
                }),
            };
            if let Some((span, message, hint)) = problem {
                self.error(span, message).hint = Some(hint.into());
                return None;
            }
        }
        if let (Some(Some(_)), Some(recover)) = (&recover, &condition)
            && !matches!(recover, Condition::Above(_) | Condition::Below(_))
        {
            let span = Self::lookup(t, "recover").map_or(t.anchor.clone(), |v| v.span());
            self.error(span, "`recover` only goes with `above` or `below`")
                .hint =
                Some("other conditions resolve when they stop holding; remove `recover`".into());
            return None;
        }
        // Hysteresis must sit on the safe side of the threshold, or it would never hold.
        if let (Some(Some(level)), Some(c)) = (&recover, &condition) {
            let wrong = match c {
                Condition::Above(x) => level > x,
                Condition::Below(x) => level < x,
                _ => false,
            };
            if wrong {
                let span = Self::lookup(t, "recover").map_or(t.anchor.clone(), |v| v.span());
                self.error(
                    span,
                    format!("`recover = {level}` is past the firing threshold"),
                )
                .hint = Some(
                    "recovery is the level the value must get back to: below an `above` threshold, above a `below` one".into(),
                );
                return None;
            }
        }
        let floor = self.floor(t, condition.as_ref());
        Some(AlertSpec {
            floor: floor?,
            name: name?.into_inner(),
            title,
            path: self.path.to_path_buf(),
            span: t.anchor.clone(),
            watch: watch?,
            condition: condition?,
            recover: recover?,
            channel: channel?.into_inner(),
            owner: owner?.into_inner(),
            mentions: mentions?,
            cron: cron?,
            timezone: timezone?,
            lag_days: lag_days?,
            pending_evaluations: pending?,
            keep_firing_evaluations: keep_firing?,
            remind_every: remind_every?,
            worsen_percent: worsen_percent?,
            on_no_data: on_no_data?,
            on_error: on_error?,
            max_instances: max_instances?,
            mutes: mutes?,
        })
    }

    /// `min_value` and `min_change`: numbers of at least 0; `min_change` only beside a
    /// `change` condition (the others have no change to measure).
    fn floor(&mut self, t: &Tbl, condition: Option<&Condition>) -> Option<VolumeFloor> {
        let bounded = |r: &mut Self, key: &str| {
            let value = r.number(t, key)?;
            if let Some(x) = value.filter(|x| *x < 0.0) {
                let span = Self::lookup(t, key).map_or(t.anchor.clone(), |v| v.span());
                r.error(span, format!("`{key} = {x}` is below 0")).hint =
                    Some("a floor is a size: 0 or more, in the metric's units".into());
                return None;
            }
            Some(value)
        };
        let min_value = bounded(self, "min_value");
        let min_change = bounded(self, "min_change");
        // A floor on a value falling under a threshold (or a projection, or rows) would
        // silence the worst cases: a value that falls furthest is the smallest.
        if let (Some(Some(_)), Some(c)) = (&min_value, condition)
            && !matches!(
                c,
                Condition::Above(_) | Condition::Change { .. } | Condition::Band { .. }
            )
        {
            let span = Self::lookup(t, "min_value").map_or(t.anchor.clone(), |v| v.span());
            self.error(span, "`min_value` only goes with `above`, `change` or `band`")
                .hint = Some("a value falling under a threshold is smallest when it matters most; remove `min_value`".into());
            return None;
        }
        if let (Some(Some(_)), Some(c)) = (&min_change, condition)
            && !matches!(c, Condition::Change { .. })
        {
            let span = Self::lookup(t, "min_change").map_or(t.anchor.clone(), |v| v.span());
            self.error(span, "`min_change` only goes with `change`")
                .hint =
                Some("for other conditions, `min_value` sets the smallest value that fires".into());
            return None;
        }
        Some(VolumeFloor {
            min_value: min_value?,
            min_change: min_change?,
        })
    }

    /// An optional number (integer or float); `Some(None)` when absent.
    pub(super) fn number(&mut self, t: &Tbl, key: &str) -> Option<Option<f64>> {
        use toml::de::DeValue;
        let Some(v) = Self::lookup(t, key) else {
            return Some(None);
        };
        match v.get_ref() {
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        }
        .filter(|x| x.is_finite())
        .map(Some)
        .or_else(|| {
            self.wrong_type(t, key, v, "a number");
            None
        })
    }

    fn watch(&mut self, t: &Tbl) -> Option<Option<Watch>> {
        let metric = self.string(t, "metric", false);
        let report = self.string(t, "report", false);
        let by = self.string(t, "by", false);
        let filters = self.filters(t);
        match (metric, report) {
            (Some(m), Some(r)) => {
                self.error(
                    r.span(),
                    "an alert watches a `metric` or a `report`, not both",
                );
                let _ = m;
                None
            }
            (Some(metric), None) => Some(Some(Watch::Metric {
                span: metric.span(),
                metric: metric.into_inner(),
                by: by.map(Spanned::into_inner),
                filters: filters?,
            })),
            (None, Some(report)) => {
                for key in ["by", "where"] {
                    if let Some(v) = Self::lookup(t, key) {
                        self.error(v.span(), format!("`{key}` needs `metric`"))
                            .hint = Some("a report's headline is one number; split or filter a catalog metric instead".into());
                    }
                }
                Some(Some(Watch::Report {
                    span: report.span(),
                    report: report.into_inner(),
                }))
            }
            (None, None) => Some(None),
        }
    }

    /// `where = { role = "student", prefecture = ["東京都", "大阪府"] }`.
    fn filters(&mut self, t: &Tbl) -> Option<Vec<(String, Vec<String>)>> {
        let Some(table) = self.table(t, "where", false) else {
            return if Self::lookup(t, "where").is_some() {
                None
            } else {
                Some(Vec::new())
            };
        };
        let mut filters = Vec::new();
        for (key, value) in table.table.iter() {
            let values = match value.get_ref() {
                toml::de::DeValue::String(s) => Some(vec![s.to_string()]),
                _ => value.get_ref().as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|i| i.get_ref().as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                }),
            };
            match values {
                Some(values) if !values.is_empty() => {
                    filters.push((key.get_ref().to_string(), values))
                }
                _ => {
                    self.wrong_type(
                        &table,
                        key.get_ref(),
                        value,
                        "a string or a list of strings",
                    );
                    return None;
                }
            }
        }
        Some(filters)
    }

    fn mutes(&mut self, t: &Tbl) -> Option<Vec<Mute>> {
        self.array_of_tables(
            t,
            "mute",
            "write each mute window as `[[alert.mute]]` with `days` and/or `hours`",
            |r, m| {
                r.check_keys(m, &MUTE_KEYS);
                let days = r.string_list(m, "days")?;
                let mut weekdays = Vec::new();
                for day in &days {
                    match weekday(day) {
                        Some(d) => weekdays.push(d),
                        None => {
                            let span =
                                Self::lookup(m, "days").map_or(m.anchor.clone(), |v| v.span());
                            r.error(span, format!("`{day}` is not a weekday"))
                                .hint = Some("write days as `mon`, `tue`, … `sun`".into());
                            return None;
                        }
                    }
                }
                let hours = match r.string(m, "hours", false) {
                    None => None,
                    Some(text) => match hour_range(text.get_ref()) {
                        Some(range) => Some(range),
                        None => {
                            r.error(
                                text.span(),
                                format!("`{}` is not an hour range", text.get_ref()),
                            )
                            .hint = Some(
                                "write `from-to` in hours 0–24 on the alert's clock, e.g. `22-7` (wraps past midnight)".into(),
                            );
                            return None;
                        }
                    },
                };
                if weekdays.is_empty() && hours.is_none() {
                    r.error(m.anchor.clone(), "a mute window needs `days` or `hours`");
                    return None;
                }
                Some(Mute {
                    days: weekdays,
                    hours,
                })
            },
        )
    }
}

impl Mute {
    /// Whether `local` (the alert's wall clock) falls in this window.
    pub fn covers(&self, local: chrono::NaiveDateTime) -> bool {
        use chrono::{Datelike, Timelike};
        let hour = local.hour();
        let (day, in_hours) = match self.hours {
            None => (local.weekday(), true),
            Some((from, to)) if from < to => (local.weekday(), hour >= from && hour < to),
            // Wrapping past midnight: the early hours belong to the day the window began.
            Some((from, to)) => {
                if hour >= from {
                    (local.weekday(), true)
                } else if hour < to {
                    (local.weekday().pred(), true)
                } else {
                    (local.weekday(), false)
                }
            }
        };
        in_hours && (self.days.is_empty() || self.days.contains(&day))
    }
}

/// Whether a Slack target is a person (a user ID: `U…` or `W…`), for a direct message.
pub fn is_user_target(target: &str) -> bool {
    let t = target.trim_start_matches('@');
    (t.starts_with('U') || t.starts_with('W'))
        && t.len() >= 9
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

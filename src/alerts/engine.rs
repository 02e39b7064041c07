//! The alert state machine, a pure function of the previous state, what one evaluation
//! saw and its time: ok → pending → firing → resolved (and ok again, re-armed), per
//! instance, with hysteresis, keep-firing-for, reminders, worsening, no-data and error
//! mapping, and mute windows; and the round's notices, grouped as Slack will show them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::judge::{Direction, Judged, Reference, Seen};
use crate::spec::alert::{AlertSpec, Condition, OnProblem};

/// The problem an instance records when its day has no value (worded for the owner in
/// their language when told).
pub const NO_DATA: &str = "no-data";

/// Where an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Ok,
    /// The condition holds but not yet for `for` evaluations.
    Pending,
    Firing,
    /// The query failed or no data came, and the alert maps that to "error": the owner
    /// was told.
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Error => "error",
        }
    }
}

/// A notice of an earlier round: the round's evaluation time and the notice's place in
/// it. The ledger knows where it was posted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NoticeRef {
    pub evaluated_at: DateTime<Utc>,
    pub index: u32,
}

/// One instance (one dimension value, or the alert itself when nothing splits it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub phase: Phase,
    /// When it entered this phase.
    pub since: DateTime<Utc>,
    /// Consecutive evaluations the condition held (pending) or recovery held (firing).
    pub streak: u32,
    /// While firing: the message its thread replies go under (`None` while a mute holds
    /// the firing notice).
    pub root: Option<NoticeRef>,
    /// The value the last channel notice showed, for "significant worsening".
    pub notified_value: Option<f64>,
    /// Evaluations since the last channel notice, for reminders.
    pub since_notice: u32,
    /// The last value seen.
    pub value: Option<f64>,
    /// The last error or no-data text the owner was told.
    pub problem: Option<String>,
}

impl InstanceState {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            phase: Phase::Ok,
            since: at,
            streak: 0,
            root: None,
            notified_value: None,
            since_notice: 0,
            value: None,
            problem: None,
        }
    }

    fn enter(&mut self, phase: Phase, at: DateTime<Utc>) {
        if self.phase != phase {
            self.phase = phase;
            self.since = at;
        }
    }
}

/// Everything an alert remembers between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub instances: BTreeMap<String, InstanceState>,
    /// Notices a mute window held back, summarised when it ends.
    pub held: Vec<Item>,
    /// Values left out by the instance cap at the last round; the owner is told when the
    /// number changes, not every round.
    #[serde(default)]
    pub dropped: usize,
}

/// What a notice says about one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub instance: String,
    pub kind: Kind,
    pub value: Option<f64>,
    pub reference: Option<Reference>,
    pub at: DateTime<Utc>,
    /// For `Problem`: what went wrong, for the owner.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Fired,
    Reminder,
    Worsened,
    Resolved,
    /// To the owner: the query failed or no data came (mapped to "error").
    Problem,
    /// A mute window ended; what it held.
    MuteSummary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fired => "fired",
            Kind::Reminder => "reminder",
            Kind::Worsened => "worsened",
            Kind::Resolved => "resolved",
            Kind::Problem => "problem",
            Kind::MuteSummary => "mute_summary",
        }
    }
}

/// One message to send: a root message in the alert's channel (`root: None`), a reply in
/// the thread of an earlier one, or a note to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// This notice's place in its round.
    pub index: u32,
    pub kind: Kind,
    /// The message this one replies under; for `Resolved`, the one to edit too.
    pub root: Option<NoticeRef>,
    pub items: Vec<Item>,
    /// For `Resolved`: the instances under the same root that still fire, so the edited
    /// root says what is left.
    pub still_firing: Vec<String>,
    /// Instances beyond the cap, dropped this round (told to the owner with `Problem`).
    pub dropped: usize,
}

/// One evaluation round's result: the new state and what to send, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub evaluated_at: DateTime<Utc>,
    pub state: AlertState,
    pub notices: Vec<Notice>,
}

/// Whether the alert's mute windows cover `at` on its wall clock.
pub fn muted(alert: &AlertSpec, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&alert.timezone).naive_local();
    alert.mutes.iter().any(|m| m.covers(local))
}

/// What one instance does this round.
enum Step {
    Nothing,
    Fired(Option<f64>, Option<Reference>),
    Reminder(Option<f64>, Option<Reference>),
    Worsened(Option<f64>, Option<Reference>),
    Resolved(Option<f64>),
    Problem(String),
}

/// Whether `now` is `percent` % further the wrong way than `notified`. From 0 there is no
/// percentage to move by: never "worse", or a value stuck at 0 would say so every time.
fn worse_by(worse: Direction, notified: f64, now: f64, percent: f64) -> bool {
    let step = notified.abs() * percent / 100.0;
    step > 0.0
        && match worse {
            Direction::Down => now <= notified - step,
            Direction::Up => now >= notified + step,
        }
}

/// One instance's transition. `rows` alerts resolve silently: a row that is gone needs no
/// message.
fn step(alert: &AlertSpec, state: &mut InstanceState, seen: &Seen, at: DateTime<Utc>) -> Step {
    // No data and errors become what the alert maps them to.
    let mapped = match seen {
        Seen::Judged(judged) => judged.clone(),
        Seen::NoData | Seen::Error(_) => {
            let (map, text) = match seen {
                Seen::Error(text) => (alert.on_error, text.clone()),
                _ => (alert.on_no_data, NO_DATA.to_string()),
            };
            match map {
                OnProblem::Keep => return Step::Nothing,
                OnProblem::Error => {
                    let told = state.phase == Phase::Error && state.problem.as_ref() == Some(&text);
                    // A firing instance keeps its thread (`root`): when the data is back,
                    // it goes on firing there, or resolves there, instead of starting anew.
                    state.enter(Phase::Error, at);
                    state.streak = 0;
                    state.problem = Some(text.clone());
                    return if told {
                        Step::Nothing
                    } else {
                        Step::Problem(text)
                    };
                }
                OnProblem::Ok => Judged {
                    value: None,
                    holds: false,
                    recovered: true,
                    worse: Direction::Down,
                    reference: Reference::Nothing,
                },
                OnProblem::Firing => Judged {
                    value: None,
                    holds: true,
                    recovered: false,
                    worse: Direction::Down,
                    reference: Reference::Nothing,
                },
            }
        }
    };
    state.problem = None;
    if mapped.value.is_some() {
        state.value = mapped.value;
    }
    let reference = Some(mapped.reference.clone());
    if state.phase == Phase::Error && state.root.is_some() {
        // Back from an error in the middle of a firing: its thread is still open.
        if mapped.holds {
            state.enter(Phase::Firing, at);
            state.streak = 0;
            return Step::Nothing;
        }
        state.enter(Phase::Ok, at);
        state.streak = 0;
        state.notified_value = None;
        return Step::Resolved(mapped.value);
    }
    match state.phase {
        Phase::Ok | Phase::Pending | Phase::Error => {
            if !mapped.holds {
                state.enter(Phase::Ok, at);
                state.streak = 0;
                return Step::Nothing;
            }
            state.streak = if state.phase == Phase::Pending {
                state.streak + 1
            } else {
                1
            };
            if state.streak >= alert.pending_evaluations {
                state.enter(Phase::Firing, at);
                state.streak = 0;
                state.notified_value = mapped.value;
                state.since_notice = 0;
                Step::Fired(mapped.value, reference)
            } else {
                state.enter(Phase::Pending, at);
                Step::Nothing
            }
        }
        Phase::Firing => {
            if mapped.recovered {
                state.streak += 1;
                if state.streak >= alert.keep_firing_evaluations {
                    state.enter(Phase::Ok, at);
                    state.streak = 0;
                    state.notified_value = None;
                    return Step::Resolved(mapped.value);
                }
                return Step::Nothing;
            }
            state.streak = 0;
            state.since_notice += 1;
            let worsened = match (alert.worsen_percent, state.notified_value, mapped.value) {
                (Some(percent), Some(notified), Some(now)) => {
                    worse_by(mapped.worse, notified, now, percent)
                }
                _ => false,
            };
            if worsened {
                state.notified_value = mapped.value;
                state.since_notice = 0;
                Step::Worsened(mapped.value, reference)
            } else if alert.remind_every > 0 && state.since_notice >= alert.remind_every {
                state.since_notice = 0;
                Step::Reminder(mapped.value, reference)
            } else {
                Step::Nothing
            }
        }
    }
}

/// One evaluation round of `alert`: every instance seen (and every one known but not seen
/// this time, as no data) steps once; notices are grouped — all new firings in one root
/// message, the rest one thread reply per root and kind — or held while a mute window
/// covers `at`, and summarised by the first round after it.
pub fn evaluate(
    alert: &AlertSpec,
    previous: &AlertState,
    mut seen: BTreeMap<String, Seen>,
    at: DateTime<Utc>,
    max_instances: usize,
) -> Round {
    let mut state = previous.clone();
    let rows = matches!(alert.condition, Condition::Rows { .. });
    // The cap keeps instances already known first, then new ones in name order.
    let mut dropped = 0;
    let known = state.instances.len();
    if seen.len() > max_instances {
        let mut keep: Vec<String> = seen
            .keys()
            .filter(|k| state.instances.contains_key(*k))
            .cloned()
            .collect();
        keep.extend(
            seen.keys()
                .filter(|k| !state.instances.contains_key(*k))
                .take(max_instances.saturating_sub(known))
                .cloned(),
        );
        keep.truncate(max_instances);
        dropped = seen.len() - keep.len();
        seen.retain(|k, _| keep.contains(k));
    }
    for name in state.instances.keys() {
        if !seen.contains_key(name) {
            // A row that is gone has recovered; a dimension value that vanished has no data.
            let gone = if rows {
                Seen::Judged(Judged {
                    value: None,
                    holds: false,
                    recovered: true,
                    worse: Direction::Up,
                    reference: Reference::Nothing,
                })
            } else {
                Seen::NoData
            };
            seen.insert(name.clone(), gone);
        }
    }
    let mut fired = Vec::new();
    let mut threaded: BTreeMap<(Option<NoticeRef>, u8), Vec<Item>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, seen) in &seen {
        let instance = state
            .instances
            .entry(name.clone())
            .or_insert_with(|| InstanceState::new(at));
        let root = instance.root.clone();
        let item = |kind, value, reference| Item {
            instance: name.clone(),
            kind,
            value,
            reference,
            at,
            detail: None,
        };
        match step(alert, instance, seen, at) {
            Step::Nothing => {}
            Step::Fired(v, r) => fired.push(item(Kind::Fired, v, r)),
            Step::Reminder(v, r) => {
                threaded
                    .entry((root, 0))
                    .or_default()
                    .push(item(Kind::Reminder, v, r))
            }
            Step::Worsened(v, r) => {
                threaded
                    .entry((root, 1))
                    .or_default()
                    .push(item(Kind::Worsened, v, r))
            }
            Step::Resolved(v) => {
                instance.root = None;
                if !rows {
                    threaded
                        .entry((root, 2))
                        .or_default()
                        .push(item(Kind::Resolved, v, None));
                }
            }
            Step::Problem(text) => problems.push(Item {
                detail: Some(text),
                ..item(Kind::Problem, None, None)
            }),
        }
    }
    // Rows that are gone leave the state; so do ok instances of a split nobody sees.
    state
        .instances
        .retain(|name, s| s.phase != Phase::Ok || (!rows && seen.contains_key(name)));

    let mut notices = Vec::new();
    let push = |notices: &mut Vec<Notice>, kind, root, items, still_firing| {
        notices.push(Notice {
            index: notices.len() as u32,
            kind,
            root,
            items,
            still_firing,
            dropped: 0,
        });
    };
    let newly_dropped = dropped > 0 && dropped != previous.dropped;
    state.dropped = dropped;
    if !problems.is_empty() || newly_dropped {
        push(&mut notices, Kind::Problem, None, problems, Vec::new());
        if newly_dropped {
            notices.last_mut().expect("just pushed").dropped = dropped;
        }
    }
    let channel_items: Vec<Item> = fired
        .iter()
        .cloned()
        .chain(threaded.values().flatten().cloned())
        .collect();
    if muted(alert, at) {
        state.held.extend(channel_items);
        return Round {
            evaluated_at: at,
            state,
            notices,
        };
    }
    if !state.held.is_empty() {
        // The window ended: one root message says what it held, and instances that fired
        // under it thread their later notices there.
        let held = std::mem::take(&mut state.held);
        let summary = NoticeRef {
            evaluated_at: at,
            index: notices.len() as u32,
        };
        push(&mut notices, Kind::MuteSummary, None, held, Vec::new());
        for s in state.instances.values_mut() {
            if s.phase == Phase::Firing && s.root.is_none() {
                s.root = Some(summary.clone());
            }
        }
        // Replies judged this round for instances that fired under the mute go in the
        // summary's thread too.
        threaded = threaded
            .into_iter()
            .map(|((root, kind), items)| ((root.or_else(|| Some(summary.clone())), kind), items))
            .collect();
    }
    if !fired.is_empty() {
        let root = NoticeRef {
            evaluated_at: at,
            index: notices.len() as u32,
        };
        for item in &fired {
            if let Some(s) = state.instances.get_mut(&item.instance) {
                s.root = Some(root.clone());
            }
        }
        push(&mut notices, Kind::Fired, None, fired, Vec::new());
    }
    for ((root, _), items) in threaded {
        let kind = items[0].kind;
        let still_firing = match (&root, kind) {
            (Some(r), Kind::Resolved) => state
                .instances
                .iter()
                .filter(|(_, s)| s.phase == Phase::Firing && s.root.as_ref() == Some(r))
                .map(|(name, _)| name.clone())
                .collect(),
            _ => Vec::new(),
        };
        push(&mut notices, kind, root, items, still_firing);
    }
    Round {
        evaluated_at: at,
        state,
        notices,
    }
}

//! The state machine over scripted series on a scripted clock: one evaluation a day at
//! 09:00 in the alert's timezone, judging the day before.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use super::engine::{AlertState, Kind, Notice, Phase, Round, evaluate};
use super::judge::{Seen, judge};
use crate::spec::{AlertSpec, SpecDefaults, load_source};

fn alert(body: &str) -> AlertSpec {
    let source = format!(
        "[[alert]]\nname = \"test\"\nmetric = \"signups\"\nchannel = \"#growth\"\nowner = \"#data\"\ntimezone = \"Asia/Tokyo\"\n{body}"
    );
    let file = load_source(
        Path::new("alerts.toml"),
        source,
        &SpecDefaults::duckdb(chrono_tz::Asia::Tokyo),
    );
    assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    file.alerts.into_iter().next().expect("one alert")
}

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + Duration::days(n)
}

/// 09:00 in the alert's timezone on the day after `day(n)`.
fn evaluation_time(spec: &AlertSpec, n: i64) -> DateTime<Utc> {
    let local = (day(n) + Duration::days(1)).and_hms_opt(9, 0, 0).unwrap();
    crate::scheduled::cron::instant_of(spec.timezone, local).unwrap()
}

/// Drives `spec` over per-instance values, day by day; returns each day's round.
struct Script {
    spec: AlertSpec,
    state: AlertState,
    series: BTreeMap<String, BTreeMap<NaiveDate, f64>>,
    max_instances: usize,
}

impl Script {
    fn new(spec: AlertSpec) -> Self {
        Self {
            spec,
            state: AlertState::default(),
            series: BTreeMap::new(),
            max_instances: 50,
        }
    }

    fn values(&mut self, instance: &str, values: &[Option<f64>]) {
        let series = self.series.entry(instance.to_string()).or_default();
        for (n, v) in values.iter().enumerate() {
            if let Some(v) = v {
                series.insert(day(n as i64), *v);
            }
        }
    }

    fn seen(&self, n: i64) -> BTreeMap<String, Seen> {
        self.series
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    judge(&self.spec.condition, self.spec.recover, s, day(n)),
                )
            })
            .collect()
    }

    fn run_with(&mut self, n: i64, seen: BTreeMap<String, Seen>) -> Round {
        let at = evaluation_time(&self.spec, n);
        let round = evaluate(&self.spec, &self.state, seen, at, self.max_instances);
        self.state = round.state.clone();
        round
    }

    fn run(&mut self, n: i64) -> Round {
        let seen = self.seen(n);
        self.run_with(n, seen)
    }

    fn phase(&self, instance: &str) -> Phase {
        self.state.instances[instance].phase
    }
}

fn kinds(notices: &[Notice]) -> Vec<Kind> {
    notices.iter().map(|n| n.kind).collect()
}

fn v(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().map(|x| Some(*x)).collect()
}

#[test]
fn pending_firing_reminder_worsening_resolved_rearmed_and_firing_again() {
    let spec = alert("below = 100\nfor = 2\nremind_every = 2\nworsen_percent = 20\n");
    let mut s = Script::new(spec);
    //           0      1     2     3     4     5     6     7      8     9     10
    s.values(
        "",
        &v(&[
            120.0, 90.0, 95.0, 94.0, 93.0, 70.0, 71.0, 130.0, 90.0, 80.0, 85.0,
        ]),
    );
    let mut log = Vec::new();
    for n in 0..=10 {
        let round = s.run(n);
        log.push((n, s.phase(""), kinds(&round.notices)));
    }
    use Kind::*;
    use Phase::{Firing, Ok, Pending};
    assert_eq!(
        log,
        vec![
            (0, Ok, vec![]),
            (1, Pending, vec![]),
            (2, Firing, vec![Fired]),
            (3, Firing, vec![]),
            // Two evaluations after the last notice: a reminder.
            (4, Firing, vec![Reminder]),
            // 70 is 20 % or more below the 95 last shown: worsening, not a reminder.
            (5, Firing, vec![Worsened]),
            (6, Firing, vec![]),
            (7, Ok, vec![Resolved]),
            // Re-armed: pending again, then firing again with a new root message.
            (8, Pending, vec![]),
            (9, Firing, vec![Fired]),
            (10, Firing, vec![]),
        ]
    );
}

#[test]
fn thread_replies_go_under_the_root_of_their_own_firing() {
    let spec = alert("below = 100\nremind_every = 1\n");
    let mut s = Script::new(spec);
    s.values("", &v(&[90.0, 90.0, 120.0, 90.0, 90.0]));
    let first = s.run(0);
    let root = s.state.instances[""]
        .root
        .clone()
        .expect("a root while firing");
    assert_eq!(root.evaluated_at, first.evaluated_at);
    assert_eq!(root.index, first.notices[0].index);
    let reminder = s.run(1);
    assert_eq!(reminder.notices[0].root.as_ref(), Some(&root));
    let resolved = s.run(2);
    assert_eq!(kinds(&resolved.notices), vec![Kind::Resolved]);
    assert_eq!(resolved.notices[0].root.as_ref(), Some(&root));
    assert!(resolved.notices[0].still_firing.is_empty());
    let again = s.run(3);
    let new_root = s.state.instances[""].root.clone().unwrap();
    assert_ne!(new_root, root, "a new firing starts a new thread");
    assert_eq!(again.notices[0].root, None);
    assert_eq!(s.run(4).notices[0].root.as_ref(), Some(&new_root));
}

#[test]
fn hysteresis_holds_between_the_threshold_and_the_recovery_level() {
    let spec = alert("below = 100\nrecover = 120\n");
    let mut s = Script::new(spec);
    s.values("", &v(&[90.0, 105.0, 115.0, 99.0, 125.0]));
    let fired: Vec<Vec<Kind>> = (0..=4).map(|n| kinds(&s.run(n).notices)).collect();
    assert_eq!(
        fired,
        vec![
            vec![Kind::Fired],
            // Back above 100 but not yet 120: still firing, and no second firing at 99.
            vec![],
            vec![],
            vec![],
            vec![Kind::Resolved],
        ]
    );
}

#[test]
fn keep_firing_for_needs_that_many_recovered_evaluations_in_a_row() {
    let spec = alert("above = 100\nkeep_firing_for = 3\n");
    let mut s = Script::new(spec);
    s.values("", &v(&[150.0, 90.0, 90.0, 150.0, 90.0, 90.0, 90.0]));
    let phases: Vec<(Phase, Vec<Kind>)> = (0..=6)
        .map(|n| {
            let round = s.run(n);
            (s.phase(""), kinds(&round.notices))
        })
        .collect();
    use Phase::*;
    assert_eq!(
        phases,
        vec![
            (Firing, vec![Kind::Fired]),
            (Firing, vec![]),
            (Firing, vec![]),
            // Breaching again resets the count, without a second firing message.
            (Firing, vec![]),
            (Firing, vec![]),
            (Firing, vec![]),
            (Ok, vec![Kind::Resolved]),
        ]
    );
}

#[test]
fn instances_fire_and_resolve_independently_and_firings_share_one_digest() {
    let spec = alert("by = \"channel\"\nbelow = 100\n");
    let mut s = Script::new(spec);
    s.values("ads", &v(&[120.0, 90.0, 90.0, 120.0]));
    s.values("organic", &v(&[120.0, 80.0, 120.0, 120.0]));
    s.values("referral", &v(&[120.0, 120.0, 120.0, 120.0]));
    assert!(s.run(0).notices.is_empty());
    let both = s.run(1);
    assert_eq!(
        kinds(&both.notices),
        vec![Kind::Fired],
        "one digest, not one per value"
    );
    let named: Vec<&str> = both.notices[0]
        .items
        .iter()
        .map(|i| i.instance.as_str())
        .collect();
    assert_eq!(named, vec!["ads", "organic"]);
    let root = s.state.instances["ads"].root.clone();
    assert_eq!(root, s.state.instances["organic"].root);
    // organic recovers alone; the edit of the shared root says ads still fires.
    let one = s.run(2);
    assert_eq!(kinds(&one.notices), vec![Kind::Resolved]);
    assert_eq!(one.notices[0].items[0].instance, "organic");
    assert_eq!(one.notices[0].still_firing, vec!["ads".to_string()]);
    assert_eq!(s.phase("ads"), Phase::Firing);
    assert_eq!(s.phase("organic"), Phase::Ok);
    let last = s.run(3);
    assert_eq!(last.notices[0].items[0].instance, "ads");
    assert!(last.notices[0].still_firing.is_empty());
    assert_eq!(s.phase("referral"), Phase::Ok);
}

#[test]
fn instances_beyond_the_cap_are_dropped_and_the_owner_told() {
    let spec = alert("by = \"channel\"\nbelow = 100\n");
    let mut s = Script::new(spec);
    s.max_instances = 2;
    for name in ["a", "b", "c", "d"] {
        s.values(name, &v(&[50.0]));
    }
    let round = s.run(0);
    assert_eq!(s.state.instances.len(), 2);
    assert_eq!(kinds(&round.notices), vec![Kind::Problem, Kind::Fired]);
    assert_eq!(round.notices[0].dropped, 2);
    // Told once, not every round the same values are left out.
    assert!(!kinds(&s.run(0).notices).contains(&Kind::Problem));
}

#[test]
fn a_firing_instance_keeps_its_thread_through_missing_data() {
    let spec = alert("below = 100\nremind_every = 1\n");
    let mut s = Script::new(spec);
    s.values("", &[Some(50.0), None, Some(60.0), None, Some(150.0)]);
    let fired = s.run(0);
    let root = s.state.instances[""].root.clone().unwrap();
    assert_eq!(kinds(&fired.notices), vec![Kind::Fired]);
    // A missing day: the owner hears of it, the thread stays open.
    assert_eq!(kinds(&s.run(1).notices), vec![Kind::Problem]);
    assert_eq!(s.state.instances[""].root.as_ref(), Some(&root));
    // The data is back and still breaching: firing again, silently, in the same thread.
    assert!(s.run(2).notices.is_empty());
    assert_eq!(s.phase(""), Phase::Firing);
    s.run(3);
    // Back from another gap recovered: resolved in the first firing's thread.
    let resolved = s.run(4);
    assert_eq!(kinds(&resolved.notices), vec![Kind::Resolved]);
    assert_eq!(resolved.notices[0].root.as_ref(), Some(&root));
}

#[test]
fn a_value_stuck_at_zero_is_not_worse_every_time() {
    let spec = alert("below = 10\nworsen_percent = 20\n");
    let mut s = Script::new(spec);
    s.values("", &v(&[0.0, 0.0, 0.0]));
    assert_eq!(kinds(&s.run(0).notices), vec![Kind::Fired]);
    assert!(s.run(1).notices.is_empty());
    assert!(s.run(2).notices.is_empty());
}

#[test]
fn a_mute_window_holds_notices_and_the_first_round_after_it_summarises() {
    // Evaluations run at 09:00; the window mutes Saturdays and Sundays.
    let spec = alert("below = 100\nremind_every = 1\n[[alert.mute]]\ndays = [\"sat\", \"sun\"]\n");
    let mut s = Script::new(spec);
    // day(2) is 2026-10-03; its evaluation runs on Sunday the 4th at 09:00, muted.
    s.values("", &v(&[120.0, 120.0, 90.0, 80.0, 70.0]));
    assert!(s.run(1).notices.is_empty(), "Saturday: nothing to say");
    let sunday = s.run(2);
    assert!(sunday.notices.is_empty(), "the firing is held, not posted");
    assert_eq!(s.phase(""), Phase::Firing);
    assert_eq!(s.state.held.len(), 1);
    let monday = s.run(3);
    assert_eq!(
        kinds(&monday.notices),
        vec![Kind::MuteSummary, Kind::Reminder]
    );
    assert_eq!(monday.notices[0].items[0].kind, Kind::Fired);
    // The summary is the root of the firing that happened under the mute.
    let summary = s.state.instances[""].root.clone().unwrap();
    assert_eq!(summary.index, monday.notices[0].index);
    assert_eq!(
        monday.notices[1].root.as_ref(),
        Some(&summary),
        "the reminder of the same round goes in the summary's thread too"
    );
    assert_eq!(s.run(4).notices[0].root.as_ref(), Some(&summary));
    assert!(s.state.held.is_empty());
}

#[test]
fn no_data_and_errors_go_to_the_state_the_alert_chose() {
    let error = || BTreeMap::from([(String::new(), Seen::Error("timeout".into()))]);
    let no_data = || BTreeMap::from([(String::new(), Seen::NoData)]);

    // Default: "error" tells the owner once, not the channel, and not again for the same problem.
    let mut s = Script::new(alert("below = 100\n"));
    let first = s.run_with(0, error());
    assert_eq!(kinds(&first.notices), vec![Kind::Problem]);
    assert_eq!(first.notices[0].items[0].detail.as_deref(), Some("timeout"));
    assert_eq!(s.phase(""), Phase::Error);
    assert!(s.run_with(1, error()).notices.is_empty());
    assert_eq!(
        kinds(&s.run_with(2, no_data()).notices),
        vec![Kind::Problem]
    );

    // "keep": a firing alert stays firing through a failed query, silently.
    let mut s = Script::new(alert("below = 100\non_error = \"keep\"\n"));
    s.values("", &v(&[50.0]));
    s.run(0);
    assert!(s.run_with(1, error()).notices.is_empty());
    assert_eq!(s.phase(""), Phase::Firing);

    // "ok": no data resolves a firing alert.
    let mut s = Script::new(alert("below = 100\non_no_data = \"ok\"\n"));
    s.values("", &v(&[50.0]));
    s.run(0);
    assert_eq!(
        kinds(&s.run_with(1, no_data()).notices),
        vec![Kind::Resolved]
    );

    // "firing": no data fires.
    let mut s = Script::new(alert("below = 100\non_no_data = \"firing\"\n"));
    assert_eq!(kinds(&s.run_with(0, no_data()).notices), vec![Kind::Fired]);
}

#[test]
fn evaluations_follow_the_wall_clock_across_a_dst_change() {
    // New York leaves daylight saving on 2026-11-01: 09:00 is 13:00 UTC before, 14:00 after.
    let mut spec = alert("below = 100\nfor = 2\n");
    spec.timezone = chrono_tz::America::New_York;
    let cron_slots: Vec<DateTime<Utc>> = crate::scheduled::cron::slots_after(
        &spec.cron,
        spec.timezone,
        Utc.with_ymd_and_hms(2026, 10, 30, 0, 0, 0).unwrap(),
    )
    .take(4)
    .collect();
    let hours: Vec<u32> = cron_slots.iter().map(chrono::Timelike::hour).collect();
    assert_eq!(hours, vec![13, 13, 14, 14], "09:00 local every day, once");
    // The day judged at each slot is the day before on the local calendar.
    let judged: Vec<NaiveDate> = cron_slots
        .iter()
        .map(|t| super::evaluated_day(&spec, *t))
        .collect();
    assert_eq!(
        judged,
        vec![
            NaiveDate::from_ymd_opt(2026, 10, 29).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 30).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        ]
    );
    // Pending across the change counts evaluations, not hours: fires on the second.
    let mut state = AlertState::default();
    let mut fired_at = None;
    for at in &cron_slots[1..3] {
        let seen = BTreeMap::from([(
            String::new(),
            judge(
                &spec.condition,
                None,
                &BTreeMap::from([(super::evaluated_day(&spec, *at), 50.0)]),
                super::evaluated_day(&spec, *at),
            ),
        )]);
        let round = evaluate(&spec, &state, seen, *at, 50);
        state = round.state;
        if !round.notices.is_empty() {
            fired_at = Some(*at);
        }
    }
    assert_eq!(fired_at, Some(cron_slots[2]));
}

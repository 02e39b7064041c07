//! One suite for both ledgers: every test runs against a SQLite file and against a real
//! PostgreSQL database (when `KPIBOT_TEST_POSTGRES_URL` names a server; `.ci/run` starts
//! one). Claims, races, leases, takeovers, fencing, catch-up history, thread steps,
//! migrations, copying a SQLite history into PostgreSQL (runs, alert rounds and notices,
//! follows and digests).

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kpibot::ledger::{Claim, Fence, Lease, Ledger, LedgerError, Outcome, RunState, SlotKey};
use kpibot::settings::LedgerSettings;

use common::postgres::{fresh_database, server_url};

fn key(report: &str, hour: u32) -> SlotKey {
    SlotKey {
        report: report.into(),
        schedule: 0,
        slot: Utc.with_ymd_and_hms(2026, 11, 26, hour, 0, 0).unwrap(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 5).unwrap()
}

fn lease(owner: &str, seconds_after_now: i64) -> Lease {
    Lease {
        owner: owner.into(),
        until: now() + chrono::Duration::seconds(seconds_after_now),
    }
}

fn delivered(ts: &str) -> Outcome {
    Outcome::Delivered {
        channel: "C1".into(),
        ts: ts.into(),
        rows: 84,
        bytes: Some(3 << 30),
    }
}

/// Where a test's ledger lives; `open` gives a new connection (a new "process") to it.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    /// The settings naming this place's ledger.
    fn settings(&self) -> LedgerSettings {
        let mut settings = LedgerSettings::default();
        match self {
            Place::Sqlite(dir) => settings.path = dir.path().join("ledger.sqlite"),
            Place::Postgres(url) => settings.url = Some(kpibot::settings::Secret::new(url.clone())),
        }
        settings
    }

    async fn open(&self) -> Ledger {
        match self {
            Place::Sqlite(dir) => Ledger::open(&dir.path().join("ledger.sqlite")).unwrap(),
            Place::Postgres(url) => Ledger::postgres(url, &LedgerSettings::default())
                .await
                .unwrap(),
        }
    }
}

/// The places to run a test in: SQLite always, PostgreSQL when a server is there.
async fn places() -> Vec<(&'static str, Place)> {
    let mut places = vec![("sqlite", Place::Sqlite(tempfile::tempdir().unwrap()))];
    if let Some(server) = server_url() {
        places.push(("postgres", Place::Postgres(fresh_database(&server).await)));
    }
    places
}

#[tokio::test]
async fn a_slot_is_claimed_once_and_finished_once() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let k = key("dau", 0);
        assert_eq!(
            ledger.claim(&k, &lease("a", 30), now()).await.unwrap(),
            Claim::Won,
            "{backend}"
        );
        assert!(
            matches!(ledger.claim(&k, &lease("b", 30), now()).await.unwrap(), Claim::Taken(r) if r.state == RunState::Claimed),
            "{backend}: a second claim loses"
        );
        assert_eq!(
            ledger.claim(&k, &lease("a", 30), now()).await.unwrap(),
            Claim::Won,
            "{backend}: the same claim retried (its answer lost) still wins"
        );
        assert!(
            matches!(
                ledger
                    .claim(&k, &lease("a", 30), now() + chrono::Duration::seconds(1))
                    .await
                    .unwrap(),
                Claim::Taken(_)
            ),
            "{backend}: a different claim by the same process does not"
        );
        ledger.mark_running(&k, now()).await.unwrap();
        ledger
            .finish(&k, &delivered("1764115200.000100"), now())
            .await
            .unwrap();
        let record = ledger.get(&k).await.unwrap().unwrap();
        assert_eq!(
            (
                record.state,
                record.ts.as_deref(),
                record.rows,
                record.bytes
            ),
            (
                RunState::Delivered,
                Some("1764115200.000100"),
                Some(84),
                Some(3 << 30)
            ),
            "{backend}: the run's rows and the bytes its queries scanned are kept"
        );
        assert!(
            matches!(
                ledger
                    .finish(
                        &k,
                        &Outcome::Failed {
                            error: "late".into()
                        },
                        now()
                    )
                    .await,
                Err(LedgerError::AlreadyFinished {
                    state: RunState::Delivered,
                    ..
                })
            ),
            "{backend}: a finished row never changes"
        );
        assert!(
            matches!(
                ledger
                    .finish(&key("dau", 5), &delivered("1.0"), now())
                    .await,
                Err(LedgerError::NotClaimed { .. })
            ),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_ledger_survives_a_restart_and_a_dead_process_slot_is_taken_over_once() {
    for (backend, place) in places().await {
        {
            let ledger = place.open().await;
            ledger
                .claim(&key("dau", 1), &lease("a", 30), now())
                .await
                .unwrap();
            ledger.mark_running(&key("dau", 1), now()).await.unwrap();
            ledger
                .claim(&key("dau", 2), &lease("a", 30), now())
                .await
                .unwrap();
            let no_data = Outcome::NoData {
                channel: "C1".into(),
                ts: "1.2".into(),
                bytes: None,
            };
            ledger
                .finish(&key("dau", 2), &no_data, now())
                .await
                .unwrap();
            assert!(
                ledger
                    .skip(&key("dau", 3), "older than the catch-up window", now())
                    .await
                    .unwrap()
            );
        } // "crash"
        let ledger = place.open().await;
        let open: Vec<SlotKey> = ledger
            .open_runs()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(open, vec![key("dau", 1)], "{backend}");
        assert!(
            ledger.abandoned_runs(now()).await.unwrap().is_empty(),
            "{backend}: its lease still runs"
        );
        assert_eq!(
            ledger
                .reclaim(&key("dau", 1), &lease("b", 60), now(), 1)
                .await
                .unwrap(),
            None
        );
        let later = now() + chrono::Duration::seconds(31);
        assert_eq!(
            ledger.abandoned_runs(later).await.unwrap().len(),
            1,
            "{backend}"
        );
        let b = Lease {
            owner: "b".into(),
            until: later + chrono::Duration::seconds(30),
        };
        let b_fence = ledger.reclaim(&key("dau", 1), &b, later, 1).await.unwrap();
        assert_eq!(
            b_fence,
            Some(Fence {
                owner: "b".into(),
                generation: 2
            }),
            "{backend}: a takeover is the next generation"
        );
        let c = Lease {
            owner: "c".into(),
            until: later + chrono::Duration::seconds(30),
        };
        assert_eq!(
            ledger.reclaim(&key("dau", 1), &c, later, 1).await.unwrap(),
            None,
            "{backend}: a reclaimed row holds a fresh lease: no other process takes it"
        );
        assert_eq!(
            ledger.reclaim(&key("dau", 1), &b, later, 1).await.unwrap(),
            b_fence,
            "{backend}: the same takeover retried (its answer lost) still wins"
        );
        let b_fence = b_fence.unwrap();
        assert_eq!(
            ledger.get(&key("dau", 1)).await.unwrap().unwrap().attempts,
            2
        );
        assert_eq!(
            ledger.reclaim(&key("dau", 2), &b, later, 1).await.unwrap(),
            None,
            "{backend}: a finished run is not reclaimed"
        );
        let known = ledger
            .slot_history("dau", 0, key("dau", 2).slot)
            .await
            .unwrap();
        assert_eq!(
            (known.first, known.last),
            (Some(key("dau", 1).slot), Some(key("dau", 3).slot)),
            "{backend}"
        );
        assert_eq!(
            known.recorded.into_iter().collect::<Vec<_>>(),
            vec![key("dau", 2).slot, key("dau", 3).slot],
            "{backend}: only slots since the time asked for"
        );
        let history = ledger.history(Some("dau"), 2).await.unwrap();
        assert_eq!(
            history.iter().map(|r| r.state).collect::<Vec<_>>(),
            [RunState::Skipped, RunState::NoData],
            "{backend}"
        );
        assert_eq!(
            ledger.history(None, 10).await.unwrap().len(),
            3,
            "{backend}"
        );
        assert!(
            !ledger.skip(&key("dau", 2), "x", now()).await.unwrap(),
            "{backend}: skip never overwrites a run"
        );
        // Renewal extends a held row's lease while it runs; release hands a row back.
        let until = later + chrono::Duration::seconds(90);
        assert!(
            ledger
                .renew(&key("dau", 1), &b_fence, until, later)
                .await
                .unwrap(),
            "{backend}"
        );
        let stale = Fence::first("b");
        assert!(
            !ledger
                .renew(&key("dau", 1), &stale, until, later)
                .await
                .unwrap(),
            "{backend}: an old generation renews nothing"
        );
        assert!(
            !ledger
                .renew(
                    &key("dau", 1),
                    &b_fence,
                    until,
                    until + chrono::Duration::seconds(1)
                )
                .await
                .unwrap(),
            "{backend}: a lapsed lease is not revived"
        );
        ledger
            .release(&key("dau", 1), &b_fence, later)
            .await
            .unwrap();
        assert_eq!(
            ledger
                .abandoned_runs(later + chrono::Duration::seconds(1))
                .await
                .unwrap()
                .len(),
            1,
            "{backend}: a released row may be taken over at once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_racing_for_200_slots_win_each_exactly_once() {
    for (backend, place) in places().await {
        let place = Arc::new(place);
        let mut ledgers = Vec::new();
        for _ in 0..4 {
            ledgers.push(Arc::new(place.open().await));
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(ledgers.len()));
        let mut handles = Vec::new();
        for (index, ledger) in ledgers.iter().enumerate() {
            let (ledger, barrier) = (Arc::clone(ledger), Arc::clone(&barrier));
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut won = 0;
                for i in 0..200i64 {
                    let k = SlotKey {
                        report: format!("r{}", i % 20),
                        schedule: 0,
                        slot: Utc.timestamp_opt(1_764_115_200 + i * 60, 0).unwrap(),
                    };
                    if ledger
                        .claim(&k, &lease(&format!("p{index}"), 30), now())
                        .await
                        .unwrap()
                        == Claim::Won
                    {
                        won += 1;
                    }
                }
                won
            }));
        }
        let mut wins = Vec::new();
        for handle in handles {
            wins.push(handle.await.unwrap());
        }
        assert_eq!(
            wins.iter().sum::<usize>(),
            200,
            "{backend}: every slot won exactly once: {wins:?}"
        );
    }
}

/// Recovery after a crash must know whether any post of a slot was ever attempted
/// without asking Slack (whose history is rate-limited hard): the guard's first "yes" is
/// recorded, a "no" records nothing, and a takeover keeps the first time.
#[tokio::test]
async fn the_first_post_attempt_is_recorded_and_kept_across_takeovers() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let k = key("dau", 0);
        ledger.claim(&k, &lease("a", 1), now()).await.unwrap();
        let a = Fence::first("a");
        let later = now() + chrono::Duration::seconds(5);
        let started = || {
            let (ledger, k) = (&ledger, k.clone());
            async move { ledger.get(&k).await.unwrap().unwrap().post_started_at }
        };
        assert!(!ledger.begin_post(&k, &a, later, now()).await.unwrap());
        assert_eq!(
            started().await,
            None,
            "{backend}: a post refused (the lease ends too soon) is not a post begun"
        );
        assert!(ledger.begin_post(&k, &a, now(), now()).await.unwrap());
        assert_eq!(started().await, Some(now()), "{backend}");
        let abandoned = ledger.abandoned_runs(later).await.unwrap();
        assert_eq!(abandoned[0].post_started_at, Some(now()), "{backend}");
        let b = ledger
            .reclaim(&k, &lease("b", 60), later, 1)
            .await
            .unwrap()
            .unwrap();
        assert!(ledger.begin_post(&k, &b, later, later).await.unwrap());
        assert_eq!(
            started().await,
            Some(now()),
            "{backend}: the first attempt's time survives a takeover"
        );
        let untouched = key("dau", 1);
        ledger
            .claim(&untouched, &lease("a", 1), now())
            .await
            .unwrap();
        assert_eq!(
            ledger
                .get(&untouched)
                .await
                .unwrap()
                .unwrap()
                .post_started_at,
            None,
            "{backend}"
        );
    }
}

/// During a rolling upgrade an older replica claims and takes over slots without
/// recording its post attempts: such a slot counts as maybe posted for good, so its
/// recovery always looks in Slack first. Emulated with the older version's own statements.
#[tokio::test]
async fn a_slot_an_older_version_held_may_have_been_posted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let ledger = Ledger::open(&path).unwrap();
    let (fresh, inherited) = (key("dau", 0), key("dau", 1));
    ledger.claim(&fresh, &lease("a", 1), now()).await.unwrap();
    ledger
        .claim(&inherited, &lease("a", 1), now())
        .await
        .unwrap();
    let older = rusqlite::Connection::open(&path).unwrap();
    // The older version's claim, and its takeover of a row this version claimed.
    older
        .execute(
            "INSERT INTO runs (report, schedule, slot, state, claimed_at, owner, lease_until)
             VALUES ('sales', 0, '2026-11-26T00:00:00Z', 'claimed', '2026-11-26T00:00:05.000Z', 'old', '2026-11-26T00:00:06.000Z')",
            [],
        )
        .unwrap();
    older
        .execute(
            "UPDATE runs SET state = 'claimed', attempts = attempts + 1, owner = 'old'
             WHERE report = 'dau' AND slot = '2026-11-26T01:00:00Z'",
            [],
        )
        .unwrap();
    let later = now() + chrono::Duration::seconds(5);
    let record = |k: SlotKey| {
        let ledger = &ledger;
        async move { ledger.get(&k).await.unwrap().unwrap() }
    };
    assert!(!record(fresh.clone()).await.may_have_posted());
    assert!(record(key("sales", 0)).await.may_have_posted());
    assert!(record(inherited.clone()).await.may_have_posted());
    // This version takes the inherited row over, and later another takeover: the gap in
    // the record stays.
    for (owner, attempts) in [("b", 2), ("c", 3)] {
        let b = ledger
            .reclaim(&inherited, &lease(owner, 60), later, attempts)
            .await
            .unwrap();
        assert!(b.is_some());
        ledger
            .release(&inherited, &b.unwrap(), now())
            .await
            .unwrap();
        assert!(record(inherited.clone()).await.may_have_posted());
    }
}

/// A SQLite statement waiting on the disk or on another process's lock must not stall the
/// runtime's workers, which acknowledge Slack within its 3 s: here on a one-thread runtime,
/// a timer fires and releases the lock while a claim waits for it. Run on the runtime's
/// own thread, the claim would block it until SQLite's busy timeout and fail.
#[test]
fn a_waiting_sqlite_statement_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ledger = Arc::new(runtime.block_on(async { Ledger::open(&path).unwrap() }));
    let other_process = rusqlite::Connection::open(&path).unwrap();
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();
    let claimed = runtime.block_on(async {
        let claim = tokio::spawn({
            let ledger = ledger.clone();
            async move { ledger.claim(&key("dau", 0), &lease("a", 30), now()).await }
        });
        // Fires only if the runtime's one thread is free while the claim waits.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        other_process.execute_batch("COMMIT").unwrap();
        claim.await.unwrap()
    });
    assert_eq!(claimed.unwrap(), Claim::Won);
}

/// An alert round is claimed before its query: one process at a time evaluates it, its
/// own claim asked again still holds, and a lapsed claim is taken over.
#[tokio::test]
async fn an_alert_round_is_claimed_by_one_process_until_its_lease_lapses() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let slot = key("x", 9).slot;
        let later = now() + chrono::Duration::seconds(5);
        assert!(
            ledger
                .claim_alert_round("dau_drop", slot, &lease("a", 2), now())
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !ledger
                .claim_alert_round("dau_drop", slot, &lease("b", 30), now())
                .await
                .unwrap(),
            "{backend}: a second process waits"
        );
        assert!(
            ledger
                .claim_alert_round("dau_drop", slot, &lease("a", 2), now())
                .await
                .unwrap(),
            "{backend}: its own claim again"
        );
        assert!(
            ledger
                .claim_alert_round("other", slot, &lease("b", 30), now())
                .await
                .unwrap(),
            "{backend}: another alert is another claim"
        );
        let b_later = Lease {
            owner: "b".into(),
            until: later + chrono::Duration::seconds(30),
        };
        assert!(
            ledger
                .claim_alert_round("dau_drop", slot, &b_later, later)
                .await
                .unwrap(),
            "{backend}: a lapsed claim is taken over"
        );
        assert!(
            !ledger
                .claim_alert_round("dau_drop", slot, &lease("a", 60), later)
                .await
                .unwrap(),
            "{backend}: and is the taker's now"
        );
    }
}

/// Turns to post in one channel, taken by any number of processes at once, are an
/// interval apart and never overlap; an idle channel's next turn is now.
#[tokio::test]
async fn channel_turns_are_spaced_across_processes() {
    for (backend, place) in places().await {
        let processes = [place.open().await, place.open().await];
        let interval = std::time::Duration::from_millis(1000);
        let mut turns = Vec::new();
        for i in 0..10 {
            let ledger = &processes[i % 2];
            turns.push(
                ledger
                    .take_channel_turn("#kpi", now(), interval)
                    .await
                    .unwrap(),
            );
        }
        let expected: Vec<_> = (0..10)
            .map(|i| now() + chrono::Duration::seconds(i))
            .collect();
        assert_eq!(turns, expected, "{backend}");
        let other = processes[1]
            .take_channel_turn("#other", now(), interval)
            .await
            .unwrap();
        assert_eq!(other, now(), "{backend}: another channel does not wait");
        let much_later = now() + chrono::Duration::minutes(5);
        let idle = processes[0]
            .take_channel_turn("#kpi", much_later, interval)
            .await
            .unwrap();
        assert_eq!(idle, much_later, "{backend}: an idle channel's turn is now");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_adds_up_per_payer_and_day_across_processes() {
    for (backend, place) in places().await {
        let processes = [Arc::new(place.open().await), Arc::new(place.open().await)];
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let tomorrow = today.succ_opt().unwrap();
        // 40 queries of one person from two processes at once: none is lost.
        let mut adds = tokio::task::JoinSet::new();
        for i in 0..40u64 {
            let ledger = Arc::clone(&processes[(i % 2) as usize]);
            adds.spawn(async move { ledger.add_spend("answer:U1", today, 1 << 30).await });
        }
        while let Some(added) = adds.join_next().await {
            added.unwrap().unwrap();
        }
        processes[0]
            .add_spend("run:dau", today, 5 << 40)
            .await
            .unwrap();
        processes[1]
            .add_spend("answer:U1", tomorrow, 7)
            .await
            .unwrap();
        assert_eq!(
            processes[1].spent("answer:U1", today).await.unwrap(),
            40 << 30,
            "{backend}"
        );
        assert_eq!(
            processes[0].spent("answer:U1", tomorrow).await.unwrap(),
            7,
            "{backend}: a new day starts from nothing"
        );
        assert_eq!(processes[0].spent("alert:x", today).await.unwrap(), 0);
        assert_eq!(
            processes[0].spend_on(today).await.unwrap(),
            vec![
                ("run:dau".to_string(), 5 << 40, 1),
                ("answer:U1".to_string(), 40 << 30, 40)
            ],
            "{backend}: largest first, with the queries behind it"
        );
        // Reservations racing for the last of a budget, from two processes: only those
        // that fit get through, and the total never passes the limit.
        let limit: u64 = 100 << 30;
        let mut reserving = tokio::task::JoinSet::new();
        for i in 0..40u64 {
            let ledger = Arc::clone(&processes[(i % 2) as usize]);
            reserving.spawn(async move {
                ledger
                    .reserve_spend("alert:drop", today, 3 << 30, limit)
                    .await
            });
        }
        let mut reserved = 0;
        while let Some(done) = reserving.join_next().await {
            reserved += u64::from(done.unwrap().unwrap());
        }
        assert_eq!(reserved, 33, "{backend}: 33 × 3 GiB fit in 100 GiB");
        let spent = processes[0].spent("alert:drop", today).await.unwrap();
        assert_eq!(spent, 99 << 30, "{backend}");
        // A reservation is corrected by what the query scanned.
        processes[1]
            .adjust_spend("alert:drop", today, -(2i64 << 30))
            .await
            .unwrap();
        assert_eq!(
            processes[0].spent("alert:drop", today).await.unwrap(),
            97 << 30,
            "{backend}"
        );
        assert!(
            !processes[0]
                .reserve_spend("alert:new", today, limit + 1, limit)
                .await
                .unwrap(),
            "{backend}: one query larger than the budget never fits"
        );
        assert_eq!(processes[0].spent("alert:new", today).await.unwrap(), 0);
        // An evaluation's bytes are kept with its round.
        processes[0]
            .insert_alert_round("drop", now(), None, "{}", 0, 0, Some(7 << 30), "a", now())
            .await
            .unwrap();
        let rounds = processes[1].alert_history(Some("drop"), 1).await.unwrap();
        assert_eq!(rounds[0].bytes, Some(7 << 30), "{backend}");
    }
}

#[tokio::test]
async fn a_process_that_lost_its_slot_can_neither_record_nor_post_it() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let k = key("dau", 0);
        assert_eq!(
            ledger.claim(&k, &lease("a", 1), now()).await.unwrap(),
            Claim::Won
        );
        let a = Fence::first("a");
        ledger.mark_running_fenced(&k, &a, now()).await.unwrap();
        assert!(
            ledger.begin_post(&k, &a, now(), now()).await.unwrap(),
            "{backend}"
        );
        let later = now() + chrono::Duration::seconds(5);
        assert!(
            !ledger.begin_post(&k, &a, later, later).await.unwrap(),
            "{backend}: a lapsed lease holds nothing"
        );
        let b_lease = Lease {
            owner: "b".into(),
            until: later + chrono::Duration::seconds(30),
        };
        let b = ledger
            .reclaim(&k, &b_lease, later, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            b.generation,
            a.generation + 1,
            "{backend}: a takeover is a new generation"
        );
        assert!(!ledger.begin_post(&k, &a, later, later).await.unwrap());
        assert!(
            ledger
                .finish_fenced(&k, &a, &delivered("1.0"), later)
                .await
                .is_err(),
            "{backend}"
        );
        assert!(
            ledger.mark_running_fenced(&k, &a, later).await.is_err(),
            "{backend}"
        );
        assert!(
            ledger.record_summary(&k, &a, "1.0").await.is_err(),
            "{backend}"
        );
        assert!(ledger.begin_post(&k, &b, later, later).await.unwrap());
        ledger
            .finish_fenced(&k, &b, &delivered("2.0"), later)
            .await
            .unwrap();
        ledger
            .finish_fenced(&k, &b, &delivered("2.0"), later)
            .await
            .expect("the same finish retried (its answer lost) is recorded, not an error");
        let record = ledger.get(&k).await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.ts.as_deref()),
            (RunState::Delivered, Some("2.0")),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn thread_mode_records_the_summary_as_its_own_step() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let k = key("dau", 0);
        ledger.claim(&k, &lease("a", 30), now()).await.unwrap();
        let a = Fence::first("a");
        ledger.mark_running_fenced(&k, &a, now()).await.unwrap();
        ledger
            .record_summary(&k, &a, "1764115200.000100")
            .await
            .unwrap();
        // The process stops here; whoever takes the row over sees step one done.
        let open = ledger.open_runs().await.unwrap();
        assert_eq!(
            open[0].summary_ts.as_deref(),
            Some("1764115200.000100"),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_are_idempotent_and_replicas_starting_together_do_not_race() {
    for (backend, place) in places().await {
        let place = Arc::new(place);
        let mut starts = Vec::new();
        for _ in 0..3 {
            let place = Arc::clone(&place);
            starts.push(tokio::spawn(async move { place.open().await }));
        }
        for start in starts {
            let ledger = start.await.unwrap();
            ledger.check_writable().await.unwrap();
        }
        // And once more, on a ledger already up to date.
        let ledger = place.open().await;
        ledger
            .claim(&key("dau", 0), &lease("a", 30), now())
            .await
            .unwrap();
        assert_eq!(ledger.history(None, 5).await.unwrap().len(), 1, "{backend}");
    }
}

/// The CI failure of 2026-11-30: processes opening one new SQLite file at once each read
/// "V2 not applied" and then each tried to add V2's column. Migrating is one writer's job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_processes_opening_a_new_sqlite_file_at_once_all_start() {
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 200;
    for round in 0..ROUNDS {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let starts: Vec<_> = (0..PROCESSES)
            .map(|_| {
                let dir = Arc::clone(&dir);
                tokio::task::spawn_blocking(move || Ledger::open(&dir.path().join("ledger.sqlite")))
            })
            .collect();
        for start in starts {
            if let Err(error) = start.await.unwrap() {
                panic!("round {round}: a process could not open the ledger: {error}");
            }
        }
    }
}

#[tokio::test]
async fn a_sqlite_history_moves_into_postgres_once() {
    let Some(server) = server_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    for hour in 0..5 {
        sqlite
            .claim(&key("dau", hour), &lease("a", 30), now())
            .await
            .unwrap();
        if hour < 4 {
            sqlite
                .finish(&key("dau", hour), &delivered(&format!("{hour}.0")), now())
                .await
                .unwrap();
        }
    }
    // Today's spend moves too: no budget starts the day over on the new ledger.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
    sqlite.add_spend("answer:U1", day, 42 << 30).await.unwrap();
    let postgres = Ledger::postgres(&fresh_database(&server).await, &LedgerSettings::default())
        .await
        .unwrap();
    assert_eq!(postgres.copy_from(&sqlite).await.unwrap(), (6, 6));
    assert_eq!(
        postgres.copy_from(&sqlite).await.unwrap(),
        (6, 0),
        "nothing twice"
    );
    assert_eq!(postgres.spent("answer:U1", day).await.unwrap(), 42 << 30);
    let moved = postgres.history(Some("dau"), 10).await.unwrap();
    assert_eq!(moved, sqlite.history(Some("dau"), 10).await.unwrap());
    assert_eq!(
        postgres.open_runs().await.unwrap().len(),
        1,
        "the open run moved as open"
    );
    // Alert state and what was sent move too: a firing alert keeps its thread.
    use kpibot::ledger::alerts::{NoticeClaim, NoticeKey};
    let at = now();
    sqlite
        .insert_alert_round("drop", at, None, "{\"state\": 1}", 1, 1, None, "a", now())
        .await
        .unwrap();
    let notice = NoticeKey {
        alert: "drop".into(),
        evaluated_at: at,
        index: 0,
    };
    sqlite
        .claim_notice(&notice, "fired", &lease("a", 30), now())
        .await
        .unwrap();
    sqlite
        .record_notice(&notice, "a", Some(("C1", "9.000001")), None, now())
        .await
        .unwrap();
    assert_eq!(postgres.copy_alerts_from(&sqlite).await.unwrap(), (2, 2));
    assert_eq!(postgres.copy_alerts_from(&sqlite).await.unwrap(), (2, 0));
    assert_eq!(
        postgres.alert_round("drop", at).await.unwrap(),
        sqlite.alert_round("drop", at).await.unwrap()
    );
    assert_eq!(
        postgres
            .claim_notice(&notice, "fired", &lease("b", 30), now())
            .await
            .unwrap(),
        NoticeClaim::Posted {
            channel: "C1".into(),
            ts: "9.000001".into()
        },
        "a notice sent before the move is not sent again"
    );
    // Follows move, paused or not, and a digest sent before the move is not sent again.
    use kpibot::ledger::follows::{DigestClaimed, DigestOutcome, Follow};
    let follow = |target: &str, question: &str| Follow {
        target: target.into(),
        question: question.into(),
        person: "U1".into(),
        cadence: "weekly:mon".into(),
        at_minute: 8 * 60 + 30,
        timezone: "Asia/Tokyo".into(),
        locale: Some("ja".into()),
        created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        paused: None,
        place: Some("data-team".into()),
    };
    sqlite
        .add_follow(&follow("U1", "signups last 7 days"))
        .await
        .unwrap();
    sqlite
        .add_follow(&follow("C1", "active_users this month"))
        .await
        .unwrap();
    sqlite
        .set_follow_paused("C1", "active_users this month", Some("ask #data-team"))
        .await
        .unwrap();
    let slot = at - chrono::Duration::hours(1);
    let DigestClaimed::Won(claim) = sqlite
        .claim_digest("U1", slot, "a", at + chrono::Duration::seconds(30), at)
        .await
        .unwrap()
    else {
        panic!("a new digest is won");
    };
    let posted = DigestOutcome::Posted {
        channel: "U1".into(),
        ts: "9.000002".into(),
        questions: 1,
    };
    assert!(
        sqlite
            .finish_digest(&claim.fence, &posted, at)
            .await
            .unwrap()
    );
    assert_eq!(postgres.copy_follows_from(&sqlite).await.unwrap(), (3, 3));
    assert_eq!(postgres.copy_follows_from(&sqlite).await.unwrap(), (3, 0));
    assert_eq!(
        postgres.follows(None).await.unwrap(),
        sqlite.follows(None).await.unwrap()
    );
    assert!(matches!(
        postgres
            .claim_digest("U1", slot, "b", at + chrono::Duration::seconds(30), at)
            .await
            .unwrap(),
        DigestClaimed::Finished
    ));
}

#[tokio::test]
async fn an_unreachable_or_refusing_postgres_says_what_to_do() {
    let unreachable = Ledger::postgres(
        "postgres://kpibot:pw@127.0.0.1:1/kpibot",
        &LedgerSettings {
            timeout_ms: 2000,
            ..LedgerSettings::default()
        },
    )
    .await;
    let message = unreachable
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(message.contains("check the host and port"), "{message}");
    assert!(
        !message.contains(":pw@"),
        "the password is not shown: {message}"
    );
    let Some(server) = server_url() else {
        return;
    };
    let missing = common::postgres::with_database(&server, "no_such_database_here");
    let message = Ledger::postgres(&missing, &LedgerSettings::default())
        .await
        .err()
        .expect("no such database")
        .to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("create it"), "{message}");
}

#[tokio::test]
async fn a_wrong_password_says_which_setting_to_fix() {
    let Some(server) = server_url() else {
        return;
    };
    // .ci/postgres makes this role give its password (scram-sha-256); everyone else is trusted.
    let authority = server
        .split_once("@")
        .map(|(_, rest)| rest.to_string())
        .unwrap();
    let wrong = format!("postgres://kpibot_password:wrong-password@{authority}");
    let message = Ledger::postgres(&wrong, &LedgerSettings::default())
        .await
        .err()
        .expect("a wrong password is refused")
        .to_string();
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(
        message.contains("check the user and password in KPIBOT__LEDGER__URL"),
        "{message}"
    );
    assert!(
        !message.contains("wrong-password"),
        "the password is not shown: {message}"
    );
    // The right password: the role makes a database of its own and the ledger moves in.
    let right = format!("postgres://kpibot_password:right-password@{authority}");
    let (client, connection) = tokio_postgres::connect(&right, tokio_postgres::NoTls)
        .await
        .expect("the right password is accepted");
    let task = tokio::spawn(connection);
    let database = format!(
        "kpibot_password_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    client
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let own = common::postgres::with_database(&right, &database);
    Ledger::postgres(&own, &LedgerSettings::default())
        .await
        .expect("the ledger opens with the right password");
}

#[tokio::test]
async fn tls_is_used_as_sslmode_asks_and_verify_full_checks_the_certificate() {
    let Some(server) = server_url() else {
        return;
    };
    let Some(ca) = common::postgres::server_var("KPIBOT_TEST_POSTGRES_CA", "the TLS ledger test")
    else {
        return;
    };
    let database = fresh_database(&server).await;
    // Encrypted, certificate not checked (libpq's `require`).
    let ledger = Ledger::postgres(
        &format!("{database}?sslmode=require"),
        &LedgerSettings::default(),
    )
    .await
    .expect("sslmode=require connects");
    assert_eq!(
        ledger
            .claim(&key("dau", 0), &lease("a", 30), now())
            .await
            .unwrap(),
        Claim::Won
    );
    // Verified against the server's own CA: connects.
    let verified = format!("{database}?sslmode=verify-full&sslrootcert={ca}");
    let ledger = Ledger::postgres(&verified, &LedgerSettings::default())
        .await
        .expect("verify-full with the right CA connects");
    assert_eq!(ledger.history(None, 5).await.unwrap().len(), 1);
    // Verified against the public roots: a self-signed certificate is refused.
    let unverifiable = format!("{database}?sslmode=verify-full");
    let message = Ledger::postgres(&unverifiable, &LedgerSettings::default())
        .await
        .err()
        .expect("a self-signed certificate fails verification")
        .to_string();
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_round_is_recorded_once_and_each_notice_claimed_once_across_processes() {
    use kpibot::ledger::alerts::{NoticeClaim, NoticeKey};
    for (backend, place) in places().await {
        let place = Arc::new(place);
        let mut ledgers = Vec::new();
        for _ in 0..4 {
            ledgers.push(Arc::new(place.open().await));
        }
        let at = Utc.timestamp_opt(1_764_115_200, 0).unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(ledgers.len()));
        let mut handles = Vec::new();
        for (index, ledger) in ledgers.iter().enumerate() {
            let (ledger, barrier) = (Arc::clone(ledger), Arc::clone(&barrier));
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let round = format!("{{\"by\": {index}}}");
                let inserted = ledger
                    .insert_alert_round(
                        "drop",
                        at,
                        None,
                        &round,
                        1,
                        2,
                        None,
                        &format!("p{index}"),
                        now(),
                    )
                    .await
                    .unwrap();
                let key = NoticeKey {
                    alert: "drop".into(),
                    evaluated_at: at,
                    index: 0,
                };
                let claim = ledger
                    .claim_notice(&key, "fired", &lease(&format!("p{index}"), 30), now())
                    .await
                    .unwrap();
                (index, inserted, claim)
            }));
        }
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap());
        }
        let inserted: Vec<usize> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert_eq!(
            inserted.len(),
            1,
            "{backend}: one round per slot: {results:?}"
        );
        let winners: Vec<usize> = results
            .iter()
            .filter(|r| {
                matches!(
                    r.2,
                    NoticeClaim::Won {
                        takeover: false,
                        ..
                    }
                )
            })
            .map(|r| r.0)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "{backend}: one sender per notice: {results:?}"
        );
        assert!(
            results
                .iter()
                .filter(|r| r.0 != winners[0])
                .all(|r| r.2 == NoticeClaim::Held),
            "{backend}: {results:?}"
        );
        // Every process reads back the one round that was recorded.
        let stored = ledgers[3].alert_round("drop", at).await.unwrap().unwrap();
        assert_eq!(stored.round, format!("{{\"by\": {}}}", inserted[0]));
        assert_eq!((stored.firing, stored.notices, stored.done), (1, 2, false));

        let key = |index| NoticeKey {
            alert: "drop".into(),
            evaluated_at: at,
            index,
        };
        let winner = format!("p{}", winners[0]);
        assert!(
            ledgers[0]
                .record_notice(&key(0), &winner, Some(("C1", "1.000001")), None, now())
                .await
                .unwrap()
        );
        assert_eq!(
            ledgers[1]
                .claim_notice(&key(0), "fired", &lease("late", 30), now())
                .await
                .unwrap(),
            NoticeClaim::Posted {
                channel: "C1".into(),
                ts: "1.000001".into()
            }
        );
        assert_eq!(
            ledgers[2].notice_post(&key(0)).await.unwrap(),
            Some(("C1".into(), "1.000001".into()))
        );

        // Notice 1: its sender dies holding it; one process takes it over, and the dead
        // one can no longer record it.
        assert!(matches!(
            ledgers[0]
                .claim_notice(&key(1), "reminder", &lease("dead", -5), now())
                .await
                .unwrap(),
            NoticeClaim::Won {
                takeover: false,
                ..
            }
        ));
        ledgers[0]
            .note_notice_channel(&key(1), "dead", "C1")
            .await
            .unwrap();
        let mut takeovers = Vec::new();
        for (index, ledger) in ledgers.iter().enumerate().skip(1) {
            takeovers.push(
                ledger
                    .claim_notice(&key(1), "reminder", &lease(&format!("q{index}"), 30), now())
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            takeovers[0],
            NoticeClaim::Won {
                takeover: true,
                channel: Some("C1".into()),
                posted_ts: None,
                attempt: 2,
            },
            "{backend}: the takeover knows where to look"
        );
        assert!(
            takeovers[1..].iter().all(|c| *c == NoticeClaim::Held),
            "{backend}: {takeovers:?}"
        );
        assert!(
            !ledgers[0]
                .record_notice(&key(1), "dead", Some(("C1", "1.000002")), None, now())
                .await
                .unwrap(),
            "{backend}: a process that lost its claim cannot record it"
        );
        assert!(
            ledgers[1]
                .record_notice(&key(1), "q1", Some(("C1", "1.000003")), None, now())
                .await
                .unwrap()
        );
        assert_eq!(ledgers[2].open_alert_rounds().await.unwrap().len(), 1);
        ledgers[2]
            .finish_alert_round("drop", at, now())
            .await
            .unwrap();
        assert!(
            ledgers[3].open_alert_rounds().await.unwrap().is_empty(),
            "{backend}"
        );

        // The newest round of each alert is its state.
        let later = at + chrono::Duration::days(1);
        ledgers[0]
            .insert_alert_round("drop", later, Some(at), "{}", 0, 0, None, "p0", now())
            .await
            .unwrap();
        ledgers[0]
            .insert_alert_round("other", at, None, "{}", 0, 0, None, "p0", now())
            .await
            .unwrap();
        // A slower process that computed the round before `later` from the same base (at)
        // is refused: two rounds from one state would fork it.
        assert!(
            !ledgers[2]
                .insert_alert_round(
                    "drop",
                    later - chrono::Duration::hours(1),
                    Some(at),
                    "{}",
                    0,
                    0,
                    None,
                    "p2",
                    now()
                )
                .await
                .unwrap(),
            "{backend}: a round from a superseded state is refused"
        );
        let latest = ledgers[1].latest_alert_rounds(None).await.unwrap();
        let seen: Vec<(String, DateTime<Utc>, bool)> = latest
            .iter()
            .map(|r| (r.alert.clone(), r.evaluated_at, r.done))
            .collect();
        assert_eq!(
            seen,
            vec![("drop".into(), later, true), ("other".into(), at, true)],
            "{backend}: a round with no notices is done when recorded"
        );
        assert_eq!(
            ledgers[1]
                .alert_history(Some("drop"), 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }
}

/// Times are fixed-format text, in time order only under a bytewise collation: on a
/// PostgreSQL database whose default collation is a language's (ICU en-US here), every
/// time column the ledger compares with `<`/`>` still compares as "C" (migration V7).
#[tokio::test]
async fn time_columns_compare_bytewise_on_a_database_with_a_language_collation() {
    let Some(server) = server_url() else { return };
    let name = format!("kpibot_test_icu_{}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let url = common::postgres::with_database(&server, &name);
    let ledger = Ledger::postgres(&url, &LedgerSettings::default())
        .await
        .unwrap();
    ledger.check_writable().await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text, COALESCE(collation_name::text, '(default)')
             FROM information_schema.columns
             WHERE table_schema = 'public'
               AND (column_name IN ('slot', 'evaluated_at', 'lease_until', 'day')
                    OR column_name LIKE '%\\_at' ESCAPE '\\')
               AND data_type = 'text'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // Every time column of every table: runs, alert rounds, notices, claims, spend.
    assert!(columns.len() >= 15, "{columns:?}");
    let not_c: Vec<_> = columns.iter().filter(|(.., c)| c != "C").collect();
    assert!(
        not_c.is_empty(),
        "compared by the database's collation: {not_c:?}"
    );
}

/// The studio reads runs through a ledger that cannot write: it sees what the bot
/// recorded, and every write through it fails, on both databases (SQLite opens the file
/// read-only; PostgreSQL holds every transaction read-only).
#[tokio::test]
async fn a_read_only_ledger_reads_the_runs_and_refuses_every_write() {
    for (backend, place) in places().await {
        assert!(
            matches!(place, Place::Postgres(_))
                || Ledger::read_only(&place.settings()).unwrap().is_none(),
            "{backend}: no file yet is no ledger, and none is created"
        );
        let writer = place.open().await;
        let k = key("dau", 0);
        writer.claim(&k, &lease("a", 30), now()).await.unwrap();
        writer.mark_running(&k, now()).await.unwrap();
        writer.finish(&k, &delivered("1.5"), now()).await.unwrap();
        let reader = Ledger::read_only(&place.settings()).unwrap().unwrap();
        let runs = reader.history(Some("dau"), 10).await.unwrap();
        assert_eq!(
            runs,
            writer.history(Some("dau"), 10).await.unwrap(),
            "{backend}"
        );
        assert_eq!(runs.len(), 1, "{backend}");
        assert!(
            reader
                .set_permalink(&k, "https://x.slack.com/p1")
                .await
                .is_err(),
            "{backend}: a write through the read-only ledger must fail"
        );
        assert!(
            reader
                .claim(&key("dau", 1), &lease("b", 30), now())
                .await
                .is_err(),
            "{backend}: so must a claim"
        );
        assert_eq!(
            writer.get(&k).await.unwrap().unwrap().permalink,
            None,
            "{backend}"
        );
    }
}

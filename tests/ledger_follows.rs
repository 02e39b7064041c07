//! Follows and digests on both ledgers (a SQLite file, and a real PostgreSQL database
//! when `KPIBOT_TEST_POSTGRES_URL` names a server; `.ci/run` starts one): a follow kept,
//! changed and removed; a digest claimed by exactly one of many processes racing for it,
//! fenced by its generation, taken over once its lease lapses (knowing a post may exist),
//! and finished once.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use kpibot::ledger::Ledger;
use kpibot::ledger::follows::{DigestClaimed, DigestOutcome, Follow};
use kpibot::settings::LedgerSettings;

use common::postgres::{fresh_database, server_url};

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    async fn open(&self) -> Ledger {
        match self {
            Place::Sqlite(dir) => Ledger::open(&dir.path().join("ledger.sqlite")).unwrap(),
            Place::Postgres(url) => Ledger::postgres(url, &LedgerSettings::default())
                .await
                .unwrap(),
        }
    }
}

async fn places() -> Vec<(&'static str, Place)> {
    let mut places = vec![("sqlite", Place::Sqlite(tempfile::tempdir().unwrap()))];
    if let Some(server) = server_url() {
        places.push(("postgres", Place::Postgres(fresh_database(&server).await)));
    }
    places
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, hour, minute, 0).unwrap()
}

fn follow(target: &str, question: &str, at_minute: u32) -> Follow {
    Follow {
        target: target.into(),
        question: question.into(),
        person: target.into(),
        place: None,
        cadence: "daily".into(),
        at_minute,
        timezone: "Asia/Tokyo".into(),
        locale: Some("ja".into()),
        created_at: at(0, 0),
        paused: None,
    }
}

#[tokio::test]
async fn a_follow_is_kept_changed_paused_and_removed() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        ledger
            .add_follow(&follow("U1", "active_users", 540))
            .await
            .unwrap();
        ledger
            .add_follow(&follow("U1", "signups", 540))
            .await
            .unwrap();
        ledger
            .add_follow(&follow("U2", "signups", 600))
            .await
            .unwrap();
        // Following again changes when, from now, and lifts a pause.
        ledger
            .set_follow_paused("U1", "signups", Some("you may no longer see it"))
            .await
            .unwrap();
        let mut again = follow("U1", "signups", 480);
        again.created_at = at(1, 0);
        ledger.add_follow(&again).await.unwrap();
        let mine = ledger.follows(Some("U1")).await.unwrap();
        assert_eq!(mine.len(), 2, "{backend}");
        let signups = mine.iter().find(|f| f.question == "signups").unwrap();
        assert_eq!(
            (
                signups.at_minute,
                signups.created_at,
                signups.paused.clone()
            ),
            (480, at(1, 0), None),
            "{backend}"
        );
        assert_eq!(ledger.count_follows().await.unwrap(), 3, "{backend}");
        assert_eq!(ledger.follows_by("U2").await.unwrap().len(), 1, "{backend}");
        assert!(
            ledger.remove_follow("U1", "signups").await.unwrap(),
            "{backend}"
        );
        assert!(
            !ledger.remove_follow("U1", "signups").await.unwrap(),
            "{backend}"
        );
        assert_eq!(ledger.count_follows().await.unwrap(), 2, "{backend}");
    }
}

#[tokio::test]
async fn a_digest_is_won_by_one_process_fenced_taken_over_once_and_finished_once() {
    for (backend, place) in places().await {
        let slot = at(0, 0);
        let now = at(0, 1);
        // Eight processes race for the same digest.
        let mut racers = Vec::new();
        for i in 0..8 {
            let ledger = place.open().await;
            racers.push(tokio::spawn(async move {
                let owner = format!("p{i}");
                let claimed = ledger
                    .claim_digest("U1", slot, &owner, now + chrono::Duration::seconds(60), now)
                    .await
                    .unwrap();
                (ledger, claimed)
            }));
        }
        let mut winners = Vec::new();
        for racer in racers {
            let (ledger, claimed) = racer.await.unwrap();
            match claimed {
                DigestClaimed::Won(claim) => winners.push((ledger, claim)),
                DigestClaimed::Held => {}
                DigestClaimed::Finished => panic!("{backend}: nothing finished it yet"),
            }
        }
        assert_eq!(winners.len(), 1, "{backend}: one process wins");
        let (first_ledger, first) = winners.pop().unwrap();
        assert!(!first.may_have_posted);
        assert!(
            first_ledger
                .begin_digest_post(&first.fence, now + chrono::Duration::seconds(60), now)
                .await
                .unwrap(),
            "{backend}"
        );
        // It dies; once its lease lapsed another takes over, told a post may exist.
        let ledger = place.open().await;
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            ledger.abandoned_digests(later, slot).await.unwrap(),
            vec![("U1".to_string(), slot)],
            "{backend}"
        );
        let DigestClaimed::Won(second) = ledger
            .claim_digest(
                "U1",
                slot,
                "q",
                later + chrono::Duration::seconds(60),
                later,
            )
            .await
            .unwrap()
        else {
            panic!("{backend}: a lapsed digest is taken over");
        };
        assert_eq!(second.fence.generation, 2, "{backend}");
        assert!(second.may_have_posted, "{backend}");
        // The first holder, back, can neither post nor record it.
        assert!(
            !first_ledger
                .begin_digest_post(&first.fence, later, later)
                .await
                .unwrap(),
            "{backend}"
        );
        let posted = DigestOutcome::Posted {
            channel: "DU1".into(),
            ts: "1.1".into(),
            questions: 2,
        };
        assert!(
            !first_ledger
                .finish_digest(&first.fence, &posted, later)
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            ledger
                .finish_digest(&second.fence, &posted, later)
                .await
                .unwrap(),
            "{backend}"
        );
        assert_eq!(
            ledger
                .claim_digest("U1", slot, "r", later, later)
                .await
                .unwrap(),
            DigestClaimed::Finished,
            "{backend}"
        );
        assert_eq!(
            ledger.digest_counts().await.unwrap(),
            vec![("posted".to_string(), 1)],
            "{backend}"
        );
        assert!(
            ledger
                .abandoned_digests(later, slot)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_digest_let_go_after_a_failure_is_taken_over_at_once() {
    for (backend, place) in places().await {
        let ledger = place.open().await;
        let (slot, now) = (at(0, 0), at(0, 1));
        let DigestClaimed::Won(claim) = ledger
            .claim_digest("U1", slot, "p", now + chrono::Duration::seconds(60), now)
            .await
            .unwrap()
        else {
            panic!("{backend}");
        };
        ledger.release_digest(&claim.fence, now).await.unwrap();
        let soon = now + chrono::Duration::milliseconds(1);
        let DigestClaimed::Won(again) = ledger
            .claim_digest("U1", slot, "p", soon + chrono::Duration::seconds(60), soon)
            .await
            .unwrap()
        else {
            panic!("{backend}: let go, it is taken again");
        };
        assert_eq!(again.fence.generation, 2, "{backend}");
        assert!(!again.may_have_posted, "{backend}: nothing was attempted");
    }
}

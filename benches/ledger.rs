//! Claims per second over 10,000 due slots, three "replicas" (three independent ledger
//! connections, each racing for every slot, as three `serve` processes do) on SQLite and
//! on PostgreSQL (`KPIBOT_TEST_POSTGRES_URL`, as `.ci/run` starts it). Every slot must be
//! won exactly once; the figure is slots settled (won or lost by all three) per second.
//!
//! `cargo bench --bench ledger` (release), or `--profile dev`: the figure is bound by
//! database round trips, not by kpibot's code.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use kpibot::ledger::{Claim, Lease, Ledger, SlotKey};
use kpibot::settings::LedgerSettings;

#[path = "../tests/common/mod.rs"]
mod common;

const SLOTS: i64 = 10_000;
const REPLICAS: usize = 3;

async fn race(ledgers: Vec<Arc<Ledger>>) -> (f64, usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, ledger) in ledgers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let lease = Lease {
                owner: format!("replica-{index}"),
                until: Utc::now() + chrono::Duration::minutes(5),
            };
            let mut won = 0;
            for i in 0..SLOTS {
                let key = SlotKey {
                    report: format!("report-{}", i % 100),
                    schedule: 0,
                    slot: Utc.timestamp_opt(1_764_115_200 + i * 60, 0).unwrap(),
                };
                if ledger.claim(&key, &lease, Utc::now()).await.unwrap() == Claim::Won {
                    won += 1;
                }
            }
            won
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += task.await.unwrap();
    }
    (SLOTS as f64 / started.elapsed().as_secs_f64(), won)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let sqlite: Vec<Arc<Ledger>> = (0..REPLICAS)
        .map(|_| Arc::new(Ledger::open(&path).unwrap()))
        .collect();
    let (rate, won) = race(sqlite).await;
    assert_eq!(won, SLOTS as usize, "every slot won exactly once");
    println!("ledger claims, SQLite, {REPLICAS} processes over {SLOTS} slots: {rate:.0} slots/s");
    let Some(server) = common::postgres::server_url() else {
        return;
    };
    let url = common::postgres::fresh_database(&server).await;
    let mut postgres = Vec::new();
    for _ in 0..REPLICAS {
        postgres.push(Arc::new(
            Ledger::postgres(&url, &LedgerSettings::default())
                .await
                .unwrap(),
        ));
    }
    let (rate, won) = race(postgres).await;
    assert_eq!(won, SLOTS as usize, "every slot won exactly once");
    println!(
        "ledger claims, PostgreSQL, {REPLICAS} replicas over {SLOTS} slots: {rate:.0} slots/s"
    );
}

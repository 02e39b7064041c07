//! The run ledger: one row per (report, schedule, slot) in a SQLite file, claimed in a
//! transaction before the run, so restarts and a second process never post a slot twice.
//! One cohesive thing: every statement on the ledger's one table, and their tests.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Params, params};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    report      TEXT    NOT NULL,
    schedule    INTEGER NOT NULL,
    slot        TEXT    NOT NULL,  -- RFC 3339, UTC
    state       TEXT    NOT NULL CHECK (state IN ('claimed','running','delivered','failed','skipped','no_data')),
    attempts    INTEGER NOT NULL DEFAULT 1,
    claimed_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT,
    channel     TEXT,
    ts          TEXT,
    rows        INTEGER,
    bytes       INTEGER,
    owner       TEXT,              -- the process instance running it
    lease_until TEXT,              -- RFC 3339, UTC: after this, an open row is abandoned
    PRIMARY KEY (report, schedule, slot)
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (state, lease_until);
";

/// Who holds an open row, and until when, unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// A unique name for this process instance.
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// What the ledger knows about one schedule, for catch-up planning.
#[derive(Debug, Clone, Default)]
pub struct SlotHistory {
    /// The oldest and newest slots with a row; `None` for a schedule never run.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Every slot with a row since the time asked for.
    pub recorded: std::collections::BTreeSet<DateTime<Utc>>,
}

/// Which scheduled post a row is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotKey {
    pub report: String,
    /// Index of the `[[schedule]]` entry in the spec.
    pub schedule: u32,
    pub slot: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Claimed,
    Running,
    Delivered,
    Failed,
    Skipped,
    NoData,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Claimed => "claimed",
            RunState::Running => "running",
            RunState::Delivered => "delivered",
            RunState::Failed => "failed",
            RunState::Skipped => "skipped",
            RunState::NoData => "no_data",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "claimed" => RunState::Claimed,
            "running" => RunState::Running,
            "delivered" => RunState::Delivered,
            "failed" => RunState::Failed,
            "skipped" => RunState::Skipped,
            "no_data" => RunState::NoData,
            _ => return None,
        })
    }

    /// Claimed or running: a crash may have left it so.
    pub fn is_open(self) -> bool {
        matches!(self, RunState::Claimed | RunState::Running)
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered: Slack answered ok with a message ts (or the folder was written).
    Delivered {
        channel: String,
        ts: String,
        rows: u64,
    },
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
    },
    /// Delivered, saying there was no data for the window.
    NoData {
        channel: String,
        ts: String,
    },
}

/// One row of run history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub key: SlotKey,
    pub state: RunState,
    pub attempts: u32,
    pub error: Option<String>,
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows: Option<u64>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process owns the slot now and must run it.
    Won,
    /// Another run (this process earlier, another process, or a run before a crash) has it.
    Taken(RunRecord),
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the run ledger {path} cannot be used")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the run ledger failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no ledger row for report `{report}` slot {slot}: it was never claimed")]
    NotClaimed { report: String, slot: String },
    #[error(
        "the ledger row for report `{report}` slot {slot} is {state:?} already and cannot change"
    )]
    AlreadyFinished {
        report: String,
        slot: String,
        state: RunState,
    },
}

/// What a claim and a takeover bind, as `?1`…`?6`: the slot, the time, and the lease.
fn claim_values<'a>(key: &'a SlotKey, lease: &'a Lease, now: DateTime<Utc>) -> impl Params + 'a {
    (
        key.report.as_str(),
        key.schedule,
        slot_text(key.slot),
        time_text(now),
        lease.owner.as_str(),
        time_text(lease.until),
    )
}

pub struct Ledger {
    connection: Mutex<Connection>,
}

/// A fencing token: which process holds a slot, and which generation of the row (every
/// takeover increments it). State changes and posts check it, so a process that paused
/// past its lease cannot act on a slot another process has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub owner: String,
    pub generation: u32,
}

/// The fence as the optional `?owner` / `?generation` a fenced statement binds.
fn fence_values(fence: Option<&Fence>) -> (Option<&str>, Option<u32>) {
    (fence.map(|f| f.owner.as_str()), fence.map(|f| f.generation))
}

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Event times (claimed, started, finished, lease) to the millisecond; one fixed format so
/// that text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Ledger {
    /// Opens (creating if needed) the ledger file in WAL mode.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let fail = |source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(fail)?;
        connection
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(fail)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        connection.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection)
    }

    /// Claims a slot before running it. Exactly one claimant wins, across processes.
    pub fn claim(
        &self,
        key: &SlotKey,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Claim, LedgerError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO runs (report, schedule, slot, state, claimed_at, owner, lease_until)
                 VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, ?6)
                 ON CONFLICT (report, schedule, slot) DO NOTHING",
                claim_values(key, lease, now),
            )?;
            let claim = if inserted == 1 {
                Claim::Won
            } else {
                Claim::Taken(read(&tx, key)?.ok_or_else(|| not_claimed(key))?)
            };
            tx.commit()?;
            Ok(claim)
        })
    }

    /// Takes over an open slot whose lease has run out (its process died), counting the
    /// attempt. Only one process can win this. The caller must then make sure the post
    /// does not exist already before running it.
    pub fn reclaim(
        &self,
        key: &SlotKey,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        self.with(|conn| {
            let changed = conn.execute(
                "UPDATE runs SET state = 'claimed', attempts = attempts + 1, claimed_at = ?4,
                        error = NULL, owner = ?5, lease_until = ?6
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3
                   AND state IN ('claimed', 'running') AND (lease_until IS NULL OR lease_until < ?4)",
                claim_values(key, lease, now),
            )?;
            Ok(changed == 1)
        })
    }

    /// Lets go of an open row until `retry_at`: no process holds it, and any may take it
    /// over (`reclaim`) after that time. For a slot whose post could not be confirmed yet.
    pub fn release(&self, key: &SlotKey, retry_at: DateTime<Utc>) -> Result<(), LedgerError> {
        self.transition(key, |conn| {
            conn.execute(
                "UPDATE runs SET owner = NULL, lease_until = ?4
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')",
                params![key.report, key.schedule, slot_text(key.slot), time_text(retry_at)],
            )
        })
    }

    /// Extends the lease on every open row this process holds; returns how many.
    pub fn renew(&self, lease: &Lease) -> Result<usize, LedgerError> {
        self.with(|conn| {
            Ok(conn.execute(
                "UPDATE runs SET lease_until = ?2 WHERE owner = ?1 AND state IN ('claimed', 'running')",
                params![lease.owner, time_text(lease.until)],
            )?)
        })
    }

    /// Open rows whose lease ran out: their process died mid-run. Oldest slot first.
    pub fn abandoned_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, LedgerError> {
        self.select(
            "WHERE state IN ('claimed', 'running') AND (lease_until IS NULL OR lease_until < ?1)
             ORDER BY slot",
            params![time_text(now)],
        )
    }

    /// What the ledger knows about a schedule: its first and last slot, and every slot
    /// with a row since `since`.
    pub fn slot_history(
        &self,
        report: &str,
        schedule: u32,
        since: DateTime<Utc>,
    ) -> Result<SlotHistory, LedgerError> {
        self.with(|conn| {
            let (first, last): (Option<String>, Option<String>) = conn.query_row(
                "SELECT MIN(slot), MAX(slot) FROM runs WHERE report = ?1 AND schedule = ?2",
                params![report, schedule],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut statement = conn.prepare(
                "SELECT slot FROM runs WHERE report = ?1 AND schedule = ?2 AND slot >= ?3",
            )?;
            let recorded = statement
                .query_map(params![report, schedule, slot_text(since)], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?
                .iter()
                .filter_map(|t| parse_time(t))
                .collect();
            Ok(SlotHistory {
                first: first.as_deref().and_then(parse_time),
                last: last.as_deref().and_then(parse_time),
                recorded,
            })
        })
    }

    /// The most recent runs (of one report, or all), newest slot first.
    pub fn history(
        &self,
        report: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        self.select(
            "WHERE (?1 IS NULL OR report = ?1) ORDER BY slot DESC, report LIMIT ?2",
            params![report, limit as i64],
        )
    }

    /// Whether a write can be made now (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), LedgerError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.rollback()?;
            Ok(())
        })
    }

    fn select(
        &self,
        condition: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        self.with(|conn| {
            let mut statement = conn.prepare(&format!("SELECT {COLUMNS} FROM runs {condition}"))?;
            let rows = statement.query_map(values, record_from_row)?;
            Ok(rows
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect())
        })
    }

    pub fn mark_running(&self, key: &SlotKey, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.mark_running_where(key, None, now)
    }

    /// Marks the slot running only if `fence` still holds it.
    pub fn mark_running_fenced(
        &self,
        key: &SlotKey,
        fence: &Fence,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.mark_running_where(key, Some(fence), now)
    }

    fn mark_running_where(
        &self,
        key: &SlotKey,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let (owner, generation) = fence_values(fence);
        self.transition(key, |conn| {
            conn.execute(
                "UPDATE runs SET state = 'running', started_at = ?4
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')
                   AND (?5 IS NULL OR (owner = ?5 AND attempts = ?6))",
                params![key.report, key.schedule, slot_text(key.slot), time_text(now), owner, generation],
            )
        })
    }

    /// The fencing token of a slot this process just claimed or took over: its owner and
    /// the row's generation (`attempts`, which every takeover increments).
    pub fn fence(&self, key: &SlotKey, owner: &str) -> Result<Fence, LedgerError> {
        let record = self.get(key)?.ok_or_else(|| not_claimed(key))?;
        Ok(Fence {
            owner: owner.to_string(),
            generation: record.attempts,
        })
    }

    /// Whether `fence` still holds the slot at `now`: same owner and generation, the row
    /// open and its lease not run out. Checked right before a post goes out.
    pub fn holds(
        &self,
        key: &SlotKey,
        fence: &Fence,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        self.with(|conn| {
            let held: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM runs
                     WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')
                       AND owner = ?4 AND attempts = ?5 AND lease_until >= ?6",
                    params![
                        key.report,
                        key.schedule,
                        slot_text(key.slot),
                        fence.owner,
                        fence.generation,
                        time_text(now)
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(held.is_some())
        })
    }

    /// Records how a run ended. A finished row never changes again.
    pub fn finish(
        &self,
        key: &SlotKey,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish_where(key, None, outcome, now)
    }

    /// Records how a run ended, only if `fence` still holds the slot: a process that lost
    /// its slot to another cannot overwrite what the new holder records.
    pub fn finish_fenced(
        &self,
        key: &SlotKey,
        fence: &Fence,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish_where(key, Some(fence), outcome, now)
    }

    fn finish_where(
        &self,
        key: &SlotKey,
        fence: Option<&Fence>,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let (owner, generation) = fence_values(fence);
        let (state, error, channel, ts, rows) = match outcome {
            Outcome::Delivered { channel, ts, rows } => (
                RunState::Delivered,
                None,
                Some(channel.as_str()),
                Some(ts.as_str()),
                Some(*rows),
            ),
            Outcome::Failed { error } => (RunState::Failed, Some(error.as_str()), None, None, None),
            Outcome::Skipped { reason } => {
                (RunState::Skipped, Some(reason.as_str()), None, None, None)
            }
            Outcome::NoData { channel, ts } => (
                RunState::NoData,
                None,
                Some(channel.as_str()),
                Some(ts.as_str()),
                Some(0),
            ),
        };
        self.transition(key, |conn| {
            conn.execute(
                "UPDATE runs SET state = ?4, finished_at = ?5, error = ?6, channel = ?7, ts = ?8, rows = ?9
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')
                   AND (?10 IS NULL OR (owner = ?10 AND attempts = ?11))",
                params![
                    key.report,
                    key.schedule,
                    slot_text(key.slot),
                    state.as_str(),
                    time_text(now),
                    error,
                    channel,
                    ts,
                    rows.map(|r| r as i64),
                    owner,
                    generation
                ],
            )
        })
    }

    /// Records a slot that will not run (e.g. older than the catch-up window) without a
    /// claim, unless it already has a row.
    pub fn skip(
        &self,
        key: &SlotKey,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        self.with(|conn| {
            let inserted = conn.execute(
                "INSERT INTO runs (report, schedule, slot, state, claimed_at, finished_at, error)
                 VALUES (?1, ?2, ?3, 'skipped', ?4, ?4, ?5) ON CONFLICT (report, schedule, slot) DO NOTHING",
                params![key.report, key.schedule, slot_text(key.slot), time_text(now), reason],
            )?;
            Ok(inserted == 1)
        })
    }

    fn transition(
        &self,
        key: &SlotKey,
        update: impl FnOnce(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<(), LedgerError> {
        self.with(|conn| {
            if update(conn)? == 1 {
                return Ok(());
            }
            match read(conn, key)? {
                None => Err(not_claimed(key)),
                Some(record) => Err(LedgerError::AlreadyFinished {
                    report: key.report.clone(),
                    slot: slot_text(key.slot),
                    state: record.state,
                }),
            }
        })
    }

    pub fn get(&self, key: &SlotKey) -> Result<Option<RunRecord>, LedgerError> {
        self.with(|conn| read(conn, key))
    }

    /// Rows left claimed or running (by a crash, or in flight now), oldest slot first.
    pub fn open_runs(&self) -> Result<Vec<RunRecord>, LedgerError> {
        self.select("WHERE state IN ('claimed', 'running') ORDER BY slot", [])
    }
}

const COLUMNS: &str = "report, schedule, slot, state, attempts, error, channel, ts, claimed_at, started_at, finished_at, rows";

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn not_claimed(key: &SlotKey) -> LedgerError {
    LedgerError::NotClaimed {
        report: key.report.clone(),
        slot: slot_text(key.slot),
    }
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<RunRecord>> {
    let slot: String = row.get(2)?;
    let state: String = row.get(3)?;
    let (Ok(slot), Some(state)) = (DateTime::parse_from_rfc3339(&slot), RunState::parse(&state))
    else {
        return Ok(None);
    };
    Ok(Some(RunRecord {
        key: SlotKey {
            report: row.get(0)?,
            schedule: row.get(1)?,
            slot: slot.with_timezone(&Utc),
        },
        state,
        attempts: row.get(4)?,
        error: row.get(5)?,
        channel: row.get(6)?,
        ts: row.get(7)?,
        claimed_at: row
            .get::<_, Option<String>>(8)?
            .as_deref()
            .and_then(parse_time),
        started_at: row
            .get::<_, Option<String>>(9)?
            .as_deref()
            .and_then(parse_time),
        finished_at: row
            .get::<_, Option<String>>(10)?
            .as_deref()
            .and_then(parse_time),
        rows: row.get::<_, Option<i64>>(11)?.map(|r| r.max(0) as u64),
    }))
}

fn read(conn: &Connection, key: &SlotKey) -> Result<Option<RunRecord>, LedgerError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM runs WHERE report = ?1 AND schedule = ?2 AND slot = ?3"
            ),
            params![key.report, key.schedule, slot_text(key.slot)],
            record_from_row,
        )
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use chrono::TimeZone;

    use super::*;

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

    #[test]
    fn a_slot_is_claimed_once_and_finished_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        let k = key("dau", 0);
        assert_eq!(
            ledger.claim(&k, &lease("a", 30), now()).unwrap(),
            Claim::Won
        );
        assert!(
            matches!(ledger.claim(&k, &lease("a", 30), now()).unwrap(), Claim::Taken(r) if r.state == RunState::Claimed)
        );
        ledger.mark_running(&k, now()).unwrap();
        let delivered = Outcome::Delivered {
            channel: "C1".into(),
            ts: "1764115200.000100".into(),
            rows: 84,
        };
        ledger.finish(&k, &delivered, now()).unwrap();
        let record = ledger.get(&k).unwrap().unwrap();
        assert_eq!(
            (record.state, record.ts.as_deref()),
            (RunState::Delivered, Some("1764115200.000100"))
        );
        assert!(matches!(
            ledger.finish(
                &k,
                &Outcome::Failed {
                    error: "late".into()
                },
                now()
            ),
            Err(LedgerError::AlreadyFinished {
                state: RunState::Delivered,
                ..
            })
        ));
        assert!(matches!(
            ledger.finish(&key("dau", 5), &delivered, now()),
            Err(LedgerError::NotClaimed { .. })
        ));
    }

    #[test]
    fn the_ledger_survives_a_restart_and_lists_what_a_crash_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let ledger = Ledger::open(&path).unwrap();
            ledger
                .claim(&key("dau", 1), &lease("a", 30), now())
                .unwrap();
            ledger.mark_running(&key("dau", 1), now()).unwrap();
            ledger
                .claim(&key("dau", 2), &lease("a", 30), now())
                .unwrap();
            let no_data = Outcome::NoData {
                channel: "C1".into(),
                ts: "1.2".into(),
            };
            ledger.finish(&key("dau", 2), &no_data, now()).unwrap();
            assert!(
                ledger
                    .skip(&key("dau", 3), "older than the catch-up window", now())
                    .unwrap()
            );
        } // "crash"
        let ledger = Ledger::open(&path).unwrap();
        let open: Vec<SlotKey> = ledger
            .open_runs()
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(open, vec![key("dau", 1)]);
        // Its process's lease still runs: not abandoned yet, and not reclaimable.
        assert!(ledger.abandoned_runs(now()).unwrap().is_empty());
        assert!(
            !ledger
                .reclaim(&key("dau", 1), &lease("b", 60), now())
                .unwrap()
        );
        let later = now() + chrono::Duration::seconds(31);
        assert_eq!(ledger.abandoned_runs(later).unwrap().len(), 1);
        let b = Lease {
            owner: "b".into(),
            until: later + chrono::Duration::seconds(30),
        };
        assert!(ledger.reclaim(&key("dau", 1), &b, later).unwrap());
        assert!(
            !ledger.reclaim(&key("dau", 1), &b, later).unwrap(),
            "a reclaimed row holds a fresh lease: no second process can take it"
        );
        assert_eq!(ledger.get(&key("dau", 1)).unwrap().unwrap().attempts, 2);
        assert!(
            !ledger.reclaim(&key("dau", 2), &b, later).unwrap(),
            "a finished run is not reclaimed"
        );
        let known = ledger.slot_history("dau", 0, key("dau", 2).slot).unwrap();
        assert_eq!(
            (known.first, known.last),
            (Some(key("dau", 1).slot), Some(key("dau", 3).slot))
        );
        assert_eq!(
            known.recorded.into_iter().collect::<Vec<_>>(),
            vec![key("dau", 2).slot, key("dau", 3).slot],
            "only slots since the time asked for"
        );
        let history = ledger.history(Some("dau"), 2).unwrap();
        assert_eq!(
            history.iter().map(|r| r.state).collect::<Vec<_>>(),
            [RunState::Skipped, RunState::NoData]
        );
        assert!(
            !ledger.skip(&key("dau", 2), "x", now()).unwrap(),
            "skip never overwrites a run"
        );
    }

    #[test]
    fn two_processes_sharing_the_file_never_both_win_a_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        // Two ledgers = two independent SQLite connections, as two `serve` processes have.
        let ledgers = [
            Arc::new(Ledger::open(&path).unwrap()),
            Arc::new(Ledger::open(&path).unwrap()),
        ];
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = ledgers
            .iter()
            .map(|ledger| {
                let (ledger, barrier) = (Arc::clone(ledger), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..200)
                        .filter(|i| {
                            let k = SlotKey {
                                report: format!("r{}", i % 20),
                                schedule: 0,
                                slot: Utc
                                    .timestamp_opt(1_764_115_200 + i64::from(*i) * 60, 0)
                                    .unwrap(),
                            };
                            ledger.claim(&k, &lease("a", 30), now()).unwrap() == Claim::Won
                        })
                        .count()
                })
            })
            .collect();
        let wins: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            wins.iter().sum::<usize>(),
            200,
            "every slot won exactly once: {wins:?}"
        );
    }

    #[test]
    fn a_process_that_lost_its_slot_can_neither_record_nor_post_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        let k = key("dau", 0);
        // A claims with a short lease, then pauses past it; B takes the slot over.
        assert_eq!(ledger.claim(&k, &lease("a", 1), now()).unwrap(), Claim::Won);
        let a = ledger.fence(&k, "a").unwrap();
        ledger.mark_running_fenced(&k, &a, now()).unwrap();
        assert!(ledger.holds(&k, &a, now()).unwrap());
        let later = now() + chrono::Duration::seconds(5);
        let b_lease = Lease {
            owner: "b".into(),
            until: later + chrono::Duration::seconds(30),
        };
        assert!(ledger.reclaim(&k, &b_lease, later).unwrap());
        let b = ledger.fence(&k, "b").unwrap();
        assert_eq!(
            b.generation,
            a.generation + 1,
            "a takeover is a new generation"
        );
        // A wakes up: it no longer holds the slot, and cannot record it.
        assert!(!ledger.holds(&k, &a, later).unwrap());
        let delivered = Outcome::Delivered {
            channel: "C1".into(),
            ts: "1.0".into(),
            rows: 1,
        };
        assert!(ledger.finish_fenced(&k, &a, &delivered, later).is_err());
        assert!(ledger.mark_running_fenced(&k, &a, later).is_err());
        // B holds it and records it.
        assert!(ledger.holds(&k, &b, later).unwrap());
        ledger.finish_fenced(&k, &b, &delivered, later).unwrap();
        assert_eq!(ledger.get(&k).unwrap().unwrap().state, RunState::Delivered);
    }
}

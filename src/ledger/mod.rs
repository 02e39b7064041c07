//! The run ledger: one row per (report, schedule, slot), claimed before the run, so
//! restarts, a second process or any number of replicas never post a slot twice. Every
//! statement is written once here; [`sqlite`] (one host, the default) and [`postgres`]
//! (shared by replicas) only carry them to their database.
//! One cohesive thing: every statement on the ledger's one table.

pub mod alerts;
pub mod follows;
pub mod postgres;
pub mod redact;
pub mod spend;
pub mod sqlite;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::settings::LedgerSettings;

/// The schema, as versioned migrations shared by both databases (`migrations/`).
mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Migrations written for PostgreSQL that SQLite replaces with its own text (version,
/// name, SQL): `V7` and `V9` make text times compare bytewise, as SQLite always does.
const SQLITE_REPLACEMENTS: [(i32, &str, &str); 2] = [
    (
        7,
        "V7__text_times_collate_c",
        "-- SQLite compares text bytewise (BINARY): nothing to change.\nSELECT 1;",
    ),
    (
        9,
        "V9__digest_slot_collate_c",
        "-- SQLite compares text bytewise (BINARY): nothing to change.\nSELECT 1;",
    ),
];

/// The migrations a backend runs at start-up: the shared ones, with SQLite's own text
/// where [`SQLITE_REPLACEMENTS`] has one.
pub(crate) fn migrations(sqlite: bool) -> refinery::Runner {
    let runner = embedded::migrations::runner();
    if !sqlite {
        return runner;
    }
    let migrations: Vec<refinery::Migration> = runner
        .get_migrations()
        .iter()
        .map(|migration| {
            match SQLITE_REPLACEMENTS
                .iter()
                .find(|(version, ..)| migration.version() == *version)
            {
                Some((_, name, sql)) => refinery::Migration::unapplied(name, sql)
                    .expect("a replacement's name follows refinery's V<n>__<name> pattern"),
                None => migration.clone(),
            }
        })
        .collect();
    refinery::Runner::new(&migrations)
}

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotKey {
    pub report: String,
    /// Index of the `[[schedule]]` entry in the spec.
    pub schedule: u32,
    pub slot: DateTime<Utc>,
}

impl std::fmt::Display for SlotKey {
    /// `report daily_active_users, slot 2026-11-26T00:00:00Z`, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "report {}, slot {}",
            self.report,
            self.slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
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
        /// Bytes the run's queries scanned, where the warehouse says.
        bytes: Option<u64>,
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
        bytes: Option<u64>,
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
    /// Bytes the run's queries scanned, where the warehouse says (BigQuery).
    pub bytes: Option<u64>,
    /// Thread mode: the summary's ts once it is posted (the chart's reply may still be due).
    pub summary_ts: Option<String>,
    /// Slack's own link to the post, stored the first time one was shown.
    pub permalink: Option<String>,
    /// The process holding an open row (none once finished or released).
    pub owner: Option<String>,
    /// When a post of this slot was first attempted, by any generation.
    pub post_started_at: Option<DateTime<Utc>>,
    /// Every generation so far recorded its post attempts (none held by a version that
    /// predates the record): with no `post_started_at`, nothing was ever posted.
    pub post_attempts_known: bool,
}

impl RunRecord {
    /// Whether a post of this slot may exist in Slack: only then must a recovery look
    /// for it there before running the slot again.
    pub fn may_have_posted(&self) -> bool {
        self.post_started_at.is_some() || self.summary_ts.is_some() || !self.post_attempts_known
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process owns the slot now and must run it.
    Won,
    /// Another run (this process earlier, another process, or a run before a crash) has it.
    Taken(Box<RunRecord>),
}

/// A fencing token: which process holds a slot, and which generation of the row (every
/// takeover increments it). State changes and posts check it, so a process that paused
/// past its lease cannot act on a slot another process has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub owner: String,
    pub generation: u32,
}

impl Fence {
    /// The fence of a slot `owner` just claimed: a claimed row starts at generation 1.
    pub fn first(owner: &str) -> Self {
        Self {
            owner: owner.to_string(),
            generation: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger could not be opened or reached at start: what, why, and what to do.
    #[error("the run ledger {ledger} cannot be used: {detail}. {advice}")]
    Open {
        ledger: String,
        detail: String,
        advice: String,
    },
    #[error("the run ledger (SQLite) failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the run ledger (PostgreSQL) failed: {0}")]
    Postgres(String),
    /// The database did not answer in time, or no connection could be made.
    #[error("the run ledger (PostgreSQL) is unavailable: {0}")]
    Unavailable(String),
    #[error("the run ledger's schema could not be brought up to date: {0}")]
    Migration(String),
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

impl LedgerError {
    /// The database is away for now (restarting, failing over, busy): trying the same
    /// statement again later may work.
    pub fn is_transient(&self) -> bool {
        match self {
            LedgerError::Unavailable(_) => true,
            LedgerError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// One value a statement binds. The same statement runs on both databases, so values
/// carry the column type PostgreSQL checks (`INTEGER` is 32-bit there).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(Option<i32>),
    BigInt(Option<i64>),
}

/// One value a query read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    fn text(&self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(t.clone()),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Null => None,
        }
    }

    fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Text(t) => t.parse().ok(),
            Cell::Null => None,
        }
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        self.text().as_deref().and_then(parse_time)
    }
}

fn text(value: impl Into<String>) -> Param {
    Param::Text(Some(value.into()))
}

fn int(value: u32) -> Param {
    Param::Int(Some(i32::try_from(value).unwrap_or(i32::MAX)))
}

/// The slot key as `?1`…`?3`.
fn key_params(key: &SlotKey) -> Vec<Param> {
    vec![
        text(&key.report),
        int(key.schedule),
        text(slot_text(key.slot)),
    ]
}

/// The fence as the optional owner / generation a fenced statement binds.
fn fence_params(fence: Option<&Fence>) -> [Param; 2] {
    [
        Param::Text(fence.map(|f| f.owner.clone())),
        Param::Int(fence.map(|f| i32::try_from(f.generation).unwrap_or(i32::MAX))),
    ]
}

/// Which database holds the ledger.
enum Backend {
    Sqlite(sqlite::SqliteLedger),
    Postgres(postgres::PostgresLedger),
}

/// Where runs are recorded: a SQLite file or a PostgreSQL database.
pub struct Ledger {
    backend: Backend,
}

/// `WHERE` for one slot's row.
const KEY: &str = "report = ?1 AND schedule = ?2 AND slot = ?3";

const COLUMNS: &str = "report, schedule, slot, state, attempts, error, channel, ts, claimed_at, started_at, finished_at, rows, summary_ts, owner, post_started_at, tracked_generation, bytes, permalink";

/// Every column, for copying a ledger's history (`kpibot ledger migrate`), with whether
/// each is an integer.
const ALL_COLUMNS: [(&str, bool); 19] = [
    ("report", false),
    ("schedule", true),
    ("slot", false),
    ("state", false),
    ("attempts", true),
    ("claimed_at", false),
    ("started_at", false),
    ("finished_at", false),
    ("error", false),
    ("channel", false),
    ("ts", false),
    ("rows", true),
    ("bytes", true),
    ("owner", false),
    ("lease_until", false),
    ("summary_ts", false),
    ("post_started_at", false),
    ("tracked_generation", true),
    ("permalink", false),
];

const SPEND_COLUMNS: [(&str, bool); 4] = [
    ("payer", false),
    ("day", false),
    ("bytes", true),
    ("queries", true),
];

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Event times (claimed, started, finished, lease) to the millisecond; one fixed format so
/// that text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Ledger {
    /// Opens (creating if needed) a SQLite ledger file, its schema brought up to date.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::SqliteLedger::open(path)?),
        })
    }

    /// Connects to a PostgreSQL ledger (`postgres://…`), its schema brought up to date.
    pub async fn postgres(url: &str, settings: &LedgerSettings) -> Result<Self, LedgerError> {
        Ok(Self {
            backend: Backend::Postgres(postgres::PostgresLedger::connect(url, settings).await?),
        })
    }

    /// Checks the ledger the settings name can be reached and written, creating and
    /// changing nothing on PostgreSQL (for `config --check`).
    pub async fn probe(settings: &LedgerSettings) -> Result<(), LedgerError> {
        match &settings.url {
            Some(url) => postgres::PostgresLedger::probe(url.expose(), settings).await,
            None => Ok(()),
        }
    }

    /// The ledger the settings name: PostgreSQL when `url` is set, else the SQLite file.
    pub async fn from_settings(settings: &LedgerSettings) -> Result<Self, LedgerError> {
        match &settings.url {
            Some(url) => Self::postgres(url.expose(), settings).await,
            None => Self::open(&settings.path),
        }
    }

    /// The ledger the settings name, opened so that nothing can be written through it
    /// and nothing is created or migrated: None when the SQLite file does not exist yet
    /// (no run recorded). For pages that show runs (`kpibot studio`).
    pub fn read_only(settings: &LedgerSettings) -> Result<Option<Self>, LedgerError> {
        let backend = match &settings.url {
            Some(url) => {
                Backend::Postgres(postgres::PostgresLedger::read_only(url.expose(), settings)?)
            }
            None if !settings.path.exists() => return Ok(None),
            None => Backend::Sqlite(sqlite::SqliteLedger::open_read_only(&settings.path)?),
        };
        Ok(Some(Self { backend }))
    }

    /// Which ledger this is, for logs (a URL's password is never shown).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(ledger) => ledger.describe(),
            Backend::Postgres(ledger) => ledger.describe(),
        }
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, LedgerError> {
        match &self.backend {
            Backend::Sqlite(ledger) => ledger.execute(sql, params).await,
            Backend::Postgres(ledger) => ledger.execute(sql, params).await,
        }
    }

    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(ledger) => ledger.query(sql, params).await,
            Backend::Postgres(ledger) => ledger.query(sql, params).await,
        }
    }

    /// Claims a slot before running it. Exactly one claimant wins, across processes: the
    /// claim is one `INSERT … ON CONFLICT DO NOTHING`. Idempotent for a retry with the
    /// same `now` and owner: when the database applied an insert whose answer was lost
    /// (a restart mid-statement), the retry finds its own row and still wins — otherwise
    /// that row would sit claimed, renewed by its owner and run by no one.
    pub async fn claim(
        &self,
        key: &SlotKey,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Claim, LedgerError> {
        let mut params = key_params(key);
        params.extend([
            text(time_text(now)),
            text(&lease.owner),
            text(time_text(lease.until)),
        ]);
        let inserted = self
            .execute(
                "INSERT INTO runs (report, schedule, slot, state, claimed_at, owner, lease_until, tracked_generation)
                 VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, ?6, 1)
                 ON CONFLICT (report, schedule, slot) DO NOTHING",
                &params,
            )
            .await?;
        if inserted == 1 {
            return Ok(Claim::Won);
        }
        let record = self.get(key).await?.ok_or_else(|| not_claimed(key))?;
        if self.is_own_retry(&record, lease, now, 1) {
            self.refresh_lease(key, lease, now, 1).await?;
            return Ok(Claim::Won);
        }
        Ok(Claim::Taken(Box::new(record)))
    }

    /// Whether `record` is what this owner's own claim or takeover at `now` wrote (its
    /// answer lost, the statement tried again).
    fn is_own_retry(
        &self,
        record: &RunRecord,
        lease: &Lease,
        now: DateTime<Utc>,
        generation: u32,
    ) -> bool {
        record.state == RunState::Claimed
            && record.attempts == generation
            && record.owner.as_deref() == Some(lease.owner.as_str())
            && record.claimed_at.map(time_text) == Some(time_text(now))
    }

    /// Gives the row this owner claimed at `claimed_at` (generation `generation`) the
    /// lease of the latest try: the first try's may have lapsed meanwhile.
    async fn refresh_lease(
        &self,
        key: &SlotKey,
        lease: &Lease,
        claimed_at: DateTime<Utc>,
        generation: u32,
    ) -> Result<(), LedgerError> {
        let mut params = key_params(key);
        params.extend([
            text(time_text(lease.until)),
            text(&lease.owner),
            int(generation),
            text(time_text(claimed_at)),
        ]);
        self.execute(
            "UPDATE runs SET lease_until = ?4
             WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state = 'claimed'
               AND owner = ?5 AND attempts = ?6 AND claimed_at = ?7",
            &params,
        )
        .await?;
        Ok(())
    }

    /// Takes over an open slot whose lease has run out (its process died), as found with
    /// `attempts` tries so far; the takeover is the next generation, and its fence is
    /// returned. Only one process can win this. The caller must then make sure the post
    /// does not exist already before running it. Idempotent for a retry with the same
    /// `now` and owner, like [`Ledger::claim`].
    pub async fn reclaim(
        &self,
        key: &SlotKey,
        lease: &Lease,
        now: DateTime<Utc>,
        attempts: u32,
    ) -> Result<Option<Fence>, LedgerError> {
        let generation = attempts.saturating_add(1);
        let mut params = key_params(key);
        params.extend([
            text(time_text(now)),
            text(&lease.owner),
            text(time_text(lease.until)),
            int(attempts),
        ]);
        let changed = self
            .execute(
                "UPDATE runs SET state = 'claimed', attempts = attempts + 1, claimed_at = ?4,
                        error = NULL, owner = ?5, lease_until = ?6,
                        tracked_generation = CASE WHEN tracked_generation = attempts THEN attempts + 1 END
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND attempts = ?7
                   AND state IN ('claimed', 'running') AND (lease_until IS NULL OR lease_until < ?4)",
                &params,
            )
            .await?;
        let fence = Fence {
            owner: lease.owner.clone(),
            generation,
        };
        if changed == 1 {
            return Ok(Some(fence));
        }
        let Some(record) = self.get(key).await? else {
            return Ok(None);
        };
        if self.is_own_retry(&record, lease, now, generation) {
            self.refresh_lease(key, lease, now, generation).await?;
            return Ok(Some(fence));
        }
        Ok(None)
    }

    /// Lets go of an open row `fence` holds until `retry_at`: no process holds it, and any
    /// may take it over (`reclaim`) after that time. For a slot whose post could not be
    /// confirmed yet, or a run that could not start.
    pub async fn release(
        &self,
        key: &SlotKey,
        fence: &Fence,
        retry_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.fenced_update(
            key,
            "owner = NULL, lease_until = ?4",
            vec![text(time_text(retry_at))],
            Some(fence),
        )
        .await
    }

    /// Extends the lease of one open row `fence` holds, until `until`, if it has not run
    /// out at `now`; says whether it did. Only runs in flight are renewed (a row whose run
    /// ended without recording lapses and is recovered), and a lapsed lease is never
    /// revived: the row may be taken over already.
    pub async fn renew(
        &self,
        key: &SlotKey,
        fence: &Fence,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = key_params(key);
        params.extend([text(time_text(until)), text(time_text(now))]);
        params.extend(fence_params(Some(fence)));
        let renewed = self
            .execute(
                "UPDATE runs SET lease_until = ?4
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')
                   AND lease_until >= ?5 AND owner = ?6 AND attempts = ?7",
                &params,
            )
            .await?;
        Ok(renewed == 1)
    }

    /// Open rows whose lease ran out: their process died mid-run. Oldest slot first.
    pub async fn abandoned_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, LedgerError> {
        self.select(
            "WHERE state IN ('claimed', 'running') AND (lease_until IS NULL OR lease_until < ?1)
             ORDER BY slot",
            &[text(time_text(now))],
        )
        .await
    }

    /// What the ledger knows about a schedule: its first and last slot, and every slot
    /// with a row since `since`.
    pub async fn slot_history(
        &self,
        report: &str,
        schedule: u32,
        since: DateTime<Utc>,
    ) -> Result<SlotHistory, LedgerError> {
        let bounds = self
            .query(
                "SELECT MIN(slot), MAX(slot) FROM runs WHERE report = ?1 AND schedule = ?2",
                &[text(report), int(schedule)],
            )
            .await?;
        let (first, last) = match bounds.first().map(Vec::as_slice) {
            Some([first, last]) => (first.time(), last.time()),
            _ => (None, None),
        };
        let recorded = self
            .query(
                "SELECT slot FROM runs WHERE report = ?1 AND schedule = ?2 AND slot >= ?3",
                &[text(report), int(schedule), text(slot_text(since))],
            )
            .await?
            .iter()
            .filter_map(|row| row.first().and_then(Cell::time))
            .collect();
        Ok(SlotHistory {
            first,
            last,
            recorded,
        })
    }

    /// The most recent runs (of one report, or all), newest slot first.
    pub async fn history(
        &self,
        report: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        self.select(
            "WHERE (CAST(?1 AS TEXT) IS NULL OR report = ?1) ORDER BY slot DESC, report LIMIT ?2",
            &[
                Param::Text(report.map(str::to_string)),
                Param::BigInt(Some(i64::try_from(limit).unwrap_or(i64::MAX))),
            ],
        )
        .await
    }

    /// Keeps Slack's permalink for a run's post, so it is asked for once, not per
    /// listing. Unfenced: the link describes a post already made, whoever made it.
    pub async fn set_permalink(&self, key: &SlotKey, permalink: &str) -> Result<(), LedgerError> {
        let mut params = key_params(key);
        params.push(text(permalink));
        self.execute(
            &format!("UPDATE runs SET permalink = ?4 WHERE {KEY}"),
            &params,
        )
        .await?;
        Ok(())
    }

    /// Whether a write can be made now (for `/readyz`): on PostgreSQL, also that the
    /// server is a primary (after a failover, a connection may reach a read-only one).
    pub async fn check_writable(&self) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(ledger) => ledger.check_writable().await,
            Backend::Postgres(ledger) => ledger.check_writable().await,
        }
    }

    async fn select(
        &self,
        condition: &str,
        params: &[Param],
    ) -> Result<Vec<RunRecord>, LedgerError> {
        let rows = self
            .query(&format!("SELECT {COLUMNS} FROM runs {condition}"), params)
            .await?;
        Ok(rows.iter().filter_map(|row| record_from_row(row)).collect())
    }

    pub async fn mark_running(&self, key: &SlotKey, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.mark_running_where(key, None, now).await
    }

    /// Marks the slot running only if `fence` still holds it.
    pub async fn mark_running_fenced(
        &self,
        key: &SlotKey,
        fence: &Fence,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.mark_running_where(key, Some(fence), now).await
    }

    async fn mark_running_where(
        &self,
        key: &SlotKey,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.fenced_update(
            key,
            "state = 'running', started_at = ?4",
            vec![text(time_text(now))],
            fence,
        )
        .await
    }

    /// Thread mode, step one: the summary is in the channel as `ts`; the chart's reply in
    /// its thread is still to be posted. Fenced like every other change.
    pub async fn record_summary(
        &self,
        key: &SlotKey,
        fence: &Fence,
        ts: &str,
    ) -> Result<(), LedgerError> {
        self.fenced_update(key, "summary_ts = ?4", vec![text(ts)], Some(fence))
            .await
    }

    /// Whether `fence` may post the slot now: same owner and generation, the row open and
    /// its lease running until `until` at least. Asked right before every post attempt; a
    /// yes is recorded (`post_started_at`, the first one kept), so a recovery knows whether
    /// any post may exist before it looks in Slack.
    pub async fn begin_post(
        &self,
        key: &SlotKey,
        fence: &Fence,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = key_params(key);
        params.extend(fence_params(Some(fence)));
        params.extend([text(time_text(until)), text(time_text(now))]);
        let changed = self
            .execute(
                "UPDATE runs SET post_started_at = COALESCE(post_started_at, ?7)
                 WHERE report = ?1 AND schedule = ?2 AND slot = ?3 AND state IN ('claimed', 'running')
                   AND owner = ?4 AND attempts = ?5 AND lease_until >= ?6",
                &params,
            )
            .await?;
        Ok(changed == 1)
    }

    /// Takes `channel`'s next turn to post, shared by every process on this ledger: the
    /// returned time is `now` or the end of the interval after the turn taken before,
    /// whichever is later, and the next turn starts `interval` after it. One statement.
    pub async fn take_channel_turn(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Result<DateTime<Utc>, LedgerError> {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "INSERT INTO channel_turns (channel, next_ms)
                 VALUES (?1, CAST(?2 AS BIGINT) + CAST(?3 AS BIGINT))
                 ON CONFLICT (channel) DO UPDATE SET next_ms = CAST(?3 AS BIGINT) +
                     (CASE WHEN channel_turns.next_ms > CAST(?2 AS BIGINT)
                           THEN channel_turns.next_ms ELSE CAST(?2 AS BIGINT) END)
                 RETURNING next_ms - CAST(?3 AS BIGINT)",
                &[
                    text(channel),
                    Param::BigInt(Some(now.timestamp_millis())),
                    Param::BigInt(Some(interval_ms)),
                ],
            )
            .await?;
        let turn_ms = rows
            .first()
            .and_then(|row| row.first())
            .and_then(Cell::int)
            .ok_or_else(|| {
                LedgerError::Unavailable("the channel's turn was not returned".into())
            })?;
        Ok(DateTime::from_timestamp_millis(turn_ms).unwrap_or(now))
    }

    /// Records how a run ended. A finished row never changes again.
    pub async fn finish(
        &self,
        key: &SlotKey,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish_where(key, None, outcome, now).await
    }

    /// Records how a run ended, only if `fence` still holds the slot: a process that lost
    /// its slot to another cannot overwrite what the new holder records.
    pub async fn finish_fenced(
        &self,
        key: &SlotKey,
        fence: &Fence,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish_where(key, Some(fence), outcome, now).await
    }

    async fn finish_where(
        &self,
        key: &SlotKey,
        fence: Option<&Fence>,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let (state, error, channel, ts, rows, bytes) = match outcome {
            Outcome::Delivered {
                channel,
                ts,
                rows,
                bytes,
            } => (
                RunState::Delivered,
                None,
                Some(channel),
                Some(ts),
                Some(*rows),
                *bytes,
            ),
            Outcome::Failed { error } => (RunState::Failed, Some(error), None, None, None, None),
            Outcome::Skipped { reason } => {
                (RunState::Skipped, Some(reason), None, None, None, None)
            }
            Outcome::NoData { channel, ts, bytes } => (
                RunState::NoData,
                None,
                Some(channel),
                Some(ts),
                Some(0),
                *bytes,
            ),
        };
        let as_bigint =
            |n: Option<u64>| Param::BigInt(n.map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
        let values = vec![
            text(state.as_str()),
            text(time_text(now)),
            Param::Text(error.cloned()),
            Param::Text(channel.cloned()),
            Param::Text(ts.cloned()),
            as_bigint(rows),
            as_bigint(bytes),
        ];
        let recorded = self
            .fenced_update(
                key,
                "state = ?4, finished_at = ?5, error = ?6, channel = ?7, ts = ?8, rows = ?9, bytes = ?10",
                values,
                fence,
            )
            .await;
        match (recorded, fence) {
            // The same finish tried again after its answer was lost: it is recorded.
            (Err(LedgerError::AlreadyFinished { state: found, .. }), Some(fence))
                if found == state
                    && self.get(key).await?.is_some_and(|r| {
                        r.attempts == fence.generation
                            && r.owner.as_deref() == Some(fence.owner.as_str())
                    }) =>
            {
                Ok(())
            }
            (recorded, _) => recorded,
        }
    }

    /// Records a slot that will not run (e.g. older than the catch-up window) without a
    /// claim, unless it already has a row.
    pub async fn skip(
        &self,
        key: &SlotKey,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = key_params(key);
        params.extend([text(time_text(now)), text(reason)]);
        let inserted = self
            .execute(
                "INSERT INTO runs (report, schedule, slot, state, claimed_at, finished_at, error)
                 VALUES (?1, ?2, ?3, 'skipped', ?4, ?4, ?5) ON CONFLICT (report, schedule, slot) DO NOTHING",
                &params,
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Updates one open row: `set` assigns from `?4` on (bound to `values`), and with a
    /// `fence`, only if that owner and generation still hold the row. When it changed
    /// nothing, says why (no row, finished, or held by another generation).
    async fn fenced_update(
        &self,
        key: &SlotKey,
        set: &str,
        values: Vec<Param>,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let owner = 4 + values.len();
        let generation = owner + 1;
        let sql = format!(
            "UPDATE runs SET {set}
             WHERE {KEY} AND state IN ('claimed', 'running')
               AND (CAST(?{owner} AS TEXT) IS NULL OR (owner = ?{owner} AND attempts = ?{generation}))"
        );
        let mut params = key_params(key);
        params.extend(values);
        params.extend(fence_params(fence));
        self.transition(key, &sql, &params).await
    }

    /// Runs a one-row update; when it changed nothing, says why (no row, or finished).
    async fn transition(
        &self,
        key: &SlotKey,
        sql: &str,
        params: &[Param],
    ) -> Result<(), LedgerError> {
        if self.execute(sql, params).await? == 1 {
            return Ok(());
        }
        match self.get(key).await? {
            None => Err(not_claimed(key)),
            Some(record) => Err(LedgerError::AlreadyFinished {
                report: key.report.clone(),
                slot: slot_text(key.slot),
                state: record.state,
            }),
        }
    }

    pub async fn get(&self, key: &SlotKey) -> Result<Option<RunRecord>, LedgerError> {
        let condition = format!("WHERE {KEY}");
        Ok(self
            .select(&condition, &key_params(key))
            .await?
            .into_iter()
            .next())
    }

    /// Rows left claimed or running (by a crash, or in flight now), oldest slot first.
    pub async fn open_runs(&self) -> Result<Vec<RunRecord>, LedgerError> {
        self.select("WHERE state IN ('claimed', 'running') ORDER BY slot", &[])
            .await
    }

    /// Copies every row of `from` that this ledger does not have yet (`kpibot ledger
    /// migrate`): history, leases and all. Returns (rows read, rows copied).
    pub async fn copy_from(&self, from: &Ledger) -> Result<(usize, usize), LedgerError> {
        let (runs_read, runs_copied) = self
            .copy_table(from, "runs", &ALL_COLUMNS, "report, schedule, slot", "slot")
            .await?;
        // Today's spend moves too, so no budget starts the day over on the new ledger.
        let (spend_read, spend_copied) = self
            .copy_table(from, "warehouse_spend", &SPEND_COLUMNS, "payer, day", "day")
            .await?;
        Ok((runs_read + spend_read, runs_copied + spend_copied))
    }

    /// Copies the alerts' rounds and notices the same way (their state and what was sent
    /// carry over, so no notice goes twice after the move). Returns (read, copied).
    pub async fn copy_alerts_from(&self, from: &Ledger) -> Result<(usize, usize), LedgerError> {
        let (rounds_read, rounds_copied) = self
            .copy_table(
                from,
                "alert_rounds",
                &alerts::ROUND_TABLE_COLUMNS,
                "alert, evaluated_at",
                "evaluated_at",
            )
            .await?;
        let (notices_read, notices_copied) = self
            .copy_table(
                from,
                "alert_notices",
                &alerts::NOTICE_TABLE_COLUMNS,
                "alert, evaluated_at, idx",
                "evaluated_at",
            )
            .await?;
        Ok((rounds_read + notices_read, rounds_copied + notices_copied))
    }

    /// Copies every row of `table` (columns with whether each is an integer; `rows`,
    /// `bytes`, `queries` and times in `…_ms` are 64-bit) that is not here yet, by its key `conflict`.
    async fn copy_table(
        &self,
        from: &Ledger,
        table: &str,
        columns: &[(&str, bool)],
        conflict: &str,
        order: &str,
    ) -> Result<(usize, usize), LedgerError> {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let rows = from
            .query(
                &format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", ")),
                &[],
            )
            .await?;
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({conflict}) DO NOTHING",
            names.join(", "),
            placeholders.join(", ")
        );
        let mut copied = 0;
        for row in &rows {
            let params: Vec<Param> = row
                .iter()
                .zip(columns)
                .map(|(cell, (name, integer))| match (integer, *name) {
                    (true, name)
                        if name.ends_with("_ms")
                            || matches!(name, "rows" | "bytes" | "queries") =>
                    {
                        Param::BigInt(cell.int())
                    }
                    (true, _) => {
                        Param::Int(cell.int().map(|i| i32::try_from(i).unwrap_or(i32::MAX)))
                    }
                    (false, _) => Param::Text(cell.text()),
                })
                .collect();
            copied += self.execute(&insert, &params).await? as usize;
        }
        Ok((rows.len(), copied))
    }
}

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

/// A row of [`COLUMNS`]; `None` for one written by something else (an unknown state).
fn record_from_row(row: &[Cell]) -> Option<RunRecord> {
    let [
        report,
        schedule,
        slot,
        state,
        attempts,
        error,
        channel,
        ts,
        claimed_at,
        started_at,
        finished_at,
        rows,
        summary_ts,
        owner,
        post_started_at,
        tracked_generation,
        bytes,
        permalink,
    ] = row
    else {
        return None;
    };
    let attempts = u32::try_from(attempts.int()?).unwrap_or(0);
    Some(RunRecord {
        key: SlotKey {
            report: report.text()?,
            schedule: u32::try_from(schedule.int()?).ok()?,
            slot: slot.time()?,
        },
        state: RunState::parse(&state.text()?)?,
        attempts,
        error: error.text(),
        channel: channel.text(),
        ts: ts.text(),
        claimed_at: claimed_at.time(),
        started_at: started_at.time(),
        finished_at: finished_at.time(),
        rows: rows.int().map(|r| r.max(0) as u64),
        bytes: bytes.int().map(|b| b.max(0) as u64),
        summary_ts: summary_ts.text(),
        permalink: permalink.text(),
        owner: owner.text(),
        post_started_at: post_started_at.time(),
        post_attempts_known: tracked_generation.int() == Some(i64::from(attempts)),
    })
}

/// How long a statement may wait for the database before the ledger reports it
/// unavailable (PostgreSQL) or busy (SQLite).
pub(crate) fn statement_timeout(settings: &LedgerSettings) -> Duration {
    Duration::from_millis(settings.timeout_ms)
}

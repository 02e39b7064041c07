//! The ledger's alert statements: evaluation rounds (an alert's new state and the notices
//! it decided, written in one statement) and each notice's claim and record, so a notice
//! is posted once across restarts and replicas, like a report's slot.

use chrono::{DateTime, Utc};

use super::{Cell, Lease, Ledger, LedgerError, Param, int, parse_time, text, time_text};

/// One evaluation round as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRound {
    pub alert: String,
    pub evaluated_at: DateTime<Utc>,
    /// The round as JSON (`alerts::engine::Round`).
    pub round: String,
    pub firing: u32,
    pub notices: u32,
    pub done: bool,
    /// Bytes the evaluation's queries scanned, where the warehouse says (BigQuery).
    pub bytes: Option<u64>,
}

/// What claiming a notice found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeClaim {
    /// This process sends it. `takeover`: an earlier claimant died holding it (or let it
    /// go), so it may already be in Slack: look before posting. `channel`: where that
    /// claimant was posting, if it got that far; `posted_ts`: the message it posted, when
    /// only a step after the post is left (a resolution whose root edit failed).
    /// `attempt`: 1 for the first claim, then one more for each takeover.
    Won {
        takeover: bool,
        channel: Option<String>,
        posted_ts: Option<String>,
        attempt: u32,
    },
    /// Already posted.
    Posted { channel: String, ts: String },
    /// Failed for good earlier (the owner was told).
    Failed,
    /// Another live process is sending it now.
    Held,
}

/// A notice's key: its round and its place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeKey {
    pub alert: String,
    pub evaluated_at: DateTime<Utc>,
    pub index: u32,
}

fn round_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn notice_params(key: &NoticeKey) -> Vec<Param> {
    vec![
        text(&key.alert),
        text(round_time(key.evaluated_at)),
        int(key.index),
    ]
}

/// Every column of the two tables, with whether each is an integer, for copying a
/// ledger (`kpibot ledger migrate`).
pub(super) const ROUND_TABLE_COLUMNS: [(&str, bool); 9] = [
    ("alert", false),
    ("evaluated_at", false),
    ("round", false),
    ("firing", true),
    ("notices", true),
    ("owner", false),
    ("created_at", false),
    ("done_at", false),
    ("bytes", true),
];
pub(super) const NOTICE_TABLE_COLUMNS: [(&str, bool); 12] = [
    ("alert", false),
    ("evaluated_at", false),
    ("idx", true),
    ("kind", false),
    ("state", false),
    ("attempts", true),
    ("owner", false),
    ("lease_until", false),
    ("channel", false),
    ("ts", false),
    ("error", false),
    ("updated_at", false),
];

const ROUND_COLUMNS: &str = "alert, evaluated_at, round, firing, notices, done_at, bytes";

fn stored_round(row: &[Cell]) -> Option<StoredRound> {
    Some(StoredRound {
        alert: row.first()?.text()?,
        evaluated_at: parse_time(&row.get(1)?.text()?)?,
        round: row.get(2)?.text()?,
        firing: row.get(3)?.int()? as u32,
        notices: row.get(4)?.int()? as u32,
        done: row.get(5).and_then(Cell::text).is_some(),
        bytes: row.get(6).and_then(Cell::int).map(|b| b.max(0) as u64),
    })
}

impl Ledger {
    /// Records a round, computed from the state of the round at `base` (`None`: the
    /// alert's first), unless one exists for this alert and time or a round newer than
    /// `base` was recorded meanwhile (by another process, from the same state: two rounds
    /// from one state would fork it). `false` when not recorded.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_alert_round(
        &self,
        alert: &str,
        evaluated_at: DateTime<Utc>,
        base: Option<DateTime<Utc>>,
        round: &str,
        firing: u32,
        notices: u32,
        bytes: Option<u64>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let done = (notices == 0).then(|| time_text(now));
        let inserted = self
            .execute(
                "INSERT INTO alert_rounds (alert, evaluated_at, round, firing, notices, owner, created_at, done_at, bytes)
                 SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS INTEGER),
                        CAST(?5 AS INTEGER), CAST(?6 AS TEXT), CAST(?7 AS TEXT), CAST(?8 AS TEXT),
                        CAST(?10 AS BIGINT)
                 WHERE NOT EXISTS (
                     SELECT 1 FROM alert_rounds WHERE alert = ?1 AND evaluated_at > CAST(?9 AS TEXT))
                 ON CONFLICT (alert, evaluated_at) DO NOTHING",
                &[
                    text(alert),
                    text(round_time(evaluated_at)),
                    text(round),
                    int(firing),
                    int(notices),
                    text(owner),
                    text(time_text(now)),
                    Param::Text(done),
                    text(base.map(round_time).unwrap_or_default()),
                    Param::BigInt(bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX))),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Claims the evaluation of this alert at this time before its query runs: `true`
    /// when this process is to evaluate it (a new claim, a lapsed one taken over, or its
    /// own claim asked again), `false` while another process's claim holds.
    pub async fn claim_alert_round(
        &self,
        alert: &str,
        evaluated_at: DateTime<Utc>,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let params = [
            text(alert),
            text(round_time(evaluated_at)),
            text(&lease.owner),
            text(time_text(lease.until)),
            text(time_text(now)),
        ];
        let inserted = self
            .execute(
                "INSERT INTO alert_round_claims (alert, evaluated_at, owner, lease_until)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (alert, evaluated_at) DO NOTHING",
                &params[..4],
            )
            .await?;
        if inserted == 1 {
            return Ok(true);
        }
        let taken = self
            .execute(
                "UPDATE alert_round_claims SET owner = ?3, lease_until = ?4
                 WHERE alert = ?1 AND evaluated_at = ?2 AND (owner = ?3 OR lease_until < ?5)",
                &params,
            )
            .await?;
        Ok(taken == 1)
    }

    /// Lets go of this process's claim on a round once it is done with it (recorded or
    /// not): a process waiting for the round finds it, or takes the claim over at once.
    pub async fn release_alert_round(
        &self,
        alert: &str,
        evaluated_at: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE alert_round_claims SET lease_until = ?4
             WHERE alert = ?1 AND evaluated_at = ?2 AND owner = ?3",
            &[
                text(alert),
                text(round_time(evaluated_at)),
                text(owner),
                text(time_text(now)),
            ],
        )
        .await?;
        Ok(())
    }

    /// The round of this alert at this time, if recorded.
    pub async fn alert_round(
        &self,
        alert: &str,
        evaluated_at: DateTime<Utc>,
    ) -> Result<Option<StoredRound>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROUND_COLUMNS} FROM alert_rounds WHERE alert = ?1 AND evaluated_at = ?2"
                ),
                &[text(alert), text(round_time(evaluated_at))],
            )
            .await?;
        Ok(rows.iter().find_map(|r| stored_round(r)))
    }

    /// The newest round of each alert (its current state), or of one.
    pub async fn latest_alert_rounds(
        &self,
        alert: Option<&str>,
    ) -> Result<Vec<StoredRound>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROUND_COLUMNS} FROM alert_rounds r
                     WHERE (CAST(?1 AS TEXT) IS NULL OR alert = ?1)
                       AND evaluated_at = (SELECT MAX(evaluated_at) FROM alert_rounds x WHERE x.alert = r.alert)
                     ORDER BY alert"
                ),
                &[Param::Text(alert.map(str::to_string))],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| stored_round(r)).collect())
    }

    /// Rounds whose notices are not all sent yet, oldest first.
    pub async fn open_alert_rounds(&self) -> Result<Vec<StoredRound>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROUND_COLUMNS} FROM alert_rounds WHERE done_at IS NULL ORDER BY evaluated_at, alert"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| stored_round(r)).collect())
    }

    /// An alert's rounds evaluated after `after`, oldest first.
    pub async fn alert_rounds_after(
        &self,
        alert: &str,
        after: DateTime<Utc>,
    ) -> Result<Vec<StoredRound>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROUND_COLUMNS} FROM alert_rounds
                     WHERE alert = ?1 AND evaluated_at > ?2 ORDER BY evaluated_at"
                ),
                &[text(alert), text(round_time(after))],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| stored_round(r)).collect())
    }

    /// The most recent rounds (of one alert, or all), newest first.
    pub async fn alert_history(
        &self,
        alert: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRound>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROUND_COLUMNS} FROM alert_rounds
                     WHERE (CAST(?1 AS TEXT) IS NULL OR alert = ?1)
                     ORDER BY evaluated_at DESC, alert LIMIT ?2"
                ),
                &[
                    Param::Text(alert.map(str::to_string)),
                    Param::BigInt(Some(i64::try_from(limit).unwrap_or(i64::MAX))),
                ],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| stored_round(r)).collect())
    }

    /// Marks a round's notices all sent.
    pub async fn finish_alert_round(
        &self,
        alert: &str,
        evaluated_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE alert_rounds SET done_at = ?3 WHERE alert = ?1 AND evaluated_at = ?2 AND done_at IS NULL",
            &[
                text(alert),
                text(round_time(evaluated_at)),
                text(time_text(now)),
            ],
        )
        .await?;
        Ok(())
    }

    /// Claims a notice before posting it: one `INSERT … ON CONFLICT DO NOTHING`, or a
    /// takeover of a claim whose lease ran out (its process died), won by one process.
    pub async fn claim_notice(
        &self,
        key: &NoticeKey,
        kind: &str,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<NoticeClaim, LedgerError> {
        let mut params = notice_params(key);
        params.extend([
            text(kind),
            text(&lease.owner),
            text(time_text(lease.until)),
            text(time_text(now)),
        ]);
        let inserted = self
            .execute(
                "INSERT INTO alert_notices (alert, evaluated_at, idx, kind, state, owner, lease_until, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'claimed', ?5, ?6, ?7)
                 ON CONFLICT (alert, evaluated_at, idx) DO NOTHING",
                &params,
            )
            .await?;
        if inserted == 1 {
            return Ok(NoticeClaim::Won {
                takeover: false,
                channel: None,
                posted_ts: None,
                attempt: 1,
            });
        }
        let rows = self
            .query(
                "SELECT state, owner, lease_until, attempts, channel, ts FROM alert_notices
                 WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3",
                &notice_params(key),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(NoticeClaim::Held);
        };
        let state = row[0].text().unwrap_or_default();
        let channel = row[4].text();
        match state.as_str() {
            "posted" => Ok(NoticeClaim::Posted {
                channel: channel.unwrap_or_default(),
                ts: row[5].text().unwrap_or_default(),
            }),
            "failed" => Ok(NoticeClaim::Failed),
            _ => {
                let expired = row[2]
                    .text()
                    .and_then(|t| parse_time(&t))
                    .is_none_or(|until| until < now);
                let own = row[1].text().as_deref() == Some(lease.owner.as_str());
                if !expired && !own {
                    return Ok(NoticeClaim::Held);
                }
                let attempts = row[3].int().unwrap_or(1);
                let mut params = notice_params(key);
                params.extend([
                    text(&lease.owner),
                    text(time_text(lease.until)),
                    text(time_text(now)),
                    int(u32::try_from(attempts).unwrap_or(u32::MAX)),
                ]);
                let taken = self
                    .execute(
                        "UPDATE alert_notices SET owner = ?4, lease_until = ?5, updated_at = ?6, attempts = attempts + 1
                         WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'claimed' AND attempts = ?7",
                        &params,
                    )
                    .await?;
                Ok(if taken == 1 {
                    NoticeClaim::Won {
                        takeover: true,
                        channel,
                        posted_ts: row[5].text(),
                        attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                    }
                } else {
                    NoticeClaim::Held
                })
            }
        }
    }

    /// Extends this owner's claim on a notice being sent; `false` when the claim is no
    /// longer its own (taken over after its lease ran out, or already settled).
    pub async fn renew_notice(
        &self,
        key: &NoticeKey,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = notice_params(key);
        params.extend([text(owner), text(time_text(until))]);
        let changed = self
            .execute(
                "UPDATE alert_notices SET lease_until = ?5
                 WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'claimed' AND owner = ?4",
                &params,
            )
            .await?;
        Ok(changed == 1)
    }

    /// Notes where a claimed notice is being posted (the channel's ID), before posting, so
    /// a takeover knows where to look for it.
    pub async fn note_notice_channel(
        &self,
        key: &NoticeKey,
        owner: &str,
        channel: &str,
    ) -> Result<(), LedgerError> {
        let mut params = notice_params(key);
        params.extend([text(owner), text(channel)]);
        self.execute(
            "UPDATE alert_notices SET channel = ?5
             WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'claimed' AND owner = ?4",
            &params,
        )
        .await?;
        Ok(())
    }

    /// Lets a claimed notice go with its post made but a step after it still to do (a
    /// resolution whose root edit failed): where it was posted and why it is not done are
    /// kept, and the claim lapses at once, so the next pass over open rounds takes it
    /// over and does only the step that is left. `false` if it had lost the claim.
    pub async fn hold_notice(
        &self,
        key: &NoticeKey,
        owner: &str,
        (channel, ts): (&str, &str),
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = notice_params(key);
        params.extend([
            text(owner),
            text(channel),
            text(ts),
            text(error),
            text(time_text(now)),
        ]);
        let changed = self
            .execute(
                "UPDATE alert_notices
                 SET channel = ?5, ts = ?6, error = ?7, updated_at = ?8, lease_until = ?8
                 WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'claimed' AND owner = ?4",
                &params,
            )
            .await?;
        Ok(changed == 1)
    }

    /// Records a claimed notice as posted (with where) or failed for good (with why).
    /// Fenced: only the claim's owner records it; `false` if it lost the claim.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_notice(
        &self,
        key: &NoticeKey,
        owner: &str,
        posted: Option<(&str, &str)>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let mut params = notice_params(key);
        params.extend([
            text(owner),
            text(if posted.is_some() { "posted" } else { "failed" }),
            Param::Text(posted.map(|(c, _)| c.to_string())),
            Param::Text(posted.map(|(_, t)| t.to_string())),
            Param::Text(error.map(str::to_string)),
            text(time_text(now)),
        ]);
        let changed = self
            .execute(
                "UPDATE alert_notices
                 SET state = ?5, channel = COALESCE(?6, channel), ts = ?7, error = ?8, updated_at = ?9, lease_until = NULL
                 WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'claimed' AND owner = ?4",
                &params,
            )
            .await?;
        Ok(changed == 1)
    }

    /// A notice's state (`claimed`, `posted`, `failed`), or `None` before it is claimed.
    pub async fn notice_state(&self, key: &NoticeKey) -> Result<Option<String>, LedgerError> {
        let rows = self
            .query(
                "SELECT state FROM alert_notices WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3",
                &notice_params(key),
            )
            .await?;
        Ok(rows.first().and_then(|r| r[0].text()))
    }

    /// Where a posted notice is (channel ID, ts), for replies in its thread and edits.
    pub async fn notice_post(
        &self,
        key: &NoticeKey,
    ) -> Result<Option<(String, String)>, LedgerError> {
        let rows = self
            .query(
                "SELECT channel, ts FROM alert_notices
                 WHERE alert = ?1 AND evaluated_at = ?2 AND idx = ?3 AND state = 'posted'",
                &notice_params(key),
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| Some((r[0].text()?, r[1].text()?))))
    }
}

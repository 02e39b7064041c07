//! Follows and their digests in the ledger: who follows which question, when, and one
//! row per (target, slot) digest, claimed and fenced like a report's slot so a digest is
//! sent once across restarts and replicas.

use chrono::{DateTime, Utc};

use super::{Cell, Ledger, LedgerError, Param, text};

/// One followed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// Where its digest goes: the follower's user ID (a direct message) or a channel ID.
    pub target: String,
    /// The question as the strict grammar writes it (`active_users last 7 days by role`).
    pub question: String,
    /// Who followed it (for a channel follow, who asked in the channel).
    pub person: String,
    /// A channel follow's channel name without `#` (policies may name channels), as
    /// Slack sent it when the follow was made.
    pub place: Option<String>,
    /// When it is due, as [`crate::spec::cadence::Cadence`] writes it (`daily`,
    /// `weekly:mon`).
    pub cadence: String,
    /// Minutes after local midnight.
    pub at_minute: u32,
    /// The IANA timezone its slots are on the wall clock of.
    pub timezone: String,
    /// The follower's language when they followed (`en`, `ja`); the digest uses their
    /// Slack language at send time where Slack says it.
    pub locale: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Why it is paused (access withdrawn, its report removed), said once in the digest
    /// where it paused; `None` while it is delivered.
    pub paused: Option<String>,
}

/// Which process holds a digest, and which generation of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFence {
    pub target: String,
    pub slot: DateTime<Utc>,
    pub owner: String,
    pub generation: u32,
}

/// A digest this process now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestClaim {
    pub fence: DigestFence,
    /// A post of it may have reached Slack already (an earlier holder began one): look
    /// for it before posting.
    pub may_have_posted: bool,
}

/// What claiming a digest found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestClaimed {
    /// This process holds it now and sends it.
    Won(DigestClaim),
    /// It was sent (or ended) already.
    Finished,
    /// Another process holds it and its lease runs: asked again later, it may have lapsed.
    Held,
}

/// How a digest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestOutcome {
    Posted {
        channel: String,
        ts: String,
        questions: u32,
    },
    /// Nothing to send (every question paused or gone, and said already).
    Empty,
    Failed {
        error: String,
    },
}

fn millis(time: DateTime<Utc>) -> Param {
    Param::BigInt(Some(time.timestamp_millis()))
}

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn int(value: u32) -> Param {
    Param::Int(Some(i32::try_from(value).unwrap_or(i32::MAX)))
}

/// The fence as `?1`…`?4` (the digest's row, its holder and generation), then `more`.
fn fenced<const N: usize>(fence: &DigestFence, more: [Param; N]) -> Vec<Param> {
    let mut params = vec![
        text(&fence.target),
        text(slot_text(fence.slot)),
        text(&fence.owner),
        int(fence.generation),
    ];
    params.extend(more);
    params
}

/// The follows table's columns for `kpibot ledger migrate` (with whether each is an
/// integer).
const FOLLOW_TABLE_COLUMNS: [(&str, bool); 10] = [
    ("target", false),
    ("question", false),
    ("person", false),
    ("place", false),
    ("cadence", false),
    ("at_minute", true),
    ("timezone", false),
    ("locale", false),
    ("created_ms", true),
    ("paused", false),
];

/// The digests table's columns, likewise.
const DIGEST_TABLE_COLUMNS: [(&str, bool); 13] = [
    ("target", false),
    ("slot", false),
    ("slot_ms", true),
    ("state", false),
    ("owner", false),
    ("generation", true),
    ("lease_until_ms", true),
    ("post_started_ms", true),
    ("channel", false),
    ("ts", false),
    ("questions", true),
    ("error", false),
    ("updated_ms", true),
];

const FOLLOW_COLUMNS: &str =
    "target, question, person, cadence, at_minute, timezone, locale, created_ms, paused, place";

fn follow_of(row: &[Cell]) -> Option<Follow> {
    Some(Follow {
        target: row.first()?.text()?,
        question: row.get(1)?.text()?,
        person: row.get(2)?.text()?,
        cadence: row.get(3)?.text()?,
        at_minute: u32::try_from(row.get(4)?.int()?).ok()?,
        timezone: row.get(5)?.text()?,
        locale: row.get(6)?.text(),
        created_at: DateTime::from_timestamp_millis(row.get(7)?.int()?)?,
        paused: row.get(8)?.text(),
        place: row.get(9).and_then(Cell::text),
    })
}

impl Ledger {
    /// Copies the follows and the digests sent or begun (`kpibot ledger migrate`), so
    /// no one stops receiving what they follow and no digest goes twice after the move.
    /// Returns (rows read, rows copied).
    pub async fn copy_follows_from(&self, from: &Ledger) -> Result<(usize, usize), LedgerError> {
        let (follows_read, follows_copied) = self
            .copy_table(
                from,
                "follows",
                &FOLLOW_TABLE_COLUMNS,
                "target, question",
                "target, question",
            )
            .await?;
        let (digests_read, digests_copied) = self
            .copy_table(
                from,
                "digests",
                &DIGEST_TABLE_COLUMNS,
                "target, slot",
                "slot_ms, target",
            )
            .await?;
        Ok((follows_read + digests_read, follows_copied + digests_copied))
    }

    /// Follows a question, or — followed already at this target — changes when. Its
    /// pause, if any, is lifted: following again is asking again. One statement.
    pub async fn add_follow(&self, follow: &Follow) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO follows (target, question, person, cadence, at_minute, timezone, locale, created_ms, paused, place)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CAST(?8 AS BIGINT), NULL, ?9)
             ON CONFLICT (target, question) DO UPDATE SET
                 person = excluded.person, cadence = excluded.cadence,
                 at_minute = excluded.at_minute, timezone = excluded.timezone,
                 locale = excluded.locale, created_ms = excluded.created_ms,
                 place = excluded.place, paused = NULL",
            &[
                text(&follow.target),
                text(&follow.question),
                text(&follow.person),
                text(&follow.cadence),
                int(follow.at_minute),
                text(&follow.timezone),
                Param::Text(follow.locale.clone()),
                millis(follow.created_at),
                Param::Text(follow.place.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    /// Stops following; `false` when it was not followed.
    pub async fn remove_follow(&self, target: &str, question: &str) -> Result<bool, LedgerError> {
        let removed = self
            .execute(
                "DELETE FROM follows WHERE target = ?1 AND question = ?2",
                &[text(target), text(question)],
            )
            .await?;
        Ok(removed > 0)
    }

    /// Every follow (of `target`, when given), oldest first within a target.
    pub async fn follows(&self, target: Option<&str>) -> Result<Vec<Follow>, LedgerError> {
        let rows = match target {
            Some(target) => {
                self.query(
                    &format!(
                        "SELECT {FOLLOW_COLUMNS} FROM follows WHERE target = ?1
                         ORDER BY created_ms, question"
                    ),
                    &[text(target)],
                )
                .await?
            }
            None => {
                self.query(
                    &format!(
                        "SELECT {FOLLOW_COLUMNS} FROM follows ORDER BY target, created_ms, question"
                    ),
                    &[],
                )
                .await?
            }
        };
        Ok(rows.iter().filter_map(|row| follow_of(row)).collect())
    }

    /// How many follows there are in all.
    pub async fn count_follows(&self) -> Result<u64, LedgerError> {
        let rows = self.query("SELECT COUNT(*) FROM follows", &[]).await?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .and_then(Cell::int)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// Every follow a person made (their own and the channel follows they asked for).
    pub async fn follows_by(&self, person: &str) -> Result<Vec<Follow>, LedgerError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {FOLLOW_COLUMNS} FROM follows WHERE person = ?1
                     ORDER BY created_ms, target, question"
                ),
                &[text(person)],
            )
            .await?;
        Ok(rows.iter().filter_map(|row| follow_of(row)).collect())
    }

    /// Pauses a follow with the reason said once, or (`None`) resumes it.
    pub async fn set_follow_paused(
        &self,
        target: &str,
        question: &str,
        paused: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE follows SET paused = ?3 WHERE target = ?1 AND question = ?2",
            &[
                text(target),
                text(question),
                Param::Text(paused.map(str::to_string)),
            ],
        )
        .await?;
        Ok(())
    }

    /// Claims the digest of `target` for `slot` until `lease_until`: a new row, or one
    /// whose holder's lease lapsed before it finished (taken over, its generation raised).
    pub async fn claim_digest(
        &self,
        target: &str,
        slot: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DigestClaimed, LedgerError> {
        let inserted = self
            .execute(
                "INSERT INTO digests (target, slot, slot_ms, state, owner, generation, lease_until_ms, updated_ms)
                 VALUES (?1, ?2, CAST(?6 AS BIGINT), 'claimed', ?3, 1, CAST(?4 AS BIGINT), CAST(?5 AS BIGINT))
                 ON CONFLICT (target, slot) DO NOTHING",
                &[
                    text(target),
                    text(slot_text(slot)),
                    text(owner),
                    millis(lease_until),
                    millis(now),
                    millis(slot),
                ],
            )
            .await?;
        let fence = |generation| DigestFence {
            target: target.to_string(),
            slot,
            owner: owner.to_string(),
            generation,
        };
        if inserted == 1 {
            return Ok(DigestClaimed::Won(DigestClaim {
                fence: fence(1),
                may_have_posted: false,
            }));
        }
        let rows = self
            .query(
                "SELECT state, generation, lease_until_ms, post_started_ms FROM digests
                 WHERE target = ?1 AND slot = ?2",
                &[text(target), text(slot_text(slot))],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(DigestClaimed::Held);
        };
        let state = row.first().and_then(Cell::text).unwrap_or_default();
        let generation = row.get(1).and_then(Cell::int).unwrap_or(0);
        let lapsed = row
            .get(2)
            .and_then(Cell::int)
            .is_none_or(|until| until < now.timestamp_millis());
        if state != "claimed" {
            return Ok(DigestClaimed::Finished);
        }
        if !lapsed {
            return Ok(DigestClaimed::Held);
        }
        let next = u32::try_from(generation + 1).unwrap_or(u32::MAX);
        let taken = self
            .execute(
                "UPDATE digests SET owner = ?3, generation = ?4, lease_until_ms = CAST(?5 AS BIGINT),
                     updated_ms = CAST(?6 AS BIGINT)
                 WHERE target = ?1 AND slot = ?2 AND state = 'claimed' AND generation = ?7
                   AND (lease_until_ms IS NULL OR lease_until_ms < CAST(?6 AS BIGINT))",
                &[
                    text(target),
                    text(slot_text(slot)),
                    text(owner),
                    int(next),
                    millis(lease_until),
                    millis(now),
                    Param::Int(Some(i32::try_from(generation).unwrap_or(i32::MAX))),
                ],
            )
            .await?;
        if taken != 1 {
            return Ok(DigestClaimed::Held);
        }
        Ok(DigestClaimed::Won(DigestClaim {
            fence: fence(next),
            may_have_posted: row.get(3).and_then(Cell::int).is_some(),
        }))
    }

    /// Whether `fence` may post its digest now: the row still its own generation and open
    /// (a takeover raises the generation, so a lapsed lease no one took over is still
    /// ours), its lease extended to `lease_until` in the same statement so no one can
    /// take it over while the post goes out. A yes is recorded (`post_started_ms`), so a
    /// takeover looks in Slack before posting again.
    pub async fn begin_digest_post(
        &self,
        fence: &DigestFence,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let changed = self
            .execute(
                "UPDATE digests SET post_started_ms = COALESCE(post_started_ms, CAST(?5 AS BIGINT)),
                     lease_until_ms = CAST(?6 AS BIGINT), updated_ms = CAST(?5 AS BIGINT)
                 WHERE target = ?1 AND slot = ?2 AND owner = ?3 AND generation = ?4
                   AND state = 'claimed'",
                &fenced(fence, [millis(now), millis(lease_until)]),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Extends `fence`'s lease to `lease_until` while it works on the digest; `false` when
    /// the row is no longer its own (taken over: it must stop).
    pub async fn renew_digest(
        &self,
        fence: &DigestFence,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let changed = self
            .execute(
                "UPDATE digests SET lease_until_ms = CAST(?5 AS BIGINT), updated_ms = CAST(?6 AS BIGINT)
                 WHERE target = ?1 AND slot = ?2 AND owner = ?3 AND generation = ?4
                   AND state = 'claimed'",
                &fenced(fence, [millis(lease_until), millis(now)]),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Records how the digest ended, if `fence` still holds it; `false` when it does not
    /// (another process took it over and records it).
    pub async fn finish_digest(
        &self,
        fence: &DigestFence,
        outcome: &DigestOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let (state, channel, ts, questions, error) = match outcome {
            DigestOutcome::Posted {
                channel,
                ts,
                questions,
            } => (
                "posted",
                Some(channel.clone()),
                Some(ts.clone()),
                Some(*questions),
                None,
            ),
            DigestOutcome::Empty => ("empty", None, None, Some(0), None),
            DigestOutcome::Failed { error } => ("failed", None, None, None, Some(error.clone())),
        };
        let changed = self
            .execute(
                "UPDATE digests SET state = ?5, channel = ?6, ts = ?7, questions = ?8, error = ?9,
                     owner = NULL, lease_until_ms = NULL, updated_ms = CAST(?10 AS BIGINT)
                 WHERE target = ?1 AND slot = ?2 AND owner = ?3 AND generation = ?4
                   AND state = 'claimed'",
                &fenced(
                    fence,
                    [
                        text(state),
                        Param::Text(channel),
                        Param::Text(ts),
                        Param::Int(questions.map(|q| i32::try_from(q).unwrap_or(i32::MAX))),
                        Param::Text(error),
                        millis(now),
                    ],
                ),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Lets go of a digest that failed for now: its lease ends at once, so the next look
    /// (this process's or another's) takes it over and tries again, Slack asked first.
    pub async fn release_digest(
        &self,
        fence: &DigestFence,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.renew_digest(fence, now, now).await.map(|_| ())
    }

    /// Digests claimed but not finished whose lease lapsed before `now`, of slots since
    /// `oldest`: (target, slot), for a takeover.
    pub async fn abandoned_digests(
        &self,
        now: DateTime<Utc>,
        oldest: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, LedgerError> {
        let rows = self
            .query(
                "SELECT target, slot_ms FROM digests
                 WHERE state = 'claimed' AND lease_until_ms < CAST(?1 AS BIGINT)
                   AND slot_ms >= CAST(?2 AS BIGINT)
                 ORDER BY slot_ms, target",
                &[millis(now), millis(oldest)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some((
                    row.first()?.text()?,
                    DateTime::from_timestamp_millis(row.get(1)?.int()?)?,
                ))
            })
            .collect())
    }

    /// How many digests ended each way (`posted`, `empty`, `failed`, `claimed`), for
    /// `kpibot follows` and tests.
    pub async fn digest_counts(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let rows = self
            .query(
                "SELECT state, COUNT(*) FROM digests GROUP BY state ORDER BY state",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some((
                    row.first()?.text()?,
                    u64::try_from(row.get(1)?.int()?).ok()?,
                ))
            })
            .collect())
    }
}

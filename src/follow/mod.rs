//! Digests of followed questions: at each slot, one direct message per person (or one
//! post per following channel) with everything due for them then — each question asked
//! again as that person, decided by the one access rule at send time, the digest claimed
//! and fenced in the ledger so it is sent once across restarts and replicas.

pub mod digest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::adhoc::answer::Shared;
use crate::adhoc::follow::schedule_of;
use crate::adhoc::slash::CommandHandler;
use crate::i18n::Locale;
use crate::ledger::Ledger;
use crate::ledger::follows::{DigestClaimed, DigestOutcome, Follow};

/// How often the follows are read again when no slot is nearer (a new follow is seen
/// within this long).
pub const DIGEST_TICK_MAX_MS: u64 = 30_000;

const METRIC_DIGESTS: &str = "kpibot_digests_total";
const METRIC_DIGESTS_HELP: &str = "Digests of followed questions, by outcome";
const METRIC_CLAIMS: &str = "kpibot_digest_claims_total";
const METRIC_CLAIMS_HELP: &str =
    "Digest claims: won (this process sends it) or lost (sent or held elsewhere)";
const METRIC_FOLLOWS: &str = "kpibot_follows";
const METRIC_FOLLOWS_HELP: &str = "Questions followed, and of those paused";

/// A shared answer's key: the slot, the question, the language.
type SharedKey = (DateTime<Utc>, String, Locale);

/// What the digest loop needs.
pub struct Digests {
    pub handler: Arc<CommandHandler>,
    pub ledger: Arc<Ledger>,
    /// This process's name in the ledger.
    pub owner: String,
    /// How long a claimed digest is this process's before another may take it over.
    pub lease: Duration,
    /// Digests finished (or found finished) by this process, not claimed again.
    done: std::sync::Mutex<HashSet<(String, DateTime<Utc>)>>,
    /// Each plain question of a slot answered once, in each language, for every digest
    /// that has it (each person still decided alone).
    shared: std::sync::Mutex<HashMap<SharedKey, Arc<tokio::sync::OnceCell<Option<Shared>>>>>,
    /// Digests this process is sending now, not started twice.
    in_flight: std::sync::Mutex<HashSet<(String, DateTime<Utc>)>>,
}

/// One digest due: where it goes, its slot, and the follows due in it.
#[derive(Debug, Clone)]
pub struct Due {
    pub target: String,
    pub slot: DateTime<Utc>,
    pub follows: Vec<Follow>,
}

/// Tries one digest gets (each a takeover of the last) before a failure is recorded for
/// good; until then a failed digest is let go and tried again.
pub const DIGEST_ATTEMPTS_MAX: u32 = 5;

/// The digest of `target` for `slot` as it was due: every follow of the target with a
/// slot at that instant, made before it (for taking over one a dead process left).
pub fn due_at(follows: &[Follow], target: &str, slot: DateTime<Utc>) -> Due {
    Due {
        target: target.to_string(),
        slot,
        follows: follows
            .iter()
            .filter(|f| f.target == target && f.created_at <= slot)
            .filter(|f| schedule_of(f).and_then(|s| s.latest_slot(slot)) == Some(slot))
            .cloned()
            .collect(),
    }
}

/// The digests due at `now`: each follow's newest slot within `catch_up` (if it was made
/// before it; older missed slots are not sent), one digest per target and slot with every
/// follow due in it. A follow due at 09:00 is never left out because another of the same
/// person's was due at 09:01 before the loop came round (after downtime, or a busy
/// minute): the 09:00 digest is its own.
pub fn due(follows: &[Follow], now: DateTime<Utc>, catch_up: chrono::Duration) -> Vec<Due> {
    let mut by_slot: BTreeMap<(&str, DateTime<Utc>), Vec<Follow>> = BTreeMap::new();
    for follow in follows {
        let Some(schedule) = schedule_of(follow) else {
            tracing::warn!(target = %follow.target, question = %follow.question, cadence = %follow.cadence, timezone = %follow.timezone, "a follow this version cannot read is not delivered; unfollow it and follow again");
            continue;
        };
        let Some(slot) = schedule.latest_slot(now) else {
            continue;
        };
        if follow.created_at <= slot && now - slot <= catch_up {
            by_slot
                .entry((&follow.target, slot))
                .or_default()
                .push(follow.clone());
        }
    }
    by_slot
        .into_iter()
        .map(|((target, slot), follows)| Due {
            target: target.to_string(),
            slot,
            follows,
        })
        .collect()
}

impl Digests {
    pub fn new(
        handler: Arc<CommandHandler>,
        ledger: Arc<Ledger>,
        owner: String,
        lease: Duration,
    ) -> Self {
        Self {
            handler,
            ledger,
            owner,
            lease,
            done: Default::default(),
            in_flight: Default::default(),
            shared: Default::default(),
        }
    }

    /// Where the shared answer to `question` in `locale` for `slot` is (or will be) kept.
    pub fn shared_answer(
        &self,
        slot: DateTime<Utc>,
        question: &str,
        locale: Locale,
    ) -> Arc<tokio::sync::OnceCell<Option<Shared>>> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared
            .entry((slot, question.to_string(), locale))
            .or_default()
            .clone()
    }

    /// Forgets the shared answers and the finished digests of slots before `oldest`.
    fn forget_before(&self, oldest: DateTime<Utc>) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|(slot, _, _), _| *slot >= oldest);
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.retain(|(_, slot)| *slot >= oldest);
    }

    /// Sends every digest as it falls due until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.handler.follows.max_concurrent_digests.max(1),
        ));
        let running = tokio_util::task::TaskTracker::new();
        loop {
            let now = Utc::now();
            let follows = match self.ledger.follows(None).await {
                Ok(follows) => follows,
                Err(error) => {
                    tracing::error!(error = %error, "could not read the follows; digests wait");
                    Vec::new()
                }
            };
            self.count_follows(&follows);
            let catch_up =
                chrono::Duration::minutes(i64::from(self.handler.follows.catch_up_minutes));
            self.forget_before(now - catch_up);
            let mut all_due = due(&follows, now, catch_up);
            // Digests a process claimed and left unfinished (it died, or let go after a
            // failure): taken over, even when a newer slot of the target is due too.
            match self.ledger.abandoned_digests(now, now - catch_up).await {
                Ok(abandoned) => {
                    for (target, slot) in abandoned {
                        if !all_due.iter().any(|d| d.target == target && d.slot == slot) {
                            all_due.push(due_at(&follows, &target, slot));
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, "could not read the digests left unfinished");
                }
            }
            // What is due now first: after a restart, slots sent before it (each claim
            // answered "finished") do not hold up this minute's digests.
            all_due.sort_by_key(|due| std::cmp::Reverse(due.slot));
            for due in all_due {
                let key = (due.target.clone(), due.slot);
                if self.is_done(&due.target, due.slot) || !self.start(&key) {
                    continue;
                }
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                running.spawn(async move {
                    this.send(due).await;
                    if let Ok(mut in_flight) = this.in_flight.lock() {
                        in_flight.remove(&key);
                    }
                    drop(permit);
                });
            }
            let next = follows
                .iter()
                .filter_map(|f| schedule_of(f)?.next_slot(now))
                .min()
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or_default()
                .min(Duration::from_millis(DIGEST_TICK_MAX_MS))
                .max(Duration::from_millis(200));
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = shutdown.changed() => break,
            }
        }
        running.close();
        running.wait().await;
    }

    fn is_done(&self, target: &str, slot: DateTime<Utc>) -> bool {
        self.done
            .lock()
            .map(|done| done.contains(&(target.to_string(), slot)))
            .unwrap_or(false)
    }

    /// Marks a digest as being sent by this process; `false` if it already is.
    fn start(&self, key: &(String, DateTime<Utc>)) -> bool {
        self.in_flight
            .lock()
            .map(|mut in_flight| in_flight.insert(key.clone()))
            .unwrap_or(false)
    }

    fn mark_done(&self, target: &str, slot: DateTime<Utc>) {
        if let Ok(mut done) = self.done.lock() {
            done.insert((target.to_string(), slot));
        }
    }

    fn count_follows(&self, follows: &[Follow]) {
        let metrics = &self.handler.metrics;
        let paused = follows.iter().filter(|f| f.paused.is_some()).count();
        metrics.set(
            METRIC_FOLLOWS,
            METRIC_FOLLOWS_HELP,
            &[("state", "active")],
            (follows.len() - paused) as f64,
        );
        metrics.set(
            METRIC_FOLLOWS,
            METRIC_FOLLOWS_HELP,
            &[("state", "paused")],
            paused as f64,
        );
    }

    /// Claims one digest and, if this process won it, sends it and records how it ended.
    async fn send(&self, due: Due) {
        let now = Utc::now();
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let claim = match self
            .ledger
            .claim_digest(&due.target, due.slot, &self.owner, lease_until, now)
            .await
        {
            Ok(DigestClaimed::Won(claim)) => {
                self.handler.metrics.increment(
                    METRIC_CLAIMS,
                    METRIC_CLAIMS_HELP,
                    &[("outcome", "won")],
                );
                claim
            }
            Ok(DigestClaimed::Held) => return,
            Ok(DigestClaimed::Finished) => {
                self.handler.metrics.increment(
                    METRIC_CLAIMS,
                    METRIC_CLAIMS_HELP,
                    &[("outcome", "lost")],
                );
                self.mark_done(&due.target, due.slot);
                return;
            }
            Err(error) => {
                tracing::error!(target = %due.target, slot = %due.slot, error = %error, "could not claim a digest; trying again shortly");
                return;
            }
        };
        let outcome = digest::send(self, &due, &claim).await;
        // A failure for now is let go and tried again (Slack asked first), up to
        // DIGEST_ATTEMPTS_MAX tries; then it is recorded.
        if let DigestOutcome::Failed { error } = &outcome
            && claim.fence.generation < DIGEST_ATTEMPTS_MAX
        {
            tracing::warn!(target = %due.target, slot = %due.slot, attempt = claim.fence.generation, error = %error, "a digest failed; trying again shortly");
            if let Err(error) = self.ledger.release_digest(&claim.fence, Utc::now()).await {
                tracing::error!(error = %error, "could not let go of a failed digest; it is taken over when its lease lapses");
            }
            return;
        }
        let label = match &outcome {
            DigestOutcome::Posted { .. } => "posted",
            DigestOutcome::Empty => "empty",
            DigestOutcome::Failed { .. } => "failed",
        };
        self.handler
            .metrics
            .increment(METRIC_DIGESTS, METRIC_DIGESTS_HELP, &[("outcome", label)]);
        match self
            .ledger
            .finish_digest(&claim.fence, &outcome, Utc::now())
            .await
        {
            Ok(_) => self.mark_done(&due.target, due.slot),
            Err(error) => {
                tracing::error!(target = %due.target, slot = %due.slot, error = %error, "could not record a digest; whoever takes it over looks for it in Slack first");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(target: &str, cadence: &str, at_minute: u32, created: &str) -> Follow {
        Follow {
            target: target.into(),
            question: format!("q{at_minute}"),
            person: target.into(),
            cadence: cadence.into(),
            at_minute,
            timezone: "Asia/Tokyo".into(),
            locale: None,
            created_at: created.parse().unwrap(),
            paused: None,
            place: None,
        }
    }

    #[test]
    fn each_follows_newest_missed_slot_is_due_one_digest_per_target_and_slot() {
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap(); // 19:00 Tokyo
        let follows = vec![
            // 09:00 Tokyo: ten hours ago, past the window.
            follow("U1", "daily", 9 * 60, "2026-12-01T00:00:00Z"),
            // 18:30, the newest slot: the older ones are not left out for it.
            follow("U1", "daily", 18 * 60 + 30, "2026-12-01T00:00:00Z"),
            follow("U1", "daily", 18 * 60, "2026-12-01T00:00:00Z"),
            follow("U1", "weekdays", 18 * 60 + 1, "2026-12-01T00:00:00Z"),
            follow("U1", "weekly:mon", 18 * 60 + 1, "2026-12-01T00:00:00Z"),
            // Made after today's 18:00: not due until tomorrow.
            follow("U2", "daily", 18 * 60, "2026-12-07T09:30:00Z"),
        ];
        let due = due(&follows, now, chrono::Duration::hours(6));
        let slots: Vec<(&str, String, usize)> = due
            .iter()
            .map(|d| (d.target.as_str(), d.slot.to_rfc3339(), d.follows.len()))
            .collect();
        // A follow due at 18:00 is not lost because another was due at 18:01: each slot
        // missed is its own digest, with every follow due in it.
        assert_eq!(
            slots,
            vec![
                ("U1", "2026-12-07T09:00:00+00:00".to_string(), 1),
                ("U1", "2026-12-07T09:01:00+00:00".to_string(), 2),
                ("U1", "2026-12-07T09:30:00+00:00".to_string(), 1),
            ]
        );
        // Past the catch-up window nothing is due.
        assert!(super::due(&follows, now, chrono::Duration::minutes(20)).is_empty());
    }
}

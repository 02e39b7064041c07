//! Fair use of the warehouse by `/kpi`: at most so many questions per person per minute
//! (a clear reply past it, never a silent drop), and at most so many ad-hoc queries
//! running at once (later ones wait their turn).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The window the per-person count is kept over.
const RATE_WINDOW_SECONDS: u64 = 60;

/// A request counted against its asker's limit: the only way to a query slot, so nothing
/// that reaches the warehouse or the ledger for a person escapes their limit.
#[derive(Debug)]
pub struct Admitted(());

/// The per-person counts and the query slots.
pub struct Throttle {
    per_minute: usize,
    asked: Mutex<HashMap<String, VecDeque<Instant>>>,
    queries: Semaphore,
}

impl Throttle {
    pub fn new(per_minute: usize, concurrent_queries: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            asked: Mutex::new(HashMap::new()),
            queries: Semaphore::new(concurrent_queries.max(1)),
        }
    }

    /// Counts a request from `user`; `Err(limit)` when they have asked `limit` already
    /// within the last minute.
    pub fn admit(&self, user: &str) -> Result<Admitted, usize> {
        let now = Instant::now();
        let window = Duration::from_secs(RATE_WINDOW_SECONDS);
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        // Forget people whose questions have all aged out, so the map stays small.
        asked.retain(|_, times| times.back().is_some_and(|t| now - *t < window));
        let times = asked.entry(user.to_string()).or_default();
        while times.front().is_some_and(|t| now - *t >= window) {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            return Err(self.per_minute);
        }
        times.push_back(now);
        Ok(Admitted(()))
    }

    /// Waits for a query slot; the slot is free again when the permit is dropped. Only a
    /// request counted against its asker's limit gets one.
    pub async fn query_slot(&self, _counted: &Admitted) -> SemaphorePermit<'_> {
        self.queries
            .acquire()
            .await
            .expect("the query semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_person_has_their_own_count() {
        let throttle = Throttle::new(2, 1);
        assert!(throttle.admit("U1").is_ok());
        assert!(throttle.admit("U1").is_ok());
        assert_eq!(throttle.admit("U1").unwrap_err(), 2);
        assert!(
            throttle.admit("U2").is_ok(),
            "another person is not limited"
        );
    }
}

//! Retry and backoff for every outside call (Slack, BigQuery, the scheduler's warehouse
//! runs): when to try again and how long to wait — exponential, capped, with jitter so a
//! burst of failures does not retry in lockstep.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// When and how often to repeat a failed call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The first backoff; each further attempt doubles it.
    pub base_delay: Duration,
    /// No single backoff is longer than this (Retry-After may be).
    pub max_delay: Duration,
    /// No new attempt starts later than this after the first.
    pub deadline: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Longest wait for one HTTP answer.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            max_attempts: 8,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A random fraction in [0, 1), different on every call.
pub fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How long to wait before attempt `attempt + 1` (attempt counts from 1): exponential,
/// capped, with "equal jitter" (between half and all of the step) so a burst of failed
/// posts does not retry in lockstep.
pub fn backoff_delay(policy: &RetryPolicy, attempt: u32) -> Duration {
    let step = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max_delay);
    step.mul_f64(0.5 + 0.5 * random_fraction())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_attempts: 5,
            ..RetryPolicy::default()
        };
        // Each attempt's step: 100 ms doubling, capped at 1 s. Equal jitter puts every delay
        // in [step / 2, step], and a burst of failures spreads over that range rather than
        // retrying in lockstep.
        for (attempt, step_ms) in [(1, 100u64), (2, 200), (4, 800), (5, 1000), (9, 1000)] {
            let step = Duration::from_millis(step_ms);
            let delays: Vec<Duration> = (0..200).map(|_| backoff_delay(&policy, attempt)).collect();
            assert!(
                delays.iter().all(|d| *d >= step / 2 && *d <= step),
                "attempt {attempt}: {delays:?} not all within [{:?}, {step:?}]",
                step / 2
            );
            let distinct: std::collections::BTreeSet<Duration> = delays.iter().copied().collect();
            assert!(
                distinct.len() >= 100,
                "attempt {attempt}: only {} distinct delays in 200: not jittered",
                distinct.len()
            );
            // Spread over the range: some in its lower and some in its upper quarter.
            assert!(
                delays.iter().any(|d| *d < step.mul_f64(0.625)),
                "attempt {attempt}: {delays:?}"
            );
            assert!(
                delays.iter().any(|d| *d > step.mul_f64(0.875)),
                "attempt {attempt}: {delays:?}"
            );
        }
    }
}

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
        let d1 = backoff_delay(&policy, 1);
        let d4 = backoff_delay(&policy, 4);
        let d9 = backoff_delay(&policy, 9);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        assert!(d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800));
        assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000));
    }
}

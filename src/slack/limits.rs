//! Slack's rate limits, kept for every call the client makes: each Web API method is paced
//! to its documented tier across the whole process, and a 429's `Retry-After` holds back
//! every caller of that method, not only the one that got it. Posts to one channel (about
//! one a second, Slack's special limit for `chat.postMessage`) are paced by
//! `deliver::pacing`, and a post's 429 holds only its own channel.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Slack counts a tier's calls per minute.
pub const TIER_WINDOW_SECONDS: u64 = 60;

/// Calls per minute each of Slack's tiers allows one app in one workspace. Tier 1 is 1 for
/// `conversations.history` / `.replies` of commercially distributed apps outside the
/// Marketplace (since 2025; 50 for internal and Marketplace apps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierRates {
    pub tier1_per_minute: u32,
    pub tier2_per_minute: u32,
    pub tier3_per_minute: u32,
    pub tier4_per_minute: u32,
}

impl Default for TierRates {
    fn default() -> Self {
        Self {
            tier1_per_minute: 1,
            tier2_per_minute: 20,
            tier3_per_minute: 50,
            tier4_per_minute: 100,
        }
    }
}

/// The documented tier of each method kpibot calls; `None` for methods with limits of
/// their own (posts: per channel) or none that matter here.
pub fn tier_of(method: &str) -> Option<u8> {
    match method {
        "conversations.history" | "conversations.replies" => Some(1),
        "conversations.list" | "usergroups.list" | "usergroups.users.list" => Some(2),
        "chat.update" | "chat.delete" | "conversations.open" => Some(3),
        "chat.getPermalink"
        | "files.getUploadURLExternal"
        | "files.completeUploadExternal"
        | "chat.postEphemeral"
        | "users.info"
        | "views.publish" => Some(4),
        _ => None,
    }
}

impl TierRates {
    /// Every tier at `per_minute` calls a minute: a test server, or a workspace whose
    /// limits are known to be higher.
    pub fn uniform(per_minute: u32) -> Self {
        Self {
            tier1_per_minute: per_minute,
            tier2_per_minute: per_minute,
            tier3_per_minute: per_minute,
            tier4_per_minute: per_minute,
        }
    }

    /// How many calls of `method` one window allows, if its tier limits it.
    fn per_window(&self, method: &str) -> Option<usize> {
        let rate = match tier_of(method)? {
            1 => self.tier1_per_minute,
            2 => self.tier2_per_minute,
            3 => self.tier3_per_minute,
            _ => self.tier4_per_minute,
        };
        Some(rate.max(1) as usize)
    }
}

/// One method's calls: when the latest ones started (at most a window's allowance), and
/// until when a 429 holds it back.
#[derive(Default)]
struct MethodCalls {
    starts: VecDeque<Instant>,
    held_until: Option<Instant>,
}

/// Paces every call by its method's tier and holds a method back after a 429.
pub struct RateGate {
    rates: TierRates,
    window: Duration,
    methods: Mutex<HashMap<String, MethodCalls>>,
}

impl RateGate {
    pub fn new(rates: TierRates) -> Self {
        Self {
            rates,
            window: Duration::from_secs(TIER_WINDOW_SECONDS),
            methods: Mutex::new(HashMap::new()),
        }
    }

    /// When a call of `method` asked for at `now` may start, booked: no more than the
    /// tier's allowance starts in any window, and none while the method is held back.
    fn book(&self, method: &str, now: Instant) -> Instant {
        let mut methods = self.methods.lock().unwrap_or_else(|p| p.into_inner());
        let calls = methods.entry(method.to_string()).or_default();
        let mut at = now.max(calls.held_until.unwrap_or(now));
        if let Some(allowance) = self.rates.per_window(method) {
            if calls.starts.len() >= allowance {
                let nth_back = calls.starts[calls.starts.len() - allowance];
                at = at.max(nth_back + self.window);
            }
            calls.starts.push_back(at);
            while calls.starts.len() > allowance {
                calls.starts.pop_front();
            }
        }
        at
    }

    /// Waits until a call of `method` may start. A hold that began while waiting (another
    /// caller's 429) is waited out too, on the same booking.
    pub async fn turn(&self, method: &str) {
        let mut at = self.book(method, Instant::now());
        loop {
            tokio::time::sleep_until(at).await;
            match self.held_until(method) {
                Some(until) if until > Instant::now() => at = until,
                _ => return,
            }
        }
    }

    fn held_until(&self, method: &str) -> Option<Instant> {
        let methods = self.methods.lock().unwrap_or_else(|p| p.into_inner());
        methods.get(method).and_then(|calls| calls.held_until)
    }

    /// Slack answered 429 to `method`: every call of it waits `retry_after` from now.
    pub fn hold(&self, method: &str, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut methods = self.methods.lock().unwrap_or_else(|p| p.into_inner());
        let calls = methods.entry(method.to_string()).or_default();
        calls.held_until = Some(calls.held_until.map_or(until, |held| held.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(tier1: u32, tier4: u32) -> RateGate {
        RateGate::new(TierRates {
            tier1_per_minute: tier1,
            tier4_per_minute: tier4,
            ..TierRates::default()
        })
    }

    /// Whatever the order and timing of the requests, no window holds more starts than
    /// the tier allows, and no call waits longer than it must.
    #[test]
    fn no_window_holds_more_calls_than_the_tier_allows() {
        let base = Instant::now();
        for allowance in [1u32, 3, 7] {
            let gate = gate(allowance, allowance);
            let mut starts = Vec::new();
            // Requests every 7 s for two minutes, in bursts of 5.
            for i in 0..100u64 {
                let asked = base + Duration::from_secs(i / 5 * 7);
                let at = gate.book("conversations.history", asked);
                assert!(at >= asked);
                starts.push(at);
            }
            for (i, start) in starts.iter().enumerate() {
                let in_window = starts[i..]
                    .iter()
                    .filter(|s| **s < *start + Duration::from_secs(TIER_WINDOW_SECONDS))
                    .count();
                assert!(
                    in_window <= allowance as usize,
                    "{in_window} calls in one window, {allowance} allowed"
                );
            }
            // Calls the allowance leaves room for are not held up.
            assert!(
                starts[..allowance.min(5) as usize]
                    .iter()
                    .all(|s| *s == base)
            );
        }
    }

    /// A hold that begins while a caller waits delays it to the hold's end, and no more:
    /// its booking stands (booking again would cost a tier 1 caller a whole minute).
    #[tokio::test(start_paused = true)]
    async fn a_hold_during_a_wait_delays_the_call_to_the_holds_end() {
        let gate = std::sync::Arc::new(gate(1, 100));
        let start = Instant::now();
        gate.turn("conversations.history").await;
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.turn("conversations.history").await;
                Instant::now()
            }
        });
        tokio::task::yield_now().await;
        gate.hold("conversations.history", Duration::from_secs(90));
        let started = waiter.await.unwrap();
        assert_eq!(started - start, Duration::from_secs(90));
    }

    #[test]
    fn a_429_holds_every_caller_of_the_method_and_no_other() {
        let gate = gate(1, 100);
        gate.hold("conversations.list", Duration::from_secs(30));
        let now = Instant::now();
        assert!(gate.book("conversations.list", now) >= now + Duration::from_secs(29));
        assert!(gate.book("conversations.list", now) >= now + Duration::from_secs(29));
        assert_eq!(gate.book("users.info", now), now);
        // After the hold, the tier's allowance (20 a minute) has room again.
        let after = now + Duration::from_secs(31);
        assert_eq!(gate.book("conversations.list", after), after);
    }
}

//! Slack's rate limits for the fake Slack, enforced when a test asks for them: each
//! method's tier (calls per minute per workspace, as Slack documents them), about one
//! `chat.postMessage` a second per channel, and Tier 1's 15-message history pages. A call
//! over a limit is answered as Slack answers it: HTTP 429, `Retry-After`, nothing done.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Slack's documented tier of each method the fake answers. kpibot has its own table
/// (`slack::limits`); this one is kept apart on purpose, so a wrong tier in kpibot meets
/// Slack's 429s here instead of agreeing with itself.
pub fn tier_of(method: &str) -> Option<usize> {
    match method {
        "conversations.history" | "conversations.replies" => Some(1),
        "conversations.list" | "usergroups.list" | "usergroups.users.list" => Some(2),
        "chat.update" | "chat.delete" | "conversations.open" => Some(3),
        "chat.getPermalink"
        | "files.getUploadURLExternal"
        | "files.completeUploadExternal"
        | "chat.postEphemeral"
        | "users.info" => Some(4),
        _ => None,
    }
}

/// The limits to enforce.
#[derive(Debug, Clone)]
pub struct SlackLimits {
    /// Calls a minute of each tier's methods, tiers 1 to 4 (each method counted alone).
    pub per_minute: [usize; 4],
    /// Shortest time between two posts to one channel.
    pub channel_post_interval: Duration,
    /// Most messages one history or replies page returns.
    pub history_page_max: usize,
}

impl SlackLimits {
    /// Slack's own figures for a commercially distributed app outside the Marketplace.
    pub fn documented() -> Self {
        Self {
            per_minute: [1, 20, 50, 100],
            channel_post_interval: Duration::from_secs(1),
            history_page_max: 15,
        }
    }
}

/// What has been let through so far.
#[derive(Debug)]
pub struct Limiter {
    pub limits: SlackLimits,
    /// Each tiered method's accepted calls in the last minute.
    calls: HashMap<String, VecDeque<Instant>>,
    /// Each channel's last accepted post.
    last_post: HashMap<String, Instant>,
}

impl Limiter {
    pub fn new(limits: SlackLimits) -> Self {
        Self {
            limits,
            calls: HashMap::new(),
            last_post: HashMap::new(),
        }
    }

    /// `Some(retry_after_seconds)` when a call of `method` with `params` is over a limit
    /// now; otherwise it is counted and `None`.
    pub fn refuse(&mut self, method: &str, params: &Value, now: Instant) -> Option<u64> {
        let minute = Duration::from_secs(60);
        if let Some(tier) = tier_of(method) {
            let allowed = self.limits.per_minute[tier - 1];
            let calls = self.calls.entry(method.to_string()).or_default();
            while calls
                .front()
                .is_some_and(|t| now.duration_since(*t) >= minute)
            {
                calls.pop_front();
            }
            if calls.len() >= allowed {
                let free_at = calls[calls.len() - allowed] + minute;
                return Some(seconds_until(free_at, now));
            }
            calls.push_back(now);
        }
        if method == "chat.postMessage" {
            let channel = params["channel"].as_str().unwrap_or_default().to_string();
            if let Some(last) = self.last_post.get(&channel)
                && now.duration_since(*last) < self.limits.channel_post_interval
            {
                return Some(seconds_until(
                    *last + self.limits.channel_post_interval,
                    now,
                ));
            }
            self.last_post.insert(channel, now);
        }
        None
    }
}

/// Whole seconds until `at`, at least one (Slack's `Retry-After` is in whole seconds).
fn seconds_until(at: Instant, now: Instant) -> u64 {
    at.saturating_duration_since(now)
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64
}

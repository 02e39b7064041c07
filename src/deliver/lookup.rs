//! Finding earlier posts in a channel's history without one `conversations.history` call
//! per slot (Tier 1: a request a minute for most apps): one scan per channel serves every
//! lookup that was waiting for it, a post once seen is known, and a later lookup reads only
//! what is newer than the newest message already read.

use std::collections::HashMap;
use std::sync::Arc;

use slack_morphism::prelude::*;
use tokio::time::Instant;

use crate::render::message::METADATA_EVENT_TYPE;
use crate::slack::calls::unconfirmed_lookup;
use crate::slack::{Slack, SlackError};

/// Pages one scan reads before it gives up (the lookup is then unconfirmed, never "not
/// posted").
pub const SCAN_MAX_PAGES: usize = 10;

/// A channel's first read reaches this much further back than its lookup needs, so the
/// lookups of other slots of the same busy hour find it covers them too.
const INDEX_LOOKBACK_SECONDS: f64 = 3600.0;

/// A read of what is newer starts this much before the newest message already read: a
/// message Slack shows only after a newer one (a post still being processed, another
/// replica's) is not skipped.
const READ_OVERLAP_SECONDS: f64 = 5.0;

/// A channel's index is started over when a lookup reaches back less far than this
/// before its oldest message: it covers one busy period, not the channel's whole past.
const INDEX_SPAN_SECONDS: f64 = 24.0 * 3600.0;

/// What is known of one channel's history.
#[derive(Default)]
struct Scan {
    /// Every message since this time (Unix seconds) has been read, up to `newest`.
    from: Option<f64>,
    /// The newest message read; the next read starts there.
    newest: Option<SlackTs>,
    /// When the last complete read began: it saw every message posted before then.
    read_started: Option<Instant>,
    /// kpibot's posts seen, by (report, slot).
    posts: HashMap<(String, String), SlackTs>,
}

/// kpibot's earlier posts per channel, as far as this process has read them.
#[derive(Default)]
pub struct HistoryIndex {
    channels: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Scan>>>>,
}

fn seconds(ts: &SlackTs) -> f64 {
    ts.0.parse().unwrap_or(0.0)
}

/// The (report, slot) a kpibot post's metadata names.
pub(super) fn post_of(message: &SlackHistoryMessage) -> Option<(String, String)> {
    let metadata = message.content.metadata.as_ref()?;
    if metadata.event_type != METADATA_EVENT_TYPE
        && metadata.event_type != crate::render::message::EXPLANATION_EVENT_TYPE
    {
        return None;
    }
    let payload = metadata.event_payload.as_ref()?;
    Some((
        payload.get("report_id")?.to_string(),
        payload.get("slot")?.to_string(),
    ))
}

impl HistoryIndex {
    fn scan_of(&self, channel_id: &str) -> Arc<tokio::sync::Mutex<Scan>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(channel_id.to_string()).or_default().clone()
    }

    /// The ts of this report's post for this slot in the channel, looking from `oldest`:
    /// `Ok(None)` only once every message since `oldest`, up to a read that began after
    /// this call, was read. Lookups of one channel wait for each other; the read the
    /// first one makes answers the rest.
    pub async fn find(
        &self,
        slack: &Slack,
        channel_id: &str,
        report_id: &str,
        slot: &str,
        oldest: SlackTs,
        deadline: Instant,
    ) -> Result<Option<SlackTs>, SlackError> {
        let asked = Instant::now();
        let wanted = (report_id.to_string(), slot.to_string());
        let scan = self.scan_of(channel_id);
        let mut scan = scan.lock().await;
        if let Some(ts) = scan.posts.get(&wanted) {
            return Ok(Some(ts.clone()));
        }
        let oldest_seconds = seconds(&oldest);
        if scan
            .from
            .is_some_and(|from| (from - oldest_seconds).abs() > INDEX_SPAN_SECONDS)
        {
            *scan = Scan::default();
        }
        // Further back than what was read: read only the gap below it.
        if let Some(from) = scan.from
            && oldest_seconds < from
        {
            let below = SlackTs(format!("{from:.6}"));
            scan.read(slack, channel_id, (oldest.clone(), Some(below)), deadline)
                .await?;
            scan.from = Some(oldest_seconds);
            if let Some(ts) = scan.posts.get(&wanted) {
                return Ok(Some(ts.clone()));
            }
        }
        if scan.from.is_some() && scan.read_started.is_some_and(|read| read >= asked) {
            return Ok(None);
        }
        // What is newer than the last read; the first time, everything since a while
        // before `oldest`.
        let started = Instant::now();
        let first_from = oldest_seconds - INDEX_LOOKBACK_SECONDS;
        let read_from = match (&scan.newest, scan.from) {
            (Some(newest), Some(_)) => {
                SlackTs(format!("{:.6}", seconds(newest) - READ_OVERLAP_SECONDS))
            }
            _ => SlackTs(format!("{first_from:.6}")),
        };
        scan.read(slack, channel_id, (read_from, None), deadline)
            .await?;
        scan.from.get_or_insert(first_from);
        scan.read_started = Some(started);
        Ok(scan.posts.get(&wanted).cloned())
    }
}

impl Scan {
    /// Reads every message of the channel in `range` (both ends included), noting
    /// kpibot's posts, and the newest message once the whole range was read. Past
    /// [`SCAN_MAX_PAGES`], or on a failed page, it gives up: the posts it saw are kept (a
    /// post seen exists), but not the newest message — a later read must not start past
    /// pages it never reached.
    async fn read(
        &mut self,
        slack: &Slack,
        channel_id: &str,
        range: (SlackTs, Option<SlackTs>),
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let (oldest, latest) = range;
        let mut cursor: Option<SlackCursorId> = None;
        let mut newest = self.newest.clone();
        for _ in 0..SCAN_MAX_PAGES {
            let (messages, next) = slack
                .messages_page(
                    channel_id,
                    None,
                    (Some(oldest.clone()), latest.clone()),
                    cursor,
                    deadline,
                )
                .await?;
            for message in &messages {
                let ts = &message.origin.ts;
                if newest.as_ref().is_none_or(|n| seconds(ts) > seconds(n)) {
                    newest = Some(ts.clone());
                }
                if let Some(post) = post_of(message) {
                    self.posts.entry(post).or_insert_with(|| ts.clone());
                }
            }
            cursor = next.filter(|c| !c.0.is_empty());
            if cursor.is_none() {
                self.newest = newest;
                return Ok(());
            }
        }
        Err(unconfirmed_lookup(channel_id, SCAN_MAX_PAGES))
    }
}

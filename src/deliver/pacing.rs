//! Post pacing: at most one post per interval per channel, posts to one channel in the
//! order they were asked for, and a bound on how many deliveries run at once. Waiting is
//! queueing, never dropping: a burst of reports all arrive, just spread out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub struct Pacer {
    interval: Duration,
    global: Arc<Semaphore>,
    /// One FIFO lock per channel; it holds the time of that channel's last post.
    channels: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

/// The right to post to one channel now. Dropping it releases the channel to the next
/// post in line, which then waits out the interval from [`ChannelTurn::posted`].
pub struct ChannelTurn {
    last_post: OwnedMutexGuard<Option<Instant>>,
    _permit: OwnedSemaphorePermit,
}

impl ChannelTurn {
    /// Records that a post just went out (or may have), starting the channel's interval.
    pub fn posted(&mut self) {
        *self.last_post = Some(Instant::now());
    }
}

impl Pacer {
    pub fn new(interval: Duration, max_concurrent: usize) -> Self {
        Self {
            interval,
            global: Arc::new(Semaphore::new(max_concurrent.max(1))),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for this channel's turn (first come, first served), then for a global slot,
    /// then until the channel's interval since its last post has passed.
    pub async fn turn(&self, channel: &str) -> ChannelTurn {
        let lock = {
            let mut channels = self
                .channels
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            channels.entry(channel.to_string()).or_default().clone()
        };
        let last_post = lock.lock_owned().await;
        let permit = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the pacer's semaphore is never closed");
        if let Some(last) = *last_post {
            tokio::time::sleep_until(last + self.interval).await;
        }
        ChannelTurn {
            last_post,
            _permit: permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn posts_to_one_channel_are_spaced_and_in_order_other_channels_do_not_wait() {
        let pacer = Arc::new(Pacer::new(Duration::from_secs(1), 8));
        let start = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, channel) in ["C1", "C1", "C1", "C2"].into_iter().enumerate() {
            let (pacer, log) = (pacer.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                let mut turn = pacer.turn(channel).await;
                turn.posted();
                log.lock().unwrap().push((i, channel, start.elapsed()));
            }));
            // Let each task queue before the next, so "asked first" is well defined.
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let c1: Vec<(usize, Duration)> = log
            .iter()
            .filter(|(_, c, _)| *c == "C1")
            .map(|(i, _, t)| (*i, *t))
            .collect();
        assert_eq!(
            c1.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(c1[1].1 - c1[0].1, Duration::from_secs(1));
        assert_eq!(c1[2].1 - c1[1].1, Duration::from_secs(1));
        let c2 = log.iter().find(|(_, c, _)| *c == "C2").unwrap();
        assert!(
            c2.2 < Duration::from_secs(1),
            "C2 waited for C1: {:?}",
            c2.2
        );
    }
}

//! What each server instance keeps for the running event: live leaderboard pushes to its
//! own viewers, and per-participant rate limits. Anything that must agree across instances
//! (scores, the freeze, hidden names, organizer sessions) lives in the database; a change
//! made on any instance reaches every instance's viewers through the leaderboard revision.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};

use crate::config::Settings;
use crate::store::{Pool, leaderboard};

/// How often each instance looks for leaderboard changes made elsewhere.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

pub struct Live {
    /// A message each time the leaderboard revision moves, whichever instance moved it.
    pub leaderboard: broadcast::Sender<()>,
    /// Rate limits count this instance's requests only (see the README).
    pub generate_limit: RateLimiter,
    pub submit_limit: RateLimiter,
    /// Wakes the watcher after a change made here, so local viewers need not wait a poll.
    check_now: Notify,
}

impl Live {
    pub fn new(settings: &Settings) -> Live {
        Live {
            leaderboard: broadcast::channel(64).0,
            generate_limit: RateLimiter::per_minute(settings.generate_per_minute),
            submit_limit: RateLimiter::per_minute(settings.submit_per_minute),
            check_now: Notify::new(),
        }
    }

    /// Call after storing a change: the watcher reads the revision at once.
    pub fn leaderboard_changed(&self) {
        self.check_now.notify_one();
    }

    /// Until shutdown, reads the leaderboard revision every `POLL_EVERY` (and at once after
    /// a local change) and tells this instance's viewers when it moved. Polling a one-row
    /// table behaves the same on SQLite and PostgreSQL, and has no listening connection that
    /// could drop notifications unnoticed.
    pub async fn watch_leaderboard(self: Arc<Self>, pool: Pool, mut shutdown: watch::Receiver<bool>) {
        let mut seen: Option<i64> = None;
        let mut failing = false;
        loop {
            match leaderboard::revision(&pool).await {
                Ok(revision) => {
                    if failing {
                        tracing::info!("leaderboard revision readable again");
                        failing = false;
                    }
                    if seen.is_some_and(|before| before != revision) {
                        // No receivers (nobody watching) is fine.
                        let _ = self.leaderboard.send(());
                    }
                    seen = Some(revision);
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot read the leaderboard revision; live views wait");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = self.check_now.notified() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// At most `limit` events per key in any sliding minute; 0 means no limit.
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> RateLimiter {
        RateLimiter { limit: limit as usize, window: Duration::from_secs(60), recent: Mutex::new(HashMap::new()) }
    }

    /// Counts one event for `key`, or says how many seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut recent = self.recent.lock().expect("not poisoned");
        // Forget idle keys so the map cannot grow without bound.
        recent.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        let times = recent.entry(key.to_string()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = *times.front().expect("non-empty at the limit");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives back the event `check` counted last for `key`, when the work it allowed was not
    /// done (the grader was full): a participant who waits as told must not lose a turn.
    pub fn refund(&self, key: &str) {
        if let Some(times) = self.recent.lock().expect("not poisoned").get_mut(key) {
            times.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_key_and_says_how_long_to_wait() {
        let limiter = RateLimiter::per_minute(2);
        assert!(limiter.check("ada").is_ok());
        assert!(limiter.check("ada").is_ok());
        let wait = limiter.check("ada").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.check("grace").is_ok());
        assert!(RateLimiter::per_minute(0).check("x").is_ok());
        limiter.refund("ada");
        assert!(limiter.check("ada").is_ok(), "a refunded turn can be used again");
        assert!(limiter.check("ada").is_err());
    }
}

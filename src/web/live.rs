//! In-memory state of the running event, per server instance: leaderboard change
//! notifications (for the live SSE view), per-participant rate limits, organizer sessions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::config::Settings;

pub struct Live {
    /// A message each time a submission (or an organizer action) changes the leaderboard.
    pub leaderboard: broadcast::Sender<()>,
    pub generate_limit: RateLimiter,
    pub submit_limit: RateLimiter,
    /// Random session ids handed to browsers that presented the organizer token.
    organizer_sessions: Mutex<HashSet<String>>,
}

impl Live {
    pub fn new(settings: &Settings) -> Live {
        Live {
            leaderboard: broadcast::channel(64).0,
            generate_limit: RateLimiter::per_minute(settings.generate_per_minute),
            submit_limit: RateLimiter::per_minute(settings.submit_per_minute),
            organizer_sessions: Mutex::new(HashSet::new()),
        }
    }

    pub fn leaderboard_changed(&self) {
        // No receivers (nobody watching) is fine.
        let _ = self.leaderboard.send(());
    }

    pub fn open_organizer_session(&self) -> String {
        let id = crate::store::new_id();
        self.organizer_sessions.lock().expect("not poisoned").insert(id.clone());
        id
    }

    pub fn is_organizer_session(&self, id: &str) -> bool {
        self.organizer_sessions.lock().expect("not poisoned").contains(id)
    }

    pub fn close_organizer_session(&self, id: &str) {
        self.organizer_sessions.lock().expect("not poisoned").remove(id);
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

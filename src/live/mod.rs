//! What each server instance keeps for the running event: live leaderboard pushes to its
//! own viewers, and per-participant rate limits. Anything that must agree across instances
//! (scores, the freeze, hidden names, organizer sessions) lives in the database; a change
//! made on any instance reaches every instance's viewers through the leaderboard revision.

pub mod fair_use;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::config::Settings;
use crate::error::AppError;
use crate::store::{Pool, leaderboard};

/// How often each instance looks for leaderboard changes made elsewhere.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The leaderboards as every live viewer receives them: each open challenge's two views
/// rendered once per change into complete server-sent events, whose bytes all viewers of
/// that board share.
#[derive(Debug, Clone, Default)]
pub struct Boards {
    /// By challenge id, the event's default challenge first.
    pub by_challenge: Vec<(String, Board)>,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub public: Bytes,
    pub organizer: Bytes,
}

impl Boards {
    /// One challenge's board; `None` names the event's default challenge.
    pub fn of(&self, challenge: Option<&str>) -> Option<&Board> {
        match challenge {
            None => self.by_challenge.first(),
            Some(id) => self.by_challenge.iter().find(|(c, _)| c == id),
        }
        .map(|(_, board)| board)
    }
}

pub struct Live {
    /// The latest boards (None until the first render), replaced each time the leaderboard
    /// revision moves, whichever instance moved it.
    boards: watch::Sender<Option<Arc<Boards>>>,
    /// Live viewers at once on this instance (`MOA_MAX_LIVE_VIEWERS`).
    viewers: Arc<Semaphore>,
    viewer_cap: usize,
    /// How many times the boards were rendered (once per change, however many viewers).
    renders: std::sync::atomic::AtomicU64,
    /// Failed organizer sign-ins (form or Bearer token), per client and overall.
    pub sign_in: SignInThrottle,
    /// Rate limits count this instance's requests only (see the README).
    pub generate_limit: RateLimiter,
    pub submit_limit: RateLimiter,
    /// What one client may spend (runs at once, calls per minute, grading slots, claims).
    pub fair_use: Arc<fair_use::FairUse>,
    /// Wakes the watcher after a change made here, so local viewers need not wait a poll.
    check_now: Notify,
}

impl Live {
    pub fn new(settings: &Settings) -> Live {
        Live {
            boards: watch::channel(None).0,
            viewers: Arc::new(Semaphore::new(settings.max_live_viewers.clamp(1, Semaphore::MAX_PERMITS))),
            viewer_cap: settings.max_live_viewers,
            renders: Default::default(),
            sign_in: SignInThrottle::new(SIGN_IN_FAILURES_PER_CLIENT, SIGN_IN_FAILURES_OVERALL),
            generate_limit: RateLimiter::per_minute(settings.generate_per_minute),
            submit_limit: RateLimiter::per_minute(settings.submit_per_minute),
            fair_use: Arc::new(fair_use::FairUse::new(&settings.fair_use)),
            check_now: Notify::new(),
        }
    }

    /// Call after storing a change: the watcher reads the revision at once.
    pub fn leaderboard_changed(&self) {
        self.check_now.notify_one();
    }

    /// Board renders so far on this instance.
    pub fn renders(&self) -> u64 {
        self.renders.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new live viewer: the boards now and after every change, or a 503 sentence past the cap.
    pub fn watch_boards(&self) -> Result<Viewer, AppError> {
        let permit = self.viewers.clone().try_acquire_owned().map_err(|_| {
            crate::metrics::refused(crate::metrics::Limit::MaxLiveViewers);
            AppError::Unavailable(format!(
                "The live leaderboard already has {} viewers on this server, its limit; reload the page \
                 in a minute (or ask the organizer to raise MOA_MAX_LIVE_VIEWERS).",
                self.viewer_cap
            ))
        })?;
        Ok(Viewer { boards: self.boards.subscribe(), _permit: permit })
    }

    /// Until shutdown, reads the leaderboard revision every `POLL_EVERY` (and at once after
    /// a local change) and, when it moved, renders the boards once for all of this instance's
    /// viewers. Polling a one-row table behaves the same on SQLite and PostgreSQL, and has no
    /// listening connection that could drop notifications unnoticed.
    /// `render` draws every board (the web layer knows how) and says whether all could be read.
    pub async fn watch_leaderboard<F, Fut>(self: Arc<Self>, pool: Pool, render: F, mut shutdown: watch::Receiver<bool>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (Boards, bool)>,
    {
        let mut seen: Option<i64> = None;
        let mut failing = false;
        loop {
            match leaderboard::revision(&pool).await {
                Ok(revision) => {
                    if failing {
                        tracing::info!("leaderboard revision readable again");
                        failing = false;
                    }
                    if seen != Some(revision) {
                        let (boards, complete) = render().await;
                        self.boards.send_replace(Some(Arc::new(boards)));
                        self.renders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // A board that could not be read is tried again at the next poll.
                        seen = complete.then_some(revision);
                    }
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

/// One live viewer's view of the boards; holds its place under the viewer cap.
pub struct Viewer {
    pub boards: watch::Receiver<Option<Arc<Boards>>>,
    _permit: OwnedSemaphorePermit,
}

/// `html` as one server-sent event named `name`: every line its own `data:` line (a bare CR
/// would end a line too, so all three line endings are split).
pub fn sse_event(name: &str, html: &str) -> Bytes {
    let mut out = String::with_capacity(html.len() + html.len() / 16 + 32);
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    for line in html.replace("\r\n", "\n").split(['\r', '\n']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// Failed organizer sign-ins one client may make per minute, and all clients together (a
/// guesser with many addresses). Past either, sign-in answers 429 without comparing tokens;
/// open sessions keep working.
pub const SIGN_IN_FAILURES_PER_CLIENT: u32 = 5;
pub const SIGN_IN_FAILURES_OVERALL: u32 = 30;

/// Counts failed sign-ins in a sliding minute, per client address and overall.
pub struct SignInThrottle {
    per_client: RateLimiter,
    overall: RateLimiter,
}

/// The key of the overall count.
const EVERYONE: &str = "everyone";

impl SignInThrottle {
    pub fn new(per_client: u32, overall: u32) -> SignInThrottle {
        SignInThrottle { per_client: RateLimiter::per_minute(per_client), overall: RateLimiter::per_minute(overall) }
    }

    /// Seconds to wait before `client` may try again, if it (or everyone) failed too often.
    pub fn wait(&self, client: Option<std::net::IpAddr>) -> Option<u64> {
        let mine = client.and_then(|ip| self.per_client.wait(&ip.to_string()));
        self.overall.wait(EVERYONE).into_iter().chain(mine).max()
    }

    /// Records one failed attempt by `client`.
    pub fn failed(&self, client: Option<std::net::IpAddr>) {
        self.overall.record(EVERYONE);
        if let Some(ip) = client {
            self.per_client.record(&ip.to_string());
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
        let mut recent = self.recent(now);
        let times = recent.entry(key.to_string()).or_default();
        if let Some(wait) = self.wait_in(times, now) {
            return Err(wait);
        }
        times.push_back(now);
        Ok(())
    }

    /// Seconds `key` must wait before its next event, without counting one.
    pub fn wait(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut recent = self.recent.lock().expect("not poisoned");
        recent.get_mut(key).and_then(|times| self.wait_in(times, now))
    }

    /// Counts an event for `key` whatever the limit says (the newest `limit` are kept): for
    /// events that happen anyway, such as a failed attempt, which later `wait`s then see.
    pub fn record(&self, key: &str) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        let mut recent = self.recent(now);
        let times = recent.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Gives back the event `check` counted last for `key`, when the work it allowed was not
    /// done (the grader was full): a participant who waits as told must not lose a turn.
    pub fn refund(&self, key: &str) {
        if let Some(times) = self.recent.lock().expect("not poisoned").get_mut(key) {
            times.pop_back();
        }
    }

    /// The counts, without idle keys, so the map cannot grow without bound.
    fn recent(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        let mut recent = self.recent.lock().expect("not poisoned");
        recent.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        recent
    }

    /// Drops `times` older than the window; at the limit, the seconds until the oldest counted
    /// one leaves it.
    fn wait_in(&self, times: &mut VecDeque<Instant>, now: Instant) -> Option<u64> {
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        (self.limit > 0 && times.len() >= self.limit).then(|| {
            let oldest = times[times.len() - self.limit];
            self.window.saturating_sub(now.duration_since(oldest)).as_secs().max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_failures_lock_the_client_then_everyone() {
        let throttle = SignInThrottle::new(2, 3);
        let (a, b, c) = (Some("10.0.0.1".parse().unwrap()), Some("10.0.0.2".parse().unwrap()), None);
        assert_eq!(throttle.wait(a), None);
        throttle.failed(a);
        throttle.failed(a);
        assert!(throttle.wait(a).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(throttle.wait(b), None, "another client may still try");
        throttle.failed(b);
        assert!(throttle.wait(c).is_some(), "three failures overall lock everyone");
    }

    #[test]
    fn events_split_every_line_ending() {
        assert_eq!(
            &sse_event("leaderboard", "<p>a\r\nb\rc\nd</p>")[..],
            b"event: leaderboard\ndata: <p>a\ndata: b\ndata: c\ndata: d</p>\n\n"
        );
    }

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

//! Fair use: the one owner of what a single client may spend, so that nobody (a careless
//! script, a prankster) can exhaust the event's key, fill `MOA_MAX_RUNS` or the grader for
//! everyone else. The numbers live in [`FairUseSettings`]; every refusal is a 429 with a
//! sentence and `Retry-After`.
//!
//! Who is a client: a claimed participant (their token), else an anonymous browser (the
//! `moa_browser` cookie the chat page hands out), else the network address. Every run also
//! counts against its network address, a generous backstop for scripts that drop cookies.
//! Counts are per server instance, like the other rate limits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::FairUseSettings;
use crate::error::AppError;
use crate::live::RateLimiter;
use crate::metrics::Limit;
use crate::moa::Plan;

/// Sign-in code attempts per network address per minute (guessing a 49-bit code is hopeless
/// at this rate, and a person mistyping twice is not held up).
const SIGN_INS_PER_IP_PER_MINUTE: u32 = 10;
/// How long a client that holds too many runs is asked to wait before trying again.
const RUNS_RETRY_S: u64 = 5;
const MINUTE: Duration = Duration::from_secs(60);

/// Whom a run is counted against: a key for the client, and its network address.
pub struct Client {
    key: String,
    ip: String,
}

impl Client {
    /// `key` names the client (a participant, a browser); every client also counts against
    /// its network `address`.
    pub fn new(key: String, address: &str) -> Client {
        Client { key, ip: format!("address:{address}") }
    }
}

/// Model calls a run plans to make: every agent in every layer, and the main model.
pub fn planned_calls(plan: &Plan) -> u64 {
    plan.config.layer_agents.len() as u64 * u64::from(plan.config.cycles) + 1
}

/// Tokens a run may read and write at most, from its budget: each layer's agents read about
/// the previous layer's answers and write their max tokens; the main model reads and writes.
pub fn planned_tokens(plan: &Plan) -> u64 {
    let budget = &plan.budget;
    let layer: u64 = budget.agent_max_tokens.iter().map(|&t| u64::from(t) + budget.helper).sum();
    layer * u64::from(plan.config.cycles) + budget.main_input + u64::from(budget.main_answer)
}

/// Amounts in a sliding minute, per key.
#[derive(Default)]
struct Window(HashMap<String, VecDeque<(Instant, u64)>>);

impl Window {
    fn used(&mut self, key: &str, now: Instant) -> u64 {
        let Some(entries) = self.0.get_mut(key) else { return 0 };
        while entries.front().is_some_and(|(t, _)| now.duration_since(*t) >= MINUTE) {
            entries.pop_front();
        }
        entries.iter().map(|(_, n)| n).sum()
    }

    /// Seconds until `amount` more fits under `limit` (0 if it fits now).
    fn wait(&mut self, key: &str, amount: u64, limit: u64, now: Instant) -> u64 {
        let mut used = self.used(key, now);
        if used + amount <= limit {
            return 0;
        }
        for (at, n) in self.0.get(key).into_iter().flatten() {
            used -= n;
            if used + amount <= limit {
                return MINUTE.saturating_sub(now.duration_since(*at)).as_secs().max(1);
            }
        }
        60
    }

    fn add(&mut self, key: &str, amount: u64, now: Instant) {
        // Forget idle keys so the map cannot grow without bound.
        if self.0.len() > 10_000 {
            self.0.retain(|_, e| e.back().is_some_and(|(t, _)| now.duration_since(*t) < MINUTE));
        }
        self.0.entry(key.to_string()).or_default().push_back((now, amount));
    }

    /// Replaces the newest entry of `key` charged at `at` by `amount` (a run's real usage).
    fn settle(&mut self, key: &str, at: Instant, amount: u64) {
        if let Some(entry) = self.0.get_mut(key).and_then(|e| e.iter_mut().rev().find(|(t, _)| *t == at)) {
            entry.1 = amount;
        }
    }
}

#[derive(Default)]
struct Counts {
    running: HashMap<String, usize>,
    calls: Window,
    event_tokens: Window,
}

pub struct FairUse {
    limits: FairUseSettings,
    counts: Mutex<Counts>,
    /// Participants with a submission being graded, and its generation: each participant holds
    /// at most one grading slot.
    grading: Mutex<HashMap<String, String>>,
    pub claims: RateLimiter,
    pub sign_ins: RateLimiter,
}

/// The event key's budget is one shared key in [`Counts::event_tokens`].
const EVENT: &str = "event";

impl FairUse {
    pub fn new(limits: &FairUseSettings) -> FairUse {
        FairUse {
            limits: limits.clone(),
            counts: Mutex::default(),
            grading: Mutex::default(),
            claims: RateLimiter::per_minute(limits.claims_per_ip_per_minute),
            sign_ins: RateLimiter::per_minute(SIGN_INS_PER_IP_PER_MINUTE),
        }
    }

    pub fn chat_requires_name(&self) -> bool {
        self.limits.chat_requires_name
    }

    /// Counts a new run of `plan` for `client`, or refuses it. `event_key` says whether the run
    /// spends the event's own key (the budget applies to that key only). Nothing is counted
    /// when the run is refused.
    pub fn admit_run(
        self: &Arc<Self>,
        client: &Client,
        plan: &Plan,
        event_key: bool,
    ) -> Result<RunAdmission, AppError> {
        let limits = &self.limits;
        let calls = planned_calls(plan);
        if limits.calls_per_minute > 0 && calls > limits.calls_per_minute {
            return Err(AppError::BadRequest(format!(
                "This configuration makes {calls} model calls per run, more than the {} a person may make per \
                 minute here; use fewer agents or layers.",
                limits.calls_per_minute
            )));
        }
        let now = Instant::now();
        let mut counts = self.counts.lock().expect("not poisoned");
        let running = |counts: &Counts, key: &str| counts.running.get(key).copied().unwrap_or(0);
        if limits.runs_per_client > 0 && running(&counts, &client.key) >= limits.runs_per_client {
            return Err(busy(
                Limit::RunsPerClient,
                format!(
                    "You already have {} runs going, the most one person may have at once; wait for one to \
                     finish, then ask again.",
                    limits.runs_per_client
                ),
                RUNS_RETRY_S,
            ));
        }
        if limits.runs_per_ip > 0 && running(&counts, &client.ip) >= limits.runs_per_ip {
            return Err(busy(
                Limit::RunsPerIp,
                format!(
                    "Your network address already has {} runs going, the most it may have at once; please try \
                     again in a few seconds.",
                    limits.runs_per_ip
                ),
                RUNS_RETRY_S,
            ));
        }
        for (key, limit, whose, which) in [
            (&client.key, limits.calls_per_minute, "you have", Limit::CallsPerMinute),
            (&client.ip, limits.calls_per_ip_per_minute, "your network address has", Limit::CallsPerIpPerMinute),
        ] {
            if limit == 0 {
                continue;
            }
            let wait = counts.calls.wait(key, calls, limit, now);
            if wait > 0 {
                let used = counts.calls.used(key, now);
                return Err(busy(
                    which,
                    format!(
                        "This run would make {calls} model calls and {whose} started {used} of the {limit} allowed \
                         per minute; try again in {wait} s, or use fewer agents or layers."
                    ),
                    wait,
                ));
            }
        }
        let tokens = planned_tokens(plan);
        let budget = limits.event_tokens_per_minute;
        let charge_event = event_key && budget > 0;
        if charge_event {
            if tokens > budget {
                return Err(AppError::BadRequest(format!(
                    "This run may use about {tokens} tokens, more than the event's key allows per minute \
                     ({budget}); use fewer agents, layers or max tokens, or paste your own API key."
                )));
            }
            let wait = counts.event_tokens.wait(EVENT, tokens, budget, now);
            if wait > 0 {
                return Err(busy(
                    Limit::EventTokensPerMinute,
                    format!(
                        "The event's API key is at its budget of {budget} tokens per minute; try again in {wait} s, \
                         or paste your own API key."
                    ),
                    wait,
                ));
            }
            counts.event_tokens.add(EVENT, tokens, now);
        }
        if limits.calls_per_minute > 0 {
            counts.calls.add(&client.key, calls, now);
        }
        if limits.calls_per_ip_per_minute > 0 {
            counts.calls.add(&client.ip, calls, now);
        }
        for key in [&client.key, &client.ip] {
            *counts.running.entry(key.clone()).or_default() += 1;
        }
        Ok(RunAdmission {
            fair: self.clone(),
            keys: [client.key.clone(), client.ip.clone()],
            event_charge: charge_event.then_some(now),
        })
    }

    /// A grading slot for `participant_id` to grade `generation_id`, or a 429 while another of
    /// their submissions is being graded: a flood of submissions delays only its sender.
    /// `Ok(None)` when this very generation is being graded (a retried request): wait for it.
    pub fn grading_slot(
        self: &Arc<Self>,
        participant_id: &str,
        generation_id: &str,
        retry_after_s: u64,
    ) -> Result<Option<GradingSlot>, AppError> {
        let mut grading = self.grading.lock().expect("not poisoned");
        match grading.get(participant_id) {
            Some(same) if same == generation_id => Ok(None),
            Some(_) => Err(busy(
                Limit::GradingPerParticipant,
                format!(
                    "Your previous submission is still being graded; send this one when its grade is back (about \
                     {retry_after_s} s)."
                ),
                retry_after_s,
            )),
            None => {
                grading.insert(participant_id.to_string(), generation_id.to_string());
                Ok(Some(GradingSlot { fair: self.clone(), participant_id: participant_id.to_string() }))
            }
        }
    }

    #[cfg(test)]
    fn running(&self, key: &str) -> usize {
        self.counts.lock().expect("not poisoned").running.get(key).copied().unwrap_or(0)
    }
}

fn busy(limit: Limit, message: String, retry_after_s: u64) -> AppError {
    crate::metrics::refused(limit);
    AppError::Busy { message, retry_after_s }
}

/// A run's place in its client's counts, held by the run's task until it ends, however it ends.
pub struct RunAdmission {
    fair: Arc<FairUse>,
    keys: [String; 2],
    event_charge: Option<Instant>,
}

impl RunAdmission {
    /// The run is over and used `tokens`: the event's budget counts what it really used.
    pub fn settle(&self, tokens: u64) {
        if let Some(at) = self.event_charge {
            self.fair.counts.lock().expect("not poisoned").event_tokens.settle(EVENT, at, tokens);
        }
    }
}

impl Drop for RunAdmission {
    fn drop(&mut self) {
        let mut counts = self.fair.counts.lock().expect("not poisoned");
        for key in &self.keys {
            if let Some(n) = counts.running.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.running.remove(key);
                }
            }
        }
    }
}

pub struct GradingSlot {
    fair: Arc<FairUse>,
    participant_id: String,
}

impl Drop for GradingSlot {
    fn drop(&mut self) {
        self.fair.grading.lock().expect("not poisoned").remove(&self.participant_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_says_when_an_amount_fits_again() {
        let mut window = Window::default();
        let now = Instant::now();
        window.add("a", 150, now);
        assert_eq!(window.wait("a", 100, 250, now), 0);
        window.add("a", 100, now);
        let wait = window.wait("a", 10, 250, now);
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(window.wait("b", 250, 250, now), 0, "per key");
        window.settle("a", now, 0);
        assert_eq!(window.used("a", now), 150, "a settled entry counts what was used");
        assert_eq!(window.wait("a", 100, 250, now + MINUTE), 0, "a minute later it is forgotten");
    }

    #[test]
    fn grading_slots_are_one_per_participant_and_freed_on_drop() {
        let fair = Arc::new(FairUse::new(&crate::config::Settings::from_lookup(|_| None).unwrap().fair_use));
        let slot = fair.grading_slot("ada", "g1", 10).unwrap().expect("free");
        assert!(matches!(fair.grading_slot("ada", "g2", 10), Err(AppError::Busy { retry_after_s: 10, .. })));
        assert!(fair.grading_slot("ada", "g1", 10).unwrap().is_none(), "the same generation waits");
        let _grace = fair.grading_slot("grace", "g3", 10).unwrap().expect("per participant");
        drop(slot);
        assert!(fair.grading_slot("ada", "g2", 10).unwrap().is_some());
        assert_eq!(fair.running("nobody"), 0);
    }
}

//! What every request handler shares: the application's state, built by [`crate::app`] at
//! start-up and handed to the router. It names the parts and owns none of their logic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use crate::config::Settings;
use crate::grader::{Challenges, Grader};
use crate::live::Live;
use crate::llm::{Catalog, ChatProvider};
use crate::store::{self, Pool};

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    /// The grader, or the sentence explaining why grading is unavailable.
    pub grader: Result<Arc<Grader>, String>,
    /// Every challenge this server offers (the grader grades these same ones).
    pub challenges: Arc<Challenges>,
    /// Flips to true when the server starts shutting down, so long streams can end.
    pub shutdown: watch::Receiver<bool>,
    /// The LLM provider (OpenAI-compatible HTTP); the endpoint and key go with each call.
    pub llm: Arc<dyn ChatProvider>,
    /// The configured providers and the models each offers (configured or discovered).
    pub catalog: Arc<Catalog>,
    /// Live leaderboard pushes and rate limits of this instance.
    pub live: Arc<Live>,
    /// MoA runs whose engine task is still alive (reported by /healthz; zero when idle).
    pub active_runs: Arc<AtomicUsize>,
    /// The last write the database refused (reported by /healthz).
    pub storage: Arc<store::StorageHealth>,
}

impl AppState {
    pub fn runs_in_flight(&self) -> usize {
        self.active_runs.load(Ordering::SeqCst)
    }
}

//! The Mixture-of-Agents engine, free of HTTP so the chat and the challenge share it:
//! [`prepare`] validates a configuration and question and checks the context budget, then
//! [`run`] executes the plan, reporting [`Event`]s on a channel.

pub mod budget;
pub mod config;
pub mod engine;
pub mod events;
pub mod offer;

pub use budget::Budget;
pub use config::{AgentConfig, Config};
pub use engine::{RunError, Runner, run};
pub use events::{AgentDelta, AgentResult, AgentTiming, AnswerDelta, Event, RunFailure, RunSummary};
pub use offer::{Offer, ProviderModels};

/// A run that passed every check: what to ask, how, and how much each model may write.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: Config,
    pub question: String,
    pub budget: Budget,
}

/// Validates `config` and `question` against what the server offers and refuses runs that would
/// overflow a model's context. The plan's configuration names every provider it uses.
/// The error is a sentence for the person who configured the run.
pub fn prepare(config: Config, question: &str, offer: &Offer) -> Result<Plan, String> {
    let config = config.validated(offer)?;
    let question = config::validate_question(question)?.to_string();
    let budget = Budget::estimate(&config, &question, offer).check()?;
    Ok(Plan { config, question, budget })
}

//! The Mixture-of-Agents engine, free of HTTP so the chat and the challenge share it:
//! [`prepare`] validates a configuration and question and checks the context budget, then
//! [`run`] executes the plan, reporting [`Event`]s on a channel. [`plan`] builds every request.

pub mod budget;
pub mod config;
pub mod engine;
pub mod events;
pub mod plan;

pub use budget::Budget;
pub use config::{AgentConfig, Config};
pub use engine::{RunError, Runner, run};
pub use events::{AgentDelta, AgentResult, AgentTiming, AnswerDelta, Event, RunFailure, RunSummary};
pub use plan::{Plan, prepare};

//! The moves a tuning search tries from the best configuration so far, one at a time: a new
//! main prompt written by a model from the grader's reasons (feedback, as prompt optimizers
//! do), cooler temperatures, one more layer, one more agent, another main model. Each move is
//! an ordinary configuration; the caller runs it and keeps it when it scores higher.

use crate::llm::{ChatRequest, Message, Offer};
use crate::moa::config::{HELPER_PLACEHOLDER, MAX_AGENTS, MAX_CYCLES};
use crate::moa::{AgentConfig, Config};

/// The order moves are tried in; the search goes round it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    RewritePrompt,
    CoolerTemperatures,
    AddLayer,
    AddAgent,
    OtherMainModel,
}

pub const MOVES: [Move; 5] =
    [Move::RewritePrompt, Move::CoolerTemperatures, Move::AddLayer, Move::AddAgent, Move::OtherMainModel];

/// At most this many layers and agents come from tuning: each adds calls to every run.
const MAX_TUNED_CYCLES: u32 = 3;
const MAX_TUNED_AGENTS: usize = 4;

/// Heads the request that asks a model for a better main prompt.
pub const REWRITE_INSTRUCTION: &str = "You improve prompts. A system prompt told a model to write a Python \
function; an automatic grader then found the problems listed below. Rewrite the system prompt so that the \
next answer avoids every one of them. Keep the literal text {helper_response} in it (the reviewers' notes go \
there), keep asking for the code in one ```python block, and reply with the new system prompt only.";

/// `best` changed by `step`, with why it is worth trying; `None` when the move changes nothing
/// here (temperatures already cool, no other model, at the size limit).
pub fn apply(step: Move, best: &Config, offer: &Offer) -> Option<(Config, String)> {
    let mut next = best.clone();
    let reason = match step {
        Move::RewritePrompt => return None, // needs a model's answer: see `rewrite_request`
        Move::CoolerTemperatures => {
            let cool = |t: f64| if t > 0.2 { 0.2 } else { t };
            if cool(next.main_temperature) == next.main_temperature
                && next.layer_agents.iter().all(|a| cool(a.temperature) == a.temperature)
            {
                return None;
            }
            next.main_temperature = cool(next.main_temperature);
            next.layer_agents.iter_mut().for_each(|a| a.temperature = cool(a.temperature));
            "cooler temperatures (0.2 at most): less sampling noise in the code".to_string()
        }
        Move::AddLayer => {
            if next.cycles >= MAX_TUNED_CYCLES.min(MAX_CYCLES) {
                return None;
            }
            next.cycles += 1;
            format!("{} layers: the agents review each other's answers once more", next.cycles)
        }
        Move::AddAgent => {
            if next.layer_agents.len() >= MAX_TUNED_AGENTS.min(MAX_AGENTS) {
                return None;
            }
            let base = next.layer_agents[0].clone();
            next.layer_agents.push(AgentConfig {
                name: format!("edge_cases_{}", next.layer_agents.len() + 1),
                prompt: format!(
                    "You review Python code for edge cases: empty input, missing or wrongly typed values, \
                     division by zero, inputs that must not change. List every problem and its fix.\n{HELPER_PLACEHOLDER}"
                ),
                ..base
            });
            format!("{} agents: one more reviewer, for edge cases", next.layer_agents.len())
        }
        Move::OtherMainModel => {
            let provider = offer.provider(best.main_provider.as_deref())?;
            // The next model of the same provider, round the list.
            let at = provider.models.iter().position(|m| m.name == best.main_model)?;
            let other = &provider.models[(at + 1) % provider.models.len()];
            if other.name == best.main_model {
                return None;
            }
            next.main_model = other.name.clone();
            format!("another main model: {}", other.name)
        }
    };
    Some((next, reason))
}

/// The request that asks `config`'s main model for a better main prompt, given the checks the
/// last run missed and the grader's reasons.
pub fn rewrite_request(config: &Config, missed: &[(String, String)]) -> ChatRequest {
    let problems: Vec<String> = missed.iter().map(|(check, reason)| format!("- {check}: {reason}")).collect();
    let user =
        format!("The system prompt:\n{}\n\nThe grader's findings:\n{}", config.system_prompt, problems.join("\n"));
    ChatRequest {
        model: config.main_model.clone(),
        messages: vec![Message::system(REWRITE_INSTRUCTION), Message::user(user)],
        temperature: 0.3,
        max_tokens: 1024,
    }
}

/// `config` with the main prompt a model wrote; `None` when the reply is no usable prompt.
pub fn with_rewritten_prompt(config: &Config, reply: &str) -> Option<(Config, String)> {
    let mut prompt = reply.trim().trim_matches('`').trim().to_string();
    if prompt.is_empty() || prompt == config.system_prompt {
        return None;
    }
    if !prompt.contains(HELPER_PLACEHOLDER) {
        prompt = format!("{prompt}\n\n{HELPER_PLACEHOLDER}");
    }
    let mut next = config.clone();
    next.system_prompt = prompt;
    Some((next, "a main prompt rewritten from the grader's reasons".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_MODELS, parse_models};

    fn offer() -> Offer {
        Offer::single(parse_models(DEFAULT_MODELS).unwrap())
    }

    #[test]
    fn each_move_changes_one_thing_and_stops_at_its_limit() {
        let start = Config::default();
        let (cool, _) = apply(Move::CoolerTemperatures, &start, &offer()).unwrap();
        assert_eq!((cool.main_temperature, cool.layer_agents[0].temperature), (0.2, 0.2));
        assert!(apply(Move::CoolerTemperatures, &cool, &offer()).is_none(), "already cool");
        let (deeper, _) = apply(Move::AddLayer, &start, &offer()).unwrap();
        assert_eq!(deeper.cycles, 2);
        let (wider, _) = apply(Move::AddAgent, &start, &offer()).unwrap();
        assert_eq!(wider.layer_agents.len(), 2);
        assert!(wider.layer_agents[1].prompt.contains(HELPER_PLACEHOLDER));
        let (other, reason) = apply(Move::OtherMainModel, &start, &offer()).unwrap();
        assert_ne!(other.main_model, start.main_model);
        assert!(reason.contains(&other.main_model));
        assert!(apply(Move::RewritePrompt, &start, &offer()).is_none(), "a model writes that one");
    }

    #[test]
    fn a_rewritten_prompt_keeps_the_placeholder() {
        let start = Config::default();
        let (next, _) = with_rewritten_prompt(&start, "```Guard every division.```").unwrap();
        assert_eq!(next.system_prompt, format!("Guard every division.\n\n{HELPER_PLACEHOLDER}"));
        assert!(with_rewritten_prompt(&start, "  ").is_none());
        let request = rewrite_request(&start, &[("handles_division_by_zero".into(), "ZeroDivisionError".into())]);
        assert!(request.messages[1].content.contains("- handles_division_by_zero: ZeroDivisionError"));
    }
}

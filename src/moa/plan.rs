//! What each model receives, built in one place: the engine sends these requests, the context
//! budget estimates them and the prompt inspector shows them, so none can drift from the others.

use serde::Serialize;

use super::budget::Budget;
use super::config::{self, AgentConfig, Config, HELPER_PLACEHOLDER};
use crate::llm::{ChatRequest, Message, Offer};

/// Heads the numbered list of a layer's answers in the next `{helper_response}`.
pub const AGGREGATOR_INSTRUCTION: &str = "Several assistants have answered the user's question; their answers are \
listed below. Some of them may be wrong, incomplete or contradict each other. Weigh them critically: keep what \
is correct, fix what is not, fill the gaps, and use them to write one answer that is better than any of them.";

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

impl Plan {
    /// The same question put to the main model alone, as one call with an empty
    /// `{helper_response}`: what the layers of agents are measured against.
    pub fn main_alone(&self, offer: &Offer) -> Plan {
        let config = Config { cycles: 0, layer_agents: Vec::new(), ..self.config.clone() };
        let budget = Budget::estimate(&config, &self.question, offer);
        Plan { config, question: self.question.clone(), budget }
    }

    /// What agent `index` is sent, given the previous layer's synthesis (empty in layer 1).
    pub fn agent_request(&self, index: usize, helper: &str) -> ChatRequest {
        agent_request(&self.config.layer_agents[index], helper, &self.question, self.budget.agent_max_tokens[index])
    }

    /// What the main model is sent, given the last layer's synthesis.
    pub fn main_request(&self, helper: &str) -> ChatRequest {
        main_request(&self.config, helper, &self.question, self.budget.main_answer)
    }
}

/// A layer agent's request: its prompt with the previous layer's answers, then the question.
pub fn agent_request(agent: &AgentConfig, helper: &str, question: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: agent.model.clone(),
        messages: vec![Message::system(agent.prompt.replace(HELPER_PLACEHOLDER, helper)), Message::user(question)],
        temperature: agent.temperature,
        max_tokens,
    }
}

/// The main model's request: the system prompt with the last layer's answers, then the question.
pub fn main_request(config: &Config, helper: &str, question: &str, max_tokens: u32) -> ChatRequest {
    // Qwen 3 models think aloud unless told not to; the original appended `/no_think` for them.
    let question = if is_qwen(&config.main_model) { format!("{question}\n/no_think") } else { question.to_string() };
    ChatRequest {
        model: config.main_model.clone(),
        messages: vec![
            Message::system(config.system_prompt.replace(HELPER_PLACEHOLDER, helper)),
            Message::user(question),
        ],
        temperature: config.main_temperature,
        max_tokens,
    }
}

fn is_qwen(model: &str) -> bool {
    model.to_ascii_lowercase().contains("qwen")
}

/// The next layer's `{helper_response}`: the instruction, then the answers as a numbered list.
pub fn synthesize(answers: &[&str]) -> String {
    let mut text = String::from(AGGREGATOR_INSTRUCTION);
    for (i, answer) in answers.iter().enumerate() {
        text.push_str(&format!("\n\n{}. {}", i + 1, answer.trim()));
    }
    text
}

/// One request of a run as the prompt inspector shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedMessage {
    /// "Layer 2 · bug_hunter" or "Main model".
    pub who: String,
    pub provider: String,
    pub model: String,
    pub system: String,
    pub user: String,
    pub max_tokens: u32,
}

/// Every request `config` would send for `question`, in order, with each layer's answers shown
/// as placeholders (they do not exist before the run). `config` is validated.
pub fn preview(config: &Config, question: &str, budget: &Budget) -> Vec<PlannedMessage> {
    let answers_of = |layer: u32| -> String {
        let placeholders: Vec<String> =
            config.layer_agents.iter().map(|a| format!("[{}'s answer in layer {layer}]", a.name)).collect();
        synthesize(&placeholders.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let planned = |who: String, provider: &Option<String>, request: ChatRequest| {
        let [system, user] = request.messages.try_into().expect("two messages");
        PlannedMessage {
            who,
            provider: provider.clone().unwrap_or_default(),
            model: request.model,
            system: system.content,
            user: user.content,
            max_tokens: request.max_tokens,
        }
    };
    let mut messages = Vec::new();
    for layer in 1..=config.cycles {
        let helper = if layer == 1 { String::new() } else { answers_of(layer - 1) };
        for (agent, max_tokens) in config.layer_agents.iter().zip(&budget.agent_max_tokens) {
            let request = agent_request(agent, &helper, question, *max_tokens);
            messages.push(planned(format!("Layer {layer} · {}", agent.name), &agent.provider, request));
        }
    }
    let request = main_request(config, &answers_of(config.cycles), question, budget.main_answer);
    messages.push(planned("Main model".into(), &config.main_provider, request));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthesis_numbers_every_answer_under_the_instruction() {
        let text = synthesize(&["first", " second\n"]);
        assert!(text.starts_with(AGGREGATOR_INSTRUCTION));
        assert!(text.ends_with("\n\n1. first\n\n2. second"));
    }

    #[test]
    fn qwen_main_models_are_told_not_to_think() {
        let mut config = Config { main_model: "qwen-3-32b".into(), ..Config::default() };
        assert_eq!(main_request(&config, "", "Why?", 1).messages[1].content, "Why?\n/no_think");
        config.main_model = "llama3.1-8b".into();
        assert_eq!(main_request(&config, "", "Why?", 1).messages[1].content, "Why?");
    }

    #[test]
    fn the_preview_is_what_the_engine_sends() {
        let config = Config { cycles: 2, ..Config::default() };
        let budget = Budget {
            main_model: config.main_model.clone(),
            main_context: 8192,
            main_input: 0,
            helper: 0,
            main_answer: 700,
            agent_max_tokens: vec![300],
            problem: None,
        };
        let plan = Plan { config: config.clone(), question: "Q".into(), budget: budget.clone() };
        let preview = preview(&config, "Q", &budget);
        assert_eq!(preview.len(), 3);
        let first = plan.agent_request(0, "");
        assert_eq!((preview[0].system.as_str(), preview[0].max_tokens), (first.messages[0].content.as_str(), 300));
        let main = plan.main_request(&synthesize(&[&format!("[{}'s answer in layer 2]", config.layer_agents[0].name)]));
        assert_eq!(preview[2].system, main.messages[0].content);
        assert_eq!(preview[2].max_tokens, 700);
    }
}

//! The context guard: estimate what every model will read before anything is sent, refuse a run
//! that would overflow the main model (the original challenge blocked these too), and cap each
//! answer so that it fits its model.
//!
//! Estimates are about four characters per token and assume every agent writes its full
//! `max_tokens`, so they err on the safe side.

use serde::Serialize;

use super::config::{AgentConfig, Config};
use super::plan::{AGGREGATOR_INSTRUCTION, agent_request, main_request};
use crate::llm::{Offer, estimate_prompt_tokens, estimate_tokens};

/// The main model must have at least this much room left to answer.
pub const MIN_MAIN_ANSWER: u32 = 512;
/// The main model is never asked for more than this.
pub const MAX_MAIN_ANSWER: u32 = 4096;
/// An agent must have at least this much room left to answer.
pub const MIN_AGENT_ANSWER: u32 = 64;

/// What a run will read and may write, in estimated tokens.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Budget {
    pub main_model: String,
    pub main_context: u32,
    /// The main model's prompt: system prompt with the last layer's answers, plus the question.
    pub main_input: u64,
    /// The most the last layer's synthesized answers can take.
    pub helper: u64,
    /// How long the main model's answer may be (0 when it does not fit).
    pub main_answer: u32,
    /// Per agent (in config order): the `max_tokens` actually sent, capped to fit its model.
    pub agent_max_tokens: Vec<u32>,
    /// Why the run cannot go ahead, with suggestions; `None` when it fits.
    pub problem: Option<String>,
}

impl Budget {
    /// Estimates `config` (already validated) answering `question`, with each model's context
    /// size as its own provider states it.
    pub fn estimate(config: &Config, question: &str, offer: &Offer) -> Budget {
        // Each request as `plan` builds it with an empty `{helper_response}`, plus the most the
        // synthesized answers can take there.
        // Without layers (the main model alone) nothing is synthesized.
        let helper = if config.cycles == 0 { 0 } else { helper_tokens(&config.layer_agents) };
        let main_input = estimate_prompt_tokens(&main_request(config, "", question, 0).messages) + helper;
        let main_context = offer.context(config.main_provider.as_deref(), &config.main_model);
        let room = u64::from(main_context).saturating_sub(main_input);
        let main_answer = room.min(u64::from(MAX_MAIN_ANSWER)) as u32;

        let mut problem = None;
        let mut agent_max_tokens = Vec::with_capacity(config.layer_agents.len());
        for agent in &config.layer_agents {
            // From the second layer on, an agent reads the previous layer's answers too.
            let read_helper = if config.cycles > 1 { helper } else { 0 };
            let input = estimate_prompt_tokens(&agent_request(agent, "", question, 0).messages) + read_helper;
            let context = offer.context(agent.provider.as_deref(), &agent.model);
            let room = u64::from(context).saturating_sub(input);
            if room < u64::from(MIN_AGENT_ANSWER) && problem.is_none() {
                problem = Some(format!(
                    "Agent {:?} would read about {} tokens from layer 2 on, but {} reads at most {}. \
                     Try fewer agents, lower max tokens per agent, or a model with a bigger context for it.",
                    agent.name,
                    thousands(input),
                    agent.model,
                    thousands(u64::from(context)),
                ));
            }
            agent_max_tokens.push(agent.max_tokens.min(room as u32).max(1));
        }
        if main_answer < MIN_MAIN_ANSWER {
            problem = Some(main_overflow(config, offer, main_input, helper, main_context));
        }
        Budget {
            main_model: config.main_model.clone(),
            main_context,
            main_input,
            helper,
            main_answer,
            agent_max_tokens,
            problem,
        }
    }

    /// `Ok` with the budget when the run fits, else the sentence explaining why not.
    pub fn check(self) -> Result<Budget, String> {
        match self.problem {
            Some(problem) => Err(problem),
            None => Ok(self),
        }
    }
}

/// The most the synthesized answers of one layer can take: the instruction plus every agent's
/// full answer, numbered.
pub fn helper_tokens(agents: &[AgentConfig]) -> u64 {
    estimate_tokens(AGGREGATOR_INSTRUCTION) + agents.iter().map(|a| u64::from(a.max_tokens) + 2).sum::<u64>()
}

fn main_overflow(config: &Config, offer: &Offer, main_input: u64, helper: u64, context: u32) -> String {
    let agents = config.layer_agents.len() as u64;
    let mut sentence = format!(
        "This configuration would overflow the main model: {} reads at most {} tokens, but its prompt alone \
         would take about {} (of which up to {} are the answers of the last layer's {} agent{}), leaving less \
         than {} for its answer.",
        config.main_model,
        thousands(u64::from(context)),
        thousands(main_input),
        thousands(helper),
        agents,
        if agents == 1 { "" } else { "s" },
        MIN_MAIN_ANSWER,
    );
    let mut tips = Vec::new();
    // What each agent's max tokens would have to be for the main model to fit.
    let fixed = main_input - config.layer_agents.iter().map(|a| u64::from(a.max_tokens)).sum::<u64>();
    let spare = u64::from(context).saturating_sub(fixed + u64::from(MIN_MAIN_ANSWER));
    let per_agent = spare / agents.max(1);
    if agents > 1 {
        tips.push("fewer agents".to_string());
    }
    if per_agent >= 64 {
        tips.push(format!("max tokens of at most {} per agent", thousands(per_agent)));
    }
    // The smallest model that fits, on any provider; the main model's own provider wins a tie.
    let main_provider = offer.provider(config.main_provider.as_deref()).map(|p| p.name.as_str());
    let bigger = offer
        .providers()
        .iter()
        .flat_map(|p| p.models.iter().map(move |m| (p.name.as_str(), m)))
        .filter(|(_, m)| u64::from(m.context_tokens) >= main_input + u64::from(MIN_MAIN_ANSWER))
        .min_by_key(|(provider, m)| (m.context_tokens, Some(*provider) != main_provider));
    if let Some((provider, model)) = bigger {
        let place = if Some(provider) == main_provider { String::new() } else { format!(" on {provider}") };
        tips.push(format!(
            "a main model with a bigger context, such as {}{place} ({} tokens)",
            model.name,
            thousands(u64::from(model.context_tokens))
        ));
    }
    if !tips.is_empty() {
        sentence += &format!(" Try {}.", join_or(&tips));
    }
    sentence
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{}, or {last}", rest.join(", ")),
    }
}

/// 16384 → "16,384".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_MODELS, ModelSpec, parse_models};
    use crate::llm::ProviderModels;

    fn models() -> Offer {
        Offer::single(parse_models(DEFAULT_MODELS).unwrap())
    }

    fn with_agents(n: usize, max_tokens: u32) -> Config {
        let mut config = Config::default();
        let mut agent = config.layer_agents[0].clone();
        agent.max_tokens = max_tokens;
        config.layer_agents = (0..n).map(|i| AgentConfig { name: format!("a{i}"), ..agent.clone() }).collect();
        config
    }

    #[test]
    fn the_default_fits_with_room_to_answer() {
        let budget = Budget::estimate(&Config::default(), "What is MoA?", &models()).check().unwrap();
        assert_eq!(budget.main_context, 8192);
        assert_eq!(budget.main_answer, MAX_MAIN_ANSWER);
        assert_eq!(budget.agent_max_tokens, vec![512]);
        assert!(budget.helper > 512);
    }

    #[test]
    fn an_overflowing_main_model_is_refused_with_suggestions() {
        let err = Budget::estimate(&with_agents(4, 2048), "q", &models()).check().unwrap_err();
        assert!(err.contains("llama3.1-8b reads at most 8,192 tokens"), "{err}");
        assert!(err.contains("fewer agents"), "{err}");
        assert!(err.contains("max tokens of at most"), "{err}");
        assert!(err.contains("qwen-3-32b (16,384 tokens)"), "{err}");
        // The suggested main model does fit.
        let mut config = with_agents(4, 2048);
        config.main_model = "qwen-3-32b".into();
        Budget::estimate(&config, "q", &models()).check().unwrap();
    }

    #[test]
    fn the_main_answer_shrinks_to_what_fits() {
        let budget = Budget::estimate(&with_agents(3, 1500), "q", &models()).check().unwrap();
        assert!(budget.main_answer < MAX_MAIN_ANSWER && budget.main_answer >= MIN_MAIN_ANSWER);
        assert_eq!(budget.main_input + u64::from(budget.main_answer), 8192);
    }

    #[test]
    fn later_layers_must_fit_each_agent() {
        let mut config = with_agents(8, 1000);
        config.main_model = "qwen-3-32b".into();
        assert!(Budget::estimate(&config, "q", &models()).check().is_ok(), "one layer reads no answers");
        config.cycles = 2;
        let err = Budget::estimate(&config, "q", &models()).check().unwrap_err();
        assert!(err.starts_with("Agent \"a0\" would read about"), "{err}");
    }

    #[test]
    fn numbers_get_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(16384), "16,384");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn context_sizes_are_per_provider() {
        // The same model name: 8,192 tokens on the default provider, 32,768 on the local one.
        let shared = |context_tokens| vec![ModelSpec { name: "llama3.1-8b".into(), context_tokens }];
        let offer = Offer::new(vec![
            ProviderModels { name: "cerebras".into(), models: shared(8192), discovered: false },
            ProviderModels { name: "local".into(), models: shared(32_768), discovered: false },
        ]);
        let err = Budget::estimate(&with_agents(4, 2048), "q", &offer).check().unwrap_err();
        assert!(err.contains("llama3.1-8b reads at most 8,192 tokens"), "{err}");
        assert!(err.contains("such as llama3.1-8b on local (32,768 tokens)"), "{err}");
        let mut config = with_agents(4, 2048);
        config.main_provider = Some("local".into());
        let budget = Budget::estimate(&config, "q", &offer).check().unwrap();
        assert_eq!(budget.main_context, 32_768);
        // Agents are capped by their own provider's context.
        let mut config = with_agents(1, 4096);
        config.layer_agents[0].prompt = format!("{} {{helper_response}}", "word ".repeat(20_000));
        config.main_provider = Some("local".into());
        let on_default = Budget::estimate(&config, "q", &offer);
        config.layer_agents[0].provider = Some("local".into());
        let on_local = Budget::estimate(&config, "q", &offer);
        assert!(on_default.problem.unwrap().contains("llama3.1-8b reads at most 8,192"), "25,000 tokens do not fit");
        assert_eq!((on_local.problem, on_local.agent_max_tokens), (None, vec![4096]));
    }
}

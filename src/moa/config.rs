//! The MoA configuration in the workshop's export format, its defaults and its validation.
//!
//! `/api/*` accept either the inner object or the export wrapper
//! `{"ai_configuration": {...}, "exported_at": ..., "version": "2.0"}`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::llm::Offer;

/// Where the previous layer's synthesized answers go in every prompt.
pub const HELPER_PLACEHOLDER: &str = "{helper_response}";
/// Layers ("cycles") per run, as the original challenge allowed.
pub const MAX_CYCLES: u32 = 10;
/// Agents per layer: each costs one call per layer, and a room shares rate limits.
pub const MAX_AGENTS: usize = 8;
/// The original UI's upper bound for an agent's answer.
pub const MAX_AGENT_TOKENS: u32 = 4096;
pub const MAX_QUESTION_CHARS: usize = 8_000;
pub const MAX_PROMPT_CHARS: usize = 8_000;
pub const MAX_NAME_CHARS: usize = 40;

/// One agent of every layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentConfig {
    pub name: String,
    /// The provider serving `model`; missing (the workshop's own format) means the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub model: String,
    pub temperature: f64,
    /// System prompt; must contain [`HELPER_PLACEHOLDER`].
    pub prompt: String,
    #[serde(default = "default_agent_tokens")]
    pub max_tokens: u32,
}

/// A whole MoA setup. Serializes as the inner object of the export format.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(description = "A MoA configuration: this inner object, or the workshop's export wrapping it as \
    {\"ai_configuration\": …, \"exported_at\", \"version\"}. Prompts must contain {helper_response}; \
    temperatures 0.0–1.0, cycles 1–10.")]
pub struct Config {
    /// The provider serving `main_model`; missing means the default one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_provider: Option<String>,
    pub main_model: String,
    pub main_temperature: f64,
    /// Number of agent layers run before the main model.
    pub cycles: u32,
    /// The main model's system prompt; must contain [`HELPER_PLACEHOLDER`].
    pub system_prompt: String,
    pub layer_agents: Vec<AgentConfig>,
}

fn default_agent_tokens() -> u32 {
    512
}

/// The same fields as [`Config`], for deserializing after the wrapper is taken off.
#[derive(Deserialize)]
struct ConfigFields {
    #[serde(default)]
    main_provider: Option<String>,
    main_model: String,
    main_temperature: f64,
    cycles: u32,
    system_prompt: String,
    layer_agents: Vec<AgentConfig>,
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Config::from_json(value).map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// Accepts the inner object or the export wrapper.
    pub fn from_json(mut value: serde_json::Value) -> Result<Config, String> {
        if let Some(inner) = value.get_mut("ai_configuration") {
            value = inner.take();
        }
        let fields: ConfigFields = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            format!("the configuration is not in the workshop format: {}", field_problem(&path, &inner))
        })?;
        Ok(Config {
            main_provider: fields.main_provider,
            main_model: fields.main_model,
            main_temperature: fields.main_temperature,
            cycles: fields.cycles,
            system_prompt: fields.system_prompt,
            layer_agents: fields.layer_agents,
        })
    }

    /// The export format, stamped `at_ms` (milliseconds since the epoch).
    pub fn to_export(&self, at_ms: i64) -> serde_json::Value {
        export(serde_json::to_value(self).expect("a configuration is plain data"), at_ms)
    }

    /// Checks every limit; the error is one sentence naming the field to fix.
    pub fn validate(&self, offer: &Offer) -> Result<(), String> {
        let known = |provider: Option<&str>, model: &str, whose: &str| -> Result<(), String> {
            let Some(found) = offer.provider(provider) else {
                let names: Vec<&str> = offer.providers().iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "{whose} uses the provider {:?}, which this server does not have; choose one of: {} (the server's MOA_PROVIDERS setting lists them).",
                    provider.unwrap_or_default(),
                    names.join(", ")
                ));
            };
            if found.models.iter().any(|m| m.name == model) {
                return Ok(());
            }
            let offered: Vec<&str> = found.models.iter().map(|m| m.name.as_str()).collect();
            if offer.is_multi() {
                Err(format!(
                    "{whose} uses the model {model:?}, which the provider {:?} does not offer; choose one of: {}.",
                    found.name,
                    offered.join(", ")
                ))
            } else {
                Err(format!(
                    "{whose} uses the model {model:?}, which this server does not offer; choose one of: {} (the server's MOA_MODELS setting lists them).",
                    offered.join(", ")
                ))
            }
        };
        known(self.main_provider.as_deref(), &self.main_model, "The main model setting")?;
        temperature(self.main_temperature, "The main temperature")?;
        if !(1..=MAX_CYCLES).contains(&self.cycles) {
            return Err(format!(
                "The number of layers (cycles) must be between 1 and {MAX_CYCLES}, not {}.",
                self.cycles
            ));
        }
        prompt(&self.system_prompt, "The main system prompt")?;
        if self.layer_agents.is_empty() {
            return Err("Add at least one layer agent.".into());
        }
        if self.layer_agents.len() > MAX_AGENTS {
            return Err(format!(
                "At most {MAX_AGENTS} agents per layer, please ({} given): every agent is one call per layer.",
                self.layer_agents.len()
            ));
        }
        for (i, agent) in self.layer_agents.iter().enumerate() {
            let name = agent.name.trim();
            if name.is_empty() {
                return Err(format!("Agent {} needs a name.", i + 1));
            }
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(format!("Agent {}'s name is longer than {MAX_NAME_CHARS} characters.", i + 1));
            }
            let whose = format!("Agent {name:?}");
            known(agent.provider.as_deref(), &agent.model, &whose)?;
            temperature(agent.temperature, &format!("{whose}'s temperature"))?;
            prompt(&agent.prompt, &format!("{whose}'s prompt"))?;
            if !(1..=MAX_AGENT_TOKENS).contains(&agent.max_tokens) {
                return Err(format!(
                    "{whose}'s max tokens must be between 1 and {MAX_AGENT_TOKENS}, not {}.",
                    agent.max_tokens
                ));
            }
        }
        Ok(())
    }

    /// Validates, then writes each provider's own name where the configuration left it out or
    /// said `default`, so what is stored and exported says where each model ran.
    pub fn validated(self, offer: &Offer) -> Result<Config, String> {
        self.validate(offer)?;
        Ok(self.with_provider_names(offer))
    }

    /// Names each provider this server knows where the configuration left it out or said
    /// `default` (the one place that default is resolved); unknown ones stay as they are.
    pub fn with_provider_names(mut self, offer: &Offer) -> Config {
        let name = |provider: &mut Option<String>| {
            if let Some(found) = offer.provider(provider.as_deref()) {
                *provider = Some(found.name.clone());
            }
        };
        name(&mut self.main_provider);
        self.layer_agents.iter_mut().for_each(|agent| name(&mut agent.provider));
        self
    }
}

/// `layer_agents[1].temperature` with serde's "invalid type: null, expected f64" as a person
/// reads it: "agent 2's temperature needs a number".
fn field_problem(path: &str, error: &str) -> String {
    fn field(name: &str) -> &str {
        match name {
            "main_model" => "the main model",
            "main_provider" => "the main provider",
            "main_temperature" => "the main temperature",
            "cycles" => "the number of layers",
            "system_prompt" => "the main system prompt",
            "layer_agents" => "the list of layer agents",
            "max_tokens" => "max tokens",
            other => other,
        }
    }
    let what = match path.split_once('.') {
        Some((agent, name)) if agent.starts_with("layer_agents[") => {
            let index: usize = agent.trim_start_matches("layer_agents[").trim_end_matches(']').parse().unwrap_or(0);
            format!("agent {}'s {}", index + 1, field(name))
        }
        _ if path == "." => return error.to_string(),
        _ => field(path).to_string(),
    };
    let expected = error.split(", expected ").nth(1).unwrap_or("");
    let number = expected.len() > 1 && expected[1..].bytes().all(|b| b.is_ascii_digit());
    let kind = match expected {
        _ if number => "a number",
        "a string" => "text",
        "a sequence" => "a list",
        _ => "a value",
    };
    if error.starts_with("missing field") {
        error.replace("missing field", "a field is missing:")
    } else if error.starts_with("invalid type") || error.starts_with("invalid value") {
        format!("{what} needs {kind}")
    } else {
        format!("{what}: {error}")
    }
}

/// The workshop's export format, the one place it is built: the inner configuration wrapped with
/// the time (`2025-06-03 14:00:00`, UTC, as the original wrote it) and the format's version.
pub fn export(inner: serde_json::Value, at_ms: i64) -> serde_json::Value {
    let at = crate::store::format_utc(at_ms).replacen('T', " ", 1).trim_end_matches('Z').to_string();
    serde_json::json!({ "ai_configuration": inner, "exported_at": at, "version": "2.0" })
}

impl Default for Config {
    /// The original's defaults: `llama3.1-8b` at 0.7, one cycle, one helper agent.
    fn default() -> Config {
        Config {
            main_provider: None,
            main_model: "llama3.1-8b".into(),
            main_temperature: 0.7,
            cycles: 1,
            system_prompt: "You are a helpful assistant. Answer the user's question clearly and correctly.\n\n\
                Other assistants have already worked on it; use what is right in their work:\n{helper_response}"
                .into(),
            layer_agents: vec![AgentConfig {
                name: "helper".into(),
                provider: None,
                model: "llama3.1-8b".into(),
                temperature: 0.7,
                prompt: "You are a knowledgeable, careful assistant. Answer the user's question thoroughly and \
                    point out anything that is uncertain.\n{helper_response}"
                    .into(),
                max_tokens: default_agent_tokens(),
            }],
        }
    }
}

/// Checks the question a run answers; returns it trimmed.
pub fn validate_question(question: &str) -> Result<&str, String> {
    let question = question.trim();
    if question.is_empty() {
        return Err("Please type a question.".into());
    }
    let chars = question.chars().count();
    if chars > MAX_QUESTION_CHARS {
        return Err(format!("The question is {chars} characters long; at most {MAX_QUESTION_CHARS}, please."));
    }
    Ok(question)
}

fn temperature(value: f64, what: &str) -> Result<(), String> {
    if (0.0..=1.0).contains(&value) { Ok(()) } else { Err(format!("{what} must be between 0.0 and 1.0, not {value}.")) }
}

fn prompt(text: &str, what: &str) -> Result<(), String> {
    if !text.contains(HELPER_PLACEHOLDER) {
        return Err(format!(
            "{what} must contain {HELPER_PLACEHOLDER}: that is where the previous layer's answers go."
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(format!("{what} is {chars} characters long; at most {MAX_PROMPT_CHARS}, please."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelSpec, parse_models};
    use crate::llm::ProviderModels;

    fn models() -> Offer {
        Offer::single(parse_models(crate::config::DEFAULT_MODELS).unwrap())
    }

    /// The default provider named `cerebras` and a `local` one offering `llama3.2`.
    fn two_providers() -> Offer {
        let local = vec![ModelSpec { name: "llama3.2".into(), context_tokens: 32_768 }];
        Offer::new(vec![
            ProviderModels {
                name: "cerebras".into(),
                models: models().providers()[0].models.clone(),
                discovered: false,
            },
            ProviderModels { name: "local".into(), models: local, discovered: false },
        ])
    }

    #[test]
    fn shape_errors_name_the_field_in_words() {
        let mut value = serde_json::to_value(Config::default()).unwrap();
        value["layer_agents"][0]["temperature"] = serde_json::Value::Null;
        let err = Config::from_json(value.clone()).unwrap_err();
        assert!(err.ends_with("agent 1's temperature needs a number"), "{err}");
        value["layer_agents"] = serde_json::json!("x");
        assert!(Config::from_json(value).unwrap_err().ends_with("the list of layer agents needs a list"));
    }

    #[test]
    fn the_default_is_valid_and_round_trips_through_the_export_format() {
        let config = Config::default();
        config.validate(&models()).unwrap();
        let exported = config.to_export(1_748_959_200_000);
        assert_eq!(
            (exported["version"].as_str(), exported["exported_at"].as_str()),
            (Some("2.0"), Some("2025-06-03 14:00:00"))
        );
        let back: Config = serde_json::from_value(exported).unwrap();
        assert_eq!(back, config);
        let inner: Config = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(inner, config);
    }

    #[test]
    fn reads_the_workshop_export() {
        let json = r#"{"ai_configuration": {
          "main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
          "system_prompt": "Fix it. {helper_response}",
          "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0,
                            "prompt": "Find bugs. {helper_response}", "max_tokens": 512}]},
         "exported_at": "2025-06-03 14:00:00", "version": "2.0"}"#;
        let config: Config = serde_json::from_str(json).unwrap();
        assert_eq!(config.cycles, 2);
        assert_eq!(config.layer_agents[0].name, "bug_hunter");
        config.validate(&models()).unwrap();
    }

    #[test]
    fn missing_fields_are_named() {
        let err = Config::from_json(serde_json::json!({"main_model": "x"})).unwrap_err();
        assert!(err.contains("missing field"), "{err}");
    }

    #[test]
    fn each_limit_has_a_sentence() {
        let check = |change: &dyn Fn(&mut Config), expected: &str| {
            let mut config = Config::default();
            change(&mut config);
            let err = config.validate(&models()).unwrap_err();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        };
        check(&|c| c.main_temperature = 1.5, "between 0.0 and 1.0");
        check(&|c| c.layer_agents[0].temperature = -0.1, "temperature");
        check(&|c| c.cycles = 0, "between 1 and 10");
        check(&|c| c.cycles = 11, "between 1 and 10");
        check(&|c| c.system_prompt = "no placeholder".into(), "{helper_response}");
        check(&|c| c.layer_agents[0].prompt = "none".into(), "{helper_response}");
        check(&|c| c.layer_agents.clear(), "at least one");
        check(&|c| c.layer_agents = vec![c.layer_agents[0].clone(); 9], "At most 8");
        check(&|c| c.layer_agents[0].max_tokens = 0, "max tokens");
        check(&|c| c.layer_agents[0].max_tokens = 5000, "max tokens");
        check(&|c| c.main_model = "gpt-9".into(), "does not offer");
        check(&|c| c.layer_agents[0].name = " ".into(), "needs a name");
    }

    #[test]
    fn questions_are_trimmed_and_bounded() {
        assert_eq!(validate_question("  hi \n").unwrap(), "hi");
        assert!(validate_question("   ").is_err());
        assert!(validate_question(&"x".repeat(MAX_QUESTION_CHARS + 1)).is_err());
    }

    #[test]
    fn configs_without_providers_use_the_default_one_and_get_its_name() {
        let config = Config::default();
        assert_eq!(config.main_provider, None);
        let json = serde_json::to_value(&config).unwrap();
        assert!(json.get("main_provider").is_none() && json["layer_agents"][0].get("provider").is_none());
        let offer = two_providers();
        let named = config.clone().validated(&offer).unwrap();
        assert_eq!(named.main_provider.as_deref(), Some("cerebras"));
        assert_eq!(named.layer_agents[0].provider.as_deref(), Some("cerebras"));
        let exported = named.to_export(1_748_959_200_000);
        assert_eq!(exported["ai_configuration"]["main_provider"], "cerebras");
        assert_eq!(exported["ai_configuration"]["layer_agents"][0]["provider"], "cerebras");
        // `default` means the default provider on any server, so exports from one import on another.
        let mut portable = config;
        portable.main_provider = Some("default".into());
        assert_eq!(portable.validated(&offer).unwrap().main_provider.as_deref(), Some("cerebras"));
    }

    #[test]
    fn each_agent_is_checked_against_its_own_provider() {
        let offer = two_providers();
        let mut config = Config::default();
        config.layer_agents[0].provider = Some("local".into());
        let err = config.validate(&offer).unwrap_err();
        assert!(err.contains(r#"uses the model "llama3.1-8b", which the provider "local" does not offer"#), "{err}");
        config.layer_agents[0].model = "llama3.2".into();
        config.validate(&offer).unwrap();
        config.main_provider = Some("groq".into());
        let err = config.validate(&offer).unwrap_err();
        assert!(err.contains(r#"uses the provider "groq", which this server does not have"#), "{err}");
        assert!(err.contains("cerebras, local"), "{err}");
    }
}

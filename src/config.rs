//! Typed settings from the environment (and a `.env` file, read by `main`), with the CLI
//! overriding the listen address. Secrets are wrapped so they never print.

use std::fmt;
use std::time::Duration;

pub const DEFAULT_LLM_BASE_URL: &str = "https://api.cerebras.ai/v1";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/workshop.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Models offered when `MOA_MODELS` is unset, with their context windows (as the original).
pub const DEFAULT_MODELS: &str =
    "llama-3.3-70b:8192,llama3.1-8b:8192,llama-4-scout-17b-16e-instruct:8192,qwen-3-32b:16384";

/// A model the chat and challenge pages offer, and how many tokens it reads at most.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelSpec {
    pub name: String,
    pub context_tokens: u32,
}

/// Parses `name:context,name:context` (the `MOA_MODELS` format).
pub fn parse_models(list: &str) -> Result<Vec<ModelSpec>, String> {
    let mut models: Vec<ModelSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, context) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("MOA_MODELS: {item:?} needs a context size, e.g. llama3.1-8b:8192"))?;
        let name = name.trim();
        let context_tokens = context
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1024..=10_000_000).contains(n))
            .ok_or_else(|| format!("MOA_MODELS: the context size of {name:?} must be a number of tokens ≥ 1024"))?;
        if name.is_empty() || models.iter().any(|m| m.name == name) {
            return Err(format!("MOA_MODELS: {item:?} has an empty or repeated model name"));
        }
        models.push(ModelSpec { name: name.to_string(), context_tokens });
    }
    if models.is_empty() {
        return Err("MOA_MODELS must name at least one model, e.g. llama3.1-8b:8192".into());
    }
    Ok(models)
}

/// A value that must never reach logs, pages or the database.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    pub llm_base_url: String,
    pub llm_api_key: Option<Secret>,
    pub organizer_token: Option<Secret>,
    /// The Python interpreter the grader runs (`MOA_PYTHON`).
    pub python: String,
    /// Gradings at once (`MOA_GRADE_CONCURRENCY`, default: CPUs) and waiting (`MOA_GRADE_QUEUE`).
    pub grade_concurrency: Option<usize>,
    pub grade_queue: Option<usize>,
    /// Sandboxed interpreters kept started for the next submissions (`MOA_GRADE_PREWARM`,
    /// default: the grading concurrency; 0 starts one per submission).
    pub grade_prewarm: Option<usize>,
    /// Wall-clock limit of one grading run (`MOA_GRADE_TIMEOUT_SECS`).
    pub grade_timeout: Duration,
    /// Models offered, with context sizes (`MOA_MODELS="name:context,…"`, default [`DEFAULT_MODELS`]).
    pub models: Vec<ModelSpec>,
    /// Limit for one LLM call, streaming included (`MOA_LLM_TIMEOUT_SECS`, default 120).
    pub llm_timeout: Duration,
    /// How long after a run starts 429/5xx answers are still retried (`MOA_LLM_RETRY_SECS`,
    /// default 20; 0 turns retries off).
    pub llm_retry_window: Duration,
    /// Per-participant limits, so one attendee cannot exhaust a shared API key or the grader
    /// (`MOA_GENERATE_PER_MINUTE`, default 6; `MOA_SUBMIT_PER_MINUTE`, default 12; 0 = no limit).
    pub generate_per_minute: u32,
    pub submit_per_minute: u32,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| v.parse::<u64>().map_err(|_| format!("{name} must be a whole number, not {v:?}")))
                .transpose()
        };
        let llm_base_url = get("LLM_BASE_URL").unwrap_or_else(|| DEFAULT_LLM_BASE_URL.into());
        if !(llm_base_url.starts_with("http://") || llm_base_url.starts_with("https://")) {
            return Err(format!("LLM_BASE_URL must start with http:// or https://, not {llm_base_url:?}"));
        }
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres:")
            || database_url.starts_with("postgresql:"))
        {
            return Err("DATABASE_URL must be a sqlite:// or postgres:// URL".into());
        }
        let grade_timeout = number("MOA_GRADE_TIMEOUT_SECS")?.unwrap_or(10);
        if !(1..=600).contains(&grade_timeout) {
            return Err("MOA_GRADE_TIMEOUT_SECS must be between 1 and 600".into());
        }
        let llm_timeout = number("MOA_LLM_TIMEOUT_SECS")?.unwrap_or(120);
        if !(1..=3600).contains(&llm_timeout) {
            return Err("MOA_LLM_TIMEOUT_SECS must be between 1 and 3600".into());
        }
        let llm_retry_window = number("MOA_LLM_RETRY_SECS")?.unwrap_or(20).min(3600);
        let models = parse_models(&get("MOA_MODELS").unwrap_or_else(|| DEFAULT_MODELS.into()))?;
        Ok(Settings {
            listen: get("MOA_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database_url,
            llm_base_url: llm_base_url.trim_end_matches('/').to_string(),
            llm_api_key: get("LLM_API_KEY").or_else(|| get("CEREBRAS_API_KEY")).map(Secret::new),
            organizer_token: get("ORGANIZER_TOKEN").map(Secret::new),
            python: get("MOA_PYTHON").unwrap_or_else(|| "python3".into()),
            grade_concurrency: number("MOA_GRADE_CONCURRENCY")?.map(|n| n.max(1) as usize),
            grade_queue: number("MOA_GRADE_QUEUE")?.map(|n| n as usize),
            grade_prewarm: number("MOA_GRADE_PREWARM")?.map(|n| n.min(64) as usize),
            grade_timeout: Duration::from_secs(grade_timeout),
            models,
            llm_timeout: Duration::from_secs(llm_timeout),
            llm_retry_window: Duration::from_secs(llm_retry_window),
            generate_per_minute: number("MOA_GENERATE_PER_MINUTE")?.unwrap_or(6).min(10_000) as u32,
            submit_per_minute: number("MOA_SUBMIT_PER_MINUTE")?.unwrap_or(12).min(10_000) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.llm_base_url, DEFAULT_LLM_BASE_URL);
        assert!(s.llm_api_key.is_none() && s.organizer_token.is_none());
    }

    #[test]
    fn cerebras_key_is_accepted_and_never_printed() {
        let s = settings(&[("CEREBRAS_API_KEY", "csk-very-secret")]).unwrap();
        assert_eq!(s.llm_api_key.as_ref().unwrap().expose(), "csk-very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        let s = settings(&[("CEREBRAS_API_KEY", "a"), ("LLM_API_KEY", "b")]).unwrap();
        assert_eq!(s.llm_api_key.unwrap().expose(), "b");
    }

    #[test]
    fn bad_values_get_clear_errors() {
        assert!(settings(&[("LLM_BASE_URL", "api.example")]).unwrap_err().contains("http://"));
        assert!(settings(&[("DATABASE_URL", "mysql://x")]).unwrap_err().contains("sqlite://"));
        assert!(settings(&[("MOA_GRADE_CONCURRENCY", "two")]).unwrap_err().contains("whole number"));
        assert!(settings(&[("MOA_MODELS", "llama3.1-8b")]).unwrap_err().contains("context size"));
        assert!(settings(&[("MOA_MODELS", "a:8192,a:9000")]).unwrap_err().contains("repeated"));
    }

    #[test]
    fn models_default_as_the_original_and_can_be_replaced() {
        let s = settings(&[]).unwrap();
        let names: Vec<_> = s.models.iter().map(|m| (m.name.as_str(), m.context_tokens)).collect();
        assert_eq!(
            names,
            [
                ("llama-3.3-70b", 8192),
                ("llama3.1-8b", 8192),
                ("llama-4-scout-17b-16e-instruct", 8192),
                ("qwen-3-32b", 16384)
            ]
        );
        let s = settings(&[("MOA_MODELS", " gpt-4o-mini:128000 , llama3.2:8192 ")]).unwrap();
        assert_eq!(s.models[0], ModelSpec { name: "gpt-4o-mini".into(), context_tokens: 128_000 });
        assert_eq!(s.models[1].name, "llama3.2");
    }
}

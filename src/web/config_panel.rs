//! The MoA configuration form the chat and the challenge share, and what it asks the server:
//! `POST /config/check` (is it valid, does it fit, what will each model read: HTML for the
//! page), `POST /config/import` (a file in the workshop format, checked) and
//! `POST /config/export` (the workshop's export file). The page script only moves data.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use crate::config::ModelSpec;
use crate::error::AppError;
use crate::llm::host_of;
use crate::moa::budget::thousands;
use crate::moa::config::{MAX_AGENT_TOKENS, MAX_AGENTS, MAX_CYCLES, MAX_NAME_CHARS, MAX_QUESTION_CHARS};
use crate::moa::{self, Config};
use crate::state::AppState;
use crate::web::events;
use crate::web::json::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/config/check", post(check))
        .route("/config/import", post(import))
        .route("/config/export", post(export))
}

/// What the shared configuration form (`config_panel.html`, driven by `static/chat.js`) and its
/// key box need.
pub struct ConfigPanel {
    /// Every model on offer, by provider (the default first); each option's value is
    /// `[provider, model]` as JSON, which the page script reads back.
    pub offer: Vec<(String, Vec<ModelChoice>)>,
    /// Several providers: the model lists group and name them.
    pub multi: bool,
    /// JSON for the page script: the default configuration.
    pub defaults_json: String,
    /// The default provider, which a participant's own key is for: its name and host.
    pub key_provider: String,
    pub key_host: String,
    /// The event's key can serve runs on the default provider (it is set, and own keys are not required).
    pub event_key: bool,
    pub require_user_key: bool,
    pub max_cycles: u32,
    pub max_agents: usize,
    pub max_agent_tokens: u32,
    pub max_name_chars: usize,
    pub max_question_chars: usize,
    /// The browser storage key the configuration is kept under (chat and challenge differ).
    pub config_store: &'static str,
}

pub struct ModelChoice {
    pub value: String,
    pub name: String,
    pub context_tokens: u32,
}

impl ModelChoice {
    fn new(provider: &str, model: &ModelSpec) -> ModelChoice {
        let value = serde_json::json!([provider, model.name]).to_string();
        ModelChoice { value, name: model.name.clone(), context_tokens: model.context_tokens }
    }
}

impl ConfigPanel {
    /// The event's key can serve runs on the default provider (it is set, and own keys are not required).
    fn event_key(state: &AppState) -> bool {
        state.catalog.default_provider().api_key.is_some() && !state.settings.require_user_key
    }

    pub fn new(state: &AppState, config_store: &'static str) -> Result<ConfigPanel, AppError> {
        let offer = state.catalog.offer();
        let default = offer.default_provider();
        let mut defaults = Config::default();
        // A server offering other models starts from its first one.
        if !default.models.iter().any(|m| m.name == defaults.main_model) {
            let first = default.models[0].name.clone();
            defaults.main_model.clone_from(&first);
            defaults.layer_agents.iter_mut().for_each(|a| a.model.clone_from(&first));
        }
        let defaults = defaults.validated(&offer).map_err(AppError::internal)?;
        let key_provider = state.catalog.default_provider();
        Ok(ConfigPanel {
            offer: offer
                .providers()
                .iter()
                .map(|p| (p.name.clone(), p.models.iter().map(|m| ModelChoice::new(&p.name, m)).collect()))
                .collect(),
            multi: offer.is_multi(),
            defaults_json: json(&defaults)?,
            key_provider: key_provider.name.clone(),
            key_host: host_of(&key_provider.base_url),
            event_key: ConfigPanel::event_key(state),
            require_user_key: state.settings.require_user_key,
            max_cycles: MAX_CYCLES,
            max_agents: MAX_AGENTS,
            max_agent_tokens: MAX_AGENT_TOKENS,
            max_name_chars: MAX_NAME_CHARS,
            max_question_chars: MAX_QUESTION_CHARS,
            config_store,
        })
    }
}

fn json(value: &impl serde::Serialize) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::from)
}

#[derive(Deserialize)]
struct CheckRequest {
    config: serde_json::Value,
    #[serde(default)]
    question: String,
    /// The challenge page's challenge: its prompt stands in for an empty question.
    #[serde(default)]
    challenge: Option<String>,
}

#[derive(Template)]
#[template(path = "config_check.html")]
struct CheckTemplate {
    /// The run would go to the default provider and the event's key cannot pay for it.
    needs_key: bool,
    problem: Option<String>,
    estimate: Option<String>,
    messages: Vec<moa::plan::PlannedMessage>,
    several_providers: bool,
}

/// `POST /config/check {"config", "question"}` → the first problem with the configuration, or
/// the token estimate and exactly what each model will read (fragments for `#config-check`
/// and `#inspector-body`). A problem is an answer here, not an error: the page shows it.
async fn check(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CheckRequest>,
) -> Result<Html<String>, AppError> {
    let offer = state.catalog.offer();
    let question = match request.question.trim() {
        "" => match &request.challenge {
            Some(id) => events::open(&state, Some(id)).await?.prompt.clone(),
            None => String::new(),
        },
        question => question.to_string(),
    };
    let checked = Config::from_json(request.config).map_err(|e| capitalize(e) + ".").and_then(|c| c.validated(&offer));
    let event_key = ConfigPanel::event_key(&state);
    let default_provider = &offer.default_provider().name;
    let page = match checked {
        Err(problem) => CheckTemplate {
            needs_key: !event_key,
            problem: Some(problem),
            estimate: None,
            messages: Vec::new(),
            several_providers: false,
        },
        Ok(config) => {
            let on_default = config.main_provider.as_ref() == Some(default_provider)
                || config.layer_agents.iter().any(|a| a.provider.as_ref() == Some(default_provider));
            let budget = moa::Budget::estimate(&config, &question, &offer);
            let estimate = format!(
                "The main model ({}) would read about {} of {} tokens and may answer with up to {}.",
                budget.main_model,
                thousands(budget.main_input),
                thousands(u64::from(budget.main_context)),
                thousands(u64::from(budget.main_answer))
            );
            let messages = moa::plan::preview(&config, &question, &budget);
            let several_providers = messages.iter().any(|m| m.provider != messages[0].provider);
            CheckTemplate {
                needs_key: on_default && !event_key,
                problem: budget.problem.clone(),
                estimate: Some(estimate),
                messages,
                several_providers,
            }
        }
    };
    super::pages::render(&page)
}

fn capitalize(sentence: String) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => sentence,
    }
}

/// `POST /config/import` with a file's text → the configuration it holds (the inner object),
/// or a 400 saying what is wrong with the file. Limits that would make the form misleading
/// (more agents than a run may have) refuse the file; the rest the check reports.
async fn import(State(state): State<AppState>, body: String) -> Result<axum::Json<Config>, AppError> {
    let value: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
        AppError::BadRequest(format!(
            "This file is not JSON ({e}); export a configuration from this page to see the format."
        ))
    })?;
    let config = Config::from_json(value).map_err(|e| AppError::BadRequest(capitalize(e) + "."))?;
    if config.layer_agents.is_empty() || config.layer_agents.len() > MAX_AGENTS {
        return Err(AppError::BadRequest(format!(
            "This file has {} layer agents; a configuration has 1 to {MAX_AGENTS}. Remove some in the file and import it again.",
            config.layer_agents.len()
        )));
    }
    Ok(axum::Json(config.with_provider_names(&state.catalog.offer())))
}

#[derive(Deserialize)]
struct ExportForm {
    config: String,
}

/// `POST /config/export` (a form field `config` with the configuration's JSON) → the file
/// `moa-config.json` in the workshop's export format.
async fn export(Form(form): Form<ExportForm>) -> Result<Response, AppError> {
    let value: serde_json::Value = serde_json::from_str(&form.config)
        .map_err(|e| AppError::BadRequest(format!("The configuration is not JSON: {e}.")))?;
    let config = Config::from_json(value).map_err(|e| AppError::BadRequest(capitalize(e) + "."))?;
    let body = serde_json::to_string_pretty(&config.to_export(crate::store::now_ms()))?;
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"moa-config.json\""),
    ];
    Ok((headers, body).into_response())
}

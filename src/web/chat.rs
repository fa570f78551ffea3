//! The MoA chat: `GET /chat` (the page) and `POST /api/moa` (a run as an event stream).

use askama::Template;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::pages::{NAV, render};
use super::run_stream::{admit, routes, stream_run, user_key};
use crate::app::AppState;
use crate::config::ModelSpec;
use crate::error::AppError;
use crate::llm::host_of;
use crate::moa::config::{MAX_AGENT_TOKENS, MAX_AGENTS, MAX_CYCLES, MAX_NAME_CHARS, MAX_QUESTION_CHARS};
use crate::moa::{self, Config};

pub fn router() -> Router<AppState> {
    Router::new().route("/chat", get(page)).route("/api/moa", post(run)).route("/api/providers", get(providers))
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    llm_base_url: String,
    panel: ConfigPanel,
}

/// What the shared configuration form (`config_panel.html`, driven by `static/chat.js`) and its
/// key box need.
pub struct ConfigPanel {
    /// The default provider's models, listed before the script runs.
    pub models: Vec<ModelSpec>,
    /// Provider names, the default first; the pages offer a choice only when there are several.
    pub providers: Vec<String>,
    /// JSON for the page script: the default configuration, and each provider's models.
    pub defaults_json: String,
    pub providers_json: String,
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

impl ConfigPanel {
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
        let defaults = defaults.validated(&offer).map_err(AppError::Internal)?;
        let key_provider = state.catalog.default_provider();
        Ok(ConfigPanel {
            models: default.models.clone(),
            providers: offer.providers().iter().map(|p| p.name.clone()).collect(),
            defaults_json: json(&defaults)?,
            providers_json: json(&offer.providers())?,
            key_provider: key_provider.name.clone(),
            key_host: host_of(&key_provider.base_url),
            event_key: key_provider.api_key.is_some() && !state.settings.require_user_key,
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

async fn page(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    render(&ChatPage {
        nav: NAV,
        current: "/chat",
        llm_base_url: state.settings.llm_base_url.clone(),
        panel: ConfigPanel::new(&state, "moa-config")?,
    })
}

/// `GET /api/providers` → `{"providers": [{"name", "default", "host", "server_key", "discovered",
/// "models": [{"name", "context_tokens"}]}], "require_user_key"}`: what a configuration may name.
/// Whether a key is set, never the key.
async fn providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let offer = state.catalog.offer();
    let providers: Vec<serde_json::Value> = state
        .catalog
        .providers()
        .iter()
        .zip(offer.providers())
        .enumerate()
        .map(|(i, (provider, offered))| {
            serde_json::json!({
                "name": provider.name,
                "default": i == 0,
                "host": host_of(&provider.base_url),
                "server_key": provider.api_key.is_some(),
                "discovered": offered.discovered,
                "models": offered.models,
            })
        })
        .collect();
    Json(serde_json::json!({ "providers": providers, "require_user_key": state.settings.require_user_key }))
}

fn json(value: &impl serde::Serialize) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(format!("json: {e}")))
}

#[derive(Deserialize)]
struct RunRequest {
    question: String,
    config: Config,
}

/// `POST /api/moa {"question", "config"}` → `text/event-stream` of `agent_delta`, `agent`,
/// `answer_delta`, then `done` or `error`. Bad input is a 400 before the stream starts.
async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let user_key = user_key(&headers)?;
    let Json(request) =
        body.map_err(|e| AppError::BadRequest(format!("The request is not valid: {}", e.body_text())))?;
    let plan = moa::prepare(request.config, &request.question, &state.catalog.offer()).map_err(AppError::BadRequest)?;
    let routes = routes(&state, user_key, &plan.config)?;
    let slot = admit(&state)?;
    Ok(stream_run(&state, slot, routes, plan, |summary| async move { Ok(summary) }))
}

//! The MoA chat: `GET /chat` (the page) and `POST /api/moa` (a run as an event stream).

use askama::Template;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{Html, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::pages::{NAV, render};
use super::run_stream::{endpoint, stream_run};
use crate::app::AppState;
use crate::config::ModelSpec;
use crate::error::AppError;
use crate::moa::config::{MAX_AGENT_TOKENS, MAX_AGENTS, MAX_CYCLES, MAX_NAME_CHARS, MAX_QUESTION_CHARS};
use crate::moa::{self, Config};

pub fn router() -> Router<AppState> {
    Router::new().route("/chat", get(page)).route("/api/moa", post(run))
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    llm_key_set: bool,
    llm_base_url: String,
    panel: ConfigPanel,
}

/// What the shared configuration form (`config_panel.html`, driven by `static/chat.js`) needs.
pub struct ConfigPanel {
    pub models: Vec<ModelSpec>,
    /// JSON for the page script: the default configuration and the models offered.
    pub defaults_json: String,
    pub models_json: String,
    pub max_cycles: u32,
    pub max_agents: usize,
    pub max_agent_tokens: u32,
    pub max_name_chars: usize,
    pub max_question_chars: usize,
    /// The browser storage key the configuration is kept under (chat and challenge differ).
    pub config_store: &'static str,
}

impl ConfigPanel {
    pub fn new(settings: &crate::config::Settings, config_store: &'static str) -> Result<ConfigPanel, AppError> {
        let mut defaults = Config::default();
        // A server offering other models starts from its first one.
        if !settings.models.iter().any(|m| m.name == defaults.main_model) {
            let first = settings.models[0].name.clone();
            defaults.main_model.clone_from(&first);
            defaults.layer_agents.iter_mut().for_each(|a| a.model.clone_from(&first));
        }
        Ok(ConfigPanel {
            models: settings.models.clone(),
            defaults_json: json(&defaults)?,
            models_json: json(&settings.models)?,
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
    let settings = &state.settings;
    render(&ChatPage {
        nav: NAV,
        current: "/chat",
        llm_key_set: settings.llm_api_key.is_some(),
        llm_base_url: settings.llm_base_url.clone(),
        panel: ConfigPanel::new(settings, "moa-config")?,
    })
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
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let endpoint = endpoint(&state)?;
    let Json(request) =
        body.map_err(|e| AppError::BadRequest(format!("The request is not valid: {}", e.body_text())))?;
    let plan = moa::prepare(request.config, &request.question, &state.settings.models).map_err(AppError::BadRequest)?;
    Ok(stream_run(&state, endpoint, plan, |summary| async move { Ok(summary) }))
}

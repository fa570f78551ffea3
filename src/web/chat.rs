//! The MoA chat: `GET /chat` (the page) and `POST /api/moa` (a run as an event stream).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::config_panel::ConfigPanel;
use super::fair_use::{BROWSER_COOKIE, ClientIp, browser_id_shape, client};
use super::pages::{NAV, render};
use super::pages::{SameSite, cookie, set_cookie};
use super::participants::caller;
use super::run_stream::{View, admit, named_by, routes_and_payer, stream_beside, stream_run, user_key};
use super::run_view::{Placement, RunView};
use crate::config::ModelSpec;
use crate::error::AppError;
use crate::llm::host_of;
use crate::moa::{self, Config};
use crate::state::AppState;
use crate::web::json::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chat", get(page))
        .route("/api/moa", post(api_run))
        .route("/chat/run", post(page_run))
        .route("/api/providers", get(providers))
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    llm_base_url: String,
    panel: ConfigPanel,
    /// The event needs a claimed name for the chat and this visitor has none.
    name_required: bool,
}

/// How long an anonymous browser keeps its fair-use id.
const BROWSER_COOKIE_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let name_required =
        state.live.fair_use.chat_requires_name() && caller(&state, &headers).await.ok().flatten().is_none();
    let page = render(&ChatPage {
        nav: NAV,
        current: "/chat",
        llm_base_url: state.settings.llm_base_url.clone(),
        panel: ConfigPanel::new(&state, "moa-config")?,
        name_required,
    })?;
    // An anonymous browser gets its own fair-use count, rather than sharing its address's.
    if cookie(&headers, BROWSER_COOKIE).is_some_and(|id| browser_id_shape(&id)) {
        return Ok(page.into_response());
    }
    Ok((set_cookie(&state, &headers, BROWSER_COOKIE, &crate::store::new_id(), BROWSER_COOKIE_AGE, SameSite::Lax), page)
        .into_response())
}

/// What a configuration may name (`GET /api/providers`).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ProviderList {
    providers: Vec<ProviderInfo>,
    /// Runs on the default provider need the participant's own key.
    require_user_key: bool,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct ProviderInfo {
    name: String,
    /// The provider a configuration without `provider` fields uses.
    default: bool,
    host: String,
    /// Whether the server has a key for it (never the key).
    server_key: bool,
    /// The models were listed by the provider rather than configured.
    discovered: bool,
    models: Vec<ModelSpec>,
}

/// `GET /api/providers` → `{"providers": [{"name", "default", "host", "server_key", "discovered",
/// "models": [{"name", "context_tokens"}]}], "require_user_key"}`: what a configuration may name.
/// Whether a key is set, never the key.
#[utoipa::path(get, path = "/api/providers", tag = "chat",
    responses((status = 200, description = "The providers and their models", body = ProviderList)))]
async fn providers(State(state): State<AppState>) -> Json<ProviderList> {
    let offer = state.catalog.offer();
    let providers = state
        .catalog
        .providers()
        .iter()
        .zip(offer.providers())
        .enumerate()
        .map(|(i, (provider, offered))| ProviderInfo {
            name: provider.name.clone(),
            default: i == 0,
            host: host_of(&provider.base_url),
            server_key: provider.api_key.is_some(),
            discovered: offered.discovered,
            models: offered.models.clone(),
        })
        .collect();
    Json(ProviderList { providers, require_user_key: state.settings.require_user_key })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"question": "Why is the sky blue?", "config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "Combine these answers: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}}))]
struct RunRequest {
    question: String,
    config: Config,
    /// The chat page only (`POST /chat/run`): also ask the main model alone, shown beside.
    #[serde(default)]
    #[schema(ignore)]
    compare: bool,
}

pub const NAME_REQUIRED: &str = "This event asks everyone to claim a display name before using the chat: pick one \
    on the challenge page, then ask again.";

/// `POST /api/moa {"question", "config"}` → `text/event-stream` of `agent_delta`, `agent`,
/// `answer_delta`, then `done` or `error`. Bad input is a 400 before the stream starts.
/// Anonymous unless the event needs a claimed name (`MOA_CHAT_REQUIRES_NAME`); either way the
/// run counts against its client's fair-use bounds.
#[utoipa::path(post, path = "/api/moa", tag = "chat", request_body = RunRequest,
    params(("X-LLM-Api-Key" = Option<String>, Header, description = "The participant's own key for the default provider")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "Events: agent_delta \
            {layer, agent, text}; agent {layer, agent, model, text, ms, error}; answer_delta {text}; then done \
            {ms, calls, prompt_tokens, completion_tokens} or error {message}, and nothing after either."),
        (status = 400, description = "The question or configuration is not valid", body = crate::error::ErrorBody),
        (status = 401, description = "This event needs a claimed name or the caller's own key", body = crate::error::ErrorBody),
        (status = 429, description = "A fair-use bound; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "No API key is set on this server", body = crate::error::ErrorBody)))]
async fn api_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<Response, AppError> {
    run(state, headers, ip, request, false).await
}

/// `POST /chat/run`: the same run for the chat page, streamed as HTML fragments.
async fn page_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonBody(request): JsonBody<RunRequest>,
) -> Result<Response, AppError> {
    run(state, headers, ip, request, true).await
}

async fn run(
    state: AppState,
    headers: HeaderMap,
    ip: ClientIp,
    request: RunRequest,
    page: bool,
) -> Result<Response, AppError> {
    let user_key = user_key(&headers)?;
    let participant = caller(&state, &headers).await?;
    if participant.is_none() && state.live.fair_use.chat_requires_name() {
        return Err(AppError::Unauthorized(NAME_REQUIRED.into()));
    }
    let plan = moa::prepare(request.config, &request.question, &state.catalog.offer()).map_err(AppError::BadRequest)?;
    let (routes, event_pays) = routes_and_payer(&state, user_key, named_by(&plan.config))?;
    let client = client(participant.as_ref(), &headers, &ip);
    let slot = admit(&state, &client, &plan, event_pays)?;
    if page && request.compare {
        let multi = state.catalog.offer().is_multi();
        let alone = plan.main_alone(&state.catalog.offer());
        let alone_slot = admit(&state, &client, &alone, event_pays)?;
        let view = RunView::new(&plan, &plan.question, Placement::Conversation, multi);
        let title = format!("{} alone", alone.config.main_model);
        let alone_view = RunView::new(&alone, &title, Placement::Beside(view.id().to_string()), multi);
        return Ok(stream_beside(&state, (slot, alone_slot), routes, (plan, view), (alone, alone_view)));
    }
    let view = if page {
        let multi = state.catalog.offer().is_multi();
        View::Page(Box::new(RunView::new(&plan, &plan.question, Placement::Conversation, multi)))
    } else {
        View::Events
    };
    Ok(stream_run(&state, slot, routes, plan, view, |summary| async move { Ok(summary.into()) }))
}

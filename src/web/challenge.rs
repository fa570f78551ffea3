//! The AI configuration challenge: generations (an MoA run on the challenge prompt) and
//! submissions (grading a generation's code), with per-participant rate limits.

use askama::Template;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppError;
use crate::grader::Challenge;
use crate::grader::challenge::extract_code;
use crate::moa::{self, Config};
use crate::store::{format_utc, generations, leaderboard, now_ms, participants, submissions};
use crate::web::api::{grade_error, grader};
use crate::web::chat::ConfigPanel;
use crate::web::leaderboard::public_view;
use crate::web::pages::{NAV, cookie, render};
use crate::web::run_stream::{admit, routes, stream_run, user_key};

/// The browser's participant id (random, so it cannot be guessed from a name).
const PARTICIPANT_COOKIE: &str = "moa_participant";

/// Main system prompts for the three strategies the workshop offered.
const PRESETS: &[(&str, &str)] = &[
    (
        "Bug-focused",
        "You are a senior Python engineer who ships code without bugs. Your reviewers found these \
         problems and fixes:\n{helper_response}\n\nWrite the final function. Guard every division, \
         read every key with .get and a default, skip values of the wrong type, never modify the \
         input dicts (copy a record before adding to it), and return zeros for empty input or no \
         active users. Return only the code, in one ```python block.",
    ),
    (
        "Performance",
        "You are a Python performance engineer. Your reviewers suggested:\n{helper_response}\n\n\
         Write the final function in a single pass over the users, using heapq.nlargest for the \
         five most engaged (highest first) instead of sorting everything, while still handling \
         days_active = 0, missing keys and empty input. Return only the code, in one ```python block.",
    ),
    (
        "Comprehensive",
        "You are the lead engineer merging your team's reviews:\n{helper_response}\n\nWrite one \
         correct, robust and efficient function: average over active users only, top five highest \
         first, no mutation of the input, no crash on zero days, missing or wrongly typed values, \
         empty lists, reversed date ranges or fewer than five users. Return only the code, in one \
         ```python block, with no explanation.",
    ),
];

/// Short prompts to check that a configuration answers at all before spending a long run.
const TEST_PROMPTS: &[(&str, &str)] = &[
    ("is everyone there?", "Reply with one word: ready."),
    (
        "a tiny function",
        "Write a Python function add(a, b) that returns a + b. Return only the code in a ```python block.",
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/challenge", get(page))
        .route("/challenge/name", post(choose_name))
        .route("/api/generate", post(generate))
        .route("/api/submissions", post(submit))
        .route("/api/inspect", post(inspect))
}

#[derive(Template)]
#[template(path = "challenge.html")]
struct ChallengePage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    grader_problem: Option<String>,
    panel: ConfigPanel,
    participant: Option<String>,
    name_problem: Option<String>,
    max_name: usize,
    function: String,
    max_points: u32,
    prompt: String,
    allowed_imports: String,
    categories: Vec<crate::grader::challenge::Category>,
    checks: Vec<crate::grader::challenge::Check>,
    presets: &'static [(&'static str, &'static str)],
    test_prompts: &'static [(&'static str, &'static str)],
    /// (when, score, status) of this participant's submissions, newest first.
    history: Vec<(String, i64, String)>,
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let participant = match cookie(&headers, PARTICIPANT_COOKIE) {
        Some(id) => participants::find(&state.pool, id).await?,
        None => None,
    };
    Ok(challenge_page(&state, participant, None).await?.into_response())
}

async fn challenge_page(
    state: &AppState,
    participant: Option<participants::Participant>,
    name_problem: Option<String>,
) -> Result<axum::response::Html<String>, AppError> {
    let challenge = Challenge::find(Challenge::default_id()).map_err(AppError::Internal)?;
    let history = match &participant {
        Some(p) => submissions::list(&state.pool, Some(&p.id))
            .await?
            .into_iter()
            .rev()
            .map(|s| (format_utc(s.created_at), s.total, s.status))
            .collect(),
        None => Vec::new(),
    };
    render(&ChallengePage {
        nav: NAV,
        current: "/challenge",
        grader_problem: state.grader.as_ref().err().cloned(),
        panel: ConfigPanel::new(state, "moa-challenge-config")?,
        participant: participant.map(|p| p.name),
        name_problem,
        max_name: participants::MAX_NAME_CHARS,
        function: challenge.function.clone(),
        max_points: challenge.max_points,
        prompt: challenge.prompt.clone(),
        allowed_imports: challenge.rules.allowed_imports.join(", "),
        categories: challenge.categories.clone(),
        checks: challenge.checks.clone(),
        presets: PRESETS,
        test_prompts: TEST_PROMPTS,
        history,
    })
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

/// Claims a display name for this browser: a new name creates the participant; a name someone
/// else holds is refused, so two attendees never share a leaderboard row by accident.
async fn choose_name(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    let mine = cookie(&headers, PARTICIPANT_COOKIE).map(str::to_string);
    let refuse = |problem: String| async {
        let page = challenge_page(&state, None, Some(problem)).await?;
        Ok::<_, AppError>((StatusCode::BAD_REQUEST, page).into_response())
    };
    if let Err(problem) = participants::normalize_name(&form.name) {
        return refuse(problem).await;
    }
    let (participant, created) =
        participants::get_or_create(&state.pool, &form.name).await?.map_err(AppError::BadRequest)?;
    if !created && mine.as_deref() != Some(participant.id.as_str()) {
        return refuse(format!("The name {:?} is taken; please pick another.", participant.name)).await;
    }
    let cookie = format!("{PARTICIPANT_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000", participant.id);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/challenge#configure")).into_response())
}

#[derive(Deserialize)]
struct InspectRequest {
    config: Config,
    prompt: Option<String>,
}

/// One request a run will send, as the model will read it.
#[derive(serde::Serialize)]
struct PlannedMessage {
    /// "Layer 2 · bug_hunter" or "Main model".
    who: String,
    provider: String,
    model: String,
    system: String,
    user: String,
    max_tokens: u32,
}

/// `POST /api/inspect {"config", "prompt"}` → the token budget (with the reason a run would be
/// refused, and suggestions) and exactly what each model will receive; later layers show where
/// the previous layer's answers go. Nothing is called or stored.
async fn inspect(
    State(state): State<AppState>,
    body: Result<Json<InspectRequest>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(request) = body.map_err(bad_body)?;
    let challenge = Challenge::find(Challenge::default_id()).map_err(AppError::Internal)?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let offer = state.catalog.offer();
    let config = request.config.validated(&offer).map_err(AppError::BadRequest)?;
    let question = moa::config::validate_question(&prompt).map_err(AppError::BadRequest)?;
    let budget = moa::Budget::estimate(&config, question, &offer);
    let answers_of = |layer: u32| -> String {
        let placeholders: Vec<String> =
            config.layer_agents.iter().map(|a| format!("[{}'s answer in layer {layer}]", a.name)).collect();
        moa::engine::synthesize(&placeholders.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut messages = Vec::new();
    for layer in 1..=config.cycles {
        let helper = if layer == 1 { String::new() } else { answers_of(layer - 1) };
        for (agent, max_tokens) in config.layer_agents.iter().zip(&budget.agent_max_tokens) {
            messages.push(PlannedMessage {
                who: format!("Layer {layer} · {}", agent.name),
                provider: agent.provider.clone().unwrap_or_default(),
                model: agent.model.clone(),
                system: agent.prompt.replace(moa::config::HELPER_PLACEHOLDER, &helper),
                user: question.to_string(),
                max_tokens: *max_tokens,
            });
        }
    }
    let main_question =
        if moa::engine::is_qwen(&config.main_model) { moa::engine::no_think(question) } else { question.to_string() };
    messages.push(PlannedMessage {
        who: "Main model".into(),
        provider: config.main_provider.clone().unwrap_or_default(),
        model: config.main_model.clone(),
        system: config.system_prompt.replace(moa::config::HELPER_PLACEHOLDER, &answers_of(config.cycles)),
        user: main_question,
        max_tokens: budget.main_answer,
    });
    Ok(Json(json!({ "budget": budget, "messages": messages })))
}

#[derive(Deserialize)]
struct GenerateRequest {
    participant: String,
    config: Config,
    prompt: Option<String>,
}

/// `POST /api/generate {"participant", "config", "prompt"}` → the MoA event stream for the
/// challenge prompt (the default one when `prompt` is null); its `done` event also carries
/// `generation_id` and `code`, the function extracted from the answer. Bad input is a 400
/// before anything is stored or any model is called.
async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<GenerateRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let user_key = user_key(&headers)?;
    let Json(request) = body.map_err(bad_body)?;
    participants::normalize_name(&request.participant).map_err(AppError::BadRequest)?;
    let challenge = Challenge::find(Challenge::default_id()).map_err(AppError::Internal)?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let plan = moa::prepare(request.config, &prompt, &state.catalog.offer()).map_err(AppError::BadRequest)?;
    let routes = routes(&state, user_key, &plan.config)?;
    let slot = admit(&state)?;
    let (participant, _) =
        participants::get_or_create(&state.pool, &request.participant).await?.map_err(AppError::BadRequest)?;
    state.live.generate_limit.check(&participant.id).map_err(|wait| too_fast("generating", wait))?;

    let pool = state.pool.clone();
    let config = plan.config.to_export(&format_utc(now_ms()));
    let prompt = plan.question.clone();
    Ok(stream_run(&state, slot, routes, plan, move |mut summary| async move {
        let code = extract_code(&summary.answer, &challenge.function);
        let timings = json!({
            "ms": summary.ms,
            "calls": summary.calls,
            "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens,
            "failed_agents": summary.failed_agents,
            "agents": summary.agents,
        });
        let new = generations::NewGeneration {
            participant_id: &participant.id,
            challenge: &challenge.id,
            config: &config,
            prompt: &prompt,
            answer: &summary.answer,
            code: &code,
            timings: &timings,
        };
        let stored = generations::insert(&pool, new).await.map_err(|e| {
            tracing::error!(error = %e, "cannot store a generation");
            "The answer could not be saved; please generate again.".to_string()
        })?;
        summary.extra.insert("generation_id".into(), json!(stored.id));
        summary.extra.insert("code".into(), json!(code));
        Ok(summary)
    }))
}

#[derive(Deserialize)]
struct SubmitRequest {
    participant: String,
    generation_id: String,
}

pub fn bad_body(e: JsonRejection) -> AppError {
    AppError::BadRequest(format!("The request body is not valid: {}", e.body_text()))
}

fn too_fast(what: &str, retry_after_s: u64) -> AppError {
    AppError::Busy { message: format!("You are {what} too fast; try again in {retry_after_s} s."), retry_after_s }
}

/// `POST /api/submissions {"participant", "generation_id"}` → the grade plus
/// `{"submission_id", "rank"}`. Submitting the same generation again returns the stored
/// grade, so a retried request on bad Wi-Fi never counts twice.
async fn submit(
    State(state): State<AppState>,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(request) = body.map_err(bad_body)?;
    let participant = participants::find_by_name(&state.pool, &request.participant).await?.ok_or_else(|| {
        AppError::NotFound(format!("Nobody named {:?} has generated code yet.", request.participant.trim()))
    })?;
    let generation = generations::find(&state.pool, request.generation_id.trim())
        .await?
        .filter(|g| g.participant_id == participant.id)
        .ok_or_else(|| AppError::NotFound(format!("{} has no generation with that id.", participant.name)))?;
    let stored = match submissions::for_generation(&state.pool, &generation.id).await? {
        Some(existing) => existing,
        None => {
            let grader = grader(&state)?;
            let challenge = grader.challenge(Some(&generation.challenge)).map_err(AppError::Internal)?;
            state.live.submit_limit.check(&participant.id).map_err(|wait| too_fast("submitting", wait))?;
            let report = grader.grade(challenge, &generation.code).await.map_err(|e| {
                state.live.submit_limit.refund(&participant.id);
                grade_error(e)
            })?;
            let (stored, inserted) = submissions::record(&state.pool, &participant.id, &generation.id, &report).await?;
            if inserted {
                state.live.leaderboard_changed();
            }
            stored
        }
    };
    // The rank the public board shows; none while it is frozen (no spoilers) or for a hidden name.
    let (view, frozen) = public_view(&state).await?;
    let rank = match frozen {
        Some(_) => None,
        None => leaderboard::ranking(&state.pool, view)
            .await?
            .into_iter()
            .find(|row| row.participant_id == participant.id)
            .map(|row| row.rank),
    };
    let mut body = serde_json::to_value(&stored.report).map_err(|e| AppError::Internal(e.to_string()))?;
    body["submission_id"] = json!(stored.id);
    body["rank"] = json!(rank);
    Ok(Json(body))
}

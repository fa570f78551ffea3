//! The AI configuration challenge: generations (an MoA run on the challenge prompt) and
//! submissions (grading a generation's code), with per-participant rate limits.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::AppError;
use crate::grader::challenge::extract_code;
use crate::metrics::Limit;
use crate::moa::{self, Config};
use crate::state::AppState;
use crate::store::{generations, leaderboard, now_ms, participants};
use crate::web::config_panel::ConfigPanel;
use crate::web::events;
use crate::web::fair_use::{ClientIp, client};
use crate::web::json::JsonBody;
use crate::web::leaderboard::public_view;
use crate::web::pages::{NAV, cookie, render};
use crate::web::participants::{
    Caller, PARTICIPANT_COOKIE, SIGN_IN_CODE_LIFETIME, SignedIn, caller, claim_name, make_sign_in_code,
    sign_in_with_code, token_cookie,
};
use crate::web::results;
use crate::web::run_stream::{Finished, View, admit, named_by, routes_and_payer, stream_run, user_key};
use crate::web::run_view::{Placement, RunView};

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
        .route("/challenge/sign-in", post(sign_in_form))
        .route("/challenge/rename", post(rename_form))
        .route("/challenge/generations/{id}/submit", post(submit_form))
        .route("/challenge/sign-in-code", post(sign_in_code_form))
        .route("/api/generate", post(api_generate))
        .route("/challenge/generate", post(page_generate))
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
    sign_in_problem: Option<String>,
    /// A one-time code for the participant's other device, right after they asked for one.
    sign_in_code: Option<String>,
    code_minutes: u64,
    max_name: usize,
    function: String,
    max_points: u32,
    prompt: String,
    allowed_imports: String,
    categories: Vec<crate::grader::challenge::Category>,
    checks: Vec<crate::grader::challenge::Check>,
    presets: Vec<(String, String)>,
    /// The challenge shown, and (id, title) of every open one when attendees may pick.
    challenge_id: String,
    is_default: bool,
    choices: Vec<(String, String)>,
    test_prompts: &'static [(&'static str, &'static str)],
    /// The participant's generations (HTML), and the one shown: the newest or the one asked for.
    history: String,
    result: String,
    /// The most runs a measurement may have; 0 while evaluation is off.
    lab_max: u32,
    /// The participant's newest measurement on this challenge (HTML).
    lab: String,
}

/// What the page shows besides the challenge: who the visitor is and any sentence for them.
#[derive(Default)]
struct Visitor {
    participant: Option<participants::Participant>,
    name_problem: Option<String>,
    sign_in_problem: Option<String>,
    sign_in_code: Option<String>,
    /// The challenge picked in the page's `?challenge=` (the event's default one when none).
    challenge: Option<String>,
    /// The generation picked in the history (`?generation=`); the newest when none.
    generation: Option<String>,
    /// Why submitting the shown generation just failed.
    submit_problem: Option<String>,
}

#[derive(Deserialize)]
struct PageQuery {
    challenge: Option<String>,
    generation: Option<String>,
}

/// The page. Sign-in codes are typed, never put in a link: URLs end up in logs and histories.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Result<Response, AppError> {
    let (challenge, generation) = (query.challenge, query.generation);
    // A browser from before tokens holds its participant id: that buys it one token, once.
    if let Some(id) = cookie(&headers, PARTICIPANT_COOKIE)
        && let Some((participant, token)) = participants::upgrade_legacy(&state.pool, &id).await?
    {
        let visitor = Visitor { participant: Some(participant), challenge, generation, ..Visitor::default() };
        let page = challenge_page(&state, visitor).await?;
        return Ok((token_cookie(&state, &headers, &token), page).into_response());
    }
    let participant = caller(&state, &headers).await.ok().flatten();
    Ok(challenge_page(&state, Visitor { participant, challenge, generation, ..Visitor::default() })
        .await?
        .into_response())
}

async fn challenge_page(state: &AppState, visitor: Visitor) -> Result<axum::response::Html<String>, AppError> {
    let challenge = events::open(state, visitor.challenge.as_deref()).await?;
    let active = events::active(state).await?;
    let choices =
        if active.len() > 1 { active.iter().map(|c| (c.id.clone(), c.title.clone())).collect() } else { Vec::new() };
    // The shipped challenge keeps the workshop's three hand-written strategies.
    let presets = if challenge.id == crate::grader::challenge::DEFAULT_ID && challenge.presets.is_empty() {
        PRESETS.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    } else {
        challenge.presets.iter().map(|p| (p.name.clone(), p.system_prompt.clone())).collect()
    };
    let lab_on = state.settings.evaluation && !crate::store::event::lab_off(&state.pool).await?;
    let lab_max = if lab_on { state.settings.evaluation_max_runs } else { 0 };
    let lab = match &visitor.participant {
        Some(p) => crate::store::evaluations::latest(&state.pool, &p.id, &challenge.id)
            .await?
            .map(|stored| crate::web::evaluations::stored_html(&stored))
            .transpose()?
            .unwrap_or_default(),
        None => String::new(),
    };
    let (history, result) = match &visitor.participant {
        Some(p) => {
            let wanted = visitor.generation.as_deref();
            let (card, history) =
                results::results_html(state, p, &challenge.id, wanted, visitor.submit_problem.as_deref()).await?;
            (history, card)
        }
        None => (String::new(), String::new()),
    };
    render(&ChallengePage {
        nav: NAV,
        current: "/challenge",
        grader_problem: state.grader.as_ref().err().cloned(),
        panel: ConfigPanel::new(state, "moa-challenge-config")?,
        participant: visitor.participant.map(|p| p.name),
        name_problem: visitor.name_problem,
        sign_in_problem: visitor.sign_in_problem,
        sign_in_code: visitor.sign_in_code,
        code_minutes: SIGN_IN_CODE_LIFETIME.as_secs() / 60,
        max_name: participants::MAX_NAME_CHARS,
        function: challenge.entry.clone(),
        max_points: challenge.max_points(),
        prompt: challenge.prompt.clone(),
        allowed_imports: challenge.allowed_imports(),
        categories: challenge.categories.clone(),
        checks: challenge.checks.clone(),
        presets,
        challenge_id: challenge.id.clone(),
        is_default: challenge.id == crate::grader::challenge::DEFAULT_ID,
        choices,
        test_prompts: TEST_PROMPTS,
        history,
        result,
        lab_max,
        lab,
    })
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
    /// The challenge the page showed: the visitor comes back to it.
    #[serde(default)]
    challenge: Option<String>,
}

/// The page again with a sentence for the visitor, in the status the API would answer with.
async fn refused(state: &AppState, error: AppError, mut visitor: Visitor) -> Result<Response, AppError> {
    if events::open(state, visitor.challenge.as_deref()).await.is_err() {
        visitor.challenge = None; // a form's field, not trusted: the event's default instead
    }
    let status = error.status();
    let mut response = (status, challenge_page(state, visitor).await?).into_response();
    if let AppError::Busy { retry_after_s, .. } = error
        && let Ok(value) = retry_after_s.to_string().parse()
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// Back to the page, on the challenge it showed (an id that is not one is dropped, so nothing
/// but an id reaches the URL).
fn signed_in_redirect(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    challenge: Option<&str>,
) -> Response {
    (token_cookie(state, headers, &signed_in.token), Redirect::to(&page_url(challenge))).into_response()
}

/// The page on `challenge`, at the generate tab (an id that is not one is dropped, so nothing
/// but an id reaches the URL).
fn page_url(challenge: Option<&str>) -> String {
    match challenge.filter(|id| crate::grader::challenge::valid_id(id)) {
        Some(id) => format!("/challenge?challenge={id}#configure"),
        None => "/challenge#configure".to_string(),
    }
}

/// The name form: claims a display name for this browser by the same path as
/// `POST /api/participants`; a name someone else holds is refused.
async fn choose_name(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    match claim_name(&state, &headers, &ip, &form.name).await {
        Ok(signed_in) => Ok(signed_in_redirect(&state, &headers, &signed_in, form.challenge.as_deref())),
        Err(AppError::Internal(cause)) => Err(AppError::Internal(cause)),
        Err(error) => {
            let name_problem = Some(error.public_message());
            let challenge = form.challenge;
            refused(&state, error, Visitor { name_problem, challenge, ..Visitor::default() }).await
        }
    }
}

/// The "Change your name" form: the participant keeps their scores under the new name.
/// Renames count against the same per-address bound as claims.
async fn rename_form(
    State(state): State<AppState>,
    ip: ClientIp,
    Caller(me): Caller,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    let refusal = match state.live.fair_use.claims.check(&ip.0) {
        Err(wait) => AppError::Busy {
            message: format!("Too many names were claimed from your network address just now; try again in {wait} s."),
            retry_after_s: wait,
        },
        Ok(()) => match participants::rename(&state.pool, &me.id, &form.name).await? {
            Ok(renamed) => {
                tracing::info!(from = %me.name, to = %renamed.name, "participant renamed");
                state.live.leaderboard_changed();
                return Ok(Redirect::to(&page_url(form.challenge.as_deref())).into_response());
            }
            Err(problem) => AppError::Conflict(problem),
        },
    };
    let name_problem = Some(refusal.public_message());
    let visitor = Visitor { participant: Some(me), name_problem, challenge: form.challenge, ..Visitor::default() };
    refused(&state, refusal, visitor).await
}

/// The Submit button of a generation's card: grades it (once), then shows the page at its grade.
/// A plain form, so it works on any browser, and submitting again never counts twice.
async fn submit_form(
    State(state): State<AppState>,
    Caller(me): Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, AppError> {
    let generation = results::own_generation(&state, &me, &id).await?;
    let challenge = Some(generation.challenge.clone()).filter(|id| crate::grader::challenge::valid_id(id));
    match results::grade(&state, &me, &generation).await {
        Ok(_) => {
            let to = format!(
                "/challenge?challenge={}&generation={}#gen-{}-report",
                challenge.unwrap_or_default(),
                generation.id,
                generation.id
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(AppError::Internal(cause)) => Err(AppError::Internal(cause)),
        Err(error) => {
            let visitor = Visitor {
                submit_problem: Some(error.public_message()),
                participant: Some(me),
                challenge,
                generation: Some(generation.id),
                ..Visitor::default()
            };
            refused(&state, error, visitor).await
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
    #[serde(default)]
    challenge: Option<String>,
}

/// The sign-in form: redeems a code shown on the participant's other device.
async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    match sign_in_with_code(&state, &ip, &form.code).await {
        Ok(signed_in) => Ok(signed_in_redirect(&state, &headers, &signed_in, form.challenge.as_deref())),
        Err(AppError::Internal(cause)) => Err(AppError::Internal(cause)),
        Err(error) => {
            let sign_in_problem = Some(error.public_message());
            let challenge = form.challenge;
            refused(&state, error, Visitor { sign_in_problem, challenge, ..Visitor::default() }).await
        }
    }
}

/// Shows the signed-in participant a one-time code for another device, on their own page only.
async fn sign_in_code_form(State(state): State<AppState>, Caller(me): Caller) -> Result<Response, AppError> {
    let code = make_sign_in_code(&state, &me).await?;
    let visitor = Visitor { participant: Some(me), sign_in_code: Some(code), ..Visitor::default() };
    // The code is a secret for its owner: never kept by a cache.
    Ok(([(header::CACHE_CONTROL, "no-store")], challenge_page(&state, visitor).await?).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "Write the function. Reviews: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}, "prompt": null}))]
struct InspectRequest {
    config: Config,
    prompt: Option<String>,
    /// The challenge to generate for (the event's default one when null).
    #[serde(default)]
    challenge: Option<String>,
}

/// `POST /api/inspect {"config", "prompt"}` → the token budget (with the reason a run would be
/// refused, and suggestions) and exactly what each model will receive; later layers show where
/// the previous layer's answers go. Nothing is called or stored.
#[utoipa::path(post, path = "/api/inspect", tag = "challenge", request_body = InspectRequest,
    responses((status = 200, description = "The budget and every planned request", body = Inspection),
        (status = 400, description = "The configuration or prompt is not valid", body = crate::error::ErrorBody)))]
async fn inspect(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<InspectRequest>,
) -> Result<Json<Inspection>, AppError> {
    let challenge = events::open(&state, request.challenge.as_deref()).await?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let offer = state.catalog.offer();
    let config = request.config.validated(&offer).map_err(AppError::BadRequest)?;
    let question = moa::config::validate_question(&prompt).map_err(AppError::BadRequest)?;
    let budget = moa::Budget::estimate(&config, question, &offer);
    let messages = moa::plan::preview(&config, question, &budget);
    Ok(Json(Inspection { budget, messages }))
}

/// What `POST /api/inspect` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Inspection {
    budget: moa::Budget,
    messages: Vec<moa::plan::PlannedMessage>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "Write the function. Reviews: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}, "prompt": null}))]
struct GenerateRequest {
    /// If sent, must name the caller.
    participant: Option<String>,
    config: Config,
    prompt: Option<String>,
    /// The challenge to generate for (the event's default one when null).
    #[serde(default)]
    challenge: Option<String>,
}

/// `POST /api/generate {"config", "prompt"}`, as a participant → the MoA event stream for the
/// challenge prompt (the default one when `prompt` is null); its `done` event also carries
/// `generation_id` and `code`, the function extracted from the answer. Bad input is a 400
/// before anything is stored or any model is called.
#[utoipa::path(post, path = "/api/generate", tag = "challenge", request_body = GenerateRequest,
    security(("participant_header" = []), ("participant_cookie" = [])),
    params(("X-LLM-Api-Key" = Option<String>, Header, description = "The participant's own key for the default provider")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "The events of POST /api/moa; \
            done also carries {generation_id, code}, the function extracted from the answer."),
        (status = 400, description = "The prompt or configuration is not valid", body = crate::error::ErrorBody),
        (status = 401, description = "No participant token, or an unknown one", body = crate::error::ErrorBody),
        (status = 403, description = "`participant` names someone else", body = crate::error::ErrorBody),
        (status = 429, description = "Generating too fast, or a fair-use bound; see Retry-After", body = crate::error::ErrorBody)))]
async fn api_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    JsonBody(request): JsonBody<GenerateRequest>,
) -> Result<Response, AppError> {
    generate(state, headers, ip, caller, request, false).await
}

/// `POST /challenge/generate`: the same run for the challenge page, streamed as HTML fragments
/// that end with the generation's card and the participant's history.
async fn page_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    JsonBody(request): JsonBody<GenerateRequest>,
) -> Result<Response, AppError> {
    generate(state, headers, ip, caller, request, true).await
}

async fn generate(
    state: AppState,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    request: GenerateRequest,
    page: bool,
) -> Result<Response, AppError> {
    let user_key = user_key(&headers)?;
    caller.check_named(request.participant.as_deref())?;
    let participant = caller.0;
    let challenge = events::open(&state, request.challenge.as_deref()).await?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let plan = moa::prepare(request.config, &prompt, &state.catalog.offer()).map_err(AppError::BadRequest)?;
    let (routes, event_pays) = routes_and_payer(&state, user_key, named_by(&plan.config))?;
    let client = client(Some(&participant), &headers, &ip);
    let slot = admit(&state, &client, &plan, event_pays)?;
    state
        .live
        .generate_limit
        .check(&participant.id)
        .map_err(|wait| too_fast(Limit::GeneratePerMinute, "generating", wait))?;
    crate::store::check_writable(&state.pool).await?; // before the run spends anything

    let view = if page {
        let title = format!("Generating for {}", challenge.title);
        View::Page(Box::new(RunView::new(&plan, &title, Placement::Result, state.catalog.offer().is_multi())))
    } else {
        View::Events
    };
    let config = plan.config.to_export(now_ms());
    let config_hash = crate::evaluate::config_hash(&plan.config);
    let prompt = plan.question.clone();
    let app = state.clone();
    Ok(stream_run(&state, slot, routes, plan, view, move |mut summary| async move {
        let code = extract_code(&summary.answer, &challenge.entry);
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
            challenge_hash: &challenge.hash,
            config: &config,
            prompt: &prompt,
            answer: &summary.answer,
            code: &code,
            timings: &timings,
            config_hash: &config_hash,
        };
        let stored = generations::insert(&app.pool, new).await.map_err(|e| {
            tracing::error!(error = %e, "cannot store a generation");
            "The answer could not be saved; please generate again.".to_string()
        })?;
        summary.extra.insert("generation_id".into(), json!(stored.id));
        summary.extra.insert("code".into(), json!(code));
        if !page {
            return Ok(summary.into());
        }
        // Stored already: a page that cannot be drawn still has the generation on reload.
        let drawn = async { results::results_html(&app, &participant, &challenge.id, Some(&stored.id), None).await };
        let (card, history) = drawn.await.map_err(|e| {
            tracing::error!(error = %e, "cannot draw a generation");
            "The answer was saved, but the page could not show it; reload the page to see it.".to_string()
        })?;
        Ok(Finished { summary, below: Some(card), elsewhere: history })
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"generation_id": "0f3c9a1e6b2d4c8e9a7b5d3f1e2c4a6b"}))]
struct SubmitRequest {
    /// If sent, must name the caller.
    participant: Option<String>,
    generation_id: String,
}

pub fn too_fast(limit: Limit, what: &str, retry_after_s: u64) -> AppError {
    crate::metrics::refused(limit);
    AppError::Busy { message: format!("You are {what} too fast; try again in {retry_after_s} s."), retry_after_s }
}

/// `POST /api/submissions {"generation_id"}`, as a participant → the grade plus
/// `{"submission_id", "rank"}`. Submitting the same generation again returns the stored
/// grade, so a retried request on bad Wi-Fi never counts twice. A participant has at most one
/// submission being graded at a time, so a flood delays only its sender.
#[utoipa::path(post, path = "/api/submissions", tag = "challenge", request_body = SubmitRequest,
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses((status = 200, description = "The grade of that generation's code", body = SubmissionResult),
        (status = 401, description = "No participant token, or an unknown one", body = crate::error::ErrorBody),
        (status = 403, description = "`participant` names someone else", body = crate::error::ErrorBody),
        (status = 404, description = "The caller has no generation with that id", body = crate::error::ErrorBody),
        (status = 429, description = "Submitting too fast, or the grader is busy; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "Grading is unavailable on this server", body = crate::error::ErrorBody)))]
async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<SubmitRequest>,
) -> Result<Json<SubmissionResult>, AppError> {
    caller.check_named(request.participant.as_deref())?;
    let participant = caller.0;
    let generation = results::own_generation(&state, &participant, &request.generation_id).await?;
    let stored = results::grade(&state, &participant, &generation).await?;
    // The rank the public board shows; none while it is frozen (no spoilers) or for a hidden name.
    let (view, frozen) = public_view(&state).await?;
    let rank = match frozen {
        Some(_) => None,
        None => leaderboard::ranking(&state.pool, view, &generation.challenge)
            .await?
            .into_iter()
            .find(|row| row.participant_id == participant.id)
            .map(|row| row.rank),
    };
    Ok(Json(SubmissionResult { report: stored.report, submission_id: stored.id, rank }))
}

/// What `POST /api/submissions` answers: the grade, the stored submission, and the rank.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SubmissionResult {
    #[serde(flatten)]
    report: crate::grader::GradeReport,
    submission_id: String,
    /// The rank on the public board; null while it is frozen or for a hidden name.
    rank: Option<u32>,
}

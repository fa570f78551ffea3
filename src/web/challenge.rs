//! The AI configuration challenge: generations (an MoA run on the challenge prompt) and
//! submissions (grading a generation's code), with per-participant rate limits.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppError;
use crate::grader::Challenge;
use crate::grader::challenge::extract_code;
use crate::moa::{self, Config};
use crate::store::leaderboard::View;
use crate::store::{format_utc, generations, leaderboard, now_ms, participants, submissions};
use crate::web::api::{grade_error, grader};
use crate::web::run_stream::{endpoint, stream_run};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/generate", post(generate)).route("/api/submissions", post(submit))
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
    body: Result<Json<GenerateRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(request) = body.map_err(bad_body)?;
    participants::normalize_name(&request.participant).map_err(AppError::BadRequest)?;
    let endpoint = endpoint(&state)?;
    let challenge = Challenge::find(Challenge::default_id()).map_err(AppError::Internal)?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let plan = moa::prepare(request.config, &prompt, &state.settings.models).map_err(AppError::BadRequest)?;
    let (participant, _) =
        participants::get_or_create(&state.pool, &request.participant).await?.map_err(AppError::BadRequest)?;
    state.live.generate_limit.check(&participant.id).map_err(|wait| too_fast("generating", wait))?;

    let pool = state.pool.clone();
    let config = plan.config.to_export(&format_utc(now_ms()));
    let prompt = plan.question.clone();
    Ok(stream_run(&state, endpoint, plan, move |mut summary| async move {
        let code = extract_code(&summary.answer, &challenge.function);
        let timings = json!({
            "ms": summary.ms,
            "calls": summary.calls,
            "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens,
            "failed_agents": summary.failed_agents,
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
            state.live.submit_limit.check(&participant.id).map_err(|wait| too_fast("submitting", wait))?;
            let grader = grader(&state)?;
            let challenge = grader.challenge(Some(&generation.challenge)).map_err(AppError::Internal)?;
            let report = grader.grade(challenge, &generation.code).await.map_err(grade_error)?;
            let (stored, inserted) = submissions::record(&state.pool, &participant.id, &generation.id, &report).await?;
            if inserted {
                state.live.leaderboard_changed();
            }
            stored
        }
    };
    let ranking = leaderboard::ranking(&state.pool, View::ORGANIZER).await?;
    let rank = ranking.iter().find(|row| row.participant_id == participant.id).map(|row| row.rank);
    let mut body = serde_json::to_value(&stored.report).map_err(|e| AppError::Internal(e.to_string()))?;
    body["submission_id"] = json!(stored.id);
    body["rank"] = json!(rank);
    Ok(Json(body))
}

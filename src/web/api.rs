//! JSON API (`/api/*`). Errors are `{"error": sentence}` with a 4xx/5xx status.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::AppError;
use crate::grader::{GradeError, GradeReport, Grader};
use crate::state::AppState;
use crate::web::json::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/grade", post(grade))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "def calculate_user_metrics(users, start_date, end_date):\n    return {}\n"}))]
struct GradeRequest {
    /// The Python source to grade.
    code: String,
    /// The challenge's id (any loaded one); the event's default challenge when left out.
    #[serde(default)]
    challenge: Option<String>,
}

/// `POST /api/grade {"code", "challenge"?}`: grade code directly (organizer token required when one is set).
#[utoipa::path(post, path = "/api/grade", tag = "grading", request_body = GradeRequest,
    security((), ("organizer" = [])),
    responses((status = 200, description = "The verdict", body = GradeReport),
        (status = 400, description = "Not valid JSON, no code, or no challenge of that id", body = crate::error::ErrorBody),
        (status = 401, description = "An organizer token is set and was not sent", body = crate::error::ErrorBody),
        (status = 429, description = "The grader is busy, or too many wrong tokens (see Retry-After)", body = crate::error::ErrorBody),
        (status = 503, description = "Grading is unavailable on this server", body = crate::error::ErrorBody)))]
async fn grade(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<GradeRequest>,
) -> Result<Json<GradeReport>, AppError> {
    if let Some(token) = &state.settings.organizer_token {
        require_bearer(&state, &headers, token.expose())?;
    }
    let grader = grader(&state)?;
    let challenge = crate::web::events::known(&state, request.challenge.as_deref()).await?;
    Ok(Json(grader.grade(&challenge, &request.code).await.map_err(grade_error)?))
}

pub fn grader(state: &AppState) -> Result<&std::sync::Arc<Grader>, AppError> {
    state
        .grader
        .as_ref()
        .map_err(|problem| AppError::Unavailable(format!("Grading is unavailable on this server: {problem}")))
}

pub fn grade_error(e: GradeError) -> AppError {
    match e {
        GradeError::Busy { retry_after_s } => {
            AppError::Busy { message: format!("The grader is busy; please retry in {retry_after_s} s."), retry_after_s }
        }
        GradeError::Internal(cause) => AppError::internal(cause),
    }
}

/// Compares a presented secret with the expected one in constant time. Both are hashed
/// first, so the comparison always covers 32 bytes and its time says nothing about the
/// expected secret's length either.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let sha256 = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    use subtle::ConstantTimeEq;
    sha256(given).as_ref().ct_eq(sha256(expected).as_ref()).into()
}

/// Checks `Authorization: Bearer <token>` in constant time. Wrong tokens count as failed
/// sign-ins: past the throttle, the answer is 429 and the token is not even compared.
pub fn require_bearer(state: &AppState, headers: &HeaderMap, token: &str) -> Result<(), AppError> {
    let Some(given) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(AppError::Unauthorized("This needs the organizer token (Authorization: Bearer …).".into()));
    };
    let given = given.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    let client = crate::web::https::client_ip(headers);
    sign_in_allowed(state, client)?;
    if same_secret(given, token) {
        Ok(())
    } else {
        state.live.sign_in.failed(client);
        Err(AppError::Unauthorized("That is not the organizer token (Authorization: Bearer …).".into()))
    }
}

/// 429 with Retry-After while `client` (or everyone) has failed to sign in too often.
pub fn sign_in_allowed(state: &AppState, client: Option<std::net::IpAddr>) -> Result<(), AppError> {
    let Some(retry_after_s) = state.live.sign_in.wait(client) else { return Ok(()) };
    crate::metrics::refused(crate::metrics::Limit::OrganizerSignIn);
    Err(AppError::Busy {
        message: format!("Too many wrong organizer tokens were tried; try again in {retry_after_s} s."),
        retry_after_s,
    })
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_when_equal_whatever_their_lengths() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(same_secret(token, token));
        assert!(!same_secret("", token));
        assert!(!same_secret(&token[..31], token));
        assert!(!same_secret(&format!("{token}0"), token));
        assert!(!same_secret("1123456789abcdef0123456789abcdef", token));
        assert!(same_secret("", ""));
    }
}

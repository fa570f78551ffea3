//! Who a participant is: claiming a display name (which hands out a secret token), acting as
//! that participant ([`Caller`]), signing in on another device with a one-time code, and the
//! organizer releasing a name. The token is never logged or shown on a page.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::AppError;
use crate::state::AppState;
use crate::store::participants::{self, Claim, Participant};
use crate::store::submissions;
use crate::web::fair_use::ClientIp;
use crate::web::json::JsonBody;
use crate::web::pages::{SameSite, cookie, set_cookie};

/// The cookie that holds the participant token in a browser.
pub const PARTICIPANT_COOKIE: &str = "moa_participant";
/// The header scripts send the participant token in (marked sensitive before anything logs).
pub static TOKEN_HEADER: HeaderName = HeaderName::from_static("x-participant-token");
/// How long a browser keeps its participant cookie: the length of a long event.
pub const TOKEN_COOKIE_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a sign-in code for another device stays usable.
pub const SIGN_IN_CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

pub const NO_TOKEN: &str = "Please claim a display name first (the name form on the challenge page, or POST \
    /api/participants {\"name\": …}); then send its token in the moa_participant cookie or the X-Participant-Token \
    header.";
pub const UNKNOWN_TOKEN: &str = "This participant token is not known here: the organizer may have released the name \
    or reset the event. Claim your name again, or sign in with a code from your other device.";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/participants", post(claim_api))
        .route("/api/me", get(me))
        .route("/api/me/sign-in-code", post(sign_in_code_api))
        .route("/api/sign-in", post(sign_in_api))
        .route("/organizer/participants/{id}/release", post(release))
}

/// The token a request carries: the header first (scripts), else the cookie (browsers).
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    match headers.get(&TOKEN_HEADER) {
        Some(value) => Some(value.to_str().unwrap_or("").trim().to_owned()),
        None => cookie(headers, PARTICIPANT_COOKIE),
    }
}

/// The participant a request's token names; `Ok(None)` without a token; 401 for a token that
/// names nobody.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Participant>, AppError> {
    let Some(token) = token_of(headers) else { return Ok(None) };
    match participants::by_token(&state.pool, &token).await? {
        Some(participant) => Ok(Some(participant)),
        None => Err(AppError::Unauthorized(UNKNOWN_TOKEN.into())),
    }
}

/// A request made as a participant (see the README, "Participants"): 401 otherwise.
pub struct Caller(pub Participant);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        caller(state, &parts.headers).await?.map(Caller).ok_or_else(|| AppError::Unauthorized(NO_TOKEN.into()))
    }
}

impl Caller {
    /// A `participant` field in a body must name the caller: acting for someone else is a 403.
    pub fn check_named(&self, named: Option<&str>) -> Result<(), AppError> {
        let Some(named) = named else { return Ok(()) };
        let same = match (participants::normalize_name(named), participants::normalize_name(&self.0.name)) {
            (Ok((_, a)), Ok((_, b))) => a == b,
            _ => named.trim() == self.0.name,
        };
        if same {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "You are signed in as {:?} and cannot act for {:?}; leave out \"participant\" or name yourself.",
                self.0.name,
                named.trim()
            )))
        }
    }
}

/// The `Set-Cookie` that keeps `token` in this browser.
pub fn token_cookie(state: &AppState, headers: &HeaderMap, token: &str) -> axum_extra::extract::cookie::CookieJar {
    set_cookie(state, headers, PARTICIPANT_COOKIE, token, TOKEN_COOKIE_AGE, SameSite::Lax)
}

/// What a successful claim or sign-in gives the caller.
pub struct SignedIn {
    pub participant: Participant,
    pub token: String,
    /// A new token was issued (a claim that took a name, or a sign-in), not one re-sent.
    pub fresh: bool,
}

/// Claims `name` for the caller; the one path the API and the challenge page's name form take.
/// Claims are rate-limited per network address; a name someone holds is a 409.
pub async fn claim_name(
    state: &AppState,
    headers: &HeaderMap,
    ip: &ClientIp,
    name: &str,
) -> Result<SignedIn, AppError> {
    participants::normalize_name(name).map_err(AppError::BadRequest)?;
    let held = token_of(headers);
    let claims = &state.live.fair_use.claims;
    claims.check(&ip.0).map_err(|wait| {
        crate::metrics::refused(crate::metrics::Limit::ClaimsPerIpPerMinute);
        AppError::Busy {
            message: format!("Too many names were claimed from your network address just now; try again in {wait} s."),
            retry_after_s: wait,
        }
    })?;
    match participants::claim(&state.pool, name, held.as_deref()).await?.map_err(AppError::BadRequest)? {
        Claim::Claimed { participant, token, created } => {
            tracing::info!(participant = %participant.name, created, "name claimed");
            Ok(SignedIn { participant, token, fresh: true })
        }
        Claim::AlreadyYours(participant) => {
            // Asking again for one's own name costs no turn.
            claims.refund(&ip.0);
            let token = held.unwrap_or_default();
            Ok(SignedIn { participant, token, fresh: false })
        }
        Claim::Taken(holder) => Err(AppError::Conflict(format!(
            "The name {holder:?} is taken (names that look the same count as one); please pick another, or sign \
             in with a code from the device that holds it."
        ))),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Ada"}))]
struct ClaimRequest {
    name: String,
}

/// `POST /api/participants {"name"}` → 201 `{"participant", "token"}` and the cookie; 200 when
/// the caller already holds that name.
#[utoipa::path(post, path = "/api/participants", tag = "participants", request_body = ClaimRequest,
    responses((status = 201, description = "The name is the caller's; the token is also set as the moa_participant cookie",
            body = SignedInBody),
        (status = 200, description = "The caller already holds that name", body = SignedInBody),
        (status = 400, description = "Not a usable display name", body = crate::error::ErrorBody),
        (status = 409, description = "Someone holds that name (or one that looks the same)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many names claimed from this address; see Retry-After", body = crate::error::ErrorBody)))]
async fn claim_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Result<Response, AppError> {
    let signed_in = claim_name(&state, &headers, &ip, &request.name).await?;
    let status = if signed_in.fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok(signed_in_response(&state, &headers, status, &signed_in))
}

/// A participant's name and secret token (keep it: it is how requests act as them).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"participant": "Ada", "token": "4f9d0c2b7e5a4d3c9b1a8e7f6d5c4b3a"}))]
struct SignedInBody {
    participant: String,
    token: String,
}

fn signed_in_response(state: &AppState, headers: &HeaderMap, status: StatusCode, signed_in: &SignedIn) -> Response {
    let body = Json(SignedInBody { participant: signed_in.participant.name.clone(), token: signed_in.token.clone() });
    (status, token_cookie(state, headers, &signed_in.token), body).into_response()
}

/// The caller's standing.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Me {
    participant: String,
    submissions: usize,
    /// Null before the first submission.
    best_score: Option<i64>,
}

/// `GET /api/me` → `{"participant", "submissions", "best_score"}`.
#[utoipa::path(get, path = "/api/me", tag = "participants",
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses((status = 200, description = "Who the caller is and how they stand", body = Me),
        (status = 401, description = "No participant token, or an unknown one", body = crate::error::ErrorBody)))]
async fn me(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Me>, AppError> {
    let mine = submissions::list(&state.pool, Some(&me.id)).await?;
    let best_score = mine.iter().map(|s| s.total).max();
    Ok(Json(Me { participant: me.name, submissions: mine.len(), best_score }))
}

/// A new one-time sign-in code for the caller's other device.
pub async fn make_sign_in_code(state: &AppState, me: &Participant) -> Result<String, AppError> {
    Ok(participants::new_sign_in_code(&state.pool, &me.id, SIGN_IN_CODE_LIFETIME).await?)
}

/// `POST /api/me/sign-in-code` → `{"code", "expires_in_s"}`: type the code on the other device
/// (challenge page, or `POST /api/sign-in`) within ten minutes; it works once.
#[utoipa::path(post, path = "/api/me/sign-in-code", tag = "participants",
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses((status = 200, description = "A one-time code for another device", body = SignInCode),
        (status = 401, description = "No participant token, or an unknown one", body = crate::error::ErrorBody)))]
async fn sign_in_code_api(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<SignInCode>, AppError> {
    let code = make_sign_in_code(&state, &me).await?;
    Ok(Json(SignInCode { code, expires_in_s: SIGN_IN_CODE_LIFETIME.as_secs() }))
}

/// A one-time sign-in code and how long it stays usable.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SignInCode {
    code: String,
    expires_in_s: u64,
}

/// Redeems a sign-in code for this device (rate-limited per network address).
pub async fn sign_in_with_code(state: &AppState, ip: &ClientIp, code: &str) -> Result<SignedIn, AppError> {
    state.live.fair_use.sign_ins.check(&ip.0).map_err(|wait| {
        crate::metrics::refused(crate::metrics::Limit::SignInCodesPerIp);
        AppError::Busy {
            message: format!("Too many sign-in attempts from your network address; try again in {wait} s."),
            retry_after_s: wait,
        }
    })?;
    match participants::redeem_sign_in_code(&state.pool, code).await? {
        Some((participant, token)) => Ok(SignedIn { participant, token, fresh: true }),
        None => Err(AppError::BadRequest(
            "That sign-in code is unknown, already used or expired; make a new one on the device you are signed in \
             on."
            .into(),
        )),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "K7QX-M2PD-9VRT"}))]
struct SignInRequest {
    code: String,
}

/// `POST /api/sign-in {"code"}` → `{"participant", "token"}` and the cookie.
#[utoipa::path(post, path = "/api/sign-in", tag = "participants", request_body = SignInRequest,
    responses((status = 200, description = "Signed in on this device; the token is also set as the cookie", body = SignedInBody),
        (status = 400, description = "The code is unknown, used or expired", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address; see Retry-After", body = crate::error::ErrorBody)))]
async fn sign_in_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonBody(request): JsonBody<SignInRequest>,
) -> Result<Response, AppError> {
    let signed_in = sign_in_with_code(&state, &ip, &request.code).await?;
    Ok(signed_in_response(&state, &headers, StatusCode::OK, &signed_in))
}

/// `POST /organizer/participants/{id}/release` (organizer): signs every device of this
/// participant out; the next person to claim the name takes it over, history included.
async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    crate::web::organizer::authorize(&state, &headers).await?;
    if !participants::release(&state.pool, &id).await? {
        return Err(AppError::NotFound("There is no such participant.".into()));
    }
    Ok(Redirect::to("/organizer?done=released"))
}

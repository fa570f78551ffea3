//! The organizer's view: every participant, generation and submission; hide, freeze, reset,
//! exports. Off unless `ORGANIZER_TOKEN` is set. Browsers sign in once with the token and get
//! a random session cookie (the token itself never goes into a cookie, a page or the
//! database); the session is stored hashed in the database, so it works on every instance.
//! Scripts send `Authorization: Bearer <token>`.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::error::AppError;
use crate::grader::report::CheckScore;
use crate::state::AppState;
use crate::store::leaderboard::{self, View, short_hash};
use crate::store::{event, format_human_utc, format_utc, generations, participants, sessions, submissions};
use crate::web::api::{require_bearer, same_secret, sign_in_allowed};
use crate::web::events;
use crate::web::https::client_ip;
use crate::web::leaderboard::{StreamQuery, Table, live_table, table};
use crate::web::pages::{NAV, SameSite, cookie, render, set_cookie};

const COOKIE: &str = "moa_organizer";
/// How long a browser stays signed in; the cookie and the stored session expire together.
const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/organizer", get(dashboard))
        .route("/organizer/login", post(login))
        .route("/organizer/logout", post(logout))
        .route("/organizer/freeze", post(freeze))
        .route("/organizer/lab", post(lab))
        .route("/organizer/reset", post(reset))
        .route("/organizer/challenges", post(set_challenges))
        .route("/organizer/participants/{id}", get(participant))
        .route("/organizer/participants/{id}/hide", post(hide))
        .route("/organizer/generations/{id}/config.json", get(config_download))
        .route("/organizer/leaderboard.csv", get(leaderboard_csv))
        .route("/organizer/submissions.csv", get(submissions_csv))
        .route("/organizer/leaderboard/stream", get(stream))
}

/// Proof that the request comes from the organizer.
pub(super) struct Organizer;

pub(super) async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Organizer, AppError> {
    let Some(token) = &state.settings.organizer_token else {
        return Err(AppError::NotFound("Organizer pages are off on this server (ORGANIZER_TOKEN is not set).".into()));
    };
    if let Some(id) = cookie(headers, COOKIE)
        && sessions::is_open(&state.pool, &id).await?
    {
        return Ok(Organizer);
    }
    require_bearer(state, headers, token.expose()).map(|()| Organizer)
}

#[derive(Template)]
#[template(path = "organizer_login.html")]
struct LoginPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    enabled: bool,
    problem: Option<String>,
}

fn login_page(state: &AppState, status: StatusCode, problem: Option<String>) -> Response {
    let page =
        LoginPage { nav: NAV, current: "/organizer", enabled: state.settings.organizer_token.is_some(), problem };
    (status, render(&page)).into_response()
}

#[derive(Template)]
#[template(path = "organizer.html")]
struct Dashboard {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    message: Option<String>,
    frozen: bool,
    winner_generation: Option<String>,
    participants: Vec<participants::Activity>,
    rows: Vec<leaderboard::Entry>,
    max_points: u32,
    frozen_at: Option<String>,
    organizer: bool,
    /// The live board's challenge (the event's default one).
    live_title: String,
    /// Its id: other challenges' best scores are labelled with theirs.
    default_challenge: String,
    /// (id, title, max, active) of every loaded challenge, for the form.
    challenges: Vec<(String, String, u32, bool)>,
    /// The other active challenges' boards, each live too: (id, title, table).
    other_boards: Vec<(String, String, Table)>,
    /// How submissions are isolated on this machine, or why grading is off.
    sandbox: String,
    lab: Lab,
}

/// Whether attendees may evaluate and tune now.
#[derive(PartialEq)]
enum Lab {
    On,
    Off,
    /// `MOA_EVALUATION=off`: the page cannot turn it on.
    OffBySetting,
}

#[derive(Deserialize)]
struct MessageQuery {
    done: Option<String>,
}

async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<MessageQuery>,
) -> Result<Response, AppError> {
    if authorize(&state, &headers).await.is_err() {
        let status =
            if state.settings.organizer_token.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::NOT_FOUND };
        return Ok(login_page(&state, status, None));
    }
    let frozen = event::frozen_at(&state.pool).await?;
    let active = events::active(&state).await?;
    let live = events::event_default(&state).await?;
    let Table { rows, max_points, frozen_at, organizer } = table(&state.pool, View::ORGANIZER, frozen, &live).await?;
    let mut other_boards = Vec::new();
    for challenge in active.iter().filter(|c| c.id != live.id) {
        other_boards.push((
            challenge.id.clone(),
            challenge.title.clone(),
            table(&state.pool, View::ORGANIZER, frozen, challenge).await?,
        ));
    }
    let challenges = state
        .challenges
        .all()
        .iter()
        .map(|c| (c.id.clone(), c.title.clone(), c.max_points(), active.iter().any(|a| a.id == c.id)))
        .collect();
    let participants = participants::activity(&state.pool).await?;
    let message = query.done.as_deref().map(|done| match done {
        "frozen" => "The public leaderboard is frozen.".to_string(),
        "unfrozen" => "The public leaderboard is live again.".to_string(),
        "reset" => "The event was reset.".to_string(),
        "challenges" => "Attendees now pick among the challenges ticked below.".to_string(),
        "hidden" => "Updated.".to_string(),
        "released" => "The name is released: its devices are signed out and the next claim takes it over.".to_string(),
        "lab-off" => "Evaluation and tuning are off: attendees generate and submit only.".to_string(),
        "lab-on" => "Evaluation and tuning are on again.".to_string(),
        _ => "Done.".to_string(),
    });
    let sandbox = match &state.grader {
        Ok(grader) => format!("Grading sandbox: {}.", grader.layers().summary()),
        Err(problem) => format!("Grading is unavailable: {problem}"),
    };
    let lab = if !state.settings.evaluation {
        Lab::OffBySetting
    } else if event::lab_off(&state.pool).await? {
        Lab::Off
    } else {
        Lab::On
    };
    let page = Dashboard {
        lab,
        sandbox,
        nav: NAV,
        current: "/organizer",
        message,
        frozen: frozen.is_some(),
        winner_generation: rows.iter().find(|r| !r.hidden).map(|r| r.best_generation_id.clone()),
        participants,
        rows,
        max_points,
        frozen_at,
        organizer,
        live_title: live.title.clone(),
        default_challenge: live.id.clone(),
        challenges,
        other_boards,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let Some(token) = &state.settings.organizer_token else {
        return Ok(login_page(&state, StatusCode::NOT_FOUND, None));
    };
    let client = client_ip(&headers);
    if let Err(busy @ AppError::Busy { retry_after_s, .. }) = sign_in_allowed(&state, client) {
        let mut page = login_page(&state, StatusCode::TOO_MANY_REQUESTS, Some(busy.public_message()));
        page.headers_mut().insert(header::RETRY_AFTER, retry_after_s.into());
        return Ok(page);
    }
    if !same_secret(form.token.trim(), token.expose()) {
        state.live.sign_in.failed(client);
        return Ok(login_page(&state, StatusCode::UNAUTHORIZED, Some("That is not the organizer token.".into())));
    }
    let session = sessions::open(&state.pool, SESSION_LIFETIME).await?;
    let cookie = set_cookie(&state, &headers, COOKIE, &session, SESSION_LIFETIME, SameSite::Strict);
    Ok((cookie, Redirect::to("/organizer")).into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(id) = cookie(&headers, COOKIE) {
        sessions::close(&state.pool, &id).await?;
    }
    let expired = set_cookie(&state, &headers, COOKIE, "", Duration::ZERO, SameSite::Strict);
    Ok((expired, Redirect::to("/organizer")).into_response())
}

#[derive(Deserialize)]
struct FreezeForm {
    frozen: String,
}

async fn freeze(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FreezeForm>,
) -> Result<Redirect, AppError> {
    authorize(&state, &headers).await?;
    let frozen = form.frozen == "1";
    event::freeze(&state.pool, frozen).await?;
    state.live.leaderboard_changed();
    Ok(Redirect::to(if frozen { "/organizer?done=frozen" } else { "/organizer?done=unfrozen" }))
}

#[derive(Deserialize)]
struct LabForm {
    off: String,
}

/// Turns evaluation and tuning off during a competition (or on again), for every instance.
async fn lab(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LabForm>,
) -> Result<Redirect, AppError> {
    authorize(&state, &headers).await?;
    let off = form.off == "1";
    event::set_lab_off(&state.pool, off).await?;
    Ok(Redirect::to(if off { "/organizer?done=lab-off" } else { "/organizer?done=lab-on" }))
}

#[derive(Deserialize)]
struct ResetForm {
    confirm: String,
}

async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Redirect, AppError> {
    authorize(&state, &headers).await?;
    // The word is the intent, not its case: "reset" and "Reset" confirm too.
    if !form.confirm.trim().eq_ignore_ascii_case("reset") {
        return Err(AppError::BadRequest(
            "Nothing was deleted: to confirm, type the word RESET in the box (in any case) and press the button again."
                .into(),
        ));
    }
    event::reset(&state.pool).await?;
    tracing::warn!("the event was reset by the organizer");
    state.live.leaderboard_changed();
    Ok(Redirect::to("/organizer?done=reset"))
}

/// The challenge form: one `challenge` field per ticked box (a repeated key, hence pairs).
async fn set_challenges(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Redirect, AppError> {
    authorize(&state, &headers).await?;
    let picked: Vec<String> = fields.into_iter().filter(|(k, _)| k == "challenge").map(|(_, v)| v).collect();
    if let Some(unknown) = picked.iter().find(|id| state.challenges.all().iter().all(|c| &c.id != *id)) {
        return Err(AppError::BadRequest(format!("There is no challenge named {unknown:?}; nothing was changed.")));
    }
    // Kept in the registry's order, so the event's default is the same whatever the form's.
    let ids: Vec<String> =
        state.challenges.all().iter().filter(|c| picked.contains(&c.id)).map(|c| c.id.clone()).collect();
    if ids.is_empty() {
        return Err(AppError::BadRequest(
            "Tick at least one challenge: attendees need one to work on. Nothing was changed.".into(),
        ));
    }
    event::set_active_challenges(&state.pool, &ids).await?;
    tracing::info!(challenges = %ids.join(", "), "the organizer chose the active challenges");
    state.live.leaderboard_changed();
    Ok(Redirect::to("/organizer?done=challenges"))
}

#[derive(Deserialize)]
struct HideForm {
    hidden: String,
}

async fn hide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HideForm>,
) -> Result<Redirect, AppError> {
    authorize(&state, &headers).await?;
    if !participants::set_hidden(&state.pool, &id, form.hidden == "1").await? {
        return Err(AppError::NotFound("There is no such participant.".into()));
    }
    state.live.leaderboard_changed();
    Ok(Redirect::to("/organizer?done=hidden"))
}

/// A moment on a page: shown as `2 Dec 13:05 UTC`, with the exact RFC 3339 time beside it.
struct When {
    iso: String,
    shown: String,
}

impl When {
    fn at(ms: i64) -> When {
        When { iso: format_utc(ms), shown: format_human_utc(ms) }
    }
}

struct SubmissionView {
    at: When,
    total: i64,
    max: i64,
    grade: String,
    status: String,
    reason: Option<String>,
    /// Every check's points and why, in run order (none when the code was rejected).
    checks: Vec<CheckScore>,
    /// How many of them passed.
    passed: usize,
    generation_id: String,
    challenge: String,
    /// The short hash of the version that graded it.
    version: String,
    /// The short hash of the version the generation was made for, when it is another one.
    generated_for: Option<String>,
    /// Graded by a version other than the one loaded now.
    outdated: bool,
    /// Its generation used a configuration a tuning search gave this participant.
    tuned: bool,
}

impl SubmissionView {
    /// Enough of the generation's id to tell it apart on the page (the full one in a title).
    fn short_generation(&self) -> &str {
        short_hash(&self.generation_id)
    }
}

struct GenerationView {
    id: String,
    challenge: String,
    version: String,
    at: When,
    summary: String,
    config: String,
    timings: String,
    code: String,
    answer: String,
}

impl GenerationView {
    fn short_id(&self) -> &str {
        short_hash(&self.id)
    }
}

#[derive(Template)]
#[template(path = "organizer_participant.html")]
struct ParticipantPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    id: String,
    name: String,
    hidden: bool,
    submissions: Vec<SubmissionView>,
    generations: Vec<GenerationView>,
}

async fn participant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    authorize(&state, &headers).await?;
    let p = participants::find(&state.pool, &id)
        .await?
        .ok_or_else(|| AppError::NotFound("There is no such participant.".into()))?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let generated = generations::list(&state.pool, Some(&p.id)).await?;
    let current = |id: &str| state.challenges.all().iter().find(|c| c.id == id).map(|c| c.hash.clone());
    let tuned_configs = crate::store::evaluations::tuned(&state.pool, &p.id).await?;
    let tuned = |generation_id: &str| {
        generated.iter().find(|g| g.id == generation_id).is_some_and(|g| tuned_configs.contains(&g.config_hash))
    };
    let submissions = submissions::list(&state.pool, Some(&p.id))
        .await?
        .into_iter()
        .map(|s| SubmissionView {
            generated_for: generated
                .iter()
                .find(|g| g.id == s.generation_id)
                .filter(|g| !g.challenge_hash.is_empty() && g.challenge_hash != s.challenge_hash)
                .map(|g| short_hash(&g.challenge_hash).to_string()),
            outdated: current(&s.challenge).is_some_and(|now| now != s.challenge_hash),
            tuned: tuned(&s.generation_id),
            version: short_hash(&s.challenge_hash).to_string(),
            challenge: s.challenge.clone(),
            at: When::at(s.created_at),
            total: s.total,
            max: s.max_points,
            grade: s.report.grade.clone(),
            status: s.status,
            reason: s.report.reason.clone(),
            passed: s.report.checks.iter().filter(|c| c.passed).count(),
            checks: s.report.checks,
            generation_id: s.generation_id,
        })
        .collect();
    let generations = generated
        .into_iter()
        .map(|g| GenerationView {
            challenge: g.challenge.clone(),
            version: short_hash(&g.challenge_hash).to_string(),
            at: When::at(g.created_at),
            summary: leaderboard::summarize(&g.config.to_string()),
            config: pretty(&g.config),
            timings: pretty(&g.timings),
            code: g.code,
            answer: g.answer,
            id: g.id,
        })
        .collect();
    render(&ParticipantPage {
        nav: NAV,
        current: "/organizer",
        id: p.id,
        name: p.name,
        hidden: p.hidden,
        submissions,
        generations,
    })
}

/// A generation's configuration as workshop JSON, ready to import.
async fn config_download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    authorize(&state, &headers).await?;
    let g = generations::find(&state.pool, &id)
        .await?
        .ok_or_else(|| AppError::NotFound("There is no such generation.".into()))?;
    let inner = g.config.get("ai_configuration").cloned().unwrap_or(g.config.clone());
    let export = crate::moa::config::export(inner, crate::store::now_ms());
    let body = serde_json::to_string_pretty(&export)?;
    let disposition = format!("attachment; filename=\"moa-config-{}.json\"", &g.id[..8.min(g.id.len())]);
    Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<StreamQuery>,
) -> Result<Response, AppError> {
    authorize(&state, &headers).await?;
    live_table(state, query, true).await
}

/// One CSV field: quoted when needed, and never read as a formula by a spreadsheet.
fn csv_field(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>, filename: &str) -> Response {
    let mut out = header.join(",") + "\r\n";
    for row in rows {
        out += &row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        out += "\r\n";
    }
    let disposition = format!("attachment; filename=\"{filename}\"");
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)], out)
        .into_response()
}

async fn leaderboard_csv(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    authorize(&state, &headers).await?;
    let challenge = events::event_default(&state).await?;
    let rows = leaderboard::ranking(&state.pool, View::ORGANIZER, &challenge.id).await?;
    let header = ["rank", "participant", "best_score", "submissions", "best_at", "config_summary", "hidden", "tied"];
    Ok(csv(
        &header,
        rows.into_iter().map(|r| {
            vec![
                r.rank.to_string(),
                r.participant,
                r.best_score.to_string(),
                r.submissions.to_string(),
                r.best_at,
                r.config_summary,
                r.hidden.to_string(),
                r.tied.to_string(),
            ]
        }),
        "leaderboard.csv",
    ))
}

async fn submissions_csv(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    authorize(&state, &headers).await?;
    let names: std::collections::HashMap<String, String> =
        participants::all(&state.pool).await?.into_iter().map(|p| (p.id, p.name)).collect();
    let all = submissions::list(&state.pool, None).await?;
    // Every check of every challenge graded, in order of first appearance: one column each.
    let mut check_ids: Vec<String> = Vec::new();
    for check in all.iter().flat_map(|s| &s.report.checks) {
        if !check_ids.contains(&check.id) {
            check_ids.push(check.id.clone());
        }
    }
    let mut header = vec![
        "submitted_at",
        "participant",
        "submission_id",
        "generation_id",
        "total",
        "max",
        "grade",
        "status",
        "reason",
        "challenge",
        "challenge_hash",
    ];
    header.extend(check_ids.iter().map(String::as_str));
    let rows =
        all.iter().map(|s| {
            let mut row = vec![
                format_utc(s.created_at),
                names.get(&s.participant_id).cloned().unwrap_or_default(),
                s.id.clone(),
                s.generation_id.clone(),
                s.total.to_string(),
                s.max_points.to_string(),
                s.report.grade.clone(),
                s.status.clone(),
                s.report.reason.clone().unwrap_or_default(),
                s.challenge.clone(),
                s.challenge_hash.clone(),
            ];
            row.extend(check_ids.iter().map(|id| {
                s.report.checks.iter().find(|c| &c.id == id).map(|c| c.points.to_string()).unwrap_or_default()
            }));
            row
        });
    Ok(csv(&header, rows.collect::<Vec<_>>(), "submissions.csv"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=1+1"), "'=1+1");
        assert_eq!(super::csv_field("-5"), "'-5");
    }
}

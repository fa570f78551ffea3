//! Server-rendered pages (askama); each handler renders a full page.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum_extra::extract::cookie::{self, Cookie, CookieJar};

use crate::error::AppError;
use crate::state::AppState;

/// Links in the top bar, shared by every page.
pub const NAV: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/chat", "MoA chat"),
    ("/challenge", "Challenge"),
    ("/leaderboard", "Leaderboard"),
    ("/organizer", "Organizer"),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

/// The value of cookie `name` in the request, if present.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers).get(name).map(|c| c.value().to_owned())
}

/// Whether other sites' links may carry a cookie: `Lax` for attendees (a link to the challenge
/// page keeps them signed in), `Strict` for the organizer.
#[derive(Clone, Copy)]
pub enum SameSite {
    Lax,
    Strict,
}

/// The one place this app builds a `Set-Cookie`: HttpOnly (no script reads it), the whole
/// site, for `max_age` (zero deletes it), and `Secure` when the browser talks https. The
/// answer carries it as a response part.
pub fn set_cookie(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    name: &str,
    value: &str,
    max_age: std::time::Duration,
    same_site: SameSite,
) -> CookieJar {
    let same_site = match same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
    };
    let mut cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(same_site)
        .path("/")
        .secure(crate::web::https::is_https(state, headers));
    // Fails only past i64::MAX seconds; the lifetimes here are constants of days at most.
    if let Ok(max_age) = max_age.try_into() {
        cookie = cookie.max_age(max_age);
    }
    CookieJar::new().add(cookie)
}

pub fn render(page: &impl Template) -> Result<Html<String>, AppError> {
    page.render().map(Html).map_err(AppError::from)
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    llm_key_set: bool,
    require_user_key: bool,
    llm_base_url: String,
    grader_problem: Option<String>,
    challenge_title: String,
    challenge_function: String,
    challenge_max: u32,
}

async fn index(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let challenge = state.challenges.find(None).map_err(AppError::internal)?;
    render(&IndexPage {
        nav: NAV,
        current: "/",
        llm_key_set: state.settings.llm_api_key.is_some(),
        require_user_key: state.settings.require_user_key,
        llm_base_url: state.settings.llm_base_url.clone(),
        grader_problem: state.grader.as_ref().err().cloned(),
        challenge_title: challenge.title.clone(),
        challenge_function: challenge.entry.clone(),
        challenge_max: challenge.max_points(),
    })
}

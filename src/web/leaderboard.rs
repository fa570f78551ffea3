//! The leaderboard: page (normal and projector), JSON, and a live SSE stream of the table.
//! The public view hides hidden participants and, when frozen, newer submissions.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::AppError;
use crate::grader::{Challenge, Challenges};
use crate::live::{Board, Boards, sse_event};
use crate::state::AppState;
use crate::store::leaderboard::{Entry, View};
use crate::store::{Pool, format_utc};
use crate::store::{event, leaderboard};
use crate::web::events;
use crate::web::pages::{NAV, render};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/leaderboard", get(page))
        .route("/leaderboard/stream", get(public_stream))
        .route("/api/leaderboard", get(api))
}

#[derive(Template)]
#[template(path = "leaderboard_table.html")]
pub struct Table {
    pub rows: Vec<Entry>,
    pub max_points: u32,
    pub frozen_at: Option<String>,
    /// The organizer's view also shows which version of the challenge graded each best score.
    pub organizer: bool,
}

/// One challenge's public board as both of its pages show it.
struct BoardView {
    /// The live stream, for an open challenge; a closed one's board is served as it is.
    stream_url: Option<String>,
    table: Table,
    title: String,
    challenge: String,
}

#[derive(Template)]
#[template(path = "leaderboard.html")]
struct Page {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    board: BoardView,
    /// (id, title) of each active challenge, when there are several.
    boards: Vec<(String, String)>,
}

/// The board for a projector: a page of its own, without the site's navigation, that shows
/// as many rows as the screen holds and turns through the rest by itself (static/live.js).
#[derive(Template)]
#[template(path = "leaderboard_projector.html")]
struct ProjectorPage {
    board: BoardView,
}

#[derive(Deserialize)]
struct PageQuery {
    view: Option<String>,
    challenge: Option<String>,
}

#[derive(Deserialize)]
struct ApiQuery {
    challenge: Option<String>,
}

/// What the public sees: no hidden participants, nothing after a freeze.
pub async fn public_view(state: &AppState) -> Result<(View, Option<i64>), AppError> {
    let frozen = event::frozen_at(&state.pool).await?;
    Ok((View { include_hidden: false, until: frozen }, frozen))
}

/// One challenge's board; its maximum is that challenge's.
pub async fn table(pool: &Pool, view: View, frozen: Option<i64>, challenge: &Challenge) -> Result<Table, AppError> {
    Ok(Table {
        rows: leaderboard::ranking(pool, view, &challenge.id).await?,
        max_points: challenge.max_points(),
        frozen_at: frozen.map(format_utc),
        organizer: view.include_hidden,
    })
}

async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Result<Html<String>, AppError> {
    let challenge = events::known(&state, query.challenge.as_deref()).await?;
    let active = events::active(&state).await?;
    let live = active.iter().any(|c| c.id == challenge.id);
    let (view, frozen) = public_view(&state).await?;
    let board = BoardView {
        stream_url: live.then(|| format!("/leaderboard/stream?challenge={}", challenge.id)),
        table: table(&state.pool, view, frozen, &challenge).await?,
        title: challenge.title.clone(),
        challenge: challenge.id.clone(),
    };
    if query.view.as_deref() == Some("projector") {
        return render(&ProjectorPage { board });
    }
    let boards =
        if active.len() > 1 { active.iter().map(|c| (c.id.clone(), c.title.clone())).collect() } else { Vec::new() };
    render(&Page { nav: NAV, current: "/leaderboard", board, boards })
}

/// `GET /api/leaderboard[?challenge=ID]`: one challenge's public board (the event's default
/// challenge when none is named), best score per participant; equal scores share a rank and
/// are marked `tied`, listed by whoever reached the score first.
#[utoipa::path(get, path = "/api/leaderboard", tag = "grading",
    params(("challenge" = Option<String>, Query, description = "The challenge's id; the event's default one when left out")),
    responses((status = 200, description = "The ranking (hidden names left out; nothing after a freeze)", body = Vec<Entry>),
        (status = 400, description = "No challenge has that id", body = crate::error::ErrorBody)))]
async fn api(State(state): State<AppState>, Query(query): Query<ApiQuery>) -> Result<Json<Vec<Entry>>, AppError> {
    let challenge = events::known(&state, query.challenge.as_deref()).await?;
    let (view, _) = public_view(&state).await?;
    Ok(Json(leaderboard::ranking(&state.pool, view, &challenge.id).await?))
}

#[derive(Deserialize)]
pub struct StreamQuery {
    challenge: Option<String>,
}

async fn public_stream(State(state): State<AppState>, Query(query): Query<StreamQuery>) -> Result<Response, AppError> {
    live_table(state, query, false).await
}

/// Both boards of every open challenge rendered once, as complete SSE events; `false` when a
/// table could not be read (its event then carries the sentence instead).
pub async fn render_boards(pool: &Pool, challenges: &Challenges, configured: &[String]) -> (Boards, bool) {
    let mut complete = true;
    let mut event = |rendered: Result<String, AppError>| {
        let html = rendered.unwrap_or_else(|e| {
            complete = false;
            tracing::warn!(error = %e, "cannot render the live leaderboard");
            format!("<p class=\"notice error\">{}</p>", e.public_message())
        });
        sse_event("leaderboard", &html)
    };
    let (open, frozen) = match (events::active_in(pool, challenges, configured).await, event::frozen_at(pool).await) {
        (Ok(open), Ok(frozen)) => (open, frozen),
        (Err(e), _) | (_, Err(e)) => {
            let failed = event(Err(e.into()));
            let board = Board { public: failed.clone(), organizer: failed };
            let default = challenges.find(None).map(|c| c.id.clone()).unwrap_or_default();
            return (Boards { by_challenge: vec![(default, board)] }, false);
        }
    };
    let mut boards = Boards::default();
    for challenge in open {
        let render = |view: View| {
            let challenge = challenge.clone();
            async move {
                let table = table(pool, view, frozen, &challenge).await?;
                table.render().map_err(AppError::from)
            }
        };
        let public = event(render(View { include_hidden: false, until: frozen }).await);
        let organizer = event(render(View::ORGANIZER).await);
        boards.by_challenge.push((challenge.id.clone(), Board { public, organizer }));
    }
    (boards, complete)
}

/// A comment line: keeps proxies from closing a quiet stream.
const KEEP_ALIVE: &[u8] = b":\n\n";
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// One challenge's table now, then again after every change, until the client leaves or the
/// server stops (a closed challenge's stream waits: its board goes live if it is opened).
/// Every viewer of a view is sent the same bytes, rendered once per change (see `Live`).
pub async fn live_table(state: AppState, query: StreamQuery, organizer: bool) -> Result<Response, AppError> {
    let challenge = match query.challenge.as_deref() {
        Some(id) => Some(events::known(&state, Some(id)).await?.id.clone()),
        None => None,
    };
    let viewer = state.live.watch_boards()?;
    let shutdown = state.shutdown.clone();
    let pick = std::sync::Arc::new(move |boards: &Boards| {
        let board = boards.of(challenge.as_deref())?;
        Some(if organizer { board.organizer.clone() } else { board.public.clone() })
    });
    let stream = futures_util::stream::unfold((viewer, shutdown, true), move |(mut viewer, mut shutdown, first)| {
        let pick = pick.clone();
        async move {
            if *shutdown.borrow() {
                return None;
            }
            let now = if first { viewer.boards.borrow_and_update().as_deref().and_then(|b| pick(b)) } else { None };
            if let Some(frame) = now {
                return Some((Ok::<_, Infallible>(frame), (viewer, shutdown, false)));
            }
            loop {
                tokio::select! {
                    changed = viewer.boards.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        let now = viewer.boards.borrow_and_update().as_deref().and_then(|b| pick(b));
                        if let Some(frame) = now {
                            return Some((Ok(frame), (viewer, shutdown, false)));
                        }
                    }
                    _ = tokio::time::sleep(KEEP_ALIVE_EVERY) => {
                        return Some((Ok(Bytes::from_static(KEEP_ALIVE)), (viewer, shutdown, false)));
                    }
                    _ = shutdown.changed() => return None,
                }
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(stream))
        .into_response())
}

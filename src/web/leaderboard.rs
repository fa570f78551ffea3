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

use crate::app::AppState;
use crate::error::AppError;
use crate::store::leaderboard::{Entry, View};
use crate::store::{Pool, format_utc};
use crate::store::{event, leaderboard};
use crate::web::live::{Boards, sse_event};
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
}

#[derive(Template)]
#[template(path = "leaderboard.html")]
struct Page {
    nav: &'static [(&'static str, &'static str)],
    current: &'static str,
    projector: bool,
    stream_url: &'static str,
    rows: Vec<Entry>,
    max_points: u32,
    frozen_at: Option<String>,
}

#[derive(Deserialize)]
struct PageQuery {
    view: Option<String>,
}

/// What the public sees: no hidden participants, nothing after a freeze.
pub async fn public_view(state: &AppState) -> Result<(View, Option<i64>), AppError> {
    let frozen = event::frozen_at(&state.pool).await?;
    Ok((View { include_hidden: false, until: frozen }, frozen))
}

pub async fn table(pool: &Pool, view: View, frozen: Option<i64>) -> Result<Table, AppError> {
    Ok(Table {
        rows: leaderboard::ranking(pool, view).await?,
        max_points: max_points(),
        frozen_at: frozen.map(format_utc),
    })
}

fn max_points() -> u32 {
    // Until the board is per challenge: the built-in default challenge's maximum.
    crate::grader::challenge::load_all(None)
        .ok()
        .and_then(|all| all.into_iter().find(|c| c.id == crate::grader::challenge::DEFAULT_ID))
        .map(|c| c.max_points())
        .unwrap_or(120)
}

async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Result<Html<String>, AppError> {
    let (view, frozen) = public_view(&state).await?;
    let Table { rows, max_points, frozen_at } = table(&state.pool, view, frozen).await?;
    render(&Page {
        nav: NAV,
        current: "/leaderboard",
        projector: query.view.as_deref() == Some("projector"),
        stream_url: "/leaderboard/stream",
        rows,
        max_points,
        frozen_at,
    })
}

/// `GET /api/leaderboard`: the public board, best score per participant, ties to whoever reached it first.
#[utoipa::path(get, path = "/api/leaderboard", tag = "grading",
    responses((status = 200, description = "The ranking (hidden names left out; nothing after a freeze)", body = Vec<Entry>)))]
async fn api(State(state): State<AppState>) -> Result<Json<Vec<Entry>>, AppError> {
    let (view, _) = public_view(&state).await?;
    Ok(Json(leaderboard::ranking(&state.pool, view).await?))
}

async fn public_stream(State(state): State<AppState>) -> Result<Response, AppError> {
    live_table(state, false)
}

/// Both boards rendered once, as complete SSE events; `false` when a table could not be read
/// (its event then carries the sentence instead).
pub async fn render_boards(pool: &Pool) -> (Boards, bool) {
    let render = |organizer: bool| async move {
        let frozen = event::frozen_at(pool).await?;
        let view = if organizer { View::ORGANIZER } else { View { include_hidden: false, until: frozen } };
        let table = table(pool, view, frozen).await?;
        table.render().map_err(|e| AppError::Internal(format!("template: {e}")))
    };
    let mut complete = true;
    let mut event = |rendered: Result<String, AppError>| {
        let html = rendered.unwrap_or_else(|e| {
            complete = false;
            tracing::warn!(error = %e, "cannot render the live leaderboard");
            format!("<p class=\"notice error\">{}</p>", e.public_message())
        });
        sse_event("leaderboard", &html)
    };
    let public = event(render(false).await);
    let organizer = event(render(true).await);
    (Boards { public, organizer }, complete)
}

/// A comment line: keeps proxies from closing a quiet stream.
const KEEP_ALIVE: &[u8] = b":\n\n";
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// The table now, then again after every change, until the client leaves or the server stops.
/// Every viewer of a view is sent the same bytes, rendered once per change (see `Live`).
pub fn live_table(state: AppState, organizer: bool) -> Result<Response, AppError> {
    let viewer = state.live.watch_boards()?;
    let shutdown = state.shutdown.clone();
    let pick = move |boards: &Boards| if organizer { boards.organizer.clone() } else { boards.public.clone() };
    let stream =
        futures_util::stream::unfold((viewer, shutdown, true), move |(mut viewer, mut shutdown, first)| async move {
            if *shutdown.borrow() {
                return None;
            }
            let now = if first { viewer.boards.borrow_and_update().as_deref().map(pick) } else { None };
            if let Some(frame) = now {
                return Some((Ok::<_, Infallible>(frame), (viewer, shutdown, false)));
            }
            loop {
                tokio::select! {
                    changed = viewer.boards.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        let now = viewer.boards.borrow_and_update().as_deref().map(pick);
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
        });
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(stream))
        .into_response())
}

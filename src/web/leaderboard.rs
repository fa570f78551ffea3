//! The leaderboard: page (normal and projector), JSON, and a live SSE stream of the table.
//! The public view hides hidden participants and, when frozen, newer submissions.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::error::AppError;
use crate::grader::Challenge;
use crate::store::format_utc;
use crate::store::leaderboard::{Entry, View};
use crate::store::{event, leaderboard};
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

pub async fn table(state: &AppState, view: View, frozen: Option<i64>) -> Result<Table, AppError> {
    Ok(Table {
        rows: leaderboard::ranking(&state.pool, view).await?,
        max_points: max_points(),
        frozen_at: frozen.map(format_utc),
    })
}

fn max_points() -> u32 {
    Challenge::find(Challenge::default_id()).map(|c| c.max_points).unwrap_or(120)
}

async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Result<Html<String>, AppError> {
    let (view, frozen) = public_view(&state).await?;
    let Table { rows, max_points, frozen_at } = table(&state, view, frozen).await?;
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

async fn api(State(state): State<AppState>) -> Result<Json<Vec<Entry>>, AppError> {
    let (view, _) = public_view(&state).await?;
    Ok(Json(leaderboard::ranking(&state.pool, view).await?))
}

async fn public_stream(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    live_table(state, false)
}

/// The table now, then again after every change, until the client leaves or the server stops.
pub fn live_table(state: AppState, organizer: bool) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = state.live.leaderboard.subscribe();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (true, changes, shutdown, state),
        move |(first, mut changes, mut shutdown, state)| async move {
            if !first {
                tokio::select! {
                    received = changes.recv() => if let Err(RecvError::Closed) = received { return None },
                    _ = shutdown.changed() => return None,
                }
            }
            if *shutdown.borrow() {
                return None;
            }
            let html = async {
                let (view, frozen) = if organizer {
                    (View::ORGANIZER, event::frozen_at(&state.pool).await?)
                } else {
                    public_view(&state).await?
                };
                let table = table(&state, view, frozen).await?;
                table.render().map_err(|e| AppError::Internal(format!("template: {e}")))
            }
            .await
            .unwrap_or_else(|e| format!("<p class=\"notice error\">{}</p>", e.public_message()));
            Some((Ok(Event::default().event("leaderboard").data(html)), (false, changes, shutdown, state)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

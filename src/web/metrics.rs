//! `GET /metrics`: the process's metrics (see `crate::metrics`) in the OpenMetrics text
//! format, which Prometheus scrapes natively, for the holder of `MOA_METRICS_TOKEN` or the
//! organizer token. `MOA_METRICS=off` leaves the route out.

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;

use crate::error::AppError;
use crate::metrics::{Snapshot, metrics};
use crate::state::AppState;
use crate::web::api::{same_secret, sign_in_allowed};

/// What Prometheus asks for first and parses as OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub const NO_TOKEN_SET: &str = "/metrics needs a token and none is set: start the server with MOA_METRICS_TOKEN (or \
    ORGANIZER_TOKEN) and send it as Authorization: Bearer …; MOA_METRICS=off turns /metrics off.";

pub fn router(enabled: bool) -> Router<AppState> {
    if enabled { Router::new().route("/metrics", get(scrape)) } else { Router::new() }
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    authorize(&state, &headers)?;
    let (grading_queued, grading_running) = match &state.grader {
        Ok(grader) => (grader.queued(), grader.running()),
        Err(_) => (0, 0),
    };
    let now = Snapshot { runs_in_flight: state.runs_in_flight(), grading_queued, grading_running };
    let body = metrics().render(&now);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

/// The metrics token or the organizer token, as `Authorization: Bearer …`. A wrong one counts
/// as a failed organizer sign-in (the same throttle), so neither can be guessed here.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let settings = &state.settings;
    let tokens: Vec<&str> = [settings.metrics_token.as_ref(), settings.organizer_token.as_ref()]
        .into_iter()
        .flatten()
        .map(|t| t.expose())
        .collect();
    if tokens.is_empty() {
        return Err(AppError::Unavailable(NO_TOKEN_SET.into()));
    }
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return Err(AppError::Unauthorized("/metrics needs the metrics token (Authorization: Bearer …).".into()));
    };
    let given = given.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    let client = crate::web::https::client_ip(headers);
    sign_in_allowed(state, client)?;
    // Every token is compared, so the time taken does not tell which one was close.
    if tokens.iter().fold(false, |matched, token| matched | same_secret(given, token)) {
        Ok(())
    } else {
        state.live.sign_in.failed(client);
        Err(AppError::Unauthorized("That is not the metrics token (Authorization: Bearer …).".into()))
    }
}

/// Counts every open event stream (chat runs, generations, live leaderboards) by its route,
/// until the body is dropped: finished, or the client went away.
pub async fn count_streams(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let Some(route) = route.filter(|_| is_stream) else { return response };
    let guard = metrics().stream_opened(&route);
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _open = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

//! HTTP: one module per feature, each exposing `router()`; this file assembles them.

mod api;
pub mod assets;
mod challenge;
mod chat;
pub mod fair_use;
mod health;
pub mod https;
mod leaderboard;
pub mod live;
mod organizer;
mod pages;
mod participants;
pub mod run_stream;
pub mod server;

use std::time::Duration;

use axum::http::StatusCode;
use axum::{Router, middleware};
use tower_http::compression::CompressionLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

pub fn build_router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(pages::router())
        .merge(chat::router())
        .merge(api::router())
        .merge(challenge::router())
        .merge(participants::router())
        .merge(leaderboard::router())
        .merge(organizer::router())
        .merge(assets::router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "There is no page here.") })
        .layer(CompressionLayer::new())
        // Headers must come within this time; streamed bodies may run longer.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(90)))
        .layer(middleware::from_fn_with_state(state.clone(), health::note_storage_faults))
        .layer(middleware::from_fn_with_state(state.clone(), https::same_origin_only))
        .layer(middleware::from_fn(https::security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), https::proxy_headers))
        .layer(TraceLayer::new_for_http())
        // Outside the trace layer, so no request logging can print a key a participant sent.
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            run_stream::USER_KEY_HEADER.clone(),
            participants::TOKEN_HEADER.clone(),
        ]))
        .with_state(state)
}
